//! The persistent score cache: model outputs for exact inputs, kept across runs in an embedded
//! database (redb: one file, transactional, crash-safe), so that re-grading a suite after a small
//! change computes only what changed.
//!
//! Keys are the SHA-256 of a namespace (which model, with its weights' hash, and every setting that
//! changes its output for the same texts: the token window, the label order) and the exact input
//! texts; values are opaque bytes that the caller encodes. A different model, window or text is a
//! different key, so a stale entry can never be returned. The file only grows; delete it to reset.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableTableMetadata, TableDefinition};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("scores-v1");

/// A key: SHA-256 of the namespace and the texts, each length-prefixed (no two inputs collide by
/// concatenation).
pub type Key = [u8; 32];

/// Computes the key of `texts` under `namespace`.
pub fn key(namespace: &str, texts: &[&str]) -> Key {
    let mut h = Sha256::new();
    for part in std::iter::once(namespace).chain(texts.iter().copied()) {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// An open cache file.
pub struct ScoreCache {
    db: Database,
    path: PathBuf,
    recovered: Option<Recovered>,
}

/// A damaged cache file that [`ScoreCache::open`] moved aside before starting a fresh one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Where the damaged file is now.
    pub aside: PathBuf,
    /// What was wrong with it.
    pub reason: String,
}

/// Why a cache file could not be opened.
enum Opening {
    /// The file is damaged or not a cache: move it aside and start afresh.
    Damaged(String),
    /// Anything else (locked by another process, unreadable): leave it alone.
    Failed(String),
}

impl Opening {
    fn reason(&self) -> &str {
        match self {
            Opening::Damaged(r) | Opening::Failed(r) => r,
        }
    }
}

/// Opens the database at `path` and checks that its table can be written and read. A panic inside
/// redb (which some damaged files cause, such as a truncated one) is caught, kept off stderr, and
/// counts as damage.
fn open_db(path: &Path) -> std::result::Result<Database, Opening> {
    let attempt = quietly(|| -> std::result::Result<Database, redb::Error> {
        let mut db = Database::create(path)?;
        // Checks every page's checksum (a damaged page would otherwise be found, or not, by a
        // later read) and repairs what redb can (Ok(false): it repaired, as after a killed run).
        db.check_integrity()?;
        let txn = db.begin_write()?;
        txn.open_table(TABLE)?;
        txn.commit()?;
        let txn = db.begin_read()?;
        txn.open_table(TABLE)?.len()?;
        Ok(db)
    });
    match attempt {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(classify(e)),
        Err(what) => Err(Opening::Damaged(format!("reading it failed: {what}"))),
    }
}

thread_local! {
    /// Set while [`quietly`] runs on this thread: its panics are caught and reported as errors.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic into an error with its message, without the panic message on stderr
/// (the panic hook stays as it was for every other thread and every other time).
fn quietly<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    r.map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic in the database library".into())
    })
}

/// Sorts a redb error into damage (the file's content is at fault) and other failures.
fn classify(e: redb::Error) -> Opening {
    use std::io::ErrorKind;
    match &e {
        redb::Error::DatabaseAlreadyOpen | redb::Error::PreviousIo | redb::Error::LockPoisoned(_) => {
            Opening::Failed(format!("{e} (another candor run may be using it)"))
        }
        redb::Error::Io(io) if !matches!(io.kind(), ErrorKind::UnexpectedEof | ErrorKind::InvalidData) => Opening::Failed(e.to_string()),
        _ => Opening::Damaged(e.to_string()),
    }
}

/// Renames a damaged cache file to `<name>.corrupt-<unix seconds>` (with `-2`, `-3`, ... when that
/// name is taken) beside it, and returns the new path.
fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "scores.redb".into());
    let mut n = 1u64;
    loop {
        let suffix = if n == 1 { String::new() } else { format!("-{n}") };
        let aside = path.with_file_name(format!("{name}.corrupt-{secs}{suffix}"));
        // A hard link never replaces an existing file; where links are not supported, a rename to
        // a name checked free.
        match std::fs::hard_link(path, &aside) {
            Ok(()) => {
                std::fs::remove_file(path)?;
                return Ok(aside);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(_) if std::fs::symlink_metadata(&aside).is_err() => {
                std::fs::rename(path, &aside)?;
                return Ok(aside);
            }
            Err(_) => {}
        }
        n += 1;
    }
}

impl std::fmt::Debug for ScoreCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScoreCache").field("path", &self.path).finish()
    }
}

impl ScoreCache {
    /// Opens (or creates) the cache at `path`, creating its folder. Fails if another process has it
    /// open (redb locks the file) or the file cannot be read: callers then run without a cache.
    ///
    /// A damaged file (truncated, overwritten, not a cache at all, or one that this version of redb
    /// cannot read) is never fatal and never deleted: it is renamed aside to
    /// `<name>.corrupt-<unix seconds>` and a fresh cache is started in its place; [`Self::recovered`]
    /// then says so, for the caller to warn.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let err = |reason: String| Error::Cache { path: path.to_path_buf(), reason };
        match open_db(path) {
            Ok(db) => Ok(Self { db, path: path.to_path_buf(), recovered: None }),
            Err(Opening::Failed(reason)) => Err(err(reason)),
            Err(Opening::Damaged(reason)) => {
                let aside = move_aside(path).map_err(|e| err(format!("{reason}; moving it aside failed: {e}")))?;
                let db = open_db(path).map_err(|e| err(format!("a fresh cache in place of the damaged one: {}", e.reason())))?;
                Ok(Self { db, path: path.to_path_buf(), recovered: Some(Recovered { aside, reason }) })
            }
        }
    }

    /// Where a damaged cache file was moved when [`Self::open`] started a fresh one, and why.
    pub fn recovered(&self) -> Option<&Recovered> {
        self.recovered.as_ref()
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::Cache { path: self.path.clone(), reason: e.to_string() }
    }

    /// The values stored under `keys`, in order (`None` where absent).
    pub fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Vec<u8>>>> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(TABLE).map_err(|e| self.err(e))?;
        keys.iter()
            .map(|k| Ok(table.get(k.as_slice()).map_err(|e| self.err(e))?.map(|v| v.value().to_vec())))
            .collect()
    }

    /// Stores `items` in one transaction (all or none on a crash).
    pub fn put_many(&self, items: &[(Key, Vec<u8>)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(TABLE).map_err(|e| self.err(e))?;
            for (k, v) in items {
                table.insert(k.as_slice(), v.as_slice()).map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// Number of entries.
    pub fn len(&self) -> Result<u64> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(TABLE).map_err(|e| self.err(e))?;
        table.len().map_err(|e| self.err(e))
    }

    /// True when the cache holds nothing.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_namespaces_and_text_boundaries() {
        assert_ne!(key("m@1", &["ab", "c"]), key("m@1", &["a", "bc"]));
        assert_ne!(key("m@1", &["a", "b"]), key("m@2", &["a", "b"]));
        assert_eq!(key("m@1", &["a", "b"]), key("m@1", &["a", "b"]));
    }

    #[test]
    fn values_survive_reopening_and_a_second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/scores.redb");
        let (k1, k2) = (key("m", &["p", "h"]), key("m", &["p", "h2"]));
        {
            let c = ScoreCache::open(&path).unwrap();
            assert!(c.is_empty().unwrap());
            c.put_many(&[(k1, vec![1, 2, 3])]).unwrap();
            assert!(ScoreCache::open(&path).is_err(), "the file is locked while open");
            let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names, vec![std::ffi::OsString::from("scores.redb")], "a locked cache is not moved aside");
        }
        let c = ScoreCache::open(&path).unwrap();
        assert_eq!(c.get_many(&[k1, k2]).unwrap(), vec![Some(vec![1, 2, 3]), None]);
        assert_eq!(c.len().unwrap(), 1);
    }

    /// A cache with enough entries to span many pages, closed cleanly; returns its bytes.
    fn filled_cache(path: &Path) -> Vec<u8> {
        let c = ScoreCache::open(path).unwrap();
        let items: Vec<(Key, Vec<u8>)> = (0..3000).map(|i| (key("m", &[&i.to_string()]), format!("entry-{i}").into_bytes())).collect();
        c.put_many(&items).unwrap();
        drop(c);
        std::fs::read(path).unwrap()
    }

    #[test]
    fn a_damaged_cache_is_moved_aside_and_a_fresh_one_started() {
        let dir = tempfile::tempdir().unwrap();
        let good = filled_cache(&dir.path().join("good.redb"));
        assert!(good.len() > 64 * 1024, "{} bytes", good.len());
        let all: Vec<Key> = (0..3000).map(|i| key("m", &[&i.to_string()])).collect();
        // Damage where the entries are (found by their value), not in unused space.
        let at = good.windows(8).position(|w| w == b"entry-17").expect("a value in the file");
        let page = at / 4096 * 4096;
        let mut garbage_middle = good.clone();
        garbage_middle[page..page + 4096].iter_mut().for_each(|b| *b = 0xA5);
        let mut garbage_header = good.clone();
        garbage_header[..512].iter_mut().for_each(|b| *b = 0x5A);
        let damaged: Vec<(&str, Vec<u8>)> = vec![
            ("truncated to half", good[..good.len() / 2].to_vec()),
            ("truncated in the header", good[..100].to_vec()),
            ("overwritten in the middle", garbage_middle),
            ("overwritten header", garbage_header),
            ("not a database", b"{\"id\": \"a\", \"output\": \"not a cache\"}\n".repeat(300)),
        ];
        for (i, (what, bytes)) in damaged.into_iter().enumerate() {
            let sub = dir.path().join(format!("case-{i}"));
            std::fs::create_dir(&sub).unwrap();
            let path = sub.join("scores.redb");
            std::fs::write(&path, &bytes).unwrap();
            let c = ScoreCache::open(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
            let Some(rec) = c.recovered().cloned() else {
                // Damage that redb repairs (rolling back to the last good commit) is no damage to
                // candor: the cache must then answer without failing, with what it still has.
                let found = c.get_many(&all).unwrap_or_else(|e| panic!("{what}: repaired, but unreadable: {e}"));
                eprintln!("{what}: repaired by redb, {} of 3000 entries kept", found.iter().flatten().count());
                assert!(found.iter().enumerate().all(|(i, v)| v.as_ref().is_none_or(|v| v == format!("entry-{i}").as_bytes())));
                continue;
            };
            let name = rec.aside.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.starts_with("scores.redb.corrupt-") && rec.aside.parent() == Some(sub.as_path()), "{what}: {}", rec.aside.display());
            // Kept (redb may have written to it while trying to repair it, so not always byte for byte).
            let kept = std::fs::read(&rec.aside).unwrap();
            assert!(kept.len() >= bytes.len().min(100), "{what}: {} bytes kept of {}", kept.len(), bytes.len());
            eprintln!("{what}: moved aside ({}), {}", rec.reason, if kept == bytes { "unchanged" } else { "changed by redb's repair attempt" });
            assert!(c.is_empty().unwrap(), "{what}");
            let k = key("m", &["p", "h"]);
            c.put_many(&[(k, vec![7])]).unwrap();
            assert_eq!(c.get_many(&[k]).unwrap(), vec![Some(vec![7])], "{what}");
            drop(c);
            // The fresh cache opens cleanly next time, and a second damage gets its own name.
            let c = ScoreCache::open(&path).unwrap();
            assert!(c.recovered().is_none(), "{what}");
            drop(c);
            std::fs::write(&path, &bytes).unwrap();
            let again = ScoreCache::open(&path).unwrap();
            let second = &again.recovered().unwrap().aside;
            assert!(second != &rec.aside && second.exists() && rec.aside.exists(), "{what}");
        }
    }
}

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
}

impl std::fmt::Debug for ScoreCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScoreCache").field("path", &self.path).finish()
    }
}

impl ScoreCache {
    /// Opens (or creates) the cache at `path`, creating its folder. Fails if another process has it
    /// open (redb locks the file): callers then run without a cache.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let err = |e: &dyn std::fmt::Display| Error::Cache { path: path.to_path_buf(), reason: e.to_string() };
        let db = Database::create(path).map_err(|e| err(&e))?;
        let txn = db.begin_write().map_err(|e| err(&e))?;
        txn.open_table(TABLE).map_err(|e| err(&e))?;
        txn.commit().map_err(|e| err(&e))?;
        Ok(Self { db, path: path.to_path_buf() })
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
        }
        let c = ScoreCache::open(&path).unwrap();
        assert_eq!(c.get_many(&[k1, k2]).unwrap(), vec![Some(vec![1, 2, 3]), None]);
        assert_eq!(c.len().unwrap(), 1);
    }
}

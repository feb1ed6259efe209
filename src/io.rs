//! Guards on what candor writes, after the project's first rule: lose nothing. No command writes a
//! file that it also reads (or writes twice), and no result line holds a number that JSON cannot carry.
//!
//! Files are written whole or not at all with [`write_atomic`] (or [`write_atomic_with`], for writers
//! that take a path), and folders made of several files are swapped in with renames and
//! [`sync_dir`] (see `train::checkpoint`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::ser::{self, Serialize};

use crate::error::{Error, Result};

/// Fails, before anything is opened for writing, when an output names the same file as an input
/// or as another output, through symlinks, hard links and `..` too. Each entry is (what it is, for
/// the message: "suite", "results", ...; its path).
///
/// Two paths name the same file when both are existing regular files with the same device and
/// inode (on unix) or the same canonical path, or when neither exists yet and their folders resolve
/// to the same folder and their names are equal. An output that does not exist is not any existing
/// input; devices, pipes and terminals (`/dev/stdout`, `/dev/null`) are never refused.
///
/// A results file is read with the summary beside it ([`summary_path`]: the run's manifest and
/// counts, which `gate`, `report` and `compare` read too): where an input has one, it is an input
/// as well (`candor gate r.jsonl --junit r.summary.json` had replaced the run's summary).
pub fn check_outputs(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> Result<()> {
    let summaries: Vec<(String, PathBuf)> = inputs
        .iter()
        .map(|&(r, p)| (format!("{r} summary"), summary_path(p)))
        .filter(|(_, s)| s.is_file() && !inputs.iter().any(|(_, p)| *p == s.as_path()))
        .collect();
    let inputs: Vec<(&str, &Path)> = inputs.iter().copied().chain(summaries.iter().map(|(r, p)| (r.as_str(), p.as_path()))).collect();
    let ins: Vec<(&str, &Path, Option<FileId>)> = inputs.iter().map(|&(r, p)| (r, p, FileId::of(p))).collect();
    let outs: Vec<(&str, &Path, Option<FileId>)> = outputs.iter().map(|&(r, p)| (r, p, FileId::of(p))).collect();
    for (i, (out_role, out, out_id)) in outs.iter().enumerate() {
        let Some(out_id) = out_id else { continue };
        let earlier_outputs = outs[..i].iter();
        for (in_role, input, in_id) in ins.iter().chain(earlier_outputs) {
            if in_id.as_ref().is_some_and(|id| id.same(out_id)) {
                return Err(Error::SameFile {
                    output_role: out_role.to_string(),
                    output: out.to_path_buf(),
                    other_role: in_role.to_string(),
                    other: input.to_path_buf(),
                });
            }
        }
    }
    Ok(())
}

/// The summary file beside a results file: `r.jsonl` -> `r.summary.json`.
pub fn summary_path(results: &Path) -> PathBuf {
    let stem = results.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "results".into());
    results.with_file_name(format!("{stem}.summary.json"))
}

/// What identifies a file for [`check_outputs`].
#[derive(Debug)]
enum FileId {
    /// An existing file: its device and inode (unix) and its canonical path.
    Exists { node: Option<(u64, u64)>, canonical: Option<PathBuf> },
    /// A file not there yet: its folder resolved, joined with its name.
    Planned(PathBuf),
}

impl FileId {
    fn of(path: &Path) -> Option<FileId> {
        match std::fs::metadata(path) {
            // Only regular files can be overwritten: a terminal, pipe or /dev/null may well be
            // read and written by the same command.
            Ok(meta) if !meta.is_file() => None,
            // metadata follows symlinks: a link to the input is the input.
            Ok(meta) => {
                #[cfg(unix)]
                let node = {
                    use std::os::unix::fs::MetadataExt;
                    Some((meta.dev(), meta.ino()))
                };
                #[cfg(not(unix))]
                let node = {
                    let _ = meta;
                    None
                };
                Some(FileId::Exists { node, canonical: std::fs::canonicalize(path).ok() })
            }
            Err(_) => {
                let name = path.file_name()?;
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                Some(FileId::Planned(std::fs::canonicalize(parent).ok()?.join(name)))
            }
        }
    }

    fn same(&self, other: &FileId) -> bool {
        match (self, other) {
            (FileId::Exists { node: a, canonical: ca }, FileId::Exists { node: b, canonical: cb }) => {
                (a.is_some() && a == b) || (ca.is_some() && ca == cb)
            }
            (FileId::Planned(a), FileId::Planned(b)) => a == b,
            _ => false,
        }
    }
}

/// Writes a file whole or not at all: to a temporary file beside it, flushed to disk, renamed over
/// `path`, and the folder flushed so that the rename itself survives a power loss. A crash at any
/// point leaves the old file (or none) or the new one, never part of one; a leftover temporary file
/// is named `.NAME.*.tmp`. The folder is created if it is missing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |tmp| std::fs::write(tmp, bytes).map_err(|e| Error::io(path, e)))
}

/// [`write_atomic`] for a writer that takes a path (a safetensors save): `write` fills the temporary
/// file at the path it is given; when it succeeds, the file is flushed to disk and renamed over
/// `path`. When it fails, `path` is untouched and the temporary file removed.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    write(tmp.path())?;
    sync_file(tmp.path())?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    sync_dir(dir)
}

/// Flushes a file's contents to disk.
pub fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| Error::io(path, e))
}

/// Flushes a folder's entries (names created, renamed or removed in it) to disk, so that a rename
/// survives a power loss. A no-op where folders cannot be opened (Windows).
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(|e| Error::io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The folder a path is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Removes `path` if it is there (a file derived from others, such as a summary, that would
/// otherwise outlive what it describes); a file that is not there is fine.
pub fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// A number that is not finite, and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct NonFinite {
    /// The path of the field: `metrics.support.claims[2].score`.
    pub field: String,
    /// The value (NaN or ±infinity).
    pub value: f64,
    /// The `text` field of the innermost object around it that has one (a claim, a sentence).
    pub text: Option<String>,
}

/// The first float in `value`'s serialised form that is NaN or infinite, if any.
pub fn find_non_finite<T: Serialize + ?Sized>(value: &T) -> Option<NonFinite> {
    let mut walker = Walker { path: Vec::new(), frames: Vec::new() };
    match value.serialize(&mut walker) {
        Err(Stop::Found(f)) => Some(f),
        // A value that cannot be serialised at all fails where it is written, with its own message.
        Ok(()) | Err(Stop::Custom(_)) => None,
    }
}

/// Walks a value's serialised form, keeping the path to the current value and, for each enclosing
/// object or list, how many path segments it added and its `text` field if it has one.
struct Walker {
    path: Vec<Seg>,
    frames: Vec<Frame>,
}

enum Seg {
    Key(String),
    Index(usize),
}

struct Frame {
    /// Path segments this object or list pushed, popped when it ends.
    pushed: usize,
    /// Its `text` field, once seen.
    text: Option<String>,
}

#[derive(Debug)]
enum Stop {
    Found(NonFinite),
    Custom(String),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Found(n) => write!(f, "{} is {}", n.field, n.value),
            Stop::Custom(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Stop::Custom(msg.to_string())
    }
}

type Done = std::result::Result<(), Stop>;

impl Walker {
    fn float(&mut self, v: f64) -> Done {
        if v.is_finite() {
            return Ok(());
        }
        let mut field = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(k) if field.is_empty() => field.push_str(k),
                Seg::Key(k) => {
                    field.push('.');
                    field.push_str(k);
                }
                Seg::Index(i) => field.push_str(&format!("[{i}]")),
            }
        }
        let text = self.frames.iter().rev().find_map(|f| f.text.clone());
        Err(Stop::Found(NonFinite { field, value: v, text }))
    }

    /// A named field (or map entry) of the current object.
    fn field<T: Serialize + ?Sized>(&mut self, name: String, value: &T) -> Done {
        if name == "text" {
            if let Ok(serde_json::Value::String(s)) = serde_json::to_value(value) {
                if let Some(frame) = self.frames.last_mut() {
                    frame.text = Some(s);
                }
            }
        }
        self.path.push(Seg::Key(name));
        let r = value.serialize(&mut *self);
        self.path.pop();
        r
    }

    /// The next element of the current list.
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(&mut *self)?;
        if let Some(Seg::Index(i)) = self.path.last_mut() {
            *i += 1;
        }
        Ok(())
    }

    fn open(&mut self, segs: Vec<Seg>) {
        self.frames.push(Frame { pushed: segs.len(), text: None });
        self.path.extend(segs);
    }

    fn close(&mut self) -> Done {
        if let Some(frame) = self.frames.pop() {
            let keep = self.path.len().saturating_sub(frame.pushed);
            self.path.truncate(keep);
        }
        Ok(())
    }
}

/// A map key as text, for the path.
fn key_name<T: Serialize + ?Sized>(key: &T) -> String {
    match serde_json::to_value(key) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

impl ser::Serializer for &mut Walker {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_f32(self, v: f32) -> Done {
        self.float(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Done {
        self.float(v)
    }
    fn serialize_bool(self, _: bool) -> Done {
        Ok(())
    }
    fn serialize_i8(self, _: i8) -> Done {
        Ok(())
    }
    fn serialize_i16(self, _: i16) -> Done {
        Ok(())
    }
    fn serialize_i32(self, _: i32) -> Done {
        Ok(())
    }
    fn serialize_i64(self, _: i64) -> Done {
        Ok(())
    }
    fn serialize_u8(self, _: u8) -> Done {
        Ok(())
    }
    fn serialize_u16(self, _: u16) -> Done {
        Ok(())
    }
    fn serialize_u32(self, _: u32) -> Done {
        Ok(())
    }
    fn serialize_u64(self, _: u64) -> Done {
        Ok(())
    }
    fn serialize_char(self, _: char) -> Done {
        Ok(())
    }
    fn serialize_str(self, _: &str) -> Done {
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Done {
        Ok(())
    }
    fn serialize_none(self) -> Done {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Done {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Done {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(self, _: &'static str, _: u32, variant: &'static str, value: &T) -> Done {
        self.field(variant.to_string(), value)
    }
    fn serialize_seq(self, _: Option<usize>) -> std::result::Result<Self, Stop> {
        self.open(vec![Seg::Index(0)]);
        Ok(self)
    }
    fn serialize_tuple(self, len: usize) -> std::result::Result<Self, Stop> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> std::result::Result<Self, Stop> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, variant: &'static str, _: usize) -> std::result::Result<Self, Stop> {
        self.open(vec![Seg::Key(variant.to_string()), Seg::Index(0)]);
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> std::result::Result<Self, Stop> {
        self.open(vec![]);
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> std::result::Result<Self, Stop> {
        self.open(vec![]);
        Ok(self)
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, variant: &'static str, _: usize) -> std::result::Result<Self, Stop> {
        self.open(vec![Seg::Key(variant.to_string())]);
        Ok(self)
    }
}

impl ser::SerializeSeq for &mut Walker {
    type Ok = ();
    type Error = Stop;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        self.element(value)
    }
    fn end(self) -> Done {
        self.close()
    }
}

impl ser::SerializeTuple for &mut Walker {
    type Ok = ();
    type Error = Stop;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        self.element(value)
    }
    fn end(self) -> Done {
        self.close()
    }
}

impl ser::SerializeTupleStruct for &mut Walker {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        self.element(value)
    }
    fn end(self) -> Done {
        self.close()
    }
}

impl ser::SerializeTupleVariant for &mut Walker {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        self.element(value)
    }
    fn end(self) -> Done {
        self.close()
    }
}

impl ser::SerializeMap for &mut Walker {
    type Ok = ();
    type Error = Stop;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Done {
        // The value comes next: its path segment stays until then.
        self.path.push(Seg::Key(key_name(key)));
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        let name = match self.path.pop() {
            Some(Seg::Key(k)) => k,
            _ => "?".into(),
        };
        self.field(name, value)
    }
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(&mut self, key: &K, value: &V) -> Done {
        self.field(key_name(key), value)
    }
    fn end(self) -> Done {
        self.close()
    }
}

impl ser::SerializeStruct for &mut Walker {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Done {
        self.field(key.to_string(), value)
    }
    fn end(self) -> Done {
        self.close()
    }
}

impl ser::SerializeStructVariant for &mut Walker {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Done {
        self.field(key.to_string(), value)
    }
    fn end(self) -> Done {
        self.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> String {
        match check_outputs(inputs, outputs) {
            Err(e @ Error::SameFile { .. }) => e.to_string(),
            other => panic!("{inputs:?} -> {outputs:?}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn an_output_that_is_an_input_is_refused_through_links_and_dots() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let suite = d.join("s.jsonl");
        std::fs::write(&suite, "{}\n").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();

        let e = refused(&[("suite", &suite)], &[("results", &suite)]);
        assert!(e.contains("results") && e.contains("suite") && e.matches("s.jsonl").count() == 2, "{e}");
        // Another spelling of the same path.
        refused(&[("suite", &suite)], &[("results", &d.join("sub/../s.jsonl"))]);
        #[cfg(unix)]
        {
            let link = d.join("link.jsonl");
            std::os::unix::fs::symlink(&suite, &link).unwrap();
            let e = refused(&[("suite", &suite)], &[("results", &link)]);
            assert!(e.contains("link.jsonl") && e.contains("s.jsonl"), "{e}");
            refused(&[("suite", &link)], &[("results", &suite)]);
            // A link to the folder.
            std::os::unix::fs::symlink(d, d.join("sub/up")).unwrap();
            refused(&[("suite", &suite)], &[("results", &d.join("sub/up/s.jsonl"))]);
            // A hard link.
            let hard = d.join("hard.jsonl");
            std::fs::hard_link(&suite, &hard).unwrap();
            refused(&[("suite", &suite)], &[("results", &hard)]);
        }
        // The summary beside a results file read is read too: a JUnit file written over it is
        // refused (only where that summary is there).
        let (results, summary) = (d.join("r.jsonl"), d.join("r.summary.json"));
        std::fs::write(&results, "{}\n").unwrap();
        check_outputs(&[("results", &results)], &[("JUnit XML", &summary)]).unwrap();
        std::fs::write(&summary, "{}").unwrap();
        refused(&[("results", &results)], &[("JUnit XML", &summary)]);
        assert_eq!(std::fs::read_to_string(&summary).unwrap(), "{}");
        // Two outputs on one file, existing or not.
        let planned = d.join("new.jsonl");
        refused(&[], &[("results", &planned), ("summary", &d.join("sub/../new.jsonl"))]);
        refused(&[("suite", &suite)], &[("results", &d.join("r.jsonl")), ("score cache", &suite)]);
        // Nothing was created or changed.
        assert!(!planned.exists());
        assert_eq!(std::fs::read_to_string(&suite).unwrap(), "{}\n");
    }

    #[test]
    fn distinct_files_devices_and_missing_paths_pass() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (suite, results) = (d.join("s.jsonl"), d.join("r.jsonl"));
        std::fs::write(&suite, "a").unwrap();
        std::fs::write(&results, "a").unwrap();
        check_outputs(&[("suite", &suite)], &[("results", &results), ("summary", &d.join("r.summary.json"))]).unwrap();
        // A file that does not exist yet is not an existing input, even with the same content.
        check_outputs(&[("suite", &suite)], &[("results", &d.join("fresh.jsonl"))]).unwrap();
        // An input that does not exist (reading it fails later, with its own message).
        check_outputs(&[("suite", &d.join("missing.jsonl"))], &[("results", &results)]).unwrap();
        // A folder that does not exist: nothing to compare (creating the file fails later).
        check_outputs(&[("suite", &suite)], &[("results", &d.join("no/such/dir/r.jsonl"))]).unwrap();
        #[cfg(unix)]
        check_outputs(&[("results", Path::new("/dev/null"))], &[("JUnit XML", Path::new("/dev/null")), ("Markdown", Path::new("/dev/null"))])
            .unwrap();
    }

    #[test]
    fn stale_files_are_removed_and_missing_ones_are_fine() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.summary.json");
        remove_if_present(&p).unwrap();
        std::fs::write(&p, "{}").unwrap();
        remove_if_present(&p).unwrap();
        assert!(!p.exists());
    }

    #[derive(serde::Serialize)]
    struct Claim {
        text: String,
        score: f32,
    }

    #[derive(serde::Serialize)]
    enum Kind {
        Pair(f32, f64),
        Named { x: f64 },
    }

    #[derive(serde::Serialize)]
    struct Doc {
        name: String,
        claims: Vec<Claim>,
        by_name: std::collections::BTreeMap<String, f32>,
        kind: Option<Kind>,
        nothing: Option<f32>,
    }

    fn doc() -> Doc {
        Doc {
            name: "d".into(),
            claims: vec![Claim { text: "first".into(), score: 0.5 }, Claim { text: "second".into(), score: 0.25 }],
            by_name: [("a".to_string(), 1.0)].into_iter().collect(),
            kind: Some(Kind::Named { x: 2.0 }),
            nothing: None,
        }
    }

    #[test]
    fn non_finite_numbers_are_found_with_their_field_and_text() {
        assert_eq!(find_non_finite(&doc()), None);
        let mut d = doc();
        d.claims[1].score = f32::NAN;
        let f = find_non_finite(&d).unwrap();
        assert_eq!((f.field.as_str(), f.text.as_deref()), ("claims[1].score", Some("second")));
        assert!(f.value.is_nan());
        let mut d = doc();
        d.by_name.insert("b".into(), f32::INFINITY);
        let f = find_non_finite(&d).unwrap();
        assert_eq!((f.field.as_str(), f.value, f.text), ("by_name.b", f64::INFINITY, None));
        let mut d = doc();
        d.kind = Some(Kind::Pair(1.0, f64::NEG_INFINITY));
        assert_eq!(find_non_finite(&d).unwrap().field, "kind.Pair[1]");
        let mut d = doc();
        d.kind = Some(Kind::Named { x: f64::NAN });
        assert_eq!(find_non_finite(&d).unwrap().field, "kind.Named.x");
        // serde_json writes such a number as null: the reason for the check.
        let mut d = doc();
        d.claims[0].score = f32::NAN;
        assert!(serde_json::to_string(&d).unwrap().contains("\"score\":null"));
    }

    #[test]
    fn write_atomic_replaces_whole_or_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        write_atomic(&path, b"one").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        write_atomic(&path, b"two, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two, longer");
        // A writer that fails half-way: the old file stands and no temporary file is left.
        let err = write_atomic_with(&path, |tmp| {
            std::fs::write(tmp, b"half").unwrap();
            Err(Error::Input { location: "test".into(), reason: "disk full".into() })
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"two, longer");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }
}

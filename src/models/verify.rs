//! Verification of model files: sha256 and size against the registry, and refusal of pickle checkpoints.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::models::registry::{FileSpec, ModelEntry};

/// File extensions of pickle-based checkpoints, which can run code when loaded.
const PICKLE_EXTENSIONS: [&str; 5] = ["bin", "pt", "pth", "pkl", "ckpt"];

/// Refuses a path that names a pickle checkpoint (`.bin`, `.pt`, `.pth`, `.pkl`, `.ckpt`).
pub fn refuse_pickle(path: &Path) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext {
        Some(e) if PICKLE_EXTENSIONS.contains(&e.as_str()) => {
            Err(Error::PickleRefused { path: path.to_path_buf() })
        }
        _ => Ok(()),
    }
}

/// The lower-case hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Verifies one file of `model` inside `dir`: present, not a pickle, of the recorded size, and with the
/// expected sha256 (`expected` overrides the registry's, for hashes recorded on first download).
/// Returns the file's sha256.
pub fn verify_file(model: &str, dir: &Path, spec: &FileSpec, expected: Option<&str>) -> Result<String> {
    let path = dir.join(&spec.path);
    refuse_pickle(&path)?;
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::MissingFile { model: model.to_string(), path })
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    if let Some(size) = spec.size {
        if meta.len() != size {
            return Err(Error::SizeMismatch { model: model.to_string(), path, expected: size, actual: meta.len() });
        }
    }
    let actual = sha256_file(&path)?;
    if let Some(want) = expected.or(spec.sha256.as_deref()) {
        if actual != want {
            return Err(Error::ChecksumMismatch {
                model: model.to_string(),
                path,
                expected: want.to_string(),
                actual,
            });
        }
    }
    Ok(actual)
}

/// Verifies every file of `entry` in `dir` against the registry (and, for files the registry does not
/// pin, against the hashes recorded on first download in `recorded`). Returns each file's sha256.
pub fn verify_model(
    entry: &ModelEntry,
    dir: &Path,
    recorded: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(String, String)>> {
    entry
        .files
        .iter()
        .map(|spec| {
            let expected = spec.sha256.as_deref().or(recorded.get(&spec.path).map(String::as_str));
            verify_file(&entry.name, dir, spec, expected).map(|h| (spec.path.clone(), h))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str, data: &[u8]) -> FileSpec {
        FileSpec {
            path: path.into(),
            sha256: Some(hex::encode(Sha256::digest(data))),
            size: Some(data.len() as u64),
            hf: None,
            revision: None,
            from: None,
        }
    }

    #[test]
    fn each_failure_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.safetensors"), b"hello world").unwrap();
        let good = spec("w.safetensors", b"hello world");
        assert!(verify_file("m", dir.path(), &good, None).is_ok());

        let truncated = spec("w.safetensors", b"hello world!!");
        assert!(matches!(verify_file("m", dir.path(), &truncated, None), Err(Error::SizeMismatch { .. })));

        let corrupt = spec("w.safetensors", b"hello wor1d");
        let e = verify_file("m", dir.path(), &corrupt, None).unwrap_err();
        assert!(matches!(e, Error::ChecksumMismatch { .. }));
        assert!(e.to_string().contains("w.safetensors"), "{e}");

        let missing = spec("x.safetensors", b"");
        assert!(matches!(verify_file("m", dir.path(), &missing, None), Err(Error::MissingFile { .. })));

        let pickle = spec("pytorch_model.bin", b"");
        assert!(matches!(verify_file("m", dir.path(), &pickle, None), Err(Error::PickleRefused { .. })));
        assert!(refuse_pickle(Path::new("a/model.PT")).is_err());
        assert!(refuse_pickle(Path::new("a/model.safetensors")).is_ok());
    }
}

//! The default NLI model, `candor-nli-minilm-6`, compiled into the binary (cargo feature
//! `bundled-model`, on by default; 45 MB), so that an installed binary grades with no checkout, no
//! network and no `candor models fetch`.
//!
//! The bytes are never loaded from the binary itself: when the model is found nowhere on disk
//! ([`crate::models::store`]'s resolution order), [`crate::models::ModelStore`] writes them into its
//! cache folder, each file atomically, verifies every file against the registry's sha256, and from
//! then on uses the cache like any other model. Builds without the feature (the CUDA build, whose
//! binary must stay small) carry nothing and find the model through the registry's `path` source.

use crate::models::registry::ModelEntry;

/// The name of the model this binary may carry.
pub const NAME: &str = "candor-nli-minilm-6";

/// One bundled file: its path in the model folder and its bytes.
pub type BundledFile = (&'static str, &'static [u8]);

#[cfg(feature = "bundled-model")]
const FILES: &[BundledFile] = &[
    ("config.json", include_bytes!("../../models/candor-nli-minilm-6/config.json")),
    ("tokenizer.json", include_bytes!("../../models/candor-nli-minilm-6/tokenizer.json")),
    ("model.safetensors", include_bytes!("../../models/candor-nli-minilm-6/model.safetensors")),
];

#[cfg(not(feature = "bundled-model"))]
const FILES: &[BundledFile] = &[];

/// Whether this binary carries the bundled model.
pub fn available() -> bool {
    !FILES.is_empty()
}

/// The bundled files for `entry`, when this binary carries them and they are the files `entry`
/// describes: the same name, the same file paths, each of the recorded size and pinned by a sha256
/// (checked after the files are written). A registry that gives the name to other files gets none.
pub fn files_for(entry: &ModelEntry) -> Option<&'static [BundledFile]> {
    if !available() || entry.name != NAME || entry.files.len() != FILES.len() {
        return None;
    }
    let same = entry.files.iter().all(|spec| {
        spec.sha256.is_some()
            && FILES.iter().any(|(path, bytes)| *path == spec.path && spec.size.is_none_or(|s| s == bytes.len() as u64))
    });
    same.then_some(FILES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Registry;
    use sha2::{Digest, Sha256};

    #[test]
    fn the_bundled_files_are_the_registry_s_default_nli_model() {
        let r = Registry::builtin().unwrap();
        let entry = r.get(NAME).unwrap();
        assert!(entry.default, "the bundled model is the default NLI model");
        if !available() {
            assert!(files_for(entry).is_none());
            return;
        }
        let files = files_for(entry).expect("the built-in entry takes the bundled files");
        for spec in &entry.files {
            let (_, bytes) = files.iter().find(|(p, _)| *p == spec.path).unwrap();
            assert_eq!(Some(bytes.len() as u64), spec.size, "{}", spec.path);
            assert_eq!(Some(hex::encode(Sha256::digest(bytes))), spec.sha256, "{}", spec.path);
        }
    }

    #[test]
    fn another_model_or_other_files_get_none() {
        let r = Registry::builtin().unwrap();
        let other = r.get("all-minilm-l6-v2").unwrap();
        assert!(files_for(other).is_none());
        let mut renamed_files = r.get(NAME).unwrap().clone();
        renamed_files.files[2].path = "other.safetensors".into();
        assert!(files_for(&renamed_files).is_none());
        let mut resized = r.get(NAME).unwrap().clone();
        resized.files[2].size = Some(1);
        assert!(files_for(&resized).is_none());
        let mut unpinned = r.get(NAME).unwrap().clone();
        unpinned.files[0].sha256 = None;
        assert!(files_for(&unpinned).is_none());
        let mut fewer = r.get(NAME).unwrap().clone();
        fewer.files.pop();
        assert!(files_for(&fewer).is_none());
    }
}

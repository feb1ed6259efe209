//! Replays the fuzzers' committed corpus (fuzz/corpus/<target>/) through the same property checks the
//! fuzz targets run, so that every input a fuzzer ever kept, or a crash it found and we fixed, stays a
//! regression test on stable Rust, without libFuzzer.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("a directory entry").path();
            let data = std::fs::read(&path).expect("a corpus file");
            (path, data)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{}: the corpus is missing ({} files)", dir.display(), files.len());
    files
}

fn replay(target: &str, check: impl Fn(&[u8])) {
    for (path, data) in corpus(target) {
        if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data))) {
            let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
            panic!("{}: {}", path.display(), msg.unwrap_or_default());
        }
    }
}

#[test]
fn suite_reader_corpus() {
    replay("suite_reader", checks::suite_reader);
}

#[test]
fn sentences_corpus() {
    replay("sentences", |d| {
        if let Ok(t) = std::str::from_utf8(d) {
            checks::sentences(t)
        }
    });
}

#[test]
fn citations_corpus() {
    replay("citations", |d| {
        if let Ok(t) = std::str::from_utf8(d) {
            checks::citations(t)
        }
    });
}

#[test]
fn chunker_corpus() {
    let tokenizer = checks::tokenizer();
    replay("chunker", |d| checks::chunker(&tokenizer, d));
}

//! An installed binary finds its default models: `cargo install --path .` copies the binary away from
//! the checkout, which may then be gone. These tests run a copy of the binary from a folder of its
//! own, in an empty working directory, with every model location (CANDOR_MODELS, CANDOR_CACHE, the
//! Hugging Face cache) empty, and check that it grades with the default NLI model, which it carries
//! (feature `bundled-model`) and installs, verified, into the cache. They also check that no
//! non-test code of src/ reads `CARGO_MANIFEST_DIR`, the folder the crate was compiled in.

mod source;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[cfg(feature = "bundled-model")]
use sha2::{Digest, Sha256};
use candor::models::bundled::NAME;

/// A copy of the built binary in a fresh folder (a hard link where the file system allows one: the
/// binary sees only the path it was started by, so the two are the same to it).
fn binary_away_from_the_checkout(dir: &Path) -> PathBuf {
    let built = Path::new(env!("CARGO_BIN_EXE_candor"));
    let copy = dir.join("candor");
    if std::fs::hard_link(built, &copy).is_err() {
        std::fs::copy(built, &copy).unwrap_or_else(|e| panic!("copying {}: {e}", built.display()));
    }
    copy
}

struct Sandbox {
    _root: tempfile::TempDir,
    bin: PathBuf,
    cwd: PathBuf,
    cache: PathBuf,
    models: PathBuf,
    hf: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let dir = |name: &str| {
            let d = root.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            d
        };
        let bin = binary_away_from_the_checkout(&dir("bin"));
        let (cwd, cache, models, hf) = (dir("work"), dir("cache"), dir("models"), dir("hf"));
        Self { bin, cwd, cache, models, hf, _root: root }
    }

    fn candor(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .current_dir(&self.cwd)
            .env("CANDOR_CACHE", &self.cache)
            .env("CANDOR_MODELS", &self.models)
            .env("HF_HOME", &self.hf)
            .env("HF_HUB_CACHE", self.hf.join("hub"))
            .env_remove("CANDOR_REGISTRY")
            .env("CANDOR_PYTHON", "/nonexistent/python")
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.bin.display()))
    }

    fn write_suite(&self) -> PathBuf {
        let suite = self.cwd.join("suite.jsonl");
        let cases = [
            r#"{"id": "refund-ok", "input": "Can I get a refund?", "output": "Refunds are accepted within 30 days of purchase.", "contexts": [{"id": "1", "text": "Refund policy: refunds are accepted within 30 days of purchase."}]}"#,
            r#"{"id": "refund-wrong", "input": "Can I get a refund?", "output": "Refunds are accepted within 90 days of purchase.", "contexts": [{"id": "1", "text": "Refund policy: refunds are accepted within 30 days of purchase."}]}"#,
            r#"{"id": "paris", "input": "What is the capital of France?", "output": "The capital of France is Paris.", "contexts": [{"id": "a", "text": "Paris is the capital and largest city of France."}]}"#,
        ];
        std::fs::write(&suite, cases.join("\n") + "\n").unwrap();
        suite
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(feature = "bundled-model")]
#[test]
fn an_installed_binary_grades_with_the_bundled_model_and_installs_it_verified_into_the_cache() {
    let sb = Sandbox::new();
    let suite = sb.write_suite();
    let grade = |out: &str| sb.candor(&["grade", suite.to_str().unwrap(), "-o", out, "--metrics", "support", "--no-cache", "-q"]);

    let first = grade("results.jsonl");
    let stderr = text(&first.stderr);
    assert!(first.status.success(), "exit {:?}\nstderr:\n{stderr}", first.status.code());
    let installed_dir = sb.cache.join("models").join(NAME);
    let notice = format!("installed the bundled model {NAME} into {}", installed_dir.display());
    assert_eq!(stderr.matches(&notice).count(), 1, "stderr:\n{stderr}");

    // One result per case, in suite order, each graded by support.
    let results = std::fs::read_to_string(sb.cwd.join("results.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = results.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap_or("")).collect();
    assert_eq!(ids, ["refund-ok", "refund-wrong", "paris"], "{results}");
    let score = |r: &serde_json::Value| r["metrics"]["support"]["score"].as_f64();
    for r in &rows {
        assert!(score(r).is_some_and(|s| (0.0..=1.0).contains(&s)), "support did not score: {r}");
    }
    assert!(score(&rows[0]) > score(&rows[1]), "30 days is supported, 90 days is not: {results}");

    // The model's files are in the cache, each with the registry's sha256, and nothing else is.
    let registry = candor::models::Registry::builtin().unwrap();
    let entry = registry.get(NAME).unwrap();
    for spec in &entry.files {
        let bytes = std::fs::read(installed_dir.join(&spec.path)).unwrap_or_else(|e| panic!("{}: {e}", spec.path));
        assert_eq!(Some(hex::encode(Sha256::digest(&bytes))), spec.sha256, "{}", spec.path);
    }
    assert_eq!(std::fs::read_dir(&installed_dir).unwrap().count(), entry.files.len());
    assert_eq!(std::fs::read_dir(&sb.models).unwrap().count(), 0, "CANDOR_MODELS is only read");

    // The next run uses the cache and says nothing about installing.
    let second = grade("again.jsonl");
    assert!(second.status.success(), "stderr:\n{}", text(&second.stderr));
    assert!(!text(&second.stderr).contains("installed the bundled model"), "{}", text(&second.stderr));
    let again = std::fs::read_to_string(sb.cwd.join("again.jsonl")).unwrap();
    assert_eq!(again.lines().count(), 3);

    // `models list` says where it is now.
    let list = sb.candor(&["models", "list"]);
    let line = text(&list.stdout).lines().find(|l| l.starts_with(NAME)).map(str::to_string);
    assert!(line.as_deref().is_some_and(|l| l.contains(" cache ")), "{line:?}");
}

#[cfg(feature = "bundled-model")]
#[test]
fn models_list_and_fetch_offer_the_bundled_model_without_the_network() {
    let sb = Sandbox::new();
    let list = sb.candor(&["models", "list"]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let line = text(&list.stdout).lines().find(|l| l.starts_with(NAME)).map(str::to_string);
    assert!(line.as_deref().is_some_and(|l| l.contains(" bundled ")), "{line:?}");
    // No Python for pip, no network: the bundle is enough for `models fetch`.
    let fetch = sb.candor(&["models", "fetch", NAME]);
    assert!(fetch.status.success(), "{}", text(&fetch.stderr));
    assert!(text(&fetch.stdout).contains("(cache, verified)"), "{}", text(&fetch.stdout));
    let verify = sb.candor(&["models", "verify", NAME]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
}

#[cfg(not(feature = "bundled-model"))]
#[test]
fn without_the_bundle_a_binary_away_from_the_checkout_says_where_it_looked() {
    let sb = Sandbox::new();
    let suite = sb.write_suite();
    let out = sb.candor(&["grade", suite.to_str().unwrap(), "-o", "results.jsonl", "--metrics", "support", "--no-cache", "-q"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(NAME) && stderr.contains(&sb.cache.display().to_string()), "{stderr}");
}

/// Byte ranges of the items under `#[cfg(test)]` in masked code (comments and string insides blanked):
/// from the attribute to the `;` or the brace that closes the item.
fn test_regions(masked: &str) -> Vec<(usize, usize)> {
    let mut regions = vec![];
    for (at, attr) in masked.match_indices("#[cfg(test)]") {
        let from = at + attr.len();
        let rest = &masked[from..];
        let semi = rest.find(';');
        let end = match rest.find('{') {
            Some(open) if semi.is_none_or(|s| open < s) => {
                let mut depth = 0usize;
                let mut close = masked.len();
                for (k, c) in rest[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                close = from + open + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                close
            }
            _ => semi.map_or(masked.len(), |s| from + s + 1),
        };
        regions.push((at, end));
    }
    regions
}

/// Where a file's code (not its comments, not its `#[cfg(test)]` items) names `CARGO_MANIFEST_DIR`.
fn manifest_dir_uses(text: &str) -> Vec<usize> {
    let code = source::mask(text, false);
    let regions = test_regions(&source::mask(text, true));
    code.match_indices("CARGO_MANIFEST_DIR")
        .map(|(at, _)| at)
        .filter(|at| !regions.iter().any(|(a, b)| a <= at && at < b))
        .map(|at| text[..at].matches('\n').count() + 1)
        .collect()
}

#[test]
fn no_code_of_src_depends_on_the_folder_it_was_compiled_in() {
    let files = source::rust_files(&source::src());
    assert!(files.len() > 20, "{} files", files.len());
    let mut bad = vec![];
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for line in manifest_dir_uses(&text) {
            bad.push(format!("{}:{line}", f.display()));
        }
    }
    assert!(bad.is_empty(), "CARGO_MANIFEST_DIR outside #[cfg(test)] code (an installed binary has no checkout):\n{}", bad.join("\n"));
}

#[test]
fn the_manifest_dir_check_finds_what_it_must() {
    let outside = "fn f() { let p = env!(\"CARGO_MANIFEST_DIR\"); }\n";
    assert_eq!(manifest_dir_uses(outside), [1]);
    let in_tests = "fn f() {}\n#[cfg(test)]\nmod tests {\n    fn g() { let s = \"}\"; env!(\"CARGO_MANIFEST_DIR\"); }\n}\n";
    assert!(manifest_dir_uses(in_tests).is_empty());
    let after_tests = format!("{in_tests}fn h() {{ env!(\"CARGO_MANIFEST_DIR\"); }}\n");
    assert_eq!(manifest_dir_uses(&after_tests), [6]);
    let test_fn = "#[cfg(test)]\nfn base() -> &'static str { env!(\"CARGO_MANIFEST_DIR\") }\nconst X: &str = env!(\"CARGO_MANIFEST_DIR\");\n";
    assert_eq!(manifest_dir_uses(test_fn), [3]);
    let commented = "// env!(\"CARGO_MANIFEST_DIR\")\n/// see CARGO_MANIFEST_DIR\nfn f() {}\n";
    assert!(manifest_dir_uses(commented).is_empty());
}

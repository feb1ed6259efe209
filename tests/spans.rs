//! `candor grade --nli` with a token classifier (LettuceDetect's architecture): support graded from
//! per-token hallucination probabilities, the spans in the results, citations still graded by the
//! pair model. The tagger is a tiny random-weight ModernBERT over BERT's vocabulary
//! (tests/fixtures/modernbert-tagger, scripts/make_parity_fixtures.py), read with
//! models/candor-nli-minilm's tokenizer: its verdicts mean nothing, so the test checks what must
//! hold whatever they are.

mod common;

use std::path::Path;

fn chars(s: &str, a: usize, b: usize) -> String {
    s.chars().skip(a).take(b - a).collect()
}

/// A registry in `dir` with the pair model (models/candor-nli-minilm, the default) and the tiny
/// span tagger `tiny-tagger` (window 512 tokens).
fn tagger_registry(dir: &Path) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tagger = dir.join("tagger");
    std::fs::create_dir(&tagger).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(root.join("tests/fixtures/modernbert-tagger").join(f), tagger.join(f)).unwrap();
    }
    std::fs::copy(root.join("models/candor-nli-minilm/tokenizer.json"), tagger.join("tokenizer.json")).unwrap();
    let files = r#"files = [{ path = "config.json" }, { path = "tokenizer.json" }, { path = "model.safetensors" }]"#;
    let registry = dir.join("models.toml");
    std::fs::write(
        &registry,
        format!(
            r#"[[model]]
name = "pairs"
role = "nli"
architecture = "bert"
default = true
description = "the pair model"
license = "Apache-2.0"
max_tokens = 256
labels = ["entailment", "neutral", "contradiction"]
{files}
[[model.source]]
path = "{pairs}"

[[model]]
name = "tiny-tagger"
role = "nli"
architecture = "modernbert"
description = "a random span tagger"
license = "MIT"
max_tokens = 512
labels = ["entailment", "not_entailment"]
claim_threshold = 0.5
{files}
[[model.source]]
path = "{tagger}"
"#,
            pairs = root.join("models/candor-nli-minilm").display(),
            tagger = tagger.display()
        ),
    )
    .unwrap();
    registry
}

/// `candor grade` with the tiny tagger, in `dir` with a cache of its own (the hashes of path models
/// are recorded on first use, per name).
fn grade(dir: &Path, suite: &Path, out: &Path) -> std::process::Output {
    let registry = tagger_registry(dir);
    common::candor_command(&[
        "grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--registry", registry.to_str().unwrap(),
        "--nli", "tiny-tagger", "--metrics", "support,citation",
    ])
    .env("CANDOR_CACHE", dir.join("cache"))
    .output()
    .unwrap()
}

#[test]
fn a_token_classifier_grades_support_and_marks_spans() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.jsonl");
    let suite = root.join("examples/suite.jsonl");
    let o = grade(dir.path(), &suite, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code().is_some_and(|c| c <= 1), "{stderr}");
    assert!(stderr.contains("marks hallucinated spans"), "{stderr}");
    let outputs: std::collections::HashMap<String, String> = common::read_jsonl(&suite)
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_string(), c["output"].as_str().unwrap_or_default().to_string()))
        .collect();
    let (mut spans, mut supported, mut unsupported, mut citations) = (0, 0, 0, 0);
    for r in common::read_jsonl(&out) {
        assert!(r["model"]["spans"].as_str().unwrap().starts_with("tiny-tagger@"), "{r}");
        assert!(r["model"]["nli"].as_str().unwrap().starts_with("pairs@"), "{r}");
        if r["metrics"]["citation"]["score"].is_number() {
            citations += 1;
        }
        let support = &r["metrics"]["support"];
        let Some(claims) = support["claims"].as_array() else { continue };
        let output = &outputs[r["id"].as_str().unwrap()];
        let found = support["spans"].as_array().cloned().unwrap_or_default();
        for s in &found {
            let (a, b) = (s["span"][0].as_u64().unwrap() as usize, s["span"][1].as_u64().unwrap() as usize);
            assert!(a < b && s["confidence"].as_f64().unwrap() >= 0.5, "{s}");
            assert_eq!(chars(output, a, b), s["text"].as_str().unwrap(), "a span's text is the output's at its place");
        }
        spans += found.len();
        for c in claims {
            let (a, b) = (c["span"][0].as_u64().unwrap(), c["span"][1].as_u64().unwrap());
            let hit = found.iter().any(|s| s["span"][0].as_u64().unwrap() < b && s["span"][1].as_u64().unwrap() > a);
            let score = c["score"].as_f64().unwrap();
            // A claim that holds a hallucinated token is unsupported, one that holds none supported.
            if hit {
                assert!(score <= 0.5 && c["label"] == "unsupported", "{c}");
                unsupported += 1;
            } else {
                assert!(score > 0.5 && c["label"] == "supported", "{c}");
                supported += 1;
            }
            assert!(c["evidence"].is_null());
        }
        // The case passes support only without spans outside its supported claims.
        if support["passed"] == true {
            assert!(claims.iter().all(|c| c["label"] == "supported"), "{r}");
        }
    }
    assert!(spans > 0 && supported > 0 && unsupported > 0, "spans {spans}, supported {supported}, unsupported {unsupported}");
    assert!(citations > 0, "citations are still graded, by the pair model");
    // The HTML report marks the spans inside the failing claims it lists.
    let o = common::candor(&["report", out.to_str().unwrap(), "--format", "html"]);
    let html = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && html.contains("<mark class=span>"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// An output longer than the tagger's window cannot be read whole: its support is skipped and the
/// case fails as `truncated_input`, and the run goes on with the other cases (it stopped the whole
/// run before).
#[test]
fn an_output_longer_than_the_window_fails_its_case_not_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("s.jsonl");
    let long = (0..120).map(|i| format!("The museum has {i} paintings.")).collect::<Vec<_>>().join(" ");
    let lines = [
        serde_json::json!({"id": "long", "input": "How many paintings?", "output": long, "contexts": ["The museum has 40 paintings."]}),
        serde_json::json!({"id": "short", "input": "How many paintings?", "output": "The museum has 40 paintings.", "contexts": ["The museum has 40 paintings."]}),
    ];
    std::fs::write(&suite, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let out = dir.path().join("r.jsonl");
    let o = grade(dir.path(), &suite, &out);
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&o.stderr));
    let results = common::read_jsonl(&out);
    assert_eq!(results.len(), 2);
    let long = &results[0];
    assert_eq!(long["metrics"]["support"]["skipped"], "the output does not fit the span tagger's window", "{long}");
    assert!(long["failures"].as_array().unwrap().iter().any(|f| f == "truncated_input") && long["passed"] == false, "{long}");
    assert!(results[1]["metrics"]["support"]["claims"].is_array(), "the short case is graded: {}", results[1]);
}

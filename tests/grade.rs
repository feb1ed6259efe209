//! `candor grade` end to end, through the binary, on the bundled example suite with the default
//! models: result lines in suite order, the failure classes the suite was written to show, skipped
//! metrics, the summary, bad input and resuming after an interruption.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn candor(args: &[&str]) -> Output {
    common::fetched("all-minilm-l6-v2");
    common::candor(args)
}

fn example_suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/suite.jsonl")
}

fn by_id(results: &[Value]) -> HashMap<String, &Value> {
    results.iter().map(|r| (r["id"].as_str().unwrap().to_string(), r)).collect()
}

#[test]
fn grades_the_example_suite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.jsonl");
    let o = candor(&["grade", example_suite().to_str().unwrap(), "-o", out.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let suite = common::read_jsonl(&example_suite());
    let results = common::read_jsonl(&out);
    assert!(suite.len() >= 50);
    let suite_ids: Vec<&str> = suite.iter().map(|c| c["id"].as_str().unwrap()).collect();
    let result_ids: Vec<&str> = results.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(suite_ids, result_ids, "one result per case, in suite order");
    let r = by_id(&results);

    // The empty output fails as such, with every metric skipped rather than scored 0.
    let empty = r["empty-001"];
    assert_eq!(empty["failures"], serde_json::json!(["empty_output"]));
    assert_eq!(empty["metrics"]["support"]["skipped"], "empty output");
    assert_eq!(empty["passed"], false);

    // Every fabricated marker is caught, and only there.
    for (id, res) in &r {
        let fabricated = res["failures"].as_array().unwrap().iter().any(|f| f == "fabricated_citation");
        assert_eq!(fabricated, id.ends_with("-fabricated-cite"), "{id}");
    }
    // Uncited outputs skip the citation metric; cases without samples or reference skip consistency.
    assert_eq!(r["refunds-uncited"]["metrics"]["citation"]["skipped"], "no citations");
    let cons = &r["refunds-uncited"]["metrics"]["consistency"];
    assert!(cons["reference"]["score"].is_number() && cons.get("samples").is_none(), "{cons}");
    assert!(r["refunds-ok"]["metrics"]["consistency"]["samples"]["score"].is_number());

    // Claims carry evidence inside their context, and spans inside the output.
    let case: HashMap<&str, &Value> = suite.iter().map(|c| (c["id"].as_str().unwrap(), c)).collect();
    let mut claims = 0;
    for res in &results {
        let Some(list) = res["metrics"]["support"]["claims"].as_array() else { continue };
        let c = case[res["id"].as_str().unwrap()];
        let output_chars = c["output"].as_str().unwrap().chars().count();
        for claim in list {
            claims += 1;
            let span = claim["span"].as_array().unwrap();
            assert!(span[0].as_u64().unwrap() < span[1].as_u64().unwrap() && span[1].as_u64().unwrap() as usize <= output_chars);
            let ev = &claim["evidence"];
            let ctx = c["contexts"].as_array().unwrap().iter().enumerate().find(|(i, x)| {
                x.get("id").and_then(Value::as_str).map_or((i + 1).to_string(), str::to_string) == ev["context"].as_str().unwrap()
            });
            let (_, ctx) = ctx.expect("evidence names a context of the case");
            let text = ctx.get("text").and_then(Value::as_str).or(ctx.as_str()).unwrap();
            assert!(ev["span"][1].as_u64().unwrap() as usize <= text.chars().count());
            assert!((0.0..=1.0).contains(&claim["score"].as_f64().unwrap()));
        }
    }
    assert!(claims >= 100, "{claims}");

    // The grader ranks the written-correct answers above the contradicted ones of the same topics:
    // ROC-AUC of the mean claim margin P(entailment) - P(contradiction), correct as positives. Measured,
    // not perfect: the default model reads evidence inside multi-sentence passages poorly (its card),
    // so this guards against a broken pipeline (a constant or shuffled scorer sits at 0.5), and the
    // quality figures live in tests/grade_quality.rs on human-labelled data.
    let margin = |id: &str| {
        let claims = r[id]["metrics"]["support"]["claims"].as_array().unwrap();
        claims.iter().map(|c| c["score"].as_f64().unwrap() - c["contradiction"].as_f64().unwrap()).sum::<f64>()
            / claims.len() as f64
    };
    let ok: Vec<&String> = r.keys().filter(|k| k.ends_with("-ok")).collect();
    assert!(ok.len() >= 10);
    let pos: Vec<f64> = ok.iter().map(|k| margin(k)).collect();
    let neg: Vec<f64> = ok.iter().map(|k| margin(&k.replace("-ok", "-contradicted"))).collect();
    let scores: Vec<f64> = pos.iter().chain(&neg).copied().collect();
    let gold: Vec<bool> = pos.iter().map(|_| true).chain(neg.iter().map(|_| false)).collect();
    let auc = candor::stats::roc_auc(&scores, &gold).unwrap();
    println!("example suite: correct vs contradicted, ROC-AUC of the claim margin {auc:.3}");
    assert!(auc > 0.55, "correct answers are not ranked above contradicted ones: ROC-AUC {auc:.3}");

    // The summary sits beside the results and counts every case.
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.summary.json")).unwrap()).unwrap();
    assert_eq!(summary["overall"]["cases"].as_u64().unwrap() as usize, suite.len());
    assert!(summary["segments"]["risk=high"]["cases"].as_u64().unwrap() > 0);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("risk=high") && table.contains("support"), "{table}");
}

#[test]
fn bad_lines_are_named_and_strict_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    std::fs::write(
        &suite,
        "{\"id\": \"a\", \"output\": \"The sky is blue.\", \"contexts\": [\"The sky is blue today.\"]}\n\
         {\"id\": \"b\", \"contexts\": [\"x\"]}\n\
         {\"id\": \"a\", \"output\": \"again\"}\n",
    )
    .unwrap();
    let out = dir.path().join("r.jsonl");
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("line 2: field `output`"), "{err}");
    assert!(err.contains("line 3: field `id`"), "{err}");
    assert_eq!(common::read_jsonl(&out).len(), 1);

    let out2 = dir.path().join("r2.jsonl");
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out2.to_str().unwrap(), "--strict", "-q"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!out2.exists(), "nothing is graded with --strict");
}

#[test]
fn resume_finishes_an_interrupted_run_identically() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.jsonl");
    let args = |out: &Path, extra: &[&str]| {
        let mut a = vec!["grade".to_string(), example_suite().display().to_string(), "-o".into(), out.display().to_string()];
        a.extend(["--metrics", "support,citation", "-q"].iter().map(|s| s.to_string()));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = candor(&refs);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(args(&full, &[]));
    let text = std::fs::read_to_string(&full).unwrap();
    let all: Vec<&str> = text.lines().collect();

    // A crash after 20 cases, mid-line.
    let part = dir.path().join("part.jsonl");
    let torn = format!("{}\n{}", all[..20].join("\n"), &all[20][..all[20].len() / 2]);
    std::fs::write(&part, torn).unwrap();
    run(args(&part, &["--resume"]));
    let resumed = common::read_jsonl(&part);
    let whole = common::read_jsonl(&full);
    assert_eq!(resumed.len(), whole.len());
    // Same cases, same verdicts; scores equal up to float rounding (batches are cut differently).
    for (a, b) in resumed.iter().zip(&whole) {
        assert_eq!(a["id"], b["id"]);
        assert_eq!(a["failures"], b["failures"], "{}", a["id"]);
        assert_eq!(a["passed"], b["passed"], "{}", a["id"]);
        if let (Some(x), Some(y)) = (a["metrics"]["support"]["score"].as_f64(), b["metrics"]["support"]["score"].as_f64()) {
            assert!((x - y).abs() < 1e-4, "{}: {x} vs {y}", a["id"]);
        }
    }
}

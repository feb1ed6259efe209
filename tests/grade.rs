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

/// Grades `cases` (written as a JSON Lines suite) with `metrics`, without the score cache, and
/// returns the results; the run must succeed.
fn grade_cases(cases: &[Value], metrics: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    std::fs::write(&suite, cases.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("\n")).unwrap();
    let out = dir.path().join("out.jsonl");
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", metrics, "-q", "--no-cache"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    common::read_jsonl(&out)
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
    // Samples fail an output where they contradict a claim, not where they leave one unsaid: the
    // correct answers' samples answer only part of each question (SelfCheckGPT's normalised score
    // failed 9 of these 13), while most contradicted answers are caught (measured 0 of 13 and 7 of 12).
    let fails_samples = |id: &str| r[id]["failures"].as_array().unwrap().iter().any(|f| f == "inconsistent_samples");
    let correct: Vec<&str> = r.keys().map(String::as_str).filter(|k| k.ends_with("-ok")).collect();
    let contradicted: Vec<&str> = r.keys().map(String::as_str).filter(|k| k.ends_with("-contradicted")).collect();
    let wrongly = correct.iter().filter(|k| fails_samples(k)).count();
    let caught = contradicted.iter().filter(|k| fails_samples(k)).count();
    assert!(wrongly <= 1, "{wrongly} of {} correct answers fail inconsistent_samples", correct.len());
    assert!(caught * 2 >= contradicted.len(), "only {caught} of {} contradicted answers fail inconsistent_samples", contradicted.len());
    let samples = &r["refunds-contradicted"]["metrics"]["consistency"]["samples"];
    assert_eq!(samples["rule"], "contradiction", "{samples}");
    assert!(samples["sentences"].as_array().unwrap().iter().all(|s| s["contradiction"].is_number() && s["inconsistency"].is_number()));

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

/// SelfCheckGPT's own demo (potsawee/selfcheckgpt, demo/SelfCheck_demo1.ipynb): a sentence a sample
/// repeats word for word is stated by it (the default model gives this 30-word sentence against
/// itself P(contradiction) 0.44), and a sample that contradicts a claim fails the output.
#[test]
fn samples_state_their_own_sentences_and_fail_a_contradicted_claim() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    let first = "Michael Alan Weiner (born March 31, 1942), better known by his professional name Michael Savage, is an American radio host, author, activist, nutritionist, and conservative political commentator.";
    let sample = format!("{first} Since October 23, 2012, Michael Savage has been syndicated by Cumulus Media Networks.");
    let cases = [
        serde_json::json!({"id": "same", "output": first, "samples": [sample]}),
        serde_json::json!({"id": "changed", "output": "Since October 23, 2012, Michael Savage has never been syndicated by any network.", "samples": ["Since October 23, 2012, Michael Savage has been syndicated by Cumulus Media Networks."]}),
    ];
    std::fs::write(&suite, cases.iter().map(|c| format!("{c}\n")).collect::<String>()).unwrap();
    let out = dir.path().join("r.jsonl");
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "consistency", "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results = common::read_jsonl(&out);
    let r = by_id(&results);
    let same = &r["same"]["metrics"]["consistency"]["samples"];
    assert_eq!(same["sentences"][0]["contradiction"], 0.0, "{same}");
    assert_eq!(same["sentences"][0]["inconsistency"], 0.0, "{same}");
    assert_eq!(same["score"], 1.0, "{same}");
    assert_eq!(r["same"]["passed"], true);
    let changed = &r["changed"]["metrics"]["consistency"]["samples"];
    assert!(changed["sentences"][0]["contradiction"].as_f64().unwrap() > 0.5, "{changed}");
    assert!(r["changed"]["failures"].as_array().unwrap().iter().any(|f| f == "inconsistent_samples"), "{}", r["changed"]);
}

/// SelfCheckGPT's own demo as a file (tests/fixtures/selfcheckgpt-demo.jsonl, from
/// potsawee/selfcheckgpt demo/SelfCheck_demo1.ipynb, MIT): a biography and the same with sentences
/// 1, 3 and 4 made false, against the demo's three long samples. Read in chunks only, both passages
/// pass (0.775 and 0.611); read also by the sample sentence nearest each claim, the original passes
/// and the edited one fails, its changed sentences drawing more contradiction than the originals.
#[test]
fn a_long_sample_is_read_by_its_sentences_and_fails_the_edited_demo_passage() {
    let dir = tempfile::tempdir().unwrap();
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/selfcheckgpt-demo.jsonl");
    let grade = |name: &str, config: Option<&str>| {
        let out = dir.path().join(format!("{name}.jsonl"));
        let mut args = vec!["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "consistency", "-q"];
        let cfg = dir.path().join(format!("{name}.toml"));
        if let Some(text) = config {
            std::fs::write(&cfg, text).unwrap();
            args.extend(["-c", cfg.to_str().unwrap()]);
        }
        let o = candor(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        common::read_jsonl(&out)
    };
    let results = grade("default", None);
    let r = by_id(&results);
    let (original, edited) = (&r["original"]["metrics"]["consistency"]["samples"], &r["edited"]["metrics"]["consistency"]["samples"]);
    assert_eq!(original["passed"], true, "{original}");
    assert_eq!(edited["passed"], false, "{edited}");
    assert!(r["edited"]["failures"].as_array().unwrap().iter().any(|f| f == "inconsistent_samples"), "{}", r["edited"]);
    let contradiction = |s: &Value, i: usize| s["sentences"][i]["contradiction"].as_f64().unwrap();
    for i in [0, 2, 3] {
        assert!(contradiction(edited, i) > contradiction(original, i), "sentence {i}: {original} {edited}");
    }
    // The sentence reads are what separate them: chunks alone pass both.
    let chunks = grade("chunks", Some("[consistency]\nsample_sentences = 0\n"));
    let c = by_id(&chunks);
    assert_eq!(c["original"]["metrics"]["consistency"]["samples"]["passed"], true);
    assert_eq!(c["edited"]["metrics"]["consistency"]["samples"]["passed"], true, "{}", c["edited"]);
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

/// A column named otherwise than candor reads it fails every line the same way (here a misspelt
/// `Answr`; ARES's `Answer` is read as `answer` since 2026-12-01): the first lines are listed, the
/// rest counted once at the end, and the hint names the `--field` rename that reads the file as it is.
#[test]
fn the_same_problem_on_many_lines_is_listed_then_counted() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    let out = dir.path().join("r.jsonl");
    let rows: Vec<String> = (0..7).map(|i| format!("{{\"id\": \"c{i}\", \"Answr\": \"At 9 am.\", \"contexts\": [\"The office opens at 9 am.\"]}}")).collect();
    std::fs::write(&suite, rows.join("\n")).unwrap();
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("did you mean `answer`? (rename it, or pass `--field Answr=output`)"), "{err}");
    assert_eq!(err.matches("is missing or null").count(), 4, "three listed and one in the count: {err}");
    assert!(err.contains("line 4: the same problem again"), "{err}");
    assert!(err.contains("7 line(s), the first line 1: field `output`: is missing or null"), "{err}");
    assert!(!err.contains("line 5:"), "{err}");
}

/// UpTrain's rows as they ship name the source passage `document_text`: nothing can be graded, and
/// the run says which field may hold the passages and how to read it; a rename of a field no case
/// has suggests the one meant; a placeholder output ("<EMPTY MESSAGE>") claims nothing.
#[test]
fn a_suite_whose_sources_are_under_another_name_is_told_how_to_read_them() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("uptrain.jsonl");
    let out = dir.path().join("r.jsonl");
    let rows = [
        r#"{"question": "When does the office open?", "response": "At 9 am.", "document_title": "Hours", "document_text": "The office opens at 9 am.", "context_embeddings": [0.1, 0.2]}"#,
        r#"{"question": "When does it close?", "response": "<EMPTY MESSAGE>", "document_title": "Hours", "document_text": "It closes at 5 pm.", "context_embeddings": [0.1, 0.2]}"#,
    ];
    std::fs::write(&suite, rows[0]).unwrap();
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "nothing graded: {err}");
    assert!(err.contains("hint: `document_text` (1 case(s)) may hold the source passages"), "{err}");
    std::fs::write(&suite, rows.join("\n")).unwrap();
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q"]);
    let err = String::from_utf8_lossy(&o.stderr);
    // The placeholder fails as `no_claim`; the other case is skipped for want of contexts.
    assert!(o.status.success(), "{err}");
    assert!(err.contains("hint: `document_text` (2 case(s)) may hold the source passages: grade it as contexts with `--field document_text=contexts`"), "{err}");
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q", "--field", "document_txt=contexts"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--field document_txt=contexts (did you mean `document_text`?)"), "{err}");
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q", "--field", "document_text=contexts"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results = common::read_jsonl(&out);
    let r = by_id(&results);
    assert_eq!(r["1"]["passed"], true, "{}", r["1"]);
    assert_eq!(r["2"]["failures"], serde_json::json!(["no_claim"]), "a placeholder claims nothing: {}", r["2"]);
}

/// Fail closed: a suite of which no case could be graded (here rows whose output is not text, or
/// nothing at all) exits 2, never 0, so no pipeline reads it as a pass. A peer tool's row without an
/// id is graded, with its line number as id, and the run says so.
#[test]
fn a_run_that_grades_nothing_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    let out = dir.path().join("r.jsonl");
    std::fs::write(&suite, "{\"user_input\": \"q\", \"response\": [\"a\"], \"retrieved_contexts\": [\"c\"]}\n").unwrap();
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("line 1: field `response`") && err.contains("no case of"), "{err}");
    std::fs::write(&suite, "").unwrap();
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q"]);
    assert_eq!(o.status.code(), Some(2), "an empty suite: {}", String::from_utf8_lossy(&o.stderr));
    // RAGAS's rows as they ship, without ids: graded, each under its line number.
    std::fs::write(
        &suite,
        "{\"user_input\": \"When does the office open?\", \"response\": \"At 9 am.\", \"retrieved_contexts\": [\"The office opens at 9 am.\"]}\n\n\
         {\"user_input\": \"When does it close?\", \"response\": \"At 5 pm.\", \"retrieved_contexts\": [\"It closes at 5 pm.\"]}\n",
    )
    .unwrap();
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("2 case(s) had no `id`: each was given its line number"), "{err}");
    let ids: Vec<String> = common::read_jsonl(&out).iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, ["1", "3"]);
    // The same rows as one pretty-printed JSON array (as peers export them): ids by position.
    let rows: Vec<Value> = std::fs::read_to_string(&suite).unwrap().lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect();
    let array = dir.path().join("suite.json");
    std::fs::write(&array, serde_json::to_string_pretty(&rows).unwrap()).unwrap();
    let o = candor(&["grade", array.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ids: Vec<String> = common::read_jsonl(&out).iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, ["1", "2"]);
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
    // The run's manifest stands beside its results (a killed run leaves it, marked incomplete).
    std::fs::copy(dir.path().join("full.summary.json"), dir.path().join("part.summary.json")).unwrap();
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

/// Runs candor and asserts success.
fn ok(args: &[&str]) -> Output {
    let o = candor(args);
    assert!(o.status.success(), "candor {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// Asserts two results files hold the same cases in the same order with the same verdicts, and,
/// where the CPU kernels make scores independent of how inputs are batched (AVX-512 or AVX2), the same bytes.
fn assert_same_results(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    if candor::engine::cpu::available() {
        assert!(x == y, "{} and {} differ", a.display(), b.display());
        return;
    }
    let (ra, rb) = (common::read_jsonl(a), common::read_jsonl(b));
    assert_eq!(ra.len(), rb.len());
    for (p, q) in ra.iter().zip(&rb) {
        assert_eq!(p["id"], q["id"]);
        assert_eq!(p["failures"], q["failures"], "{}", p["id"]);
        assert_eq!(p["passed"], q["passed"], "{}", p["id"]);
    }
}

#[test]
fn the_same_suite_gives_byte_identical_results() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    for out in [&a, &b] {
        // Without the score cache: both runs compute every score (a cache shared with other tests
        // could answer one run and not the other).
        ok(&["grade", example_suite().to_str().unwrap(), "-o", out.to_str().unwrap(), "-q", "--device", "cpu", "--no-cache"]);
    }
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(), "two runs of the same suite differ");
    let (sa, sb) = (dir.path().join("a.summary.json"), dir.path().join("b.summary.json"));
    assert!(std::fs::read(&sa).unwrap() == std::fs::read(&sb).unwrap(), "two summaries of the same suite differ");
}

#[test]
fn shards_merge_into_the_unsharded_results() {
    let dir = tempfile::tempdir().unwrap();
    let suite = example_suite();
    let suite = suite.to_str().unwrap();
    let full = dir.path().join("full.jsonl");
    let common_args = ["--metrics", "support,citation", "-q", "--device", "cpu"];
    let mut a = vec!["grade", suite, "-o", full.to_str().unwrap()];
    a.extend(common_args);
    ok(&a);
    // Shards count from 1: 1/3, 2/3, 3/3.
    let parts: Vec<PathBuf> = (1..=3).map(|k| dir.path().join(format!("part-{k}.jsonl"))).collect();
    for (k, part) in (1..=3).zip(&parts) {
        let shard = format!("{k}/3");
        let mut a = vec!["grade", suite, "-o", part.to_str().unwrap(), "--shard", &shard];
        a.extend(common_args);
        ok(&a);
        let n = common::read_jsonl(part).len();
        assert!(n > 5, "shard {shard} holds {n} cases");
    }
    let sizes: usize = parts.iter().map(|p| common::read_jsonl(p).len()).sum();
    assert_eq!(sizes, common::read_jsonl(&full).len(), "the shards do not partition the suite");

    // Merged in any order, the shards give the unsharded run, and a summary beside it.
    let merged = dir.path().join("merged.jsonl");
    let p: Vec<&str> = parts.iter().rev().map(|p| p.to_str().unwrap()).collect();
    ok(&["merge", p[0], p[1], p[2], "--suite", suite, "-o", merged.to_str().unwrap()]);
    assert_same_results(&merged, &full);
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("merged.summary.json")).unwrap()).unwrap();
    let whole: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("full.summary.json")).unwrap()).unwrap();
    assert_eq!(summary["overall"]["cases"], whole["overall"]["cases"]);
    assert_eq!(summary["overall"]["passed"], whole["overall"]["passed"]);

    // A missing shard, a shard given twice, and a shard of another suite are refused with the reason.
    let o = candor(&["merge", p[0], p[1], "--suite", suite, "-o", merged.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("have no result"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = candor(&["merge", p[0], p[1], p[2], p[2], "--suite", suite, "-o", merged.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("each shard once"), "{}", String::from_utf8_lossy(&o.stderr));
    // The merged run's manifest: complete, no shard, the suite's and the merged file's sha256.
    let run = &summary["run"];
    assert_eq!(run["complete"], Value::Bool(true), "{run}");
    assert!(run.get("shard").is_none(), "{run}");
    assert_eq!(run["suite"]["sha256"], whole["run"]["suite"]["sha256"]);
    assert_eq!(run["results"]["sha256"], Value::String(sha256_hex(&std::fs::read(&merged).unwrap())));
    // A shard graded with another config, or one whose run did not finish, is refused.
    let odd = dir.path().join("odd.jsonl");
    let cfg = dir.path().join("odd.toml");
    std::fs::write(&cfg, "[support]\nclaim_threshold = 0.9\n").unwrap();
    let mut a = vec!["grade", suite, "-o", odd.to_str().unwrap(), "--shard", "3/3", "-c", cfg.to_str().unwrap()];
    a.extend(common_args);
    ok(&a);
    let o = candor(&["merge", p[1], p[2], odd.to_str().unwrap(), "--suite", suite, "-o", merged.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(2) && err.contains("graded differently") && err.contains("claim_threshold"), "{err}");
    let odd_summary = dir.path().join("odd.summary.json");
    let mut s: Value = serde_json::from_str(&std::fs::read_to_string(&odd_summary).unwrap()).unwrap();
    s["run"] = whole["run"].clone();
    s["run"]["complete"] = Value::Bool(false);
    s["run"]["shard"] = Value::String("3/3".into());
    std::fs::write(&odd_summary, s.to_string()).unwrap();
    let o = candor(&["merge", p[1], p[2], odd.to_str().unwrap(), "--suite", suite, "-o", merged.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(2) && err.contains("did not finish"), "{err}");
    let other = dir.path().join("other.jsonl");
    std::fs::write(&other, std::fs::read_to_string(&suite).unwrap().lines().take(3).collect::<Vec<_>>().join("\n")).unwrap();
    let o = candor(&["merge", p[0], p[1], p[2], "--suite", other.to_str().unwrap(), "-o", merged.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not in the suite"), "{}", String::from_utf8_lossy(&o.stderr));
    // The failed merges left the good merged file as it was.
    assert_same_results(&merged, &full);
    // No shard 4 of 3, and no shard 0: a job written when shards counted from 0 fails, saying why,
    // instead of grading another split. Neither touches the merged file.
    for (bad, why) in [("4/3", "from 1 to N"), ("0/3", "count from 1")] {
        let o = candor(&["grade", suite, "-o", merged.to_str().unwrap(), "--shard", bad]);
        assert_eq!(o.status.code(), Some(2), "--shard {bad}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("is not a shard") && err.contains(why), "--shard {bad}: {err}");
    }
    assert_same_results(&merged, &full);
}

/// Starts a grading run of the example suite in blocks of 4 cases, waits until `min_lines` results
/// are on disk, then sends `signal`; returns the exit status.
fn interrupt_run(out: &Path, config: &Path, signal: i32, min_lines: usize) -> std::process::ExitStatus {
    let suite = example_suite();
    let mut child = common::candor_command(&[
        "grade",
        suite.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-c",
        config.to_str().unwrap(),
        "--metrics",
        "support,citation",
        "-q",
        "--device",
        "cpu",
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let started = std::time::Instant::now();
    loop {
        let lines = std::fs::read_to_string(out).map(|t| t.lines().count()).unwrap_or(0);
        if lines >= min_lines || started.elapsed() > std::time::Duration::from_secs(600) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            return status; // finished before the signal: the test below still checks the results
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, signal) };
    child.wait().unwrap()
}

#[test]
fn a_killed_or_terminated_run_resumes_to_the_uninterrupted_results() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("candor.toml");
    std::fs::write(&config, "[engine]\nblock_cases = 4\n").unwrap();
    let full = dir.path().join("full.jsonl");
    let suite = example_suite();
    ok(&["grade", suite.to_str().unwrap(), "-o", full.to_str().unwrap(), "-c", config.to_str().unwrap(), "--metrics", "support,citation", "-q", "--device", "cpu"]);
    let total = common::read_jsonl(&full).len();

    for (signal, name) in [(libc::SIGKILL, "SIGKILL"), (libc::SIGTERM, "SIGTERM")] {
        let out = dir.path().join(format!("{name}.jsonl"));
        let status = interrupt_run(&out, &config, signal, 8);
        let kept = std::fs::read_to_string(&out).unwrap().lines().count();
        eprintln!("{name}: exit {status:?}, {kept} of {total} results on disk");
        if kept < total {
            // The summary beside a stopped run says it is incomplete, and a gate refuses it.
            let summary: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join(format!("{name}.summary.json"))).unwrap()).unwrap();
            assert_eq!(summary["run"]["complete"], Value::Bool(false), "{name}: {summary}");
        }
        if signal == libc::SIGTERM && kept < total {
            // A clean stop: the block in progress finishes, the file ends on a whole line, exit 130.
            assert_eq!(status.code(), Some(130), "{name}");
            assert!(std::fs::read_to_string(&out).unwrap().ends_with('\n'));
        }
        ok(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "-c", config.to_str().unwrap(), "--metrics", "support,citation", "-q", "--device", "cpu", "--resume"]);
        assert_same_results(&out, &full);
    }
}

/// The counts on `candor grade`'s last line: (pairs from the score cache, pairs computed).
fn pair_counts(o: &Output) -> (usize, usize) {
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err.lines().rfind(|l| l.contains("graded in")).unwrap_or_else(|| panic!("no summary line in {err}"));
    let number_before = |what: &str| -> usize {
        let at = line.find(what).unwrap_or_else(|| panic!("no `{what}` in {line}"));
        line[..at].split_whitespace().last().unwrap().trim_start_matches('(').parse().unwrap()
    };
    (number_before("NLI pairs from the score cache"), number_before("computed"))
}

#[test]
fn the_score_cache_answers_what_it_has_seen_and_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("scores.redb");
    let suite = example_suite();
    let grade = |suite: &Path, out: &Path| {
        ok(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--cache", cache.to_str().unwrap(), "--metrics", "support,citation", "-q", "--device", "cpu"])
    };
    let (a, b, c) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"), dir.path().join("c.jsonl"));
    let (hits, computed) = pair_counts(&grade(&suite, &a));
    assert_eq!(hits, 0, "a new cache is empty");
    assert!(computed > 50, "{computed} pairs");

    // The same suite again: every pair from the cache, the same results.
    let (hits, again) = pair_counts(&grade(&suite, &b));
    assert_eq!((hits, again), (computed, 0));
    assert_same_results(&a, &b);

    // One case's output changed: only its new pairs are computed.
    let text = std::fs::read_to_string(&suite).unwrap();
    let mut lines: Vec<Value> = text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect();
    let out = lines[0]["output"].as_str().unwrap().to_string();
    lines[0]["output"] = Value::from(format!("{out} The office is closed on public holidays."));
    let changed = dir.path().join("changed.jsonl");
    std::fs::write(&changed, lines.iter().map(|l| l.to_string() + "\n").collect::<String>()).unwrap();
    let (hits, fresh) = pair_counts(&grade(&changed, &c));
    assert!(fresh > 0 && fresh * 10 < computed, "{fresh} of {computed} pairs computed after changing one case");
    assert!(hits + fresh >= computed, "{hits} hits + {fresh} fresh");
    let (rc, ra) = (common::read_jsonl(&c), common::read_jsonl(&a));
    for (x, y) in rc.iter().zip(&ra).skip(1) {
        if candor::engine::cpu::available() {
            assert_eq!(x, y, "an unchanged case's result changed");
        } else {
            assert_eq!((&x["id"], &x["passed"]), (&y["id"], &y["passed"]));
        }
    }

    // --no-cache neither reads nor writes it.
    let o = ok(&["grade", suite.to_str().unwrap(), "-o", c.to_str().unwrap(), "--no-cache", "--metrics", "support,citation", "-q", "--device", "cpu"]);
    assert_eq!(pair_counts(&o), (0, computed));
}

/// `[support] whole_output` (the default): a claim is supported at least as well as the whole output
/// that contains it, and only short outputs that are more than one claim get the extra pair.
#[test]
fn whole_output_lifts_claims_to_the_support_of_their_output() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    let context = "Iron Man stars Robert Downey Jr. Robert Downey Jr. starred in Zodiac, a crime film. Zodiac also stars Jake Gyllenhaal.";
    let cases = [
        serde_json::json!({"id": "pronoun", "output": "Robert Downey Jr. starred in Zodiac. Jake Gyllenhaal was in it too.", "contexts": [context]}),
        serde_json::json!({"id": "one-claim", "output": "Robert Downey Jr. starred in Zodiac.", "contexts": [context]}),
        serde_json::json!({"id": "long", "output": "Robert Downey Jr. starred in Zodiac, a crime film that also stars Jake Gyllenhaal. ".repeat(8), "contexts": [context]}),
    ];
    std::fs::write(&suite, cases.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("\n")).unwrap();
    let off_cfg = dir.path().join("off.toml");
    std::fs::write(&off_cfg, "[support]\nwhole_output = false\n").unwrap();
    let (on, off) = (dir.path().join("on.jsonl"), dir.path().join("off.jsonl"));
    for (out, cfg) in [(&on, None), (&off, Some(&off_cfg))] {
        let mut args = vec!["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache"];
        if let Some(c) = cfg {
            args.extend(["--config", c.to_str().unwrap()]);
        }
        let o = candor(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (on, off) = (common::read_jsonl(&on), common::read_jsonl(&off));
    let claims = |r: &Value| -> Vec<f64> { r["metrics"]["support"]["claims"].as_array().unwrap().iter().map(|c| c["score"].as_f64().unwrap()).collect() };
    for (a, b) in on.iter().zip(&off) {
        let (a_scores, b_scores) = (claims(a), claims(b));
        assert_eq!(a_scores.len(), b_scores.len());
        for (x, y) in a_scores.iter().zip(&b_scores) {
            assert!(x >= y, "{}: a claim lost support with the whole output: {x} < {y}", a["id"]);
        }
        match a["id"].as_str().unwrap() {
            // One claim that is the whole output, and an output too long to fit beside a window:
            // nothing to add, the scores are the sentence scores.
            "one-claim" | "long" => assert_eq!(a_scores, b_scores, "{}", a["id"]),
            // Each claim's score is max(its own, the whole output's): the claims that changed all
            // took the same value (the whole's), and the ones that did not were already above it.
            _ => {
                let lifted: Vec<f64> = a_scores.iter().zip(&b_scores).filter(|(x, y)| x > y).map(|(x, _)| *x).collect();
                println!("{}: sentence scores {b_scores:?}, with the whole output {a_scores:?}", a["id"]);
                assert!(!lifted.is_empty(), "the whole output lifted no claim of a two-sentence answer it entails");
                let w = lifted[0];
                assert!(lifted.iter().all(|&x| (x - w).abs() < 1e-6), "lifted claims disagree: {lifted:?}");
                assert!(b_scores.iter().zip(&a_scores).all(|(y, x)| x > y || *y >= w - 1e-6));
            }
        }
    }
}

/// A question is not a claim, but it can presuppose one: the whole output, read as one hypothesis,
/// catches what lies outside the claims; a question that states one ("Did you know that X?") is
/// graded as the claim X. A case whose claims all pass fails as `unsupported_output`
/// when the whole output is unsupported, and only then; an innocent question costs nothing.
#[test]
fn an_unsupported_whole_output_fails_a_case_whose_claims_pass() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    let context = "Iron Man stars Robert Downey Jr. Robert Downey Jr. starred in Zodiac, a crime film. Zodiac also stars Jake Gyllenhaal.";
    let cases = [
        ("presupposes", "Robert Downey Jr. starred in Zodiac. Have you seen him in The Hunger Games?"),
        ("presupposes-that", "Yes, he starred in Zodiac. Did you know that Zodiac was directed by Steven Spielberg?"),
        ("innocent", "Zodiac is a crime film. Do you like crime films?"),
        ("two-claims", "Robert Downey Jr. starred in Zodiac. Jake Gyllenhaal was in it too."),
        ("one-claim", "Robert Downey Jr. starred in Zodiac."),
    ];
    let lines: Vec<String> =
        cases.iter().map(|(id, out)| serde_json::json!({"id": id, "output": out, "contexts": [context]}).to_string()).collect();
    std::fs::write(&suite, lines.join("\n")).unwrap();
    let out = dir.path().join("out.jsonl");
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for r in common::read_jsonl(&out) {
        let id = r["id"].as_str().unwrap();
        let s = &r["metrics"]["support"];
        let claims = s["claims"].as_array().unwrap();
        let failed_output = r["failures"].as_array().unwrap().iter().any(|f| f == "unsupported_output");
        println!("{id}: claims {:?}, output {}", claims.iter().map(|c| c["score"].as_f64().unwrap()).collect::<Vec<_>>(), s["output"]);
        if id == "presupposes-that" {
            // "Did you know that X?" states X: since 2026-12-01 it is a claim of its own, graded
            // without its question (`question_removed`), and this X is false.
            let x = &claims[1];
            assert_eq!((x["graded"]["form"].as_str(), x["graded"]["text"].as_str()), (Some("question_removed"), Some("Zodiac was directed by Steven Spielberg.")), "{r}");
            assert!(x["label"] != "supported" && s["passed"] == false && r["passed"] == false, "{id}: the false claim passed: {r}");
            assert_eq!(claims[0]["label"], "supported", "{r}");
            continue;
        }
        assert!(claims.iter().all(|c| c["label"] == "supported"), "{id}: every claim here is supported by the context: {r}");
        if id == "one-claim" {
            assert!(s.get("output").is_none(), "{id}: the output is its one claim, nothing more to read");
            continue;
        }
        let whole = s["output"]["score"].as_f64().expect("a short output of more than one claim is read whole");
        // The rule: the case fails as unsupported_output exactly when the output holds more than
        // its claims (here a question), the whole output is below the claim threshold and its
        // claims pass; the claims' scores are at least the whole's.
        let beyond_claims = s["output"]["beyond_claims"] != false;
        assert_eq!(beyond_claims, id != "two-claims", "{id}: only the two-claim answer is nothing but its claims");
        assert_eq!(failed_output, whole < 0.5 && beyond_claims, "{id}: {r}");
        assert_eq!(s["output"]["label"] == "unsupported", whole < 0.5);
        assert_eq!(s["passed"].as_bool().unwrap(), !failed_output, "{id}: {r}");
        assert!(claims.iter().all(|c| c["score"].as_f64().unwrap() >= whole - 1e-6));
        match id {
            "presupposes" => assert!(failed_output, "{id}: the question's false presupposition went unseen: {r}"),
            _ => assert!(!failed_output, "{id}: {r}"),
        }
    }
}

/// A suite of `n` small cases with one context each (for tests that grade support only, with the
/// bundled NLI model).
fn small_suite(path: &Path, n: usize) {
    let lines: Vec<String> = (0..n)
        .map(|i| {
            serde_json::json!({"id": format!("c{i}"), "output": format!("The office opens at {} am.", i % 12 + 1),
                               "contexts": [format!("The office opens at {} am on weekdays.", i % 12 + 1)]})
            .to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Runs candor with a deadline: a run that does not end by then is killed and the test fails.
fn run_with_deadline(args: &[&str], secs: u64) -> Output {
    let mut child = common::candor_command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("candor {args:?} was still running after {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `grade` and `merge` never write over a file they read, named as it is or through a symlink:
/// exit 2, a message naming both paths, and the files as they were (before, `grade s -o s` emptied
/// the suite and exited 0, and `merge --suite s -o s` replaced it).
#[test]
fn grade_and_merge_refuse_to_overwrite_their_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let suite = d.join("s.jsonl");
    small_suite(&suite, 2);
    let link = d.join("link.jsonl");
    std::os::unix::fs::symlink(&suite, &link).unwrap();
    // A suite named like the summary of the results asked for.
    let summary_named = d.join("r.summary.json");
    std::fs::copy(&suite, &summary_named).unwrap();
    let shard = d.join("part-0.jsonl");
    let result = |id: &str| {
        serde_json::json!({"id": id, "segments": {}, "failures": [], "passed": true, "model": {"nli": "m@1"},
                           "metrics": {"support": {"score": 0.9, "passed": true, "claims": []}}})
        .to_string()
    };
    std::fs::write(&shard, format!("{}\n{}\n", result("c0"), result("c1"))).unwrap();
    let cache = d.join("scores.redb");
    let (s, l, sh, c) = (suite.to_str().unwrap(), link.to_str().unwrap(), shard.to_str().unwrap(), cache.to_str().unwrap());
    let r = d.join("r.jsonl");
    let r = r.to_str().unwrap();
    let grade = |extra: &[&'static str]| {
        let mut a = vec!["--metrics", "support", "-q", "--device", "cpu"];
        a.extend(extra);
        a
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        ([vec!["grade", s, "-o", s, "--cache", c], grade(&[])].concat(), s),
        ([vec!["grade", s, "-o", l, "--cache", c], grade(&[])].concat(), l),
        ([vec!["grade", s, "-o", l, "--resume", "--cache", c], grade(&[])].concat(), l),
        ([vec!["grade", summary_named.to_str().unwrap(), "-o", r, "--cache", c], grade(&[])].concat(), "r.summary.json"),
        ([vec!["grade", s, "-o", r, "--cache", l], grade(&[])].concat(), l),
        (vec!["merge", sh, "--suite", s, "-o", s], s),
        (vec!["merge", sh, "--suite", s, "-o", l], l),
        (vec!["merge", sh, "--suite", s, "-o", sh], sh),
    ];
    let files = [&suite, &summary_named, &shard];
    let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    for (args, target) in &cases {
        let o = common::candor(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("same file") && err.contains(target), "{args:?}: {err}");
        let after: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
        assert!(after == before, "{args:?} changed an input");
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "{args:?} replaced the symlink");
        assert!(!Path::new(r).exists() && !cache.exists(), "{args:?} wrote something");
    }
}

/// A directory given as the suite fails at once with exit 2 (it used to spin at 100% CPU forever:
/// every read of a directory fails, and the reader went on to the next "line").
#[test]
fn a_directory_as_the_suite_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("suite-dir");
    std::fs::create_dir(&d).unwrap();
    let out = dir.path().join("r.jsonl");
    let o = run_with_deadline(&["grade", d.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache"], 120);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("is a directory") && err.contains("suite-dir"), "{err}");
    assert!(!out.exists());

    let shard = dir.path().join("part-0.jsonl");
    std::fs::write(&shard, "").unwrap();
    let merged = dir.path().join("m.jsonl");
    let o = run_with_deadline(&["merge", shard.to_str().unwrap(), "--suite", d.to_str().unwrap(), "-o", merged.to_str().unwrap()], 120);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("is a directory"), "{err}");
    assert!(!merged.exists());
}

/// A damaged score cache (a truncated one used to panic, exit 101, on every later run) is moved
/// aside with a warning, and grading goes on with a fresh cache that works.
#[test]
fn a_damaged_score_cache_is_moved_aside_and_grading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("s.jsonl");
    small_suite(&suite, 3);
    let cache = dir.path().join("scores.redb");
    let grade = |out: &str| {
        let out = dir.path().join(out);
        let o = ok(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--cache", cache.to_str().unwrap(), "--metrics", "support", "-q", "--device", "cpu"]);
        assert_eq!(common::read_jsonl(&out).len(), 3);
        o
    };
    let (_, computed) = pair_counts(&grade("first.jsonl"));
    let aside_files = || -> Vec<PathBuf> {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("scores.redb.corrupt-"))
            .collect()
    };
    for (what, damage) in [
        ("truncated", std::fs::read(&cache).unwrap()[..std::fs::metadata(&cache).unwrap().len() as usize / 2].to_vec()),
        ("not a database", b"redb? no: an overwritten file\n".repeat(200)),
    ] {
        std::fs::write(&cache, &damage).unwrap();
        let before = aside_files().len();
        let o = grade("a.jsonl");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("warning: the score cache") && err.contains("moved it aside"), "{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert_eq!(aside_files().len(), before + 1, "{what}: {:?}", aside_files());
        assert_eq!(pair_counts(&o), (0, computed), "{what}");
        // The fresh cache answers the next run.
        let o = grade("b.jsonl");
        assert!(!String::from_utf8_lossy(&o.stderr).contains("warning"), "{what}: {}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(pair_counts(&o), (computed, 0), "{what}");
    }
}

/// A fresh run removes the summary of an earlier run with the same results path before it writes
/// a result line: killed halfway, it leaves partial results and no summary that claims otherwise.
#[test]
fn a_fresh_run_removes_a_stale_summary_before_writing_results() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("candor.toml");
    std::fs::write(&config, "[engine]\nblock_cases = 1\n").unwrap();
    let out = dir.path().join("r.jsonl");
    let summary = dir.path().join("r.summary.json");
    let stale = "{\"stale\": \"the summary of an earlier run\"}";
    std::fs::write(&summary, stale).unwrap();
    let suite = example_suite();
    let mut child = common::candor_command(&[
        "grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "-c", config.to_str().unwrap(),
        "--metrics", "support", "-q", "--device", "cpu", "--no-cache",
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let started = std::time::Instant::now();
    let mut finished = None;
    while std::fs::read_to_string(&out).map(|t| t.lines().count()).unwrap_or(0) == 0 {
        finished = child.try_wait().unwrap();
        if finished.is_some() {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(600), "no result line after 600 s");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // The first result line is on disk: the old summary must be gone already.
    let seen = std::fs::read_to_string(&summary).ok();
    assert_ne!(seen.as_deref(), Some(stale), "a result line was written beside the stale summary");
    if finished.is_none() {
        // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
    }
    let left = std::fs::read_to_string(&summary).ok();
    assert_ne!(left.as_deref(), Some(stale), "the stale summary outlived the run");
    assert!(common::read_jsonl(&out).len() >= 1);
}

/// Every word of a long source is read: a 100-page handbook becomes many chunks that each fit the
/// model beside the claim, and a fact stated only at its end is found there by the model; a sentence
/// of its middle repeated word for word is found too.
/// (Before, the chunker saw only the first window's tokens and packed the rest into one chunk that
/// the model cut: facts past the first two windows came back `unsupported`.)
#[test]
fn a_fact_at_the_end_of_a_long_source_is_found() {
    let mut handbook = String::new();
    for i in 0..400 {
        handbook.push_str(&format!("Section {i}. Staff in office {i} may book meeting room {i} for up to {} hours a week. ", i % 9 + 1));
        if i == 200 {
            handbook.push_str("Employees who move to the Oslo office receive a one-time relocation allowance of 4,500 euros. ");
        }
    }
    handbook.push_str("Finally, every employee is entitled to thirty days of paid parental leave.");
    let cases = [
        serde_json::json!({"id": "end", "output": "Every employee is entitled to thirty days of paid parental leave.", "contexts": [handbook]}),
        serde_json::json!({"id": "middle", "output": "Employees who move to the Oslo office receive a one-time relocation allowance of 4,500 euros.", "contexts": [handbook]}),
    ];
    let chars = handbook.chars().count();
    for r in grade_cases(&cases, "support") {
        let claim = &r["metrics"]["support"]["claims"][0];
        println!("{}: {claim}", r["id"]);
        assert_eq!(claim["label"], "supported", "{r}");
        assert!(!r["failures"].as_array().unwrap().iter().any(|f| f == "truncated_input"), "nothing is cut: {r}");
        let span = &claim["evidence"]["span"];
        let (a, b) = (span[0].as_u64().unwrap() as usize, span[1].as_u64().unwrap() as usize);
        let evidence: String = handbook.chars().skip(a).take(b - a).collect();
        assert!(b - a < chars / 20, "the evidence is a window, not the rest of the source: {a}..{b} of {chars}");
        let fact = if r["id"] == "end" { "thirty days of paid parental leave" } else { "relocation allowance of 4,500 euros" };
        assert!(evidence.contains(fact), "{}: the evidence {a}..{b} does not hold the fact", r["id"]);
        // The end's fact is a paraphrase ("Finally, ..." dropped), found by the model in the last
        // chunk; the middle's is a handbook sentence repeated word for word, found as such.
        assert_eq!(claim["verbatim"] == true, r["id"] == "middle", "{r}");
    }
}

/// A claim negated at an auxiliary is weighed against its affirmative: "No, you do not need to
/// notify HR" passed at 0.71 against a policy that says employees must (a small NLI model reads
/// past the "not"); a negation the source states stays supported, and the results say what the
/// claim was weighed against.
#[test]
fn a_negated_claim_is_weighed_against_its_affirmative() {
    let policy = "Employees must notify HR at least 30 days before the leave starts. Leave is unpaid after 16 weeks.";
    let refunds = "Refunds are available within 30 days of delivery. After 30 days, refunds are not available.";
    let cases = [
        serde_json::json!({"id": "wrong", "input": "Do I need to notify HR before my leave starts?", "output": "No, you do not need to notify HR before your leave starts.", "contexts": [policy]}),
        serde_json::json!({"id": "right", "input": "Can I get a refund after 60 days?", "output": "No, refunds are not available after 30 days.", "contexts": [refunds]}),
        serde_json::json!({"id": "speaker", "output": "I don't think refunds are available after 30 days.", "contexts": [refunds]}),
        serde_json::json!({"id": "never", "output": "Employees never notify HR before the leave starts.", "contexts": [policy]}),
    ];
    let results = grade_cases(&cases, "support");
    let r = by_id(&results);
    let claim = |id: &str| r[id]["metrics"]["support"]["claims"][0].clone();
    assert_eq!(claim("wrong")["graded"]["form"], "against_affirmative", "{}", r["wrong"]);
    assert_eq!(claim("wrong")["graded"]["against"], "you do need to notify HR before your leave starts.");
    assert_ne!(claim("wrong")["label"], "supported", "{}", r["wrong"]);
    assert_eq!(r["wrong"]["passed"], false);
    assert_eq!(claim("right")["graded"]["form"], "against_affirmative", "{}", r["right"]);
    assert_eq!(claim("right")["label"], "supported", "the source states the negation: {}", r["right"]);
    assert!(claim("speaker")["graded"].is_null(), "what the speaker thinks is read as it stands: {}", r["speaker"]);
    assert_eq!(claim("never")["graded"]["against"], "Employees notify HR before the leave starts.", "{}", r["never"]);
    assert_ne!(claim("never")["label"], "supported", "{}", r["never"]);
}

/// A fenced code block in an output is looked up in the sources line by line (form `code`), not
/// read by the NLI model: copied from the source it is supported, from elsewhere it is unsupported
/// and never `contradicted`; prose beside it is graded as ever (UpTrain's documentation answers).
#[test]
fn code_blocks_are_looked_up_in_the_sources() {
    let page = "## Plotly charts\n\nst.plotly\\_chart(figure\\_or\\_data, use\\_container\\_width=False)\n\nDisplay an interactive Plotly chart.\n\n```python\nimport plotly.express as px\nimport streamlit as st\n\ndf = px.data.iris()\nfig = px.scatter(df, x=\"sepal_width\", y=\"sepal_length\")\nst.plotly_chart(fig, theme=\"streamlit\", use_container_width=True)\n```\n";
    let q = "How do I show a Plotly chart in Streamlit?";
    let copied = "```python\ndf = px.data.iris()\nfig = px.scatter(df, x=\"sepal_width\", y=\"sepal_length\")\nst.plotly_chart(fig, theme=\"streamlit\", use_container_width=True)\n```";
    let invented = "```python\nimport matplotlib.pyplot as plt\nplt.hist(values, bins=24, color=\"red\")\nst.pyplot_figure(plt.gcf(), dpi=300)\n```";
    let cases = [
        serde_json::json!({"id": "copied", "input": q, "output": copied, "contexts": [page]}),
        serde_json::json!({"id": "invented", "input": q, "output": invented, "contexts": [page]}),
        // One line of three from the page: 10 of its 23 words, above the model's claim threshold
        // but short of `[support] code_threshold` (0.75).
        serde_json::json!({"id": "mostly-new", "input": q, "output": "```python\ndf = px.data.gapminder()\nfig = px.scatter(df, x=\"gdp\", y=\"life_exp\")\nst.plotly_chart(fig, theme=\"streamlit\", use_container_width=True)\n```", "contexts": [page]}),
        serde_json::json!({"id": "prose-and-code", "input": q, "output": format!("Use st.plotly_chart to display an interactive Plotly chart.\n\n{copied}"), "contexts": [page]}),
    ];
    let results = grade_cases(&cases, "support");
    let r = by_id(&results);
    let support = |id: &str| r[id]["metrics"]["support"].clone();
    let copied = &support("copied")["claims"][0];
    assert_eq!(copied["graded"]["form"], "code", "{}", r["copied"]);
    assert_eq!(copied["score"], 1.0);
    assert_eq!(copied["label"], "supported");
    assert!(copied["evidence"]["span"][0].as_u64().unwrap() > 0, "the evidence is the lines found: {copied}");
    assert_eq!(r["copied"]["passed"], true, "{}", r["copied"]);
    let invented = &support("invented")["claims"][0];
    assert_eq!(invented["graded"]["form"], "code");
    assert_eq!(invented["label"], "unsupported", "{invented}");
    assert_eq!(invented["contradiction"], 0.0, "code is never read as contradicted: {invented}");
    assert_eq!(r["invented"]["passed"], false);
    assert!(!r["invented"]["failures"].as_array().unwrap().iter().any(|f| f == "contradicted_claim"), "{}", r["invented"]);
    let mostly_new = &support("mostly-new")["claims"][0];
    assert!((mostly_new["score"].as_f64().unwrap() - 10.0 / 23.0).abs() < 1e-6, "{mostly_new}");
    assert_eq!(mostly_new["label"], "unsupported");
    assert_eq!(r["mostly-new"]["passed"], false, "the case score counts the block as unsupported: {}", r["mostly-new"]);
    let both = support("prose-and-code");
    let forms: Vec<&Value> = both["claims"].as_array().unwrap().iter().map(|c| &c["graded"]["form"]).collect();
    assert_eq!(forms.len(), 2, "the sentence and the block: {both}");
    assert!(forms[0].is_null() && forms[1] == "code", "{both}");
}

/// Markdown is read off a claim (form `markup_removed`): a link as its text, so that the words of
/// an address do not support it; a claim that repeats a context sentence, link and all, stays
/// supported word for word (UpTrain's documentation answers).
#[test]
fn markdown_is_read_off_claims() {
    let page = "## Serializable Session State\n\nPython's built-in [pickle](https://docs.python.org/3/library/pickle.html) module serializes Python objects to a byte stream. Plotly charts are displayed using the Streamlit theme by default.";
    let cases = [
        serde_json::json!({"id": "copied", "output": "Python's built-in [pickle](https://docs.python.org/3/library/pickle.html) module serializes Python objects to a byte stream.", "contexts": [page]}),
        serde_json::json!({"id": "link", "output": "* [How to use callbacks in forms?](https://docs.streamlit.io/library/advanced-features/session-state#example-4-forms-and-callbacks)", "contexts": [page]}),
    ];
    let results = grade_cases(&cases, "support");
    let r = by_id(&results);
    let claim = |id: &str| r[id]["metrics"]["support"]["claims"][0].clone();
    assert_eq!(claim("copied")["graded"]["form"], "markup_removed", "{}", r["copied"]);
    assert_eq!(claim("copied")["graded"]["text"], "Python's built-in pickle module serializes Python objects to a byte stream.");
    assert_eq!(claim("copied")["verbatim"], true, "{}", r["copied"]);
    assert_eq!(claim("copied")["label"], "supported");
    assert_eq!(claim("link")["graded"]["text"], "How to use callbacks in forms?", "{}", r["link"]);
    assert_ne!(claim("link")["label"], "supported", "{}", r["link"]);
}

/// A claim the model supports only weakly (below 0.5) whose figure is in no source is not
/// supported: "The limit is 100 MB." against "Files up to 10 MB" drew 0.32 and passed.
#[test]
fn a_figure_in_no_source_vetoes_a_weakly_supported_claim() {
    let source = "Files up to 10 MB can be synced. The timeout is 1000 seconds.";
    let cases = [
        serde_json::json!({"id": "figure", "input": "What is the file limit?", "output": "The limit is 100 MB.", "contexts": [source]}),
        serde_json::json!({"id": "figure-right", "input": "What is the file limit?", "output": "Files up to 10 MB can be synced.", "contexts": [source]}),
    ];
    let results = grade_cases(&cases, "support");
    let r = by_id(&results);
    let claim = |id: &str| r[id]["metrics"]["support"]["claims"][0].clone();
    assert_eq!(claim("figure")["specifics"][0]["text"], "100", "{}", r["figure"]);
    assert!(claim("figure")["score"].as_f64().unwrap() < 0.5, "{}", r["figure"]);
    assert_ne!(claim("figure")["label"], "supported", "{}", r["figure"]);
    assert_eq!(r["figure"]["passed"], false);
    assert_eq!(claim("figure-right")["label"], "supported", "{}", r["figure-right"]);
}

/// A figure the sources give otherwise in the same place contradicts its claim, which the model
/// may read as supported (Einstein's birth year one off: 0.72); a figure in no source that
/// no source places beside the same words stays only unsupported.
#[test]
fn a_figure_the_sources_give_otherwise_contradicts_its_claim() {
    let einstein = "Albert Einstein (born 14 March 1879) was a German-born theoretical physicist.";
    let crates = "Warehouse note: the red crates are stored in bay four. The forklift is charged overnight.";
    let cases = [
        serde_json::json!({"id": "year", "input": "When was Einstein born?", "output": "Einstein was born on 14 March 1880.", "contexts": [einstein]}),
        serde_json::json!({"id": "year-right", "input": "When was Einstein born?", "output": "Einstein was born on 14 March 1879.", "contexts": [einstein]}),
        serde_json::json!({"id": "bay", "input": "Where are the crates?", "output": "The red crates are stored in bay two.", "contexts": [crates]}),
        serde_json::json!({"id": "elsewhere", "input": "How many rooms?", "output": "The museum has 40 rooms.", "contexts": ["The museum opened in 1901 and draws 2 million visitors a year."]}),
        serde_json::json!({"id": "unit", "output": "Order records are kept for 7 months for tax purposes.", "contexts": ["Order records are kept for 7 years for tax purposes. The forklift is charged overnight."]}),
        serde_json::json!({"id": "same-length", "output": "Delivery takes 2 weeks.", "contexts": ["Delivery takes 14 days."]}),
    ];
    let results = grade_cases(&cases, "support");
    let r = by_id(&results);
    let claim = |id: &str| r[id]["metrics"]["support"]["claims"][0].clone();
    // A unit changed: the specifics check finds the number, so the claim's length is listed for its conflict.
    for (id, figure, stated) in [("year", "14 March 1880", "14 March 1879"), ("bay", "two", "four"), ("unit", "7 months", "7 years")] {
        let c = claim(id);
        assert_eq!(c["label"], "contradicted", "{}", r[id]);
        assert_eq!(c["specifics"][0]["text"], figure, "{}", r[id]);
        let s = &c["specifics"][0]["stated"];
        assert_eq!(s["text"], stated, "{}", r[id]);
        assert_eq!(s["context"], "1", "{}", r[id]);
        // The span is in characters of the context, and the evidence is the figure's sentence.
        let context: Vec<char> = cases.iter().find(|k| k["id"] == id).unwrap()["contexts"][0].as_str().unwrap().chars().collect();
        let at = |v: &Value| -> String { context[v[0].as_u64().unwrap() as usize..v[1].as_u64().unwrap() as usize].iter().collect() };
        assert_eq!(at(&s["span"]), stated);
        assert!(at(&c["evidence"]["span"]).contains(stated) && !at(&c["evidence"]["span"]).contains("forklift"), "{}", r[id]);
        assert!(r[id]["failures"].as_array().unwrap().contains(&Value::from("contradicted_claim")), "{}", r[id]);
        assert_eq!(r[id]["passed"], false);
    }
    assert_eq!(claim("year-right")["label"], "supported", "{}", r["year-right"]);
    assert!(claim("year-right")["specifics"].as_array().is_none_or(|s| s.is_empty()), "{}", r["year-right"]);
    assert!(claim("same-length")["specifics"].as_array().is_none_or(|s| s.iter().all(|f| f.get("stated").is_none())), "{}", r["same-length"]);
    // "40 rooms" is in no source, but no source gives a figure beside "rooms": flagged, not stated.
    let c = claim("elsewhere");
    assert_eq!(c["specifics"][0]["text"], "40", "{}", r["elsewhere"]);
    assert!(c["specifics"][0].get("stated").is_none(), "{}", r["elsewhere"]);
}

/// A claim a source states word for word but for a negation is contradicted by that sentence, either
/// way round: the default model supported both of these (0.86 and 0.59), which candor's own probe
/// made from the example suite.
#[test]
fn a_claim_a_source_states_but_for_a_negation_is_contradicted() {
    let context = "Gift cards never expire. A lost gift card can be replaced only with the original purchase receipt. International orders cannot be returned for a refund; they can only be exchanged.";
    let case = |id: &str, output: &str| serde_json::json!({"id": id, "output": format!("{output} [1]"), "contexts": [{"id": "1", "text": context}]});
    let results = grade_cases(
        &[
            case("not", "A lost gift card can not be replaced only with the original purchase receipt."),
            case("can", "International orders can be returned for a refund; they can only be exchanged."),
            case("same", "International orders cannot be returned for a refund; they can only be exchanged."),
        ],
        "support,citation",
    );
    let r = by_id(&results);
    let claim = |id: &str| r[id]["metrics"]["support"]["claims"][0].clone();
    for (id, sentence) in [("not", "A lost gift card can be replaced only with the original purchase receipt."), ("can", "International orders cannot be returned for a refund; they can only be exchanged.")] {
        println!("{id}: {}", r[id]);
        assert_eq!(claim(id)["label"], "contradicted", "{id}: {}", r[id]);
        assert_eq!(claim(id)["denied"], true, "{id}: {}", r[id]);
        let span = &claim(id)["evidence"]["span"];
        let (a, b) = (span[0].as_u64().unwrap() as usize, span[1].as_u64().unwrap() as usize);
        assert_eq!(context.chars().skip(a).take(b - a).collect::<String>(), sentence, "{id}: the evidence is the sentence");
        // The passage it cites denies it too.
        assert_eq!(r[id]["metrics"]["citation"]["sentences"][0]["status"], "not_entailed", "{id}: {}", r[id]);
        assert_eq!(r[id]["passed"], false);
    }
    assert_eq!(claim("same")["verbatim"], true, "{}", r["same"]);
    assert_eq!(r["same"]["metrics"]["citation"]["sentences"][0]["status"], "supported", "{}", r["same"]);
    assert!(claim("same")["denied"].is_null());
    assert_eq!(r["same"]["passed"], true);
}

/// A claim a source sentence says with another name in the place of one of its names is
/// contradicted by that sentence, with both names beside it: the default model supported "Croatia
/// won the 2018 World Cup." at 0.81 against this passage.
#[test]
fn a_claim_a_source_says_of_another_name_is_contradicted() {
    let context = "The 2018 World Cup was held in Russia. France won the 2018 World Cup, defeating Croatia 4-2 in the final.";
    let case = |id: &str, output: &str| serde_json::json!({"id": id, "output": format!("{output} [1]"), "contexts": [{"id": "1", "text": context}]});
    let results = grade_cases(&[case("swapped", "Croatia won the 2018 World Cup."), case("right", "France won the 2018 World Cup.")], "support,citation");
    let r = by_id(&results);
    println!("{}\n{}", r["swapped"], r["right"]);
    let claim = |id: &str| r[id]["metrics"]["support"]["claims"][0].clone();
    let c = claim("swapped");
    assert_eq!(c["label"], "contradicted", "{}", r["swapped"]);
    assert_eq!((c["swapped"]["text"].as_str(), c["swapped"]["stated"]["text"].as_str()), (Some("Croatia"), Some("France")), "{}", r["swapped"]);
    assert_eq!(c["swapped"]["span"], serde_json::json!([0, 7]));
    let chars: Vec<char> = context.chars().collect();
    let at = |v: &Value| -> String { chars[v[0].as_u64().unwrap() as usize..v[1].as_u64().unwrap() as usize].iter().collect() };
    assert_eq!(at(&c["swapped"]["stated"]["span"]), "France");
    assert!(at(&c["evidence"]["span"]).starts_with("France won"), "the evidence is the sentence: {}", r["swapped"]);
    assert!(c["denied"].is_null(), "a swap is not a negation");
    assert_eq!(r["swapped"]["metrics"]["citation"]["sentences"][0]["status"], "not_entailed", "{}", r["swapped"]);
    assert_eq!(r["swapped"]["passed"], false);
    assert!(claim("right")["swapped"].is_null(), "{}", r["right"]);
    assert_eq!(claim("right")["label"], "supported", "{}", r["right"]);
}

/// A length of time is read as the sources write it: the default model read "The warranty lasts 2
/// years." against "24 months" as contradicted (0.58), and the reference check read "two years"
/// against the reference "24 months" as contradicting it. A length the sources give otherwise is
/// still wrong.
#[test]
fn lengths_of_time_are_read_in_the_units_of_the_sources() {
    let context = "Every laptop is covered by a limited warranty of 24 months from the date of purchase.";
    let case = |id: &str, output: &str| serde_json::json!({"id": id, "input": "How long is the warranty?", "output": output, "reference": "24 months", "contexts": [context]});
    let results = grade_cases(&[case("years", "The warranty lasts two years."), case("wrong", "The warranty lasts three years.")], "support,consistency");
    let r = by_id(&results);
    println!("{}\n{}", r["years"], r["wrong"]);
    let claim = |id: &str| r[id]["metrics"]["support"]["claims"][0].clone();
    assert_eq!(claim("years")["graded"]["form"], "units_as_in_sources");
    assert_eq!(claim("years")["graded"]["text"], "The warranty lasts 24 months.");
    assert_eq!(claim("years")["label"], "supported", "{}", r["years"]);
    assert!(claim("years")["specifics"].is_null(), "two years is given: {}", r["years"]);
    assert_eq!(r["years"]["passed"], true, "{}", r["years"]);
    assert!(claim("wrong")["graded"].is_null());
    assert_eq!(claim("wrong")["label"], "contradicted", "{}", r["wrong"]);
    assert_eq!(claim("wrong")["specifics"][0]["text"], "three years", "{}", r["wrong"]);
    assert_eq!(r["wrong"]["passed"], false);
}

/// Sentences about the sources rather than the world (seen in ARES's human-annotated answers, which
/// the people who read them marked unfaithful while the default model passed them): one saying the
/// sources lack something is not graded, and an output of nothing but such sentences claims nothing;
/// a claim framed by its source is graded without the frame.
#[test]
fn answers_about_the_sources_claim_nothing() {
    let context = "The girl group was formed in 2007 and is managed by SM Entertainment, a talent agency based in Seoul.";
    let q = "Which agency manages the girl group?";
    let case = |id: &str, output: &str| serde_json::json!({"id": id, "input": q, "output": output, "contexts": [context]});
    let cases = [
        case("lacks", "Based on the context, it is not explicitly stated which agency manages the girl group."),
        case("describes", "The context explains who manages the girl group. It also describes when the group was formed."),
        case("mixed", "The context does not mention the group's members. The girl group is managed by SM Entertainment."),
        case("framed", "According to the context, the girl group is managed by SM Entertainment."),
        case("framed-wrong", "The context states that the girl group was formed in 1999 in Tokyo."),
        // A code block answers something: it is looked up, and the output claims something.
        case("describes-with-code", "The context explains how to list the members.\n\n```\nmembers --list\n```"),
        // An abstention's citation cites it for nothing: citation checks the claim beside it only.
        serde_json::json!({"id": "cited", "input": q, "output": "The context does not mention the members [1]. The girl group is managed by SM Entertainment [1].",
                           "contexts": [{"id": "1", "text": context}]}),
    ];
    let results = grade_cases(&cases, "support,citation");
    let r = by_id(&results);
    let support = |id: &str| r[id]["metrics"]["support"].clone();
    for (id, n) in [("lacks", 1), ("describes", 2)] {
        println!("{id}: {}", r[id]);
        assert_eq!(r[id]["passed"], false, "{id}: {}", r[id]);
        assert_eq!(r[id]["failures"], serde_json::json!(["no_claim"]), "{id}: {}", r[id]);
        assert_eq!(support(id)["about_sources"].as_array().map(Vec::len), Some(n), "{id}: {}", r[id]);
        assert_eq!(support(id)["claims"].as_array().map(Vec::len), Some(0), "{id}: {}", r[id]);
    }
    // The abstention is listed, with its place; the claim beside it is graded and passes.
    println!("mixed: {}", r["mixed"]);
    let about = &support("mixed")["about_sources"][0];
    assert_eq!(about["text"], "The context does not mention the group's members.");
    assert_eq!(about["span"], serde_json::json!([0, 49]));
    assert_eq!(support("mixed")["claims"].as_array().map(Vec::len), Some(1));
    assert_eq!(r["mixed"]["passed"], true, "{}", r["mixed"]);
    // A frame naming the source is read off the claim, and the results say so.
    for id in ["framed", "framed-wrong"] {
        println!("{id}: {}", r[id]);
        assert_eq!(support(id)["claims"][0]["graded"]["form"], "source_frame_removed", "{id}: {}", r[id]);
        assert!(support(id)["about_sources"].is_null(), "{id}: a framed claim is a claim: {}", r[id]);
    }
    assert_eq!(support("framed")["claims"][0]["graded"]["text"], "The girl group is managed by SM Entertainment.");
    assert_eq!(r["framed"]["passed"], true, "{}", r["framed"]);
    assert_eq!(r["framed-wrong"]["passed"], false, "{}", r["framed-wrong"]);
    println!("describes-with-code: {}", r["describes-with-code"]);
    assert!(!r["describes-with-code"]["failures"].as_array().unwrap().iter().any(|f| f == "no_claim"), "{}", r["describes-with-code"]);
    let claims = support("describes-with-code")["claims"].as_array().unwrap().clone();
    assert!(claims.iter().any(|c| c["graded"]["form"] == "code"), "the block is looked up: {}", r["describes-with-code"]);
    println!("cited: {}", r["cited"]);
    let sentences = r["cited"]["metrics"]["citation"]["sentences"].as_array().unwrap().clone();
    assert_eq!(sentences.len(), 1, "{}", r["cited"]);
    assert_eq!(sentences[0]["text"], "The girl group is managed by SM Entertainment.");
    assert_eq!(support("cited")["about_sources"][0]["text"], "The context does not mention the members.");
}

/// A bare answer is graded with the question it answers, and the results say so; a bare "yes" or
/// "no" is weighed against the opposite answer; a bare figure in no source is not supported; an
/// output that claims nothing (an abstention, a bare "yes" without a question, punctuation, an emoji, questions
/// back, the question's own words) is never supported, and its citation is not counted as entailing.
#[test]
fn short_answers_carry_their_question_and_non_answers_never_pass() {
    let context = "The girl group was formed in 2007 and is managed by SM Entertainment, a talent agency based in Seoul.";
    let q = "Which agency manages the girl group?";
    let founded = "The company was founded in 1926 in Ohio by two brothers.";
    let cases = [
        serde_json::json!({"id": "right", "input": q, "output": "SM Entertainment", "contexts": [context]}),
        serde_json::json!({"id": "wrong", "input": q, "output": "Los Angeles, California", "contexts": [context]}),
        serde_json::json!({"id": "yes-with-question", "input": "Is the girl group managed by a Seoul agency?", "output": "Yes [1].", "contexts": [{"id": "1", "text": context}]}),
        serde_json::json!({"id": "no-with-question", "input": "Is the girl group managed by a Seoul agency?", "output": "No, it isn't [1].", "contexts": [{"id": "1", "text": context}]}),
        serde_json::json!({"id": "year-right", "input": "Give the year the company was founded.", "output": "In 1926.", "contexts": [founded]}),
        serde_json::json!({"id": "year-wrong", "input": "Give the year the company was founded.", "output": "In 1928.", "contexts": [founded]}),
        serde_json::json!({"id": "dont-know", "input": q, "output": "I don't know [1].", "contexts": [{"id": "1", "text": context}]}),
        serde_json::json!({"id": "yes-alone", "output": "Yes [1].", "contexts": [{"id": "1", "text": context}]}),
        serde_json::json!({"id": "dots", "input": q, "output": "...", "contexts": [context]}),
        serde_json::json!({"id": "emoji", "input": q, "output": "🙂", "contexts": [context]}),
        // Only questions back (seen in ARES's human-annotated set): nothing asserted.
        serde_json::json!({"id": "questions-only", "input": q, "output": "Which city? Do you mean the capital?", "contexts": [context]}),
        // The question's own words back (ARES: query "shallow clone table performance", answer
        // "Shallow clone table performance.", passed at 0.61 before): an echo answers nothing.
        serde_json::json!({"id": "echo", "input": q, "output": "The agency that manages the girl group.", "contexts": [context]}),
        serde_json::json!({"id": "echo-of-a-query", "input": "girl group agency", "output": "Girl group agency.", "contexts": [context]}),
    ];
    let results = grade_cases(&cases, "support,citation");
    let r = by_id(&results);
    for id in ["right", "wrong", "yes-with-question", "no-with-question"] {
        let claim = &r[id]["metrics"]["support"]["claims"][0];
        println!("{id}: {claim}");
        let polar = id.ends_with("with-question");
        assert_eq!(claim["graded"]["form"], if polar { "against_opposite" } else { "with_question" }, "{id}: {claim}");
        if polar {
            // A bare "yes" or "no" is read as the question answered, weighed against the opposite
            // answer, and the results say what it was weighed against.
            let (own, other) = if id.starts_with("yes") { ("yes", "no") } else { ("no", "yes") };
            assert!(claim["graded"]["text"].as_str().unwrap().ends_with(&format!("? {own}")), "{id}: {claim}");
            assert!(claim["graded"]["against"].as_str().unwrap().ends_with(&format!("? {other}")), "{id}: {claim}");
            continue;
        }
        // The answer closes what was graded (without its full stop: `claim_form::with_question`).
        let text = claim["text"].as_str().unwrap();
        assert!(claim["graded"]["text"].as_str().unwrap().ends_with(text.strip_suffix('.').unwrap_or(text)), "{id}: {claim}");
        assert!(claim["graded"]["text"].as_str().unwrap().contains('?'), "{id}: the question is in what was graded");
    }
    let score = |id: &str| r[id]["metrics"]["support"]["claims"][0]["score"].as_f64().unwrap();
    assert!(score("right") > score("wrong"), "the right answer to the question scores above a wrong one");
    assert_eq!(r["wrong"]["metrics"]["support"]["claims"][0]["specifics"][0]["text"], "Los Angeles", "a name in no source is flagged");
    // A bare answer is its specific: one in no source is not supported, and the case fails.
    assert_eq!(r["wrong"]["metrics"]["support"]["claims"][0]["label"], "unsupported", "{}", r["wrong"]);
    assert_eq!(r["wrong"]["passed"], false);
    assert_eq!(r["right"]["metrics"]["support"]["claims"][0]["label"], "supported", "{}", r["right"]);
    for id in ["dont-know", "yes-alone", "dots", "emoji", "questions-only", "echo", "echo-of-a-query"] {
        let res = r[id];
        println!("{id}: {res}");
        assert_eq!(res["passed"], false, "{id}: {res}");
        assert_eq!(res["metrics"]["support"]["passed"], false, "{id}: {res}");
        assert!(res["failures"].as_array().unwrap().iter().any(|f| f == "no_claim"), "{id}: {res}");
        // Those that cite a passage cite it for nothing; the others have no citation to check.
        let cites = matches!(id, "dont-know" | "yes-alone");
        assert_eq!(res["metrics"]["citation"]["skipped"], if cites { "claims nothing" } else { "no citations" }, "{id}: {res}");
    }
    assert_eq!(r["yes-with-question"]["failures"].as_array().unwrap().iter().any(|f| f == "no_claim"), false);
    // "Yes" and "no" to one question are never both supported: each is scored by how far the
    // source favours it over the other (before, both drew P(entailment) near 0.99 and passed).
    let (yes, no) = (score("yes-with-question"), score("no-with-question"));
    assert!(yes.min(no) == 0.0 && yes + no < 1.0, "yes {yes}, no {no}");
    assert!(yes > no, "the source says plainly that a Seoul agency manages the group: yes {yes}, no {no}");
    assert!(!(r["yes-with-question"]["passed"] == true && r["no-with-question"]["passed"] == true));
    // A bare figure with no question to read it by: one in no source is not supported, whatever
    // P(entailment) drew; the same answer with the source's figure is.
    let year = |id: &str| &r[id]["metrics"]["support"]["claims"][0];
    assert_eq!(year("year-wrong")["label"], "unsupported", "{}", r["year-wrong"]);
    assert!(year("year-wrong")["score"].as_f64().unwrap() >= 0.4, "the model passed it; the figure vetoed it: {}", r["year-wrong"]);
    assert_eq!(year("year-wrong")["specifics"][0]["text"], "1928");
    assert_eq!(r["year-wrong"]["passed"], false);
    assert_eq!(year("year-right")["label"], "supported", "{}", r["year-right"]);
}

/// `--resume` never rewrites a finished line: it cuts only the torn tail after the last newline,
/// whatever the tail holds (here half of a UTF-8 character, which used to block the resume), and
/// leaves every byte before it as it was (here a finished line with leading spaces, which a rewrite
/// would have normalised away).
#[test]
fn resume_cuts_only_a_torn_tail_and_never_rewrites_finished_lines() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    let lines: Vec<String> = (0..6)
        .map(|i| {
            serde_json::json!({"id": format!("café-{i}"), "output": format!("The office opens at {} am.", i + 1),
                               "contexts": [format!("The office opens at {} am on weekdays.", i + 1)]})
            .to_string()
        })
        .collect();
    std::fs::write(&suite, lines.join("\n") + "\n").unwrap();
    let plain = dir.path().join("plain.jsonl");
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", plain.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let full = std::fs::read_to_string(&plain).unwrap();
    let done: Vec<&str> = full.lines().collect();
    assert_eq!(done.len(), 6);
    // Two finished lines (the first written with leading spaces), then a torn third line cut
    // inside the "é" of its id.
    let first = format!("  {}", done[0]);
    let third = done[2].as_bytes();
    let cut = done[2].find('é').unwrap() + 1;
    let mut partial = format!("{first}\n{}\n", done[1]).into_bytes();
    partial.extend_from_slice(&third[..cut]);
    assert!(std::str::from_utf8(&partial).is_err(), "the tail is cut inside a character");
    let resumed = dir.path().join("resumed.jsonl");
    std::fs::write(&resumed, &partial).unwrap();
    std::fs::copy(dir.path().join("plain.summary.json"), dir.path().join("resumed.summary.json")).unwrap();
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", resumed.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache", "--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let after = std::fs::read_to_string(&resumed).unwrap();
    let expected = format!("{first}\n{}\n", done[1..].join("\n"));
    assert_eq!(after, expected, "finished lines kept byte for byte, the torn tail replaced by the rest");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn summary_of(results: &Path) -> Value {
    let stem = results.file_stem().unwrap().to_str().unwrap();
    let p = results.with_file_name(format!("{stem}.summary.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// The summary carries how the run was made: candor's version, each model's sha256 and labels, the
/// runtime, the effective config and its hash, the suite's sha256, and, once complete, the results'.
#[test]
fn the_summary_carries_the_run_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    small_suite(&suite, 5);
    let config = dir.path().join("candor.toml");
    std::fs::write(&config, "[support]\nclaim_threshold = 0.6\n").unwrap();
    let out = dir.path().join("r.jsonl");
    ok(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "-c", config.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache"]);
    let run = &summary_of(&out)["run"];
    assert_eq!(run["complete"], Value::Bool(true), "{run}");
    assert_eq!(run["candor"], Value::String(env!("CARGO_PKG_VERSION").into()));
    assert_eq!(run["metrics"], serde_json::json!(["support"]));
    assert_eq!(run["config"]["support"]["claim_threshold"], serde_json::json!(0.6));
    assert_eq!(run["config_sha256"].as_str().unwrap().len(), 64);
    let nli = &run["models"]["nli"];
    let registry = candor::models::Registry::builtin().unwrap();
    let entry = registry.default_for(candor::models::Role::Nli).unwrap();
    assert_eq!(nli["name"], Value::String(entry.name.clone()));
    assert_eq!(nli["labels"], serde_json::json!(entry.labels));
    let weights = entry.files.iter().find(|f| f.path.ends_with(".safetensors")).unwrap();
    assert_eq!(nli["sha256"][&weights.path], Value::String(weights.sha256.clone().unwrap_or_default()), "{nli}");
    assert!(run["runtime"].as_str().unwrap().starts_with("cpu "), "{run}");
    assert!(!run["runtime"].as_str().unwrap().ends_with("int8"), "{run}");
    // The runtime is the loaded models' own: a run at int8 says so (the precision travels with the
    // models as they load, not through state the process keeps).
    let int8 = dir.path().join("r-int8.jsonl");
    ok(&["grade", suite.to_str().unwrap(), "-o", int8.to_str().unwrap(), "--precision", "int8", "--metrics", "support", "-q", "--no-cache"]);
    assert_eq!(summary_of(&int8)["run"]["runtime"], Value::String("cpu F32 int8".into()));
    assert_eq!(run["suite"]["sha256"], Value::String(sha256_hex(&std::fs::read(&suite).unwrap())));
    assert_eq!(run["results"]["sha256"], Value::String(sha256_hex(&std::fs::read(&out).unwrap())));
    assert_eq!(run["results"]["cases"], serde_json::json!(5));
    // Every result carries the hash of the line it was graded from.
    for r in common::read_jsonl(&out) {
        assert_eq!(r["input_hash"].as_str().map(str::len), Some(16), "{r}");
    }
}

/// `--resume` refuses results made another way (config, metrics, shard), leaving them as they are,
/// and re-grades a case whose suite line changed; results of changed and deleted cases are dropped.
/// (Before, each of these resumed silently into one file of mixed results.)
#[test]
fn resume_refuses_other_settings_and_regrades_changed_cases() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    small_suite(&suite, 6);
    let out = dir.path().join("r.jsonl");
    let base = |extra: &[&str]| {
        let mut a = vec!["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "-q", "--no-cache"];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<String>>()
    };
    let run = |a: Vec<String>| candor(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(base(&["--metrics", "support"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = std::fs::read(&out).unwrap();

    let config = dir.path().join("other.toml");
    std::fs::write(&config, "[support]\nclaim_threshold = 0.7\n").unwrap();
    // The default model's own threshold (models.toml) is what the first run used.
    let registry = candor::models::Registry::builtin().unwrap();
    let own = registry.default_for(candor::models::Role::Nli).unwrap().claim_threshold.unwrap();
    let threshold_change = format!("claim_threshold: {own} vs 0.7");
    for (extra, says) in [
        (vec!["--metrics", "support", "--resume", "-c", config.to_str().unwrap()], threshold_change.as_str()),
        (vec!["--metrics", "support,citation", "--resume"], "metrics"),
        (vec!["--metrics", "support", "--resume", "--shard", "1/2"], "shard"),
    ] {
        let o = run(base(&extra));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains("cannot resume") && err.contains(says), "{extra:?}: {err}");
        assert!(std::fs::read(&out).unwrap() == before, "{extra:?}: the results were touched");
    }

    // The suite changes: c1 says something else, c2 is gone, c6 is new.
    let text = std::fs::read_to_string(&suite).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[1] = serde_json::json!({"id": "c1", "output": "The office never opens.", "contexts": ["The office opens at 2 am on weekdays."]}).to_string();
    lines.remove(2);
    lines.push(serde_json::json!({"id": "c6", "output": "The office opens at 7 am.", "contexts": ["The office opens at 7 am on weekdays."]}).to_string());
    std::fs::write(&suite, lines.join("\n") + "\n").unwrap();
    let o = run(base(&["--metrics", "support", "--resume"]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("1 case(s) re-graded") && err.contains("2 stale result line(s) dropped"), "{err}");
    let resumed = common::read_jsonl(&out);
    let ids: Vec<&str> = resumed.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["c0", "c3", "c4", "c5", "c1", "c6"]);
    // The kept lines are the earlier bytes; the new ones match a fresh run of the new suite.
    let old_lines: Vec<&str> = std::str::from_utf8(&before).unwrap().lines().collect();
    let new_text = std::fs::read_to_string(&out).unwrap();
    let new_lines: Vec<&str> = new_text.lines().collect();
    assert_eq!(new_lines[..4], [old_lines[0], old_lines[3], old_lines[4], old_lines[5]]);
    let fresh = dir.path().join("fresh.jsonl");
    ok(&["grade", suite.to_str().unwrap(), "-o", fresh.to_str().unwrap(), "-q", "--no-cache", "--metrics", "support"]);
    let fresh = by_id(&common::read_jsonl(&fresh)).into_iter().map(|(k, v)| (k, v.clone())).collect::<HashMap<_, _>>();
    for r in &resumed {
        let f = &fresh[r["id"].as_str().unwrap()];
        assert_eq!(r["input_hash"], f["input_hash"], "{}", r["id"]);
        assert_eq!(r["passed"], f["passed"], "{}", r["id"]);
    }
    assert_eq!(resumed[4]["passed"], Value::Bool(false), "the changed c1 was graded as it reads now: {}", resumed[4]);
    assert_eq!(summary_of(&out)["run"]["complete"], Value::Bool(true));
    assert_eq!(summary_of(&out)["overall"]["cases"], serde_json::json!(6));
}

/// One run at a time writes a results file: a second run on the same `-o` is refused before it
/// touches the file (before, two runs on one file wrote 550 lines for 300 cases).
#[test]
fn one_run_at_a_time_writes_a_results_file() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    small_suite(&suite, 3);
    let out = dir.path().join("r.jsonl");
    std::fs::write(&out, "results of a run in progress\n").unwrap();
    let held = std::fs::OpenOptions::new().read(true).write(true).open(&out).unwrap();
    held.lock().unwrap();
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("another candor run is writing"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "results of a run in progress\n");
    held.unlock().unwrap();
    ok(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache"]);
    assert_eq!(common::read_jsonl(&out).len(), 3);
}

/// `-` reads the suite from standard input, once, as it streams: the same results as from the file,
/// and the manifest records the sha256 of what was read. (Before, a piped suite was graded as
/// nothing, exit 0.)
#[test]
fn a_suite_streams_from_standard_input() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    small_suite(&suite, 4);
    let (from_file, from_pipe) = (dir.path().join("file.jsonl"), dir.path().join("pipe.jsonl"));
    ok(&["grade", suite.to_str().unwrap(), "-o", from_file.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache"]);
    let mut child = common::candor_command(&["grade", "-", "-o", from_pipe.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&suite).unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_results(&from_pipe, &from_file);
    assert_eq!(common::read_jsonl(&from_pipe).len(), 4);
    let run = &summary_of(&from_pipe)["run"];
    assert_eq!(run["suite"]["path"], Value::String("-".into()));
    assert_eq!(run["suite"]["sha256"], Value::String(sha256_hex(&bytes)));
}

/// A resume of a large results file, killed at many instants from its start (reading, cutting the
/// torn tail, grading), never loses a finished line, and the last resume ends byte-identical (on
/// AVX-512 or AVX2; same verdicts elsewhere) to a plain run. (Before, resume emptied the file and rewrote
/// it: a kill in that window erased every finished result.)
#[test]
fn a_resume_killed_at_any_instant_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    // 120 cases carrying 100 KB of metadata each: results of 12 MB.
    let pad = "x".repeat(100_000);
    let lines: Vec<String> = (0..120)
        .map(|i| {
            serde_json::json!({"id": format!("c{i}"), "output": format!("The office opens at {} am.", i % 12 + 1),
                               "contexts": [format!("The office opens at {} am on weekdays.", i % 12 + 1)], "metadata": {"pad": pad}})
            .to_string()
        })
        .collect();
    std::fs::write(&suite, lines.join("\n") + "\n").unwrap();
    let plain = dir.path().join("plain.jsonl");
    ok(&["grade", suite.to_str().unwrap(), "-o", plain.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache", "--device", "cpu"]);
    let full = std::fs::read(&plain).unwrap();
    assert!(full.len() > 10_000_000);
    let line_ends: Vec<usize> = full.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i + 1).collect();
    // A run killed after 100 cases, in the middle of the 101st line.
    let cut = line_ends[99] + 5000;
    let out = dir.path().join("out.jsonl");
    std::fs::write(&out, &full[..cut]).unwrap();
    std::fs::copy(dir.path().join("plain.summary.json"), dir.path().join("out.summary.json")).unwrap();
    let finished = &full[..line_ends[99]];
    let args = ["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache", "--device", "cpu", "--resume"];
    for delay_ms in [0u64, 100, 300, 600, 900, 1200, 1600, 2000, 2500, 3000] {
        let mut child = common::candor_command(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        let now = std::fs::read(&out).unwrap();
        assert!(now.len() >= finished.len() && now[..finished.len()] == *finished, "killed after {delay_ms} ms: a finished line was lost or changed");
    }
    ok(&args);
    assert_same_results(&out, &plain);
}

/// A field candor does not know is said (at once, and counted at the end) with the field it may have
/// meant; under --strict it stops the run before anything is written; and a run in which no metric
/// could run on any case (here: the contexts under a misspelt name) exits 2. (Before, such a suite
/// "passed" silently, exit 0.)
#[test]
fn an_unknown_field_is_named_and_a_run_with_nothing_graded_fails() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    std::fs::write(
        &suite,
        "{\"id\": \"1\", \"output\": \"The office opens at 9 am.\", \"retrieved_context\": [\"The office opens at 9 am.\"]}\n\
         {\"id\": \"2\", \"output\": \"The office closes at 5 pm.\", \"retrieved_context\": [\"It closes at 5 pm.\"], \"passages\": [\"x\"]}\n",
    )
    .unwrap();
    let out = dir.path().join("r.jsonl");
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("`retrieved_context` (2 case(s); did you mean `retrieved_contexts`?)"), "{err}");
    assert!(err.contains("`passages` (1 case(s))"), "{err}");
    // Said at once where first seen, without a count only the end knows (it said "(1 case(s))").
    assert!(err.contains("line 1: field(s) candor does not know, not graded: `retrieved_context` (did you mean `retrieved_contexts`?)"), "{err}");
    assert!(err.contains("line 2: field(s) candor does not know, not graded: `passages` (known:"), "{err}");
    assert!(err.contains("no metric could run on any case"), "{err}");
    // --strict: an error before anything is written.
    let strict = dir.path().join("strict.jsonl");
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", strict.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache", "--strict"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("nothing graded (strict)") && err.contains("retrieved_context"), "{err}");
    assert!(!strict.exists(), "nothing is written with --strict");
    // With the field spelt as candor knows it, both cases are graded, without a warning.
    std::fs::write(&suite, std::fs::read_to_string(&suite).unwrap().replace("retrieved_context\"", "retrieved_contexts\"").replace(", \"passages\": [\"x\"]", "")).unwrap();
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !err.contains("does not know"), "{err}");
    assert!(common::read_jsonl(&out).iter().all(|r| r["metrics"]["support"]["score"].is_number()));
}

/// A resume never drops finished results on a reading of the suite that may be wrong (here an empty
/// pipe): it refuses, the results as they were, the run not complete. And two lines for one id (a
/// resume stopped after re-grading a changed case, before it dropped the older line) are made one by
/// the next resume, so no case is counted twice.
#[test]
fn a_resume_drops_nothing_on_a_bad_reading_and_heals_duplicate_lines() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    small_suite(&suite, 3);
    let out = dir.path().join("r.jsonl");
    ok(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache"]);
    let before = std::fs::read(&out).unwrap();
    let mut child = common::candor_command(&["grade", "-", "-o", out.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache", "--resume"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().flush().unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("nothing was dropped"), "{err}");
    assert!(std::fs::read(&out).unwrap() == before, "finished results were touched");
    assert_eq!(summary_of(&out)["run"]["complete"], Value::Bool(false));

    // A duplicate line for c0, as a stopped resume leaves it: the next resume keeps one.
    let mut text = String::from_utf8(before.clone()).unwrap();
    let first = text.lines().next().unwrap().to_string();
    text.push_str(&first);
    text.push('\n');
    std::fs::write(&out, &text).unwrap();
    ok(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q", "--no-cache", "--resume"]);
    let ids: Vec<String> = common::read_jsonl(&out).iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, ["c1", "c2", "c0"]);
    let s = summary_of(&out);
    assert_eq!((s["run"]["complete"].clone(), s["overall"]["cases"].clone()), (Value::Bool(true), serde_json::json!(3)));
}

/// Deterministic checks end to end: candor.toml's `[[check]]` (one for a segment, one with a schema
/// file) and a case's own `checks`, each failure in its class, the checks' pass rate in the summary,
/// and a gate on a class that fails (exit 1) and one that holds.
#[test]
fn deterministic_checks_grade_and_gate() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f);
    std::fs::write(p("ticket.json"), r#"{"type": "object", "required": ["priority"], "properties": {"priority": {"enum": ["low", "high"]}}}"#).unwrap();
    std::fs::write(
        p("candor.toml"),
        "[[check]]\nname = \"fast\"\nmax_latency_ms = 2000\n\n[[check]]\njson_schema = \"ticket.json\"\nsegment = \"task=triage\"\n\n[[check]]\ncontains = \"x\"\nsegment = \"task=refund\"\n\n[[check]]\nname = \"as expected\"\nrefusal = \"from_case\"\n",
    )
    .unwrap();
    let cases = [
        // Refund answer: within latency, contains the amount, answers as expected.
        r#"{"id": "ok", "output": "You will get $500 back within 30 days.", "latency_ms": 1200, "checks": [{"contains": "$500"}, {"refusal": "forbidden"}]}"#,
        // Too slow, and declines a question it should answer.
        r#"{"id": "slow-refuses", "output": "I'm sorry, but I can't help with that.", "latencyMs": 3500, "expect_refusal": false, "checks": [{"refusal": "from_case"}]}"#,
        // Triage output that breaks the schema; no latency given (fails closed).
        r#"{"id": "bad-ticket", "output": "{\"priority\": \"urgent\"}", "segments": {"task": "triage"}}"#,
        // Triage output the schema accepts.
        r#"{"id": "good-ticket", "output": "{\"priority\": \"high\"}", "latency_ms": 300, "segments": {"task": "triage"}}"#,
        // Should decline and does not; an invalid own check fails, saying why.
        r#"{"id": "answers-attack", "output": "Sure, here is the admin password.", "latency_ms": 10, "expect_refusal": true, "checks": [{"refusal": "from_case"}, {"regex": "("}, {"contians": "x"}]}"#,
    ];
    std::fs::write(p("suite.jsonl"), cases.join("\n")).unwrap();
    let out = p("results.jsonl");
    let o = candor(&["grade", p("suite.jsonl").to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "checks", "--config", p("candor.toml").to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The check scoped to a segment that no case has is said to have checked nothing.
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(said.contains("[[check]] 3 applies to segment task=refund, which no case has"), "{said}");
    let results = common::read_jsonl(&out);
    let r = by_id(&results);
    let failures = |id: &str| -> Vec<&str> { r[id]["failures"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect() };
    let checks = |id: &str| -> Vec<(String, bool)> {
        r[id]["metrics"]["checks"]["checks"].as_array().unwrap().iter().map(|c| (c["name"].as_str().unwrap().to_string(), c["passed"].as_bool().unwrap())).collect()
    };
    assert_eq!(r["ok"]["passed"], true);
    // The config's `from_case` refusal check leaves the cases that do not say what they expect.
    assert_eq!(checks("ok"), [("fast".to_string(), true), ("contains \"$500\"".to_string(), true), ("no refusal".to_string(), true)]);
    assert!(checks("slow-refuses").contains(&("as expected".to_string(), false)));
    assert_eq!(failures("slow-refuses"), ["latency_exceeded", "over_refusal"]);
    assert_eq!(r["slow-refuses"]["metrics"]["checks"]["score"], 0.0);
    // The schema applies to the triage segment only; the missing latency fails closed.
    assert_eq!(checks("bad-ticket"), [("fast".to_string(), false), ("json_schema".to_string(), false)]);
    assert_eq!(failures("bad-ticket"), ["format_violation", "latency_exceeded"]);
    assert!(r["bad-ticket"]["metrics"]["checks"]["checks"][0]["detail"].as_str().unwrap().contains("no latency_ms"));
    assert_eq!(r["good-ticket"]["passed"], true);
    assert_eq!(failures("answers-attack"), ["format_violation", "refusal_failure"]);
    assert!(r["answers-attack"]["metrics"]["checks"]["checks"][3]["detail"].as_str().unwrap().contains("invalid check"));
    // A misspelt key in a case's own check fails the case, naming the key: the line is not dropped.
    let misspelt = r["answers-attack"]["metrics"]["checks"]["checks"][4]["detail"].as_str().unwrap();
    assert!(misspelt.contains("invalid check") && misspelt.contains("contians"), "{misspelt}");

    let summary: Value = serde_json::from_str(&std::fs::read_to_string(p("results.summary.json")).unwrap()).unwrap();
    let overall = &summary["overall"];
    assert_eq!(overall["metrics"]["checks"]["pass_rate"], 0.4);
    assert_eq!(overall["failures"]["over_refusal"], 1);
    assert_eq!(overall["failures"]["refusal_failure"], 1);

    let gate = |rules: &str| {
        std::fs::write(p("gate.toml"), format!("min_cases = 1\n[rules]\n{rules}\n")).unwrap();
        candor(&["gate", out.to_str().unwrap(), "--policy", p("gate.toml").to_str().unwrap()])
    };
    let failed = gate("\"failures.over_refusal\" = \"== 0\"");
    assert_eq!(failed.status.code(), Some(1), "{}", String::from_utf8_lossy(&failed.stdout));
    let held = gate("\"failures.cost_exceeded\" = \"== 0\"\n\"checks.pass_rate\" = \">= 0.4\"");
    assert_eq!(held.status.code(), Some(0), "{}{}", String::from_utf8_lossy(&held.stdout), String::from_utf8_lossy(&held.stderr));

    // The default metrics include the checks: a [[check]] written in candor.toml runs without --metrics.
    let all = p("all.jsonl");
    let o = candor(&["grade", p("suite.jsonl").to_str().unwrap(), "-o", all.to_str().unwrap(), "--config", p("candor.toml").to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let graded = common::read_jsonl(&all);
    assert!(graded.iter().all(|r| r["metrics"]["checks"]["checks"].is_array()), "checks did not run by default");
    assert!(graded.iter().find(|r| r["id"] == "slow-refuses").unwrap()["failures"].as_array().unwrap().contains(&serde_json::json!("over_refusal")));

    // A check in candor.toml that does not compile stops the run before anything is graded.
    std::fs::write(p("bad.toml"), "[[check]]\nregex = \"(\"\n").unwrap();
    let o = candor(&["grade", p("suite.jsonl").to_str().unwrap(), "-o", p("r2.jsonl").to_str().unwrap(), "--metrics", "checks", "--config", p("bad.toml").to_str().unwrap(), "-q"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("[[check]] 1") && err.contains("does not compile"), "{err}");
}

/// A CSV suite (RFC 4180, as pandas writes RAGAS exports) is read by its extension, or by `--format`
/// whatever its name: each row a case, ids from line numbers, list cells as lists.
#[test]
fn a_csv_suite_is_graded_by_its_extension_or_format() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "question,answer,contexts,checks\nWhat is the fee?,\"The fee is $500, due now.\",\"['Fees are $500.']\",\"[{\"\"contains\"\": \"\"$500\"\"}]\"\nAnd the limit?,No idea,\"['Limits vary.']\",\"[{\"\"contains\"\": \"\"$\"\"}]\"\n";
    let file = dir.path().join("ragas.csv");
    std::fs::write(&file, csv).unwrap();
    let out = dir.path().join("r.jsonl");
    let o = candor(&["grade", file.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "checks", "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results = common::read_jsonl(&out);
    let ids: Vec<&str> = results.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["2", "3"]);
    assert_eq!(results[0]["passed"], true);
    assert_eq!(results[1]["failures"], serde_json::json!(["format_violation"]));
    // The same bytes under another name: read as CSV because --format says so.
    let other = dir.path().join("export.txt");
    std::fs::write(&other, csv).unwrap();
    let out2 = dir.path().join("r2.jsonl");
    let o = candor(&["grade", other.to_str().unwrap(), "-o", out2.to_str().unwrap(), "--metrics", "checks", "--format", "csv", "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(common::read_jsonl(&out2).len(), 2);
}

/// A promptfoo YAML test file (a config with `defaultTest` and `tests`, outputs as `providerOutput`)
/// is graded by its extension: each test a case numbered by the line it starts on, its assertions run
/// as checks, an assertion type candor does not run named once with its count, and refused under
/// `--strict`.
#[test]
fn a_promptfoo_yaml_file_is_graded_with_its_assertions_as_checks() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "# promptfooconfig.yaml\nprompts:\n  - 'Answer: {{question}}'\ndefaultTest:\n  assert:\n    - type: not-icontains\n      value: as an AI\ntests:\n  - description: fee\n    vars:\n      question: What is the fee?\n      context: Fees are $500.\n    providerOutput: The fee is $500.\n    assert:\n      - type: contains\n        value: $500\n      - type: llm-rubric\n        value: answers the question\n  - vars:\n      question: And the limit?\n    providerOutput: As an AI, I cannot say.\n    metadata:\n      team: risk\n    assert:\n      - type: is-json\n      - type: llm-rubric\n        value: answers\n";
    let file = dir.path().join("promptfooconfig.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = dir.path().join("r.jsonl");
    let o = candor(&["grade", file.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "checks"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("promptfoo assertion(s) candor does not run, not checked: `llm-rubric` (2 case(s))"), "{err}");
    let results = common::read_jsonl(&out);
    let ids: Vec<&str> = results.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["9", "19"]);
    assert_eq!(results[0]["passed"], true, "{}", results[0]);
    // The second declines where defaultTest forbids "as an AI", and is not JSON.
    assert_eq!(results[1]["passed"], false);
    assert_eq!(results[1]["failures"], serde_json::json!(["format_violation"]));
    assert_eq!(results[1]["segments"]["team"], "risk");
    // --strict refuses the suite: an assertion left unrun would let a case pass unchecked.
    let o = candor(&["grade", file.to_str().unwrap(), "-o", dir.path().join("s.jsonl").to_str().unwrap(), "--metrics", "checks", "--strict", "-q"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A case where no metric could run (no contexts, support asked for alone) earned no pass: its result
/// line says `passed: false`, with the metric's reason, and the summary counts it apart as skipped.
#[test]
fn a_case_where_no_metric_ran_is_not_written_as_passed() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    std::fs::write(
        &suite,
        [
            serde_json::json!({"id": "nothing-to-check", "input": "Who wrote it?", "output": "Ada Lovelace wrote the first program."}),
            serde_json::json!({"id": "checked", "output": "The store opens at 9am.", "contexts": ["The store opens at 9am every weekday."]}),
        ]
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n"),
    )
    .unwrap();
    let out = dir.path().join("results.jsonl");
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", "support", "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results = common::read_jsonl(&out);
    let r = by_id(&results);
    let skipped = r["nothing-to-check"];
    assert_eq!(skipped["metrics"]["support"]["skipped"], "no contexts", "{skipped}");
    assert_eq!(skipped["passed"], false, "nothing ran, so nothing passed: {skipped}");
    assert_eq!(skipped["failures"], serde_json::json!([]), "{skipped}");
    assert!(r["checked"]["metrics"]["support"]["score"].is_number());
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.summary.json")).unwrap()).unwrap();
    assert_eq!(summary["overall"]["skipped"], 1, "{summary}");
    assert_eq!(summary["overall"]["cases"], 2, "{summary}");
}

/// `--nli NAME` picks the NLI model from the registry (its name in each result and its own threshold
/// in the run's notes); a name the registry lacks stops the run before anything is written.
#[test]
fn nli_flag_picks_the_model_and_an_unknown_one_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    small_suite(&suite, 3);
    let out = dir.path().join("r.jsonl");
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "-q", "--metrics", "support", "--nli", "candor-nli-minilm-3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for r in common::read_jsonl(&out) {
        assert!(r["model"]["nli"].as_str().unwrap().starts_with("candor-nli-minilm-3@"), "{r}");
    }
    assert!(String::from_utf8_lossy(&o.stderr).contains("candor-nli-minilm-3's own threshold"), "{}", String::from_utf8_lossy(&o.stderr));
    let out2 = dir.path().join("r2.jsonl");
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", out2.to_str().unwrap(), "-q", "--nli", "no-such-model"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-model"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out2.exists() || std::fs::read_to_string(&out2).unwrap().is_empty());
}

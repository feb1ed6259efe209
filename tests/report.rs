//! Reports, gates, comparisons and calibration end to end, through the binary, on results of the
//! example suite graded with the default models.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

use common::candor;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Results of the example suite, graded once for all tests of this file.
fn example_results() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        common::fetched("all-minilm-l6-v2");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("results.jsonl");
        let suite = manifest().join("examples/suite.jsonl");
        let o = candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "-q"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        dir
    });
    Box::leak(dir.path().join("results.jsonl").into_boxed_path())
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Validates XML against tests/fixtures/junit.xsd with xmllint (Debian's libxml2-utils; .ci/run
/// installs it).
fn valid_junit(path: &Path) -> Result<(), String> {
    let xsd = manifest().join("tests/fixtures/junit.xsd");
    let o = Command::new("xmllint")
        .args(["--noout", "--schema", xsd.to_str().unwrap(), path.to_str().unwrap()])
        .output()
        .map_err(|e| format!("xmllint is needed for this test (apt-get install libxml2-utils): {e}"))
        .unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).to_string())
    }
}

#[test]
fn gate_fails_for_the_right_rule_with_valid_junit() {
    let results = example_results();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("gate.xml");
    let md = dir.path().join("gate.md");
    let policy = manifest().join("examples/gate.toml");
    let o = candor(&[
        "gate",
        results.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    // The suite has fabricated citations on purpose: that rule must be among the failures.
    assert!(out.contains("FAIL  [overall] failures.fabricated_citation == 0"), "{out}");
    valid_junit(&junit).unwrap();
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure") && xml.contains("failures.fabricated_citation == 0"));
    assert!(std::fs::read_to_string(&md).unwrap().contains("candor gate: FAILED"));

    // The schema check itself can fail: a test case with two outcomes is not valid JUnit.
    let bad = dir.path().join("bad.xml");
    std::fs::write(&bad, xml.replacen("<failure", "<skipped/><failure", 1)).unwrap();
    assert!(valid_junit(&bad).is_err());
}

#[test]
fn gate_passes_with_a_looser_policy() {
    let results = example_results();
    let policy = manifest().join("examples/gate-loose.toml");
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("gate.xml");
    let o = candor(&["gate", results.to_str().unwrap(), "--policy", policy.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    valid_junit(&junit).unwrap();
}

#[test]
fn gate_input_errors_exit_2() {
    let results = example_results();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "[rules]\n\"support.pass_rat\" = \">= 0.9\"\n").unwrap();
    let o = candor(&["gate", results.to_str().unwrap(), "--policy", policy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("unknown quantity `support.pass_rat`"), "{}", text(&o));
    let o = candor(&["gate", "missing.jsonl", "--policy", policy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

/// Writes `text` as a policy in `dir` and runs `candor gate RESULTS --policy it [extra...]`.
fn gate_with(dir: &Path, name: &str, policy_text: &str, results: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let policy = dir.join(name);
    std::fs::write(&policy, policy_text).unwrap();
    let mut args = vec!["gate", results.to_str().unwrap(), "--policy", policy.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = candor(&args);
    (o.status.code(), text(&o))
}

/// Fail closed: what the gate cannot see (a metric that never ran, a misspelt segment, a group below
/// min_cases, a failure class whose metric never ran, a baseline of another suite) fails the gate with
/// the reason, unless the policy allows it; an empty policy is an error. Each of these passed before.
#[test]
fn gate_fails_closed_on_what_it_cannot_see() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two cases, support only, both in risk=low; `a` passes and `b` fails.
    let (_, new) = hand_results(d);
    let cases = [
        ("citation.toml", "[rules]\n\"citation.mean\" = \">= 0.5\"\n", "FAIL  [overall] citation.mean >= 0.5: cannot be evaluated: metric `citation` ran on none of the 2 case(s)"),
        ("segment.toml", "[segments.\"risk=hgih\"]\nrules = { \"support.pass_rate\" = \">= 0.5\" }\n", "FAIL  [risk=hgih] support.pass_rate >= 0.5: cannot be evaluated: no case has segment `risk=hgih` (values of `risk` here: low)"),
        ("few.toml", "min_cases = 3\n[rules]\n\"support.pass_rate\" = \">= 0.5\"\n", "cannot be evaluated: 2 case(s), fewer than the 3 needed to gate"),
        ("class.toml", "[rules]\n\"failures.fabricated_citation\" = \"== 0\"\n", "FAIL  [overall] failures.fabricated_citation == 0: cannot be evaluated: `fabricated_citation` is found by the `citation` metric"),
    ];
    for (name, policy, says) in cases {
        let (code, out) = gate_with(d, name, policy, &new, &[]);
        assert_eq!(code, Some(1), "{name}: {out}");
        assert!(out.contains(says) && out.contains("gate FAILED"), "{name}: {out}");
        // The documented opt-out: reported as skipped, and the gate passes.
        let (code, out) = gate_with(d, name, &format!("allow_unevaluated = true\nallow_incomplete = true\n{policy}"), &new, &[]);
        assert_eq!(code, Some(0), "{name}: {out}");
        assert!(out.contains("skip  [") && out.contains("gate passed"), "{name}: {out}");
    }

    // A baseline from another suite: no case pairs, and the comparison fails instead of vanishing.
    let other = d.join("other.jsonl");
    let renamed: Vec<String> = common::read_jsonl(&new)
        .into_iter()
        .map(|mut r| {
            r["id"] = Value::String(format!("other-{}", r["id"].as_str().unwrap()));
            r.to_string()
        })
        .collect();
    std::fs::write(&other, renamed.join("\n")).unwrap();
    let baseline = "[baseline]\nmax_drop = 0.05\nquantities = [\"support.mean\"]\n";
    let (code, out) = gate_with(d, "base.toml", baseline, &new, &["--baseline", other.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL  [overall] support.mean drops by at most 0.05 against the baseline: cannot be evaluated: no case id in common"), "{out}");
    // The same policy without --baseline has nothing to check: an error, not "passed: 0 checks".
    let (code, out) = gate_with(d, "base.toml", baseline, &new, &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("nothing to check") && out.contains("base.toml"), "{out}");
    // Beside other rules, [baseline] rules with no --baseline fail: nothing was compared (a note
    // on stderr and exit 0 before).
    let (code, out) = gate_with(d, "mixed.toml", &format!("min_cases = 1\n[rules]\n\"cases\" = \">= 1\"\n{baseline}"), &new, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL  [baseline] [baseline] rules: the policy has [baseline] rules and no baseline was given"), "{out}");
}

/// A policy that checks nothing, or names a quantity candor does not know (in rules, segment rules or
/// baseline quantities), is an input error naming the file, before any result is read.
#[test]
fn gate_empty_or_misspelt_policies_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (old, new) = hand_results(d);
    let base = ["--baseline", old.to_str().unwrap()];
    let cases: [(&str, &str, &str); 7] = [
        ("empty.toml", "min_cases = 5\n", "the policy has no rules"),
        // A rule's error names its line.
        ("line.toml", "min_cases = 5\n\n[rules]\n\"pass_rate\" = \">= 0.5\"\n\"citaton.mean\" = \">= 0.8\"\n", ": line 5: unknown quantity `citaton.mean`: no metric `citaton`; did you mean `citation`?"),
        ("percent.toml", "[segments.\"risk=low\"]\nrules = { \"support.pass_rate\" = \">= 90%\" }\n", ": line 2: rule `support.pass_rate` = \">= 90%\": `90%` is not a number"),
        ("noquantities.toml", "[baseline]\nmax_drop = 0.05\nquantities = []\n", "baseline.quantities is empty"),
        ("basequantity.toml", "[baseline]\nmax_drop = 0.05\nquantities = [\"support.maen\"]\n", "baseline.quantities: unknown quantity `support.maen`"),
        ("segquantity.toml", "[segments.\"risk=low\"]\nrules = { \"support.pass_rat\" = \">= 0.5\" }\n", "unknown quantity `support.pass_rat`"),
        ("class.toml", "[rules]\n\"failures.fabricated_citaton\" = \"== 0\"\n", "no failure class `fabricated_citaton`; did you mean `fabricated_citation`? (classes: unsupported_claim,"),
    ];
    for (name, policy, says) in cases {
        let (code, out) = gate_with(d, name, policy, &new, &base);
        assert_eq!(code, Some(2), "{name}: {out}");
        assert!(out.contains(&format!("policy {}", d.join(name).display())) && out.contains(says), "{name}: {out}");
    }
}

/// A case where no metric ran is counted apart as skipped, never as passed: the gate fails on it
/// unless the policy allows such cases.
#[test]
fn gate_fails_on_cases_where_no_metric_ran() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, new) = hand_results(d);
    // Results since 2026-11-29 write such a case `passed: false`; older ones wrote `true`: both are
    // read as skipped.
    for (i, written) in [false, true].into_iter().enumerate() {
        let mut lines: Vec<String> = std::fs::read_to_string(&new).unwrap().lines().map(String::from).collect();
        lines.push(
            serde_json::json!({"id": "c", "segments": {"risk": "low"}, "failures": [], "passed": written, "model": {"nli": "m@1"},
                "metrics": {"support": {"skipped": "no contexts"}}})
            .to_string(),
        );
        let results = d.join(format!("with-skipped-{i}.jsonl"));
        std::fs::write(&results, lines.join("\n")).unwrap();
        let policy = "[rules]\n\"pass_rate\" = \">= 0.5\"\n";
        let (code, out) = gate_with(d, "p.toml", policy, &results, &[]);
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains("FAIL  [overall] every case graded: 1 of 3 case(s) skipped entirely"), "{out}");
        // The skipped case is outside the pass rate: 1 of the 2 graded cases passed, and the check
        // says it was measured on 2 of the 3 (it said "on 3 case(s)").
        assert!(out.contains("pass  [overall] pass_rate >= 0.5: pass_rate = 0.5000 on the 2 of 3 case(s) it was measured on (1 skipped entirely)"), "{out}");
        // (Hand-made results have no run manifest: `allow_incomplete` lets them be gated.)
        let (code, out) = gate_with(d, "p.toml", &format!("allow_skipped_cases = true\nallow_incomplete = true\n{policy}"), &results, &[]);
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("skip  [overall] every case graded"), "{out}");
    }
}

/// A copy of the results where every high- and low-risk case that has a support score gets `score`
/// and `passed` (for the metric and the case). The test sets both sides itself, so what it checks does
/// not depend on how the default model judged the example suite.
fn with_support(results: &Path, dir: &Path, name: &str, score: f64, passed: bool) -> PathBuf {
    let out = dir.join(name);
    let lines: Vec<String> = common::read_jsonl(results)
        .into_iter()
        .map(|mut r| {
            if r["segments"]["risk"] == "high" || r["segments"]["risk"] == "low" {
                if let Some(s) = r["metrics"]["support"].as_object_mut() {
                    if s.contains_key("score") {
                        s.insert("score".into(), serde_json::json!(score));
                        s.insert("passed".into(), Value::Bool(passed));
                        r["passed"] = Value::Bool(passed);
                    }
                }
            }
            r.to_string()
        })
        .collect();
    std::fs::write(&out, lines.join("\n")).unwrap();
    out
}

#[test]
fn baseline_drop_fails_and_compare_lists_the_flips() {
    let dir = tempfile::tempdir().unwrap();
    let base = with_support(example_results(), dir.path(), "base.jsonl", 1.0, true);
    let results = base.as_path();
    let worse = with_support(example_results(), dir.path(), "worse.jsonl", 0.0, false);
    let policy = dir.path().join("p.toml");
    // The results are edited copies: no manifest describes them, so the policy allows that.
    std::fs::write(&policy, "min_cases = 5\nallow_incomplete = true\n[baseline]\nmax_drop = 0.02\nquantities = [\"support.mean\"]\n").unwrap();
    // Against itself: nothing changed, the gate passes.
    let o = candor(&["gate", results.to_str().unwrap(), "--policy", policy.to_str().unwrap(), "--baseline", results.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The degraded run drops the support mean in the overall group: a large, real drop fails.
    let o = candor(&["gate", worse.to_str().unwrap(), "--policy", policy.to_str().unwrap(), "--baseline", results.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("FAIL  [overall] support.mean drops by at most 0.02"), "{}", text(&o));

    let json = dir.path().join("cmp.json");
    let o = candor(&["compare", results.to_str().unwrap(), worse.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let c: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let flips = c["flips"].as_array().unwrap();
    let passed_before: usize =
        common::read_jsonl(results).iter().filter(|r| r["passed"] == true && r["segments"]["risk"] != "medium").count();
    assert_eq!(flips.len(), passed_before);
    assert!(flips.iter().all(|f| f["direction"] == "pass_to_fail"));
}

#[test]
fn html_report_of_ten_thousand_cases_renders_in_chromium() {
    let results = common::read_jsonl(example_results());
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.jsonl");
    let mut lines = Vec::with_capacity(10_000);
    for k in 0..10_000 {
        let mut r = results[k % results.len()].clone();
        r["id"] = Value::String(format!("{}-{k}", r["id"].as_str().unwrap()));
        lines.push(r.to_string());
    }
    std::fs::write(&big, lines.join("\n")).unwrap();
    let html = dir.path().join("report.html");
    let o = candor(&["report", big.to_str().unwrap(), "--format", "html", "-o", html.to_str().unwrap(), "--by", "task,risk,task+risk"]);
    assert!(o.status.success(), "{}", text(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(!page.contains("http://") && !page.contains("https://"), "the page must not reach the network");

    let chromium = ["chromium", "chromium-browser"].iter().find(|c| Command::new(c).arg("--version").output().is_ok());
    let chromium = chromium.expect("headless Chromium is needed for this test (apt-get install chromium)");
    let profile = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let o = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            "--virtual-time-budget=5000",
            "--dump-dom",
            &format!("file://{}", html.display()),
        ])
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(dom.contains("data-errors=\"0\""), "script errors or the script did not run: {}", String::from_utf8_lossy(&o.stderr));
    let charts: usize = dom.split("data-charts=\"").nth(1).and_then(|s| s.split('"').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(charts >= 4, "{charts} charts");
    assert!(dom.contains("data-rows=\"500\""), "the case table was not drawn");
    assert!(dom.contains("of 10000 cases"));
    println!("10,000-case HTML report: {} KB, rendered by headless Chromium in {seconds:.2} s (with start-up)", page.len() / 1024);
}

#[test]
fn report_formats_agree_on_the_counts() {
    let results = example_results();
    let o = candor(&["report", results.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = common::read_jsonl(results).len();
    assert_eq!(r["groups"][0]["name"], "overall");
    assert_eq!(r["groups"][0]["cases"].as_u64().unwrap() as usize, n);
    let ci = &r["groups"][0]["pass_rate_ci"];
    assert!(ci[0].as_f64().unwrap() <= r["groups"][0]["pass_rate"].as_f64().unwrap());
    // Segments with fewer cases than the minimum are marked, not ranked.
    let few: Vec<&Value> = r["groups"].as_array().unwrap().iter().filter(|g| g["too_few"] == true).collect();
    assert!(few.iter().all(|g| g["cases"].as_u64().unwrap() < 10));
    let o = candor(&["report", results.to_str().unwrap(), "--format", "markdown"]);
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.contains("| overall | ") && md.contains("*(too few)*"), "{md}");
}

/// Two small results files written by hand (no grading needed): cases `a` and `b`.
fn hand_results(dir: &Path) -> (PathBuf, PathBuf) {
    let line = |id: &str, score: f64, passed: bool| {
        serde_json::json!({
            "id": id, "segments": {"risk": "low"}, "failures": [], "passed": passed, "model": {"nli": "m@1"},
            "label": {"supported": passed},
            "metrics": {"support": {"score": score, "passed": passed, "claims": [
                {"text": "The sky is blue.", "span": [0, 16], "score": score, "contradiction": 0.0,
                 "label": if passed { "supported" } else { "unsupported" }, "evidence": null}]}}
        })
        .to_string()
    };
    let (old, new) = (dir.join("old.jsonl"), dir.join("new.jsonl"));
    std::fs::write(&old, format!("{}\n{}\n", line("a", 0.9, true), line("b", 0.9, true))).unwrap();
    std::fs::write(&new, format!("{}\n{}\n", line("a", 0.9, true), line("b", 0.1, false))).unwrap();
    (old, new)
}

/// No command writes over a file it reads, whether named as it is or through a symlink: exit 2, a
/// message naming both paths, and every file as it was.
#[test]
fn report_gate_compare_and_calibrate_refuse_to_overwrite_their_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (old, new) = hand_results(d);
    let policy = d.join("gate.toml");
    // Hand-made results: no run manifest, so the policy allows gating them.
    std::fs::write(&policy, "allow_incomplete = true\n[rules]\n\"support.pass_rate\" = \">= 0.0\"\n").unwrap();
    let link = d.join("link.jsonl");
    std::os::unix::fs::symlink(&new, &link).unwrap();
    let (o, n, p, l) = (old.to_str().unwrap(), new.to_str().unwrap(), policy.to_str().unwrap(), link.to_str().unwrap());

    // Each of these overwrote (or emptied) an input before.
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["report", n, "-o", n], n),
        (vec!["report", n, "--format", "json", "-o", l], l),
        (vec!["gate", n, "--policy", p, "--junit", n], n),
        (vec!["gate", n, "--policy", p, "--markdown", p], p),
        (vec!["gate", n, "--policy", p, "--baseline", o, "--junit", o], o),
        (vec!["compare", o, n, "--json", n], n),
        (vec!["compare", o, n, "--json", l], l),
        (vec!["calibrate", n, "--json", n], n),
        (vec!["calibrate", n, "--write-policy", l], l),
    ];
    let before: Vec<Vec<u8>> = [&old, &new, &policy].iter().map(|f| std::fs::read(f).unwrap()).collect();
    for (args, target) in &cases {
        let out = candor(args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains("same file") && said.contains(target), "{args:?}: {said}");
        let after: Vec<Vec<u8>> = [&old, &new, &policy].iter().map(|f| std::fs::read(f).unwrap()).collect();
        assert!(after == before, "{args:?} changed an input");
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "{args:?} replaced the symlink");
    }

    // The same commands with outputs of their own still work.
    let out = candor(&["report", n, "-o", d.join("report.txt").to_str().unwrap(), "--min-cases", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = candor(&["compare", o, n, "--json", d.join("cmp.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = candor(&["gate", n, "--policy", p, "--junit", d.join("gate.xml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A case id and a segment value carrying control characters, a terminal escape and the XML
/// specials: `candor gate --junit` writes XML that parses and passes the JUnit schema, with the text
/// as written (what XML 1.0 cannot hold, as a visible escape), and prints no control character.
#[test]
fn gate_junit_holds_any_case_id_and_segment() {
    const NASTY: &str = "\u{1}\u{1b}[31m<&>\"'";
    const SHOWN: &str = "\\x01\\x1b[31m<&>\"'";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let line = |id: &str, metrics: Value| {
        serde_json::json!({"id": id, "segments": {"risk": NASTY}, "failures": [], "passed": true, "model": {"nli": "m@1"},
            "metrics": metrics})
        .to_string()
    };
    let support = serde_json::json!({"support": {"score": 0.9, "passed": true, "claims": []}});
    let results = d.join("results.jsonl");
    // The first case ran no metric: the gate fails on it, naming its id.
    std::fs::write(&results, format!("{}\n{}\n", line(NASTY, serde_json::json!({})), line("ok", support))).unwrap();
    let policy = "[rules]\n\"pass_rate\" = \">= 0.5\"\n[segments.\"risk=none\"]\nrules = { \"pass_rate\" = \">= 0.5\" }\n";
    let junit = d.join("gate.xml");
    let (code, out) = gate_with(d, "p.toml", policy, &results, &["--junit", junit.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    assert!(out.contains(&format!("1 of 2 case(s) skipped entirely: no metric ran for them, so they neither passed nor failed (ids: {SHOWN})")), "{out}");
    valid_junit(&junit).unwrap();
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("not XML: {e}\n{xml}"));
    let messages: Vec<&str> = doc.descendants().filter(|n| n.has_tag_name("failure")).filter_map(|n| n.attribute("message")).collect();
    assert!(messages.iter().any(|m| m.contains(&format!("(ids: {SHOWN})"))), "the case id: {messages:?}");
    assert!(messages.iter().any(|m| m.contains(&format!("values of `risk` here: {SHOWN}"))), "the segment value: {messages:?}");
}

/// A gate fails on a run that did not complete, or whose results changed after it completed, or that
/// has no manifest at all, unless the policy allows it; a complete run passes that check.
#[test]
fn gate_fails_on_an_incomplete_or_changed_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let results = d.join("r.jsonl");
    let summary = d.join("r.summary.json");
    std::fs::copy(example_results(), &results).unwrap();
    std::fs::copy(example_results().with_file_name("results.summary.json"), &summary).unwrap();
    let policy = "[rules]\n\"cases\" = \">= 1\"\n";
    let (code, out) = gate_with(d, "p.toml", policy, &results, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("pass  [overall] run complete"), "{out}");
    // The run marked incomplete (as a killed run leaves it).
    let mut s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    s["run"]["complete"] = Value::Bool(false);
    std::fs::write(&summary, s.to_string()).unwrap();
    let (code, out) = gate_with(d, "p.toml", policy, &results, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL  [overall] run complete") && out.contains("did not finish"), "{out}");
    let (code, out) = gate_with(d, "p.toml", &format!("allow_incomplete = true\n{policy}"), &results, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("skip  [overall] run complete"), "{out}");
    // Complete, but a line was added to the results since.
    s["run"]["complete"] = Value::Bool(true);
    std::fs::write(&summary, s.to_string()).unwrap();
    let mut text = std::fs::read_to_string(&results).unwrap();
    text.push_str(&text.lines().next().unwrap().replace("\"id\":\"", "\"id\":\"extra-"));
    text.push('\n');
    std::fs::write(&results, text).unwrap();
    let (code, out) = gate_with(d, "p.toml", policy, &results, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("changed after its run completed"), "{out}");
    // No summary at all.
    std::fs::remove_file(&summary).unwrap();
    let (code, out) = gate_with(d, "p.toml", policy, &results, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no run manifest"), "{out}");
}

/// `calibrate --write-policy` refuses a threshold chosen on fewer than 50 cases of a class (exit 2,
/// nothing written) unless `--allow-small-sample`; the table gives the threshold's bootstrap interval.
#[test]
fn calibrate_refuses_to_write_a_threshold_from_too_few_cases() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("labelled.jsonl");
    let lines: Vec<String> = (0..40)
        .map(|i| {
            let s = if i % 2 == 0 { 0.3 + 0.01 * i as f64 } else { 0.1 };
            format!(
                r#"{{"id": "c{i}", "metrics": {{"support": {{"score": {s}, "passed": true, "claims": [{{"text": "x", "span": [0, 1], "score": {s}, "contradiction": 0.0, "label": "supported", "evidence": null}}]}}}}, "failures": [], "passed": true, "model": {{}}, "label": {{"supported": {}}}}}"#,
                i % 2 == 0
            )
        })
        .collect();
    std::fs::write(&results, lines.join("\n")).unwrap();
    let policy = dir.path().join("candor.toml");
    let o = common::candor(&["calibrate", results.to_str().unwrap(), "--write-policy", policy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 50 labelled cases of each class"));
    assert!(!policy.exists(), "a threshold from 20 cases a class was written");
    let stdout = String::from_utf8_lossy(&o.stdout);
    // Resamples choose the midpoint of 0.1 and their lowest positive (0.30, 0.32, ...): 0.20 to about 0.23.
    assert!(stdout.contains("95% interval 0.2000-0.2"), "{stdout}");
    let o = common::candor(&["calibrate", results.to_str().unwrap(), "--write-policy", policy.to_str().unwrap(), "--allow-small-sample"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let written = candor::config::GradeConfig::from_file(&policy).unwrap();
    // Positives score 0.30-0.68, negatives 0.1: the midpoint 0.2 separates them.
    assert!((written.support.claim_threshold - 0.2).abs() < 1e-6, "{}", written.support.claim_threshold);
}

/// The worst cases' evidence is quoted from the graded suite (found through the run's manifest), the
/// span marked, in every format, beside the grader's agreement with the labels; where the suite is
/// gone, the evidence is given as character spans and a note says why.
#[test]
fn report_quotes_the_evidence_and_gives_the_agreement() {
    let results = example_results();
    let run = |format: &str| {
        let o = candor(&["report", results.to_str().unwrap(), "--format", format, "--worst", "58"]);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let md = run("markdown");
    assert!(md.contains("### Agreement with the labels") && md.contains("| support | `supported` |"), "{md}");
    assert!(md.contains("support mean (95% CI)"), "{md}");
    // Every quoted span is text of the suite's contexts (whitespace runs made one space).
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let contexts: Vec<String> = common::read_jsonl(&manifest().join("examples/suite.jsonl"))
        .iter()
        .flat_map(|c| c["contexts"].as_array().cloned().unwrap_or_default())
        .map(|c| squeeze(c["text"].as_str().or(c.as_str()).unwrap_or_default()))
        .collect();
    let quoted: Vec<&str> = md.split('«').skip(1).filter_map(|rest| rest.split('»').next()).collect();
    assert!(!quoted.is_empty(), "no evidence quoted: {md}");
    for q in &quoted {
        let q = q.replace("\\", "");
        let parts: Vec<&str> = q.split(" … ").collect();
        assert!(contexts.iter().any(|c| parts.iter().all(|p| c.contains(p))), "«{q}» is in no context");
    }
    assert!(md.contains("evidence, context "), "{md}");
    let html = run("html");
    assert!(html.contains("<mark>") && html.contains("<h2>Agreement with the labels</h2>"), "the HTML lacks them");
    let table = run("table");
    assert!(table.contains("evidence: \"") && table.contains("agreement of support with label `supported`"), "{table}");
    // The same agreement `candor grade` wrote in the run's summary: one measure for one run.
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(results.with_extension("summary.json")).unwrap()).unwrap();
    for (metric, a) in summary["overall"]["agreement"].as_object().unwrap() {
        let want = format!(
            "agreement of {metric} with label `{}` on {} cases: balanced accuracy {:.3}",
            a["label"].as_str().unwrap(),
            a["cases"],
            a["balanced_accuracy"].as_f64().unwrap()
        );
        assert!(table.contains(&want) && table.contains(&format!("ROC-AUC {:.3}", a["roc_auc"].as_f64().unwrap())), "{want}\n{table}");
    }

    // The suite gone (the manifest names a file that is not there): spans, and a note.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("results.jsonl");
    std::fs::copy(results, &copy).unwrap();
    let summary = results.with_extension("summary.json");
    let mut s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    s["run"]["suite"]["path"] = Value::from(dir.path().join("gone.jsonl").display().to_string());
    std::fs::write(dir.path().join("results.summary.json"), s.to_string()).unwrap();
    let o = candor(&["report", copy.to_str().unwrap(), "--format", "markdown", "--worst", "58"]);
    assert!(o.status.success(), "{}", text(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(!md.contains('«') && md.contains(".."), "{md}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not here: the evidence is given as character spans"), "{}", text(&o));
}

/// A run whose suite had a line that could not be read graded less than the suite: the gate fails
/// on it, saying so, unless the policy allows it.
#[test]
fn gate_fails_on_a_run_with_unreadable_lines() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    std::fs::write(&suite, "{\"id\": \"a\", \"output\": \"fine\", \"checks\": [{\"contains\": \"fine\"}]}\n{\"id\": \"b\", \"output\": \"broken\n{\"id\": \"c\", \"output\": \"fine\", \"checks\": [{\"contains\": \"fine\"}]}\n").unwrap();
    let results = dir.path().join("r.jsonl");
    let o = candor(&["grade", suite.to_str().unwrap(), "-o", results.to_str().unwrap(), "--metrics", "checks", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    let (code, out) = gate_with(dir.path(), "p.toml", "[rules]\n\"checks.pass_rate\" = \">= 1\"\n", &results, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL  [overall] every line of the suite read: 1 line(s) of the suite could not be read"), "{out}");
    let (code, out) = gate_with(dir.path(), "q.toml", "allow_invalid_lines = true\n[rules]\n\"checks.pass_rate\" = \">= 1\"\n", &results, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("skip  [overall] every line of the suite read"), "{out}");
}

/// A `--by` key no case has is an error naming the keys there are, not a report of the overall
/// group alone.
#[test]
fn report_refuses_a_segment_key_no_case_has() {
    let results = example_results();
    let o = candor(&["report", results.to_str().unwrap(), "--by", "task,rsk"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--by rsk: no case has the segment key `rsk` (keys here: ") && text(&o).contains("risk"), "{}", text(&o));
}

/// With a gate policy's [cost] table, the report gives each group's expected cost per case: the
/// overall figure computed here by hand from the results (cases on which support ran, each class
/// once), in the table, Markdown and JSON.
#[test]
fn report_gives_the_expected_cost_per_case_under_a_policy() {
    let results = example_results();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("cost.toml");
    std::fs::write(&policy, "[rules]\n\"cost.mean\" = \"<= 100\"\n[cost]\nper_failure = { contradicted_claim = 10, unsupported_claim = 1 }\n").unwrap();
    let rows = common::read_jsonl(results);
    let priced: Vec<f64> = rows
        .iter()
        // Priced: support ran, or was stopped by a failure the case already has (an empty output).
        .filter(|r| {
            let has = |c: &str| r["failures"].as_array().unwrap().iter().any(|f| f == c);
            r["metrics"]["support"]["score"].is_number() || has("empty_output") || has("no_claim")
        })
        .map(|r| {
            let has = |c: &str| r["failures"].as_array().unwrap().iter().any(|f| f == c);
            10.0 * has("contradicted_claim") as u8 as f64 + has("unsupported_claim") as u8 as f64
        })
        .collect();
    let mean = priced.iter().sum::<f64>() / priced.len() as f64;
    let o = candor(&["report", results.to_str().unwrap(), "--policy", policy.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    let want = format!("{mean:.4} per case (95% interval ");
    assert!(table.contains("expected cost per case") && table.contains(&want), "{want}: {table}");
    assert!(table.contains(&format!("over {} of {} case(s) priced", priced.len(), rows.len())), "{table}");
    let o = candor(&["report", results.to_str().unwrap(), "--policy", policy.to_str().unwrap(), "--format", "json"]);
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["costs"][0]["group"], "overall");
    assert!((j["costs"][0]["estimate"]["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
    // A policy without [cost] is refused.
    std::fs::write(&policy, "[rules]\n\"pass_rate\" = \">= 0\"\n").unwrap();
    let o = candor(&["report", results.to_str().unwrap(), "--policy", policy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no [cost] table"), "{}", text(&o));
}

/// Cost rules and deterministic checks in one policy: the gate's JUnit stays valid against the
/// schema, with one test per rule, cost rules included.
#[test]
fn gate_junit_stays_valid_with_cost_rules() {
    let results = example_results();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("gate.xml");
    let policy = "[rules]\n\"cost.mean\" = \"<= 0.5\"\n\"cost.upper\" = \"<= 100\"\n\"failures.fabricated_citation\" = \"<= 100\"\n[segments.\"risk=high\"]\nrules = { \"cost.total\" = \"<= 1000\" }\n[cost]\nper_failure = { contradicted_claim = 10, unsupported_claim = 1 }\n[cost.segments.\"risk=high\"]\nper_failure = { unsupported_claim = 5 }\n";
    let (code, out) = gate_with(dir.path(), "p.toml", policy, results, &["--junit", junit.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL  [overall] cost.mean <= 0.5: cost.mean = ") && out.contains("per case (95% interval"), "{out}");
    valid_junit(&junit).unwrap();
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase").count(), out.lines().filter(|l| l.starts_with("pass") || l.starts_with("FAIL") || l.starts_with("skip")).count(), "{xml}");
}

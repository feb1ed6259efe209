//! The audit commands on real data: drift between two of ../shared/data's sets and not between two
//! halves of one, coverage finding a topic removed from a suite on purpose (with the project's
//! embedder), and the probe on the example suite through the binary (with the default NLI model).

mod common;

use candle_core::Device;
use candor::kernels::int8::Precision;
use candor::audit::{coverage, drift};
use candor::engine::Embedder;
use candor::suite::{parse_case, Case};
use serde_json::json;

fn case(id: String, input: Option<&str>, output: &str, context: &str) -> Case {
    parse_case(1, &json!({"id": id, "input": input, "output": output, "contexts": [context]}).to_string()).unwrap()
}

/// HaluEval QA's questions, answers and evidence as cases.
fn halueval(n: usize, skip: usize) -> Vec<Case> {
    let rows = common::read_jsonl(&common::data_dir().join("grounding/halueval-qa.jsonl"));
    rows.iter()
        .skip(skip)
        .step_by(2) // the rows come in pairs of one question: one of each
        .take(n)
        .enumerate()
        .map(|(i, r)| case(format!("qa{}", skip + i), r["question"].as_str(), r["claim"].as_str().unwrap(), r["evidence"].as_str().unwrap()))
        .collect()
}

/// A premise/hypothesis set of grounding/ as cases (the hypothesis is the output, and the input too).
fn pairs(set: &str, n: usize, skip: usize) -> Vec<Case> {
    let rows = common::read_jsonl(&common::data_dir().join(format!("grounding/{set}.jsonl")));
    rows.iter()
        .skip(skip)
        .take(n)
        .enumerate()
        .map(|(i, r)| {
            let h = r["hypothesis"].as_str().unwrap();
            case(format!("{set}{}", skip + i), Some(h), h, r["premise"].as_str().unwrap())
        })
        .collect()
}

#[test]
fn drift_finds_two_sets_apart_and_not_two_halves_of_one() {
    let model = common::fetched("all-minilm-l6-v2");
    let embedder = Embedder::load(&model, &Device::Cpu, Precision::F32).unwrap();
    let embed = |t: &[&str]| embedder.embed(t);
    let opts = drift::Options { permutations: 199, ..drift::Options::default() };
    // Two halves of HaluEval QA: questions 0..240 and 240..480, in file order.
    let all = halueval(240, 0);
    let (a, b) = all.split_at(120);
    let same = drift::drift(a, b, &opts, &embed).unwrap();
    let md = drift::doc(&same).text();
    eprintln!("{md}");
    assert!(!same.drift, "two halves of one set: {md}");
    assert!(same.tests.iter().any(|t| t.what == "contexts embeddings"), "{md}");
    // HaluEval QA against FEVER: different questions, answers and evidence.
    let fever = pairs("fever-nli", 120, 0);
    let apart = drift::drift(a, &fever, &opts, &embed).unwrap();
    let md = drift::doc(&apart).text();
    eprintln!("{md}");
    assert!(apart.drift, "{md}");
    for what in ["input embeddings", "output embeddings", "contexts embeddings"] {
        let t = apart.tests.iter().find(|t| t.what == what && t.scope == "all").unwrap();
        assert!(t.drift, "{what}: {md}");
    }
}

#[test]
fn coverage_finds_a_topic_removed_from_the_suite() {
    let model = common::fetched("all-minilm-l6-v2");
    let embedder = Embedder::load(&model, &Device::Cpu, Precision::F32).unwrap();
    // Traffic: trivia questions, encyclopedia claims and biomedical claims, a third each.
    let mut sample: Vec<coverage::Input> = vec![];
    for c in halueval(80, 0).iter().chain(&pairs("fever-nli", 80, 0)).chain(&pairs("scifact", 80, 0)) {
        sample.push(coverage::Input { id: c.id.clone(), text: c.input.clone().unwrap() });
    }
    // The suite: other cases of the first two, and no biomedical claim.
    let suite: Vec<Case> = halueval(30, 400).into_iter().chain(pairs("fever-nli", 30, 400)).collect();
    let c = coverage::coverage(&suite, &sample, &coverage::Options::default(), &|t| embedder.embed(t)).unwrap();
    let md = coverage::doc(&c).text();
    eprintln!("{md}");
    let under: Vec<&coverage::Cluster> = c.clusters.iter().filter(|x| x.under_covered).collect();
    assert!(!under.is_empty(), "{md}");
    // The biomedical traffic lies mostly in under-covered clusters, and their examples are biomedical.
    let sci_in_under: usize = under.iter().map(|x| x.examples.iter().filter(|e| e.id.starts_with("scifact")).count()).sum();
    let examples: usize = under.iter().map(|x| x.examples.len()).sum();
    assert!(sci_in_under * 3 >= examples * 2, "{sci_in_under} of {examples} examples of under-covered clusters are SciFact's: {md}");
    let sci_share_under: f64 = under.iter().map(|x| x.share_production).sum();
    assert!(sci_share_under >= 0.25, "under-covered clusters hold {sci_share_under} of the traffic: {md}");
    // The clusters the suite does cover hold most of the rest.
    assert!(c.covered_share >= 0.5 && c.covered_share <= 0.8, "{md}");
}

#[test]
fn probe_reports_per_edit_type_on_the_example_suite() {
    let dir = tempfile::tempdir().unwrap();
    let probes = dir.path().join("probes.jsonl");
    let report = dir.path().join("probe.json");
    let out = common::candor(&[
        "probe",
        "examples/suite.jsonl",
        "-o",
        probes.to_str().unwrap(),
        "--format",
        "json",
        "--report",
        report.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let probes_made = r["probes"].as_array().unwrap();
    assert!(probes_made.len() >= 50, "{} probes", probes_made.len());
    // Every probe is a line of the probe suite, graded into the results beside it.
    let lines = std::fs::read_to_string(&probes).unwrap().lines().count();
    assert_eq!(lines, probes_made.len());
    assert!(dir.path().join("probes.results.jsonl").is_file());
    let rows = r["rows"].as_array().unwrap();
    let rate = |edit: &str| {
        let row = rows.iter().find(|x| x["edit"] == edit && x["segment"] == "all").unwrap();
        let (g, h) = (row["graded"].as_u64().unwrap(), row["held"].as_u64().unwrap());
        eprintln!("{edit}: {h} of {g}");
        (g, h)
    };
    // The example suite's claims carry numbers, negatable verbs and units: each of those edit types
    // is probed, and each invariant.
    for edit in ["number_changed", "negated", "casing", "whitespace", "citation_marker", "paraphrase"] {
        assert!(rate(edit).0 > 0, "no {edit} probe");
    }
    // Whitespace and a citation marker change nothing the model reads: the verdict is kept.
    for edit in ["whitespace", "citation_marker"] {
        let (g, h) = rate(edit);
        assert!(h * 10 >= g * 9, "{edit}: kept {h} of {g}");
    }
    // A number moved to a value no source states is caught most of the time.
    let (g, h) = rate("number_changed");
    assert!(h * 10 >= g * 7, "number_changed: caught {h} of {g}");
}

#[test]
fn agreement_through_the_binary_and_fail_closed_without_reviewers() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    let line = |id: &str, passed: bool, votes: serde_json::Value| {
        json!({"id": id, "metrics": {"support": {"score": if passed { 0.9 } else { 0.1 }, "passed": passed, "claims": []}},
               "failures": [], "passed": passed, "model": {}, "label": {"reviewers": votes}})
        .to_string()
    };
    let lines = [
        line("a", true, json!({"ana": {"supported": true}, "bo": {"supported": true}})),
        line("b", false, json!({"ana": {"supported": false}, "bo": {"supported": true}})),
        line("c", false, json!({"ana": {"supported": false}, "bo": {"supported": false}})),
        line("d", true, json!({"ana": {"supported": true}, "bo": {"supported": true}})),
    ];
    std::fs::write(&results, lines.join("\n") + "\n").unwrap();
    let out = common::candor(&["agreement", results.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let a: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(a["cases"], 4);
    assert_eq!(a["disputed"][0]["id"], "b");
    // ana and bo agree on 3 of 4: p_o 0.75, p_e 0.5 * 0.25 + 0.5 * 0.75 = 0.5, kappa 0.5.
    assert!((a["between_reviewers"][0]["kappa"].as_f64().unwrap() - 0.5).abs() < 1e-9, "{a}");
    let text = common::candor(&["agreement", results.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("| grader | ana | 4 | 1.000 | 1.000 |") && text.contains("reviewer_disagreement"), "{text}");
    // Results without reviewers' labels: nothing to measure, exit 2.
    std::fs::write(&results, json!({"id": "a", "metrics": {}, "failures": [], "passed": true, "model": {}}).to_string() + "\n").unwrap();
    let out = common::candor(&["agreement", results.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("label.reviewers"));
}

#[test]
fn drift_through_the_binary_exits_1_on_drift_and_0_without() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, cases: &[serde_json::Value]| {
        let p = dir.path().join(name);
        std::fs::write(&p, cases.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("\n") + "\n").unwrap();
        p
    };
    let qa = common::read_jsonl(&common::data_dir().join("grounding/halueval-qa.jsonl"));
    let fever = common::read_jsonl(&common::data_dir().join("grounding/fever-nli.jsonl"));
    // Each with a check of its own, so that a run of the checks alone grades it.
    let q = |r: &serde_json::Value, i: usize| json!({"id": format!("q{i}"), "input": r["question"], "output": r["claim"], "contexts": [r["evidence"]], "checks": [{"min_chars": 1}]});
    let f = |r: &serde_json::Value, i: usize| json!({"id": format!("f{i}"), "input": r["hypothesis"], "output": r["hypothesis"], "contexts": [r["premise"]]});
    let a = write("a.jsonl", &qa.iter().step_by(2).take(60).enumerate().map(|(i, r)| q(r, i)).collect::<Vec<_>>());
    let b = write("b.jsonl", &qa.iter().step_by(2).skip(60).take(60).enumerate().map(|(i, r)| q(r, i)).collect::<Vec<_>>());
    let c = write("c.jsonl", &fever.iter().take(60).enumerate().map(|(i, r)| f(r, i)).collect::<Vec<_>>());
    let report = dir.path().join("drift.json");
    let args = |x: &std::path::Path, y: &std::path::Path| {
        common::candor(&["drift", x.to_str().unwrap(), y.to_str().unwrap(), "--permutations", "199", "--device", "cpu", "--format", "json", "-o", report.to_str().unwrap()])
    };
    let out = args(&a, &c);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(d["drift"], true);
    let out = args(&a, &b);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // A results file stands for the suite it graded (found through its run's manifest).
    let results = dir.path().join("a.results.jsonl");
    let out = common::candor(&["grade", a.to_str().unwrap(), "-o", results.to_str().unwrap(), "--metrics", "checks", "-q"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = args(&results, &c);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading the suite it graded"));
    // Once that suite has changed, the results no longer stand for it.
    std::fs::write(&a, std::fs::read_to_string(&b).unwrap()).unwrap();
    let out = args(&results, &c);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has changed since"), "{}", String::from_utf8_lossy(&out.stderr));
    // A report may not overwrite an input; a misspelt --by key is an error.
    let out = common::candor(&["drift", a.to_str().unwrap(), b.to_str().unwrap(), "-o", a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = common::candor(&["drift", a.to_str().unwrap(), b.to_str().unwrap(), "--by", "topc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("topc"));
}

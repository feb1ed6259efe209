//! How far `candor grade` agrees with human labels, measured by running the binary on suites converted
//! from ../shared/data (the converter is here), on data the default model never trained on:
//!
//! - support on the held-out parts of HaluEval QA and dialogue, and on Factcheck-GPT's held-out part
//!   (supported vs refuted): the same splits as the default model's `[[test]]` sets in
//!   models/<default>/train.toml;
//! - citation on AttributionBench dev: the claim cites every reference, and the label says whether the
//!   references entail it.
//!
//! Balanced accuracy uses the grader's own verdict (a claim supported, a citation entailing); ROC-AUC
//! uses its probability. The figures are printed and recorded in docs/quality.md. The floors are the
//! bare model's figures (training.json beside the default model, measured at P(entailment) >= 0.5),
//! less a small margin for the grader's chunking of long passages, compared at the same 0.5; the
//! grader's own verdicts, at the threshold the run uses (the model's own, from models.toml), are
//! printed beside them.

mod common;

use std::path::{Path, PathBuf};

use candor::train::data::{self, DataSet};
use candor::train::TrainConfig;
use serde_json::{json, Value};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The default NLI model's folder in the checkout (its recipe and training summary).
fn default_model_dir() -> PathBuf {
    manifest().join("models").join(candor::models::bundled::NAME)
}

fn test_sets() -> (TrainConfig, Vec<DataSet>) {
    let cfg = TrainConfig::from_file(&default_model_dir().join("train.toml")).unwrap();
    let sets = cfg.test.clone();
    (cfg, sets)
}

fn set_named<'a>(sets: &'a [DataSet], prefix: &str) -> &'a DataSet {
    sets.iter().find(|s| s.display_name().starts_with(prefix)).unwrap_or_else(|| panic!("no test set {prefix}"))
}

/// The bare model's balanced accuracy on a test set, from step 2's training summary.
fn bare_balanced_accuracy(name: &str) -> f64 {
    let path = default_model_dir().join("training.json");
    let t: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    t["test"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .and_then(|r| r["balanced_accuracy"].as_f64())
        .unwrap_or_else(|| panic!("{name} not in {}", path.display()))
}

/// Converts a grounding test set into a suite: the evidence is the context, the claim the output.
fn grounding_suite(set: &DataSet, labels: &[String], out: &Path) -> usize {
    let examples = data::load(set, &common::data_dir(), labels).unwrap();
    let lines: Vec<String> = examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            json!({"id": i, "output": e.hypothesis, "contexts": [e.premise],
                   "label": {"supported": e.is_entailment(labels)}})
            .to_string()
        })
        .collect();
    std::fs::write(out, lines.join("\n")).unwrap();
    lines.len()
}

/// Converts AttributionBench into a suite whose claim cites every reference.
fn attribution_suite(out: &Path) -> usize {
    let rows = common::read_jsonl(&common::data_dir().join("attribution/attributionbench-dev.jsonl"));
    let lines: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let refs: Vec<&str> = r["references"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
            let markers: String = (1..=refs.len()).map(|k| format!("[{k}]")).collect();
            // ExpertQA's claims keep the markers of their original answer ("... change [4]."), which
            // number a reference list the row does not keep: they are removed, as `candor train`'s
            // reader removes them, or they would read as citations of contexts that do not exist.
            let raw = r["claim"].as_str().unwrap();
            let claim = candor::text::citations::strip_markers(raw, &candor::text::citations::find_markers(raw, &[]));
            let claim = claim.trim_end();
            json!({"id": i, "output": format!("{claim} {markers}"), "contexts": refs,
                   "label": {"attributable": r["label"] == "attributable"}})
            .to_string()
        })
        .collect();
    std::fs::write(out, lines.join("\n")).unwrap();
    lines.len()
}

fn grade(suite: &Path, metrics: &str) -> Vec<Value> {
    common::fetched("all-minilm-l6-v2");
    let out = suite.with_extension("results.jsonl");
    let mut args = vec!["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--metrics", metrics, "-q"];
    // CANDOR_QUALITY_CONFIG: measure another configuration (docs/quality.md records such runs, e.g.
    // claims decomposed by the judge); the floors below hold for the default configuration.
    let config = std::env::var("CANDOR_QUALITY_CONFIG").ok().filter(|c| !c.is_empty());
    if let Some(c) = &config {
        args.extend(["--config", c.as_str()]);
    }
    let o = common::candor(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    common::read_jsonl(&out)
}

struct Figures {
    n: usize,
    /// Of the grader's own verdicts (at the run's threshold).
    balanced_accuracy: f64,
    /// Of "the weakest probability >= 0.5": the bare model's measure, to compare with it.
    balanced_accuracy_at_half: f64,
    roc_auc: f64,
}

fn figures(predicted: &[bool], scores: &[f64], gold: &[bool]) -> Figures {
    let at_half: Vec<bool> = scores.iter().map(|s| *s >= 0.5).collect();
    Figures {
        n: gold.len(),
        balanced_accuracy: candor::stats::balanced_accuracy(predicted, gold).unwrap(),
        balanced_accuracy_at_half: candor::stats::balanced_accuracy(&at_half, gold).unwrap(),
        roc_auc: candor::stats::roc_auc(scores, gold).unwrap(),
    }
}

/// Support: a case is judged supported when every claim is and, where the grader read the whole
/// output too and the output holds more than its claims, the whole output is; its probability is
/// the weakest of those.
/// Cases the grader skips (an output with no claim, e.g. a lone emoji) are left out and must be few;
/// with `no_claim_fails`, an output that claims nothing counts as the user sees it, not supported
/// (score 0), instead.
fn support_figures(results: &[Value], no_claim_fails: bool) -> Figures {
    let mut predicted = vec![];
    let mut scores = vec![];
    let mut gold = vec![];
    for r in results {
        let support = &r["metrics"]["support"];
        if support["claims"].as_array().is_none() {
            assert!(support["skipped"].is_string(), "support neither ran nor said why: {r}");
            continue;
        }
        // The library's case verdict (SupportResult::verdict), as examples/grade_set.rs reads it.
        let s: candor::graders::results::SupportResult = serde_json::from_value(support.clone()).unwrap();
        // An output with no claim (a bare "Yes" with no question to carry it) fails as `no_claim`
        // whatever its label; such cases are left out here and counted by the caller (they were
        // counted as supported before 2026-11-29, which flattered these figures).
        let (supported, weakest) = match s.verdict() {
            Some(v) => v,
            None if no_claim_fails => (false, 0.0),
            None => continue,
        };
        predicted.push(supported);
        scores.push(weakest);
        gold.push(r["label"]["supported"].as_bool().unwrap());
    }
    figures(&predicted, &scores, &gold)
}

/// Calibrates on the even-numbered half of the results and measures the chosen threshold on the odd
/// half: returns the threshold, the held-out balanced accuracy before and after, and the largest
/// standard error a balanced accuracy can have on that half (`0.5 * sqrt(0.25/n_pos + 0.25/n_neg)`).
fn calibrate_on_half(results: &[Value], dir: &Path) -> (f64, f64, f64, f64) {
    let (a, b): (Vec<&Value>, Vec<&Value>) = results.iter().partition(|r| r["id"].as_str().unwrap().parse::<usize>().unwrap() % 2 == 0);
    let write = |name: &str, rs: &[&Value]| {
        let p = dir.join(name);
        std::fs::write(&p, rs.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n")).unwrap();
        p
    };
    let pa = write("half-a.jsonl", &a);
    let pb = write("half-b.jsonl", &b);
    let policy = dir.join("candor.toml");
    // Factcheck-GPT's halves hold fewer than 50 cases of a class: written anyway, on purpose.
    let o = common::candor(&["calibrate", pa.to_str().unwrap(), "--write-policy", policy.to_str().unwrap(), "--allow-small-sample"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let chosen = candor::config::GradeConfig::from_file(&policy).unwrap();
    // The config the results were graded with: the defaults, with the default model's own claim
    // threshold from the registry (candor.toml sets none here).
    let registry = candor::models::Registry::load(None).unwrap();
    let model = registry.default_for(candor::models::Role::Nli).unwrap();
    let (default, _) = candor::config::GradeConfig::default().with_model_defaults(&model);
    let held = candor::report::read_results(&pb).unwrap();
    let held: Vec<&candor::graders::CaseResult> = held.iter().collect();
    let items = candor::report::calibrate::items(&held, "support", "supported");
    let before = candor::report::calibrate::balanced_accuracy_at("support", &items, default.support.claim_threshold as f64, &default).unwrap();
    let t = chosen.support.claim_threshold as f64;
    let after = candor::report::calibrate::balanced_accuracy_at("support", &items, t, &chosen).unwrap();
    let pos = items.iter().filter(|i| i.label).count() as f64;
    let neg = items.len() as f64 - pos;
    let se = 0.5 * (0.25 / pos + 0.25 / neg).sqrt();
    (t, before, after, se)
}

/// The grader must match the bare model (within one point) on every set, and the threshold calibrated
/// on one half must not lose on the other by more than one standard error of that half.
fn check_support(prefix: &str) -> Vec<Value> {
    let (cfg, sets) = test_sets();
    let set = set_named(&sets, prefix);
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    let n = grounding_suite(set, &cfg.labels, &suite);
    let results = grade(&suite, "support");
    assert_eq!(results.len(), n);
    let f = support_figures(&results, false);
    let skipped: std::collections::BTreeSet<&str> =
        results.iter().filter_map(|r| r["metrics"]["support"]["skipped"].as_str()).collect();
    let no_claim = results.iter().filter(|r| r["metrics"]["support"]["claims"].as_array().is_some_and(|c| c.is_empty())).count();
    println!("{}: support skipped {} of {n} cases ({skipped:?}; {no_claim} of them claim nothing, failed as no_claim)", set.display_name(), n - f.n);
    assert!(f.n * 100 >= n * 90, "support skipped {} of {n} cases", n - f.n);
    let bare = bare_balanced_accuracy(&set.display_name());
    println!(
        "{}: n={} balanced accuracy {:.4} at the run's threshold, {:.4} at 0.5 (bare model at 0.5 {:.4}), ROC-AUC {:.4}",
        set.display_name(),
        f.n,
        f.balanced_accuracy,
        f.balanced_accuracy_at_half,
        bare,
        f.roc_auc
    );
    if f.n < n {
        // What a user's gate sees: a case that claims nothing fails.
        let all = support_figures(&results, true);
        println!(
            "{}: counting the {} cases that claim nothing as not supported, as the gate does: n={} balanced accuracy {:.4}, ROC-AUC {:.4}",
            set.display_name(),
            all.n - f.n,
            all.n,
            all.balanced_accuracy,
            all.roc_auc
        );
    }
    assert!(f.balanced_accuracy_at_half >= bare - 0.01, "grader {:.4} below the bare model {:.4} (both at 0.5)", f.balanced_accuracy_at_half, bare);
    assert!(f.roc_auc > 0.75, "{}", f.roc_auc);
    let (t, before, after, se) = calibrate_on_half(&results, dir.path());
    println!(
        "{}: calibrated on half A, claim_threshold {t:.4}: held-out half B balanced accuracy {before:.4} -> {after:.4} (one standard error {se:.4})",
        set.display_name()
    );
    // A threshold chosen on one half is noisy on the other: Factcheck-GPT's halves have about 130
    // cases, few of them refuted (one standard error up to 0.058), HaluEval's about 500 (up to 0.023). The chosen threshold
    // may lose within that noise (docs/quality.md records each swing), not beyond it.
    assert!(after >= before - se, "the calibrated threshold lowered held-out balanced accuracy beyond one standard error ({se:.4}): {before:.4} -> {after:.4}");
    results
}

#[test]
fn support_on_halueval_qa_heldout() {
    check_support("halueval-qa (held out");
}

/// HaluEval QA's claims are bare answers ("Los Angeles, California"): the same held-out cases graded
/// with their question as the case's `input`, so that `candor grade` reads each bare answer with it
/// (the claim form `with_question`). Printed beside the bare figures of the test above.
#[test]
fn support_on_halueval_qa_heldout_with_questions() {
    let (cfg, sets) = test_sets();
    let set = set_named(&sets, "halueval-qa (held out");
    let examples = data::load(set, &common::data_dir(), &cfg.labels).unwrap();
    let raw = common::read_jsonl(&common::data_dir().join(&set.path));
    let question: std::collections::HashMap<(&str, &str), &str> = raw
        .iter()
        .map(|r| ((r["evidence"].as_str().unwrap(), r["claim"].as_str().unwrap()), r["question"].as_str().unwrap()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    let lines: Vec<String> = examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let q = question[&(e.premise.as_str(), e.hypothesis.as_str())];
            json!({"id": i, "input": q, "output": e.hypothesis, "contexts": [e.premise],
                   "label": {"supported": e.is_entailment(&cfg.labels)}})
            .to_string()
        })
        .collect();
    std::fs::write(&suite, lines.join("\n")).unwrap();
    let results = grade(&suite, "support");
    assert_eq!(results.len(), examples.len());
    let with_question = results
        .iter()
        .flat_map(|r| r["metrics"]["support"]["claims"].as_array().into_iter().flatten())
        // A bare yes/no is read with its question too, weighed against the opposite answer.
        .filter(|c| c["graded"]["form"] == "with_question" || c["graded"]["form"] == "against_opposite")
        .count();
    let f = support_figures(&results, false);
    let bare = bare_balanced_accuracy(&set.display_name());
    println!(
        "{} with questions: n={} ({with_question} claims graded with their question) balanced accuracy {:.4} (bare model on bare answers {:.4}), ROC-AUC {:.4}",
        set.display_name(),
        f.n,
        f.balanced_accuracy,
        bare,
        f.roc_auc
    );
    assert!(with_question * 2 >= f.n, "most of HaluEval QA's answers are bare: {with_question} of {}", f.n);
    assert!(f.roc_auc > 0.75, "{}", f.roc_auc);
}

#[test]
fn support_on_halueval_dialogue_heldout() {
    // Chit-chat: short responses whose sentences lean on each other ("Didn't know RDJ was in there.")
    // and questions that presuppose facts ("Have you seen him in The Hunger Games?"). The grader reads
    // each sentence and, by default, the whole response (`[support] whole_output`), which the bare
    // model reads alone.
    check_support("halueval-dialogue (held out");
}

#[test]
fn support_on_factcheckgpt_heldout() {
    check_support("factcheckgpt (held out");
}

#[test]
fn citation_on_attributionbench_dev() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.jsonl");
    let n = attribution_suite(&suite);
    let results = grade(&suite, "citation");
    assert_eq!(results.len(), n);
    let mut predicted = vec![];
    let mut scores = vec![];
    let mut gold = vec![];
    for r in &results {
        let c = &r["metrics"]["citation"];
        let Some(sentences) = c["sentences"].as_array() else { panic!("citation ran: {r}") };
        // The claim may split into several sentences: all must be entailed by their citations.
        predicted.push(sentences.iter().all(|s| s["entailed"] == true));
        scores.push(sentences.iter().map(|s| s["score"].as_f64().unwrap_or(0.0)).fold(f64::INFINITY, f64::min));
        gold.push(r["label"]["attributable"].as_bool().unwrap());
    }
    let f = figures(&predicted, &scores, &gold);
    let bare = bare_balanced_accuracy("attributionbench-dev");
    println!(
        "attributionbench-dev citation: n={} balanced accuracy {:.4} at the run's threshold, {:.4} at 0.5 (bare model at 0.5 {:.4}), ROC-AUC {:.4}",
        f.n, f.balanced_accuracy, f.balanced_accuracy_at_half, bare, f.roc_auc
    );
    // The default model is little better than chance here (its card: 0.574 bare, issue 3's floor is
    // 0.60). What the grader must not do is lose what the model has: cutting the references into
    // windows and taking the best one may cost at most two points against the bare model on whole
    // references.
    assert!(f.balanced_accuracy_at_half >= bare - 0.02, "grader {:.4} below the bare model {:.4} (both at 0.5)", f.balanced_accuracy_at_half, bare);
    assert!(f.balanced_accuracy > 0.5 && f.roc_auc > 0.5, "no better than chance: {:.4} / {:.4}", f.balanced_accuracy, f.roc_auc);
}

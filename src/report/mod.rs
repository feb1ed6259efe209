//! Summaries of results: cases, pass rates with Wilson 95% intervals, mean scores per metric and
//! failures by class, overall and per segment (every `key=value` of `segments`), and, where cases carry
//! human labels, the grader's agreement with them.

/// Where candor's source documents drift, coverage, reviewer agreement and probes (`crate::audit`),
/// which the HTML report links to.
pub const AUDIT_DOCS: &str = "docs/audit.md";

pub mod calibrate;
pub mod compare;
pub mod cost;
pub mod escape;
pub mod gate;
pub mod manifest;
pub mod merge;
pub mod render;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::graders::{CaseResult, Failure};
use crate::stats;

/// 95% normal quantile.
const Z95: f64 = 1.959964;

/// Mean score of one metric over the cases where it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Cases where the metric ran.
    pub cases: usize,
    /// Mean score.
    pub mean: f64,
    /// Fraction of those cases that passed the metric.
    pub pass_rate: f64,
}

/// The grader's agreement with human labels for one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// The label key compared (`supported`, `attributable`, `consistent`).
    pub label: String,
    /// Labelled cases where the metric ran.
    pub cases: usize,
    /// Balanced accuracy of `passed` against the label.
    pub balanced_accuracy: Option<f64>,
    /// ROC-AUC against the label of the case's probability ([`calibrate::case_probability`]; the score for metrics without units).
    pub roc_auc: Option<f64>,
    /// Spearman rank correlation of the score with a numeric label (`{"score": x}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spearman: Option<f64>,
}

/// Counts for a group of cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Cases in the group.
    pub cases: usize,
    /// Cases that passed every metric that ran (at least one ran: see `skipped`).
    pub passed: usize,
    /// Cases where no metric ran and nothing failed (see [`skipped_entirely`]): counted apart, neither
    /// passed nor failed. Absent (0) in summaries written before it existed.
    #[serde(default)]
    pub skipped: usize,
    /// passed / (cases - skipped): the pass rate of the graded cases (0 when none was graded).
    pub pass_rate: f64,
    /// Wilson 95% interval of the pass rate.
    pub pass_rate_ci: [f64; 2],
    /// Per metric.
    pub metrics: BTreeMap<String, MetricSummary>,
    /// Cases with each failure class.
    pub failures: BTreeMap<String, usize>,
    /// Of those, the cases that passed all the same ([`passing_with_failures`] says how that comes
    /// about). Absent where none did, and in summaries written before it existed.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub failures_passed: BTreeMap<String, usize>,
    /// Agreement with labels, per metric, where labels exist.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub agreement: BTreeMap<String, Agreement>,
}

/// The summary written beside the results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// All cases.
    pub overall: GroupSummary,
    /// Per `key=value` segment.
    pub segments: BTreeMap<String, GroupSummary>,
    /// Suite lines that could not be graded.
    pub invalid_lines: usize,
    /// Fields of the suite candor does not know that look like a known field misspelt, each with
    /// the field it seems meant for ("retreival_context": "retrieval_context"): that field's
    /// content was not graded, and a gate fails on it unless its policy allows unknown fields.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub misspelt_fields: BTreeMap<String, String>,
    /// The models that graded.
    pub models: BTreeMap<String, String>,
    /// How the run was made, and whether it finished (see [`manifest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<manifest::Manifest>,
}

/// Whether a case was skipped entirely: no metric ran for it (each was skipped, or none was asked
/// for) and nothing failed it (an empty output fails). Such a case earned no pass: summaries count it
/// apart, outside the pass rate, and a gate fails on it unless the policy allows it.
pub fn skipped_entirely(r: &CaseResult) -> bool {
    // Not read from `passed`: such a case says `false` there now, and said `true` in older results.
    r.failures.is_empty() && r.metrics.scores().is_empty()
}

impl GroupSummary {
    /// Cases that were graded: all but the ones [`skipped_entirely`].
    pub fn graded(&self) -> usize {
        self.cases.saturating_sub(self.skipped)
    }

    /// Cases with a failure class, or `None` where the metric that finds it ([`Failure::metric`])
    /// ran on no case of the group: "0 found" would then be a count nobody made.
    pub fn failure_count(&self, f: Failure) -> Option<usize> {
        let ran = match f.metric() {
            None => true,
            Some("rubric") => self.metrics.keys().any(|m| !BUILT_IN_METRICS.contains(&m.as_str())),
            Some(m) => self.metrics.contains_key(m),
        };
        ran.then(|| self.failures.get(f.name()).copied().unwrap_or(0))
    }
}

pub use crate::graders::{label_key, BUILT_IN_METRICS};

/// The name of the group of cases with segment `key` = `value`: `key=value`.
pub fn segment_group(key: &str, value: &str) -> String {
    format!("{key}={value}")
}

/// The groups a case belongs to, one per segment: `key=value`, in key order.
pub fn segment_groups(r: &CaseResult) -> impl Iterator<Item = String> + '_ {
    r.segments.iter().map(|(k, v)| segment_group(k, v))
}

/// The group of a case for one `--by` key: `key=value`, or for keys joined with `+` (`task+risk`),
/// `task=x,risk=y`; `None` where the case lacks one of the keys.
pub fn by_group(r: &CaseResult, by: &str) -> Option<String> {
    let names: Option<Vec<String>> = by.split('+').map(str::trim).map(|k| r.segments.get(k).map(|v| segment_group(k, v))).collect();
    names.map(|n| n.join(","))
}

/// Every segment key of some case, sorted: what `--by` means when it names none.
pub fn segment_keys(results: &[CaseResult]) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = results.iter().flat_map(|r| r.segments.keys()).collect();
    keys.into_iter().cloned().collect()
}

/// Items (results, or pairs of results) grouped as the reports group them, by group name: `overall`
/// holds every item (and is there when there is none), and each other group the items whose result
/// (`case` of the item) is in it: with `by` = `None`, one group per `key=value` segment; with `by`
/// keys, one per value of each key ([`by_group`]).
pub fn grouped<T: Clone>(items: &[T], by: Option<&[String]>, case: impl Fn(&T) -> &CaseResult) -> BTreeMap<String, Vec<T>> {
    let mut groups: BTreeMap<String, Vec<T>> = BTreeMap::new();
    groups.insert("overall".into(), items.to_vec());
    match by {
        None => {
            for item in items {
                for g in segment_groups(case(item)) {
                    groups.entry(g).or_default().push(item.clone());
                }
            }
        }
        Some(keys) => {
            for key in keys {
                for item in items {
                    if let Some(g) = by_group(case(item), key) {
                        groups.entry(g).or_default().push(item.clone());
                    }
                }
            }
        }
    }
    groups
}

/// Running counts for one group of cases: what [`GroupSummary`] needs, gathered one result at a
/// time (a few numbers per metric, and a score per labelled case for ROC-AUC).
#[derive(Debug, Clone, Default)]
struct GroupAcc {
    cases: usize,
    passed: usize,
    skipped: usize,
    /// Per metric: cases, sum of scores, cases passed.
    metrics: BTreeMap<String, (usize, f64, usize)>,
    /// Per metric, for labelled cases: scores, verdicts, labels.
    labelled: BTreeMap<String, (Vec<f64>, Vec<bool>, Vec<bool>)>,
    /// Per metric, for cases with a numeric label `{"score": x}`: scores and labels.
    scored: BTreeMap<String, (Vec<f64>, Vec<f64>)>,
    failures: BTreeMap<&'static str, usize>,
    failures_passed: BTreeMap<&'static str, usize>,
}

impl GroupAcc {
    fn add(&mut self, r: &CaseResult) {
        self.cases += 1;
        if skipped_entirely(r) {
            self.skipped += 1;
        } else {
            self.passed += r.passed as usize;
        }
        for (name, score, ok) in r.metrics.scores() {
            let m = self.metrics.entry(name.to_string()).or_default();
            m.0 += 1;
            m.1 += score as f64;
            m.2 += ok as usize;
            if let (Some(key), Some(label)) = (label_key(name), r.label.as_ref()) {
                if let Some(gold) = label.get(key).and_then(|v| v.as_bool()) {
                    let e = self.labelled.entry(name.to_string()).or_default();
                    // Ranked by the same probability as calibration's, so that `grade`, `report` and
                    // `calibrate` give one ROC-AUC for one run.
                    e.0.push(calibrate::case_probability(r, name).unwrap_or(score as f64));
                    e.1.push(ok);
                    e.2.push(gold);
                }
            }
            if let Some(gold) = r.label.as_ref().and_then(|l| l.get("score")).and_then(|v| v.as_f64()).filter(|g| g.is_finite()) {
                let e = self.scored.entry(name.to_string()).or_default();
                e.0.push(score as f64);
                e.1.push(gold);
            }
        }
        for f in Failure::ALL {
            if r.failures.contains(&f) {
                *self.failures.entry(f.name()).or_default() += 1;
                if r.passed {
                    *self.failures_passed.entry(f.name()).or_default() += 1;
                }
            }
        }
    }

    fn finish(self) -> GroupSummary {
        let (cases, passed, skipped) = (self.cases, self.passed, self.skipped);
        let graded = cases - skipped;
        let (lo, hi) = stats::wilson(passed, graded, Z95);
        // Failure classes in their fixed order, as names.
        let in_order = |counts: &BTreeMap<&'static str, usize>| -> BTreeMap<String, usize> {
            Failure::ALL.iter().filter_map(|f| counts.get(f.name()).map(|&n| (f.name().to_string(), n))).collect()
        };
        let (failures, failures_passed) = (in_order(&self.failures), in_order(&self.failures_passed));
        let mut agreement: BTreeMap<String, Agreement> = self
            .labelled
            .into_iter()
            .map(|(name, (scores, predicted, gold))| {
                let key = label_key(&name).unwrap_or_default();
                let a = Agreement {
                    label: key.to_string(),
                    cases: gold.len(),
                    balanced_accuracy: stats::balanced_accuracy(&predicted, &gold),
                    roc_auc: stats::roc_auc(&scores, &gold),
                    spearman: None,
                };
                (name, a)
            })
            .collect();
        for (name, (scores, gold)) in self.scored {
            let a = agreement.entry(name).or_insert_with(|| Agreement {
                label: "score".into(),
                cases: gold.len(),
                balanced_accuracy: None,
                roc_auc: None,
                spearman: None,
            });
            a.spearman = stats::spearman(&scores, &gold);
        }
        GroupSummary {
            cases,
            passed,
            skipped,
            pass_rate: if graded > 0 { passed as f64 / graded as f64 } else { 0.0 },
            pass_rate_ci: [lo, hi],
            metrics: self
                .metrics
                .into_iter()
                .map(|(k, (n, sum, ok))| (k, MetricSummary { cases: n, mean: sum / n as f64, pass_rate: ok as f64 / n as f64 }))
                .collect(),
            failures,
            failures_passed,
            agreement,
        }
    }
}

/// Where passing cases hold failure classes (`counts`: cases per class), a line that says how many,
/// and why a case can pass with them: support passes a case when the share of its claims supported
/// reaches `[support] pass` (RAGAS's faithfulness), so a case of nine claims passes with one
/// unsupported; `unsupported_specific` flags a claim without failing it. A gate rule on
/// `failures.<class>` counts every case, passed or not.
pub fn passing_with_failures(counts: &BTreeMap<String, usize>) -> Option<String> {
    if counts.is_empty() {
        return None;
    }
    let mut v: Vec<(&String, &usize)> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    let list: Vec<String> = v.iter().map(|(k, n)| format!("{k} {n}")).collect();
    Some(format!(
        "passing cases that hold a failure class: {} (a case passes support when the share of its claims supported \
         reaches `[support] pass`, and `unsupported_specific` flags a claim without failing it; set `[support] pass = 1` \
         to fail every unsupported claim, or gate on `failures.<class>`, which counts every case)",
        list.join(", ")
    ))
}

impl GroupSummary {
    /// Summarises a group of results.
    pub fn of(results: &[&CaseResult]) -> Self {
        let mut acc = GroupAcc::default();
        for r in results {
            acc.add(r);
        }
        acc.finish()
    }
}

/// Builds a [`Summary`] one result at a time, so that a run need not keep its results: memory is a
/// few numbers per group and metric, plus a score per labelled case.
#[derive(Debug, Clone, Default)]
pub struct SummaryBuilder {
    overall: GroupAcc,
    segments: BTreeMap<String, GroupAcc>,
}

impl SummaryBuilder {
    /// An empty summary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one result.
    pub fn add(&mut self, r: &CaseResult) {
        self.overall.add(r);
        for g in segment_groups(r) {
            self.segments.entry(g).or_default().add(r);
        }
    }

    /// Results counted so far.
    pub fn cases(&self) -> usize {
        self.overall.cases
    }

    /// The summary.
    pub fn finish(self, invalid_lines: usize, models: BTreeMap<String, String>) -> Summary {
        Summary {
            misspelt_fields: BTreeMap::new(),
            overall: self.overall.finish(),
            segments: self.segments.into_iter().map(|(k, v)| (k, v.finish())).collect(),
            invalid_lines,
            models,
            run: None,
        }
    }
}

impl Summary {
    /// Summarises results overall and per segment.
    pub fn of(results: &[CaseResult], invalid_lines: usize, models: BTreeMap<String, String>) -> Self {
        let mut b = SummaryBuilder::new();
        for r in results {
            b.add(r);
        }
        b.finish(invalid_lines, models)
    }

    /// A plain-text table for the terminal. Where some case was skipped entirely (no metric ran), a
    /// `skipped` column follows `cases`, and the pass rate is over the cases graded.
    pub fn table(&self) -> String {
        let show_skipped = self.overall.skipped > 0;
        let metric_names: Vec<String> = {
            let mut v: Vec<String> = self.overall.metrics.keys().cloned().collect();
            v.sort_by_key(|n| BUILT_IN_METRICS.iter().position(|x| x == n).unwrap_or(BUILT_IN_METRICS.len()));
            v
        };
        let mut out = String::new();
        let _ = write!(out, "{:<28} {:>6}", "segment", "cases");
        if show_skipped {
            let _ = write!(out, " {:>7}", "skipped");
        }
        let _ = write!(out, " {:>18}", "pass rate (95% CI)");
        for m in &metric_names {
            let _ = write!(out, " {:>11}", escape::terminal(m));
        }
        let _ = writeln!(out, "  failures");
        let mut row = |name: &str, g: &GroupSummary| {
            let _ = write!(out, "{:<28} {:>6}", truncate(&escape::terminal(name), 28), g.cases);
            if show_skipped {
                let _ = write!(out, " {:>7}", g.skipped);
            }
            if g.cases <= g.skipped {
                // Nothing was rated: no rate to give (not "0.0% (0.0-100.0)").
                let _ = write!(out, " {:>19}", "- (none rated)");
            } else {
                let _ = write!(
                    out,
                    " {:>5.1}% ({:>4.1}-{:>5.1})",
                    100.0 * g.pass_rate,
                    100.0 * g.pass_rate_ci[0],
                    100.0 * g.pass_rate_ci[1]
                );
            }
            for m in &metric_names {
                match g.metrics.get(m) {
                    Some(s) => {
                        let _ = write!(out, " {:>11.3}", s.mean);
                    }
                    None => {
                        let _ = write!(out, " {:>11}", "-");
                    }
                }
            }
            let mut f: Vec<(&String, &usize)> = g.failures.iter().collect();
            f.sort_by(|a, b| b.1.cmp(a.1));
            let list: Vec<String> = f.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(out, "  {}", list.join(", "));
        };
        row("all", &self.overall);
        for (k, g) in &self.segments {
            row(k, g);
        }
        if let Some(line) = passing_with_failures(&self.overall.failures_passed) {
            let _ = writeln!(out, "{line}");
        }
        if show_skipped {
            let _ = writeln!(
                out,
                "{} case(s) skipped entirely (no metric ran): neither passed nor failed, outside the pass rate",
                self.overall.skipped
            );
        }
        for (m, a) in &self.overall.agreement {
            let m = escape::terminal(m);
            if let Some(rho) = a.spearman {
                let _ = writeln!(out, "agreement of {m} with label `score` on {} cases: Spearman {rho:.3}", a.cases);
                if a.label == "score" {
                    continue;
                }
            }
            let _ = writeln!(
                out,
                "agreement of {m} with label `{}` on {} cases: balanced accuracy {}, ROC-AUC {}",
                a.label,
                a.cases,
                fmt_opt(a.balanced_accuracy),
                fmt_opt(a.roc_auc)
            );
        }
        out
    }
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a (one class only)".to_string(), |v| format!("{v:.3}"))
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// Parses one line of a results file (`number` is 1-based, for the error).
fn parse_result(path: &Path, number: usize, line: &str) -> Result<CaseResult> {
    serde_json::from_str(line)
        .map_err(|e| Error::Input { location: format!("{}:{number}", path.display()), reason: format!("not a result line: {e}") })
}

/// Reads a results file written by `candor grade` one line at a time, calling `f` with each result;
/// a bad line is an error naming its number.
pub fn each_result(path: &Path, mut f: impl FnMut(CaseResult)) -> Result<()> {
    use std::io::BufRead as _;
    let reader = std::io::BufReader::new(std::fs::File::open(path).map_err(|e| Error::io(path, e))?);
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if !line.trim().is_empty() {
            f(parse_result(path, i + 1, &line)?);
        }
    }
    Ok(())
}

/// Reads a results file written by `candor grade`; a bad line is an error naming its number.
pub fn read_results(path: &Path) -> Result<Vec<CaseResult>> {
    let mut out = Vec::new();
    each_result(path, |r| out.push(r))?;
    Ok(out)
}

/// The finished results of a results file being resumed, and the byte length they end at.
///
/// A run writes whole lines, each ending with a newline; a run killed mid-write leaves a torn tail
/// after the last newline, whatever it holds (part of a line, half of a UTF-8 character). Every
/// complete line must be a result (anything else is an error: the file is not ours to cut); the torn
/// tail is not read. [`cut_torn_tail`] then shortens the file to the returned length, so that
/// resuming never rewrites a finished line (a crash at any instant of a resume loses nothing).
pub fn finished_results(path: &Path) -> Result<(Vec<CaseResult>, u64)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut out = Vec::new();
    for (i, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
        let line = std::str::from_utf8(line)
            .map_err(|e| Error::Input { location: format!("{}:{}", path.display(), i + 1), reason: format!("not UTF-8: {e}") })?;
        if !line.trim().is_empty() {
            out.push(parse_result(path, i + 1, line)?);
        }
    }
    Ok((out, complete as u64))
}

/// Shortens a results file to `len` bytes (the end of its last complete line, from
/// [`finished_results`]), dropping a torn tail; says how many bytes were dropped. The bytes before
/// `len` are not touched.
pub fn cut_torn_tail(path: &Path, len: u64) -> Result<u64> {
    let file = std::fs::OpenOptions::new().write(true).open(path).map_err(|e| Error::io(path, e))?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if size > len {
        file.set_len(len).map_err(|e| Error::io(path, e))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
    }
    Ok(size.saturating_sub(len))
}

pub use crate::io::summary_path;

/// The models recorded in results (those of the first line).
pub fn models_of(results: &[CaseResult]) -> BTreeMap<String, String> {
    results.first().map(|r| r.model.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A result with segments and the given metrics (`support`, `citation`, `consistency`, or a
    /// rubric's name), each scored 0.5 and passed.
    fn result(id: &str, segments: &[(&str, &str)], metrics: &[&str]) -> CaseResult {
        let mut m = serde_json::Map::new();
        for name in metrics {
            let v = match *name {
                "support" => serde_json::json!({"score": 0.5, "passed": true, "claims": []}),
                "citation" => serde_json::json!({"score": 0.5, "recall": 0.5, "precision": 0.5, "passed": true, "sentences": []}),
                "consistency" => serde_json::json!({"score": 0.5, "passed": true}),
                "checks" => serde_json::json!({"score": 0.5, "passed": true, "checks": []}),
                // Rubrics sit beside the built-in metrics, by name.
                _ => serde_json::json!({"score": 0.5, "passed": true, "rating": 3.0, "distribution": [], "mass": 1.0}),
            };
            m.insert(name.to_string(), v);
        }
        let segments: serde_json::Map<String, serde_json::Value> = segments.iter().map(|(k, v)| (k.to_string(), (*v).into())).collect();
        let line = serde_json::json!({"id": id, "segments": segments, "metrics": m, "failures": [], "passed": true, "model": {}});
        serde_json::from_value(line).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_built_in_metrics_are_the_names_results_use() {
        let r = result("a", &[], &["consistency", "polite", "checks", "citation", "support"]);
        let names: Vec<&str> = r.metrics.scores().into_iter().map(|(n, _, _)| n).collect();
        assert_eq!(names, ["support", "citation", "consistency", "checks", "polite"], "built-in metrics first, in their order");
        assert_eq!(names[..4], BUILT_IN_METRICS);
        let labels: Vec<Option<&str>> = names.iter().map(|n| label_key(n)).collect();
        assert_eq!(labels, [Some("supported"), Some("attributable"), Some("consistent"), None, None]);
        // A rubric cannot take a built-in name.
        for name in BUILT_IN_METRICS {
            let cfg: crate::config::GradeConfig = toml::from_str(&format!("[[rubric]]\nname = \"{name}\"\ncriterion = \"x\"\n")).unwrap();
            assert!(cfg.check().unwrap_err().contains("built-in"), "{name}");
        }
        // The summary's table lists the built-in metrics in that order, rubrics after.
        let table = Summary::of(std::slice::from_ref(&r), 0, BTreeMap::new()).table();
        let header = table.lines().next().unwrap_or_default();
        let at = |m: &str| header.find(m).unwrap_or_else(|| panic!("{m} in {header}"));
        assert!(at("support") < at("citation") && at("citation") < at("consistency") && at("consistency") < at("checks") && at("checks") < at("polite"), "{header}");
    }

    #[test]
    fn cases_are_grouped_by_segment_or_by_key() {
        let rs = vec![
            result("a", &[("task", "billing"), ("risk", "high")], &["support"]),
            result("b", &[("task", "billing")], &["support"]),
            result("c", &[("risk", "low")], &["support"]),
        ];
        let ids = |g: &BTreeMap<String, Vec<&CaseResult>>| -> Vec<(String, String)> {
            g.iter().map(|(k, v)| (k.clone(), v.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(""))).collect()
        };
        let all: Vec<&CaseResult> = rs.iter().collect();
        let by_segment = grouped(&all, None, |r| *r);
        let want = [("overall", "abc"), ("risk=high", "a"), ("risk=low", "c"), ("task=billing", "ab")];
        assert_eq!(ids(&by_segment), want.map(|(a, b)| (a.to_string(), b.to_string())));
        let by_keys = grouped(&all, Some(&["task+risk".to_string(), " task".to_string()]), |r| *r);
        let want = [("overall", "abc"), ("task=billing", "ab"), ("task=billing,risk=high", "a")];
        assert_eq!(ids(&by_keys), want.map(|(a, b)| (a.to_string(), b.to_string())));
        // With nothing to group, the overall group is still there.
        assert_eq!(grouped::<&CaseResult>(&[], None, |r| *r).keys().collect::<Vec<_>>(), ["overall"]);
        assert_eq!(segment_keys(&rs), ["risk", "task"]);
        // The summary's segments are the same groups.
        let s = Summary::of(&rs, 0, BTreeMap::new());
        let names: Vec<&String> = s.segments.keys().collect();
        assert_eq!(names, ["risk=high", "risk=low", "task=billing"]);
        assert_eq!(s.segments["task=billing"].cases, 2);
    }

    #[test]
    fn a_table_with_nothing_rated_gives_no_rate() {
        let table = Summary::of(&[], 8, BTreeMap::new()).table();
        assert!(table.contains("- (none rated)") && !table.contains("0.0%"), "{table}");
        let rated = Summary::of(&[result("a", &[], &["support"])], 0, BTreeMap::new()).table();
        assert!(!rated.contains("none rated"), "{rated}");
    }

    #[test]
    fn the_summary_table_shows_no_control_character() {
        let rs = vec![
            result("a", &[("task", "\u{1b}[2J\u{1b}[31mred\nnext")], &["support", "po\u{7}lite"]),
            result("b", &[("task", "plain")], &["support"]),
        ];
        let table = Summary::of(&rs, 0, BTreeMap::new()).table();
        assert!(!table.chars().any(|c| c.is_control() && c != '\n'), "{table:?}");
        assert!(table.contains("po\\x07lite") && table.contains("task=\\x1b[2J\\x1b[31"), "{table}");
        // A header, overall and the two segments: the line break in a value opened no line.
        assert_eq!(table.lines().count(), 4, "{table}");
    }

    #[test]
    fn passing_cases_that_hold_a_failure_class_are_counted_and_explained() {
        let mut rs = vec![result("a", &[], &["support"]), result("b", &[], &["support"]), result("c", &[], &["support"])];
        // a passes with one claim of nine unsupported; b fails with it; c passes clean.
        rs[0].failures = vec![Failure::UnsupportedClaim, Failure::UnsupportedSpecific];
        rs[1].failures = vec![Failure::UnsupportedClaim];
        rs[1].passed = false;
        let s = Summary::of(&rs, 0, BTreeMap::new());
        assert_eq!(s.overall.failures["unsupported_claim"], 2);
        assert_eq!(s.overall.failures_passed.get("unsupported_claim"), Some(&1));
        assert_eq!(s.overall.failures_passed.get("unsupported_specific"), Some(&1));
        let table = s.table();
        assert!(table.contains("passing cases that hold a failure class: ") && table.contains("`[support] pass = 1`"), "{table}");
        // Clean passes say nothing, and a summary without the field reads as none.
        let clean = Summary::of(&rs[2..], 0, BTreeMap::new());
        assert!(clean.overall.failures_passed.is_empty() && !clean.table().contains("passing cases that hold"));
        let json = serde_json::to_value(&clean).unwrap();
        assert!(json["overall"].get("failures_passed").is_none(), "{json}");
    }
}

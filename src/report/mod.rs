//! Summaries of results: cases, pass rates with Wilson 95% intervals, mean scores per metric and
//! failures by class, overall and per segment (every `key=value` of `segments`), and, where cases carry
//! human labels, the grader's agreement with them.

pub mod calibrate;
pub mod compare;
pub mod gate;
pub mod merge;
pub mod render;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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
    /// ROC-AUC of the score against the label.
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
    /// The models that graded.
    pub models: BTreeMap<String, String>,
}

/// Whether a case was skipped entirely: no metric ran for it (each was skipped, or none was asked
/// for) and nothing failed it (an empty output fails). Such a case earned no pass: summaries count it
/// apart, outside the pass rate, and a gate fails on it unless the policy allows it.
pub fn skipped_entirely(r: &CaseResult) -> bool {
    r.passed && r.failures.is_empty() && r.metrics.scores().is_empty()
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

/// The built-in metrics; any other metric name in results is a rubric's.
pub const BUILT_IN_METRICS: [&str; 3] = ["support", "citation", "consistency"];

/// The label key that measures each metric.
const LABEL_OF: [(&str, &str); 3] = [("support", "supported"), ("citation", "attributable"), ("consistency", "consistent")];

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
            let key = LABEL_OF.iter().find(|(n, _)| *n == name).map(|(_, k)| *k);
            if let (Some(key), Some(label)) = (key, r.label.as_ref()) {
                if let Some(gold) = label.get(key).and_then(|v| v.as_bool()) {
                    let e = self.labelled.entry(name.to_string()).or_default();
                    e.0.push(score as f64);
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
            }
        }
    }

    fn finish(self) -> GroupSummary {
        let (cases, passed, skipped) = (self.cases, self.passed, self.skipped);
        let graded = cases - skipped;
        let (lo, hi) = stats::wilson(passed, graded, Z95);
        // Failure classes in their fixed order, as names.
        let failures = Failure::ALL
            .iter()
            .filter_map(|f| self.failures.get(f.name()).map(|&n| (f.name().to_string(), n)))
            .collect();
        let mut agreement: BTreeMap<String, Agreement> = self
            .labelled
            .into_iter()
            .map(|(name, (scores, predicted, gold))| {
                let key = LABEL_OF.iter().find(|(n, _)| *n == name).map_or("", |(_, k)| *k);
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
            agreement,
        }
    }
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
        for (k, v) in &r.segments {
            self.segments.entry(format!("{k}={v}")).or_default().add(r);
        }
    }

    /// Results counted so far.
    pub fn cases(&self) -> usize {
        self.overall.cases
    }

    /// The summary.
    pub fn finish(self, invalid_lines: usize, models: BTreeMap<String, String>) -> Summary {
        Summary {
            overall: self.overall.finish(),
            segments: self.segments.into_iter().map(|(k, v)| (k, v.finish())).collect(),
            invalid_lines,
            models,
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
            v.sort_by_key(|n| ["support", "citation", "consistency"].iter().position(|x| x == n).unwrap_or(9));
            v
        };
        let mut out = String::new();
        let _ = write!(out, "{:<28} {:>6}", "segment", "cases");
        if show_skipped {
            let _ = write!(out, " {:>7}", "skipped");
        }
        let _ = write!(out, " {:>18}", "pass rate (95% CI)");
        for m in &metric_names {
            let _ = write!(out, " {:>11}", m);
        }
        let _ = writeln!(out, "  failures");
        let mut row = |name: &str, g: &GroupSummary| {
            let _ = write!(out, "{:<28} {:>6}", truncate(name, 28), g.cases);
            if show_skipped {
                let _ = write!(out, " {:>7}", g.skipped);
            }
            let _ = write!(
                out,
                " {:>5.1}% ({:>4.1}-{:>5.1})",
                100.0 * g.pass_rate,
                100.0 * g.pass_rate_ci[0],
                100.0 * g.pass_rate_ci[1]
            );
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
        if show_skipped {
            let _ = writeln!(
                out,
                "{} case(s) skipped entirely (no metric ran): neither passed nor failed, outside the pass rate",
                self.overall.skipped
            );
        }
        for (m, a) in &self.overall.agreement {
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

/// Reads a results file written by `candor grade`; a bad line is an error naming its number.
pub fn read_results(path: &Path) -> Result<Vec<CaseResult>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: CaseResult = serde_json::from_str(line)
            .map_err(|e| Error::Input { location: format!("{}:{}", path.display(), i + 1), reason: format!("not a result line: {e}") })?;
        out.push(r);
    }
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
        let at = || format!("{}:{}", path.display(), i + 1);
        let line = std::str::from_utf8(line).map_err(|e| Error::Input { location: at(), reason: format!("not UTF-8: {e}") })?;
        if line.trim().is_empty() {
            continue;
        }
        let r: CaseResult = serde_json::from_str(line)
            .map_err(|e| Error::Input { location: at(), reason: format!("not a result line: {e}") })?;
        out.push(r);
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

/// The summary file beside a results file: `r.jsonl` -> `r.summary.json`.
pub fn summary_path(results: &Path) -> PathBuf {
    let stem = results.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "results".into());
    results.with_file_name(format!("{stem}.summary.json"))
}

/// The models recorded in results (those of the first line).
pub fn models_of(results: &[CaseResult]) -> BTreeMap<String, String> {
    results.first().map(|r| r.model.clone()).unwrap_or_default()
}

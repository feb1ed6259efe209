//! Comparing two runs of the same suite: per group (overall and each segment) and metric, the change
//! of the mean score with a paired bootstrap interval, McNemar's test on pass/fail, and the cases that
//! flipped, worst first.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::{escape, grouped, BUILT_IN_METRICS};
use crate::graders::CaseResult;
use crate::stats;

/// The change of one quantity in one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// `overall` or `key=value`.
    pub group: String,
    /// `case` (pass/fail of the case) or a metric name.
    pub metric: String,
    /// Cases present in both runs where the metric ran in both.
    pub paired: usize,
    /// Mean score before (pass rate for `case`).
    pub before: f64,
    /// Mean score after.
    pub after: f64,
    /// Paired bootstrap 95% interval of after - before.
    pub interval: [f64; 2],
    /// Cases that went pass -> fail.
    pub pass_to_fail: usize,
    /// Cases that went fail -> pass.
    pub fail_to_pass: usize,
    /// McNemar's two-sided p-value on the flips.
    pub mcnemar_p: f64,
}

/// A case whose verdict changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flip {
    /// The case id.
    pub id: String,
    /// `pass_to_fail` or `fail_to_pass`.
    pub direction: String,
    /// Change of the lowest metric score (negative: worse).
    pub score_change: f64,
    /// Failure classes after.
    pub failures_after: Vec<String>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Cases only in the old run.
    pub only_old: usize,
    /// Cases only in the new run.
    pub only_new: usize,
    /// Per group and metric.
    pub changes: Vec<Change>,
    /// Flipped cases, regressions first, the largest score drop first.
    pub flips: Vec<Flip>,
}

fn values(r: &CaseResult, metric: &str) -> Option<(f64, bool)> {
    if metric == "case" {
        // A case where no metric ran earned no pass: it is left out of the pass-rate change.
        return (!super::skipped_entirely(r)).then_some((r.passed as u8 as f64, r.passed));
    }
    r.metrics.scores().into_iter().find(|(n, _, _)| *n == metric).map(|(_, s, p)| (s as f64, p))
}

fn lowest(r: &CaseResult) -> f64 {
    r.metrics.scores().iter().map(|(_, s, _)| *s as f64).fold(1.0, f64::min)
}

/// Compares two runs (cases paired by id).
pub fn compare(old: &[CaseResult], new: &[CaseResult], seed: u64) -> Comparison {
    let old_by_id: BTreeMap<&str, &CaseResult> = old.iter().map(|r| (r.id.as_str(), r)).collect();
    let new_ids: std::collections::HashSet<&str> = new.iter().map(|r| r.id.as_str()).collect();
    let pairs: Vec<(&CaseResult, &CaseResult)> = new.iter().filter_map(|n| Some((*old_by_id.get(n.id.as_str())?, n))).collect();
    let groups = grouped(&pairs, None, |p| p.1);
    let mut flips = vec![];
    for &(o, n) in &pairs {
        // A case skipped in both runs did not flip (older results said `passed: true` for it).
        if o.passed != n.passed && !(super::skipped_entirely(o) && super::skipped_entirely(n)) {
            flips.push(Flip {
                id: n.id.clone(),
                direction: if o.passed { "pass_to_fail".into() } else { "fail_to_pass".into() },
                score_change: lowest(n) - lowest(o),
                failures_after: n.failures.iter().map(|f| f.name().to_string()).collect(),
            });
        }
    }
    flips.sort_by(|a, b| b.direction.cmp(&a.direction).then(a.score_change.total_cmp(&b.score_change)));
    let mut changes = vec![];
    for (group, pairs) in &groups {
        for metric in std::iter::once("case").chain(BUILT_IN_METRICS) {
            let vals: Vec<((f64, bool), (f64, bool))> =
                pairs.iter().filter_map(|(o, n)| Some((values(o, metric)?, values(n, metric)?))).collect();
            if vals.is_empty() {
                continue;
            }
            let a: Vec<f64> = vals.iter().map(|v| v.0 .0).collect();
            let b: Vec<f64> = vals.iter().map(|v| v.1 .0).collect();
            let n = a.len() as f64;
            let pf = vals.iter().filter(|v| v.0 .1 && !v.1 .1).count();
            let fp = vals.iter().filter(|v| !v.0 .1 && v.1 .1).count();
            let (lo, hi) = stats::paired_bootstrap_diff_ci(&a, &b, 2000, 0.05, seed).unwrap_or((0.0, 0.0));
            changes.push(Change {
                group: group.clone(),
                metric: metric.into(),
                paired: vals.len(),
                before: a.iter().sum::<f64>() / n,
                after: b.iter().sum::<f64>() / n,
                interval: [lo, hi],
                pass_to_fail: pf,
                fail_to_pass: fp,
                mcnemar_p: stats::mcnemar(pf, fp),
            });
        }
    }
    Comparison {
        only_old: old.iter().filter(|r| !new_ids.contains(r.id.as_str())).count(),
        only_new: new.iter().filter(|r| !old_by_id.contains_key(r.id.as_str())).count(),
        changes,
        flips,
    }
}

impl Comparison {
    /// A plain-text table, then the flips (at most `max_flips`).
    pub fn table(&self, max_flips: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<24} {:<12} {:>6} {:>8} {:>8} {:>9} {:>20} {:>10} {:>10} {:>9}",
            "group", "metric", "paired", "before", "after", "change", "change 95% interval", "pass->fail", "fail->pass", "McNemar p"
        );
        for c in &self.changes {
            let _ = writeln!(
                s,
                "{:<24} {:<12} {:>6} {:>8.4} {:>8.4} {:>+9.4} {:>+9.4} to {:>+7.4} {:>10} {:>10} {:>9.4}",
                escape::terminal(&c.group),
                c.metric,
                c.paired,
                c.before, c.after, c.after - c.before, c.interval[0], c.interval[1], c.pass_to_fail, c.fail_to_pass, c.mcnemar_p
            );
        }
        if self.only_old + self.only_new > 0 {
            let _ = writeln!(s, "{} case(s) only in the old run, {} only in the new run (not compared)", self.only_old, self.only_new);
        }
        let _ = writeln!(s, "\n{} case(s) flipped (direction, id, change of the lowest metric score, failures after):", self.flips.len());
        for f in self.flips.iter().take(max_flips) {
            let _ = writeln!(
                s,
                "  {:<14} {:<32} change of lowest score {:+.3}  {}",
                f.direction,
                escape::terminal(&f.id),
                f.score_change,
                f.failures_after.join(", ")
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, task: &str, score: f64, passed: bool) -> CaseResult {
        let line = serde_json::json!({"id": id, "segments": {"task": task}, "failures": [], "passed": passed, "model": {},
            "metrics": {"support": {"score": score, "passed": passed, "claims": []}}});
        serde_json::from_value(line).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Groups and flipped ids that carry terminal escapes and line breaks print as visible escapes,
    /// one line each.
    #[test]
    fn the_table_shows_no_control_character() {
        let ids = ["\u{1b}[2Jcleared", "b\nforged line", "c"];
        let old: Vec<CaseResult> = ids.iter().map(|id| result(id, "\u{9b}31mred", 0.9, true)).collect();
        let new: Vec<CaseResult> = ids.iter().map(|id| result(id, "\u{9b}31mred", 0.1, *id == "c")).collect();
        let c = compare(&old, &new, 7);
        assert_eq!(c.flips.len(), 2);
        let groups: Vec<&str> = c.changes.iter().map(|x| x.group.as_str()).collect();
        assert_eq!(groups, ["overall", "overall", "task=\u{9b}31mred", "task=\u{9b}31mred"], "case and support per group");
        let t = c.table(10);
        assert!(!t.chars().any(|ch| ch.is_control() && ch != '\n'), "{t:?}");
        assert!(t.contains("task=\\x9b31mred") && t.contains("\\x1b[2Jcleared") && t.contains("b\\nforged line"), "{t}");
        // A header, four changes, a blank line, the flips line and two flips.
        assert_eq!(t.lines().count(), 1 + 4 + 1 + 1 + 2, "{t}");
    }
}

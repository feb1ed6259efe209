//! Cost-weighted outcomes. Not every failure costs the same (a missed fraud is not a blocked
//! customer): a gate policy's `[cost]` table prices each failure class, per segment where it says
//! so, and a case costs the sum of the prices of its failure classes. The expected cost per case of
//! a group is the mean over its graded cases, with a bootstrap interval.
//!
//! ```toml
//! [cost]
//! confidence = 0.95                                       # of the bootstrap interval
//! per_failure = { contradicted_claim = 20, unsupported_claim = 5, over_refusal = 1 }
//! [cost.segments."risk=high"]                             # cases with this segment pay these prices
//! per_failure = { unsupported_claim = 50 }                #   (the highest, where several segments price a class)
//! ```
//!
//! Fail closed: a group's cost cannot be measured where a priced class's metric did not run (its
//! failures would be counted as free), nor on a group with no graded case.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{skipped_entirely, GroupSummary, BUILT_IN_METRICS};
use crate::graders::{CaseResult, Failure};
use crate::stats;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CostFile {
    #[serde(default = "default_confidence")]
    confidence: f64,
    #[serde(default)]
    per_failure: BTreeMap<String, f64>,
    #[serde(default)]
    segments: BTreeMap<String, CostSegmentFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CostSegmentFile {
    per_failure: BTreeMap<String, f64>,
}

fn default_confidence() -> f64 {
    0.95
}

/// A policy's prices.
#[derive(Debug, Clone, PartialEq)]
pub struct CostPolicy {
    /// The price of each class for every case.
    pub per_failure: Vec<(Failure, f64)>,
    /// Prices for the cases of a segment (`key=value`), over the ones above.
    pub segments: Vec<(String, Vec<(Failure, f64)>)>,
    /// Confidence of the bootstrap interval.
    pub confidence: f64,
}

/// A group's expected cost per case.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// Mean cost per graded case.
    pub mean: f64,
    /// The bootstrap interval of the mean.
    pub lower: f64,
    /// The bootstrap interval's upper end.
    pub upper: f64,
    /// The summed cost.
    pub total: f64,
    /// Cases it is over: graded, with every metric that finds a priced class run on them.
    pub cases: usize,
    /// Cases in the group.
    pub of: usize,
}

fn prices(table: &BTreeMap<String, f64>, at: &str) -> Result<Vec<(Failure, f64)>, String> {
    table
        .iter()
        .map(|(name, &price)| {
            let f = Failure::ALL.iter().copied().find(|f| f.name() == name).ok_or_else(|| {
                let classes: Vec<&str> = Failure::ALL.iter().map(|f| f.name()).collect();
                format!("{at}: no failure class `{name}` (classes: {})", classes.join(", "))
            })?;
            if !(price.is_finite() && price >= 0.0) {
                return Err(format!("{at}: the price of `{name}` must be a number >= 0, not {price}"));
            }
            Ok((f, price))
        })
        .collect()
}

impl CostPolicy {
    pub(crate) fn from_file(f: CostFile) -> Result<Self, String> {
        if !(f.confidence > 0.0 && f.confidence < 1.0) {
            return Err(format!("cost.confidence = {} must be in (0, 1)", f.confidence));
        }
        let per_failure = prices(&f.per_failure, "cost.per_failure")?;
        let mut segments = vec![];
        for (seg, s) in f.segments {
            if !seg.contains('=') {
                return Err(format!("cost.segments.\"{seg}\": name the segment as key=value, e.g. \"risk=high\""));
            }
            segments.push((seg.clone(), prices(&s.per_failure, &format!("cost.segments.\"{seg}\".per_failure"))?));
        }
        if per_failure.iter().chain(segments.iter().flat_map(|(_, p)| p)).all(|(_, p)| *p == 0.0) {
            return Err("[cost] prices nothing: give per_failure = { contradicted_claim = 10, ... }".into());
        }
        Ok(Self { per_failure, segments, confidence: f.confidence })
    }

    /// The first priced segment (`key=value`) that `has` says no case has: a misspelt value, whose
    /// prices would drop in silence.
    pub fn missing_segment(&self, has: impl Fn(&str) -> bool) -> Option<&str> {
        self.segments.iter().map(|(seg, _)| seg.as_str()).find(|seg| !has(seg))
    }

    /// What failing with `f` costs `case`: the highest price a segment of the case sets for `f`,
    /// else the policy's own, else nothing.
    pub fn price(&self, f: Failure, case: &CaseResult) -> f64 {
        let by_segment = self
            .segments
            .iter()
            .filter(|(seg, _)| seg.split_once('=').is_some_and(|(k, v)| case.segments.get(k).map(String::as_str) == Some(v)))
            .filter_map(|(_, p)| p.iter().find(|(c, _)| *c == f).map(|(_, x)| *x))
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        by_segment.or_else(|| self.per_failure.iter().find(|(c, _)| *c == f).map(|(_, x)| *x)).unwrap_or(0.0)
    }

    /// The cost of one case (each of its failure classes once); `None` where it cannot be priced:
    /// no metric ran on it, or a metric that finds a priced class did not (its failures there
    /// would count as free).
    pub fn case_cost(&self, case: &CaseResult) -> Option<f64> {
        if skipped_entirely(case) {
            return None;
        }
        // A metric skipped because the case already failed in a way that stops it (an empty output,
        // an output that claims nothing) leaves nothing unpriced; one skipped for another reason
        // (no contexts) does: its failures there would count as free.
        let explained = case.failures.iter().any(|f| matches!(f, Failure::EmptyOutput | Failure::NoClaim));
        if !explained && self.priced_classes().iter().any(|f| self.price(*f, case) > 0.0 && f.metric().is_some_and(|m| !metric_ran(case, m))) {
            return None;
        }
        let mut seen = vec![];
        let mut cost = 0.0;
        for f in &case.failures {
            if !seen.contains(f) {
                seen.push(*f);
                cost += self.price(*f, case);
            }
        }
        Some(cost)
    }

    /// Classes some price makes costly.
    pub fn priced_classes(&self) -> Vec<Failure> {
        let mut out: Vec<Failure> = vec![];
        for (f, p) in self.per_failure.iter().chain(self.segments.iter().flat_map(|(_, p)| p)) {
            if *p > 0.0 && !out.contains(f) {
                out.push(*f);
            }
        }
        out
    }

    /// The expected cost per case of a group (its summary `g` and its cases), or why it cannot be
    /// measured there.
    pub fn estimate(&self, g: &GroupSummary, cases: &[&CaseResult]) -> Result<Estimate, String> {
        for f in self.priced_classes() {
            if g.failure_count(f).is_none() {
                let by = f.metric().map_or_else(|| "its metric".to_string(), |m| format!("the `{m}` metric"));
                return Err(format!("`{}` is priced, and {by}, which finds it, ran on none of the {} case(s): its failures would count as free", f.name(), g.cases));
            }
        }
        let costs: Vec<f64> = cases.iter().filter_map(|c| self.case_cost(c)).collect();
        if costs.is_empty() {
            return Err(format!("no case of the {} could be priced: on none did every metric that finds a priced class run", cases.len()));
        }
        let total: f64 = costs.iter().sum();
        let mean = total / costs.len() as f64;
        let (lower, upper) = stats::bootstrap_mean_ci(&costs, 2000, 1.0 - self.confidence, 0xC057).unwrap_or((mean, mean));
        Ok(Estimate { mean, lower, upper, total, cases: costs.len(), of: cases.len() })
    }
}

impl Estimate {
    /// `cost.mean`, `cost.upper`, `cost.lower` or `cost.total`.
    pub fn get(&self, what: &str) -> Option<f64> {
        match what {
            "mean" => Some(self.mean),
            "upper" => Some(self.upper),
            "lower" => Some(self.lower),
            "total" => Some(self.total),
            _ => None,
        }
    }

    /// `1.2500 per case (95% interval 0.8000 to 1.7500), 72.50 in all over 58 of 58 case(s) priced`
    pub fn describe(&self, confidence: f64) -> String {
        format!(
            "{:.4} per case ({:.0}% interval {:.4} to {:.4}), {:.2} in all over {} of {} case(s) priced{}",
            self.mean,
            100.0 * confidence,
            self.lower,
            self.upper,
            self.total,
            self.cases,
            self.of,
            if self.cases < self.of { " (the others: no metric ran, or not every metric finding a priced class)" } else { "" }
        )
    }
}

/// Whether metric `m` (or, for `rubric`, any rubric) scored case `r`.
pub(crate) fn metric_ran(r: &CaseResult, m: &str) -> bool {
    r.metrics.scores().iter().any(|(n, _, _)| if m == "rubric" { !BUILT_IN_METRICS.contains(n) } else { *n == m })
}

//! Measuring the grader against human labels, and choosing its thresholds.
//!
//! For each metric whose cases carry the matching label (`supported` for support, `attributable` for
//! citation, `consistent` for consistency), candor reads the metric's probability from the results,
//! re-derives the case verdict for any threshold, and reports:
//! - balanced accuracy of the verdicts at the configured threshold (the `passed` in the results);
//! - ROC-AUC of the probability;
//! - the threshold that maximises balanced accuracy, and the balanced accuracy it gives;
//! - expected calibration error of the probability, with a 10-bin reliability table.
//!
//! The probability and the threshold it sets, per metric:
//! - support: each claim's P(entailment), aggregated as configured: with `fraction` the threshold is
//!   `support.claim_threshold` (which claims count as supported), with `min` or `mean` it is
//!   `support.pass`; the case probability for calibration is its weakest claim's, or the whole
//!   output's where `[support] whole_output` scored it (a case whose claims all pass fails when the
//!   whole output does not: `unsupported_output`);
//! - citation: each cited sentence's joint P(entailment) (`citation.entail_threshold`); a case is
//!   attributable when all its cited sentences are entailed; the probability is the weakest sentence's;
//! - consistency: the case score (`consistency.pass`).

use std::fmt::Write as _;

use serde::Serialize;

use super::{escape, grouped, BUILT_IN_METRICS};
use crate::config::{Aggregation, GradeConfig};
use crate::graders::{label_key, CaseResult, Outcome};
use crate::stats;

/// One bin of a reliability table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bin {
    /// Lower edge of the probability bin.
    pub from: f64,
    /// Upper edge.
    pub to: f64,
    /// Cases in it.
    pub cases: usize,
    /// Mean probability.
    pub confidence: f64,
    /// Fraction labelled positive.
    pub observed: f64,
}

/// Calibration of one metric on one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// The metric.
    pub metric: String,
    /// `overall` or `key=value`.
    pub group: String,
    /// The label key used.
    pub label: String,
    /// Labelled cases where the metric ran.
    pub cases: usize,
    /// Positive labels among them.
    pub positives: usize,
    /// The config key the threshold sets.
    pub threshold_key: String,
    /// The configured threshold.
    pub current_threshold: f64,
    /// Balanced accuracy at the configured threshold.
    pub current_balanced_accuracy: Option<f64>,
    /// ROC-AUC of the probability.
    pub roc_auc: Option<f64>,
    /// The threshold that maximises balanced accuracy.
    pub best_threshold: Option<f64>,
    /// Balanced accuracy at that threshold.
    pub best_balanced_accuracy: Option<f64>,
    /// 95% bootstrap interval of the best threshold: the cases resampled with replacement
    /// ([`THRESHOLD_RESAMPLES`] times, a fixed seed) and the threshold chosen again on each. A wide
    /// interval says the labels cannot pin the threshold down.
    pub best_threshold_ci: Option<[f64; 2]>,
    /// Expected calibration error of the probability.
    pub ece: Option<f64>,
    /// The reliability table.
    pub reliability: Vec<Bin>,
}

/// What a labelled case contributes: the scores its verdict is derived from, its probability and label.
#[derive(Debug, Clone)]
pub struct Item {
    /// Unit scores (claims, cited sentences) or the case score.
    pub units: Vec<f64>,
    /// The whole output's support, where `[support] whole_output` scored it.
    pub whole: Option<f64>,
    /// The case's probability for calibration.
    pub probability: f64,
    /// The human label.
    pub label: bool,
}

/// The label key, config key and current threshold for a metric.
pub fn threshold_of(metric: &str, cfg: &GradeConfig) -> Option<(&'static str, &'static str, f64)> {
    let (key, current) = match metric {
        "support" if cfg.support.aggregation == Aggregation::Fraction => ("support.claim_threshold", cfg.support.claim_threshold),
        "support" => ("support.pass", cfg.support.pass),
        "citation" => ("citation.entail_threshold", cfg.citation.entail_threshold),
        "consistency" => ("consistency.pass", cfg.consistency.pass),
        _ => return None,
    };
    Some((label_key(metric)?, key, current as f64))
}

/// The labelled items of a metric in a set of results.
pub fn items(results: &[&CaseResult], metric: &str, label_key: &str) -> Vec<Item> {
    let mut out = vec![];
    for r in results {
        let Some(label) = r.label.as_ref().and_then(|l| l.get(label_key)).and_then(|v| v.as_bool()) else { continue };
        let Some((units, whole)) = units_of(r, metric).filter(|(u, _)| !u.is_empty()) else { continue };
        let probability = weakest(&units, whole);
        out.push(Item { units, whole, probability, label });
    }
    out
}

/// The unit scores a case's verdict on `metric` is made of (support: each claim's, with the whole
/// output's where it was read beside them; citation: each cited sentence's; consistency: one), or
/// `None` where the metric did not run or is not one of these.
fn units_of(r: &CaseResult, metric: &str) -> Option<(Vec<f64>, Option<f64>)> {
    match metric {
        "support" => match &r.metrics.support {
            Some(Outcome::Ran(s)) => Some((
                s.claims.iter().map(|c| c.score as f64).collect(),
                // The support's whole output, where it was read, counts beside its claims.
                s.output.as_ref().filter(|o| o.beyond_claims).map(|o| o.score as f64),
            )),
            _ => None,
        },
        "citation" => match &r.metrics.citation {
            Some(Outcome::Ran(c)) => {
                Some((c.sentences.iter().filter(|s| !s.cites.is_empty()).map(|s| s.score.map_or(0.0, |x| x as f64)).collect(), None))
            }
            _ => None,
        },
        "consistency" => match &r.metrics.consistency {
            Some(Outcome::Ran(c)) => Some((vec![c.score as f64], None)),
            _ => None,
        },
        _ => None,
    }
}

/// The probability a case's verdict on `metric` is ranked by, where agreement with labels is
/// measured (the summary's ROC-AUC, and calibration's): its weakest unit ([`items`]); 0 for a case
/// the metric ran on with no unit to score (an output that claims nothing fails, and ranks last);
/// `None` for metrics without units (checks, rubrics), which are ranked by their score.
pub fn case_probability(r: &CaseResult, metric: &str) -> Option<f64> {
    units_of(r, metric).map(|(units, whole)| if units.is_empty() { 0.0 } else { weakest(&units, whole) })
}

/// A case's probability: its weakest unit, the whole output's score among them where it was read.
fn weakest(units: &[f64], whole: Option<f64>) -> f64 {
    units.iter().copied().chain(whole).fold(f64::INFINITY, f64::min)
}

/// The case verdict at threshold `t`.
pub fn verdict(metric: &str, item: &Item, t: f64, cfg: &GradeConfig) -> bool {
    match metric {
        "support" => {
            use crate::graders::support::{aggregate, output_unsupported};
            let s: Vec<f32> = item.units.iter().map(|&x| x as f32).collect();
            let whole = item.whole.map(|w| w as f32);
            match cfg.support.aggregation {
                // The threshold decides which claims (and whole output) count as supported.
                Aggregation::Fraction => {
                    aggregate(&s, t as f32, Aggregation::Fraction) >= cfg.support.pass
                        && !output_unsupported(&s, whole, t as f32)
                }
                // The threshold is the case's pass mark on the min / mean of claim supports.
                agg => {
                    aggregate(&s, 0.5, agg) >= t as f32 && !output_unsupported(&s, whole, cfg.support.claim_threshold)
                }
            }
        }
        _ => item.units.iter().all(|&u| u >= t),
    }
}

/// Balanced accuracy at threshold `t`.
pub fn balanced_accuracy_at(metric: &str, items: &[Item], t: f64, cfg: &GradeConfig) -> Option<f64> {
    let predicted: Vec<bool> = items.iter().map(|i| verdict(metric, i, t, cfg)).collect();
    let gold: Vec<bool> = items.iter().map(|i| i.label).collect();
    stats::balanced_accuracy(&predicted, &gold)
}

/// The threshold in (0, 1) that maximises balanced accuracy: candidates are the midpoints between
/// consecutive distinct unit scores; ties go to the threshold nearest the current one.
pub fn best_threshold(metric: &str, items: &[Item], current: f64, cfg: &GradeConfig) -> Option<(f64, f64)> {
    best_threshold_capped(metric, items, current, cfg, 400)
}

fn best_threshold_capped(metric: &str, items: &[Item], current: f64, cfg: &GradeConfig, cap: usize) -> Option<(f64, f64)> {
    let mut scores: Vec<f64> = items.iter().flat_map(|i| i.units.iter().copied().chain(i.whole)).collect();
    scores.sort_by(f64::total_cmp);
    scores.dedup();
    let mut candidates: Vec<f64> = scores.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    candidates.push(current);
    // Keep the search affordable on large runs: at most `cap` candidates, evenly spread.
    if candidates.len() > cap {
        let step = candidates.len() as f64 / cap as f64;
        candidates = (0..cap).map(|k| candidates[(k as f64 * step) as usize]).chain([current]).collect();
    }
    let mut best: Option<(f64, f64)> = None;
    for t in candidates.into_iter().filter(|t| *t > 0.0 && *t < 1.0) {
        let Some(b) = balanced_accuracy_at(metric, items, t, cfg) else { continue };
        let better = match best {
            None => true,
            Some((bt, bb)) => b > bb + 1e-12 || ((b - bb).abs() <= 1e-12 && (t - current).abs() < (bt - current).abs()),
        };
        if better {
            best = Some((t, b));
        }
    }
    best
}

/// Resamples behind [`Calibration::best_threshold_ci`].
pub const THRESHOLD_RESAMPLES: usize = 200;

/// The 95% bootstrap interval of [`best_threshold`]: the cases resampled with replacement, the
/// threshold chosen again on each resample (on at most 100 candidates, to keep it affordable), and
/// the 2.5% and 97.5% quantiles of those thresholds. The same cases give the same interval.
pub fn best_threshold_ci(metric: &str, items: &[Item], current: f64, cfg: &GradeConfig) -> Option<[f64; 2]> {
    if items.len() < 2 {
        return None;
    }
    let mut rng = stats::Rng::new(0x5448_5245_5348);
    let mut chosen = Vec::with_capacity(THRESHOLD_RESAMPLES);
    for _ in 0..THRESHOLD_RESAMPLES {
        let sample: Vec<Item> = (0..items.len()).map(|_| items[rng.below(items.len())].clone()).collect();
        if let Some((t, _)) = best_threshold_capped(metric, &sample, current, cfg, 100) {
            chosen.push(t);
        }
    }
    if chosen.len() < THRESHOLD_RESAMPLES / 2 {
        return None;
    }
    chosen.sort_by(f64::total_cmp);
    Some([stats::quantile_sorted(&chosen, 0.025), stats::quantile_sorted(&chosen, 0.975)])
}

/// Expected calibration error over `bins` equal-width bins, and the table.
pub fn reliability(items: &[Item], bins: usize) -> (Option<f64>, Vec<Bin>) {
    if items.is_empty() {
        return (None, vec![]);
    }
    let mut table = vec![];
    let mut ece = 0.0;
    for b in 0..bins {
        let from = b as f64 / bins as f64;
        let to = (b + 1) as f64 / bins as f64;
        let inside: Vec<&Item> =
            items.iter().filter(|i| i.probability >= from && (i.probability < to || (b + 1 == bins && i.probability <= 1.0))).collect();
        if inside.is_empty() {
            continue;
        }
        let n = inside.len() as f64;
        let confidence = inside.iter().map(|i| i.probability).sum::<f64>() / n;
        let observed = inside.iter().filter(|i| i.label).count() as f64 / n;
        ece += n / items.len() as f64 * (observed - confidence).abs();
        table.push(Bin { from, to, cases: inside.len(), confidence, observed });
    }
    (Some(ece), table)
}

/// Calibrates every metric with labels, overall and per group of `by` keys.
pub fn calibrate(results: &[CaseResult], cfg: &GradeConfig, by: &[String]) -> Vec<Calibration> {
    let all: Vec<&CaseResult> = results.iter().collect();
    let groups = grouped(&all, Some(by), |r| *r);
    let mut out = vec![];
    for (group, rs) in &groups {
        for metric in BUILT_IN_METRICS {
            let Some((label, key, current)) = threshold_of(metric, cfg) else { continue };
            let its = items(rs, metric, label);
            if its.is_empty() {
                continue;
            }
            let probs: Vec<f64> = its.iter().map(|i| i.probability).collect();
            let gold: Vec<bool> = its.iter().map(|i| i.label).collect();
            let best = best_threshold(metric, &its, current, cfg);
            let (ece, table) = reliability(&its, 10);
            out.push(Calibration {
                metric: metric.into(),
                group: group.clone(),
                label: label.into(),
                cases: its.len(),
                positives: gold.iter().filter(|g| **g).count(),
                threshold_key: key.into(),
                current_threshold: current,
                current_balanced_accuracy: balanced_accuracy_at(metric, &its, current, cfg),
                roc_auc: stats::roc_auc(&probs, &gold),
                best_threshold: best.map(|b| b.0),
                best_balanced_accuracy: best.map(|b| b.1),
                best_threshold_ci: best.and_then(|_| best_threshold_ci(metric, &its, current, cfg)),
                ece,
                reliability: table,
            });
        }
    }
    out
}

/// Fewer cases than this of either class make a chosen threshold noise: [`small_sample`] warns.
pub const MIN_CASES_PER_CLASS: usize = 50;

/// The warning for a calibration on too few cases of a class, with the largest standard error a
/// balanced accuracy has on them (`0.5 * sqrt(0.25/positives + 0.25/negatives)`); `None` when each
/// class has at least [`MIN_CASES_PER_CLASS`] cases.
pub fn small_sample(c: &Calibration) -> Option<String> {
    let (pos, neg) = (c.positives, c.cases - c.positives);
    if pos >= MIN_CASES_PER_CLASS && neg >= MIN_CASES_PER_CLASS {
        return None;
    }
    let se = if pos == 0 || neg == 0 { f64::INFINITY } else { 0.5 * (0.25 / pos as f64 + 0.25 / neg as f64).sqrt() };
    Some(format!(
        "warning: {} [{}] rests on {pos} positive and {neg} negative case(s); a balanced accuracy on so few has a standard error up to {se:.3}, so a threshold chosen here is noise within that (label at least {MIN_CASES_PER_CLASS} of each)",
        c.metric,
        escape::terminal(&c.group)
    ))
}

/// A plain-text report.
pub fn table(cals: &[Calibration]) -> String {
    let f = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.4}"));
    let mut s = String::new();
    for c in cals {
        let _ = writeln!(
            s,
            "{} [{}] label `{}`: {} cases ({} positive)\n  {} = {:.4}: balanced accuracy {}; ROC-AUC {}; best {} = {} (95% interval {}; balanced accuracy {}); ECE {}",
            c.metric,
            escape::terminal(&c.group),
            c.label,
            c.cases,
            c.positives,
            c.threshold_key,
            c.current_threshold,
            f(c.current_balanced_accuracy),
            f(c.roc_auc),
            c.threshold_key,
            f(c.best_threshold),
            c.best_threshold_ci.map_or("n/a".to_string(), |[lo, hi]| format!("{lo:.4}-{hi:.4}")),
            f(c.best_balanced_accuracy),
            f(c.ece)
        );
        if let Some(w) = small_sample(c) {
            let _ = writeln!(s, "  {w}");
        }
        let _ = writeln!(s, "  {:>11} {:>6} {:>10} {:>9}", "probability", "cases", "mean prob", "observed");
        for b in &c.reliability {
            let _ = writeln!(s, "  {:>4.1}-{:<6.1} {:>6} {:>10.3} {:>9.3}", b.from, b.to, b.cases, b.confidence, b.observed);
        }
    }
    s
}

/// Sets the chosen thresholds (overall group) in a config.
pub fn apply(cals: &[Calibration], cfg: &mut GradeConfig) -> Vec<(String, f64)> {
    let mut changed = vec![];
    for c in cals.iter().filter(|c| c.group == "overall") {
        let Some(t) = c.best_threshold else { continue };
        let t32 = ((t * 10000.0).round() / 10000.0) as f32;
        match c.metric.as_str() {
            "support" if cfg.support.aggregation == Aggregation::Fraction => cfg.support.claim_threshold = t32,
            "support" => cfg.support.pass = t32,
            "citation" => cfg.citation.entail_threshold = t32,
            "consistency" => cfg.consistency.pass = t32,
            _ => continue,
        }
        changed.push((c.threshold_key.clone(), t32 as f64));
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(u: f64, label: bool) -> Item {
        Item { units: vec![u], whole: None, probability: u, label }
    }

    #[test]
    fn calibration_on_few_cases_warns() {
        let cfg = GradeConfig::default();
        let few: Vec<CaseResult> = (0..20)
            .map(|i| {
                let line = format!(
                    r#"{{"id": "c{i}", "metrics": {{"support": {{"score": {s}, "passed": true, "claims": [{{"text": "x", "span": [0, 1], "score": {s}, "contradiction": 0.0, "label": "supported", "evidence": null}}]}}}}, "failures": [], "passed": true, "model": {{}}, "label": {{"supported": {l}}}}}"#,
                    s = if i % 2 == 0 { 0.9 } else { 0.1 },
                    l = i % 2 == 0
                );
                serde_json::from_str(&line).unwrap()
            })
            .collect();
        let cals = calibrate(&few, &cfg, &[]);
        let support = cals.iter().find(|c| c.metric == "support").unwrap();
        let w = small_sample(support).expect("10 cases a class is too few");
        assert!(w.contains("10 positive and 10 negative") && w.contains("0.112"), "{w}");
        assert!(table(&cals).contains("warning: support [overall]"));
        let many = Calibration { cases: 120, positives: 60, ..support.clone() };
        assert_eq!(small_sample(&many), None);
    }

    /// `--by` groups like the reports do (pairs of keys too), and a group that carries terminal
    /// escapes prints them as visible escapes.
    #[test]
    fn groups_by_key_and_prints_no_control_character() {
        let cfg = GradeConfig::default();
        let results: Vec<CaseResult> = (0..8)
            .map(|i| {
                let line = serde_json::json!({"id": format!("c{i}"), "segments": {"task": "\u{1b}[31mred", "risk": if i < 4 { "high" } else { "low" }},
                    "metrics": {"support": {"score": if i % 2 == 0 { 0.9 } else { 0.1 }, "passed": i % 2 == 0, "claims": [
                        {"text": "x", "span": [0, 1], "score": if i % 2 == 0 { 0.9 } else { 0.1 }, "contradiction": 0.0, "label": "supported", "evidence": null}]}},
                    "failures": [], "passed": i % 2 == 0, "model": {}, "label": {"supported": i % 2 == 0}});
                serde_json::from_value(line).unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        let cals = calibrate(&results, &cfg, &["task".to_string(), "task+risk".to_string()]);
        let groups: Vec<&str> = cals.iter().map(|c| c.group.as_str()).collect();
        assert_eq!(groups, ["overall", "task=\u{1b}[31mred", "task=\u{1b}[31mred,risk=high", "task=\u{1b}[31mred,risk=low"]);
        assert_eq!(cals[2].cases, 4);
        let t = table(&cals);
        assert!(!t.chars().any(|c| c.is_control() && c != '\n'), "{t:?}");
        assert!(t.contains("support [task=\\x1b[31mred,risk=high]"), "{t}");
    }

    #[test]
    fn the_thresholds_interval_is_narrow_where_labels_pin_it_and_wide_where_they_do_not() {
        let cfg = GradeConfig::default();
        // 200 cases cleanly split at 0.4-0.6: every resample chooses a threshold in that gap.
        let clean: Vec<Item> = (0..200).map(|i| if i % 2 == 0 { item(0.6 + 0.001 * (i % 50) as f64, true) } else { item(0.4 - 0.001 * (i % 50) as f64, false) }).collect();
        let [lo, hi] = best_threshold_ci("support", &clean, 0.5, &cfg).unwrap();
        assert!(lo >= 0.35 && hi <= 0.65 && lo <= hi, "{lo} {hi}");
        // Labels that do not follow the scores (every other case at every score): the threshold
        // wanders over most of the range.
        let noise: Vec<Item> = (0..200).map(|i| item(0.05 + 0.9 * (i as f64 / 200.0), (i / 2) % 2 == 0)).collect();
        let [lo, hi] = best_threshold_ci("support", &noise, 0.5, &cfg).unwrap();
        assert!(hi - lo > 0.3, "{lo} {hi}");
        // The same cases give the same interval.
        assert_eq!(best_threshold_ci("support", &noise, 0.5, &cfg), best_threshold_ci("support", &noise, 0.5, &cfg));
    }

    #[test]
    fn best_threshold_separates_a_separable_set() {
        let cfg = GradeConfig::default();
        let its = vec![item(0.1, false), item(0.2, false), item(0.3, true), item(0.9, true)];
        // At 0.5, 0.3 is missed: TPR 1/2, TNR 1 -> 0.75. The midpoint 0.25 separates perfectly.
        assert_eq!(balanced_accuracy_at("support", &its, 0.5, &cfg), Some(0.75));
        let (t, b) = best_threshold("support", &its, 0.5, &cfg).unwrap();
        assert!((t - 0.25).abs() < 1e-12 && b == 1.0, "{t} {b}");
    }

    #[test]
    fn a_whole_output_below_the_threshold_fails_a_case_whose_claims_pass() {
        let cfg = GradeConfig::default();
        let lifted = Item { units: vec![0.9, 0.7], whole: Some(0.3), probability: 0.3, label: false };
        assert!(!verdict("support", &lifted, 0.5, &cfg), "claims pass, the whole does not: unsupported_output");
        assert!(verdict("support", &lifted, 0.25, &cfg), "below the whole's score, everything passes");
        // The wholes' scores are candidate thresholds: here only the wholes tell the cases apart.
        let its = vec![
            Item { units: vec![0.9, 0.9], whole: Some(0.3), probability: 0.3, label: false },
            Item { units: vec![0.9, 0.9], whole: Some(0.8), probability: 0.8, label: true },
        ];
        let (t, b) = best_threshold("support", &its, 0.2, &cfg).unwrap();
        assert!(b == 1.0 && t > 0.3 && t < 0.8, "{t} {b}");
    }

    #[test]
    fn ece_by_hand() {
        // Bin 0.0-0.1: p = 0.05, 0 of 2 positive -> |0 - 0.05| * 2/4; bin 0.9-1.0: p = 0.95, 1 of 2 -> |0.5 - 0.95| * 2/4.
        let its = vec![item(0.05, false), item(0.05, false), item(0.95, true), item(0.95, false)];
        let (ece, table) = reliability(&its, 10);
        assert!((ece.unwrap() - (0.5 * 0.05 + 0.5 * 0.45)).abs() < 1e-12);
        assert_eq!(table.len(), 2);
    }
}

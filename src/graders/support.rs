//! Factual support (grounding): is every claim of the output supported by the contexts?
//!
//! Claims are the output's claim sentences with citation markers removed. Each claim is scored against
//! every chunk of every context (premise = chunk, hypothesis = claim); its support is the highest
//! P(entailment), its evidence that chunk (MiniCheck, AlignScore and SummaC take the same maximum). An
//! unsupported claim whose most contradicting chunk reaches the contradiction threshold is
//! `contradicted`, with that chunk as evidence. With `[support] whole_output` (the default), the
//! whole output is scored too where it fits beside a window, and a claim's support is at least the
//! whole's (what entails the whole entails each part; its evidence is then the whole's best chunk).
//! The case score aggregates claim supports: the fraction of supported claims (RAGAS faithfulness,
//! the default), the minimum, or the mean. An output whose every claim is supported but which, read
//! whole, is not, fails as `unsupported_output`: what is unsupported lies outside the claims (a
//! question is not a claim, but "Have you seen him in The Hunger Games?" presupposes a fact) or in
//! how they combine.

use super::pairs::PairScheduler;
use super::results::{ClaimResult, Evidence, Failure, Outcome, OutputSupport, SupportResult};
use super::Prepared;
use crate::config::{Aggregation, SupportConfig};
use crate::text::char_offset;

/// Aggregates claim supports into a case score.
pub fn aggregate(supports: &[f32], threshold: f32, how: Aggregation) -> f32 {
    if supports.is_empty() {
        return 0.0;
    }
    match how {
        Aggregation::Fraction => supports.iter().filter(|&&s| s >= threshold).count() as f32 / supports.len() as f32,
        Aggregation::Min => supports.iter().copied().fold(f32::INFINITY, f32::min),
        Aggregation::Mean => supports.iter().sum::<f32>() / supports.len() as f32,
    }
}

/// Whether a case fails as `unsupported_output`: the whole output was scored and falls below the
/// threshold while every claim reaches it.
pub fn output_unsupported(claims: &[f32], whole: Option<f32>, threshold: f32) -> bool {
    whole.is_some_and(|w| w < threshold) && !claims.is_empty() && claims.iter().all(|&c| c >= threshold)
}

/// A chunk found for a question: (probability, context id, chunk span, context text).
type Found<'a> = (f32, &'a str, std::ops::Range<usize>, &'a str);

/// The evidence a found chunk points at: its context id and character span.
fn evidence_of((_, id, span, text): &Found) -> Evidence {
    Evidence { context: id.to_string(), span: [char_offset(text, span.start), char_offset(text, span.end)] }
}

/// Over every context of the case: the most entailing and the most contradicting chunk for
/// `hypothesis` (the first context wins ties), and whether any pair was cut to fit.
fn best_chunks<'a>(p: &Prepared<'a>, sched: &PairScheduler, hypothesis: &str) -> (Option<Found<'a>>, Option<Found<'a>>, bool) {
    let (mut best, mut worst, mut truncated): (Option<Found>, Option<Found>, bool) = (None, None, false);
    for c in &p.case.contexts {
        let j = sched.judge(&c.text, hypothesis);
        truncated |= j.truncated;
        if best.as_ref().map_or(true, |b| j.entail > b.0) {
            best = Some((j.entail, c.id.as_str(), j.entail_span.clone(), c.text.as_str()));
        }
        if worst.as_ref().map_or(true, |w| j.contradict > w.0) {
            worst = Some((j.contradict, c.id.as_str(), j.contradict_span.clone(), c.text.as_str()));
        }
    }
    (best, worst, truncated)
}

/// Grades one case; returns the outcome, its failure classes, and whether any input was truncated.
pub(super) fn grade(p: &Prepared, sched: &PairScheduler, cfg: &SupportConfig) -> (Outcome<SupportResult>, Vec<Failure>, bool) {
    let case = p.case;
    if case.contexts.iter().all(|c| c.text.trim().is_empty()) {
        return (Outcome::skipped("no contexts"), vec![], false);
    }
    let mut claims = vec![];
    let mut truncated = false;
    let mut failures = vec![];
    // The whole output's best chunk: each claim is supported at least as well as the whole.
    let whole = p.whole.as_deref().and_then(|w| best_chunks(p, sched, w).0);
    for s in &p.support_claims {
        let (own, worst, cut) = best_chunks(p, sched, &s.text);
        truncated |= cut;
        let best = match (own, whole.clone()) {
            (Some(o), Some(w)) => Some(if w.0 >= o.0 { w } else { o }),
            (o, w) => o.or(w),
        };
        let (score, contradiction) = (best.as_ref().map_or(0.0, |b| b.0), worst.as_ref().map_or(0.0, |w| w.0));
        let label = if score >= cfg.claim_threshold {
            "supported"
        } else if sched.has_contradiction() && contradiction >= cfg.contradiction_threshold {
            "contradicted"
        } else {
            "unsupported"
        };
        let ev = if label == "contradicted" { worst } else { best };
        let evidence = ev.as_ref().map(evidence_of);
        match label {
            "contradicted" => failures.push(Failure::ContradictedClaim),
            "unsupported" => failures.push(Failure::UnsupportedClaim),
            _ => {}
        }
        claims.push(ClaimResult {
            text: s.text.clone(),
            span: [char_offset(&case.output, s.span.start), char_offset(&case.output, s.span.end)],
            score,
            contradiction,
            label: label.to_string(),
            evidence,
            from: s.from,
        });
    }
    if claims.is_empty() {
        return (Outcome::skipped("no claims"), vec![], false);
    }
    let supports: Vec<f32> = claims.iter().map(|c| c.score).collect();
    let score = aggregate(&supports, cfg.claim_threshold, cfg.aggregation);
    let whole_unsupported = output_unsupported(&supports, whole.as_ref().map(|w| w.0), cfg.claim_threshold);
    if whole_unsupported {
        failures.push(Failure::UnsupportedOutput);
    }
    failures.dedup();
    let output = whole.as_ref().map(|w| OutputSupport {
        score: w.0,
        label: if w.0 >= cfg.claim_threshold { "supported" } else { "unsupported" }.to_string(),
        evidence: Some(evidence_of(w)),
    });
    let result = SupportResult { score, passed: score >= cfg.pass && !whole_unsupported, claims, output };
    (Outcome::Ran(result), failures, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregations() {
        let s = [0.9, 0.2, 0.6];
        assert!((aggregate(&s, 0.5, Aggregation::Fraction) - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(aggregate(&s, 0.5, Aggregation::Min), 0.2);
        assert!((aggregate(&s, 0.5, Aggregation::Mean) - 0.5666667).abs() < 1e-6);
        assert_eq!(aggregate(&[], 0.5, Aggregation::Mean), 0.0);
    }

    #[test]
    fn an_unsupported_whole_fails_only_when_every_claim_passes() {
        assert!(output_unsupported(&[0.9, 0.7], Some(0.3), 0.5));
        assert!(!output_unsupported(&[0.9, 0.3], Some(0.3), 0.5), "an unsupported claim already says it");
        assert!(!output_unsupported(&[0.9, 0.7], Some(0.6), 0.5));
        assert!(!output_unsupported(&[0.9, 0.7], None, 0.5), "not scored: nothing to say");
        assert!(!output_unsupported(&[], Some(0.1), 0.5));
    }
}

//! Semantic consistency: against the reference (mutual implication by NLI, and embedding cosine),
//! against re-samples (SelfCheckGPT-NLI, Manakul et al. 2023), and answer relevance (embedding cosine
//! of input and output).
//!
//! SelfCheckGPT-NLI scores each sentence of the output by the mean over samples of
//! P(contradiction) / (P(contradiction) + P(entailment)) with the sample as premise, as the paper
//! does (neutral is left out of the normalisation); the case's samples score is 1 minus the mean over
//! sentences. The consistency score is the lowest of the parts that ran, and each part passes on its
//! own mark; answer relevance is reported beside them and does not gate.

use std::collections::HashMap;
use std::sync::Arc;

use super::pairs::PairScheduler;
use super::results::{ConsistencyResult, Failure, Outcome, ReferenceCheck, SamplesCheck, SentenceInconsistency};
use super::Prepared;
use crate::config::ConsistencyConfig;
use crate::engine::cosine;

/// The hypotheses SelfCheckGPT checks against each sample: the claim sentences, or the whole output
/// when it has none.
pub fn selfcheck_units<'a>(claims: impl Iterator<Item = &'a str>, whole: &'a str) -> Vec<&'a str> {
    let v: Vec<&str> = claims.collect();
    if v.is_empty() {
        vec![whole]
    } else {
        v
    }
}

/// Grades one case.
pub(super) fn grade(
    p: &Prepared,
    sched: &PairScheduler,
    vectors: &HashMap<String, Arc<Vec<f32>>>,
    cfg: &ConsistencyConfig,
) -> (Outcome<ConsistencyResult>, Vec<Failure>, bool) {
    let vector = |t: &str| vectors.get(t).map(|v| v.as_slice());
    let case = p.case;
    let mut truncated = false;
    let mut failures = vec![];
    let output = p.clean_output.as_str();
    let reference = case.reference.as_deref().filter(|r| !r.trim().is_empty()).map(|r| {
        let fwd = sched.judge(r, output);
        let back = sched.judge(output, r);
        truncated |= fwd.truncated || back.truncated;
        let score = fwd.entail.min(back.entail);
        let cos = match (vector(output), vector(r)) {
            (Some(a), Some(b)) => Some(cosine(a, b)),
            _ => None,
        };
        ReferenceCheck {
            score,
            reference_entails_output: fwd.entail,
            output_entails_reference: back.entail,
            cosine: cos,
            passed: score >= cfg.pass,
        }
    });
    let samples: Vec<&str> = case.samples.iter().map(String::as_str).filter(|s| !s.trim().is_empty()).collect();
    let samples_check = (!samples.is_empty()).then(|| {
        let units = selfcheck_units(p.claims().map(|s| s.text.as_str()), output);
        let sentences: Vec<SentenceInconsistency> = units
            .iter()
            .map(|h| {
                let total: f32 = samples
                    .iter()
                    .map(|s| {
                        let j = sched.judge(s, h);
                        truncated |= j.truncated;
                        j.contradict_vs_entail
                    })
                    .sum();
                SentenceInconsistency { text: h.to_string(), inconsistency: total / samples.len() as f32 }
            })
            .collect();
        let mean = sentences.iter().map(|s| s.inconsistency).sum::<f32>() / sentences.len() as f32;
        let score = 1.0 - mean;
        SamplesCheck { score, samples: samples.len(), sentences, passed: score >= cfg.pass }
    });
    let relevance = case.input.as_deref().and_then(|i| match (vector(i), vector(output)) {
        (Some(a), Some(b)) => Some(cosine(a, b)),
        _ => None,
    });
    if reference.is_none() && samples_check.is_none() {
        return (Outcome::skipped("no reference or samples"), vec![], false);
    }
    if reference.as_ref().is_some_and(|r| !r.passed) {
        failures.push(Failure::ReferenceMismatch);
    }
    if samples_check.as_ref().is_some_and(|s| !s.passed) {
        failures.push(Failure::InconsistentSamples);
    }
    let parts: Vec<f32> = reference.iter().map(|r| r.score).chain(samples_check.iter().map(|s| s.score)).collect();
    let score = parts.iter().copied().fold(f32::INFINITY, f32::min);
    let passed = failures.is_empty();
    let result = ConsistencyResult { score, passed, reference, samples: samples_check, relevance };
    (Outcome::Ran(result), failures, truncated)
}

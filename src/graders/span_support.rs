//! Support graded by a token classifier (LettuceDetect): the model reads the question, the contexts
//! and the whole output in its authors' prompt ([`crate::engine::spans`]) and gives each output token
//! a hallucination probability. A claim's support is 1 less the highest probability among its
//! tokens; the whole output's, 1 less the highest among all of them, so that a hallucinated span
//! outside every claim (a question, a fragment) still fails the case (`unsupported_output`). The
//! hallucinated spans themselves are in the results. No evidence chunk: the model reads every
//! context at once and points at no passage.

use super::results::{ClaimResult, Failure, HallucinatedSpan, Outcome, OutputSupport, SupportResult};
use super::support::{aggregate, output_unsupported, settled_without_model, Graded};
use super::Prepared;
use crate::config::SupportConfig;
use crate::engine::spans::Detection;
use crate::text::CharIndex;

/// Grades one case from the tagger's reading of it; returns the outcome, its failure classes, and
/// whether a prompt was cut to fit.
pub(super) fn grade(p: &Prepared, d: Option<&Detection>, cfg: &SupportConfig) -> Graded {
    let case = p.case;
    if let Some(settled) = settled_without_model(p) {
        return settled;
    }
    // Settled cases returned above: an unread one is an output longer than the tagger's window.
    let Some(d) = d else {
        return (Outcome::skipped("the output does not fit the span tagger's window"), vec![], true);
    };
    let chars = CharIndex::new(&case.output);
    let mut failures = vec![];
    let mut claims = vec![];
    for s in &p.support_claims {
        let score = 1.0 - d.max_within(&s.span);
        let label = if score >= cfg.claim_threshold { "supported" } else { "unsupported" };
        if label == "unsupported" {
            failures.push(Failure::UnsupportedClaim);
        }
        claims.push(ClaimResult {
            text: s.text.clone(),
            span: [chars.offset(s.span.start), chars.offset(s.span.end)],
            score,
            contradiction: 0.0,
            label: label.to_string(),
            evidence: None,
            from: s.from,
            graded: None,
            specifics: vec![],
            verbatim: false,
            denied: false,
            swapped: None,
        });
    }
    if claims.is_empty() {
        return (Outcome::skipped("no claims"), vec![], false);
    }
    let supports: Vec<f32> = claims.iter().map(|c| c.score).collect();
    let score = aggregate(&supports, cfg.claim_threshold, cfg.aggregation);
    let whole = 1.0 - d.max_within(&(0..case.output.len()));
    let whole_unsupported = output_unsupported(&supports, Some(whole), cfg.claim_threshold);
    if whole_unsupported {
        failures.push(Failure::UnsupportedOutput);
    }
    failures.sort();
    failures.dedup();
    let spans = d
        .spans
        .iter()
        .filter_map(|s| {
            let text = case.output.get(s.bytes.clone())?.to_string();
            Some(HallucinatedSpan { span: [chars.offset(s.bytes.start), chars.offset(s.bytes.end)], text, confidence: s.confidence })
        })
        .collect();
    let output = Some(OutputSupport {
        score: whole,
        label: if whole >= cfg.claim_threshold { "supported" } else { "unsupported" }.to_string(),
        evidence: None,
        beyond_claims: p.beyond_claims(),
    });
    let result = SupportResult { score, passed: score >= cfg.pass && !whole_unsupported, claims, output, spans, about_sources: p.about_sources_read() };
    (Outcome::Ran(result), failures, d.truncated)
}

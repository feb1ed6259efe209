//! Semantic consistency: against the reference (answer correctness: SQuAD exact match and token F1,
//! NLI, and embedding cosine), against re-samples (SelfCheckGPT-NLI, Manakul et al. 2023), and answer
//! relevance (embedding cosine of input and output).
//!
//! # Against the reference
//!
//! The question is the field's answer-correctness question: does the output give the reference's
//! answer? Requiring the reference to entail every detail of a longer output, as the mutual
//! implication of earlier versions did, fails correct answers ("Mount Everest" against "Mount
//! Everest" as bare fragments scored 0.03; a full-sentence answer to a one-line reference always
//! fails). SQuAD's normalised exact match and token F1 (Rajpurkar et al. 2016; see
//! [`crate::text::answer`]) are always reported, and the cosine of the two embeddings is reported
//! as a signal, never gated. The score depends on the form of the texts, named in `method`:
//!
//! - `short_answer`, when the reference or the output is a short answer
//!   ([`crate::text::answer::is_short_answer`]: at most six normalised tokens, one sentence).
//!   The NLI model reads answers as the support grader reads claims ([`crate::text::claim_form`]):
//!   a leading answer particle is read off where a claim stands without it ("No, the minimum rental
//!   is 2 days." is read "the minimum rental is 2 days.": the bare "No" reads as a negation and draws
//!   P(contradiction) > 0.9 from the default model against a premise that says the same); otherwise a
//!   short answer is read after the question the case's `input` asks (`claim_form::question_of`), as
//!   `"{question} {answer}"` (`claim_form::with_question`), not as a bare fragment: "Mount Everest"
//!   against "Mount Everest" draws P(entailment) 0.03 bare and 0.99 after "What is the tallest
//!   mountain?". A long text is read as it stands (bar a leading particle). The NLI part asks
//!   whether the output (premise) entails the reference (hypothesis), the direction that says the
//!   output gives the reference's answer; when the output is short too, also the reverse,
//!   and takes the smaller (two short answers are the same answer when each implies the other: the
//!   mutual implication of earlier versions). A long output may add detail the reference lacks; that
//!   detail is the support metric's business, not an error of correctness. The reference is
//!   *contradicted* when P(contradiction) >= 0.5 in a direction asked.
//!   Score = 1 on exact match; otherwise the larger of token F1 and the NLI part, except that token
//!   F1 does not count when the reference is contradicted ("500 points" and "100 points" share half
//!   their tokens, but are different answers).
//! - `facts`, when both are longer: the reference is split into its fact sentences (its claim
//!   sentences, [`crate::text::is_claim`]; if it has none, its sentences that are not questions; if
//!   none, the whole reference), each read without a leading answer particle, and each is checked
//!   with the output as premise. As in RAGAS answer correctness and factual correctness (Es et al.
//!   2024), which count the reference's statements the answer states, what matters is *recall* of the reference's facts by the output, penalised by
//!   contradictions; unlike RAGAS, precision is left out (the output's extra claims are graded
//!   against the contexts by the support metric). Each fact is a three-way outcome, stated (+1),
//!   missing (0) or contradicted (-1); the score is the expectation of that negatively marked recall
//!   under the NLI model's probabilities, floored at 0:
//!   `score = max(0, mean over facts of (P(entailment) - P(contradiction)))`.
//!   The hard decisions are reported beside it: `reference_facts`, the fraction of facts with
//!   P(entailment) >= 0.5 and not contradicted, and `contradicted_facts`, those with
//!   P(contradiction) >= 0.5. The fixed 0.5 makes each decision the model's most likely label between
//!   stated and not; it does not move with `[consistency] pass`, which is a mark for the score.
//!
//! `passed` is `score >= [consistency] pass`, or, with `facts`, every fact stated and none
//! contradicted by the hard decisions and a score of at least half the mark; a case that does not
//! pass is `reference_mismatch`.
//! The output is read with its lengths of time written as the reference writes them ("two years"
//! against "24 months" as "24 months"), as support reads claims against contexts.
//! The whole-text entailments both ways are still reported (`reference_entails_output`,
//! `output_entails_reference`) for results read back by older reports. Every NLI question of the
//! check comes from one place, [`ReferencePlan::questions`], which the grader queues and this module
//! reads back, so the two cannot drift apart.
//!
//! # Against the samples
//!
//! Each claim sentence of the output (the whole output when it has none) is put as hypothesis to each
//! sample as premise, the sample read as an answer is read ([`sample_premise`]: without a leading
//! "Yes,"/"No,", a short sample after the case's question). A long sample is read in chunks and,
//! besides, its `[consistency] sample_sentences` sentences sharing most words with the claim, each
//! alone and with the sentence before it ([`Sample::reads`]; default 1): a small model misses a fact
//! among many, and on SelfCheckGPT's demo this is what separates the edited passage from the
//! original. Per sample, P(contradiction) is the highest over what was read, and P(c)/(P(c)+P(e))
//! that of the most entailing read. Two figures are kept per sentence:
//! `contradiction`, the mean over samples of P(contradiction), and `inconsistency`, SelfCheckGPT-NLI's
//! mean over samples of P(c) / (P(c) + P(e)) (Manakul et al. 2023: neutral left out of the
//! normalisation). A sentence that repeats a sentence of a sample word for word is stated by that
//! sample (0 on both), whatever the model reads, as support treats a claim repeating its context
//! ([`support::verbatim_sentence`]: the default model gives a 30-word sentence against itself
//! P(contradiction) 0.44). `[consistency] samples` chooses which makes the score:
//!
//! - `contradiction` (the default): 1 minus the largest sentence `contradiction`. The output fails
//!   where the samples, on average, contradict one of its claims; a claim the samples leave unsaid
//!   counts for nothing, and one contradicted claim is not averaged away by the others.
//! - `selfcheckgpt`: 1 minus the mean sentence `inconsistency`, as published. The paper's samples
//!   are full regenerations that speak of every sentence; against samples that answer only part of
//!   the question, a claim they leave unsaid scores 0.6 to 0.9 inconsistency (neutral pairs split
//!   between P(c) and P(e)), so correct outputs fail: on the example suite 9 of its 13 correct
//!   answers failed `inconsistent_samples` this way, and the consistency verdict's balanced accuracy
//!   against the `consistent` labels was 0.675 (0.800 with `contradiction`; ROC-AUC 0.863 and 0.858,
//!   24 cases with samples; docs/quality.md).
//!
//! The consistency score is the lowest of the parts that ran, and each part passes on its own mark;
//! answer relevance is reported beside them and does not gate.

use std::collections::HashMap;
use std::sync::Arc;
use std::ops::Range;

use super::pairs::PairScheduler;
use super::results::{ConsistencyResult, Failure, Outcome, ReferenceCheck, ReferenceMethod, SamplesCheck, SentenceInconsistency};
use super::{support, Prepared};
use crate::config::{ConsistencyConfig, SamplesRule};
use crate::suite::Case;
use crate::text::specifics;
use crate::engine::cosine;
use crate::text::answer::{exact_match, is_short_answer, token_f1};
use crate::text::claim_form;

/// P(entailment) from which a reference fact counts as stated by the output, and P(contradiction)
/// from which it counts as contradicted.
pub const FACT_THRESHOLD: f32 = 0.5;

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

/// What the reference check of one case asks the NLI model, and how it reads the answers.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferencePlan {
    /// The form graded.
    pub method: ReferenceMethod,
    /// The reference as given (for exact match and token F1).
    pub reference: String,
    /// The output as given, citation markers removed.
    pub output: String,
    /// The reference as the NLI model reads it whole: without a leading answer particle, or, when
    /// it is a short answer and the case's input asks a question, after that question.
    pub reference_text: String,
    /// The output as the NLI model reads it whole, likewise.
    pub output_text: String,
    /// Whether the reference is a short answer.
    pub short_reference: bool,
    /// Whether the output is a short answer.
    pub short_output: bool,
    /// With `facts`: the reference's fact sentences; empty with `short_answer`.
    pub facts: Vec<String>,
    /// Each fact as the NLI model reads it (a leading answer particle read off).
    pub fact_texts: Vec<String>,
}

/// An answer as the NLI model reads it, as the support grader reads claims
/// ([`crate::text::claim_form`]): a leading answer particle is read off when a claim stands without it
/// ("No, the minimum rental is 2 days." is read "the minimum rental is 2 days."); otherwise a short
/// answer follows its question ("What is the tallest mountain? Mount Everest"); anything else is read
/// as it stands.
fn nli_form(question: Option<&str>, text: &str, short: bool) -> String {
    if let Some(rest) = claim_form::strip_particle(text) {
        return rest.to_string();
    }
    match question {
        Some(q) if short => claim_form::with_question(q, text),
        _ => text.to_string(),
    }
}

/// The samples part's score of an output whose sentences scored `sentences`, by `rule` (see
/// [`SamplesRule`] and the module doc); 1 for an output with no sentence.
pub fn samples_score(sentences: &[SentenceInconsistency], rule: SamplesRule) -> f32 {
    if sentences.is_empty() {
        return 1.0;
    }
    match rule {
        SamplesRule::Contradiction => {
            1.0 - sentences.iter().map(|s| s.contradiction.unwrap_or(s.inconsistency)).fold(0f32, f32::max)
        }
        SamplesRule::Selfcheckgpt => 1.0 - sentences.iter().map(|s| s.inconsistency).sum::<f32>() / sentences.len() as f32,
    }
}

/// A sample as the NLI model reads it when it is the premise of SelfCheckGPT's questions: as an
/// answer is read ([`nli_form`]), so "No, order records stay for 7 years." is read without its "No"
/// (which, bare, reads as a negation of the hypothesis) and a short sample ("Mount Everest") after
/// the question the case's input asks. Samples are answers to that question, as the reference is.
pub fn sample_premise(sample: &str, input: Option<&str>) -> String {
    let short = is_short_answer(sample);
    let question = input.and_then(claim_form::question_of).filter(|_| short);
    nli_form(question, sample, short)
}

/// The longest run of sample sentences read on its own, in characters: about a chunk's worth (four
/// characters a token), as support's evidence windows.
pub(super) fn sample_window_chars(sched: &PairScheduler) -> usize {
    sched.window() * 4
}

/// A case's sample as its claims are read against it: the [`sample_premise`], its sentences and
/// their word-for-word index. Built by [`case_samples`], which the grader's queue and [`grade`] both
/// call, so the pairs asked are the pairs read.
pub(super) struct Sample {
    text: String,
    sentences: Vec<Range<usize>>,
    verbatim: support::VerbatimIndex,
}

/// The non-empty samples of a case, as premises ([`Sample`]).
pub(super) fn case_samples(case: &Case) -> Vec<Sample> {
    case.samples
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let text = sample_premise(s, case.input.as_deref());
            let sentences = crate::text::split_sentences(&text);
            let verbatim = support::verbatim_index(&text, &sentences);
            Sample { text, sentences, verbatim }
        })
        .collect()
}

impl Sample {
    /// What `claim` is read against in this sample: `None` where a sentence of the sample repeats
    /// it word for word (the sample states it, as a context does: support's verbatim rule);
    /// otherwise the whole sample, which the scheduler reads in chunks, and the `count` sentences
    /// sharing most words with the claim, each alone and with the sentence before it
    /// ([`support::evidence_windows`], at most `max_chars` each). A small model reads a fact among
    /// many others less well than alone: against a chunk of a SelfCheckGPT demo sample, "Since
    /// October 23, 2002, Michael King has been syndicated by Virgin Media Networks" drew
    /// P(contradiction) 0.39; against the sample's 2012 sentence alone, 0.68.
    pub(super) fn reads(&self, claim: &str, count: usize, max_chars: usize) -> Option<Vec<&str>> {
        if support::verbatim_sentence(&self.text, &self.verbatim, claim).is_some() {
            return None;
        }
        let windows = support::evidence_windows(&self.text, &self.sentences, claim, count, max_chars);
        Some(std::iter::once(self.text.as_str()).chain(windows.into_iter().map(|r| &self.text[r])).collect())
    }
}

/// A claim read against one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SampleRead {
    /// The highest P(contradiction) over what was read ([`Sample::reads`]).
    contradict: f32,
    /// SelfCheckGPT's P(c) / (P(c) + P(e)) of the most entailing read.
    contradict_vs_entail: f32,
    /// Whether any pair was cut to fit the window.
    truncated: bool,
}

/// Reads `claim` against what [`Sample::reads`] gave (the pairs were asked).
fn read_sample(sched: &PairScheduler, reads: &[&str], claim: &str) -> SampleRead {
    let mut read = SampleRead { contradict: 0.0, contradict_vs_entail: 0.5, truncated: false };
    let mut best_entail = -1.0f32;
    for premise in reads {
        let j = sched.judge(premise, claim);
        read.truncated |= j.truncated;
        read.contradict = read.contradict.max(j.contradict);
        if j.entail > best_entail {
            best_entail = j.entail;
            read.contradict_vs_entail = j.contradict_vs_entail;
        }
    }
    read
}

/// The fact sentences of a reference: its claim sentences; if none, its sentences that are not
/// questions; if none, the whole reference.
pub fn reference_facts(reference: &str) -> Vec<String> {
    let sentences = crate::text::analyse_output(reference, &[]);
    // A question stating a fact ("Did you know that X?") gives its fact.
    let mut facts: Vec<String> =
        sentences.iter().filter(|s| s.is_claim).map(|s| claim_form::asserted_in_question(&s.text).unwrap_or_else(|| s.text.clone())).collect();
    if facts.is_empty() {
        facts = sentences.iter().filter(|s| !s.text.trim_end().ends_with('?')).map(|s| s.text.clone()).collect();
    }
    if facts.is_empty() {
        facts.push(reference.trim().to_string());
    }
    facts
}

impl ReferencePlan {
    /// The plan for a reference, an output (markers removed) and the case's input, if any.
    pub fn new(reference: &str, output: &str, input: Option<&str>) -> Self {
        let short_reference = is_short_answer(reference);
        let short_output = is_short_answer(output);
        let short = short_reference || short_output;
        let (method, facts) =
            if short { (ReferenceMethod::ShortAnswer, vec![]) } else { (ReferenceMethod::Facts, reference_facts(reference)) };
        // The question is put in front of short answers only.
        let question = input.and_then(claim_form::question_of).filter(|_| short);
        Self {
            method,
            reference: reference.to_string(),
            output: output.to_string(),
            reference_text: nli_form(question, reference, short_reference),
            // The output's lengths of time as the reference writes them ("two years" against
            // "24 months"): a small NLI model does not convert units.
            output_text: nli_form(question, &in_units_of(reference, output), short_output),
            short_reference,
            short_output,
            fact_texts: facts.iter().map(|f| nli_form(None, f, false)).collect(),
            facts,
        }
    }

    /// Every (premise, hypothesis) question of the check, in the order [`decide_reference`] reads
    /// their answers: the reference entailing the output, the output entailing the reference, then the
    /// output entailing each fact (as read, [`ReferencePlan::fact_texts`]).
    pub fn questions(&self) -> Vec<(String, String)> {
        let mut q = vec![
            (self.reference_text.clone(), self.output_text.clone()),
            (self.output_text.clone(), self.reference_text.clone()),
        ];
        q.extend(self.fact_texts.iter().map(|f| (self.output_text.clone(), f.clone())));
        q
    }
}

/// `output` with its lengths of time written as `reference` writes them, where it gives them in
/// another unit ([`crate::text::specifics::Lengths::in_source_units`]); as it is otherwise.
fn in_units_of(reference: &str, output: &str) -> String {
    use crate::text::specifics::Lengths;
    (Lengths::any_in(output).then(|| Lengths::new(&[reference]).in_source_units(output)).flatten()).unwrap_or_else(|| output.to_string())
}

/// The reference plan of a case with a non-empty reference.
pub(super) fn reference_plan(p: &Prepared) -> Option<ReferencePlan> {
    let case = p.case;
    let r = case.reference.as_deref().filter(|r| !r.trim().is_empty())?;
    Some(ReferencePlan::new(r, &p.clean_output, case.input.as_deref()))
}

/// The NLI model's answer to one question, as the reference check reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NliAnswer {
    /// P(entailment).
    pub entail: f32,
    /// P(contradiction) (0 for a model without that label).
    pub contradict: f32,
}

/// Decides the reference check from the answers to [`ReferencePlan::questions`], in that order
/// (see the module doc for the rule). Missing answers read as neutral (P = 0 both).
pub fn decide_reference(plan: &ReferencePlan, answers: &[NliAnswer], pass: f32, cosine: Option<f32>) -> ReferenceCheck {
    let at = |i: usize| answers.get(i).copied().unwrap_or(NliAnswer { entail: 0.0, contradict: 0.0 });
    let (reference_entails_output, output_entails_reference) = (at(0), at(1));
    let em = exact_match(&plan.output, &plan.reference);
    let f1 = token_f1(&plan.output, &plan.reference);
    let mut contradicted_facts = vec![];
    let (score, reference_facts) = match plan.method {
        ReferenceMethod::ShortAnswer => {
            // The output must imply the reference's answer; a short output must also follow from it.
            let mut asked = vec![output_entails_reference];
            if plan.short_output {
                asked.push(reference_entails_output);
            }
            let nli = asked.iter().map(|a| a.entail).fold(1.0f32, f32::min);
            let contradicted = asked.iter().any(|a| a.contradict >= FACT_THRESHOLD);
            // A number, date, amount or percentage of the reference that the output does not give
            // (in any format: `text::specifics`) means another answer, whatever the model says:
            // "1965" for "1956" read with their question drew P(entailment) 0.98.
            // Answers that open with opposite particles ("No." against "Yes.", or against "Yes,
            // it is in Paris.") are different answers, whatever the model reads in what follows
            // them: each read without its particle is the bare question, and the two drew 0.97.
            // Two bare answers of one polarity ("Yes." and "Yes, it is.") are one answer.
            let polarity = (claim_form::answer_polarity(&plan.output), claim_form::answer_polarity(&plan.reference));
            let opposite = matches!(polarity, (Some(a), Some(b)) if a != b);
            let same_polar = matches!((claim_form::polar_answer(&plan.output), claim_form::polar_answer(&plan.reference)), (Some(a), Some(b)) if a == b);
            let (em, contradicted) = (em || same_polar, contradicted || opposite);
            let clash: Vec<String> = if em || contradicted {
                vec![]
            } else {
                specifics::unsupported_specifics(&plan.reference, &[&plan.output])
                    .into_iter()
                    .filter(|s| s.kind != specifics::SpecificKind::Name)
                    .map(|s| s.text)
                    .collect()
            };
            if contradicted {
                contradicted_facts.push(plan.reference.trim().to_string());
            }
            let score = if em {
                1.0
            } else if opposite {
                0.0
            } else if contradicted {
                nli
            } else if !clash.is_empty() {
                contradicted_facts.extend(clash);
                0.0
            } else {
                f1.max(nli)
            };
            (score, None)
        }
        ReferenceMethod::Facts => {
            let n = plan.facts.len().max(1) as f32;
            let mut margin = 0.0f32;
            let mut stated = 0usize;
            for (i, fact) in plan.facts.iter().enumerate() {
                let a = at(2 + i);
                margin += a.entail - a.contradict;
                if a.contradict >= FACT_THRESHOLD {
                    contradicted_facts.push(fact.clone());
                } else if a.entail >= FACT_THRESHOLD {
                    stated += 1;
                }
            }
            ((margin / n).max(0.0), Some(stated as f32 / n))
        }
    };
    let score = score.clamp(0.0, 1.0);
    ReferenceCheck {
        score,
        reference_entails_output: reference_entails_output.entail,
        output_entails_reference: output_entails_reference.entail,
        cosine,
        // Facts: the score is the expected signed recall; where the model's most likely label has
        // every fact of the reference stated and none contradicted, the output states the
        // reference, whatever the soft margin says (a correct answer read at P(entailment) 0.58
        // and P(contradiction) 0.15 scored 0.43 and failed while `reference_facts` said 1.0).
        // Not below half the mark, though: four facts each at 0.51 against 0.45 are not stated.
        passed: score >= pass || (reference_facts == Some(1.0) && contradicted_facts.is_empty() && score >= pass / 2.0),
        method: Some(plan.method),
        exact_match: Some(em),
        token_f1: Some(f1),
        reference_facts,
        contradicted_facts,
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
    let reference = reference_plan(p).map(|plan| {
        let answers: Vec<NliAnswer> = plan
            .questions()
            .iter()
            .map(|(premise, hypothesis)| {
                let j = sched.judge(premise, hypothesis);
                truncated |= j.truncated;
                NliAnswer { entail: j.entail, contradict: j.contradict }
            })
            .collect();
        let cos = match (vector(output), vector(&plan.reference)) {
            (Some(a), Some(b)) => Some(cosine(a, b)),
            _ => None,
        };
        decide_reference(&plan, &answers, cfg.pass, cos)
    });
    let samples = case_samples(case);
    let samples_check = (!samples.is_empty()).then(|| {
        let units = p.selfcheck_units();
        let max_chars = sample_window_chars(sched);
        let sentences: Vec<SentenceInconsistency> = units
            .iter()
            .map(|h| {
                let (mut normalised, mut contradiction) = (0f32, 0f32);
                // A sample stating the sentence word for word adds 0 to both.
                for reads in samples.iter().filter_map(|s| s.reads(h, cfg.sample_sentences, max_chars)) {
                    let read = read_sample(sched, &reads, h);
                    truncated |= read.truncated;
                    normalised += read.contradict_vs_entail;
                    contradiction += read.contradict;
                }
                let n = samples.len() as f32;
                SentenceInconsistency { text: h.to_string(), inconsistency: normalised / n, contradiction: Some(contradiction / n) }
            })
            .collect();
        let score = samples_score(&sentences, cfg.samples);
        SamplesCheck { score, samples: samples.len(), sentences, passed: score >= cfg.pass, rule: Some(cfg.samples) }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sentence(inconsistency: f32, contradiction: f32) -> SentenceInconsistency {
        SentenceInconsistency { text: String::new(), inconsistency, contradiction: Some(contradiction) }
    }

    #[test]
    fn samples_fail_a_contradicted_claim_and_leave_an_unsaid_one_alone() {
        // A claim the samples confirm (low on both), one they leave unsaid (neutral: SelfCheckGPT's
        // normalised score is high, P(c) low), one they contradict.
        let (confirmed, unsaid, contradicted) = (sentence(0.1, 0.05), sentence(0.72, 0.15), sentence(0.95, 0.8));
        let rule = SamplesRule::Contradiction;
        assert!((samples_score(&[confirmed.clone(), unsaid.clone()], rule) - 0.85).abs() < 1e-6);
        // One contradicted claim is not averaged away.
        assert!((samples_score(&[confirmed.clone(), unsaid.clone(), contradicted.clone()], rule) - 0.2).abs() < 1e-6);
        // As published: the mean of the normalised scores, which fails the unsaid claim's output.
        let paper = SamplesRule::Selfcheckgpt;
        assert!((samples_score(&[confirmed.clone(), unsaid], paper) - 0.59).abs() < 1e-6);
        assert!((samples_score(&[confirmed, contradicted], paper) - 0.475).abs() < 1e-6);
        assert_eq!(samples_score(&[], rule), 1.0);
        // Results written before `contradiction` existed fall back on the normalised score.
        let old = SentenceInconsistency { text: String::new(), inconsistency: 0.3, contradiction: None };
        assert!((samples_score(&[old], rule) - 0.7).abs() < 1e-6);
    }

    #[test]
    fn a_sample_is_read_whole_and_by_its_nearest_sentences_unless_it_states_the_claim() {
        let line = serde_json::json!({
            "id": "a", "input": "Who is Michael Savage?", "output": "x",
            "samples": ["Michael Savage is an American radio host. He hosts The Savage Nation. Since 2012 Michael Savage has been syndicated by Cumulus Media Networks. He wrote books on herbal medicine.", " "],
        });
        let case = crate::suite::parse_case(1, &line.to_string()).unwrap();
        let samples = case_samples(&case);
        assert_eq!(samples.len(), 1, "a blank sample is no sample");
        let sample = &samples[0];
        let claim = "Since 2002 Michael King has been syndicated by Virgin Media Networks.";
        let reads = sample.reads(claim, 1, 10_000).unwrap();
        // The whole sample first, then the 2012 sentence alone and with the one before it.
        assert_eq!(reads[0], sample.text);
        assert_eq!(&reads[1..], ["He hosts The Savage Nation. Since 2012 Michael Savage has been syndicated by Cumulus Media Networks.", "Since 2012 Michael Savage has been syndicated by Cumulus Media Networks."]);
        // Windows longer than the limit are left out; 0 sentences reads the sample whole only.
        assert_eq!(sample.reads(claim, 1, 80).unwrap().len(), 2);
        assert_eq!(sample.reads(claim, 0, 10_000).unwrap(), [sample.text.as_str()]);
        // A sentence the sample states word for word is not read: the sample states it.
        assert_eq!(sample.reads("He hosts The Savage Nation.", 1, 10_000), None);
        assert!(sample.reads("He hosts the nation.", 1, 10_000).is_some());
    }

    #[test]
    fn samples_are_read_as_answers() {
        assert_eq!(sample_premise("No, order records stay for 7 years.", Some("Are my orders deleted?")), "order records stay for 7 years.");
        assert_eq!(sample_premise("Mount Everest", Some("What is the tallest mountain?")), "What is the tallest mountain? Mount Everest");
        assert_eq!(sample_premise("Mount Everest", None), "Mount Everest");
        let long = "The tallest mountain on Earth is Mount Everest, at 8,849 metres above sea level.";
        assert_eq!(sample_premise(long, Some("What is the tallest mountain?")), long);
    }

    fn nli(entail: f32, contradict: f32) -> NliAnswer {
        NliAnswer { entail, contradict }
    }

    #[test]
    fn lengths_are_read_in_the_references_units() {
        let plan = ReferencePlan::new("24 months", "The warranty lasts two years.", Some("How long is the warranty?"));
        assert_eq!(plan.output_text, "How long is the warranty? The warranty lasts 24 months", "a short answer, read with its question");
        assert_eq!(plan.output, "The warranty lasts two years.", "exact match and F1 read the output as written");
        let plan = ReferencePlan::new("24 months", "The warranty lasts three years.", None);
        assert_eq!(plan.output_text, "The warranty lasts three years.");
    }

    #[test]
    fn short_answers_are_read_with_their_question() {
        let plan = ReferencePlan::new("Mount Everest", "Mount Everest", Some("What is the tallest mountain?"));
        assert_eq!(plan.method, ReferenceMethod::ShortAnswer);
        assert_eq!(plan.reference_text, "What is the tallest mountain? Mount Everest");
        assert_eq!(plan.output_text, plan.reference_text);
        assert!(plan.facts.is_empty());
        let q = plan.questions();
        assert_eq!(q.len(), 2);
        assert_eq!(q[0], (plan.reference_text.clone(), plan.output_text.clone()));
        // Without an input the answers are read bare.
        let bare = ReferencePlan::new("Mount Everest", "Mount Everest", None);
        assert_eq!(bare.reference_text, "Mount Everest");
        // A long output stands alone beside a short reference read with its question.
        let long = "Standard repairs such as zippers take 10 business days. Repairs under warranty are free.";
        let plan = ReferencePlan::new("About 10 business days.", long, Some("How long does a zipper repair take?"));
        assert_eq!(plan.method, ReferenceMethod::ShortAnswer);
        assert!(plan.short_reference && !plan.short_output);
        assert_eq!(plan.reference_text, "How long does a zipper repair take? About 10 business days");
        assert_eq!(plan.output_text, long);
    }

    #[test]
    fn opposite_answers_disagree_whatever_the_model_says() {
        // A new user's case: "No." against the reference "Yes." drew 0.97 (both read as the bare question).
        let q = Some("Is Canberra the capital of Australia?");
        for reference in ["Yes.", "Yes, Canberra is the capital of Australia."] {
            let plan = ReferencePlan::new(reference, "No.", q);
            let r = decide_reference(&plan, &[nli(0.97, 0.01), nli(0.97, 0.01)], 0.5, Some(0.9));
            assert_eq!(r.score, 0.0, "{reference}");
            assert!(!r.passed, "{reference}");
            assert_eq!(r.contradicted_facts, vec![reference.to_string()], "{reference}");
        }
        // One polarity, written two ways, is one answer.
        let plan = ReferencePlan::new("Yes, it is.", "yes", q);
        let r = decide_reference(&plan, &[nli(0.2, 0.1), nli(0.2, 0.1)], 0.5, None);
        assert!(r.passed && r.score == 1.0, "{r:?}");
        // "No one" opens with no answer: the model's reading stands.
        let plan = ReferencePlan::new("Yes.", "No one may enter.", q);
        assert_eq!(decide_reference(&plan, &[nli(0.7, 0.0), nli(0.7, 0.0)], 0.5, None).score, 0.7);
    }

    #[test]
    fn exact_match_passes_whatever_the_model_says() {
        // The failure this replaces: "Mount Everest" against itself scored 0.03 by mutual implication.
        let plan = ReferencePlan::new("Mount Everest", "mount everest.", None);
        let r = decide_reference(&plan, &[nli(0.03, 0.0), nli(0.03, 0.0)], 0.5, Some(1.0));
        assert_eq!(r.score, 1.0);
        assert!(r.passed);
        assert_eq!(r.exact_match, Some(true));
        assert_eq!(r.token_f1, Some(1.0));
        assert_eq!(r.method, Some(ReferenceMethod::ShortAnswer));
        assert_eq!((r.reference_entails_output, r.output_entails_reference), (0.03, 0.03));
    }

    #[test]
    fn short_answer_takes_the_best_of_f1_and_nli() {
        // Both short: mutual implication, F1 = 2/3 wins over it.
        let plan = ReferencePlan::new("Denver Broncos", "Denver", None);
        let r = decide_reference(&plan, &[nli(0.2, 0.0), nli(0.9, 0.0)], 0.5, None);
        assert!((r.score - 2.0 / 3.0).abs() < 1e-6, "{}", r.score);
        // NLI wins when the words differ but the answers agree.
        let plan = ReferencePlan::new("New York City", "The Big Apple", None);
        let r = decide_reference(&plan, &[nli(0.8, 0.0), nli(0.7, 0.0)], 0.5, None);
        assert!((r.score - 0.7).abs() < 1e-6);
        // Two bare answers of one polarity are one answer, whatever the model reads.
        let plan = ReferencePlan::new("Yes, it is.", "Correct.", None);
        assert_eq!(decide_reference(&plan, &[nli(0.8, 0.0), nli(0.7, 0.0)], 0.5, None).score, 1.0);
        // A long output only has to state the short reference: the reverse direction is not asked of it.
        let long = "Standard repairs such as zippers take 10 business days. Repairs under warranty are free.";
        let plan = ReferencePlan::new("About 10 business days.", long, Some("How long does a zipper repair take?"));
        let r = decide_reference(&plan, &[nli(0.01, 0.0), nli(0.92, 0.01)], 0.5, None);
        assert!((r.score - 0.92).abs() < 1e-6);
        assert!(r.passed);
        assert!(r.reference_facts.is_none() && r.contradicted_facts.is_empty());
    }

    #[test]
    fn a_contradicted_short_answer_gets_no_credit_for_shared_words() {
        let plan = ReferencePlan::new("100 points", "500 points", Some("How many points for a $5 reward?"));
        assert_eq!(token_f1("500 points", "100 points"), 0.5);
        let r = decide_reference(&plan, &[nli(0.05, 0.9), nli(0.04, 0.93)], 0.5, None);
        assert!((r.score - 0.04).abs() < 1e-6, "{}", r.score);
        assert!(!r.passed);
        assert_eq!(r.contradicted_facts, vec!["100 points".to_string()]);
        assert_eq!(r.token_f1, Some(0.5));
    }

    /// Found grading RAGAS's LIC example: "1965" against the reference "1956", both read after
    /// "When was LIC established?", drew P(entailment) 0.98 both ways and passed.
    #[test]
    fn a_short_answer_whose_numbers_differ_from_the_reference_fails() {
        let plan = ReferencePlan::new("1956", "1965", Some("When was LIC established?"));
        let r = decide_reference(&plan, &[nli(0.98, 0.0), nli(0.97, 0.0)], 0.5, Some(0.9));
        assert_eq!(r.score, 0.0);
        assert!(!r.passed);
        assert_eq!(r.contradicted_facts, vec!["1956".to_string()]);
        // The same number written otherwise is the same answer: no clash.
        let plan = ReferencePlan::new("30 days", "Refunds are accepted within thirty days of delivery.", Some("What is the refund window?"));
        let r = decide_reference(&plan, &[nli(0.1, 0.0), nli(0.8, 0.0)], 0.5, None);
        assert!((r.score - 0.8).abs() < 1e-6 && r.passed && r.contradicted_facts.is_empty(), "{r:?}");
    }

    #[test]
    fn longer_references_are_checked_fact_by_fact() {
        let reference = "Refunds are accepted within 30 days of delivery. The money goes back to the original card.";
        let output = "You can get a refund within 30 days of delivery, and the money goes back to your card.";
        let plan = ReferencePlan::new(reference, output, Some("Can I get a refund?"));
        assert_eq!(plan.method, ReferenceMethod::Facts);
        assert_eq!(plan.output_text, output, "long texts are not prefixed with the question");
        assert_eq!(plan.facts.len(), 2);
        let q = plan.questions();
        assert_eq!(q.len(), 4);
        assert_eq!(q[2], (output.to_string(), plan.facts[0].clone()));
        assert_eq!(q[3], (output.to_string(), plan.facts[1].clone()));
        assert_eq!(plan.fact_texts, plan.facts, "no particle to read off");

        // Both stated: the mean margin, though the reference entails less than the output says.
        let r = decide_reference(&plan, &[nli(0.1, 0.0), nli(0.8, 0.0), nli(0.9, 0.02), nli(0.8, 0.04)], 0.5, None);
        assert!((r.score - (0.88 + 0.76) / 2.0).abs() < 1e-6, "{}", r.score);
        assert_eq!(r.reference_facts, Some(1.0));
        assert!(r.passed && r.contradicted_facts.is_empty());

        // Both stated by the model's most likely label, though the soft margin is under the mark
        // ((0.58 - 0.15 + 0.6 - 0.2) / 2 = 0.415): every fact is stated, so the check passes.
        let r = decide_reference(&plan, &[nli(0.1, 0.0), nli(0.6, 0.0), nli(0.58, 0.15), nli(0.6, 0.2)], 0.5, None);
        assert!((r.score - 0.415).abs() < 1e-6, "{}", r.score);
        assert_eq!(r.reference_facts, Some(1.0));
        assert!(r.passed);
        // Stated by the hard decisions but barely (margins 0.06 each): under half the mark, fails.
        let r = decide_reference(&plan, &[nli(0.1, 0.0), nli(0.6, 0.0), nli(0.51, 0.45), nli(0.51, 0.45)], 0.5, None);
        assert_eq!(r.reference_facts, Some(1.0));
        assert!(!r.passed, "{}", r.score);

        // One stated, one missing: half the facts, and a score below the mark.
        let r = decide_reference(&plan, &[nli(0.1, 0.0), nli(0.3, 0.0), nli(0.9, 0.0), nli(0.1, 0.1)], 0.5, None);
        assert_eq!(r.reference_facts, Some(0.5));
        assert!((r.score - 0.45).abs() < 1e-6);
        assert!(!r.passed);

        // One stated, one contradicted: the contradiction cancels the stated fact.
        let r = decide_reference(&plan, &[nli(0.1, 0.0), nli(0.3, 0.0), nli(0.95, 0.0), nli(0.02, 0.97)], 0.5, None);
        assert_eq!(r.score, 0.0, "floored at 0");
        assert_eq!(r.reference_facts, Some(0.5));
        assert_eq!(r.contradicted_facts, vec![plan.facts[1].clone()]);
        assert!(!r.passed);
    }

    #[test]
    fn reference_facts_are_its_claims() {
        assert_eq!(
            reference_facts("Yes. Refunds are accepted within 30 days of delivery with the receipt."),
            vec!["Refunds are accepted within 30 days of delivery with the receipt."]
        );
        assert_eq!(reference_facts("Yes. No."), vec!["Yes.", "No."], "no claim: the sentences");
        assert_eq!(reference_facts("Why? How?"), vec!["Why? How?"], "only questions: the whole");
    }

    #[test]
    fn answers_are_read_without_a_leading_particle() {
        let output = "Camping gear can be rented for a minimum of 2 days. A refundable deposit of $100 is held.";
        let plan = ReferencePlan::new("No, the minimum rental is 2 days.", output, Some("Can I rent a tent for one night?"));
        assert_eq!(plan.method, ReferenceMethod::ShortAnswer);
        assert_eq!(plan.reference_text, "the minimum rental is 2 days.", "the particle off, no question in front");
        // A bare particle cannot stand alone: it is read with its question.
        let plan = ReferencePlan::new("No.", "No", Some("Can I rent a tent for one night?"));
        assert_eq!(plan.reference_text, "Can I rent a tent for one night? No");
        // Facts too, while the reported fact keeps its words.
        let reference = "Yes, refunds are accepted within 30 days of delivery. The money goes back to the card.";
        let plan = ReferencePlan::new(reference, output, None);
        assert_eq!(plan.facts[0], "Yes, refunds are accepted within 30 days of delivery.");
        assert_eq!(plan.fact_texts[0], "refunds are accepted within 30 days of delivery.");
        assert_eq!(plan.questions()[2], (output.to_string(), plan.fact_texts[0].clone()));
    }

    #[test]
    fn an_input_that_asks_nothing_is_not_put_in_front() {
        let plan = ReferencePlan::new("Paris", "Paris", Some("Summarise the travel guide."));
        assert_eq!(plan.reference_text, "Paris");
    }

    #[test]
    fn results_without_the_new_fields_read_back() {
        let old = r#"{"score": 0.03, "reference_entails_output": 0.03, "output_entails_reference": 0.9,
                      "cosine": 1.0, "passed": false}"#;
        let r: ReferenceCheck = serde_json::from_str(old).unwrap();
        assert_eq!((r.method, r.exact_match, r.token_f1, r.reference_facts), (None, None, None, None));
        assert!(r.contradicted_facts.is_empty());
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back.as_object().map(|o| o.len()), Some(5), "absent fields are not written: {back}");
        let plan = ReferencePlan::new("Mount Everest", "Mount Everest", None);
        let new = serde_json::to_value(decide_reference(&plan, &[nli(0.03, 0.0), nli(0.03, 0.0)], 0.5, None)).unwrap();
        assert_eq!(new["method"], "short_answer");
        assert_eq!(new["exact_match"], true);
        assert!(new.get("reference_facts").is_none() && new.get("contradicted_facts").is_none());
    }

    #[test]
    fn missing_answers_read_as_neutral() {
        let plan = ReferencePlan::new("Paris", "London", None);
        let r = decide_reference(&plan, &[], 0.5, None);
        assert_eq!(r.score, 0.0);
        assert!(!r.passed);
    }
}

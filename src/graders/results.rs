//! The result line of a graded case (`suite-format.md`, "Results"): typed, serialisable and readable
//! back, so that reports, gates and comparisons work from the file alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::suite::Case;

/// The fixed vocabulary of failure classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// A claim that no context supports.
    UnsupportedClaim,
    /// A claim that a context contradicts.
    ContradictedClaim,
    /// An output whose every claim is supported but which, read whole, is not (`[support]
    /// whole_output`): the unsupported part is outside the claims (a question's presupposition,
    /// "Have you seen him in The Hunger Games?") or in how they combine.
    UnsupportedOutput,
    /// A number, date, amount or name of a claim that appears in none of the case's contexts, in any
    /// of the formats they could write it in (`crate::text::specifics`): reported beside the NLI
    /// verdict, which it does not change.
    UnsupportedSpecific,
    /// A claim sentence that cites nothing, in an output that cites.
    MissingCitation,
    /// Cited passages that do not entail the sentence, or a citation that adds nothing.
    WrongCitation,
    /// A marker naming no context.
    FabricatedCitation,
    /// The output disagrees with the re-samples.
    InconsistentSamples,
    /// The output does not give the reference's answer: the reference check scored below its pass
    /// mark.
    ReferenceMismatch,
    /// Nothing to grade.
    EmptyOutput,
    /// An output that claims nothing checkable (an abstention such as "I don't know", a bare "yes"
    /// with no question to carry it, punctuation or emoji): never supported.
    NoClaim,
    /// An input was cut to fit the model's window.
    TruncatedInput,
    /// A rubric metric (judge) scored below its pass mark.
    RubricFailed,
    /// An output, reference or context shown to the judge holds text addressed to the grader (a
    /// prompt injection).
    JudgeInjection,
    /// A deterministic check of the output's form failed: contains, not_contains, equals, regex,
    /// JSON, JSON schema or length (`graders::checks`).
    FormatViolation,
    /// The case's `latency_ms` is over a check's limit (or missing where a limit is set).
    LatencyExceeded,
    /// The case's `cost` is over a check's limit (or missing where a limit is set).
    CostExceeded,
    /// A refusal was expected and the output answers.
    RefusalFailure,
    /// An answer was expected and the output declines.
    OverRefusal,
    /// The people who labelled the case disagree (`label.reviewers` splits): the case's label is
    /// disputed, whatever the grader says (`candor agreement` lists these).
    ReviewerDisagreement,
}

impl Failure {
    /// All classes, in a fixed order.
    pub const ALL: [Failure; 20] = [
        Failure::UnsupportedClaim,
        Failure::ContradictedClaim,
        Failure::UnsupportedOutput,
        Failure::UnsupportedSpecific,
        Failure::MissingCitation,
        Failure::WrongCitation,
        Failure::FabricatedCitation,
        Failure::InconsistentSamples,
        Failure::ReferenceMismatch,
        Failure::EmptyOutput,
        Failure::NoClaim,
        Failure::TruncatedInput,
        Failure::RubricFailed,
        Failure::JudgeInjection,
        Failure::FormatViolation,
        Failure::LatencyExceeded,
        Failure::CostExceeded,
        Failure::RefusalFailure,
        Failure::OverRefusal,
        Failure::ReviewerDisagreement,
    ];

    /// The snake_case name used in results.
    pub fn name(self) -> &'static str {
        match self {
            Failure::UnsupportedClaim => "unsupported_claim",
            Failure::ContradictedClaim => "contradicted_claim",
            Failure::UnsupportedOutput => "unsupported_output",
            Failure::UnsupportedSpecific => "unsupported_specific",
            Failure::MissingCitation => "missing_citation",
            Failure::WrongCitation => "wrong_citation",
            Failure::FabricatedCitation => "fabricated_citation",
            Failure::InconsistentSamples => "inconsistent_samples",
            Failure::ReferenceMismatch => "reference_mismatch",
            Failure::EmptyOutput => "empty_output",
            Failure::NoClaim => "no_claim",
            Failure::TruncatedInput => "truncated_input",
            Failure::RubricFailed => "rubric_failed",
            Failure::JudgeInjection => "judge_injection",
            Failure::FormatViolation => "format_violation",
            Failure::LatencyExceeded => "latency_exceeded",
            Failure::CostExceeded => "cost_exceeded",
            Failure::RefusalFailure => "refusal_failure",
            Failure::OverRefusal => "over_refusal",
            Failure::ReviewerDisagreement => "reviewer_disagreement",
        }
    }

    /// The metric that finds this class, so that a count of 0 is only read as "none found" where
    /// that metric ran: `support`, `citation`, `consistency` or `checks`, `"rubric"` for a class any rubric
    /// metric (judge) finds, or `None` for a class found whatever ran (`empty_output`, `no_claim`,
    /// `truncated_input`).
    pub fn metric(self) -> Option<&'static str> {
        match self {
            Failure::UnsupportedClaim
            | Failure::ContradictedClaim
            | Failure::UnsupportedOutput
            | Failure::UnsupportedSpecific => Some("support"),
            Failure::MissingCitation | Failure::WrongCitation | Failure::FabricatedCitation => Some("citation"),
            Failure::InconsistentSamples | Failure::ReferenceMismatch => Some("consistency"),
            Failure::RubricFailed | Failure::JudgeInjection => Some("rubric"),
            Failure::FormatViolation | Failure::LatencyExceeded | Failure::CostExceeded | Failure::RefusalFailure | Failure::OverRefusal => {
                Some("checks")
            }
            // Read off the output itself (no_claim is raised whenever support or citation runs).
            Failure::EmptyOutput | Failure::NoClaim | Failure::TruncatedInput => None,
            // Read off the case's labels.
            Failure::ReviewerDisagreement => None,
        }
    }
}

/// A metric's outcome: its result, or why it could not run for this case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Outcome<T> {
    /// The metric ran.
    Ran(T),
    /// The metric could not run (no contexts, no citations, ...).
    Skipped {
        /// Why.
        skipped: String,
    },
}

impl<T> Outcome<T> {
    /// A skipped outcome.
    pub fn skipped(why: &str) -> Self {
        Outcome::Skipped { skipped: why.to_string() }
    }

    /// The result, if the metric ran.
    pub fn ran(&self) -> Option<&T> {
        match self {
            Outcome::Ran(t) => Some(t),
            Outcome::Skipped { .. } => None,
        }
    }
}

/// Where a claim's evidence is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The context id.
    pub context: String,
    /// Character range of the chunk in that context.
    pub span: [usize; 2],
}

/// One claim of the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimResult {
    /// The claim (citation markers removed).
    pub text: String,
    /// Character range of its sentence in the output.
    pub span: [usize; 2],
    /// Support: the highest P(entailment) over all chunks of all contexts, for the claim or, with
    /// `[support] whole_output`, for the whole output that contains it. For a claim graded
    /// `against_opposite` (a bare "yes" or "no"): how far its best P(entailment) exceeds the
    /// opposite answer's, at least 0. For a claim `denied` (or `verbatim`): 0 (or 1).
    pub score: f32,
    /// The highest P(contradiction) over all chunks; for `against_opposite`, how far the opposite
    /// answer's best P(entailment) exceeds the claim's, at least 0 (its evidence is then the
    /// opposite's best chunk).
    pub contradiction: f32,
    /// `supported`, `unsupported` or `contradicted` (by the model, or by a figure its evidence gives
    /// otherwise: see [`SpecificFound::stated`]).
    pub label: String,
    /// The best-entailing chunk (the contradicting one, for a contradicted claim).
    pub evidence: Option<Evidence>,
    /// Where the claim came from, when the judge decomposes claims (`[support] claims = "judge"`):
    /// `judge` (an atomic fact of the sentence at `span`) or `sentence` (the sentence itself: too
    /// short to split, or nothing usable came back). Absent with the default sentence claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ClaimFrom>,
    /// The form the NLI model read, where it differs from `text`: a bare answer with the case's
    /// question, or a claim without its leading "Yes,"/"No,". Absent when the claim was read as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graded: Option<GradedAs>,
    /// Numbers, dates, amounts and names of the claim that appear in none of the contexts
    /// (`unsupported_specific`); absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub specifics: Vec<SpecificFound>,
    /// Whether the claim, as written or as read (`graded.text`: "2 years" read as a context's "24
    /// months"), repeats a sentence of its evidence context word for word (then it is supported
    /// with score 1, and the evidence is that sentence), or, for a code block, every line of it is
    /// found in the contexts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verbatim: bool,
    /// Whether a sentence of a context states the claim word for word but for a negation ("can
    /// not be replaced" against "can be replaced"): then it is `contradicted` with score 0 and
    /// contradiction 1, and the evidence is that sentence.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub denied: bool,
    /// Where a sentence of a context says with one name what the claim says with another ("Croatia
    /// won the 2018 World Cup." against "France won the 2018 World Cup, defeating Croatia ..."):
    /// the claim's name and the sentence's. The claim is then `contradicted` with score 0 and
    /// contradiction 1, and the evidence is that sentence ([`crate::text::swaps`]). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swapped: Option<Swapped>,
}

/// A name of a claim that a context sentence gives as another name in the same words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Swapped {
    /// The claim's name, as the claim writes it.
    pub text: String,
    /// Character range of it in the claim's `text`.
    pub span: [usize; 2],
    /// The context's name in its place.
    pub stated: Stated,
}

/// A specific of a claim that no context contains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecificFound {
    /// The specific as the claim writes it ("60 days", "$1,300", "20th March 1879").
    pub text: String,
    /// `number`, `amount`, `percent`, `date` or `name`.
    pub kind: crate::text::specifics::SpecificKind,
    /// Character range in the claim's `text`.
    pub span: [usize; 2],
    /// Where the claim's evidence gives another figure of the same kind in the same place ("1879"
    /// beside "born" where the claim says "born on 14 March 1880"): the claim is then
    /// `contradicted` ([`crate::text::conflicts`]). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stated: Option<Stated>,
}

/// A figure a context gives in the place where a claim gives another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stated {
    /// The figure as the context writes it.
    pub text: String,
    /// The context id.
    pub context: String,
    /// Character range of the figure in that context.
    pub span: [usize; 2],
}

/// The form a claim was graded in, where it differs from the claim as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradedAs {
    /// How the hypothesis was made.
    pub form: ClaimForm,
    /// The hypothesis the NLI model read.
    pub text: String,
    /// For `against_opposite`: the opposite answer's hypothesis, which the claim was weighed
    /// against (its score is how far the sources favour `text` over this); for
    /// `against_affirmative`: the claim without its "not" (its score is at most 1 less this one's
    /// P(entailment) where the sources favour this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against: Option<String>,
}

/// How a claim's hypothesis was made from it: the form `crate::text::claim_form::read` gives it,
/// written into results as `with_question`, `particle_removed`, `against_opposite`,
/// `against_affirmative`, `symbols_removed`, `markup_removed`, `source_frame_removed`,
/// `question_removed`, `units_as_in_sources` or `code`.
pub use crate::text::claim_form::Form as ClaimForm;

/// Where a checked claim came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimFrom {
    /// An atomic fact written by the judge model.
    Judge,
    /// The output's sentence itself.
    Sentence,
}

/// Factual support of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupportResult {
    /// Case score in [0, 1] (by the configured aggregation).
    pub score: f32,
    /// Whether the score reaches the configured pass mark (and, where the whole output was read,
    /// the output is not `unsupported_output`).
    pub passed: bool,
    /// Every claim.
    pub claims: Vec<ClaimResult>,
    /// The whole output read as one hypothesis, where `[support] whole_output` scored it (it is more
    /// than its one claim and fits beside a context window); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputSupport>,
    /// Where the support model is a token classifier (LettuceDetect): the output's hallucinated
    /// spans, in order; absent otherwise and when it found none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<HallucinatedSpan>,
    /// Sentences not graded because they speak of the sources rather than the world
    /// (`text::about_sources`): those saying the sources lack something ("The context does not
    /// mention X."), and every sentence of an output that does nothing else ("The context explains
    /// how to ..."), which then fails as `no_claim`. Absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub about_sources: Vec<SentenceRef>,
}

/// A sentence of the output, by its text and place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceRef {
    /// The sentence (citation markers removed).
    pub text: String,
    /// Character range of the sentence in the output.
    pub span: [usize; 2],
}

/// A run of output tokens a token-classifier support model marks as hallucinated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HallucinatedSpan {
    /// Character range in the output.
    pub span: [usize; 2],
    /// The span's text.
    pub text: String,
    /// The highest hallucination probability of its tokens.
    pub confidence: f32,
}

impl SupportResult {
    /// The case-level verdict measured against labels: supported when every claim is and, where the
    /// whole output was read and holds more than its claims, the whole output is too; with the
    /// weakest of those probabilities as its score (for ROC-AUC). `None` for an output with no claim
    /// (the grader fails it as `no_claim` whatever its label): measures leave it out and count it.
    pub fn verdict(&self) -> Option<(bool, f64)> {
        if self.claims.is_empty() {
            return None;
        }
        let whole = self.output.as_ref().filter(|o| o.beyond_claims);
        let supported = self.claims.iter().all(|c| c.label == "supported") && whole.is_none_or(|o| o.label != "unsupported");
        let weakest = self.claims.iter().map(|c| c.score as f64).chain(whole.map(|o| o.score as f64)).fold(f64::INFINITY, f64::min);
        Some((supported, weakest))
    }
}

/// The whole output's support (`[support] whole_output`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSupport {
    /// The highest P(entailment) of the whole output over all chunks of all contexts.
    pub score: f32,
    /// `supported` or `unsupported` (by `[support] claim_threshold`).
    pub label: String,
    /// The best-entailing chunk.
    pub evidence: Option<Evidence>,
    /// Whether the output holds more than its claims (a question, a fragment): only then does an
    /// unsupported whole fail a case whose claims pass (`unsupported_output`). Where the output is
    /// its claims and nothing else, the whole only lifts its claims (results written before this
    /// field read as `true`).
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub beyond_claims: bool,
}

fn yes() -> bool {
    true
}

/// One sentence's citations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CitedSentence {
    /// The sentence (markers removed).
    pub text: String,
    /// Character range in the output.
    pub span: [usize; 2],
    /// The ids it cites.
    pub cites: Vec<String>,
    /// Cited ids that name no context.
    pub fabricated: Vec<String>,
    /// Whether the cited passages together entail it.
    pub entailed: bool,
    /// P(entailment) of the joint passage, when all citations exist.
    pub score: Option<f32>,
    /// Citations judged irrelevant (ALCE).
    pub irrelevant: Vec<String>,
    /// `supported`, `not_entailed`, `irrelevant_citation`, `fabricated` or `missing`.
    pub status: String,
}

/// Citation entailment of a case (ALCE).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CitationResult {
    /// F1 of recall and precision.
    pub score: f32,
    /// Citation recall.
    pub recall: f32,
    /// Citation precision.
    pub precision: f32,
    /// Whether recall and precision reach their pass marks.
    pub passed: bool,
    /// Per-sentence detail.
    pub sentences: Vec<CitedSentence>,
}

/// Agreement with the reference: whether the output gives the reference's answer (see
/// [`crate::graders::consistency`] for the rule).
///
/// Results written before `method` existed carry only `score`, the two entailments, `cosine` and
/// `passed` (their score was the mutual implication); the newer fields read back as absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceCheck {
    /// Answer correctness in [0, 1], by `method`.
    pub score: f32,
    /// P(reference entails output), the whole texts as the NLI model read them (with `short_answer`,
    /// a short answer after its question, or without a leading "yes"/"no").
    pub reference_entails_output: f32,
    /// P(output entails reference), the same texts the other way.
    pub output_entails_reference: f32,
    /// Cosine similarity of the sentence embeddings (reported, not gated).
    pub cosine: Option<f32>,
    /// Whether `score` reaches the pass mark.
    pub passed: bool,
    /// Which form was graded: `short_answer` or `facts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<ReferenceMethod>,
    /// SQuAD exact match of output and reference, after SQuAD's normalisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_match: Option<bool>,
    /// SQuAD token F1 of the output against the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_f1: Option<f32>,
    /// With `facts`: the fraction of the reference's fact sentences that the output entails
    /// (P(entailment) >= 0.5, and not contradicted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_facts: Option<f32>,
    /// The reference's facts (with `short_answer`, the reference itself) that the output contradicts
    /// (P(contradiction) >= 0.5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contradicted_facts: Vec<String>,
}

/// How the reference check read the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceMethod {
    /// A short reference or output, compared as answers: exact match, token F1 and NLI.
    ShortAnswer,
    /// A longer reference, as facts the output must state.
    Facts,
}

/// Agreement with the samples (`[consistency] samples`: contradiction, or SelfCheckGPT-NLI).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplesCheck {
    /// With `rule` `contradiction`: 1 - the largest sentence `contradiction`; with `selfcheckgpt`
    /// (and in results written before `rule` existed): 1 - the mean sentence `inconsistency`.
    pub score: f32,
    /// Number of samples.
    pub samples: usize,
    /// Per sentence: its text, its inconsistency (mean over samples of P(c) / (P(c) + P(e))) and its
    /// contradiction (mean over samples of P(c)).
    pub sentences: Vec<SentenceInconsistency>,
    /// Whether `score` reaches the pass mark.
    pub passed: bool,
    /// The rule that made `score` (`[consistency] samples`); absent in results written before it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rule: Option<crate::config::SamplesRule>,
}

/// One sentence's inconsistency with the samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceInconsistency {
    /// The sentence.
    pub text: String,
    /// Mean over samples of the normalised contradiction probability, P(c) / (P(c) + P(e)), as
    /// SelfCheckGPT-NLI scores it.
    pub inconsistency: f32,
    /// Mean over samples of P(contradiction) (neutral counted, so a sample that does not speak of
    /// the sentence adds about nothing); absent in results written before it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub contradiction: Option<f32>,
}

/// Semantic consistency of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyResult {
    /// The lowest score of the parts that ran (reference, samples).
    pub score: f32,
    /// Whether every part that ran passed.
    pub passed: bool,
    /// Against the reference.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reference: Option<ReferenceCheck>,
    /// Against the samples.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub samples: Option<SamplesCheck>,
    /// Answer relevance: cosine similarity of input and output embeddings (reported, not gated).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub relevance: Option<f32>,
}

/// The metrics of a case; a metric not asked for is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Factual support.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub support: Option<Outcome<SupportResult>>,
    /// Citation entailment.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub citation: Option<Outcome<CitationResult>>,
    /// Semantic consistency.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub consistency: Option<Outcome<ConsistencyResult>>,
    /// Deterministic checks (`graders::checks`): absent where no check applies to the case.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub checks: Option<Outcome<super::checks::ChecksResult>>,
    /// Rubric metrics graded by the judge, by rubric name.
    #[serde(flatten)]
    pub rubrics: BTreeMap<String, Outcome<RubricResult>>,
}

/// A rubric metric of a case: the judge's rating distribution (G-Eval).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RubricResult {
    /// The expected rating mapped to [0, 1]: (rating - 1) / (scale - 1).
    pub score: f32,
    /// Whether the score reaches the rubric's pass mark.
    pub passed: bool,
    /// The expected rating, in [1, scale].
    pub rating: f32,
    /// P(rating = k) for k = 1..=scale, renormalised over the scale's tokens.
    pub distribution: Vec<f32>,
    /// Probability the judge put on the scale's tokens at all (low: it did not answer with a rating).
    pub mass: f32,
    /// Whether the prompt was cut to fit the judge's context.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Text addressed to the grader found in the shown fields (redacted before the judge read them,
    /// unless the rubric says `injection = "flag"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injection: Vec<InjectionFound>,
}

/// Text addressed to the grader in one field of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectionFound {
    /// The field: `input`, `output`, `reference`, or `contexts.<id>`.
    pub field: String,
    /// Character range in that field.
    pub span: [usize; 2],
    /// What it is: `structure`, `override` or `rating_demand`.
    pub kind: crate::text::injection::InjectionKind,
}

impl Metrics {
    /// Score and pass of each metric that ran, by name: the built-in metrics, then the rubrics.
    pub fn scores(&self) -> Vec<(&str, f32, bool)> {
        let mut out = vec![];
        if let Some(s) = self.support.as_ref().and_then(Outcome::ran) {
            out.push(("support", s.score, s.passed));
        }
        if let Some(s) = self.citation.as_ref().and_then(Outcome::ran) {
            out.push(("citation", s.score, s.passed));
        }
        if let Some(s) = self.consistency.as_ref().and_then(Outcome::ran) {
            out.push(("consistency", s.score, s.passed));
        }
        if let Some(s) = self.checks.as_ref().and_then(Outcome::ran) {
            out.push(("checks", s.score, s.passed));
        }
        for (name, o) in &self.rubrics {
            if let Some(s) = o.ran() {
                out.push((name.as_str(), s.score, s.passed));
            }
        }
        out
    }

    /// Whether every metric that ran passed.
    pub fn all_passed(&self) -> bool {
        self.scores().iter().all(|(_, _, p)| *p)
    }

    /// Whether the case earned a pass: at least one metric ran, and every one that ran passed. A
    /// case where nothing ran is not passed (fail closed); the summary counts it apart as skipped.
    pub fn earned_pass(&self) -> bool {
        !self.scores().is_empty() && self.all_passed()
    }
}

/// One result line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// The case id.
    pub id: String,
    /// The case's segments.
    #[serde(default)]
    pub segments: BTreeMap<String, String>,
    /// Every metric asked for.
    pub metrics: Metrics,
    /// Failure classes, each once, in a fixed order.
    pub failures: Vec<Failure>,
    /// Whether every metric that ran passed, at least one ran, and the output was not empty. A
    /// case where no metric ran is `false` here (results written before 2026-11-29 said `true`);
    /// summaries count it apart as skipped.
    pub passed: bool,
    /// The case's label, copied.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub label: Option<Value>,
    /// The models that graded, `name@sha256-prefix`.
    pub model: BTreeMap<String, String>,
    /// The case's metadata, copied.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub metadata: Option<Value>,
    /// The hash of the case graded ([`crate::suite::case_hash`]): `grade --resume` re-grades a
    /// case whose line changed since.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub input_hash: Option<String>,
}

impl CaseResult {
    /// An empty result for a case.
    pub fn new(case: &Case, model: BTreeMap<String, String>) -> Self {
        // A case whose reviewers split says so whatever is graded: its label is in dispute.
        let failures = if crate::suite::reviewers::reviewers_split(case.label.as_ref()) { vec![Failure::ReviewerDisagreement] } else { vec![] };
        Self {
            id: case.id.clone(),
            segments: case.segments.clone(),
            metrics: Metrics::default(),
            failures,
            passed: true,
            label: case.label.clone(),
            model,
            metadata: case.metadata.clone(),
            input_hash: Some(case.input_hash.clone()),
        }
    }

    /// Fails when the result holds a score that is NaN or infinite: serde_json would write it as
    /// `null`, and the results file could no longer be read. The error names the case, the field
    /// (`metrics.support.claims[2].score`) and the text of the claim or sentence it belongs to.
    pub fn check_finite(&self) -> crate::error::Result<()> {
        match crate::io::find_non_finite(self) {
            None => Ok(()),
            Some(found) => Err(crate::error::Error::NonFinite { case: self.id.clone(), field: found.field, value: found.value, text: found.text }),
        }
    }

    /// Adds a failure class once, keeping the fixed order.
    pub fn add_failure(&mut self, f: Failure) {
        if !self.failures.contains(&f) {
            self.failures.push(f);
            self.failures.sort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    /// A result line as `candor grade` writes it, with two claims.
    fn result() -> CaseResult {
        serde_json::from_value(serde_json::json!({
            "id": "case-7", "segments": {}, "failures": [], "passed": true, "model": {"nli": "m@1"},
            "metrics": {
                "support": {"score": 0.9, "passed": true, "claims": [
                    {"text": "The sky is blue.", "span": [0, 16], "score": 0.9, "contradiction": 0.0, "label": "supported", "evidence": null},
                    {"text": "Grass is green.", "span": [17, 32], "score": 0.95, "contradiction": 0.01, "label": "supported",
                     "evidence": {"context": "1", "span": [0, 10]}}
                ]}
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_result_with_a_nan_score_is_an_error_naming_the_case_and_claim() {
        let mut r = result();
        r.check_finite().unwrap();
        let Some(Outcome::Ran(s)) = r.metrics.support.as_mut() else { panic!("support did not parse") };
        s.claims[1].contradiction = f32::NAN;
        let e = r.check_finite().unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::NonFinite { .. }), "{e:?}");
        assert!(
            msg.contains("case-7") && msg.contains("metrics.support.claims[1].contradiction") && msg.contains("Grass is green."),
            "{msg}"
        );
        let mut r = result();
        let Some(Outcome::Ran(s)) = r.metrics.support.as_mut() else { panic!() };
        s.score = f32::INFINITY;
        let msg = r.check_finite().unwrap_err().to_string();
        assert!(msg.contains("metrics.support.score is inf"), "{msg}");
    }
}

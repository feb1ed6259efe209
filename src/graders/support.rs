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
//! the default), the minimum, or the mean. An output that holds more than its claims (a question, a
//! fragment) and whose every claim is supported but which, read whole, is not, fails as
//! `unsupported_output`: what is unsupported lies outside the claims (a question is not a claim, but
//! "Have you seen him in The Hunger Games?" presupposes a fact). An output that is only its claims
//! is not failed by its whole: each claim was checked, and a small model reads several sentences
//! at once less well than each alone (on the example suite, correct two-sentence answers whose
//! sentences each scored 0.89-0.98 scored 0.26 whole).
//!
//! Each claim is read against every chunk of every context and, with `[support]
//! evidence_sentences`, also against the few sentences of each context that share most words with
//! it ([`evidence_windows`]; off by default: it helps on the example suite and lost 0.03 balanced
//! accuracy on Factcheck-GPT's held-out part). A claim that repeats a context sentence word for word
//! is supported by it, with score 1 ([`verbatim_sentence`]).
//!
//! Numbers, dates, amounts and names of a claim found in no context are listed with it
//! ([`crate::text::specifics`]). Where a context gives another figure of the same kind in the same
//! place ("born on 14 March 1880" against "(born 14 March 1879)"), the claim is `contradicted`
//! whatever the model read, with that figure (`stated`) and its sentence as evidence
//! ([`crate::text::conflicts`]): the model reads a sentence with one figure changed as close to its
//! source.
//!
//! A fenced code block of the output is graded beside the claims but never read by the model: its
//! lines are looked up in the contexts ([`crate::text::code`]), and it is supported where enough of
//! its words sit on lines found there (`[support] code_threshold`); it is never `contradicted`.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::ops::Range;

use super::pairs::PairScheduler;
use super::results::{ClaimForm, ClaimResult, Evidence, Failure, GradedAs, Outcome, OutputSupport, SpecificFound, Stated, SupportResult, Swapped};
use super::Prepared;
use crate::config::{Aggregation, SupportConfig};
use crate::text::{words, CharIndex};
use crate::text::words::plain_words;
use crate::text::conflicts;
use crate::text::specifics::Sources;

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

/// A chunk found for a question: (probability, context id, chunk span, context index).
type Found<'a> = (f32, &'a str, std::ops::Range<usize>, usize);

/// The evidence a found chunk points at: its context id and character span (`chars`: the
/// [`CharIndex`] of each context).
fn evidence_of((_, id, span, k): &Found, chars: &[CharIndex]) -> Evidence {
    let at = |byte: usize| chars.get(*k).map_or(0, |ix| ix.offset(byte));
    Evidence { context: id.to_string(), span: [at(span.start), at(span.end)] }
}

/// The content words of a text ([`words::content_words`]) as a set: what locates its evidence.
fn content_words(text: &str) -> HashSet<String> {
    words::content_words(text).into_iter().collect()
}

/// Premises a claim is read against in one context besides its chunks: the `count`
/// sentences that share the most content words with `hypothesis` (ties: the earlier), each alone
/// and together with the sentence before it. A chunk holds a fact among many others, and a small
/// NLI model reads a fact copied word for word out of a crowded chunk as unsupported; read alone,
/// the sentence that states it entails it (SummaC's sentence-level premises, Laban et al. 2022,
/// with lexical retrieval to keep the cost to a few short pairs per claim). Byte ranges into the
/// context, each a run of whole sentences that fits in `max_chars`.
pub(super) fn evidence_windows(context: &str, sentences: &[Range<usize>], hypothesis: &str, count: usize, max_chars: usize) -> Vec<Range<usize>> {
    if sentences.len() < 2 || count == 0 {
        return vec![];
    }
    let wanted = content_words(hypothesis);
    if wanted.is_empty() {
        return vec![];
    }
    let mut ranked: Vec<(usize, usize)> = sentences
        .iter()
        .enumerate()
        .map(|(i, r)| (content_words(&context[r.clone()]).intersection(&wanted).count(), i))
        .filter(|&(n, _)| n > 0)
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut out: Vec<Range<usize>> = vec![];
    for &(_, i) in ranked.iter().take(count) {
        let alone = sentences[i].clone();
        let with_previous = (i > 0).then(|| sentences[i - 1].start..sentences[i].end);
        for r in std::iter::once(alone).chain(with_previous) {
            if r.len() <= max_chars && !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out.sort_by_key(|r| (r.start, r.end));
    out
}

/// P(entailment) below which a claim whose figure is in no source is not supported, whatever the
/// claim threshold (see [`grade`]).
const WEAK_SUPPORT: f32 = 0.5;

/// Claims of fewer words are never matched word for word ([`verbatim_sentence`]).
const VERBATIM_MIN_WORDS: usize = 4;

/// A context's sentences by the hash of their words, and of their words after a "Label:" lead-in
/// (the first sentence wins a hash), and by the hash of those words without their negations
/// ([`without_negations`]): built once per context ([`verbatim_index`]) so that finding a claim
/// repeated word for word, or word for word but for a "not", costs the claim's length, not the
/// context's.
#[derive(Debug, Default)]
pub(super) struct VerbatimIndex {
    said: HashMap<u64, Range<usize>>,
    /// Sentences (a "Label:" lead-in taken off only where it asserts what follows: [`LeadIns`]) by
    /// their words without negations: each
    /// sentence and whether it is negated (an odd number of negations).
    unnegated: HashMap<u64, Vec<(Range<usize>, bool)>>,
    /// Sentences by the words beside their names ([`swapped_by`]).
    names: crate::text::swaps::Index,
}

fn words_hash(words: &[String]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    words.hash(&mut h);
    h.finish()
}

/// Lead-in labels under which a sentence is not asserted but held up to be judged ("Myth:
/// vaccines cause autism.", "Claim: X. Verdict: false."), compared lower-case word by word.
const UNASSERTED: &[&str] = &[
    "myth", "myths", "claim", "claims", "claimed", "rumor", "rumour", "rumors", "rumours", "misconception", "misconceptions", "false",
    "fiction", "question", "q", "hypothesis", "allegation", "alleged", "fake", "hoax", "untrue", "wrong", "incorrect", "misinformation",
    "statement", "assertion", "says", "said", "quote", "example",
];

/// Which "Label:" lead-ins a sentence may be read after ([`verbatim_forms`]).
#[derive(Clone, Copy, PartialEq)]
enum LeadIns {
    /// Any: "Price match: we match ..." repeats as "we match ...".
    Any,
    /// Only labels that assert what follows ("Refund policy: refunds are accepted ..."), not those
    /// that hold it up to be judged ([`UNASSERTED`]).
    Asserting,
}

/// The words of a sentence as a claim may repeat it: the sentence, and where it has a "Label:"
/// lead-in the `lead_ins` allow, its words after it; each also without its markdown (a link as its
/// text: "as [Cluster libraries](https://...) as needed" repeats as "as Cluster libraries as
/// needed"). "Myth: vaccines cause autism." does not say that they do: with
/// [`LeadIns::Asserting`] it is read whole.
fn verbatim_forms(sentence: &str, lead_ins: LeadIns) -> Vec<Vec<String>> {
    let plain = crate::text::claim_form::without_markup(sentence);
    let mut forms: Vec<Vec<String>> = vec![];
    let allowed = |label: &str| lead_ins == LeadIns::Any || !plain_words(label).iter().any(|w| UNASSERTED.contains(&w.as_str()));
    for text in std::iter::once(sentence).chain(plain.as_deref()) {
        let after_lead_in = text.split_once(':').filter(|(label, _)| allowed(label)).map(|(_, rest)| rest);
        for form in std::iter::once(text).chain(after_lead_in) {
            let words = plain_words(form);
            if !forms.contains(&words) {
                forms.push(words);
            }
        }
    }
    forms
}

/// Plain words ([`plain_words`]) without their negations, and whether they held an odd number of
/// them: "not" and "never" are dropped, "cannot" is "can", "isn't" ("isn", "t") is "is", "won't"
/// is "will", and a "do" or "does" before a dropped "not" goes with it ("do not need" / "need").
fn without_negations(words: &[String]) -> (Vec<String>, bool) {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut negated = false;
    let mut k = 0;
    while k < words.len() {
        let w = words[k].as_str();
        let contracted = words.get(k + 1).is_some_and(|t| t == "t") && w.len() > 2 && w.ends_with('n');
        let base = match w {
            "not" | "never" => None,
            "cannot" => Some("can".to_string()),
            "won" if contracted => Some("will".to_string()),
            "can" if contracted => Some("can".to_string()),
            _ if contracted && matches!(w, "isn" | "aren" | "wasn" | "weren" | "doesn" | "don" | "didn" | "hasn" | "haven" | "hadn" | "couldn" | "wouldn" | "shouldn" | "mustn") => {
                Some(w[..w.len() - 1].to_string())
            }
            _ => {
                out.push(w.to_string());
                k += 1;
                continue;
            }
        };
        negated = !negated;
        match base {
            Some(b) if matches!(b.as_str(), "do" | "does") => {}
            Some(b) => out.push(b),
            None => {
                if matches!(out.last().map(String::as_str), Some("do" | "does")) && w == "not" {
                    out.pop();
                }
            }
        }
        k += if contracted { 2 } else { 1 };
    }
    (out, negated)
}

/// Indexes a context's sentences (byte ranges from `split_sentences`) for [`verbatim_sentence`]
/// and [`negations`].
pub(super) fn verbatim_index(context: &str, sentences: &[Range<usize>]) -> VerbatimIndex {
    let mut index = VerbatimIndex { names: crate::text::swaps::Index::new(context, sentences), ..Default::default() };
    for r in sentences {
        for words in verbatim_forms(&context[r.clone()], LeadIns::Any) {
            if words.len() >= VERBATIM_MIN_WORDS {
                index.said.entry(words_hash(&words)).or_insert_with(|| r.clone());
            }
        }
        for words in verbatim_forms(&context[r.clone()], LeadIns::Asserting) {
            let (bare, negated) = without_negations(&words);
            if deniable(&bare) {
                index.unnegated.entry(words_hash(&bare)).or_default().push((r.clone(), negated));
            }
        }
    }
    index
}

/// Whether words without their negations are enough to deny a claim by: four or more, two of them
/// content words ("That is not the case." denies nothing).
fn deniable(bare: &[String]) -> bool {
    bare.len() >= VERBATIM_MIN_WORDS && bare.iter().filter(|w| crate::text::words::is_content_word(w)).count() >= 2
}

/// The sentence of a context that a claim repeats word for word (case, punctuation, spacing and
/// markdown aside), as a byte range: the claim is the whole sentence, or the sentence after a
/// lead-in that ends with a colon ("Price match: we match ..."). A source asserts its own sentences, so such a
/// claim is supported whatever a small model makes of it (the default model gave "International
/// orders cannot be returned for a refund; they can only be exchanged." P(contradiction) 0.66
/// against that very sentence). A claim of fewer than four words is never matched this way, and a
/// claim inside a longer sentence is not (the rest of the sentence could negate it: "It is false
/// that ..."). `index` is the context's [`verbatim_index`]; the match found there is confirmed word
/// by word.
pub(super) fn verbatim_sentence(context: &str, index: &VerbatimIndex, claim: &str) -> Option<Range<usize>> {
    let want = plain_words(claim);
    if want.len() < VERBATIM_MIN_WORDS {
        return None;
    }
    let r = index.said.get(&words_hash(&want))?;
    verbatim_forms(&context[r.clone()], LeadIns::Any).contains(&want).then(|| r.clone())
}

/// How a context's sentences read a claim word for word but for their negations
/// ([`without_negations`]): a sentence that denies it (the other polarity: "A lost gift card can be
/// replaced only with the original purchase receipt." against "... can not be replaced ...", or
/// "International orders cannot be returned for a refund." against "... can be returned ..."; the
/// default model supported both, 0.86 and 0.59), and whether one states it (the same polarity,
/// "don't" for "do not"). Whole sentences only, as [`verbatim_sentence`] reads them: a claim of
/// four words or more, two of them content words; confirmed word by word.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Negations {
    /// The first sentence denying the claim.
    pub denied: Option<Range<usize>>,
    /// Whether a sentence states it.
    pub stated: bool,
}

pub(super) fn negations(context: &str, index: &VerbatimIndex, claim: &str) -> Negations {
    let (bare, negated) = without_negations(&plain_words(claim));
    let mut found = Negations::default();
    if !deniable(&bare) {
        return found;
    }
    for (r, n) in index.unnegated.get(&words_hash(&bare)).into_iter().flatten() {
        let same = verbatim_forms(&context[r.clone()], LeadIns::Asserting).iter().any(|w| without_negations(w).0 == bare);
        if !same {
            continue;
        }
        if *n == negated {
            found.stated = true;
        } else if found.denied.is_none() {
            found.denied = Some(r.clone());
        }
    }
    found
}

/// The sentence of one of `contexts` (each with its index) that denies `claim`, where none of them
/// states it ([`negations`]): its context id, byte range and index.
pub(super) fn denied_by<'a>(contexts: impl Iterator<Item = (usize, &'a str, &'a str, &'a VerbatimIndex)>, claim: &str) -> Option<(&'a str, Range<usize>, usize)> {
    let mut denied = None;
    for (k, id, text, index) in contexts {
        let n = negations(text, index, claim);
        if n.stated {
            return None;
        }
        if denied.is_none() {
            denied = n.denied.map(|r| (id, r, k));
        }
    }
    denied
}

/// The first sentence of one of `contexts` (each with its index) that says with one name what
/// `claim` says with another ([`crate::text::swaps`]), where no sentence of any of them states it:
/// its context id, the swap, and the context's index.
pub(super) fn swapped_by<'a>(
    contexts: impl Iterator<Item = (usize, &'a str, &'a str, &'a VerbatimIndex)>,
    claim: &str,
) -> Option<(&'a str, crate::text::swaps::Swap, usize)> {
    use crate::text::swaps::Reading;
    let mut swapped = None;
    for (k, id, text, index) in contexts {
        match index.names.read(text, claim) {
            Reading::Stated => return None,
            Reading::Swapped(s) if swapped.is_none() => swapped = Some((id, s, k)),
            _ => {}
        }
    }
    swapped
}

/// Over every context of the case: the most entailing and the most contradicting chunk for
/// `hypothesis` (the first context wins ties), and whether any pair was cut to fit. With
/// `sentences`, the claim's [`evidence_windows`] are read too, after the chunks.
fn best_chunks<'a>(
    p: &Prepared<'a>,
    sched: &PairScheduler,
    hypothesis: &str,
    sentences: bool,
) -> (Option<Found<'a>>, Option<Found<'a>>, bool) {
    let (mut best, mut worst, mut truncated): (Option<Found>, Option<Found>, bool) = (None, None, false);
    for (k, c) in p.case.contexts.iter().enumerate() {
        let windows = if sentences { p.evidence_windows(k, hypothesis) } else { vec![] };
        let whole = std::iter::once((c.text.as_str(), 0));
        for (premise, offset) in whole.chain(windows.iter().map(|r| (&c.text[r.clone()], r.start))) {
            let j = sched.judge(premise, hypothesis);
            truncated |= j.truncated;
            let shift = |r: Range<usize>| r.start + offset..r.end + offset;
            if best.as_ref().map_or(true, |b| j.entail > b.0) {
                best = Some((j.entail, c.id.as_str(), shift(j.entail_span.clone()), k));
            }
            if worst.as_ref().map_or(true, |w| j.contradict > w.0) {
                worst = Some((j.contradict, c.id.as_str(), shift(j.contradict_span.clone()), k));
            }
        }
    }
    (best, worst, truncated)
}

/// How far `a`'s best chunk favours its hypothesis over `b`'s: `a`'s probability less `b`'s, at
/// least 0, with `a`'s chunk as the evidence.
fn favoured<'a>(a: &Option<Found<'a>>, b: &Option<Found<'a>>) -> Option<Found<'a>> {
    let (p, id, span, k) = a.clone()?;
    Some(((p - b.as_ref().map_or(0.0, |g| g.0)).max(0.0), id, span, k))
}

/// A negated claim's best chunk (`own`) weighed against its affirmative's P(entailment): kept where
/// the affirmative is entailed no more, else its probability capped at 1 less the affirmative's.
fn weighed_against_affirmative<'a>(own: Option<Found<'a>>, affirmative: Option<f32>) -> Option<Found<'a>> {
    let (p, id, span, k) = own?;
    match affirmative {
        Some(a) if a > p => Some((p.min(1.0 - a), id, span, k)),
        _ => Some((p, id, span, k)),
    }
}

/// A grade, its failure classes, and whether any input was truncated.
pub(super) type Graded = (Outcome<SupportResult>, Vec<Failure>, bool);

/// What support is before any model reads a case: skipped without contexts, and failed as
/// `no_claim` for an output that claims nothing (an abstention, punctuation or a bare "yes" states
/// nothing a source could support: it is never `supported`, whatever a model would say of it).
pub(super) fn settled_without_model(p: &Prepared) -> Option<Graded> {
    if p.case.contexts.iter().all(|c| c.text.trim().is_empty()) {
        return Some((Outcome::skipped("no contexts"), vec![], false));
    }
    p.claims_nothing.then(|| {
        let result = SupportResult { score: 0.0, passed: false, claims: vec![], output: None, spans: vec![], about_sources: p.about_sources_read() };
        (Outcome::Ran(result), vec![Failure::NoClaim], false)
    })
}

/// Grades one case; returns the outcome, its failure classes, and whether any input was truncated.
pub(super) fn grade(p: &Prepared, sched: &PairScheduler, cfg: &SupportConfig) -> Graded {
    let case = p.case;
    if let Some(settled) = settled_without_model(p) {
        return settled;
    }
    let mut claims = vec![];
    let mut truncated = false;
    let mut failures = vec![];
    let contexts: Vec<&str> = case.contexts.iter().map(|c| c.text.as_str()).collect();
    // The question's names are the user's words, not the output's inventions (see `with_question`).
    let sources = Sources::new(&contexts).with_question(case.input.as_deref());
    // Character offsets of claims and evidence, each text indexed once (not read up to each span).
    let output_chars = CharIndex::new(&case.output);
    let context_chars: Vec<CharIndex> = contexts.iter().map(|c| CharIndex::new(c)).collect();
    // Each context read for conflicting figures once, when a claim first has a figure in no source.
    let read: Vec<std::cell::OnceCell<conflicts::Evidence>> = contexts.iter().map(|_| std::cell::OnceCell::new()).collect();
    // The whole output's best chunk: each claim is supported at least as well as the whole.
    let whole = p.whole.as_deref().and_then(|w| best_chunks(p, sched, w, false).0);
    // What each claim counts for in the case score: its score, but 0 for a claim vetoed (a bare
    // answer whose specific is in no source) and, for a code block, a score on the claim
    // threshold's side its label puts it (code has a threshold of its own).
    let mut counted: Vec<f32> = Vec::with_capacity(p.support_claims.len());
    for s in &p.support_claims {
        if s.form == Some(ClaimForm::Code) {
            // A code block: looked up in the sources line by line, never read by the model, so
            // never `contradicted`; a block without a word checks nothing and is left out.
            let Some(found) = crate::text::code::support(&s.text, &contexts) else { continue };
            let label = if found.score >= cfg.code_threshold { "supported" } else { "unsupported" };
            if label == "unsupported" {
                failures.push(Failure::UnsupportedClaim);
            }
            let evidence = found.evidence.and_then(|(k, r)| {
                let at = |byte: usize| context_chars.get(k).map_or(0, |ix| ix.offset(byte));
                case.contexts.get(k).map(|c| Evidence { context: c.id.clone(), span: [at(r.start), at(r.end)] })
            });
            claims.push(ClaimResult {
                text: s.text.clone(),
                span: [output_chars.offset(s.span.start), output_chars.offset(s.span.end)],
                score: found.score,
                contradiction: 0.0,
                label: label.to_string(),
                evidence,
                from: s.from,
                graded: Some(GradedAs { form: ClaimForm::Code, text: s.hypothesis.clone(), against: None }),
                specifics: vec![],
                verbatim: found.score == 1.0,
                denied: false,
                swapped: None,
            });
            counted.push(match label {
                "supported" => found.score.max(cfg.claim_threshold),
                _ if found.score >= cfg.claim_threshold => 0.0,
                _ => found.score,
            });
            continue;
        }
        let (own, worst, cut) = best_chunks(p, sched, &s.hypothesis, true);
        truncated |= cut;
        let (best, worst) = if let (Some(opposite), Some(ClaimForm::AgainstOpposite)) = (&s.opposite, s.form) {
            // A bare "yes" or "no": supported as far as the sources favour it over the opposite
            // answer, contradicted as far as they favour the opposite (each from its best chunk).
            let (other, _, cut) = best_chunks(p, sched, opposite, true);
            truncated |= cut;
            (favoured(&own, &other), favoured(&other, &own))
        } else if let Some(affirmative) = &s.opposite {
            // A claim negated at an auxiliary: as read, unless its affirmative is entailed more, and
            // then at most 1 less the affirmative's P(entailment); the affirmative's lead is
            // evidence against it.
            let (other, _, cut) = best_chunks(p, sched, affirmative, true);
            truncated |= cut;
            let weighed = weighed_against_affirmative(own.clone(), other.as_ref().map(|o| o.0));
            let capped = weighed.as_ref().map(|w| w.0) != own.as_ref().map(|o| o.0);
            let against = favoured(&other, &own).filter(|a| a.0 > worst.as_ref().map_or(0.0, |w| w.0));
            // Uncapped, it is supported at least as well as the whole output, as any claim.
            let best = match (weighed, whole.clone()) {
                (Some(o), Some(w)) if !capped && w.0 > o.0 => Some(w),
                (o, w) => o.or(w.filter(|_| !capped)),
            };
            (best, against.or(worst))
        } else {
            let best = match (own, whole.clone()) {
                (Some(o), Some(w)) => Some(if w.0 >= o.0 { w } else { o }),
                (o, w) => o.or(w),
            };
            (best, worst)
        };
        // A claim that repeats a sentence of a context word for word is supported by it: as read,
        // or as written (a context in markdown keeps the link a claim read without markup lost).
        let quoted = case.contexts.iter().enumerate().find_map(|(k, c)| {
            let index = p.verbatim.get(k)?;
            let found = verbatim_sentence(&c.text, index, &s.hypothesis);
            let found = found.or_else(|| (s.text != s.hypothesis).then(|| verbatim_sentence(&c.text, index, &s.text)).flatten());
            found.map(|r| (1.0f32, c.id.as_str(), r, k))
        });
        let verbatim = quoted.is_some();
        // A claim that a sentence of a context states word for word but for a negation is
        // contradicted by it, either way round, unless another sentence states it ([`negations`]);
        // not where the claim itself is a sentence of a context.
        let read_against = || case.contexts.iter().enumerate().filter_map(|(k, c)| Some((k, c.id.as_str(), c.text.as_str(), p.verbatim.get(k)?)));
        let denied = (!verbatim)
            .then(|| denied_by(read_against(), &s.hypothesis).or_else(|| (s.text != s.hypothesis).then(|| denied_by(read_against(), &s.text)).flatten()))
            .flatten();
        // A claim a context sentence says with another name in its place is contradicted by it,
        // unless a sentence states it ([`swapped_by`]).
        let swapped = (!verbatim && denied.is_none()).then(|| swapped_by(read_against(), &s.text)).flatten();
        // The sentence that refutes the claim, by a negation or a name: its evidence, score 0.
        let refuted = denied.clone().or_else(|| swapped.as_ref().map(|(id, w, k)| (*id, w.sentence.clone(), *k)));
        let (best, worst) = match refuted.clone() {
            Some((id, r, k)) => (Some((0.0, id, r.clone(), k)), Some((1.0, id, r, k))),
            None => (quoted.or(best), worst),
        };
        let (score, contradiction) = (best.as_ref().map_or(0.0, |b| b.0), worst.as_ref().map_or(0.0, |w| w.0));
        let label = if refuted.is_some() {
            "contradicted"
        } else if score >= cfg.claim_threshold {
            "supported"
        } else if sched.has_contradiction() && contradiction >= cfg.contradiction_threshold {
            "contradicted"
        } else {
            "unsupported"
        };
        let claim_chars = CharIndex::new(&s.text);
        // A bare answer (read with its question, or the whole of a short output) is all name.
        let bare = matches!(s.form, Some(super::results::ClaimForm::WithQuestion)) || (p.support_claims.len() == 1 && crate::text::claim_form::is_bare(&s.text, true));
        let mut found = sources.unsupported_as(&s.text, bare);
        // A figure in no source that a context gives otherwise in the same place ("born on 14
        // March 1880" against "(born 14 March 1879)", "kept for 7 months" against "for 7 years"):
        // the claim is contradicted, whatever the model read (0.72 supported for that date). The
        // strongest such pair over the contexts. A length of time in another unit is in no source
        // either, though the specifics check found its number: it is listed.
        let conflict = conflicts::strongest(&s.text, &found, read.iter().zip(&contexts).map(|(r, c)| r.get_or_init(|| conflicts::Evidence::new(c))));
        if let Some((_, c)) = conflict.as_ref().filter(|(_, c)| !found.iter().any(|f| f.span == c.claim.span)) {
            let at = found.partition_point(|f| f.span.start < c.claim.span.start);
            found.insert(at, c.claim.clone());
        }
        let specifics: Vec<SpecificFound> = found
            .into_iter()
            .map(|f| {
                let stated = conflict.as_ref().filter(|(_, c)| c.claim.span == f.span).and_then(|(k, c)| {
                    let at = |byte: usize| context_chars.get(*k).map_or(0, |ix| ix.offset(byte));
                    Some(Stated { text: c.source.text.clone(), context: case.contexts.get(*k)?.id.clone(), span: [at(c.source.span.start), at(c.source.span.end)] })
                });
                SpecificFound { span: [claim_chars.offset(f.span.start), claim_chars.offset(f.span.end)], text: f.text, kind: f.kind, stated }
            })
            .collect();
        if !specifics.is_empty() {
            failures.push(Failure::UnsupportedSpecific);
        }
        // A bare answer is its specific: "Melbourne" for the capital, in no source, is not
        // supported, whatever P(entailment) the question-and-answer form drew (0.98 for a wrong
        // city). In a sentence a specific only flags the claim, beside the NLI verdict.
        // Only for an answer read with its question: a short output with no question (a chat turn,
        // "Tom Hanks!") may name what its sources leave out (HaluEval dialogue fell 0.828 -> 0.810
        // with the veto there too).
        // A bare output with no question to read it by is vetoed by a number, date, amount or
        // percentage in no source ("In 1928." against a source that says 1926 drew 1.0): a figure
        // is the whole of what such an output says, where a name may be a chat turn's aside.
        // So is a claim the model supports only weakly (below 0.5) whose figure no source holds
        // ("The limit is 100 MB." against "Files up to 10 MB" drew 0.32): on the held-out sets,
        // Factcheck-GPT 0.6973 -> 0.7025, HaluEval QA 0.9633 -> 0.9643, dialogue 0.8158 ->
        // 0.8159; vetoing every claim with such a figure lost dialogue 0.014 (0.8014).
        let answer = matches!(s.form, Some(super::results::ClaimForm::WithQuestion));
        let figure = (bare || score < WEAK_SUPPORT) && specifics.iter().any(|f| f.kind != crate::text::specifics::SpecificKind::Name);
        let label = if (answer && !specifics.is_empty() || figure) && label == "supported" { "unsupported" } else { label };
        let label = if conflict.is_some() { "contradicted" } else { label };
        counted.push(if label != "supported" && score >= cfg.claim_threshold { 0.0 } else { score });
        let evidence = match &conflict {
            // The sentence that denies the claim (its `worst`), before any figure.
            _ if refuted.is_some() => worst.as_ref().map(|f| evidence_of(f, &context_chars)),
            // The sentence of the context that gives the figure otherwise.
            Some((k, c)) => case.contexts.get(*k).map(|ctx| {
                let r = conflicts::sentence_span(&ctx.text, &c.source.span);
                let at = |byte: usize| context_chars.get(*k).map_or(0, |ix| ix.offset(byte));
                Evidence { context: ctx.id.clone(), span: [at(r.start), at(r.end)] }
            }),
            None => if label == "contradicted" { worst } else { best }.as_ref().map(|f| evidence_of(f, &context_chars)),
        };
        match label {
            "contradicted" => failures.push(Failure::ContradictedClaim),
            "unsupported" => failures.push(Failure::UnsupportedClaim),
            _ => {}
        }
        claims.push(ClaimResult {
            text: s.text.clone(),
            span: [output_chars.offset(s.span.start), output_chars.offset(s.span.end)],
            score,
            contradiction,
            label: label.to_string(),
            evidence,
            from: s.from,
            graded: s.form.map(|form| GradedAs { form, text: s.hypothesis.clone(), against: s.opposite.clone() }),
            specifics,
            verbatim,
            denied: denied.is_some(),
            swapped: swapped.and_then(|(id, w, k)| {
                let at = |byte: usize| context_chars.get(k).map_or(0, |ix| ix.offset(byte));
                Some(Swapped {
                    text: s.text.get(w.claim_name.clone())?.to_string(),
                    span: [claim_chars.offset(w.claim_name.start), claim_chars.offset(w.claim_name.end)],
                    stated: Stated { text: case.contexts.get(k)?.text.get(w.source_name.clone())?.to_string(), context: id.to_string(), span: [at(w.source_name.start), at(w.source_name.end)] },
                })
            }),
        });
    }
    if claims.is_empty() {
        return (Outcome::skipped("no claims"), vec![], false);
    }
    let supports = counted;
    let score = aggregate(&supports, cfg.claim_threshold, cfg.aggregation);
    let beyond_claims = p.beyond_claims();
    let whole_unsupported = beyond_claims && output_unsupported(&supports, whole.as_ref().map(|w| w.0), cfg.claim_threshold);
    if whole_unsupported {
        failures.push(Failure::UnsupportedOutput);
    }
    failures.sort();
    failures.dedup();
    let output = whole.as_ref().map(|w| OutputSupport {
        score: w.0,
        label: if w.0 >= cfg.claim_threshold { "supported" } else { "unsupported" }.to_string(),
        evidence: Some(evidence_of(w, &context_chars)),
        beyond_claims,
    });
    let result = SupportResult { score, passed: score >= cfg.pass && !whole_unsupported, claims, output, spans: vec![], about_sources: p.about_sources_read() };
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
    fn a_claim_denied_word_for_word_but_for_a_negation() {
        let context = "International orders cannot be returned for a refund; they can only be exchanged. A lost gift card can be replaced only with the original purchase receipt. Members do not need a receipt. Points never expire. Gift cards aren't sold online.";
        let sentences = crate::text::split_sentences(context);
        let index = verbatim_index(context, &sentences);
        let denied = |claim: &str| negations(context, &index, claim).denied.map(|r| context[r].to_string());
        let first = "International orders cannot be returned for a refund; they can only be exchanged.";
        assert_eq!(denied("International orders can be returned for a refund; they can only be exchanged.").as_deref(), Some(first));
        assert_eq!(denied("International orders can not be returned for a refund; they can only be exchanged."), None, "the same: can not is cannot");
        assert_eq!(denied("International orders can't be returned for a refund; they can only be exchanged."), None);
        assert!(denied("A lost gift card can not be replaced only with the original purchase receipt.").is_some());
        assert!(denied("A lost gift card cannot be replaced only with the original purchase receipt.").is_some());
        assert!(denied("Members need a receipt.").is_some(), "do not need / need");
        assert!(denied("Members don't need a receipt."). is_none());
        assert!(denied("Points expire.").is_none(), "fewer than four words");
        assert!(denied("Gift cards are sold online.").is_some());
        assert!(denied("Gift cards are never sold online.").is_none(), "aren't / never: both negated");
        // Another word changed is no denial; nor a claim the context states.
        assert!(denied("Domestic orders can be returned for a refund; they can only be exchanged.").is_none());
        assert!(denied("A lost gift card can be replaced only with the original purchase receipt.").is_none());
        // A review's cases: a sentence after a "Label:" lead-in is not asserted, a sentence of
        // fewer than two content words denies nothing, and a claim another sentence states is
        // not denied.
        let read = |context: &str, claim: &str| {
            let index = verbatim_index(context, &crate::text::split_sentences(context));
            denied_by(std::iter::once((0, "1", context, &index)), claim).map(|(_, r, _)| context[r].to_string())
        };
        assert_eq!(read("Claim: The Eiffel Tower is in Berlin. Verdict: False.", "The Eiffel Tower is not in Berlin."), None);
        assert_eq!(read("Myth: Vaccines cause autism in children. Fact: Vaccines do not cause autism in children.", "Vaccines don't cause autism in children."), None);
        assert_eq!(read("Plan A: Phone support is included. Plan B: Phone support is not included.", "Phone support isn't included."), None);
        assert_eq!(read("That is not the case.", "That is the case."), None);
        assert_eq!(read("Members do not need a receipt. Members need a receipt.", "Members don't need a receipt."), None, "stated too");
        assert_eq!(read("Members do not need a receipt.", "Members need a receipt.").as_deref(), Some("Members do not need a receipt."));
        // A new user's case: a label that asserts what follows it is read past ("Refund policy:"),
        // one that holds it up to be judged is not ("Myth:", "Claim:", "Rumour:").
        let policy = "Refund policy: refunds are accepted within 30 days of purchase. After 30 days, we offer store credit.";
        assert_eq!(read(policy, "Refunds are not accepted within 30 days of purchase.").as_deref(), Some("Refund policy: refunds are accepted within 30 days of purchase."));
        assert_eq!(read("Rumour: the store will close in May next year.", "The store will not close in May next year."), None);
    }

    #[test]
    fn a_claim_repeats_a_sentence_word_for_word_markdown_aside() {
        let context = "## Libraries\n\nInstall non-Python libraries as [Cluster libraries](https://docs.x.com/libraries/cluster-libraries.html) as needed. Use `%pip` for **notebook-scoped** Python libraries. Note: deletes are only supported for Delta Lake tables.";
        let sentences = crate::text::split_sentences(context);
        let index = verbatim_index(context, &sentences);
        let found = |claim: &str| verbatim_sentence(context, &index, claim).map(|r| &context[r]);
        assert!(found("Install non-Python libraries as Cluster libraries as needed.").is_some_and(|s| s.starts_with("Install")));
        assert!(found("Install non-Python libraries as [Cluster libraries](https://docs.x.com/libraries/cluster-libraries.html) as needed.").is_some());
        assert!(found("Use %pip for notebook-scoped Python libraries.").is_some());
        assert!(found("Deletes are only supported for Delta Lake tables.").is_some(), "after the lead-in");
        // Part of a sentence, or a changed word, is no repeat.
        assert_eq!(found("Install non-Python libraries as Cluster libraries."), None);
        assert_eq!(found("Install Python libraries as Cluster libraries as needed."), None);
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

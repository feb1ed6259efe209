//! Perturbations of source text: labelled claim/evidence pairs made from documents that carry no
//! labels, for training a grader on a team's own documents (`candor train`'s `documents` sets and
//! `--synthesize`) and for checking that a grader catches the errors it should.
//!
//! What the grounding literature found works for small models, each pair from one sentence `S` of a
//! document, read against a window of the sentences around it (the premise):
//!
//! | transform | claim | verdict |
//! |---|---|---|
//! | `copy` | `S` as written | entailment |
//! | `merge` | `S` and the next sentence (MiniCheck: a claim that needs two sentences) | entailment |
//! | `number_swap` | a number, amount or percentage of `S` replaced by another of the document (or shifted) | contradiction |
//! | `date_swap` | a date or year of `S` replaced by another of the document (or shifted) | contradiction |
//! | `name_swap` | a proper name of `S` replaced by another name of the document (FactCC's entity swap) | not entailment |
//! | `negation` | `S` with `not` put after (or taken from) its first auxiliary verb | contradiction |
//! | `pronoun_swap` | a gendered pronoun of `S` swapped (he / she, his / her) | not entailment |
//! | `other_document` | a sentence of another document | not entailment |
//! | `evidence_removed` | `S`, with `S` taken out of the premise (SufficientFacts), kept only where a specific or a rare word of `S` then occurs nowhere in the premise | not entailment |
//!
//! A swapped name or pronoun may make a claim that is false or merely unsupported, so those say only
//! "not entailment"; a changed number, date or negated verb states the opposite of the premise.
//!
//! Every choice comes from a hash of the seed and the document's text, so a document gives the same
//! pairs on every machine and whatever other documents are beside it (except `other_document`,
//! which draws from them). Each chosen sentence gives one entailed pair and one that is not.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::sentences::split_sentences;
use super::specifics::{extract, SpecificKind};
use super::words::content_words;
use crate::stats::Rng;

/// How a synthetic claim was made from its sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// The sentence as written.
    Copy,
    /// The sentence and the one after it.
    Merge,
    /// A number, amount or percentage replaced.
    NumberSwap,
    /// A date or year replaced.
    DateSwap,
    /// A proper name replaced by another of the document.
    NameSwap,
    /// `not` added after the first auxiliary verb, or taken away.
    Negation,
    /// A gendered pronoun swapped.
    PronounSwap,
    /// A sentence of another document.
    OtherDocument,
    /// The sentence itself, taken out of the premise.
    EvidenceRemoved,
}

impl Transform {
    /// Every transform, positives first.
    pub const ALL: [Transform; 9] = [
        Transform::Copy,
        Transform::Merge,
        Transform::NumberSwap,
        Transform::DateSwap,
        Transform::NameSwap,
        Transform::Negation,
        Transform::PronounSwap,
        Transform::OtherDocument,
        Transform::EvidenceRemoved,
    ];

    /// What the premise says of a claim made this way.
    pub fn verdict(self) -> Verdict {
        match self {
            Transform::Copy | Transform::Merge => Verdict::Entailment,
            Transform::NumberSwap | Transform::DateSwap | Transform::Negation => Verdict::Contradiction,
            Transform::NameSwap | Transform::PronounSwap | Transform::OtherDocument | Transform::EvidenceRemoved => Verdict::NotEntailment,
        }
    }

    /// The snake_case name (as in recipes and reports).
    pub fn name(self) -> &'static str {
        match self {
            Transform::Copy => "copy",
            Transform::Merge => "merge",
            Transform::NumberSwap => "number_swap",
            Transform::DateSwap => "date_swap",
            Transform::NameSwap => "name_swap",
            Transform::Negation => "negation",
            Transform::PronounSwap => "pronoun_swap",
            Transform::OtherDocument => "other_document",
            Transform::EvidenceRemoved => "evidence_removed",
        }
    }
}

/// What the premise says of a synthetic claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The premise entails the claim.
    Entailment,
    /// The premise states the opposite.
    Contradiction,
    /// The premise does not entail the claim (it may contradict it or say nothing of it).
    NotEntailment,
}

/// One synthetic pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Synthetic {
    /// The window of the document the claim is read against.
    pub premise: String,
    /// The claim.
    pub claim: String,
    /// What the premise says of it.
    pub verdict: Verdict,
    /// How it was made.
    pub transform: Transform,
    /// Index of its document in the input.
    pub document: usize,
}

/// How many pairs, and how long a premise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Sentences of each document made into pairs (each gives two pairs).
    pub sentences_per_document: usize,
    /// Most words in a premise (the window grows around the sentence up to this).
    pub max_premise_words: usize,
    /// Seed of every choice.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self { sentences_per_document: 4, max_premise_words: 150, seed: 17 }
    }
}

/// The generator of every choice (candor's seedable SplitMix64), seeded from a hash of the seed, a
/// salt and a text.
fn seeded(seed: u64, text: &str, salt: &str) -> Rng {
    let h = Sha256::new().chain_update(seed.to_be_bytes()).chain_update(salt.as_bytes()).chain_update(text.as_bytes()).finalize();
    Rng::new(u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]))
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// A sentence worth making a claim of: 6 to 40 words, ending as a statement, not a heading.
fn claimable(s: &str) -> bool {
    let n = words(s);
    (6..=40).contains(&n) && s.ends_with('.') && s.chars().next().is_some_and(|c| c.is_uppercase() || c.is_ascii_digit()) && !s.contains('\n')
}

/// Makes pairs from `documents` (see the module's table). Documents too short to give a claimable
/// sentence give nothing.
pub fn synthesize(documents: &[&str], opts: &Options) -> Vec<Synthetic> {
    let split: Vec<Vec<Range<usize>>> = documents.iter().map(|d| split_sentences(d)).collect();
    let mut out = vec![];
    for (di, doc) in documents.iter().enumerate() {
        let sents: Vec<&str> = split[di].iter().map(|r| &doc[r.clone()]).collect();
        let mut candidates: Vec<usize> = (0..sents.len()).filter(|&j| claimable(sents[j])).collect();
        let mut rng = seeded(opts.seed, doc, "sentences");
        // A stable shuffle, then the first few.
        for k in (1..candidates.len()).rev() {
            let j = rng.below(k + 1);
            candidates.swap(k, j);
        }
        candidates.truncate(opts.sentences_per_document);
        candidates.sort_unstable();
        let doc_specifics = extract(doc);
        for &j in &candidates {
            let premise = window(&sents, j, opts.max_premise_words);
            // Salted by the document, not its position: a document gives the same pairs wherever it
            // sits among the others.
            let mut rng = seeded(opts.seed, sents[j], doc);
            // The entailed pair.
            // The window around the sentence and the next, where both are claimable and fit.
            let pair = (j + 1 < sents.len() && claimable(sents[j + 1]))
                .then(|| window_range(&sents, j, j + 1, opts.max_premise_words))
                .flatten();
            let (claim, transform, entailed_premise) = match pair {
                Some(r) if rng.below(3) == 0 => (format!("{} {}", sents[j], sents[j + 1]), Transform::Merge, sents[r].join(" ")),
                _ => (sents[j].to_string(), Transform::Copy, premise.clone()),
            };
            out.push(Synthetic { premise: entailed_premise, claim, verdict: Verdict::Entailment, transform, document: di });
            // The pair that is not: one of the negative transforms that apply, chosen at random.
            let mut negatives: Vec<(Transform, String, String)> = vec![];
            let s = sents[j];
            if let Some(c) = swap_specific(s, &doc_specifics, &[SpecificKind::Number, SpecificKind::Amount, SpecificKind::Percent], &mut rng) {
                negatives.push((Transform::NumberSwap, c, premise.clone()));
            }
            if let Some(c) = swap_specific(s, &doc_specifics, &[SpecificKind::Date], &mut rng) {
                negatives.push((Transform::DateSwap, c, premise.clone()));
            }
            if let Some(c) = swap_name(s, &doc_specifics, doc, &mut rng) {
                negatives.push((Transform::NameSwap, c, premise.clone()));
            }
            if let Some(c) = negate(s) {
                negatives.push((Transform::Negation, c, premise.clone()));
            }
            if let Some(c) = swap_pronoun(s) {
                negatives.push((Transform::PronounSwap, c, premise.clone()));
            }
            let without = window_without(&sents, j, opts.max_premise_words);
            if !without.is_empty() && needs_its_sentence(s, &without) {
                negatives.push((Transform::EvidenceRemoved, s.to_string(), without));
            }
            // A sentence of another document, drawn with a generator of its own, so that the local
            // choices above do not depend on which other documents there are.
            let other = (documents.len() > 1)
                .then(|| {
                    let mut orng = seeded(opts.seed, sents[j], "other");
                    let o = (di + 1 + orng.below(documents.len() - 1)) % documents.len();
                    let theirs: Vec<&str> = split[o].iter().map(|r| &documents[o][r.clone()]).filter(|s| claimable(s)).collect();
                    (!theirs.is_empty()).then(|| theirs[orng.below(theirs.len())].to_string())
                })
                .flatten()
                .filter(|c| !premise.contains(c.as_str()));
            // One slot more than the local negatives, for another document's sentence; where there is
            // none, that slot falls back to a local negative, drawn from the same number.
            let pick = rng.next_u64();
            let slots = negatives.len() as u64 + 1;
            let (transform, claim, premise) = match (pick % slots == negatives.len() as u64, other) {
                (true, Some(c)) => (Transform::OtherDocument, c, premise.clone()),
                _ if negatives.is_empty() => continue,
                (true, None) => negatives.swap_remove(((pick / slots) % negatives.len() as u64) as usize),
                (false, _) => negatives.swap_remove((pick % slots) as usize),
            };
            out.push(Synthetic { premise, claim, verdict: transform.verdict(), transform, document: di });
        }
    }
    out
}

/// Sentences around `j` (it included), growing outwards one at a time while they fit `max_words`.
fn window(sents: &[&str], j: usize, max_words: usize) -> String {
    window_range(sents, j, j, max_words).map(|r| sents[r].join(" ")).unwrap_or_default()
}

/// The widest run of sentences holding `a..=b` within `max_words`, grown alternately after and before.
fn window_range(sents: &[&str], a: usize, b: usize, max_words: usize) -> Option<Range<usize>> {
    let mut n: usize = sents[a..=b].iter().map(|s| words(s)).sum();
    if n > max_words {
        return None;
    }
    let (mut lo, mut hi) = (a, b + 1);
    let mut after = true;
    loop {
        let grown = if after && hi < sents.len() && n + words(sents[hi]) <= max_words {
            n += words(sents[hi]);
            hi += 1;
            true
        } else if lo > 0 && n + words(sents[lo - 1]) <= max_words {
            n += words(sents[lo - 1]);
            lo -= 1;
            true
        } else if hi < sents.len() && n + words(sents[hi]) <= max_words {
            n += words(sents[hi]);
            hi += 1;
            true
        } else {
            false
        };
        if !grown {
            return Some(lo..hi);
        }
        after = !after;
    }
}

/// The window around `j` with sentence `j` itself taken out.
fn window_without(sents: &[&str], j: usize, max_words: usize) -> String {
    let Some(r) = window_range(sents, j, j, max_words) else { return String::new() };
    r.filter(|&k| k != j).map(|k| sents[k]).collect::<Vec<_>>().join(" ")
}

/// Whether `premise` lacks something `claim` states: a specific of it, or at least a third of its
/// content words.
fn needs_its_sentence(claim: &str, premise: &str) -> bool {
    if !super::specifics::unsupported_specifics(claim, &[premise]).is_empty() {
        return true;
    }
    let have: std::collections::HashSet<String> = content_words(premise).into_iter().collect();
    let mine = content_words(claim);
    let missing = mine.iter().filter(|w| !have.contains(*w)).count();
    !mine.is_empty() && missing * 3 >= mine.len()
}

/// A wrong answer made from a right bare `answer` to a question about `evidence`, to teach a grader
/// to read an answer with its question: the opposite of a "yes" or "no"; else the answer with its
/// first specific replaced by another of the same kind (a name, number, date, amount, percentage)
/// that `evidence` holds and the answer does not, drawn by `seed` ("Canberra" → "Sydney" where the
/// evidence names both). `None` when the answer holds no specific or the evidence no other of its
/// kind. (A wrong answer the evidence names is the one a model that reads only the evidence passes.)
pub fn swap_answer(answer: &str, evidence: &str, seed: u64) -> Option<String> {
    use super::claim_form::{opposite_answer, polar_answer};
    if let Some(yes) = polar_answer(answer) {
        return Some(opposite_answer(yes).1.to_string());
    }
    let target = super::specifics::extract_answer(answer).into_iter().next()?;
    let folded = |t: &str| t.to_lowercase();
    let (mine, whole) = (folded(&target.text), folded(answer));
    let mut others: Vec<String> = extract(evidence)
        .into_iter()
        .filter(|x| {
            let t = folded(&x.text);
            let inside = x.kind != SpecificKind::Name || inside_sentence(evidence, x);
            x.kind == target.kind && inside && !t.contains(&mine) && !mine.contains(&t) && !whole.contains(&t)
        })
        .map(|x| x.text)
        .collect();
    others.sort();
    others.dedup();
    if others.is_empty() {
        return None;
    }
    let pick = &others[Rng::new(seed).below(others.len())];
    Some(format!("{}{}{}", &answer[..target.span.start], pick, &answer[target.span.end..]))
}

/// `s` with one specific of the given kinds replaced: by another of the same kind from the document
/// that `s` does not contain, else by a shifted value (a number plus or minus a little, a year moved).
fn swap_specific(s: &str, doc_specifics: &[super::specifics::Specific], kinds: &[SpecificKind], rng: &mut Rng) -> Option<String> {
    let mine: Vec<_> = extract(s).into_iter().filter(|x| kinds.contains(&x.kind)).collect();
    if mine.is_empty() {
        return None;
    }
    let target = &mine[rng.below(mine.len())];
    let others: Vec<&str> = doc_specifics
        .iter()
        .filter(|x| x.kind == target.kind && !s.contains(x.text.as_str()))
        .map(|x| x.text.as_str())
        .collect();
    let replacement = if !others.is_empty() { others[rng.below(others.len())].to_string() } else { shifted(&target.text, rng)? };
    if replacement == target.text {
        return None;
    }
    let out = format!("{}{}{}", &s[..target.span.start], replacement, &s[target.span.end..]);
    // The swap must leave the claim unsupported by the premise's specifics: a value that the
    // sentence states twice ("30 days ... 30 days") is not swapped.
    (!extract(&out).iter().all(|x| s.contains(x.text.as_str()))).then_some(out)
}

/// The first run of digits in `text` moved: a year by 1 to 9, another number by 10-90%.
fn shifted(text: &str, rng: &mut Rng) -> Option<String> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let end = text[start..].find(|c: char| !c.is_ascii_digit()).map_or(text.len(), |e| start + e);
    let digits = &text[start..end];
    // u128: a 20-digit number shifted by 90% still fits.
    let n: u128 = digits.parse().ok()?;
    let m = if digits.len() == 4 && (1000..=2100).contains(&n) {
        let d = 1 + rng.below(9) as u128;
        if rng.below(2) == 0 { n + d } else { n - d }
    } else if n < 10 {
        n + 1 + rng.below(8) as u128
    } else {
        let pct = 10 + rng.below(81) as u128;
        let d = (n * pct / 100).max(1);
        if rng.below(2) == 0 { n + d } else { n - d }
    };
    (m != n).then(|| format!("{}{m}{}", &text[..start], &text[end..]))
}

/// Whether a specific of `doc` stands inside a sentence, after a word or a comma: a capitalised
/// first word of a sentence may be no name at all.
fn inside_sentence(doc: &str, x: &super::specifics::Specific) -> bool {
    x.span.start > 0 && doc[..x.span.start].trim_end().chars().last().is_some_and(|c| c.is_alphanumeric() || c == ',')
}

/// `s` with one proper name replaced by another name of the document (not in `s`, not part of it).
fn swap_name(s: &str, doc_specifics: &[super::specifics::Specific], doc: &str, rng: &mut Rng) -> Option<String> {
    let mine: Vec<_> = extract(s).into_iter().filter(|x| x.kind == SpecificKind::Name).collect();
    if mine.is_empty() {
        return None;
    }
    let target = &mine[rng.below(mine.len())];
    let others: Vec<&str> = doc_specifics
        .iter()
        .filter(|x| {
            x.kind == SpecificKind::Name
                && inside_sentence(doc, x)
                && !s.contains(x.text.as_str())
                && !x.text.contains(target.text.as_str())
                && !target.text.contains(x.text.as_str())
        })
        .map(|x| x.text.as_str())
        .collect();
    if others.is_empty() {
        return None;
    }
    let with = others[rng.below(others.len())];
    Some(format!("{}{}{}", &s[..target.span.start], with, &s[target.span.end..]))
}

/// Auxiliaries whose negation states the opposite. Modals of possibility ("may", "might", "could")
/// are left out: "it may rain" and "it may not rain" can both be true.
const AUXILIARIES: &[&str] = &["is", "are", "was", "were", "has", "have", "had", "can", "will", "would", "should", "must", "does", "did", "do"];

/// `s` negated at its first auxiliary verb: "was" becomes "was not", "was not" becomes "was",
/// "wasn't" becomes "was"; None when it has none.
pub(crate) fn negate(s: &str) -> Option<String> {
    negation(s).map(|n| n.text)
}

/// What [`negation`] did to a text.
pub(crate) struct Negation {
    /// The text negated (or with its "not" taken off).
    pub text: String,
    /// Byte offset in the original of the auxiliary verb negated ("was", "wasn't").
    pub auxiliary: usize,
    /// Byte range in the original of the word that negated it ("not", "wasn't"), where one was
    /// taken off; `None` where a "not" was added.
    pub removed: Option<Range<usize>>,
}

/// [`negate`], saying where: the auxiliary, and the negating word it took off, if any.
pub(crate) fn negation(s: &str) -> Option<Negation> {
    negation_with(s, true)
}

/// [`negation`] reading "cannot" as any other word: the first "not" or "n't" at an auxiliary
/// ("They cannot swim and are not fast." takes off "are not").
pub(crate) fn negation_past_cannot(s: &str) -> Option<Negation> {
    negation_with(s, false)
}

fn negation_with(s: &str, cannot: bool) -> Option<Negation> {
    let tokens: Vec<(usize, &str)> = s.split(' ').scan(0usize, |at, w| {
        let start = *at;
        *at += w.len() + 1;
        Some((start, w))
    }).collect();
    for (k, &(start, w)) in tokens.iter().enumerate().skip(1) {
        let lower = w.to_lowercase();
        // "cannot" is "can" negated.
        if cannot && lower == "cannot" {
            let text = format!("{}{}{}", &s[..start], &w[..3], &s[start + w.len()..]);
            return Some(Negation { text, auxiliary: start, removed: Some(start..start + w.len()) });
        }
        if let Some(base) = lower.strip_suffix("n't") {
            let base = match base {
                "wo" => "will",
                "ca" => "can",
                b => b,
            };
            if AUXILIARIES.contains(&base) {
                let text = format!("{}{}{}", &s[..start], base, &s[start + w.len()..]);
                return Some(Negation { text, auxiliary: start, removed: Some(start..start + w.len()) });
            }
        }
        if AUXILIARIES.contains(&lower.as_str()) {
            if let Some(&(next_start, next)) = tokens.get(k + 1) {
                if next.eq_ignore_ascii_case("not") {
                    let text = format!("{}{}", &s[..next_start - 1], &s[next_start + next.len()..]);
                    return Some(Negation { text, auxiliary: start, removed: Some(next_start..next_start + next.len()) });
                }
                if next.eq_ignore_ascii_case("never") || next.eq_ignore_ascii_case("no") {
                    return None;
                }
            }
            let text = format!("{} not{}", &s[..start + w.len()], &s[start + w.len()..]);
            return Some(Negation { text, auxiliary: start, removed: None });
        }
    }
    None
}

/// `s` without its first "never" ("Refunds are never issued after 30 days." -> "Refunds are issued
/// after 30 days."): the affirmative of a claim negated without an auxiliary's "not". The word
/// before it stands for the auxiliary in [`Negation`] (`auxiliary` is where "never" starts);
/// `removed` is the word. `None` where `s` has no "never".
pub(crate) fn without_never(s: &str) -> Option<Negation> {
    let mut at = 0;
    for w in s.split(|c: char| !c.is_alphanumeric()) {
        let start = at;
        at += w.len() + s[start + w.len()..].chars().next().map_or(0, char::len_utf8);
        if !w.eq_ignore_ascii_case("never") {
            continue;
        }
        let end = start + w.len();
        // The word and the space after it (or before it, at the end).
        let cut = if s[end..].starts_with(' ') { start..end + 1 } else if s[..start].ends_with(' ') { start - 1..end } else { start..end };
        let text = format!("{}{}", &s[..cut.start], &s[cut.end..]);
        return Some(Negation { text, auxiliary: start, removed: Some(start..end) });
    }
    None
}

/// `s` with its first gendered pronoun swapped (he / she, him / her, his / her, himself / herself).
fn swap_pronoun(s: &str) -> Option<String> {
    let mut at = 0;
    for w in s.split(|c: char| !c.is_alphabetic()) {
        let start = s[at..].find(w).map(|i| at + i)?;
        at = start + w.len();
        if w.is_empty() {
            continue;
        }
        let swapped = match w {
            "he" => "she",
            "she" => "he",
            "He" => "She",
            "She" => "He",
            "him" => "her",
            "his" => "her",
            "His" => "Her",
            "her" => "his",
            "Her" => "His",
            "himself" => "herself",
            "herself" => "himself",
            _ => continue,
        };
        return Some(format!("{}{}{}", &s[..start], swapped, &s[start + w.len()..]));
    }
    None
}

/// An edit of a claim for a grader self-test (CheckList's directional and invariance tests, Ribeiro
/// et al. 2020): the first five must turn a supported claim into one its sources do not support;
/// the next four must leave its verdict as it was; `Unedited` is the control (the claim alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Edit {
    /// A number, amount or percentage moved to a value no source states.
    NumberChanged,
    /// A date or year moved to one no source states.
    DateChanged,
    /// `not` added after the first auxiliary verb, or taken away.
    Negated,
    /// A proper name replaced by another name of the same sources.
    EntitySwapped,
    /// A unit replaced by another of its kind (days / weeks, km / miles, ...).
    UnitChanged,
    /// The claim in lower case.
    Casing,
    /// Spaces doubled and a line break added.
    Whitespace,
    /// A citation marker `[1]` added before the final stop.
    CitationMarker,
    /// The claim behind "According to the sources, ".
    Paraphrase,
    /// No edit: the claim alone, the control a probe's other edits are measured against.
    Unedited,
}

impl Edit {
    /// Every edit, those that must flip the verdict first (not the control).
    pub const ALL: [Edit; 9] = [
        Edit::NumberChanged,
        Edit::DateChanged,
        Edit::Negated,
        Edit::EntitySwapped,
        Edit::UnitChanged,
        Edit::Casing,
        Edit::Whitespace,
        Edit::CitationMarker,
        Edit::Paraphrase,
    ];

    /// Its snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Edit::NumberChanged => "number_changed",
            Edit::DateChanged => "date_changed",
            Edit::Negated => "negated",
            Edit::EntitySwapped => "entity_swapped",
            Edit::UnitChanged => "unit_changed",
            Edit::Casing => "casing",
            Edit::Whitespace => "whitespace",
            Edit::CitationMarker => "citation_marker",
            Edit::Paraphrase => "paraphrase",
            Edit::Unedited => "unedited",
        }
    }

    /// Whether the edit must change a supported claim's verdict (else it must keep it).
    pub fn must_flip(self) -> bool {
        matches!(self, Edit::NumberChanged | Edit::DateChanged | Edit::Negated | Edit::EntitySwapped | Edit::UnitChanged)
    }
}

/// Units and the one each is swapped for.
const UNITS: &[(&str, &str)] = &[
    ("days", "weeks"),
    ("day", "week"),
    ("weeks", "months"),
    ("week", "month"),
    ("months", "years"),
    ("month", "year"),
    ("years", "months"),
    ("year", "month"),
    ("hours", "minutes"),
    ("hour", "minute"),
    ("minutes", "seconds"),
    ("minute", "second"),
    ("seconds", "minutes"),
    ("km", "miles"),
    ("kilometres", "miles"),
    ("kilometers", "miles"),
    ("miles", "kilometres"),
    ("kg", "pounds"),
    ("kilograms", "pounds"),
    ("pounds", "kilograms"),
    ("metres", "feet"),
    ("meters", "feet"),
    ("feet", "metres"),
    ("percent", "percentage points"),
    ("GB", "MB"),
    ("MB", "GB"),
];

/// `s` with the first unit after a number swapped for another of its kind ("30 days" → "30 weeks"),
/// and the new quantity ("30 weeks").
fn swap_unit(s: &str) -> Option<(String, String)> {
    let words: Vec<(usize, &str)> = s.split(' ').scan(0usize, |at, w| {
        let start = *at;
        *at += w.len() + 1;
        Some((start, w))
    }).collect();
    for pair in words.windows(2) {
        let ((_, number), (start, w)) = (pair[0], pair[1]);
        if !number.chars().any(|c| c.is_ascii_digit()) {
            continue;
        }
        let bare = w.trim_end_matches(|c: char| !c.is_alphanumeric());
        if let Some((_, to)) = UNITS.iter().find(|(from, _)| *from == bare) {
            return Some((format!("{}{}{}", &s[..start], to, &s[start + bare.len()..]), format!("{number} {to}")));
        }
    }
    None
}

/// Lower-cases a claim's first letter where its first word is a common one ("The", "It"), so that a
/// template can go before it; a name keeps its capital.
fn lowered_start(claim: &str) -> String {
    const COMMON: &[&str] = &["The", "A", "An", "It", "They", "This", "That", "These", "Those", "There", "Yes", "No", "You", "We", "Our", "Your", "Its", "Their", "In", "On", "At", "For", "All", "Each", "Every"];
    let first = claim.split_whitespace().next().unwrap_or("").trim_end_matches(|c: char| !c.is_alphanumeric());
    if COMMON.contains(&first) {
        let mut c = claim.chars();
        c.next().map(|f| f.to_lowercase().collect::<String>() + c.as_str()).unwrap_or_default()
    } else {
        claim.to_string()
    }
}

/// `claim` edited by `edit`, read against `sources` (the case's contexts joined): `None` where the
/// edit does not apply (no number, no auxiliary verb, no other name in the sources) or where a
/// must-flip edit would not leave something the sources do not state. Deterministic for a seed.
pub fn edit(claim: &str, sources: &str, edit: Edit, seed: u64) -> Option<String> {
    let claim = claim.trim();
    let mut rng = seeded(seed, claim, edit.name());
    let sources_lack = |out: &str| !super::specifics::unsupported_specifics(out, &[sources]).is_empty();
    let out = match edit {
        // A shifted value (no other of the sources'), kept only where no source states it.
        Edit::NumberChanged => (0..4)
            .filter_map(|_| swap_specific(claim, &[], &[SpecificKind::Number, SpecificKind::Amount, SpecificKind::Percent], &mut rng))
            .find(|o| sources_lack(o))?,
        Edit::DateChanged => (0..4).filter_map(|_| swap_specific(claim, &[], &[SpecificKind::Date], &mut rng)).find(|o| sources_lack(o))?,
        // "can only be" negated is "can not only be", which does not state the opposite: left out.
        Edit::Negated => negate(claim).filter(|o| !["not only", "not also", "not just", "not even"].iter().any(|w| o.contains(w)))?,
        Edit::EntitySwapped => swap_name(claim, &extract(sources), sources, &mut rng)?,
        Edit::UnitChanged => swap_unit(claim).filter(|(_, quantity)| !sources.contains(quantity.as_str()))?.0,
        Edit::Casing => claim.to_lowercase(),
        Edit::Whitespace => format!("{}\n", claim.split(' ').collect::<Vec<_>>().join("  ")),
        Edit::CitationMarker => match claim.strip_suffix('.') {
            Some(body) => format!("{body} [1]."),
            None => format!("{claim} [1]"),
        },
        Edit::Paraphrase => format!("According to the sources, {}", lowered_start(claim)),
        Edit::Unedited => return Some(claim.to_string()),
    };
    (out != claim).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "The council approved the budget on Monday. Mayor Alice Brown said the city would hire 40 new teachers in 2025. \
        She added that the plan was funded by a $12 million grant from the state. Critics in Springfield said the grant was too small. \
        The vote was 7 to 2, with John Smith and Mary Jones voting against it. The schools will open their new wing in September.";
    const OTHER: &str = "The river flooded three villages after a week of heavy rain. Rescue teams reached the last of them on Friday morning.";

    #[test]
    fn transforms_change_what_they_say() {
        let mut rng = Rng::new(1);
        let s = "Mayor Alice Brown said the city would hire 40 new teachers in 2025.";
        let specifics = extract(DOC);
        let n = swap_specific(s, &specifics, &[SpecificKind::Number, SpecificKind::Amount, SpecificKind::Percent], &mut rng).unwrap();
        assert_ne!(n, s);
        assert!(!n.contains(" 40 "), "{n}");
        assert!(n.contains("2025"), "the date is not a number to swap: {n}");
        let d = swap_specific(s, &specifics, &[SpecificKind::Date], &mut rng).unwrap();
        assert!(!d.contains("2025") && d.contains("40"), "{d}");
        let name = swap_name(s, &specifics, DOC, &mut rng).unwrap();
        assert!(!name.contains("Alice Brown") || !name.contains("Mayor"), "{name}");
        assert_ne!(name, s);
        assert_eq!(negate(s).unwrap(), "Mayor Alice Brown said the city would not hire 40 new teachers in 2025.");
        assert_eq!(negate("The plan was not funded.").unwrap(), "The plan was funded.");
        assert_eq!(negate("The plan wasn't funded.").unwrap(), "The plan was funded.");
        assert_eq!(negate("They cannot be exchanged for cash.").unwrap(), "They can be exchanged for cash.");
        assert_eq!(negate("Cards Cannot be exchanged.").unwrap(), "Cards Can be exchanged.");
        assert_eq!(negate("Nothing here changes."), None);
        assert_eq!(swap_pronoun("She added that the plan was his.").unwrap(), "He added that the plan was his.");
        assert_eq!(swap_pronoun("The shed is red."), None, "no pronoun inside another word");
        assert_eq!(shifted("1879", &mut Rng::new(3)).map(|y| y.len()), Some(4));
        assert!(shifted("no digits", &mut rng).is_none());
        assert!(shifted("99999999999999999999", &mut Rng::new(4)).is_some(), "a 20-digit number does not overflow");
        assert_eq!(negate("It may rain on Monday."), None, "a modal of possibility is not negated");
    }

    #[test]
    fn wrong_answers_come_from_the_evidence() {
        let evidence = "The largest city of Australia is Sydney, but Canberra has been its capital since 1913.";
        // A name of the evidence other than the answer (a sentence's first word is not taken).
        for seed in 0..8 {
            let wrong = swap_answer("Canberra", evidence, seed).unwrap();
            assert!(wrong == "Sydney" || wrong == "Australia", "{wrong}");
        }
        assert_eq!(swap_answer("Canberra", "Sydney is big. Canberra is the capital.", 7), None, "a sentence's first word is no name to swap in");
        assert_eq!(swap_answer("Yes", evidence, 7).as_deref(), Some("no"));
        assert_eq!(swap_answer("no, it isn't", evidence, 7).as_deref(), Some("yes"));
        let dates = "The bridge opened in 1932 and was widened in 1988.";
        assert_eq!(swap_answer("in 1932", dates, 1).as_deref(), Some("in 1988"));
        assert_eq!(swap_answer("Canberra", "Canberra is the capital.", 7), None, "no other name to swap in");
        assert_eq!(swap_answer("blue", evidence, 7), None, "no specific in the answer");
        // The same seed, the same answer.
        let many = "Alice met Bob, Carol, Dan and Erin in Paris.";
        assert_eq!(swap_answer("Bob", many, 11), swap_answer("Bob", many, 11));
    }

    #[test]
    fn pairs_are_balanced_windowed_and_the_same_every_time() {
        let opts = Options { sentences_per_document: 3, max_premise_words: 40, seed: 5 };
        let pairs = synthesize(&[DOC, OTHER], &opts);
        assert_eq!(pairs, synthesize(&[DOC, OTHER], &opts), "not deterministic");
        let pos = pairs.iter().filter(|p| p.verdict == Verdict::Entailment).count();
        assert!(pos >= 3 && pairs.len() - pos >= 3, "{pairs:#?}");
        for p in &pairs {
            assert!(words(&p.premise) <= 40, "{p:?}");
            match p.transform {
                Transform::Copy => assert!(p.premise.contains(&p.claim), "{p:?}"),
                Transform::Merge => assert!(p.premise.contains(&p.claim), "{p:?}"),
                Transform::EvidenceRemoved => assert!(!p.premise.contains(&p.claim), "{p:?}"),
                Transform::OtherDocument => assert!(!DOC.contains(&p.claim) || !OTHER.contains(&p.claim)),
                _ => assert!(!p.premise.contains(&p.claim), "a negative that the premise states word for word: {p:?}"),
            }
            assert_eq!(p.verdict, p.transform.verdict());
        }
        // A document's pairs do not depend on its place among the others, and its entailed pairs
        // not on the others at all (its other pair may be another document's sentence).
        let mine = |ps: Vec<Synthetic>, at: usize, only_entailed: bool| -> Vec<(String, String, Transform)> {
            ps.into_iter()
                .filter(|p| p.document == at && (!only_entailed || p.verdict == Verdict::Entailment))
                .map(|p| (p.premise, if p.transform == Transform::OtherDocument { String::new() } else { p.claim }, p.transform))
                .collect()
        };
        assert_eq!(mine(pairs.clone(), 0, false), mine(synthesize(&[OTHER, DOC], &opts), 1, false), "its place changed its pairs");
        let alone = mine(synthesize(&[DOC], &opts), 0, true);
        assert!(!alone.is_empty());
        assert_eq!(alone, mine(pairs.clone(), 0, true));
        // Another seed chooses differently.
        assert_ne!(pairs, synthesize(&[DOC, OTHER], &Options { seed: 6, ..opts }));
    }

    #[test]
    fn nothing_comes_of_text_without_claimable_sentences() {
        assert!(synthesize(&["", "Hi.", "# Heading\n- a list item"], &Options::default()).is_empty());
        // Non-ASCII text is cut on character boundaries.
        let doc = "Der Stadtrat beschloss am Montag den Haushalt für 2025. Bürgermeisterin Jülide Özdemir sagte, die Stadt werde 40 Lehrkräfte einstellen.";
        for p in synthesize(&[doc], &Options { sentences_per_document: 5, ..Options::default() }) {
            assert!(!p.claim.is_empty());
        }
    }

    #[test]
    fn probe_edits_change_what_they_must_and_keep_what_they_must() {
        let src = "Refunds are accepted within 30 days of delivery. Maria Lopez opened the store in 2015 in Lyon. The shop in Paris is run by Paul Martin.";
        let e = |claim: &str, x: Edit| edit(claim, src, x, 7);
        let n = e("Refunds are accepted within 30 days of delivery.", Edit::NumberChanged).unwrap();
        assert!(!n.contains("30 days") && n.contains(" days of delivery."), "{n}");
        let d = e("Maria Lopez opened the store in 2015.", Edit::DateChanged).unwrap();
        assert!(!d.contains("2015") && d.starts_with("Maria Lopez opened the store in "), "{d}");
        assert_eq!(e("Refunds are accepted within 30 days.", Edit::Negated).unwrap(), "Refunds are not accepted within 30 days.");
        assert_eq!(e("A lost card can only be replaced with a receipt.", Edit::Negated), None, "'can not only' is no opposite");
        assert_eq!(e("Refunds are accepted within 30 days.", Edit::UnitChanged).unwrap(), "Refunds are accepted within 30 weeks.");
        let s = e("The store in Lyon was opened by Maria Lopez.", Edit::EntitySwapped).unwrap();
        assert!(s.contains("Paris") || s.contains("Paul Martin"), "{s}");
        assert_eq!(e("The store opened.", Edit::Paraphrase).unwrap(), "According to the sources, the store opened.");
        assert_eq!(e("Maria opened it.", Edit::Paraphrase).unwrap(), "According to the sources, Maria opened it.");
        assert_eq!(e("Refunds take 30 days.", Edit::CitationMarker).unwrap(), "Refunds take 30 days [1].");
        assert_eq!(e("Refunds take 30 days.", Edit::Casing).unwrap(), "refunds take 30 days.");
        assert_eq!(e("Refunds take 30 days.", Edit::Whitespace).unwrap(), "Refunds  take  30  days.\n");
        // Edits that do not apply give nothing.
        assert_eq!(e("Refunds are quick.", Edit::NumberChanged), None);
        assert_eq!(e("refunds take 30 days.", Edit::Casing), None, "already lower case");
        assert_eq!(edit("Refunds take 30 days.", "Refunds take 30 days or 30 weeks.", Edit::UnitChanged, 7), None, "the sources state the swapped unit");
        // Deterministic, and the lists agree.
        assert_eq!(e("Refunds are accepted within 30 days of delivery.", Edit::NumberChanged), Some(n));
        assert_eq!(Edit::ALL.iter().filter(|x| x.must_flip()).count(), 5);
    }
}

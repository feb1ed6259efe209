//! Figures a claim states otherwise than its evidence: "born on 14 March 1880" read against
//! "(born 14 March 1879)", "stored in bay two" against "stored in bay four".
//!
//! An NLI model reads a sentence with one figure changed as close to its source (the default model
//! supported "Einstein was born on 14 March 1880." at 0.72 against a passage giving 1879), and the
//! specifics check ([`super::specifics`]) only says the figure is in no source. A figure in no source
//! whose evidence gives another figure of the same kind in the same place is a contradiction a
//! reader sees at once: this module finds those pairs, and the support grader labels such a claim
//! `contradicted`.
//!
//! **Approach.** For each number, amount, percentage or date of a claim that no source holds, the
//! evidence chunk's figures of the same kind that the claim does not hold are candidates. A
//! candidate stands in the same place when the two figures share an anchor: the nearest content
//! word before or after each figure within its sentence (lower-case words of three
//! letters or more that are not function words, months or weekdays: "born", "bay", "deposit",
//! "employees"), or, for a number, the unit written after it ("60 days" and "30 days"), and their
//! units do not differ ("six months" is not in the place of "90 days"). Names do
//! not anchor ("Einstein" sits beside every figure of his life), nor do other figures. Anchors
//! compare without a plural "s". Names are never in conflict: a name in no source is only flagged.
//!
//! A time of day takes its "a.m." or "p.m." as its unit. A length of time ("7 months", "six
//! weeks") counts in days: in another unit, it stands in the place of a length that differs and
//! shares a word beside it ("kept for 7 months" against "kept for 7 years", which the specifics
//! check, matching numbers by value, does not flag), and a length any evidence gives in any unit
//! ("2 weeks" against "14 days", "24 hours" against "one day") is in conflict with nothing.
//!
//! The evidence figure's sentence must also hold two in five of the claim's content words (figures
//! aside): a summary's "bottom of the table with 22 points" is not in the place of an article's
//! "cut the gap to safety to four points".
//!
//! It prefers missing a conflict to inventing one: a figure the evidence does not place beside the
//! same word is left to the NLI verdict and the `unsupported_specific` flag.

use std::collections::HashSet;
use std::rc::Rc;
use std::ops::Range;

use super::sentences::split_sentences;
use super::specifics::{self, same_length, same_length_in, Scanned, Sources, Specific, SpecificKind};

/// A figure of a claim and the figure its evidence gives in the same place.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The claim's figure (found in no source), with its byte span in the claim.
    pub claim: Specific,
    /// The evidence's figure of the same kind, with its byte span in the evidence text.
    pub source: Specific,
    /// How many anchors the two places share (units included).
    pub shared: usize,
    /// How many of the claim's content words the evidence figure's sentence holds.
    pub overlap: usize,
}

/// How many content words on each side of a figure may anchor it.
const REACH: usize = 1;
/// How many words on each side of a figure are looked at for them.
const WALK: usize = 8;

/// A text read for conflicts once, for every claim of a case: its figures (numbers, amounts,
/// percentages, dates), where each stands, and the words of its sentences (in time linear in its
/// length).
pub struct Evidence {
    scanned: Scanned,
    /// Per specific of `scanned`: its place and the content words of its sentence (`None` for a name).
    places: Vec<Option<(Place, Rc<HashSet<String>>)>>,
    /// The text without separators ([`run_together`]).
    run: String,
    /// Every length of time the text gives, in days: its figures', and those written in words
    /// that are no specific ("a day", "one week", "an hour").
    lengths: Vec<Length>,
}

impl Evidence {
    /// Reads `text` (linear in its length).
    pub fn new(text: &str) -> Self {
        let scanned = Scanned::new(text);
        let (words, sentences) = (Words::of(text), split_sentences(text));
        // The content words of each sentence that holds a figure, once per sentence.
        let mut of_sentence: std::collections::HashMap<Range<usize>, Rc<HashSet<String>>> = Default::default();
        let places: Vec<Option<(Place, Rc<HashSet<String>>)>> = scanned
            .specifics()
            .iter()
            .map(|s| {
                (s.kind != SpecificKind::Name).then(|| {
                    let at = within(&sentences, &s.span);
                    let sentence = of_sentence
                        .entry(at.clone())
                        .or_insert_with(|| Rc::new(super::words::content_words(text.get(at).unwrap_or("")).into_iter().collect()))
                        .clone();
                    (words.place(text, s), sentence)
                })
            })
            .collect();
        let mut lengths: Vec<Length> = places.iter().flatten().filter_map(|(p, _)| p.days).collect();
        for pair in words.words.windows(2) {
            let (n, unit) = (pair[0].0.to_lowercase(), pair[1].0.to_lowercase());
            let n = if matches!(n.as_str(), "a" | "an") { Some(1.0) } else { specifics::small_number(&n) };
            let unit = unit.strip_suffix('s').unwrap_or(&unit).to_string();
            if let Some(days) = n.and_then(|n| days_of(&n.to_string(), &[unit])) {
                lengths.push(days);
            }
        }
        Evidence { scanned, places, run: run_together(text), lengths }
    }
}

/// The conflicts between `unsupported` (specifics of `claim` found in no source, as
/// [`Sources::unsupported`] gives them) or the claim's lengths of time that `evidence` does not give
/// and the figures of `evidence`; one per claim figure at most, in claim order. Where several
/// figures of the evidence stand in the same place, the one sharing more anchors is taken, then the
/// one whose sentence holds more of the claim's content words ("You need 500 points for a $5
/// reward" against "earn 1 point per dollar. 100 points can be redeemed for a $5 reward": 100),
/// then the first.
pub fn conflicts(claim: &str, unsupported: &[Specific], evidence: &Evidence) -> Vec<Conflict> {
    against(claim, &figures(claim, unsupported, &specifics::extract(claim), &[evidence]), evidence)
}

/// The strongest conflict of `claim` against any of `evidences` (by shared anchors, then the
/// claim's words in the evidence's sentence, then the earlier evidence and figure), with the index
/// of its evidence: "refunded within 60 days of delivery" is in conflict with "refunded within 30
/// days of delivery" in one context before "from day 31 to day 90 after delivery" in another. A
/// length of time of the claim is in conflict only where no evidence gives that length. Evidences
/// are only read (their iterator advanced) for a claim with a figure.
pub fn strongest<'e>(claim: &str, unsupported: &[Specific], evidences: impl IntoIterator<Item = &'e Evidence>) -> Option<(usize, Conflict)> {
    let extracted = specifics::extract(claim);
    if unsupported.iter().all(|s| s.kind == SpecificKind::Name) && !extracted.iter().any(|s| s.kind == SpecificKind::Number) {
        return None;
    }
    let evidences: Vec<&Evidence> = evidences.into_iter().collect();
    let figures = figures(claim, unsupported, &extracted, &evidences);
    let mut best: Option<(usize, Conflict)> = None;
    for (k, evidence) in evidences.into_iter().enumerate() {
        for c in against(claim, &figures, evidence) {
            if best.as_ref().is_none_or(|(_, b)| (c.shared, c.overlap) > (b.shared, b.overlap)) {
                best = Some((k, c));
            }
        }
    }
    best
}

/// A figure of a claim that may be in conflict, where it stands, and whether it is in no source
/// (`false`: a length of time whose number a source holds in another unit).
type Figure = (Specific, Place, bool);

/// The claim's figures that may be in conflict, in claim order: its figures in no source, and its
/// lengths of time that none of `evidences` gives (the specifics check matches a number by value
/// whatever its unit, so "kept for 7 months" is found in "kept for 7 years"; "2 weeks" is given by
/// "14 days").
/// `extracted`: every specific of the claim ([`specifics::extract`]).
fn figures(claim: &str, unsupported: &[Specific], extracted: &[Specific], evidences: &[&Evidence]) -> Vec<Figure> {
    let words = Words::of(claim);
    let given = |(days, per): Length| evidences.iter().any(|e| e.lengths.iter().any(|&(d, p)| same_length_in(d, p, days, per)));
    // A length an evidence gives in another unit is given ("24 hours" by "one day").
    let mut figures: Vec<Figure> = unsupported
        .iter()
        .filter(|s| s.kind != SpecificKind::Name)
        .map(|s| (s.clone(), words.place(claim, s), true))
        .filter(|(_, place, _)| !place.days.is_some_and(given))
        .filter(|(s, _, _)| !written_otherwise(&s.text, evidences))
        .collect();
    // A figure in no source already read above is not read again as a length (the same figure
    // written otherwise, or a length given in another unit, stays dropped).
    for s in extracted {
        if s.kind == SpecificKind::Number && !unsupported.iter().any(|u| u.span == s.span) {
            let place = words.place(claim, s);
            if place.days.is_some_and(|d| !given(d)) {
                figures.push((s.clone(), place, false));
            }
        }
    }
    figures.sort_by_key(|(s, _, _)| s.span.start);
    figures
}

/// The conflicts of `figures` (of `claim`) against `evidence`: see [`conflicts`].
fn against(claim: &str, figures: &[Figure], evidence: &Evidence) -> Vec<Conflict> {
    if figures.is_empty() {
        return vec![];
    }
    let not_held: HashSet<usize> = Sources::new(&[claim]).unsupported_of(&evidence.scanned).into_iter().collect();
    // The claim's content words, figures aside: the evidence's sentence must hold two in five of
    // them (on 300 HaluEval summaries, pairs drawn from a sentence holding 1 or 2 of a claim's 6
    // to 13 words were wrong; those holding 6 of 9 or more right).
    let wanted: HashSet<String> = super::words::content_words(claim).into_iter().filter(|w| !w.chars().any(|c| c.is_ascii_digit())).collect();
    figures
        .iter()
        .filter_map(|(c, mine, unsupported)| {
            // A figure in no source against the evidence's figures the claim does not hold; a
            // length of time against the evidence's lengths, in whatever unit.
            let ((shared, overlap, _), k) = evidence
                .scanned
                .specifics()
                .iter()
                .zip(&evidence.places)
                .enumerate()
                .filter_map(|(k, (s, place))| Some((k, s, place.as_ref()?)))
                .filter(|(k, s, (place, _))| same_kind(s.kind, c.kind) && if *unsupported { not_held.contains(k) } else { place.days.is_some() })
                // The same figure written otherwise ("1.42 million", "1.42million") is no conflict.
                .filter(|(_, s, _)| squeezed(&s.text) != squeezed(&c.text))
                .filter_map(|(k, _, (place, sentence))| {
                    let shared = mine.shared(place)?;
                    let overlap = wanted.iter().filter(|w| sentence.contains(*w)).count();
                    (overlap > 0 && overlap * 5 >= wanted.len() * 2).then_some(((shared, overlap, std::cmp::Reverse(k)), k))
                })
                .max()?;
            let source = evidence.scanned.specifics().get(k)?.clone();
            Some(Conflict { claim: c.clone(), source, shared, overlap })
        })
        .collect()
}

/// A text without the separators a figure may be written with (`:`, `.`, `,`, `'`).
fn run_together(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, ':' | '.' | ',' | '\'')).collect()
}

/// Whether the digits of a claim's figure (three or more) stand in an evidence run together
/// ([`run_together`]) as a whole figure: a table's "1:24.152" may be a claim's "124.152", which the
/// specifics check does not match; "1,500" is not "150".
fn written_otherwise(figure: &str, evidences: &[&Evidence]) -> bool {
    let digits: String = figure.chars().filter(char::is_ascii_digit).collect();
    let whole = |run: &str, at: usize| {
        let before = run[..at].chars().next_back();
        let after = run[at + digits.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    };
    digits.len() >= 3 && evidences.iter().any(|e| e.run.match_indices(digits.as_str()).any(|(at, _)| whole(&e.run, at)))
}

/// A figure's text lower-case without white space.
fn squeezed(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

/// Kinds that can stand in each other's place: the same kind, or a number and an amount (a table
/// "in millions" gives a bare number where a claim writes dollars).
fn same_kind(a: SpecificKind, b: SpecificKind) -> bool {
    use SpecificKind::*;
    a == b || matches!((a, b), (Number, Amount) | (Amount, Number))
}

/// The byte range of the sentence of `text` holding `span` (by [`split_sentences`]; `span` itself
/// where no sentence holds its start).
pub fn sentence_span(text: &str, span: &Range<usize>) -> Range<usize> {
    within(&split_sentences(text), span)
}

/// The range among `sentences` (in order) holding the start of `span`; `span` where none does.
fn within(sentences: &[Range<usize>], span: &Range<usize>) -> Range<usize> {
    let after = sentences.partition_point(|r| r.start <= span.start);
    match after.checked_sub(1).and_then(|i| sentences.get(i)) {
        Some(r) if span.start < r.end => r.clone(),
        _ => span.clone(),
    }
}

/// Where a figure stands: its unit (the words of a number's span after the number: "days" of "30
/// days", or the "p.m." written after it), its length in days where its unit is one of time, and
/// the nearest anchors on each side within its sentence.
#[derive(Debug, PartialEq)]
struct Place {
    unit: Vec<String>,
    days: Option<Length>,
    near: Vec<String>,
}

/// A length of time in days, and its unit's length in seconds (lengths in one unit compare
/// exactly, [`same_length_in`]).
type Length = (f64, u32);

impl Place {
    /// How many anchors two places share, where their units do not differ (a number without a
    /// unit may stand for one with it: "day 90"); `None` when they share none. Two lengths of time
    /// in different units stand in the same place where a word beside them is the same and they
    /// are not the same length ("kept for 7 months" against "kept for 7 years"; "24 months" is "2
    /// years").
    fn shared(&self, other: &Place) -> Option<usize> {
        let near = self.near.iter().filter(|a| other.unit.contains(a) || other.near.contains(a)).count();
        if !self.unit.is_empty() && !other.unit.is_empty() && !self.unit.iter().any(|u| other.unit.contains(u)) {
            let ((a, _), (b, _)) = (self.days?, other.days?);
            return (!same_length(a, b) && near > 0).then_some(near);
        }
        let n = self.unit.iter().filter(|a| other.unit.contains(a) || other.near.contains(a)).count() + near;
        (n > 0).then_some(n)
    }
}

/// The length in days of a number written with a unit of time ("6 weeks": 42, "six months"),
/// with its unit's seconds, from its text and its unit's anchors; `None` for any other, and for
/// business or working days (no length in calendar time).
fn days_of(text: &str, unit: &[String]) -> Option<Length> {
    if unit.iter().any(|u| matches!(u.as_str(), "business" | "working")) {
        return None;
    }
    let per = unit.iter().find_map(|u| specifics::unit_seconds(u))?;
    let first = text.split_whitespace().next()?.to_lowercase();
    let n = first.replace(',', "").parse::<f64>().ok().or_else(|| specifics::small_number(&first))?;
    Some((n * f64::from(per) / 86_400.0, per))
}

/// "am" or "pm" where `rest` (the text after a number) starts with a time of day's mark ("7 p.m.",
/// "7pm", "7 PM").
fn time_of_day(rest: &str) -> Option<String> {
    let t = rest.trim_start().to_lowercase();
    ["a.m.", "a.m", "am", "p.m.", "p.m", "pm"].iter().find(|m| t.starts_with(**m) && !t[m.len()..].starts_with(char::is_alphanumeric)).map(|m| m[..1].to_string() + "m")
}

/// The words of a text with their byte ranges.
struct Words {
    words: Vec<(String, Range<usize>)>,
}

impl Words {
    fn of(text: &str) -> Self {
        Words { words: super::words::plain_words_at(text) }
    }

    /// Where the figure `s` stands (see the module docs): its unit, and up to [`REACH`] content
    /// words on each side within its sentence; normalised.
    fn place(&self, text: &str, s: &Specific) -> Place {
        // A number's unit is inside its span ("30 days", "7 business days").
        // Words are in text order: the figure's own are between these two (a binary search each,
        // so that a table of many figures is read in linear time).
        let first_in = self.words.partition_point(|(_, r)| r.start < s.span.start);
        let first_after = self.words.partition_point(|(_, r)| r.start < s.span.end).max(first_in);
        let mut unit: Vec<String> = match s.kind {
            SpecificKind::Number => self.words[first_in..first_after].iter().filter(|(_, r)| r.end <= s.span.end).filter_map(|(w, r)| anchor(text, w, r)).collect(),
            _ => vec![],
        };
        if s.kind == SpecificKind::Number {
            unit.extend(time_of_day(text.get(s.span.end..).unwrap_or("")));
        }
        let days = days_of(&s.text, &unit);
        let before = self.words[..first_in].iter().rev().filter(|(_, r)| r.end <= s.span.start).take(WALK);
        let mut near = Self::side(text, before, |r| r.end..s.span.start);
        let after = self.words[first_after..].iter().filter(|(_, r)| r.start >= s.span.end).take(WALK);
        near.extend(Self::side(text, after, |r| s.span.end..r.start));
        Place { unit, days, near }
    }

/// Up to [`REACH`] anchors among `words` (walking away from the figure), stopping at the end of
    /// its sentence (`gap` gives the text between the figure and a word) or at another figure.
    fn side<'a>(text: &str, words: impl Iterator<Item = &'a (String, Range<usize>)>, gap: impl Fn(&Range<usize>) -> Range<usize>) -> Vec<String> {
        let mut out = vec![];
        for (w, r) in words {
            if text.get(gap(r)).unwrap_or("").contains(['.', '!', '?', ';', '\n']) {
                break;
            }
            if w.chars().any(|c| c.is_ascii_digit()) {
                break;
            }
            if let Some(a) = anchor(text, w, r) {
                out.push(a);
                if out.len() == REACH {
                    break;
                }
            }
        }
        out
    }
}

/// A word as an anchor: letters, three or more, not a function word, month, weekday or number
/// word, not capitalised (a name, or a sentence's first word, which may be one: "Einstein was
/// born ..."); lower-case, without a plural "s".
fn anchor(text: &str, word: &str, at: &Range<usize>) -> Option<String> {
    if word.chars().count() < 3 || !word.chars().all(char::is_alphabetic) || specifics::never_anchors(word) {
        return None;
    }
    if text.get(at.clone())?.starts_with(char::is_uppercase) {
        return None;
    }
    Some(word.strip_suffix('s').filter(|w| w.len() >= 3 && !w.ends_with('s')).unwrap_or(word).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The conflicts of `claim` against `evidence` as (claim figure, evidence figure) texts.
    fn found(claim: &str, evidence: &str) -> Vec<(String, String)> {
        let unsupported = Sources::new(&[evidence]).unsupported(claim);
        conflicts(claim, &unsupported, &Evidence::new(evidence)).into_iter().map(|c| (c.claim.text, c.source.text)).collect()
    }

    fn pair(a: &str, b: &str) -> Vec<(String, String)> {
        vec![(a.to_string(), b.to_string())]
    }

    #[test]
    fn a_figure_beside_the_same_word_is_in_conflict() {
        let einstein = "Albert Einstein (born 14 March 1879) was a German-born theoretical physicist.";
        assert_eq!(found("Einstein was born on 14 March 1880.", einstein), pair("14 March 1880", "14 March 1879"));
        assert_eq!(found("Einstein was born in Germany in 1880.", einstein), pair("1880", "14 March 1879"));
        assert_eq!(found("The blue crates are stored in bay two.", "The red crates are stored in bay four."), pair("two", "four"));
        assert_eq!(found("It requires a deposit of $134.", "Bookings require a $100 deposit."), pair("$134", "$100"));
        assert_eq!(found("The store is open until 7 p.m.", "The store is open until 6 p.m. on weekdays."), pair("7", "6"));
        assert_eq!(found("Refunds are accepted within 60 days.", "Returns are accepted within 30 days of delivery."), pair("60 days", "30 days"));
        assert_eq!(found("Sales rose 30% last year.", "Sales rose 25% last year."), pair("30%", "25%"));
        assert_eq!(found("The firm has 340 employees.", "It had 420 employees in 2020."), pair("340", "420"));
        // Of several figures in the same place, the one in the sentence nearest the claim.
        let points = "Members earn 1 point per dollar spent. 100 points can be redeemed for a $5 reward.";
        assert_eq!(found("You need 500 points for a $5 reward.", points), pair("500", "100"));
        // Times of day, and lengths of time in other units.
        assert_eq!(found("On Sunday our stores are open from 10 a.m. to 7 p.m.", "On Sunday our stores are open from 10 a.m. to 6 p.m."), pair("7", "6"));
        assert_eq!(found("Order records are kept for 7 months for tax purposes.", "Order records are kept for 7 years for tax purposes."), pair("7 months", "7 years"));
        assert_eq!(found("The warranty lasts 3 years.", "The warranty lasts 24 months."), pair("3 years", "24 months"));
        assert_eq!(found("It was founded four decades ago.", "It was founded 30 years ago."), pair("four decades", "30 years"));
        // Digits a longer figure holds are not that figure written otherwise.
        assert_eq!(found("The fee is $150 per year.", "The fee is $1,500 per year."), pair("$150", "$1,500"));
        // A unit alone places a number.
        assert_eq!(found("Shipping takes 9 business days.", "Allow 5 business days for shipping."), pair("9 business days", "5 business days"));
    }

    #[test]
    fn the_strongest_conflict_is_taken_across_evidences() {
        let claim = "Purchases can be refunded within 60 days of delivery.";
        let unsupported = Sources::new(&[]).unsupported(claim);
        let credit = "Returns after 30 days: from day 31 to day 90 after delivery, returns are accepted for store credit only.";
        let refunds = "Refund policy: purchases can be refunded within 30 days of delivery with the original receipt.";
        let read = [Evidence::new(credit), Evidence::new(refunds)];
        let (k, c) = strongest(claim, &unsupported, &read).expect("a conflict");
        assert_eq!((k, c.claim.text.as_str(), c.source.text.as_str()), (1, "60 days", "30 days"));
        assert!(strongest(claim, &unsupported, &[Evidence::new("Shipping is free on orders over $50.")]).is_none());
        // A length of time one context gives is no conflict with another length in another.
        let claim = "The money goes back to your card within 5 to 7 days.";
        let read = [Evidence::new("Refunds go back to the card within 5 to 7 days."), Evidence::new("Returns after 30 days go back to the card as store credit.")];
        assert!(strongest(claim, &[], &read).is_none());
        assert!(strongest(claim, &[], &read[1..]).is_some(), "alone, the other context gives another length in the same place");
    }

    #[test]
    fn figures_in_other_places_are_not_in_conflict() {
        // A figure the claim holds is no conflict, nor one the source holds.
        assert!(found("Einstein was born on 14 March 1879.", "Albert Einstein (born 14 March 1879) was a physicist.").is_empty());
        // Other words around the evidence's figure: the claim's figure is only unsupported.
        assert!(found("The museum has 40 rooms.", "The museum opened in 1901 and draws 2 million visitors.").is_empty());
        assert!(found("60 percent of the students are women.", "55 percent of its undergraduates and 100 percent overall receive aid.").is_empty());
        // A name beside both is no anchor.
        assert!(found("Einstein moved to the United States in 1933.", "Einstein was born in 1879 in Ulm.").is_empty());
        // Another sentence is another place.
        assert!(found("The bridge opened in 1932.", "The bridge is 503 metres long. It opened to traffic.").is_empty());
        assert!(found("Revenue was 5 billion in 2021.", "Revenue grew. In 2019 there were 3 stores.").is_empty());
        // A sentence holding few of the claim's words is another place (HaluEval summaries).
        assert!(found("The Foxes are bottom of the Premier League table with 22 points.", "It cut the gap between them and safety to four points with eight games left to play.").is_empty());
        assert!(found("The union has a claimed membership of 1.42 million.", "Unite has a claimed membership of 1.42million.").is_empty(), "the same figure written otherwise");
        assert!(found("The team Minardi had a 124.152 best lap.", "Row 3: team is Minardi; best is 1:24.764. Row 4: team is Minardi; best is 1:24.152.").is_empty(), "a time written otherwise");
        // Names are never in conflict, and a claim without figures has none.
        assert!(found("Paris is the capital of Italy.", "Rome is the capital of Italy.").is_empty());
        assert!(found("The crates are red.", "The crates are stored in bay four.").is_empty());
        // A figure of another kind does not stand in for it, nor a number of another unit.
        assert!(found("Sales rose 30% in 2020.", "Sales rose in 2019 by 25 units.").is_empty());
        assert!(found("Store credit from returns expires after six months.", "From day 31 to day 90 after delivery, returns are accepted for store credit only.").is_empty());
        assert!(found("The warranty lasts 2 years.", "The warranty lasts 24 months.").is_empty(), "the same length");
        assert!(found("Support replies within 24 hours.", "Support replies within one day. Escalations are answered within 4 hours.").is_empty(), "a length given in another unit");
        assert!(found("The store opens at 9 a.m.", "The store closes at 6 p.m.").is_empty(), "morning and evening");
        assert!(found("It was founded three decades ago.", "It was founded 30 years ago.").is_empty(), "a length in decades");
        // In one unit, lengths are equal or not; business days are no length of time.
        assert_eq!(found("The trial lasted 51 weeks.", "The trial lasted 52 weeks."), pair("51 weeks", "52 weeks"));
        assert!(found("Shipping takes 10 business days.", "Shipping takes 2 weeks.").is_empty(), "business days");
        // A figure written otherwise is not read again as a length of time.
        assert!(found("Her best lap took 124.152 seconds.", "Her best lap took 1:24.152 seconds.").is_empty(), "a time written otherwise");
    }

    #[test]
    fn a_long_table_is_read_in_linear_time() {
        // 20,000 figures in one sentence: read in seconds where a quadratic reading would take
        // many minutes; and still in conflict where a cell is.
        let table: String = (0..20_000).map(|i| format!("row {i} value is {} units, ", i * 7)).collect();
        let text = format!("{table}bay is four.");
        let start = std::time::Instant::now();
        let read = Evidence::new(&text);
        let claim = "The crates are in bay 999999.";
        assert_eq!(conflicts(claim, &Sources::new(&[text.as_str()]).unsupported(claim), &read).len(), 1);
        assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
    }

    #[test]
    fn a_sentence_is_found_around_a_figure() {
        let text = "Hours vary. The store is open until 6 p.m. on weekdays! Call us.";
        let at = text.find('6').expect("a six");
        assert_eq!(&text[sentence_span(text, &(at..at + 1))], "The store is open until 6 p.m. on weekdays!");
        assert_eq!(sentence_span("  ", &(1..1)), 1..1, "no sentence: the span itself");
    }

    #[test]
    fn anchors_are_content_words_of_the_figures_sentence() {
        let text = "Albert Einstein (born 14 March 1879) was a physicist. Bay four holds the crates.";
        let words = Words::of(text);
        let place = |figure: &str| {
            let s = specifics::extract(text).into_iter().find(|s| s.text == figure).expect("a figure");
            let p = words.place(text, &s);
            (p.unit, p.near)
        };
        let none = Vec::<String>::new();
        assert_eq!(place("14 March 1879"), (none.clone(), vec!["born".to_string(), "physicist".to_string()]), "names and function words do not anchor");
        assert_eq!(place("four"), (none.clone(), vec!["hold".to_string()]), "a capitalised first word does not anchor; plurals drop their s");
        let text = "Returns are accepted for 30 days. Store credit expires after six months.";
        let words = Words::of(text);
        let s = specifics::extract(text).into_iter().find(|s| s.text == "six months").expect("a figure");
        assert_eq!(words.place(text, &s), Place { unit: vec!["month".to_string()], days: Some((6.0 * 30.436875, 2_629_746)), near: vec!["expire".to_string()] }, "a unit; the sentence before is another place");
    }
}

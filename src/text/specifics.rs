//! Specifics of a claim that no source contains: numbers, amounts of money, percentages, dates and
//! proper names.
//!
//! A wrong amount, date or invented name is a hallucination an NLI model can miss (the sentence is
//! "about" the same thing as the source). This module is the cheap, explainable check beside the NLI
//! verdict (`unsupported_specific`): it lists the specifics of a claim and keeps those that occur in
//! none of the contexts once formats are normalised. It needs no model.
//!
//! **Approach.** A hand-written tokeniser splits a text into words (`don't`, `U.S`, `German-born`),
//! numbers with their inner `,` `.` `-` `/` (`1,200`, `.5`, `1879-03-14`, `5-7`), mixed tokens
//! (`14th`, `5k`, `30-day`, `COVID-19`) and single symbols. One left-to-right pass reads the
//! specifics, each with one or more normalised keys; the contexts go through the same pass once per
//! call (linear in their length) into hash sets, plus a sorted set of their lower-cased words.
//!
//! **Normalisation.**
//! - Numbers: digits with `,` or a single space as thousands separator (`1,200` = `1 200` = `1200`),
//!   decimals (`.5` = `0.5`, `3.0` = `3`), European forms (`9,99` is 9.99, or 9 and 99; `1.200` is
//!   1.2 or 1200), versions (`3.12.0` stands for 3.12), scale words and suffixes (`1.5 million`, `5k`, `2bn`;
//!   `5m` is both 5 and 5 000 000), number words (`thirty`, `twenty-five`, `a hundred`,
//!   `one hundred and five`, `two dozen`). Values compare in millionths. In a claim a lone "one" or
//!   "zero" and ordinal words ("first") are not specifics; in a context ordinal words and "half" count
//!   as numbers, so `1st` and `0.5` find them. A unit after a number (`30 days`, `7 business days`)
//!   joins its span but not its key. A number is supported by the same value anywhere in a context.
//! - Amounts: a currency symbol or code before (`$`, `€`, `US$`, `USD 1,200`) or a symbol, code or
//!   word after (`1200 dollars`, `1,200 USD`, `50 euros`). Supported by the same value in the same
//!   currency family (dollar, euro, pound, yen, rupee, franc, yuan), or by the bare number.
//! - Percentages: `25%` = `25 percent` = `25 per cent` = `25 pct`; supported by the same percentage or
//!   bare number.
//! - Dates: `14 March 1879`, `14th of March, 1879`, `March 14th, 1879`, `Mar. 14 1879`, `1879-03-14`,
//!   `14/03/1879` (day-first and month-first both tried), `March 1879`, `March 14`, bare years
//!   1000–2100 and decades (`1990s`). A full date needs the same day, month and year in a context (or
//!   the same day and month without a year plus that year somewhere); month and day without a year
//!   compare month and day; a bare year is supported by that year anywhere, also inside a date. Lone
//!   month names are not specifics.
//! - Days of the week: a capitalised weekday name or its plural in a claim (`Sunday`, `Mondays`) is a
//!   date specific. A context supports it by naming that day (also abbreviated: `Sun`, `Thurs.`), a
//!   range that holds it (`Monday to Friday`, `Mon-Fri`, `Monday through Friday`, `between Monday
//!   and Friday`, wrapping through Sunday), `weekdays` (Monday to Friday), `weekends`, every day
//!   (`daily`, `every day`, `7 days a week`), or a full date that falls on it.
//! - Names: a capitalised word (`Einstein`, `SM`, `GPT-4`) or a run of them joined by single spaces
//!   or name connectors (`University of California`, `Ludwig van Beethoven`). Function words,
//!   pronouns, months and weekdays are never names and break a run; a single capitalised word
//!   starting a sentence (after `.`, `!`, `?`, `:`, `;`, a line break or an opening quote) is
//!   skipped (except in a bare answer, read with its question or the whole output: "Sydney"), as are
//!   all names of a sentence written in title case. A name is supported when each of
//!   its words occurs in a context, case-insensitively, as a whole word or part of a hyphenated word,
//!   in any order (so "Albert Einstein" is supported by "Einstein, born Albert ..."). A possessive
//!   `'s` is dropped. An alphabetic word of 4+ letters is also supported by a context word sharing its
//!   first max(4, len − 2) letters (Germany ~ German, Italy ~ Italian, Japan ~ Japanese), and by a
//!   few irregular demonyms (France ~ French, Spain ~ Spanish); a word with digits (`COVID-19`,
//!   `GPT-4`, `B2B`) must match exactly, and its digits are never a separate number.
//! - Citation markers (`[1]`, `[1, 2]`, `[1-3]`) and list numbers at a line start (`1.`, `2)`) are
//!   not specifics.
//!
//! It prefers missing a specific to a false alarm: a number is matched by value whatever its unit
//! or role in the context, and name matching is loose.

use std::collections::{BTreeSet, HashSet};
use std::ops::{Bound, Range};

/// What kind of specific a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecificKind {
    /// A number or quantity (`60`, `thirty days`, `1.5 million`).
    Number,
    /// An amount of money (`$1,200`, `50 euros`).
    Amount,
    /// A percentage (`25%`, `25 per cent`).
    Percent,
    /// A date, month and year, or year (`14 March 1879`, `March 14`, `1879`).
    Date,
    /// A proper name (`Los Angeles`, `Einstein`, `GPT-4`).
    Name,
}

/// A specific of a claim that no context contains.
#[derive(Debug, Clone, PartialEq)]
pub struct Specific {
    /// The specific as written in the claim.
    pub text: String,
    /// Byte range of the specific in the claim (on character boundaries).
    pub span: Range<usize>,
    /// What kind of specific it is.
    pub kind: SpecificKind,
}

/// Specifics of `claim` found in none of `contexts` (in claim order).
pub fn unsupported_specifics(claim: &str, contexts: &[&str]) -> Vec<Specific> {
    Sources::new(contexts).unsupported(claim)
}

/// What a case's contexts contain, indexed once for all of its claims.
pub struct Sources {
    index: Index,
}

impl Sources {
    /// Indexes `contexts` (linear in their length).
    pub fn new(contexts: &[&str]) -> Self {
        let mut index = Index::default();
        for context in contexts {
            index.add(context);
        }
        Sources { index }
    }

    /// Also takes the names of the user's question as known: "Boeing" in an answer to "What was
    /// Boeing's FY2018 revenue?" is the user's word, not one the output made up, when the filing
    /// page it is graded on never names the company. Only names: a number, date or amount of the
    /// question is still looked for in the contexts ("Is the window 60 days?" answered "Yes, it is
    /// 60 days" against a policy of 30 is flagged), and not for a bare answer, which picks among
    /// the question's names ("Which came first, X or Y?" answered "Y").
    pub fn with_question(mut self, question: Option<&str>) -> Self {
        if let Some(q) = question {
            self.index.asked.extend(words_of(q, &tokenize(q)).flat_map(with_parts));
        }
        self
    }

    /// Specifics of `claim` found in none of the contexts (in claim order).
    pub fn unsupported(&self, claim: &str) -> Vec<Specific> {
        self.unsupported_as(claim, false)
    }

    /// [`Sources::unsupported`] for a claim that is a bare answer (`bare`: "Sydney", read with its
    /// question), whose first capitalised word is a name, not the start of a sentence.
    pub fn unsupported_as(&self, claim: &str, bare: bool) -> Vec<Specific> {
        // A bare answer picks among the question's names: they do not support it.
        scan_as(claim, true, bare)
            .into_iter()
            .filter(|f| !f.keys.iter().any(|k| self.index.supports(k, !bare)))
            .map(|f| f.specific(claim))
            .collect()
    }
}

/// The specifics of a text, scanned once to be checked against the specifics of many claims
/// ([`Sources::unsupported_of`]).
pub struct Scanned {
    found: Vec<Found>,
    specifics: Vec<Specific>,
}

impl Scanned {
    /// Scans `text` (linear in its length).
    pub fn new(text: &str) -> Self {
        let found = scan(text, true);
        let specifics = found.iter().map(|f| f.specific(text)).collect();
        Scanned { found, specifics }
    }

    /// Every specific of the text, in text order (as [`extract`] gives them).
    pub fn specifics(&self) -> &[Specific] {
        &self.specifics
    }
}

impl Sources {
    /// Which specifics of a scanned text are found in none of the contexts, as indices into
    /// [`Scanned::specifics`], in text order: the same as [`Sources::unsupported`] of that text,
    /// without scanning it again.
    pub fn unsupported_of(&self, scanned: &Scanned) -> Vec<usize> {
        (0..scanned.found.len()).filter(|&i| !scanned.found[i].keys.iter().any(|k| self.index.supports(k, true))).collect()
    }
}

/// The lengths of time a case's contexts give, as written ("24 months", "one day", "a day"), to
/// write a claim's lengths as the sources do ([`Lengths::in_source_units`]).
pub struct Lengths {
    /// Seconds, the unit's seconds, and the text, in context order.
    given: Vec<(f64, u32, String)>,
}

/// The lengths of time of a text: byte range, seconds and the unit's seconds, in text order; for a
/// `context`, read as contexts are (the index's reading: "one day" too), with "a day" and "an hour".
fn lengths_of(text: &str, context: bool) -> Vec<(Range<usize>, f64, u32)> {
    let toks = tokenize(text);
    let mut out: Vec<(Range<usize>, f64, u32)> = scan_tokens(text, &toks, !context)
        .into_iter()
        .filter_map(|f| f.keys.iter().find_map(|k| if let Key::Length(s, per) = k { Some((*s as f64, *per)) } else { None }).map(|(s, per)| (f.span, s, per)))
        .collect();
    if context {
        out.extend(article_lengths(text, &toks).into_iter().map(|(r, per)| (r, f64::from(per), per)));
        out.sort_by_key(|(r, _, _)| r.start);
    }
    out
}

/// Whether the length at `span` of `claim` is one end of a range ("1 to 2 weeks", "between 6 and
/// 12 months", "2-3 years") or a rate ("24 hours a day", "every 2 weeks", "the first 50 years"):
/// written in another unit alone, it would say something else.
fn tied(claim: &str, span: &Range<usize>) -> bool {
    let before = claim.get(..span.start).unwrap_or("").trim_end().to_lowercase();
    let after = claim.get(span.end..).unwrap_or("").trim_start().to_lowercase();
    let last = before.rsplit(|c: char| c.is_whitespace()).next().unwrap_or("");
    let next = after.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("");
    before.ends_with(['-', '–', '—', '/'])
        || matches!(last, "to" | "and" | "or" | "through" | "thru" | "between" | "every" | "each" | "per" | "first" | "last" | "next" | "past")
        || matches!(next, "a" | "an" | "per" | "each" | "every")
        || after.starts_with(['-', '–', '—', '/'])
}

impl Lengths {
    /// The lengths `contexts` give (linear in their length).
    pub fn new(contexts: &[&str]) -> Self {
        let given = contexts.iter().flat_map(|c| lengths_of(c, true).into_iter().map(|(r, s, per)| (s, per, c.get(r).unwrap_or("").to_string()))).collect();
        Lengths { given }
    }

    /// Whether `claim` states a length of time (a number with a unit of time).
    pub fn any_in(claim: &str) -> bool {
        !lengths_of(claim, false).is_empty()
    }

    /// `claim` with each of its lengths of time that no context gives in its unit, but one gives
    /// in another, written as the first such context writes it: "The warranty lasts 2 years."
    /// against "24 months" is "The warranty lasts 24 months." (a small NLI model does not convert
    /// units: the default one read the first as contradicted, 0.58). A length in a range or a rate
    /// ([`tied`]) stays as written. `None` when nothing changes.
    pub fn in_source_units(&self, claim: &str) -> Option<String> {
        let mut out = String::with_capacity(claim.len());
        let mut at = 0;
        for (span, seconds, per) in lengths_of(claim, false) {
            if tied(claim, &span) || self.given.iter().any(|(s, p, _)| *p == per && same_length_in(*s, *p, seconds, per)) {
                continue;
            }
            let Some((_, _, as_given)) = self.given.iter().find(|(s, p, _)| *p != per && same_length(*s, seconds)) else { continue };
            out.push_str(claim.get(at..span.start)?);
            out.push_str(as_given);
            at = span.end;
        }
        (at > 0).then(|| out + claim.get(at..).unwrap_or(""))
    }
}

/// Every specific of a text (for tests and reuse), in text order.
pub fn extract(text: &str) -> Vec<Specific> {
    scan(text, true).into_iter().map(|f| f.specific(text)).collect()
}

/// Every specific of a bare answer ("Los Angeles, California", read with its question), whose
/// first capitalised word is a name, not the start of a sentence; in text order.
pub fn extract_answer(text: &str) -> Vec<Specific> {
    scan_as(text, true, true).into_iter().map(|f| f.specific(text)).collect()
}

/// A value in millionths, so that `3`, `3.0` and `3.000` are the same key.
type Val = i128;

fn val(x: f64) -> Option<Val> {
    x.is_finite().then(|| (x * 1e6).round() as Val)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Ymd {
    y: Option<i32>,
    m: Option<u8>,
    d: Option<u8>,
}

#[derive(Debug, Clone, PartialEq)]
enum Key {
    Num(Val),
    Amount(Val, &'static str),
    Percent(Val),
    Date(Ymd),
    /// A day of the week, 0 = Monday.
    Weekday(u8),
    /// A number written with a scale word, by its mantissa and scale: "1,577 million" is
    /// (1577, 1), supported by a context that holds 1,577 and speaks in millions anywhere (a table
    /// "in millions"). Scales: 0 thousand, 1 million, 2 billion, 3 trillion.
    Scaled(Val, u8),
    /// A length of time in seconds, and its unit's length in seconds ("2 years", "24 months", "one
    /// day"): supported by a context giving the same length, in the same unit exactly, in another
    /// within 2% ([`same_length_in`]).
    Length(i64, u32),
    Name(Vec<String>),
}

/// A specific with its normalised keys; it is supported when any key is.
struct Found {
    span: Range<usize>,
    kind: SpecificKind,
    keys: Vec<Key>,
}

impl Found {
    fn specific(&self, text: &str) -> Specific {
        Specific { text: text.get(self.span.clone()).unwrap_or("").to_string(), span: self.span.clone(), kind: self.kind }
    }
}

const STOP: &[&str] = &[
    "a", "an", "the", "this", "that", "these", "those", "there", "here", "it", "its", "he", "she", "they", "we", "you",
    "i", "i'm", "i've", "i'd", "i'll", "me", "him", "her", "his", "hers", "them", "their", "our", "my", "your", "who",
    "whom", "whose", "which", "what", "when", "where", "why", "how", "and", "or", "but", "nor", "so", "yet", "if",
    "then", "than", "as", "at", "by", "for", "from", "in", "into", "of", "on", "onto", "to", "with", "within",
    "without", "about", "above", "after", "before", "below", "between", "during", "over", "under", "since", "until",
    "upon", "via", "per", "is", "are", "was", "were", "be", "been", "being", "am", "has", "have", "had", "do", "does",
    "did", "will", "would", "shall", "should", "can", "could", "may", "might", "must", "not", "no", "yes", "all",
    "any", "some", "many", "most", "more", "much", "each", "every", "both", "either", "neither", "other", "another",
    "such", "also", "however", "although", "though", "because", "while", "whereas", "therefore", "thus", "hence",
    "meanwhile", "moreover", "furthermore", "instead", "still", "even", "only", "just", "very", "note", "please",
    "see", "according", "overall", "today", "yesterday", "tomorrow", "ok", "okay", "mr", "mrs", "ms", "dr", "prof",
    "st", "important", "warning",
];
const CALENDAR: &[&str] = &[
    "january", "february", "march", "april", "june", "july", "august", "september", "october", "november", "december",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
];
/// Whether a lower-case word is a function word, a month, a weekday, an abbreviation or a number
/// or scale word: never a word that says where a figure stands ([`super::conflicts`]).
pub(super) fn never_anchors(w: &str) -> bool {
    STOP.contains(&w)
        || CALENDAR.contains(&w)
        || ABBREVIATIONS.contains(&w)
        || small_number(w).is_some()
        || multiplier(w).is_some()
        || context_only_number(w).is_some()
}
/// Fiscal and calendar periods: capitalised, but no names ("FY 2018", "Q3 revenue", "YTD").
const PERIODS: &[&str] = &["fy", "cy", "q1", "q2", "q3", "q4", "h1", "h2", "ytd", "ttm", "ltm"];
/// Temperature scales: capitalised, but units ("100 degrees Celsius" is "100 °C"), not names.
const SCALES: &[&str] = &["celsius", "fahrenheit", "kelvin", "centigrade"];
const CONNECTORS: &[&str] =
    &["of", "de", "van", "von", "der", "den", "del", "della", "da", "di", "du", "la", "le", "bin", "al", "y"];
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "inc", "ltd", "co", "corp", "vs", "mt", "ft", "gen", "col",
    "lt", "sgt", "rev", "no", "fig", "approx", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
    "nov", "dec",
];
const UNITS: &[&str] = &[
    "day", "days", "week", "weeks", "month", "months", "year", "years", "hour", "hours", "minute", "minutes", "second",
    "seconds", "night", "nights", "decade", "decades", "century", "centuries",
];
const DEMONYMS: &[(&str, &str)] = &[
    ("spain", "spanish"),
    ("france", "french"),
    ("britain", "british"),
    ("netherlands", "dutch"),
    ("holland", "dutch"),
    ("switzerland", "swiss"),
    ("wales", "welsh"),
    ("greece", "greek"),
    ("poland", "polish"),
    ("finland", "finnish"),
    ("ireland", "irish"),
    ("denmark", "danish"),
    ("england", "english"),
    ("scotland", "scottish"),
    ("thailand", "thai"),
    ("philippines", "filipino"),
];

/// The value of a number word ("six": 6), up to ninety-nine's parts; lower-case.
pub(super) fn small_number(w: &str) -> Option<f64> {
    const UNITS: [&str; 20] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
    ];
    const TENS: [&str; 8] = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
    if let Some(n) = UNITS.iter().position(|u| *u == w) {
        return Some(n as f64);
    }
    TENS.iter().position(|t| *t == w).map(|n| (n as f64 + 2.0) * 10.0)
}

/// The length in seconds of a unit of time as written after a number ("days", "Month",
/// "centuries", or an anchor's "centurie"); a month is a twelfth of a Gregorian year. Nights have
/// no length (a hotel's "3 nights" is not "3 days"), nor have business days.
pub(super) fn unit_seconds(w: &str) -> Option<u32> {
    let w = w.to_lowercase();
    let one = match w.as_str() {
        "centuries" | "centurie" => "century",
        s => s.strip_suffix('s').unwrap_or(s),
    };
    let seconds: u32 = match one {
        "second" => 1,
        "minute" => 60,
        "hour" => 3_600,
        "day" => 86_400,
        "week" => 604_800,
        "month" => 2_629_746,
        "year" => 31_556_952,
        "decade" => 315_569_520,
        "century" => 3_155_695_200,
        _ => return None,
    };
    Some(seconds)
}

/// Whether two lengths of time are the same: within 2% of the longer ("24 months" is "2 years",
/// "30 days" is "one month" at 30.4 days; "4 weeks" is not).
pub(super) fn same_length(a: f64, b: f64) -> bool {
    (a - b).abs() <= 0.02 * a.max(b)
}

/// [`same_length`] for lengths written in units of `per_a` and `per_b` seconds: in the same unit
/// they must be equal ("51 weeks" is not "52 weeks"); the 2% bridges units whose ratio is no whole
/// number (months and days).
pub(super) fn same_length_in(a: f64, per_a: u32, b: f64, per_b: u32) -> bool {
    if per_a == per_b {
        (a - b).abs() <= 1e-9 * a.max(b)
    } else {
        same_length(a, b)
    }
}

/// The lengths of time written with an article ("a day", "an hour"): byte range and the unit's
/// seconds. Not a rate ("twice a day", "24 hours a day", "3 times a week"), nor "a second" before a
/// word ("a second opinion").
fn article_lengths(text: &str, toks: &[Tok]) -> Vec<(Range<usize>, u32)> {
    let word = |k: usize| toks.get(k).filter(|t| t.kind == Tk::Word).and_then(|t| text.get(t.span.clone()));
    let mut out = vec![];
    for k in 0..toks.len() {
        let (Some(a), Some(unit)) = (word(k), word(k + 1)) else { continue };
        if !matches!(a.to_lowercase().as_str(), "a" | "an") || text.get(toks[k].span.end..toks[k + 1].span.start).is_some_and(|g| g.contains('\n')) {
            continue;
        }
        let Some(per) = unit_seconds(unit) else { continue };
        let before = k.checked_sub(1).and_then(|b| toks.get(b));
        let rate = before.is_some_and(|b| {
            let w = text.get(b.span.clone()).unwrap_or("").to_lowercase();
            matches!(b.kind, Tk::Num | Tk::Mixed) || matches!(w.as_str(), "once" | "twice" | "thrice" | "times") || unit_seconds(&w).is_some()
        });
        let ordinal = unit.eq_ignore_ascii_case("second") && word(k + 2).is_some();
        if !rate && !ordinal {
            out.push((toks[k].span.start..toks[k + 1].span.end, per));
        }
    }
    out
}

/// The scale of a multiplier of at least a thousand, as [`Key::Scaled`] numbers it.
fn scale_index(m: f64) -> Option<u8> {
    [1e3, 1e6, 1e9, 1e12].iter().position(|&x| x == m).map(|k| k as u8)
}

/// A fiscal or calendar period with its year, "FY2018", "FY18", "Q3'21", "H1 2019" (as one token):
/// the years it can stand for.
fn period_years(s: &str) -> Option<Vec<i32>> {
    let u = s.to_ascii_uppercase();
    let rest = ["FY", "CY", "Q1", "Q2", "Q3", "Q4", "H1", "H2"].iter().find_map(|p| u.strip_prefix(p))?;
    let digits = rest.trim_start_matches(['\'', '’', '-']);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i32 = digits.parse().ok()?;
    match digits.len() {
        4 => Some(vec![n]),
        2 => Some(vec![2000 + n, 1900 + n]),
        _ => None,
    }
}

fn multiplier(w: &str) -> Option<f64> {
    Some(match w {
        "dozen" => 12.0,
        "hundred" => 100.0,
        "thousand" => 1e3,
        "million" | "mn" => 1e6,
        "billion" | "bn" => 1e9,
        "trillion" => 1e12,
        _ => return None,
    })
}

/// Ordinal words and "half": numbers in a context, not specifics in a claim.
fn context_only_number(w: &str) -> Option<f64> {
    const ORD: [&str; 12] = [
        "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
        "twelfth",
    ];
    if w == "half" {
        return Some(0.5);
    }
    ORD.iter().position(|o| *o == w).map(|n| n as f64 + 1.0)
}

fn currency_word(w: &str) -> Option<&'static str> {
    Some(match w {
        "dollar" | "dollars" | "usd" | "cad" | "aud" | "nzd" | "hkd" | "sgd" => "dollar",
        "euro" | "euros" | "eur" => "euro",
        "pound" | "pounds" | "gbp" | "sterling" => "pound",
        "yen" | "jpy" => "yen",
        "rupee" | "rupees" | "inr" => "rupee",
        "franc" | "francs" | "chf" => "franc",
        "yuan" | "renminbi" | "cny" | "rmb" => "yuan",
        _ => return None,
    })
}

fn currency_symbol(c: char) -> Option<&'static str> {
    Some(match c {
        '$' => "dollar",
        '€' => "euro",
        '£' => "pound",
        '¥' => "yen",
        '₹' => "rupee",
        _ => return None,
    })
}

/// The month of a capitalised month name or abbreviation, and whether it is abbreviated.
fn month_of(s: &str) -> Option<(u8, bool)> {
    if !s.starts_with(char::is_uppercase) {
        return None;
    }
    const ABBR: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let l = s.to_lowercase();
    if l == "sept" {
        return Some((9, true));
    }
    if let Some(n) = ABBR.iter().position(|a| *a == l) {
        return Some((n as u8 + 1, l != "may"));
    }
    CALENDAR.iter().take(11).position(|m| *m == l).map(|n| (if n < 4 { n as u8 + 1 } else { n as u8 + 2 }, false))
}

/// The day of the week (0 = Monday) of a capitalised weekday name or its plural ("Sunday",
/// "Sundays", "Monday's"), and, where `abbreviated` (in a context), of its abbreviation ("Mon",
/// "Thurs.").
fn weekday_of(s: &str, abbreviated: bool) -> Option<u8> {
    if !s.starts_with(char::is_uppercase) {
        return None;
    }
    let l = norm_word(s);
    let l = l.strip_suffix('s').filter(|r| r.ends_with("day")).unwrap_or(&l);
    if let Some(n) = CALENDAR[11..].iter().position(|d| *d == l) {
        return Some(n as u8);
    }
    const ABBR: [&[&str]; 7] =
        [&["mon"], &["tue", "tues"], &["wed"], &["thu", "thur", "thurs"], &["fri"], &["sat"], &["sun"]];
    if abbreviated {
        return ABBR.iter().position(|a| a.contains(&l)).map(|n| n as u8);
    }
    None
}

/// The days from `a` to `b` (0 = Monday) as a mask, through Sunday when `b` comes before `a`.
fn weekday_range(a: u8, b: u8) -> u8 {
    let mut mask = 0u8;
    let mut d = a % 7;
    loop {
        mask |= 1 << d;
        if d == b % 7 {
            return mask;
        }
        d = (d + 1) % 7;
    }
}

/// The day of the week (0 = Monday) of a date of the proleptic Gregorian calendar.
fn weekday_of_date(y: i32, m: u8, d: u8) -> u8 {
    // Sakamoto's method (0 = Sunday), moved to 0 = Monday.
    const T: [i32; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let y = if m < 3 { y - 1 } else { y };
    let sunday0 = (y + y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400) + T[usize::from(m.clamp(1, 12) - 1)] + i32::from(d)).rem_euclid(7);
    ((sunday0 + 6) % 7) as u8
}

/// The values digits with `,` and `.` can stand for: `1,200.5`; `1.200` (1.2, or 1200 with a dot
/// for thousands); a version `3.12.0` stands for 3.12.
fn digit_values(s: &str) -> Vec<f64> {
    let mut vals: Vec<f64> = s.replace(',', "").parse().ok().into_iter().collect();
    let groups: Vec<&str> = s.split('.').collect();
    if !s.contains(',') && groups.len() >= 2 && groups[0].len() <= 3 && groups[1..].iter().all(|g| g.len() == 3) {
        vals.extend(s.replace('.', "").parse::<f64>().ok());
    }
    if vals.is_empty() && groups.len() >= 3 {
        vals.extend(format!("{}.{}", groups[0], groups[1]).parse::<f64>().ok());
    }
    vals
}

fn valid_ymd(y: Option<u32>, m: u32, d: u32) -> Option<Ymd> {
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then(|| Ymd {
        y: y.and_then(|y| i32::try_from(y).ok()),
        m: Some(m as u8),
        d: Some(d as u8),
    })
}

fn strip_possessive(s: &str) -> &str {
    for suffix in ["'s", "’s", "'S", "’S"] {
        if let Some(rest) = s.strip_suffix(suffix).filter(|r| !r.is_empty()) {
            return rest;
        }
    }
    s
}

/// A name written with digits and capitals, known by its possessive: "3M's", "7UP's" (a company,
/// not the number 3 or 7; "3M" alone may be 3 million).
fn digit_name(s: &str) -> bool {
    let bare = strip_possessive(s);
    let letters = bare.trim_start_matches(|c: char| c.is_ascii_digit());
    bare.len() < s.len() && letters.len() < bare.len() && letters.starts_with(|c: char| c.is_uppercase()) && letters.chars().all(char::is_alphanumeric)
}

/// A word as names compare it: lower-case, without dots or a possessive `'s`.
fn norm_word(s: &str) -> String {
    let s = strip_possessive(s);
    s.chars().filter(|&c| c != '.').map(|c| if c == '’' { '\'' } else { c }).flat_map(char::to_lowercase).collect()
}

fn is_mark(c: char) -> bool {
    matches!(c, '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{1dc0}'..='\u{1dff}')
        || matches!(c, '\u{20d0}'..='\u{20ff}' | '\u{fe20}'..='\u{fe2f}')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tk {
    Word,
    Num,
    Mixed,
    Sym(char),
}

struct Tok {
    span: Range<usize>,
    kind: Tk,
}

fn tokenize(text: &str) -> Vec<Tok> {
    let cs: Vec<(usize, char)> = text.char_indices().collect();
    let at = |k: usize| cs.get(k).map(|&(_, c)| c);
    let pos = |k: usize| cs.get(k).map_or(text.len(), |&(b, _)| b);
    let mut toks = Vec::new();
    let mut k = 0;
    while let Some(c) = at(k) {
        let decimal = c == '.'
            && at(k + 1).is_some_and(|n| n.is_ascii_digit())
            && !(k > 0 && at(k - 1).is_some_and(char::is_alphanumeric));
        if c.is_whitespace() {
            k += 1;
            continue;
        }
        if !c.is_alphanumeric() && !decimal {
            toks.push(Tok { span: pos(k)..pos(k + 1), kind: Tk::Sym(c) });
            k += 1;
            continue;
        }
        let start = k;
        let mut seg = usize::from(!decimal); // letters since the last joiner, for `U.S`
        k += 1;
        while let Some(c) = at(k) {
            if c.is_alphanumeric() || is_mark(c) {
                seg += 1;
                k += 1;
                continue;
            }
            let (Some(p), Some(n)) = (at(k - 1), at(k + 1)) else { break };
            let join = match c {
                '-' | '\u{2011}' => p.is_alphanumeric() && n.is_alphanumeric(),
                '\'' | '’' => p.is_alphabetic() && n.is_alphabetic(),
                '.' => {
                    (p.is_ascii_digit() && n.is_ascii_digit()) || (seg == 1 && p.is_alphabetic() && n.is_alphabetic())
                }
                ',' => {
                    p.is_ascii_digit()
                        && (1..=3).all(|d| at(k + d).is_some_and(|x| x.is_ascii_digit()))
                        && !at(k + 4).is_some_and(|x| x.is_ascii_digit())
                }
                '/' => p.is_ascii_digit() && n.is_ascii_digit(),
                _ => false,
            };
            if !join {
                break;
            }
            k += 2;
            seg = 1;
        }
        let s = &text[pos(start)..pos(k)];
        let kind = if s.chars().all(|c| c.is_ascii_digit() || ",./-".contains(c)) {
            Tk::Num
        } else if s.chars().any(|c| c.is_ascii_digit()) {
            Tk::Mixed
        } else {
            Tk::Word
        };
        toks.push(Tok { span: pos(start)..pos(k), kind });
    }
    toks
}

/// A number read at some token: its candidate values, the token after it, and whether it can be a
/// day of the month or a year.
/// The [`Key::Scaled`] keys of a number written with a scale word.
fn scaled_keys(p: &NumP) -> Vec<Key> {
    p.scaled.iter().flat_map(|(xs, k)| xs.iter().filter_map(|&x| val(x)).map(|v| Key::Scaled(v, *k))).collect()
}

struct NumP {
    vals: Vec<f64>,
    /// The values before a scale word multiplied them, and the scale (see [`Key::Scaled`]).
    scaled: Option<(Vec<f64>, u8)>,
    end: usize,
    day: Option<u8>,
    year: Option<i32>,
    decade: bool,
    /// An ordinal ("first", "2nd"): it counts, but gives no length of time ("the first year").
    ordinal: bool,
}

impl NumP {
    fn new(x: f64, end: usize) -> Self {
        NumP { vals: vec![x], end, scaled: None, day: None, year: None, decade: false, ordinal: false }
    }
}

fn scan(text: &str, claim: bool) -> Vec<Found> {
    scan_as(text, claim, false)
}

fn scan_as(text: &str, claim: bool, bare: bool) -> Vec<Found> {
    let toks = tokenize(text);
    let mut s = Scan { text, toks: &toks, claim, bare, out: Vec::new() };
    s.run();
    s.out
}

fn scan_tokens(text: &str, toks: &[Tok], claim: bool) -> Vec<Found> {
    let mut s = Scan { text, toks, claim, bare: false, out: Vec::new() };
    s.run();
    s.out
}

struct Scan<'a> {
    text: &'a str,
    toks: &'a [Tok],
    /// Claim mode reads names and is stricter about number words.
    claim: bool,
    /// A bare answer: its first capitalised word is a name.
    bare: bool,
    out: Vec<Found>,
}

impl<'a> Scan<'a> {
    fn s(&self, i: usize) -> &'a str {
        self.toks.get(i).map_or("", |t| &self.text[t.span.clone()])
    }
    fn kind(&self, i: usize) -> Option<Tk> {
        self.toks.get(i).map(|t| t.kind)
    }
    /// The whitespace between token `i - 1` and token `i`.
    fn gap(&self, i: usize) -> &'a str {
        match (i.checked_sub(1).and_then(|p| self.toks.get(p)), self.toks.get(i)) {
            (Some(p), Some(t)) => &self.text[p.span.end..t.span.start],
            _ => "",
        }
    }
    /// Token `i` exists and is on the same line as the token before it.
    fn joined(&self, i: usize) -> bool {
        i < self.toks.len() && !self.gap(i).contains('\n')
    }
    fn sym(&self, i: usize, c: char) -> bool {
        self.joined(i) && self.kind(i) == Some(Tk::Sym(c))
    }
    fn word_is(&self, i: usize, words: &[&str]) -> bool {
        self.joined(i) && self.kind(i) == Some(Tk::Word) && words.iter().any(|w| self.s(i).eq_ignore_ascii_case(w))
    }
    fn push(&mut self, span: Range<usize>, kind: SpecificKind, keys: Vec<Key>) {
        if !keys.is_empty() {
            self.out.push(Found { span, kind, keys });
        }
    }
    fn tok_span(&self, from: usize, to: usize) -> Range<usize> {
        let start = self.toks.get(from).map_or(0, |t| t.span.start);
        let end = to.checked_sub(1).and_then(|t| self.toks.get(t)).map_or(start, |t| t.span.end);
        start..end.max(start)
    }

    fn run(&mut self) {
        // A bare answer ("Sydney", "Ag", "Charles Dickens") is all name: its first capital does not
        // start a sentence that other words make a claim of, so it is read as a name.
        let bare = self.bare && self.claim && !self.text.trim_end_matches(['.', '!']).contains(['.', '!', '?', ';', ':']);
        let (mut i, mut at_start, mut sent, mut title) = (0, true, 0, None);
        while i < self.toks.len() {
            if !self.joined(i) {
                (at_start, sent, title) = (true, i, None);
            }
            if let Some(Tk::Sym(c)) = self.kind(i) {
                if let Some(e) = self.citation(i).or_else(|| self.money(i)) {
                    at_start &= c == '[';
                    i = e;
                    continue;
                }
                if ".!?:;…".contains(c) && !self.abbreviation(i) {
                    (at_start, sent, title) = (true, i + 1, None);
                }
                // A quotation starts with a capital like a sentence.
                let opens = i == 0 || !self.gap(i).is_empty() || matches!(self.kind(i - 1), Some(Tk::Sym(_)));
                at_start |= matches!(c, '"' | '“' | '‘') && opens && self.gap(i + 1).is_empty();
                i += 1;
                continue;
            }
            if at_start && (i == 0 || !self.joined(i)) && self.list_marker(i) {
                i += 2;
                continue;
            }
            let next = if self.kind(i) == Some(Tk::Num) && self.s(i).contains(['-', '/']) {
                self.compound(i);
                None
            } else if let Some(e) = self.money(i) {
                Some(e)
            } else if let Some(years) = (self.kind(i) == Some(Tk::Mixed)).then(|| period_years(self.s(i))).flatten() {
                let keys = years.into_iter().map(|y| Key::Date(Ymd { y: Some(y), m: None, d: None })).collect();
                self.push(self.tok_span(i, i + 1), SpecificKind::Date, keys);
                Some(i + 1)
            } else if let Some((ymd, e)) = self.month_first(i) {
                self.push(self.tok_span(i, e), SpecificKind::Date, vec![Key::Date(ymd)]);
                Some(e)
            } else if let Some(p) = self.number(i, at_start) {
                Some(self.finish_number(i, p))
            } else if let Some(day) = self.claim.then(|| self.weekday(i)).flatten() {
                self.push(self.tok_span(i, i + 1), SpecificKind::Date, vec![Key::Weekday(day)]);
                Some(i + 1)
            } else if self.claim {
                // A bare answer's first word is a name; a number word there stays a number.
                self.name(i, at_start && !(bare && i == 0), sent, &mut title)
            } else {
                None
            };
            i = next.unwrap_or(i + 1).max(i + 1);
            at_start = false;
        }
    }

    /// A `.` that follows an abbreviation or an initial does not end a sentence.
    fn abbreviation(&self, i: usize) -> bool {
        if self.s(i) != "." || i == 0 || !self.gap(i).is_empty() || self.kind(i - 1) != Some(Tk::Word) {
            return false;
        }
        let w = self.s(i - 1);
        w.chars().count() == 1 || w.contains('.') || ABBREVIATIONS.contains(&w.to_lowercase().as_str())
    }

    /// `1.` or `2)` opening a line.
    fn list_marker(&self, i: usize) -> bool {
        let s = self.s(i);
        self.kind(i) == Some(Tk::Num)
            && s.len() <= 2
            && s.bytes().all(|b| b.is_ascii_digit())
            && self.gap(i + 1).is_empty()
            && matches!(self.kind(i + 1), Some(Tk::Sym('.' | ')')))
            && !self.gap(i + 2).is_empty()
    }

    /// The token after a citation marker `[1]`, `[1, 2]`, `[1-3]` starting at `i`.
    fn citation(&self, i: usize) -> Option<usize> {
        if self.kind(i) != Some(Tk::Sym('[')) {
            return None;
        }
        let mut k = i + 1;
        while k < self.toks.len().min(i + 16) {
            match self.kind(k)? {
                Tk::Sym(']') => return (k > i + 1).then_some(k + 1),
                Tk::Num | Tk::Sym(',' | ';' | '-' | '–') => k += 1,
                _ => return None,
            }
        }
        None
    }

    /// An amount with its currency before the number: `$1,200`, `€50`, `US$5`, `USD 1,200`.
    fn money(&mut self, i: usize) -> Option<usize> {
        let mut j = i;
        let cur = match self.kind(i)? {
            Tk::Sym(c) => currency_symbol(c)?,
            Tk::Word => {
                let s = self.s(i);
                if matches!(s, "US" | "U.S" | "A" | "C" | "NZ" | "HK" | "S")
                    && self.kind(i + 1) == Some(Tk::Sym('$'))
                    && self.gap(i + 1).is_empty()
                {
                    j = i + 1;
                    "dollar"
                } else if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
                    currency_word(&s.to_ascii_lowercase())?
                } else {
                    return None;
                }
            }
            _ => return None,
        };
        if !self.joined(j + 1) || !matches!(self.kind(j + 1), Some(Tk::Num | Tk::Mixed)) {
            return None;
        }
        let p = self.number(j + 1, false)?;
        let mut end = p.end;
        if let Some((c, e)) = self.currency_after(end) {
            if c == cur {
                end = e;
            }
        }
        let keys = p.vals.iter().filter_map(|&x| val(x)).map(|v| Key::Amount(v, cur)).chain(scaled_keys(&p)).collect();
        self.push(self.tok_span(i, end), SpecificKind::Amount, keys);
        Some(end)
    }

    fn currency_after(&self, j: usize) -> Option<(&'static str, usize)> {
        if let Some(Tk::Sym(c)) = self.kind(j).filter(|_| self.joined(j)) {
            return currency_symbol(c).map(|cur| (cur, j + 1));
        }
        if self.word_is(j, &["us", "u.s"]) && self.word_is(j + 1, &["dollar", "dollars"]) {
            return Some(("dollar", j + 2));
        }
        if self.joined(j) && self.kind(j) == Some(Tk::Word) {
            return currency_word(&self.s(j).to_lowercase()).map(|cur| (cur, j + 1));
        }
        None
    }

    /// A number in digits, with a suffix, or in words, starting at token `i`.
    fn number(&self, i: usize, at_start: bool) -> Option<NumP> {
        let s = self.s(i);
        match self.kind(i)? {
            Tk::Num => {
                if s.contains(['-', '/']) {
                    return None;
                }
                let mut p = NumP::new(0.0, i + 1);
                p.vals = digit_values(s);
                let plain = s.bytes().all(|b| b.is_ascii_digit());
                let digits = |k: usize, n: Range<usize>| {
                    let t = self.s(k);
                    self.kind(k) == Some(Tk::Num) && n.contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
                };
                if plain
                    && s.len() <= 3
                    && matches!(self.gap(i + 1), " " | "\u{a0}" | "\u{202f}")
                    && digits(i + 1, 3..4)
                {
                    // `1 200`
                    p.vals = vec![format!("{s}{}", self.s(i + 1)).parse().ok()?];
                    p.end += 1;
                } else if plain
                    && self.sym(i + 1, ',')
                    && self.gap(i + 1).is_empty()
                    && self.gap(i + 2).is_empty()
                    && digits(i + 2, 1..3)
                {
                    // `9,99`: a decimal comma, or a list without spaces
                    let (a, b) = (s.parse::<f64>().ok()?, self.s(i + 2));
                    p.vals = vec![format!("{s}.{b}").parse().ok()?, a, b.parse().ok()?];
                    p.end += 2;
                } else if plain {
                    let n: u32 = s.parse().unwrap_or(0);
                    p.day = (s.len() <= 2 && (1..=31).contains(&n)).then_some(n as u8);
                    p.year = (s.len() == 4).then_some(n as i32);
                }
                if let Some(m) = self.scale(p.end) {
                    p.scaled = scale_index(m).map(|k| (p.vals.clone(), k));
                    p.vals.iter_mut().for_each(|x| *x *= m);
                    (p.end, p.day, p.year) = (p.end + 1, None, None);
                }
                (!p.vals.is_empty()).then_some(p)
            }
            Tk::Mixed if digit_name(s) => None,
            Tk::Mixed => {
                let digits = s.find(|c: char| !(c.is_ascii_digit() || c == ',' || c == '.')).unwrap_or(s.len());
                let num = s[..digits].trim_end_matches([',', '.']);
                let x: f64 = num.replace(',', "").parse().ok()?;
                let int = num.bytes().all(|b| b.is_ascii_digit());
                let mut p = NumP::new(x, i + 1);
                match s[num.len()..].to_lowercase().as_str() {
                    "st" | "nd" | "rd" | "th" if int => {
                        p.ordinal = true;
                        if (1.0..=31.0).contains(&x) {
                            p.day = Some(x as u8);
                        }
                    }
                    "s" if int && num.len() == 4 => (p.decade, p.year) = (true, Some(x as i32)),
                    "k" => p.vals = vec![x * 1e3],
                    "m" | "mn" => p.vals = vec![x * 1e6, x],
                    "b" | "bn" => p.vals = vec![x * 1e9, x],
                    _ => {}
                }
                Some(p)
            }
            Tk::Word => self.number_words(i, at_start),
            Tk::Sym(_) => None,
        }
    }

    fn scale(&self, j: usize) -> Option<f64> {
        if !self.joined(j) || self.kind(j) != Some(Tk::Word) {
            return None;
        }
        multiplier(&self.s(j).to_lowercase()).filter(|&m| m >= 1e3)
    }

    /// `thirty`, `twenty-five`, `a hundred`, `one hundred and five`, `two dozen`, `thirty-day`.
    fn number_words(&self, i: usize, at_start: bool) -> Option<NumP> {
        let first = self.s(i);
        if self.claim && !at_start && first.starts_with(char::is_uppercase) {
            return None; // `Seven Network` is a name
        }
        let lw = first.to_lowercase();
        if !self.claim {
            if let Some(x) = context_only_number(&lw) {
                let mut p = NumP::new(x, i + 1);
                p.ordinal = lw != "half";
                return Some(p);
            }
        }
        let (mut total, mut cur, mut any, mut j) = (0.0f64, 0.0f64, false, i);
        let article = matches!(lw.as_str(), "a" | "an")
            && self.joined(i + 1)
            && multiplier(&self.s(i + 1).to_lowercase()).is_some();
        if article {
            (cur, any, j) = (1.0, true, i + 1);
        }
        while j < self.toks.len() && (j == i || self.joined(j)) && self.kind(j) == Some(Tk::Word) {
            let w = self.s(j).to_lowercase();
            let next_small = small_number(self.s(j + 1).to_lowercase().split('-').next().unwrap_or("")).is_some();
            if w == "and" && cur >= 100.0 && cur % 100.0 == 0.0 && self.joined(j + 1) && next_small {
                j += 1;
                continue;
            }
            let (mut whole, mut used) = (true, false);
            for part in w.split('-') {
                if let Some(v) = small_number(part) {
                    let r = cur % 100.0;
                    if any && !(r == 0.0 || (r >= 20.0 && r % 10.0 == 0.0 && v < 10.0)) {
                        whole = false;
                        break;
                    }
                    cur += v;
                } else if let Some(m) = multiplier(part).filter(|_| any) {
                    if m < 1e3 {
                        cur = cur.max(1.0) * m;
                    } else {
                        total += cur.max(1.0) * m;
                        cur = 0.0;
                    }
                } else {
                    whole = false;
                    break;
                }
                (any, used) = (true, true);
            }
            if !used {
                break;
            }
            j += 1;
            if !whole {
                break;
            }
        }
        let x = total + cur;
        // A lone "one" or "zero" is rarely a specific ("one of the", "zero-day").
        if !any || (self.claim && !article && j == i + 1 && x <= 1.0) {
            return None;
        }
        Some(NumP::new(x, j))
    }

    /// What a number turns out to be, from what follows it; returns the token after the specific.
    fn finish_number(&mut self, i: usize, p: NumP) -> usize {
        let j = p.end;
        let vals: Vec<Val> = p.vals.iter().filter_map(|&x| val(x)).collect();
        let scaled = scaled_keys(&p);
        let pct_end = if self.sym(j, '%') || self.word_is(j, &["percent", "pct", "percentage"]) {
            Some(j + 1)
        } else if self.word_is(j, &["per"]) && self.word_is(j + 1, &["cent"]) {
            Some(j + 2)
        } else {
            None
        };
        if let Some(e) = pct_end {
            self.push(self.tok_span(i, e), SpecificKind::Percent, vals.into_iter().map(Key::Percent).collect());
            return e;
        }
        if let Some((cur, e)) = self.currency_after(j) {
            let keys = vals.into_iter().map(|v| Key::Amount(v, cur)).chain(scaled).collect();
            self.push(self.tok_span(i, e), SpecificKind::Amount, keys);
            return e;
        }
        if let Some(d) = p.day {
            let k = if self.word_is(j, &["of"]) { j + 1 } else { j };
            if let Some((m, e)) = self.month_at(k, true) {
                let (y, e) = self.year_after(e);
                let ymd = Ymd { y, m: Some(m), d: Some(d) };
                self.push(self.tok_span(i, e), SpecificKind::Date, vec![Key::Date(ymd)]);
                return e;
            }
        }
        if let Some(y) = p.year.filter(|y| p.decade || (1000..=2100).contains(y)) {
            let last = if p.decade { y + 9 } else { y };
            let keys = (y..=last).map(|y| Key::Date(Ymd { y: Some(y), m: None, d: None })).collect();
            self.push(self.tok_span(i, j), SpecificKind::Date, keys);
            return j;
        }
        let mut e = j;
        let mut length = None;
        if self.word_is(e, &["business", "working", "calendar"]) && self.word_is(e + 1, UNITS) {
            // Calendar days are days; business days have no length in calendar time.
            length = self.word_is(e, &["calendar"]).then(|| unit_seconds(self.s(e + 1))).flatten();
            e += 2;
        } else if self.word_is(e, UNITS) {
            length = unit_seconds(self.s(e));
            e += 1;
        }
        if p.ordinal {
            length = None;
        }
        if !(self.claim && self.arithmetic_constant(i, &p)) {
            // Seconds as an i64 (a cast saturates: a length past 292 billion years is read as that).
            let lengths = length.into_iter().flat_map(|per| p.vals.iter().map(move |x| Key::Length((x * f64::from(per)).round() as i64, per)));
            self.push(self.tok_span(i, e), SpecificKind::Number, vals.into_iter().map(Key::Num).chain(scaled).chain(lengths).collect());
        }
        e
    }

    /// A constant of arithmetic in a formula ("× 100", "/ 2", "divided by 365", "multiplied by
    /// 12"): a claim that shows its working writes it, and no source needs to (FinanceBench's
    /// answers flagged "100" 60 times, "2" 24 and "365" 22 in 150 answers before this).
    fn arithmetic_constant(&self, i: usize, p: &NumP) -> bool {
        const CONSTANTS: [f64; 9] = [2.0, 4.0, 7.0, 12.0, 52.0, 100.0, 360.0, 365.0, 1000.0];
        if !(p.vals.len() == 1 && CONSTANTS.contains(&p.vals[0])) || p.scaled.is_some() {
            return false;
        }
        let operator = |k: usize| matches!(self.kind(k), Some(Tk::Sym('×' | '*' | '/' | '÷'))) || self.word_is(k, &["x"]);
        (i > 0 && operator(i - 1))
            || (i > 1 && self.word_is(i - 1, &["by"]) && self.word_is(i - 2, &["multiplied", "divided", "multiply", "divide", "multiplying", "dividing"]))
            || operator(p.end)
    }

    /// A month name at `k` (and its abbreviation's full stop): the month and the token after.
    fn month_at(&self, k: usize, need_joined: bool) -> Option<(u8, usize)> {
        if (need_joined && !self.joined(k)) || self.kind(k) != Some(Tk::Word) {
            return None;
        }
        let (m, abbr) = month_of(self.s(k))?;
        Some((m, if abbr && self.sym(k + 1, '.') { k + 2 } else { k + 1 }))
    }

    fn day_at(&self, j: usize) -> Option<u8> {
        if !self.joined(j) || !matches!(self.kind(j), Some(Tk::Num | Tk::Mixed)) {
            return None;
        }
        let s = self.s(j);
        let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let ok_suffix = matches!(&s[digits..], "" | "st" | "nd" | "rd" | "th");
        let d: u8 = s[..digits].parse().ok()?;
        (ok_suffix && digits <= 2 && (1..=31).contains(&d)).then_some(d)
    }

    /// An optional `, 1879` after a date: the year and the token after it.
    fn year_after(&self, e: usize) -> (Option<i32>, usize) {
        let k = if self.sym(e, ',') { e + 1 } else { e };
        let s = self.s(k);
        if self.joined(k) && self.kind(k) == Some(Tk::Num) && s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) {
            return (s.parse().ok(), k + 1);
        }
        (None, e)
    }

    /// `March 14`, `March 14th, 1879`, `Mar. 14 1879`, `March 1879`.
    fn month_first(&self, i: usize) -> Option<(Ymd, usize)> {
        let (m, j) = self.month_at(i, false)?;
        if let Some(d) = self.day_at(j) {
            let (y, e) = self.year_after(j + 1);
            return Some((Ymd { y, m: Some(m), d: Some(d) }, e));
        }
        let (y, e) = self.year_after(j);
        y.map(|y| (Ymd { y: Some(y), m: Some(m), d: None }, e))
    }

    /// Numbers joined by `-` or `/`: an ISO or slashed date, else each part on its own.
    fn compound(&mut self, i: usize) {
        let s = self.s(i);
        let base = self.toks.get(i).map_or(0, |t| t.span.start);
        let sep = if s.contains('/') { '/' } else { '-' };
        let mut parts = Vec::new();
        let mut off = base;
        for part in s.split(sep) {
            parts.push((off, part));
            off += part.len() + 1;
        }
        let int =
            |p: &str| if p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()) { p.parse::<u32>().ok() } else { None };
        if let [(_, a), (_, b), (_, c)] = parts[..] {
            if let (Some(x), Some(y), Some(z)) = (int(a), int(b), int(c)) {
                let dates: Vec<Ymd> = match (sep, a.len(), c.len()) {
                    ('-' | '/', 4, 1..=2) => valid_ymd(Some(x), y, z).into_iter().collect(),
                    ('/', 1..=2, 4) => valid_ymd(Some(z), y, x).into_iter().chain(valid_ymd(Some(z), x, y)).collect(),
                    _ => Vec::new(),
                };
                if !dates.is_empty() {
                    let span = base..base + s.len();
                    self.push(span, SpecificKind::Date, dates.into_iter().map(Key::Date).collect());
                    return;
                }
            }
        }
        for (start, part) in parts {
            let Some(v) = part.replace(',', "").parse::<f64>().ok().and_then(val) else { continue };
            let span = start..start + part.len();
            match int(part).filter(|y| part.len() == 4 && (1000..=2100).contains(y)) {
                Some(y) => {
                    let ymd = Ymd { y: i32::try_from(y).ok(), m: None, d: None };
                    self.push(span, SpecificKind::Date, vec![Key::Date(ymd)]);
                }
                None => self.push(span, SpecificKind::Number, vec![Key::Num(v)]),
            }
        }
    }

    /// The day of the week named by the word at `i` (a claim's "Sunday", "Mondays").
    fn weekday(&self, i: usize) -> Option<u8> {
        (self.kind(i) == Some(Tk::Word)).then(|| weekday_of(self.s(i), false)).flatten()
    }

    fn cap_word(&self, i: usize) -> bool {
        let s = self.s(i);
        matches!(self.kind(i), Some(Tk::Word | Tk::Mixed))
            && (s.starts_with(char::is_uppercase) || digit_name(s))
            && s.chars().count() >= 2
    }

    fn stop(&self, i: usize) -> bool {
        let w = norm_word(self.s(i));
        STOP.contains(&w.as_str())
            || CALENDAR.contains(&w.as_str())
            || SCALES.contains(&w.as_str())
            || PERIODS.contains(&w.as_str())
    }

    /// A run of capitalised words at `i`; returns the token after it (None when `i` is no name).
    fn name(&mut self, i: usize, at_start: bool, sent: usize, title: &mut Option<bool>) -> Option<usize> {
        if !self.cap_word(i) {
            return None;
        }
        if self.stop(i) {
            return Some(i + 1);
        }
        let (mut words, mut j) = (vec![i], i + 1);
        loop {
            if self.joined(j) && self.cap_word(j) && !self.stop(j) {
                words.push(j);
                j += 1;
            } else if !(at_start && words.len() == 1)
                && self.joined(j)
                && CONNECTORS.contains(&self.s(j))
                && self.joined(j + 1)
                && self.cap_word(j + 1)
                && !self.stop(j + 1)
            {
                words.push(j + 1);
                j += 2;
            } else {
                break;
            }
        }
        // A sentence's first word may be capitalised as such, not as a name; "3M's" is a name.
        if (at_start && words.len() == 1 && !digit_name(self.s(i))) || *title.get_or_insert_with(|| self.is_title(sent)) {
            return Some(j);
        }
        let keys = words.iter().map(|&w| norm_word(self.s(w))).filter(|w| !w.is_empty()).collect();
        let start = self.toks.get(i).map_or(0, |t| t.span.start);
        let last = self.toks.get(j - 1).map_or(start, |t| t.span.start);
        let end = last + strip_possessive(self.s(j - 1)).len();
        self.push(start..end, SpecificKind::Name, vec![Key::Name(keys)]);
        Some(j)
    }

    /// A sentence in title case ("Albert Einstein Was Born In Ulm") capitalises function words at
    /// least as often as it writes long lower-case words.
    fn is_title(&self, sent: usize) -> bool {
        let (mut caps_stop, mut lower, mut first) = (0, 0, true);
        let mut k = sent;
        while k < self.toks.len() && (k == sent || self.joined(k)) {
            match self.kind(k) {
                Some(Tk::Sym(c)) if ".!?:;…".contains(c) && !self.abbreviation(k) => break,
                Some(Tk::Word) => {
                    let s = self.s(k);
                    if s.starts_with(char::is_lowercase) && s.chars().count() >= 4 {
                        lower += 1;
                    } else if !first
                        && s.chars().count() >= 2
                        && s.starts_with(char::is_uppercase)
                        && STOP.contains(&norm_word(s).as_str())
                    {
                        caps_stop += 1;
                    }
                    first = false;
                }
                _ => {}
            }
            k += 1;
        }
        caps_stop >= 1 && lower <= caps_stop
    }
}

/// What the contexts of one call contain, normalised like the claim's specifics.
#[derive(Default)]
struct Index {
    /// Every numeric value (numbers, amounts, percentages, days and years).
    nums: HashSet<Val>,
    /// Values written as plain numbers (and bare years).
    bare: HashSet<Val>,
    amounts: HashSet<(Val, &'static str)>,
    percents: HashSet<Val>,
    full: HashSet<(i32, u8, u8)>,
    month_day: HashSet<(u8, u8)>,
    month_day_no_year: HashSet<(u8, u8)>,
    year_month: HashSet<(i32, u8)>,
    years: HashSet<i32>,
    /// Days of the week named (0 = Monday is bit 0), within a range ("Monday to Friday", "Mon-Fri"),
    /// as weekdays, weekends or every day ("daily", "7 days a week"), or as dates.
    weekdays: u8,
    /// Scale words a context uses ("in millions", "2 billion"), by [`Key::Scaled`]'s numbering.
    scales: u8,
    /// Lengths of time the contexts give, in seconds, with their unit's seconds ([`Key::Length`];
    /// "a day" and "an hour" too).
    lengths: BTreeSet<(i64, u32)>,
    /// Lower-cased words (and the parts of hyphenated ones), sorted for prefix look-ups.
    words: BTreeSet<String>,
    /// Lower-cased words of the user's question (see [`Sources::with_question`]).
    asked: HashSet<String>,
}

/// The words of a text as names compare them ([`norm_word`]).
fn words_of<'a>(text: &'a str, toks: &'a [Tok]) -> impl Iterator<Item = String> + 'a {
    toks.iter().filter(|t| !matches!(t.kind, Tk::Sym(_))).map(|t| norm_word(&text[t.span.clone()]))
}

/// A word and, when hyphenated, its parts ("german-born", "german", "born").
fn with_parts(w: String) -> impl Iterator<Item = String> {
    let parts: Vec<String> =
        if w.contains('-') { w.split('-').filter(|p| !p.is_empty()).map(str::to_string).collect() } else { vec![] };
    std::iter::once(w).chain(parts)
}

impl Index {
    fn add(&mut self, text: &str) {
        let toks = tokenize(text);
        for w in words_of(text, &toks) {
            if let Some(k) = multiplier(w.strip_suffix('s').unwrap_or(&w)).and_then(scale_index) {
                self.scales |= 1 << k;
            }
            self.words.extend(with_parts(w));
        }
        // "a day", "an hour": a length written without a number.
        self.lengths.extend(article_lengths(text, &toks).into_iter().map(|(_, per)| (i64::from(per), per)));
        self.add_weekdays(text, &toks);
        for key in scan_tokens(text, &toks, false).into_iter().flat_map(|f| f.keys) {
            match key {
                Key::Num(v) => {
                    self.nums.insert(v);
                    self.bare.insert(v);
                }
                Key::Amount(v, c) => {
                    self.nums.insert(v);
                    self.amounts.insert((v, c));
                }
                Key::Percent(v) => {
                    self.nums.insert(v);
                    self.percents.insert(v);
                }
                Key::Weekday(d) => self.weekdays |= 1 << d,
                Key::Scaled(..) => {}
                Key::Length(s, per) => {
                    self.lengths.insert((s, per));
                }
                Key::Date(Ymd { y, m, d }) => {
                    if let (Some(y), Some(m), Some(d)) = (y, m, d) {
                        self.weekdays |= 1 << weekday_of_date(y, m, d);
                    }
                    for n in [y, d.map(i32::from)].into_iter().flatten() {
                        self.nums.extend(val(f64::from(n)));
                    }
                    if let (Some(y), None) = (y, m) {
                        self.bare.extend(val(f64::from(y)));
                    }
                    self.years.extend(y);
                    if let (Some(m), Some(d)) = (m, d) {
                        self.month_day.insert((m, d));
                        match y {
                            Some(y) => self.full.insert((y, m, d)),
                            None => self.month_day_no_year.insert((m, d)),
                        };
                    }
                    if let (Some(y), Some(m)) = (y, m) {
                        self.year_month.insert((y, m));
                    }
                }
                Key::Name(_) => {}
            }
        }
    }

    /// Whether the contexts hold `key`; with `asked`, a name's words may come from the question.
    fn supports(&self, key: &Key, asked: bool) -> bool {
        match key {
            Key::Num(v) => self.nums.contains(v),
            Key::Amount(v, c) => self.amounts.contains(&(*v, *c)) || self.bare.contains(v),
            Key::Percent(v) => self.percents.contains(v) || self.bare.contains(v),
            Key::Date(Ymd { y, m, d }) => match (*y, *m, *d) {
                (Some(y), Some(m), Some(d)) => {
                    self.full.contains(&(y, m, d))
                        || (self.month_day_no_year.contains(&(m, d)) && self.years.contains(&y))
                }
                (None, Some(m), Some(d)) => self.month_day.contains(&(m, d)),
                (Some(y), Some(m), None) => self.year_month.contains(&(y, m)),
                (Some(y), None, None) => {
                    self.years.contains(&y) || val(f64::from(y)).is_some_and(|v| self.nums.contains(&v))
                }
                _ => true,
            },
            Key::Weekday(d) => self.weekdays & (1 << d) != 0,
            Key::Scaled(v, k) => self.scales & (1 << k) != 0 && self.nums.contains(v),
            Key::Length(s, per) => {
                let x = *s as f64;
                let (lo, hi) = ((x * 0.98).floor() as i64, (x / 0.98).ceil() as i64);
                self.lengths.range((lo, 0)..=(hi, u32::MAX)).any(|&(l, p)| same_length_in(x, *per, l as f64, p))
            }
            Key::Name(words) => words.iter().all(|w| self.word_ok(w) || (asked && self.asked.contains(w))),
        }
    }

    /// The days of the week a context names, alone or in ranges; see [`Index::weekdays`].
    fn add_weekdays(&mut self, text: &str, toks: &[Tok]) {
        const EVERY_DAY: u8 = 0x7f;
        let word = |k: usize| toks.get(k).filter(|t| !matches!(t.kind, Tk::Sym(_))).map(|t| &text[t.span.clone()]);
        let lower = |k: usize| word(k).map(str::to_lowercase);
        let day = |k: usize| word(k).and_then(|w| weekday_of(w.trim_end_matches('.'), true));
        let is = |k: usize, words: &[&str]| lower(k).is_some_and(|w| words.contains(&w.as_str()));
        let sym = |k: usize| match toks.get(k).map(|t| t.kind) {
            Some(Tk::Sym(c)) => Some(c),
            _ => None,
        };
        for k in 0..toks.len() {
            if let Some(w) = word(k).filter(|w| w.contains('-')) {
                let parts: Vec<Option<u8>> = w.split('-').map(|p| weekday_of(p, true)).collect();
                if let [Some(a), Some(b)] = parts[..] {
                    self.weekdays |= weekday_range(a, b);
                }
            }
            if is(k, &["weekday", "weekdays"]) {
                self.weekdays |= weekday_range(0, 4);
            }
            if is(k, &["weekend", "weekends"]) {
                self.weekdays |= weekday_range(5, 6);
            }
            if is(k, &["daily", "everyday"]) || (is(k, &["every"]) && is(k + 1, &["day"])) || (is(k, &["days"]) && is(k + 1, &["a", "per"]) && is(k + 2, &["week"])) {
                self.weekdays |= EVERY_DAY;
            }
            let Some(a) = day(k) else { continue };
            self.weekdays |= 1 << a;
            // "Monday to Friday", "Mon - Fri", "Monday through Friday", "between Monday and Friday".
            let between = k > 0 && is(k - 1, &["between"]);
            let joins = is(k + 1, &["to", "through", "thru", "until", "till"])
                || matches!(sym(k + 1), Some('-' | '–' | '—'))
                || (between && is(k + 1, &["and"]));
            if let (true, Some(b)) = (joins, day(k + 2)) {
                self.weekdays |= weekday_range(a, b);
            }
        }
    }

    fn has_prefix(&self, p: &str) -> bool {
        self.words.range::<str, _>((Bound::Included(p), Bound::Unbounded)).next().is_some_and(|w| w.starts_with(p))
    }

    /// Whether a (normalised) word of a name occurs in the contexts; see the module docs.
    fn word_ok(&self, w: &str) -> bool {
        if self.words.contains(w) {
            return true;
        }
        if w.chars().any(|c| c.is_ascii_digit()) {
            return false;
        }
        if w.contains('-') {
            return w.split('-').all(|p| !p.is_empty() && self.word_ok(p));
        }
        if !w.chars().all(char::is_alphabetic) {
            return false;
        }
        if DEMONYMS
            .iter()
            .any(|(a, b)| (w == *a && self.has_prefix(b)) || (w.starts_with(b) && self.words.contains(*a)))
        {
            return true;
        }
        let n = w.chars().count();
        let k = n.saturating_sub(2).max(4);
        n >= 4 && self.has_prefix(&w[..w.char_indices().nth(k).map_or(w.len(), |(b, _)| b)])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bare_answer_is_read_as_a_name() {
        let ctx = ["Canberra is the capital city of Australia."];
        let sources = Sources::new(&ctx);
        let names = |claim: &str| sources.unsupported_as(claim, true).into_iter().map(|f| f.text).collect::<Vec<_>>();
        assert_eq!(names("Sydney"), ["Sydney"]);
        assert_eq!(names("Sydney."), ["Sydney"]);
        assert!(names("Canberra.").is_empty());
        assert!(names("Yes").is_empty() && names("No.").is_empty());
        // A claim that is not a bare answer: its first word is not a name; a number word stays one.
        assert!(sources.unsupported("Prices vary widely.").is_empty());
        assert_eq!(sources.unsupported_as("Seven.", true).len(), 1, "a number not in the context");
        assert!(Sources::new(&["It takes 7 days."]).unsupported_as("Seven.", true).is_empty(), "seven = 7");
    }

    use super::*;

    fn flagged(claim: &str, context: &str) -> Vec<String> {
        unsupported_specifics(claim, &[context]).into_iter().map(|s| s.text).collect()
    }

    fn supported(claim: &str, context: &str) {
        assert_eq!(flagged(claim, context), Vec::<String>::new(), "{claim:?} vs {context:?}");
    }

    #[test]
    fn days_of_the_week_need_a_source_that_names_or_spans_them() {
        let ctx = "The office is open Monday to Friday, 9 a.m. to 5 p.m., and closed on weekends.";
        assert_eq!(flagged("The office is open on Sunday and Monday.", "The office is open on Tuesday."), ["Sunday", "Monday"]);
        supported("The office is open on Wednesdays.", ctx);
        supported("It is closed on Saturday.", ctx);
        supported("The shop opens on Thursday.", "Hours: Mon-Fri 9-5.");
        supported("The shop opens on Sunday.", "Hours: Fri – Mon, 10-4.");
        supported("Deliveries arrive on Tuesday.", "Deliveries arrive between Monday and Friday.");
        supported("The clinic is open on Sunday.", "The clinic is open 7 days a week.");
        supported("The clinic is open on Sunday.", "The clinic is open daily.");
        supported("Monday's meeting was moved.", "The meeting on Mon. was moved.");
        // 14 March 1879 was a Friday; 1 January 2000 a Saturday.
        supported("Einstein was born on a Friday.", "Albert Einstein (born 14 March 1879) was a physicist.");
        supported("The year 2000 began on Saturday.", "It began on 1 January 2000.");
        assert_eq!(flagged("Einstein was born on a Sunday.", "Albert Einstein was born on 14 March 1879."), ["Sunday"]);
        // A day is looked up, not judged: "closed on weekends" names Sunday, and the NLI verdict
        // reads what the context says of it.
        supported("The office is open on Sunday.", ctx);
        assert_eq!(flagged("The office is open on Sunday.", "Open Monday to Friday, 9 a.m. to 5 p.m."), ["Sunday"]);
        assert_eq!(kinds("We met on Sunday."), [("Sunday".to_string(), SpecificKind::Date)]);
        // Lower case, and a word that only starts like a day, are not days.
        assert!(kinds("We met on a sunny day.").is_empty());
        assert!(flagged("The meeting is on sunday.", "The meeting is on Monday.").is_empty());
    }

    #[test]
    fn financial_tables_and_periods() {
        // FinanceBench: a cash-flow table "(Millions)" holds 1,577; the answer says "$1,577 million".
        let table = "3M Company and Subsidiaries\nYears ended December 31 (Millions) 2018 2017\nPurchases of property, plant and equipment (PP&E) (1,577) (1,373)";
        supported("Therefore, the FY2018 capital expenditure amount for 3M was $1,577 million USD.", table);
        supported("Capital expenditure was 1,577 million dollars in fiscal 2018.", table);
        supported("In FY18 capex rose; Q3 and YTD figures were not given.", table);
        assert_eq!(flagged("Capital expenditure was $1,600 million in FY2018.", table), ["$1,600 million"]);
        assert_eq!(flagged("The FY2016 capital expenditure was $1,577 million.", table), ["FY2016"]);
        // A mantissa in a context that speaks in another scale does not support it.
        assert_eq!(flagged("The app has 1.5 million users.", "The app has 1.5 billion users."), ["1.5 million"]);
        assert_eq!(flagged("The app has 1.5 million users.", "The app has 1.5 users per household."), ["1.5 million"]);
        assert_eq!(kinds("Revenue in FY2018 grew."), [("FY2018".to_string(), SpecificKind::Date)]);
        assert!(kinds("FY revenue grew in Q3.").is_empty());
        // The constants of a formula are no specifics; a figure in it is.
        let ctx = "Operating income 2,500; revenue 10,000.";
        supported("Operating margin = (Operating income / Revenue) × 100 = 2,500 / 10,000 × 100 = 25%.", "Operating income 2,500; revenue 10,000; margin 25%.");
        supported("Average inventory is (1,200 + 1,000) / 2, divided by 365 days.", "Inventory 1,200 and 1,000.");
        assert_eq!(flagged("The margin is 2,500 / 12,000 × 100.", ctx), ["12,000"]);
        assert_eq!(flagged("The company has 100 stores.", ctx), ["100"]);
    }

    #[test]
    fn the_questions_names_are_known_but_not_its_figures() {
        let page = "Consolidated Statements of Operations (Dollars in millions) Years ended December 31, 2018 Total revenues 101,127";
        let sources = Sources::new(&[page]).with_question(Some("What is Boeing's FY2018 total revenue (in USD millions)?"));
        let flagged = |claim: &str| sources.unsupported(claim).into_iter().map(|f| f.text).collect::<Vec<_>>();
        assert!(flagged("Boeing's total revenue in FY2018 was $101,127 million.").is_empty());
        assert_eq!(flagged("The revenue of Airbus was $101,127 million."), ["Airbus"]);
        let sources = Sources::new(&["Refunds are accepted within 30 days."]).with_question(Some("Is the refund window 60 days?"));
        assert_eq!(sources.unsupported("Yes, the refund window is 60 days.").into_iter().map(|f| f.text).collect::<Vec<_>>(), ["60 days"]);
        assert_eq!(Sources::new(&[page]).unsupported("The revenue of Boeing was $101,127 million.").len(), 1);
        // A bare answer picks among the question's names: they do not support it.
        let sources = Sources::new(&["Airbus was founded in 1970."]).with_question(Some("Which was founded first, Boeing or Airbus?"));
        assert_eq!(sources.unsupported_as("Boeing", true).into_iter().map(|f| f.text).collect::<Vec<_>>(), ["Boeing"]);
        assert!(sources.unsupported_as("Airbus", true).is_empty());
    }

    #[test]
    fn specifics_on_random_text_keep_their_spans() {
        use crate::text::testing::Rng;
        const PIECES: &[&str] = &[
            "FY2018", "FY18", "Q3'21", "Q4", " ", "Sunday", "Sundays", "Mon-Fri", "Fri – Mon", "weekends", "daily", "1,577", " million",
            " (Millions)", "$", "× 100", "/ 2", "divided by 365", "\u{212a}", "\u{130}", "日本", "🙂", ". ", "Boeing", "'s", "-", "–", "7 days a week",
            "between ", " and ", "14 March 1879", "1.5 billion",
        ];
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let text = |rng: &mut Rng| -> String { (0..rng.below(14)).map(|_| PIECES[rng.below(PIECES.len())]).collect() };
        for _ in 0..3000 {
            let (ctx, q, claim) = (text(&mut rng), text(&mut rng), text(&mut rng));
            for f in Sources::new(&[&ctx]).with_question(Some(&q)).unsupported(&claim) {
                assert_eq!(claim.get(f.span.clone()), Some(f.text.as_str()), "{claim:?} against {ctx:?}");
            }
            // A claim is always supported by itself as its context.
            assert!(Sources::new(&[&claim]).unsupported(&claim).is_empty(), "{claim:?} is not supported by itself");
        }
    }

    #[test]
    fn weekday_arithmetic() {
        assert_eq!(weekday_of_date(1879, 3, 14), 4);
        assert_eq!(weekday_of_date(2000, 1, 1), 5);
        assert_eq!(weekday_of_date(2026, 12, 1), 1);
        assert_eq!(weekday_of_date(2024, 2, 29), 3);
        assert_eq!(weekday_range(0, 4), 0b0011111);
        assert_eq!(weekday_range(4, 0), 0b1110001);
        assert_eq!(weekday_range(3, 3), 0b0001000);
        assert_eq!(weekday_of("Thurs", true), Some(3));
        assert_eq!(weekday_of("Thurs", false), None);
        assert_eq!(weekday_of("Sundays", false), Some(6));
    }

    fn kinds(text: &str) -> Vec<(String, SpecificKind)> {
        extract(text).into_iter().map(|s| (s.text, s.kind)).collect()
    }

    #[test]
    fn temperature_scales_are_units_not_names() {
        // A user's trial: "100 degrees Celsius." to the boiling point, against "100 °C (212 °F)",
        // was vetoed for the name "Celsius" in no source.
        supported("Water boils at 100 degrees Celsius.", "At sea level, pure water boils at 100 °C (212 °F).");
        supported("It was 300 Kelvin.", "The sample was held at 300 K.");
        let s = unsupported_specifics("Water boils at 90 degrees Celsius.", &["At sea level, pure water boils at 100 °C (212 °F)."]);
        assert_eq!((s.len(), s[0].text.as_str(), s[0].kind), (1, "90", SpecificKind::Number), "{s:?}");
    }

    #[test]
    fn the_issue_cases() {
        supported(
            "Refunds are accepted within 30 days of delivery.",
            "Returns: within thirty days of delivery, no questions.",
        );
        let s = unsupported_specifics("Refunds are accepted within 60 days.", &["within 30 days"]);
        assert_eq!((s.len(), s[0].text.as_str(), s[0].kind), (1, "60 days", SpecificKind::Number));
        supported("The fee is $1,200.", "There is a fee of 1200 dollars.");
        let s = unsupported_specifics("The fee is $1,200.", &["There is a fee of 1300 dollars."]);
        assert_eq!((s.len(), s[0].text.as_str(), s[0].kind), (1, "$1,200", SpecificKind::Amount));
        let ctx = "Albert Einstein (born 14 March 1879) was a German-born theoretical physicist.";
        supported("Einstein was born in Germany on 14th March 1879.", ctx);
        let s = unsupported_specifics("Einstein was born in Germany on 20th March 1879.", &[ctx]);
        assert_eq!((s.len(), s[0].text.as_str(), s[0].kind), (1, "20th March 1879", SpecificKind::Date));
        let s = unsupported_specifics(
            "The company is headquartered in Los Angeles, California.",
            &["Offices in San Diego, California."],
        );
        assert_eq!((s.len(), s[0].text.as_str(), s[0].kind), (1, "Los Angeles", SpecificKind::Name));
    }

    #[test]
    fn number_words_and_separators() {
        supported("It took thirty days.", "It took 30 days.");
        supported("It took 30 days.", "It took thirty days.");
        supported("It took twenty-five days.", "It took 25 days.");
        supported("It took 25 days.", "It took twenty five days.");
        supported("They hired a hundred people.", "They hired 100 people.");
        supported("They hired 100 people.", "They hired one hundred people.");
        supported("They hired 105 people.", "They hired one hundred and five people.");
        supported("They sold 1,200 units.", "They sold 1200 units.");
        supported("They sold 1 200 units.", "They sold 1,200 units.");
        supported("They sold 1200 units.", "They sold 1 200 units.");
        supported("They sold 1.5 million units.", "They sold 1,500,000 units.");
        supported("They sold 1,500,000 units.", "They sold 1.5 million units.");
        supported("They sold 5k units.", "They sold 5,000 units.");
        supported("They sold 24 units.", "They sold two dozen units.");
        supported("The dose is 0.5 mg.", "The dose is .5 mg.");
        supported("The dose is .5 mg.", "The dose is 0.5 mg.");
        supported("The dose is 0.5 mg.", "Take half a tablet.");
        supported("The score is 3.0 points.", "The score is 3 points.");
        supported("It has 5,000 seats.", "It has 5000 seats.");
        supported("It has 1,200 seats.", "Es hat 1.200 Sitze.");
        supported("It has 2.5 acres.", "Es hat 2,5 Hektar.");
        supported("Python 3.12 came out.", "Python 3.12.0 came out.");
        assert_eq!(flagged("They sold 1,300 units.", "They sold 1,200 units."), ["1,300"]);
        assert_eq!(flagged("It took thirty-one days.", "It took 30 days."), ["thirty-one days"]);
        assert_eq!(kinds("one of the two shops"), [("two".to_string(), SpecificKind::Number)]);
    }

    #[test]
    fn lengths_of_time_in_any_unit() {
        supported("The warranty lasts 2 years.", "The warranty lasts 24 months.");
        supported("The warranty lasts 24 months.", "The warranty lasts two years.");
        supported("Support replies within 24 hours.", "Support replies within one day.");
        supported("Support replies within 24 hours.", "Support replies within a day.");
        supported("Returns are accepted within 2 weeks.", "Returns are accepted within 14 days.");
        supported("It was founded three decades ago.", "It was founded 30 years ago.");
        supported("The call lasts 90 minutes.", "The call lasts 1.5 hours.");
        // A month is a twelfth of a year: 30.4 days, within 2% of 30.
        supported("Refunds are accepted within 30 days.", "Refunds are accepted within one month.");
        assert_eq!(flagged("The warranty lasts 3 years.", "The warranty lasts 24 months."), ["3 years"]);
        assert_eq!(flagged("Refunds are accepted within 4 weeks.", "Refunds are accepted within one month."), ["4 weeks"]);
        // Business days and nights have no length in calendar time.
        assert_eq!(flagged("Shipping takes 14 business days.", "Shipping takes 2 weeks."), ["14 business days"]);
        assert_eq!(flagged("The package includes 7 nights.", "The package includes one week."), ["7 nights"]);
        // "a" before a unit gives a length, not a number: "a day" is not "1".
        assert_eq!(flagged("It has 1 pool.", "It opens once a day."), ["1"]);
    }

    #[test]
    fn lengths_are_written_as_the_sources_write_them() {
        let sources = Lengths::new(&["All laptops carry a warranty of 24 months.", "Support replies within a day. Returns: 30 days. Repairs take one week."]);
        assert_eq!(sources.in_source_units("Repairs take 7 days.").as_deref(), Some("Repairs take one week."));
        assert_eq!(sources.in_source_units("The warranty lasts 2 years.").as_deref(), Some("The warranty lasts 24 months."));
        assert_eq!(sources.in_source_units("It lasts two years, and support replies within 24 hours.").as_deref(), Some("It lasts 24 months, and support replies within a day."));
        // Written as a source writes it, or given by none, or not a length: as it is.
        assert_eq!(sources.in_source_units("Returns are accepted for 30 days."), None);
        assert_eq!(sources.in_source_units("The warranty lasts 3 years."), None);
        assert_eq!(sources.in_source_units("It costs 24 dollars."), None);
        assert_eq!(sources.in_source_units("Returns are accepted for 1 month.").as_deref(), Some("Returns are accepted for 30 days."), "30.4 days");
        assert!(Lengths::any_in("It took 3 weeks.") && !Lengths::any_in("It took a week.") && !Lengths::any_in("It took 3 turns."));
        // A review's cases: in one unit, lengths are equal or not ("51 weeks" was read as "52
        // weeks", 2% apart, and then as that sentence word for word); a range's end, a rate and an
        // ordinal stay as written; a rate is no length a context gives.
        let weeks = Lengths::new(&["The trial lasted 52 weeks."]);
        assert_eq!(weeks.in_source_units("The trial lasted 51 weeks."), None);
        assert_eq!(flagged("The trial lasted 51 weeks.", "The trial lasted 52 weeks."), ["51 weeks"]);
        assert_eq!(Lengths::new(&["Delivery is within 14 days."]).in_source_units("Delivery takes 1 to 2 weeks."), None);
        let rates = Lengths::new(&["We reply within one day and ship within a week. Take it twice a day."]);
        assert_eq!(rates.in_source_units("Support is available 24 hours a day, 7 days a week."), None);
        assert_eq!(rates.in_source_units("Take it every 12 hours."), None);
        assert_eq!(Lengths::new(&["Take it twice a day."]).in_source_units("It ships in 24 hours."), None, "twice a day is no length");
        let first = Lengths::new(&["During the first year, repairs are free. The warranty lasts 12 months."]);
        assert_eq!(first.in_source_units("The warranty lasts 1 year.").as_deref(), Some("The warranty lasts 12 months."));
        assert!(!Lengths::any_in("Tuition rises in the 2nd year."));
        assert_eq!(flagged("It took 1 second.", "Get a second opinion."), ["1 second"]);
        supported("It took 1 second.", "It took a second.");
        supported("Refunds take 10 calendar days.", "Refunds take ten days.");
    }

    #[test]
    fn money() {
        for ctx in ["1200 dollars", "USD 1,200", "1,200 USD", "US$1,200", "$1.2k", "1,200 US dollars"] {
            supported("The fee is $1,200.", &format!("The fee is {ctx}."));
        }
        supported("The fee is $1.2k.", "The fee is $1,200.");
        supported("It costs €50.", "It costs 50 euros.");
        supported("It costs 50 euros.", "It costs €50.");
        supported("It raised $1.5 million.", "It raised $1,500,000.");
        supported("It costs €9.99 a month.", "Ab 9,99 € pro Monat.");
        assert_eq!(flagged("The fee is $1,300.", "The fee is $1,200."), ["$1,300"]);
        assert_eq!(flagged("The fee is $1,200.", "The fee is €1,200."), ["$1,200"]);
        assert_eq!(kinds("It costs 50 €."), [("50 €".to_string(), SpecificKind::Amount)]);
    }

    #[test]
    fn percentages() {
        for ctx in ["25%", "25 percent", "25 per cent", "25 %"] {
            supported("Sales rose 25%.", &format!("Sales rose {ctx} last year."));
        }
        supported("Sales rose 25 per cent.", "Sales rose 25%.");
        let s = unsupported_specifics("Sales rose 30%.", &["Sales rose 25%."]);
        assert_eq!((s[0].text.as_str(), s[0].kind), ("30%", SpecificKind::Percent));
    }

    #[test]
    fn dates_in_any_format() {
        let forms = [
            "14 March 1879",
            "March 14, 1879",
            "14th March 1879",
            "1879-03-14",
            "March 14th, 1879",
            "14th of March, 1879",
            "Mar. 14, 1879",
            "14/03/1879",
        ];
        for a in forms {
            assert_eq!(kinds(&format!("It was on {a}.")), [(a.to_string(), SpecificKind::Date)]);
            for b in forms {
                supported(&format!("He was born on {a}."), &format!("Born {b} in Ulm."));
            }
        }
        assert_eq!(flagged("He was born on 15 March 1879.", "He was born on 14 March 1879."), ["15 March 1879"]);
        assert_eq!(flagged("He was born on 14 March 1880.", "He was born on 14 March 1879."), ["14 March 1880"]);
        supported("He was born in 1879.", "He was born on 14 March 1879.");
        assert_eq!(flagged("He was born in 1880.", "He was born on 14 March 1879."), ["1880"]);
        supported("The deadline is March 14.", "The deadline was 14 March 1879.");
        assert_eq!(flagged("The deadline is March 15.", "The deadline was 14 March 1879."), ["March 15"]);
        supported("He was born on 14 March 1879.", "On March 14 of that year, 1879, he was born.");
        supported("It happened in March 1879.", "It happened on 3 March 1879.");
        supported("It peaked in the 1990s.", "It peaked in 1995.");
        assert!(kinds("In March the shops close; May be.").is_empty(), "lone months are not specifics");
    }

    #[test]
    fn ordinals_raise_no_false_alarm() {
        supported("She won the 1st prize.", "She won the first prize.");
        supported("She won first prize.", "She won a prize.");
        supported("It is the 2nd edition.", "It is the second edition.");
    }

    #[test]
    fn names() {
        supported("He met Albert Einstein in Berlin.", "Einstein, whose first name was Albert, lived in Berlin.");
        assert_eq!(flagged("He met Albert Einstein in Berlin.", "Einstein lived in Berlin."), ["Albert Einstein"]);
        supported("This was Einstein's theory.", "Einstein proposed the theory.");
        assert_eq!(flagged("This was Einstein's theory.", "Bohr proposed it."), ["Einstein"]);
        supported("She studied at the University of California.", "The University of California has ten campuses.");
        supported("She joined SM Entertainment in 2005.", "In 2005 she signed with SM Entertainment.");
        supported("The wine is from France.", "A French wine.");
        supported("He moved to Italy.", "An Italian painter.");
        // The first word of a sentence, function words, and words after a colon are not names.
        assert!(kinds("Refunds are quick. However it rains. Note: Shipping is free.").is_empty());
        assert_eq!(kinds("In Germany it rains.")[0].0, "Germany");
        assert_eq!(kinds("Los Angeles is large.")[0].0, "Los Angeles");
        // A title-case sentence is not read for names.
        assert!(kinds("Albert Einstein Was Born In Ulm").is_empty());
        assert!(kinds("The policy says \"Returns are free\" to “Members only”.").is_empty());
        assert_eq!(kinds("Albert Einstein met Niels Bohr in Copenhagen.").len(), 3);
    }

    #[test]
    fn names_written_with_digits() {
        // FinanceBench: "3M's" was read as the number 3 and flagged against a filing page that
        // never names the company; with the question, the name is the user's word.
        assert_eq!(kinds("3M's revenue grew to $34 billion."), [("3M".to_string(), SpecificKind::Name), ("$34 billion".to_string(), SpecificKind::Amount)]);
        let page = "Total net sales were $34.2 billion in 2022.";
        assert_eq!(flagged("3M's net sales were $34.2 billion.", page), ["3M"]);
        let with_question = Sources::new(&[page]).with_question(Some("What were 3M's net sales in FY2022?"));
        assert!(with_question.unsupported("3M's net sales were $34.2 billion.").is_empty());
        supported("3M's net sales were $34.2 billion.", "3M reported net sales of $34.2 billion.");
        // A number with a unit or a scale stays a number.
        assert_eq!(kinds("It weighs 30mg."), [("30mg".to_string(), SpecificKind::Number)]);
        assert_eq!(flagged("They raised 3M dollars.", "They raised $2 million."), ["3M dollars"]);
    }

    #[test]
    fn ids_and_citations() {
        supported("Cases of COVID-19 rose in 2020.", "covid-19 cases rose in 2020.");
        assert_eq!(flagged("OpenAI released GPT-4 in 2023.", "OpenAI released GPT-3 in 2020."), ["GPT-4", "2023"]);
        supported("The firm sells B2B software.", "A B2B vendor.");
        assert!(kinds("It is a B2B firm fighting covid-19 with gpt-4.").iter().all(|(_, k)| *k == SpecificKind::Name));
        assert_eq!(
            kinds("Refunds take 30 days [1][2, 3]. Done [4-5]."),
            [("30 days".to_string(), SpecificKind::Number)]
        );
        supported("Refunds take 30 days [7].", "Refunds take 30 days.");
        assert!(kinds("1. Refunds are fast.\n2) Shipping is free.").is_empty());
    }

    #[test]
    fn kinds_of_a_sentence() {
        let k = kinds("In 2020, revenue grew 25% to $1.2 million, said John Smith on March 3.");
        let expect = [
            ("2020", SpecificKind::Date),
            ("25%", SpecificKind::Percent),
            ("$1.2 million", SpecificKind::Amount),
            ("John Smith", SpecificKind::Name),
            ("March 3", SpecificKind::Date),
        ];
        assert_eq!(k, expect.map(|(t, k)| (t.to_string(), k)));
        assert_eq!(
            kinds("Delivery takes 5 to 7 business days.").iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
            ["5", "7 business days"]
        );
    }

    fn check_spans(text: &str, found: &[Specific]) {
        for s in found {
            assert!(s.span.start <= s.span.end && s.span.end <= text.len(), "{text:?} {s:?}");
            assert!(text.is_char_boundary(s.span.start) && text.is_char_boundary(s.span.end), "{text:?} {s:?}");
            assert_eq!(&text[s.span.clone()], s.text);
        }
    }

    #[test]
    fn unicode_text() {
        let text =
            "The café in Zürich charges €50 for 日本茶 😀 and Zoë’s cake costs $5.50, said Jose\u{301} Nin\u{303}o.";
        let found = extract(text);
        check_spans(text, &found);
        let names: Vec<&str> = found.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(names, ["Zürich", "€50", "Zoë", "$5.50", "Jose\u{301} Nin\u{303}o"]);
        supported(text, text);
    }

    #[test]
    fn never_panics_on_random_text() {
        const PIECES: &[&str] = &[
            "a", "Z", "1", "0", "9", "31", "2020", ",", ".", "-", "/", "'", "’", "$", "€", "%", " ", " ", "\n", "[",
            "]", ":", "é", "e\u{301}", "😀", "👍🏽", "中", "日本", "March", "May", "Einstein", "thirty", "-five",
            "hundred", "a", "1,200", "14th", "of", "US", "COVID-19", "\u{2011}", "\u{a0}", "\u{202f}", "?", "١٢٣", "Ⅻ",
            "İ", "ß", "per", "cent", "k", "bn", "s", "th", "and", "The", "\u{200d}", "\u{fe0f}", "¥", "£", ".5",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let mut make =
                || (0..next() % 40).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect::<String>();
            let (claim, context) = (make(), make());
            check_spans(&claim, &extract(&claim));
            check_spans(&claim, &unsupported_specifics(&claim, &[&context, &claim]));
            assert_eq!(unsupported_specifics(&claim, &[&claim]), [], "{claim:?} is its own source");
        }
    }

    #[test]
    fn long_contexts_are_indexed_once() {
        let page = "On 3 March 2021 the firm sold 1,200 units for $4.5 million to Acme Corp in Los Angeles. ";
        let context = page.repeat(20_000); // about 1.8 MB
        supported("Acme Corp paid $4.5 million on March 3, 2021 in Los Angeles.", &context);
        assert_eq!(flagged("Acme Corp paid $4.6 million.", &context), ["$4.6 million"]);
    }
}

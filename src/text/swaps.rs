//! A name put in another's place: a claim that repeats a context sentence's words in order, but
//! with one name where the sentence has another ("Croatia won the 2018 World Cup." against "France
//! won the 2018 World Cup, defeating Croatia 4-2 in the final.").
//!
//! Such a claim copies its source so closely that a small NLI model reads it as entailed (the
//! default model supported that one at 0.81), and the specifics check finds nothing, since every
//! name of it is in the source. A reader sees at once that the sentence says it of someone else:
//! the support grader labels such a claim `contradicted`, with the sentence and its name beside it.
//!
//! **Approach.** Words are compared as the verbatim rule compares them (lower-case runs of letters
//! and digits). A name is a run of capitalised words that are not function words, titles ("Mr",
//! "Dr"), months or weekdays, each word joined to the next by one space; a single capitalised word
//! starting the claim is a name only where the context writes it capitalised inside a sentence
//! ("Croatia", not "Firm also said ..."). The claim is read as the words before one of its names,
//! the name, and the words after it; a context sentence swaps the name when it holds those same
//! words before and after another name, in order and next to it, and:
//! - the words before and after are at least three, two of them content words;
//! - with no words before, the sentence's name starts the sentence ("Keith won" in "... her husband
//!   Keith won" is no sentence about Keith alone);
//! - with no words after, the claim's name does not follow within three words ("Sevilla midfielder
//!   Stephane Mbia" is no swap of "Stephane Mbia");
//! - the two names are not one name written two ways: they share a word ("Mr Clegg", "Nick
//!   Clegg"), a word's first four letters ("Brits", "Britons"; "Brookes", "Brooke"), one is the
//!   initials of the other ("RBS", "Royal Bank of Scotland"), or each word of one begins the
//!   other's ("Lib Dems", "Liberal Democrats");
//! - no sentence of any context states the claim with its own name (then the claim is stated).
//!
//! It prefers missing a swap to a false alarm: aliases it cannot see ("Catalans" for "Barcelona",
//! "F1" for "Formula One") are the false alarms left. On the labelled sets, before the model read
//! them (a prototype of these rules over every row): HaluEval dialogue 73 responses people marked
//! unsupported and 1 supported, HaluEval QA 23 and 0, HaluEval summarization 1 and 5 (of 19,962:
//! the aliases above), Factcheck-GPT none.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use super::words::{is_content_word, plain_words_at};

/// Capitalised words that are never names (compared lower-case): function words, pronouns,
/// titles, months and weekdays.
const NOT_NAMES: &[&str] = &[
    "a", "an", "the", "of", "in", "on", "at", "to", "by", "as", "is", "it", "its", "he", "she", "we", "i", "you", "they", "his", "her",
    "their", "our", "my", "your", "this", "that", "these", "those", "there", "here", "and", "or", "but", "if", "so", "for", "with",
    "from", "after", "before", "when", "while", "yes", "no", "not", "mr", "mrs", "ms", "miss", "dr", "prof", "sir", "gov", "sen",
    "rep", "st", "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
];

/// A text's words as read here: lower-case, with their byte ranges and whether each is capitalised
/// and may be part of a name.
struct Words {
    lower: Vec<String>,
    spans: Vec<Range<usize>>,
    capitalised: Vec<bool>,
}

impl Words {
    fn of(text: &str, offset: usize) -> Self {
        let found = plain_words_at(text);
        let capitalised = found
            .iter()
            .map(|(w, r)| text[r.clone()].chars().next().is_some_and(char::is_uppercase) && !NOT_NAMES.contains(&w.as_str()))
            .collect();
        let (lower, spans) = found.into_iter().map(|(w, r)| (w, r.start + offset..r.end + offset)).unzip();
        Words { lower, spans, capitalised }
    }

    /// The runs of name words (word index ranges), each word joined to the next by one space in
    /// `text` (the text these words' spans index).
    fn names(&self, text: &str) -> Vec<Range<usize>> {
        let mut runs = vec![];
        let mut k = 0;
        while k < self.lower.len() {
            if !self.capitalised[k] {
                k += 1;
                continue;
            }
            let start = k;
            while k + 1 < self.lower.len() && self.capitalised[k + 1] && text.get(self.spans[k].end..self.spans[k + 1].start) == Some(" ") {
                k += 1;
            }
            k += 1;
            runs.push(start..k);
        }
        runs
    }
}

/// One context sentence's words and names.
struct Sentence {
    range: Range<usize>,
    words: Words,
    names: Vec<Range<usize>>,
}

/// A context's sentences indexed by the words next to their names.
#[derive(Default)]
pub struct Index {
    sentences: Vec<Sentence>,
    /// The word after a name, to (sentence, name) pairs.
    after: HashMap<String, Vec<(usize, usize)>>,
    /// The word before a name, to (sentence, name) pairs.
    before: HashMap<String, Vec<(usize, usize)>>,
    /// Words written capitalised inside a sentence (not its first word), lower-case.
    inside: HashSet<String>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("sentences", &self.sentences.len()).finish()
    }
}

/// How a context's sentences read a claim with one name in another's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// No sentence repeats the claim's words around a name.
    Neither,
    /// A sentence states it with the claim's own name (or the same name written otherwise).
    Stated,
    /// The first sentence that has another name in the claim's name's place.
    Swapped(Swap),
}

/// A sentence that says with one name what a claim says with another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    /// The sentence's byte range in its context.
    pub sentence: Range<usize>,
    /// The sentence's name, as a byte range in its context.
    pub source_name: Range<usize>,
    /// The claim's name, as a byte range in the claim.
    pub claim_name: Range<usize>,
}

impl Index {
    /// Indexes `context`'s sentences (byte ranges from `split_sentences`); linear in its length.
    pub fn new(context: &str, sentences: &[Range<usize>]) -> Self {
        let mut index = Index::default();
        for r in sentences {
            let Some(text) = context.get(r.clone()) else { continue };
            let words = Words::of(text, r.start);
            for k in 1..words.lower.len() {
                if words.capitalised[k] {
                    index.inside.insert(words.lower[k].clone());
                }
            }
            let names = words.names(context);
            let s = index.sentences.len();
            for (n, run) in names.iter().enumerate() {
                if let Some(w) = words.lower.get(run.end) {
                    index.after.entry(w.clone()).or_default().push((s, n));
                }
                if let Some(w) = run.start.checked_sub(1).and_then(|b| words.lower.get(b)) {
                    index.before.entry(w.clone()).or_default().push((s, n));
                }
            }
            index.sentences.push(Sentence { range: r.clone(), words, names });
        }
        index
    }

    /// How this context's sentences read `claim` (one sentence) with one of its names in another's
    /// place, by the rules of the module's doc; `context` is the text this index was made from.
    pub fn read(&self, context: &str, claim: &str) -> Reading {
        let words = Words::of(claim, 0);
        let names = words.names(claim);
        let mut swap = None;
        for run in names {
            // A claim's first word alone is a name only where this context writes it capitalised
            // inside a sentence.
            if run.start == 0 && run.len() == 1 && !self.inside.contains(&words.lower[0]) {
                continue;
            }
            let (before, after) = (&words.lower[..run.start], &words.lower[run.end..]);
            let around = before.iter().chain(after);
            if before.len() + after.len() < 3 || around.filter(|w| is_content_word(w)).count() < 2 {
                continue;
            }
            let candidates = match (after.first(), before.last()) {
                (Some(w), _) => self.after.get(w),
                (None, Some(w)) => self.before.get(w),
                (None, None) => None,
            };
            for &(s, n) in candidates.into_iter().flatten() {
                let sentence = &self.sentences[s];
                let other = &sentence.names[n];
                let lower = &sentence.words.lower;
                let placed = other.start >= before.len()
                    && lower[other.start - before.len()..other.start] == *before
                    && lower.get(other.end..other.end + after.len()) == Some(after)
                    && (!before.is_empty() || other.start == 0);
                if !placed {
                    continue;
                }
                let claim_name: Vec<&str> = run.clone().map(|k| &claim[words.spans[k].clone()]).collect();
                let source_name: Vec<&str> = other.clone().map(|k| &context[sentence.words.spans[k].clone()]).collect();
                if one_name(&claim_name, &source_name) {
                    return Reading::Stated;
                }
                // An apposition: the claim's name follows the sentence's within three words.
                let follows = after.is_empty()
                    && (other.end..(other.end + 3).min(lower.len())).any(|k| {
                        let run_here: Vec<&str> = (k..(k + claim_name.len()).min(lower.len())).map(|j| &context[sentence.words.spans[j].clone()]).collect();
                        one_name(&claim_name, &run_here)
                    });
                if follows || swap.is_some() {
                    continue;
                }
                let (first, last) = (other.start, other.end - 1);
                swap = Some(Swap {
                    sentence: sentence.range.clone(),
                    source_name: sentence.words.spans[first].start..sentence.words.spans[last].end,
                    claim_name: words.spans[run.start].start..words.spans[run.end - 1].end,
                });
            }
        }
        swap.map_or(Reading::Neither, Reading::Swapped)
    }
}

/// A name word as compared: lower-case, curly apostrophes straight, without a possessive "'s" or
/// a plural "s" of a word of four letters or more.
fn plain(word: &str) -> String {
    let w = word.to_lowercase().replace('\u{2019}', "'");
    let w = w.strip_suffix("'s").unwrap_or(&w).to_string();
    match w.strip_suffix('s') {
        Some(stem) if stem.chars().count() >= 4 && !stem.ends_with('s') => stem.to_string(),
        _ => w,
    }
}

/// Whether two names are one name written two ways (the module's doc lists how).
fn one_name(a: &[&str], b: &[&str]) -> bool {
    let (pa, pb): (Vec<String>, Vec<String>) = (a.iter().map(|w| plain(w)).collect(), b.iter().map(|w| plain(w)).collect());
    let prefix4 = |w: &str| (w.chars().count() >= 4).then(|| w.chars().take(4).collect::<String>());
    let shared = pa.iter().any(|x| pb.contains(x) || prefix4(x).is_some_and(|p| pb.iter().any(|y| prefix4(y).as_deref() == Some(p.as_str()))));
    let initials = |one: &[String], many: &[String]| {
        one.len() == 1 && many.len() > 1 && one[0] == many.iter().filter(|w| !NOT_NAMES.contains(&w.as_str())).filter_map(|w| w.chars().next()).collect::<String>()
    };
    let begins = pa.len() == pb.len() && pa.iter().zip(&pb).all(|(x, y)| x.starts_with(y.as_str()) || y.starts_with(x.as_str()));
    shared || initials(&pa, &pb) || initials(&pb, &pa) || begins
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::split_sentences;

    fn read(context: &str, claim: &str) -> Option<(String, String)> {
        let index = Index::new(context, &split_sentences(context));
        match index.read(context, claim) {
            Reading::Swapped(s) => Some((claim[s.claim_name].to_string(), context[s.source_name].to_string())),
            _ => None,
        }
    }

    #[test]
    fn a_name_in_another_names_place() {
        let cup = "France won the 2018 World Cup, defeating Croatia 4-2 in the final in Moscow.";
        assert_eq!(read(cup, "Croatia won the 2018 World Cup."), Some(("Croatia".into(), "France".into())));
        assert_eq!(read(cup, "Germany won the 2018 World Cup.").map(|s| s.1), None, "a first word the context never writes inside a sentence");
        assert_eq!(read(cup, "France won the 2018 World Cup."), None);
        assert_eq!(read(cup, "The 2018 World Cup final was played in Moscow."), None);
        let qa = "In September 1939 General Alfred Keller commanded the 4th Air Corps during the invasion of Poland.";
        assert_eq!(read(qa, "Alfred Keller commanded the 4th Air Corps during the invasion of Czechoslovakia.").map(|s| s.1), Some("Poland".into()));
        let film = "Matthew McConaughey starred in Sahara. Sahara is starring Penelope Cruz.";
        assert_eq!(read(film, "Sandra Bullock starred in Sahara.").map(|s| s.1), Some("Matthew McConaughey".into()));
        let index = Index::new(film, &split_sentences(film));
        assert_eq!(index.read(film, "Matthew McConaughey starred in Sahara."), Reading::Stated);
    }

    #[test]
    fn one_name_written_two_ways_is_no_swap() {
        let bank = "Royal Bank of Scotland has racked up losses since it was bailed out by taxpayers. Mr Clegg will claim the Lib Dems are now the party of education.";
        assert_eq!(read(bank, "RBS has racked up losses since it was bailed out by taxpayers."), None);
        assert_eq!(read(bank, "Nick Clegg will claim the Liberal Democrats are now the party of education."), None);
        let poll = "The poll found that a quarter of Britons said their dog mattered more.";
        assert_eq!(read(poll, "The poll found that a quarter of Brits said their dog mattered more."), None);
        let letters = "In 2000 love letters between Rupert Brooke and Phyllis Gardner were discovered.";
        assert_eq!(read(letters, "In 2000 love letters between Brookes and Phyllis Gardner were discovered."), None);
    }

    #[test]
    fn where_a_name_stands_matters() {
        // No words before: the sentence's name must start it.
        let pools = "When Viv and her husband Keith won the pools in 1961 she said her life would change.";
        assert_eq!(read(pools, "Viv won the pools in 1961."), None);
        // No words after: an apposition is no swap.
        let mbia = "Crystal Palace are maintaining interest in Sevilla midfielder Stephane Mbia.";
        assert_eq!(read(mbia, "Crystal Palace are maintaining interest in Stephane Mbia."), None);
        // Too few words around the name.
        assert_eq!(read("Paris is big.", "Rome is big."), None);
        // A sentence-initial common word is no name.
        let tinder = "Tinder also said it had improved its mutual friends feature.";
        assert_eq!(read(tinder, "Firm also said it had improved its mutual friends feature."), None);
        // Another sentence states the claim with its own name.
        let both = "France won the 2018 World Cup. Spain won the 2010 World Cup, beating France and the Netherlands.";
        assert_eq!(read(both, "France won the 2018 World Cup."), None);
        // Names joined by a comma are two names, not one.
        let cities = "The tour visits Lyon, Paris and Nice in June.";
        assert_eq!(read(cities, "The tour visits Lyon, Rome and Nice in June.").map(|s| s.1), Some("Paris".into()));
    }
}

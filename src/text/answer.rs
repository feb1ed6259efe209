//! Answer correctness as extractive QA grades it: SQuAD's answer normalisation, exact match and
//! token F1, and a rule for what counts as a short answer.
//!
//! The normalisation, exact match and F1 follow the official SQuAD evaluation scripts line for line
//! (Rajpurkar et al. 2016, `evaluate-v1.1.py`, `normalize_answer`, `exact_match_score`, `f1_score`;
//! SQuAD 2.0's `evaluate-v2.0.py`, `compute_exact`, `compute_f1`, for the empty-answer cases):
//!
//! ```python
//! def normalize_answer(s):
//!     def remove_articles(text): return re.sub(r'\b(a|an|the)\b', ' ', text)
//!     def white_space_fix(text): return ' '.join(text.split())
//!     def remove_punc(text): return ''.join(ch for ch in text if ch not in set(string.punctuation))
//!     return white_space_fix(remove_articles(remove_punc(s.lower())))
//! ```
//!
//! F1 is over bags of normalised tokens: the common tokens counted with multiplicity, precision over
//! the prediction's tokens, recall over the gold answer's; 0 when nothing is shared. As in SQuAD 2.0,
//! two empty answers score 1 and one empty answer against a non-empty one scores 0 (SQuAD 1.1's
//! script scored two empty answers 0; its data had none).
//!
//! One documented extension: besides ASCII punctuation (Python's `string.punctuation`, which is
//! what [`char::is_ascii_punctuation`] matches), the typographic quotes, dashes and ellipsis that
//! LLM outputs use (‘ ’ “ ” « » – — …) are removed too, so "Eiffel Tower’s" and "Eiffel Tower's"
//! normalise alike. No ASCII text normalises differently from SQuAD's script.

use std::collections::HashMap;

/// Typographic punctuation removed beside ASCII punctuation (see the module doc).
const TYPOGRAPHIC_PUNCTUATION: &[char] = &['‘', '’', '‚', '‛', '“', '”', '„', '«', '»', '‹', '›', '–', '—', '―', '…'];

/// The most normalised tokens a short answer has (see [`is_short_answer`]).
pub const SHORT_ANSWER_TOKENS: usize = 6;

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || TYPOGRAPHIC_PUNCTUATION.contains(&c)
}

/// A character of a regex word (`\w` in Python 3's Unicode regexes).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// SQuAD's `normalize_answer`: lower case, punctuation removed, the articles "a", "an" and "the"
/// removed (as whole words), white space collapsed to single spaces and trimmed.
pub fn normalize_answer(text: &str) -> String {
    let no_punct: String = text.to_lowercase().chars().filter(|&c| !is_punctuation(c)).collect();
    // re.sub(r'\b(a|an|the)\b', ' ', text): replace each maximal run of word characters that is
    // exactly an article by a space.
    let mut no_articles = String::with_capacity(no_punct.len());
    let mut rest = no_punct.as_str();
    while let Some(c) = rest.chars().next() {
        let end = if is_word_char(c) { rest.find(|ch: char| !is_word_char(ch)).unwrap_or(rest.len()) } else { c.len_utf8() };
        let piece = &rest[..end];
        if matches!(piece, "a" | "an" | "the") {
            no_articles.push(' ');
        } else {
            no_articles.push_str(piece);
        }
        rest = &rest[end..];
    }
    no_articles.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The normalised tokens of an answer.
pub fn answer_tokens(text: &str) -> Vec<String> {
    normalize_answer(text).split(' ').filter(|t| !t.is_empty()).map(str::to_string).collect()
}

/// SQuAD exact match: the normalised texts are equal.
pub fn exact_match(pred: &str, gold: &str) -> bool {
    normalize_answer(pred) == normalize_answer(gold)
}

/// SQuAD token F1 of a prediction against a gold answer, in [0, 1].
pub fn token_f1(pred: &str, gold: &str) -> f32 {
    let p = answer_tokens(pred);
    let g = answer_tokens(gold);
    if p.is_empty() || g.is_empty() {
        return if p.is_empty() && g.is_empty() { 1.0 } else { 0.0 };
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &g {
        *counts.entry(t.as_str()).or_default() += 1;
    }
    let mut same = 0usize;
    for t in &p {
        if let Some(n) = counts.get_mut(t.as_str()).filter(|n| **n > 0) {
            *n -= 1;
            same += 1;
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f32 / p.len() as f32;
    let recall = same as f32 / g.len() as f32;
    2.0 * precision * recall / (precision + recall)
}

/// Whether a text is a short answer ("Paris", "About 10 business days.", "No, the minimum rental is 2
/// days."), to be compared with another answer as a whole, rather than a passage of facts: it has one
/// to [`SHORT_ANSWER_TOKENS`] (6) normalised tokens and is at most one sentence. Six tokens covers
/// SQuAD's answers (about 3 tokens on average) and the five-token short answers that NQ-Open keeps
/// (Lee et al. 2019), with room for a leading "yes" or "no".
pub fn is_short_answer(text: &str) -> bool {
    let n = answer_tokens(text).len();
    (1..=SHORT_ANSWER_TOKENS).contains(&n) && crate::text::split_sentences(text).len() <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_follows_squad() {
        assert_eq!(normalize_answer("The Eiffel Tower"), "eiffel tower");
        assert_eq!(normalize_answer("  an   Apple,  a day!  "), "apple day");
        // Punctuation is removed before articles, so "a.m." becomes "am" and survives.
        assert_eq!(normalize_answer("10 a.m. to 6 p.m."), "10 am to 6 pm");
        // Articles go only as whole words.
        assert_eq!(normalize_answer("Theatre and another"), "theatre and another");
        // `_` is ASCII punctuation, so it goes first; a symbol that is neither punctuation nor a word
        // character still bounds a word, as `\b` does.
        assert_eq!(normalize_answer("the_the the"), "thethe");
        assert_eq!(normalize_answer("the€the"), "€");
        // Removing an apostrophe joins the word (as SQuAD does), typographic or not.
        assert_eq!(normalize_answer("Tower’s"), normalize_answer("Tower's"));
        assert_eq!(normalize_answer("Tower's"), "towers");
        assert_eq!(normalize_answer(""), "");
        assert_eq!(normalize_answer("The."), "");
    }

    #[test]
    fn exact_match_after_normalisation() {
        assert!(exact_match("The Eiffel Tower", "eiffel tower!"));
        assert!(exact_match("Mount Everest", "Mount Everest"));
        assert!(exact_match("a  Denver Broncos.", "Denver Broncos"));
        assert!(!exact_match("Denver", "Denver Broncos"));
    }

    #[test]
    fn token_f1_as_squad_computes_it() {
        assert_eq!(token_f1("The Eiffel Tower", "eiffel tower!"), 1.0);
        // pred {denver}, gold {denver, broncos}: P = 1, R = 1/2, F1 = 2/3.
        assert!((token_f1("Denver", "Denver Broncos") - 2.0 / 3.0).abs() < 1e-6);
        // pred {the} dropped -> {eiffel, tower, in, paris}; gold {eiffel, tower}: P = 1/2, R = 1, F1 = 2/3.
        assert!((token_f1("the Eiffel Tower in Paris", "Eiffel Tower") - 2.0 / 3.0).abs() < 1e-6);
        // pred {500, points}, gold {100, points}: one common token, P = R = 1/2, F1 = 1/2.
        assert!((token_f1("500 points", "100 points") - 0.5).abs() < 1e-6);
        // Multiplicity counts: pred {new, new, york}, gold {new, york}: common 2, P = 2/3, R = 1, F1 = 0.8.
        assert!((token_f1("new new york", "New York") - 0.8).abs() < 1e-6);
        assert_eq!(token_f1("Paris", "London"), 0.0);
    }

    #[test]
    fn token_f1_edge_cases() {
        assert_eq!(token_f1("", ""), 1.0);
        assert_eq!(token_f1("the", "a."), 1.0, "both normalise to nothing");
        assert_eq!(token_f1("", "Paris"), 0.0);
        assert_eq!(token_f1("Paris", ""), 0.0);
    }

    #[test]
    fn short_answers() {
        assert!(is_short_answer("Mount Everest"));
        assert!(is_short_answer("About 10 business days."));
        assert!(is_short_answer("No, the minimum rental is 2 days."), "six tokens once 'the' is dropped");
        assert!(!is_short_answer("Yes, from 10 a.m. to 6 p.m. on every day of the week."));
        assert!(!is_short_answer("Yes. It is."), "two sentences");
        assert!(!is_short_answer(""));
        assert!(!is_short_answer("..."));
    }
}

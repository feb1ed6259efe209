//! Content words: the words of a text that say what it is about, and whether it is negated; and
//! plain words, as texts are compared word for word.
//!
//! One list of words too common to say where a claim's evidence is, shared by every reader that
//! compares texts by their words: the support grader (which sentences of a context a claim names),
//! the decomposer (whether a fact the judge wrote comes from its sentence), the perturbations
//! (whether a premise lacks what a claim states) and the claim forms (whether an answer only
//! restates its question).

/// Words too common to say what a text is about, compared lower-case. Words of one or two letters
/// are never content words, so none is listed.
pub const STOPWORDS: &[&str] = &[
    "the", "and", "for", "are", "was", "were", "been", "with", "that", "this", "from", "has", "have", "had", "not", "but", "its",
    "his", "her", "their", "they", "them", "you", "your", "can", "will", "would", "should", "could", "may", "there", "which",
    "who", "whom", "what", "when", "where", "how", "all", "any", "some", "one", "other", "also", "into", "than", "then",
    "these", "those", "such", "only", "does", "did", "about", "over",
];

/// Whether a lower-case word says what a text is about: a number of any length, or three letters
/// or more that are not a [`STOPWORDS`] word.
pub fn is_content_word(word: &str) -> bool {
    (word.chars().any(|c| c.is_ascii_digit()) || word.chars().count() >= 3) && !STOPWORDS.contains(&word)
}

/// The content words of a text in order, lower-case, repeats kept: runs of letters and digits,
/// "n't" read as "not" (so "didn't" leaves nothing, not "didn").
pub fn content_words(text: &str) -> Vec<String> {
    text.replace("n't", " not")
        .replace("n\u{2019}t", " not")
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| is_content_word(w))
        .collect()
}

/// The words of a text as texts are compared word for word (the verbatim rule, code lookup):
/// lower-case runs of letters and digits, with their byte ranges.
pub fn plain_words_at(text: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let mut out = vec![];
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((text[s..i].to_lowercase(), s..i));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// [`plain_words_at`] without the ranges.
pub fn plain_words(text: &str) -> Vec<String> {
    plain_words_at(text).into_iter().map(|(w, _)| w).collect()
}

/// Whether a text says "not" in any of its forms ("no", "never", "cannot", "without", "isn't").
pub fn negated(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '\u{2019}')
        .map(|w| w.to_lowercase().replace('\u{2019}', "'"))
        .any(|w| matches!(w.as_str(), "not" | "no" | "never" | "nor" | "none" | "cannot" | "without") || w.ends_with("n't"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_words_keep_numbers_and_drop_common_words() {
        assert_eq!(content_words("The refund is 30 days, not 14."), ["refund", "30", "days", "14"]);
        assert_eq!(content_words("Who didn’t sign it?"), vec!["sign".to_string()], "\"didn't\" is \"did not\": both common");
        assert_eq!(content_words("Über 5 Häuser"), vec!["über".to_string(), "5".into(), "häuser".into()]);
        assert!(content_words("it is as he is").is_empty(), "words of one or two letters say nothing");
    }

    #[test]
    fn negation_in_its_forms() {
        for t in ["It is not so.", "No refunds.", "They never came.", "It isn't.", "It isn’t.", "We cannot.", "Sold without a receipt."] {
            assert!(negated(t), "{t:?}");
        }
        for t in ["Notably, it came.", "Nobody's fool", "Refunds take 30 days."] {
            assert!(!negated(t), "{t:?}");
        }
    }
}

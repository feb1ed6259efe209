//! Text processing for grading: sentences, claims, citation markers and chunks.
//!
//! Everything here is plain Rust over strings, with byte ranges into the original text; the graders
//! turn them into character offsets for the results.

pub mod answer;
pub mod chunks;
pub mod claim_form;
pub mod citations;
pub mod injection;
pub mod sentences;
pub mod specifics;

use std::ops::Range;

pub use chunks::{chunk_text, Chunk};
pub use citations::{find_markers, strip_markers, Marker};
pub use sentences::{sentences, split_sentences};

/// One sentence of an output, ready for grading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// Byte range of the sentence in the output, markers included.
    pub span: Range<usize>,
    /// The sentence with its citation markers removed: the claim the graders check.
    pub text: String,
    /// The ids cited by the markers inside or right after the sentence, in order, without repeats.
    pub cites: Vec<String>,
    /// Whether the sentence states something checkable (not a heading, question or fragment).
    pub is_claim: bool,
}

/// Splits an output into sentences, each with its citations and its marker-free claim text.
/// `known_ids` are the case's context ids (so that `[policy]` is read as a marker).
pub fn analyse_output(output: &str, known_ids: &[&str]) -> Vec<Sentence> {
    let markers = find_markers(output, known_ids);
    split_sentences(output)
        .into_iter()
        .map(|span| {
            let inside: Vec<Marker> = markers
                .iter()
                .filter(|m| m.span.start >= span.start && m.span.end <= span.end)
                .map(|m| Marker { ids: m.ids.clone(), span: m.span.start - span.start..m.span.end - span.start })
                .collect();
            let mut cites: Vec<String> = Vec::new();
            for id in inside.iter().flat_map(|m| m.ids.iter()) {
                if !cites.contains(id) {
                    cites.push(id.clone());
                }
            }
            let text = strip_markers(&output[span.clone()], &inside);
            let is_claim = is_claim(&text);
            Sentence { span, text, cites, is_claim }
        })
        .collect()
}

/// A sentence makes a checkable claim when it has at least three words, is not a question, and is not
/// a heading or a lead-in ending with a colon.
pub fn is_claim(text: &str) -> bool {
    let t = text.trim().trim_start_matches(['-', '*', '+', '•', '#', ' ']);
    let words = t.split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).count();
    words >= 3 && !t.ends_with('?') && !t.ends_with(':') && !t.starts_with("```")
}

/// Converts a byte offset of `text` to a character (Unicode scalar) offset, as the results report.
pub fn char_offset(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_carry_their_citations_and_clean_text() {
        let out = "Refunds are accepted within 30 days [1]. After that, store credit is offered.[2][1] Anything else?";
        let s = analyse_output(out, &["1", "2"]);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].text, "Refunds are accepted within 30 days.");
        assert_eq!(s[0].cites, vec!["1"]);
        assert_eq!(s[1].text, "After that, store credit is offered.");
        assert_eq!(s[1].cites, vec!["2", "1"]);
        assert!(s[0].is_claim && s[1].is_claim);
        assert!(!s[2].is_claim, "a question is not a claim");
        assert_eq!(&out[s[1].span.clone()], "After that, store credit is offered.[2][1]");
    }

    #[test]
    fn char_offsets_count_characters() {
        let t = "é1 ü2";
        assert_eq!(char_offset(t, 3), 2);
        assert_eq!(char_offset(t, t.len()), 5);
    }
}

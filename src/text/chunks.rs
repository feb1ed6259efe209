//! Cutting source passages into windows that fit the NLI model together with a claim.
//!
//! Windows are counted in the model's own tokens, not characters. A passage that fits is one chunk.
//! A longer one is packed sentence by sentence into windows of at most `window` tokens, and each
//! window starts with the last sentences of the previous one (up to `overlap` tokens), so that no fact
//! is cut in half at a border. A single sentence longer than a window is cut by tokens, with the same
//! overlap.

use std::ops::Range;

use super::sentences::split_sentences;

/// One window of a passage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Byte range in the passage.
    pub span: Range<usize>,
    /// Number of tokens in it.
    pub tokens: usize,
}

/// Cuts `text` into chunks of at most `window` tokens overlapping by up to `overlap` tokens.
/// `offsets` gives the byte offsets of the tokens of a text (the model's tokenizer).
pub fn chunk_text<E>(
    text: &str,
    window: usize,
    overlap: usize,
    offsets: &dyn Fn(&str) -> Result<Vec<(usize, usize)>, E>,
) -> Result<Vec<Chunk>, E> {
    let window = window.max(8);
    let overlap = overlap.min(window / 2);
    let toks = offsets(text)?;
    // A passage the tokenizer reads as nothing (control characters only) has nothing to check
    // a claim against: no chunk, rather than a chunk of zero tokens that the model would score.
    if toks.is_empty() {
        return Ok(vec![]);
    }
    if toks.len() <= window {
        let span = trimmed(text, 0..text.len());
        return Ok(if span.is_empty() { vec![] } else { vec![Chunk { span, tokens: toks.len() }] });
    }
    // Token index range of each sentence: the tokens that start inside it.
    let starts: Vec<usize> = toks.iter().map(|o| o.0).collect();
    let mut units: Vec<(Range<usize>, usize)> = Vec::new();
    for sent in split_sentences(text) {
        let a = starts.partition_point(|&s| s < sent.start);
        let b = starts.partition_point(|&s| s < sent.end);
        if b - a <= window {
            units.push((sent, b - a));
        } else {
            // A run-on sentence: token windows with overlap.
            let step = window - overlap;
            let mut t = a;
            loop {
                let e = (t + window).min(b);
                units.push((toks[t].0..toks[e - 1].1, e - t));
                if e == b {
                    break;
                }
                t += step;
            }
        }
    }
    let mut chunks = Vec::new();
    let mut i = 0;
    while i < units.len() {
        let mut j = i;
        let mut tokens = 0;
        while j < units.len() && (j == i || tokens + units[j].1 <= window) {
            tokens += units[j].1;
            j += 1;
        }
        chunks.push(Chunk { span: units[i].0.start..units[j - 1].0.end, tokens });
        if j >= units.len() {
            break;
        }
        let mut k = j;
        let mut ov = 0;
        while k > i + 1 && ov + units[k - 1].1 <= overlap {
            ov += units[k - 1].1;
            k -= 1;
        }
        i = k;
    }
    Ok(chunks)
}

fn trimmed(text: &str, r: Range<usize>) -> Range<usize> {
    let s = &text[r.clone()];
    let lead = s.len() - s.trim_start().len();
    let trimmed_len = s.trim().len();
    r.start + lead..r.start + lead + trimmed_len
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whitespace "tokenizer": one token per word.
    fn words(text: &str) -> Result<Vec<(usize, usize)>, ()> {
        let mut out = vec![];
        let mut start = None;
        for (i, c) in text.char_indices() {
            match (c.is_whitespace(), start) {
                (false, None) => start = Some(i),
                (true, Some(s)) => {
                    out.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            out.push((s, text.len()));
        }
        Ok(out)
    }

    #[test]
    fn a_short_passage_is_one_chunk() {
        let c = chunk_text("  One two three.  ", 10, 2, &words).unwrap();
        assert_eq!(c, vec![Chunk { span: 2..16, tokens: 3 }]);
    }

    /// Found by the chunker fuzz target: a passage of NUL characters, which the tokenizer drops,
    /// was one chunk of zero tokens.
    #[test]
    fn a_passage_without_tokens_has_no_chunks() {
        let none = |_: &str| -> Result<Vec<(usize, usize)>, ()> { Ok(vec![]) };
        assert_eq!(chunk_text("\0\0\0\0\0", 10, 2, &none).unwrap(), vec![]);
    }

    #[test]
    fn long_passages_pack_sentences_with_overlap() {
        let text = "A b c d. E f g h. I j k l. M n o q. R r s t.";
        let c = chunk_text(text, 8, 4, &words).unwrap();
        let parts: Vec<&str> = c.iter().map(|c| &text[c.span.clone()]).collect();
        assert_eq!(parts, vec!["A b c d. E f g h.", "E f g h. I j k l.", "I j k l. M n o q.", "M n o q. R r s t."]);
        assert!(c.iter().all(|c| c.tokens <= 8));
    }

    #[test]
    fn every_token_is_in_some_chunk() {
        let text = (0..200).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ") + ". Short one.";
        let c = chunk_text(&text, 30, 5, &words).unwrap();
        assert!(c.iter().all(|c| c.tokens <= 30));
        for (s, e) in words(&text).unwrap() {
            assert!(c.iter().any(|c| c.span.start <= s && e <= c.span.end), "token at {s} lost");
        }
        // Consecutive windows of the run-on sentence overlap.
        assert!(c[1].span.start < c[0].span.end);
    }
}

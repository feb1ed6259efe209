//! Cutting source passages into windows that fit the NLI model together with a claim.
//!
//! Windows are counted in the model's own tokens, not characters, and every token of the passage
//! lands in some window, in order: a 100-page context becomes many chunks, never one that the model
//! would cut. A passage that fits is one chunk. A longer one is cut at sentence borders: each window
//! takes as many whole sentences as fit in `window` tokens, and the next starts with the last
//! sentences of the previous one (those that fit in `overlap` tokens), so that no fact is cut in half
//! at a border. A sentence longer than a window is cut between words (between tokens where a word is
//! itself longer than the window), with `overlap` tokens shared by consecutive pieces.
//!
//! The borders are computed on the token offsets of the whole passage, so the sentence splitter only
//! proposes cut points: text it does not call a sentence (a run of punctuation, an emoji line) still
//! belongs to a chunk.

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

/// The smallest window [`chunk_text`] cuts (a smaller request is raised to it).
pub const MIN_WINDOW: usize = 8;

/// Cuts `text` into chunks of at most `window` tokens overlapping by up to `overlap` tokens (at most
/// half a window). `offsets` gives the byte offsets of the tokens of a text (the model's tokenizer,
/// without truncation).
pub fn chunk_text<E>(
    text: &str,
    window: usize,
    overlap: usize,
    offsets: &dyn Fn(&str) -> Result<Vec<(usize, usize)>, E>,
) -> Result<Vec<Chunk>, E> {
    let window = window.max(MIN_WINDOW);
    let overlap = overlap.min(window / 2);
    let mut toks = offsets(text)?;
    // Offsets must be in text order and inside the text for the cuts below; a tokenizer that
    // reports them otherwise (or a normaliser that maps a token to nothing) is put in order here.
    toks.retain(|&(s, e)| s <= e && e <= text.len() && text.is_char_boundary(s) && text.is_char_boundary(e));
    toks.sort_unstable();
    // A passage the tokenizer reads as nothing (control characters only) has nothing to check
    // a claim against: no chunk, rather than a chunk of zero tokens that the model would score.
    if toks.is_empty() {
        return Ok(vec![]);
    }
    let n = toks.len();
    if n <= window {
        let span = trimmed(text, 0..text.len());
        return Ok(if span.is_empty() { vec![] } else { vec![Chunk { span, tokens: n }] });
    }
    // Token index of each sentence start: the first token that starts at or after it.
    let starts: Vec<usize> = toks.iter().map(|o| o.0).collect();
    let mut borders: Vec<usize> = split_sentences(text).iter().map(|s| starts.partition_point(|&b| b < s.start)).collect();
    borders.push(n);
    borders.retain(|&b| b > 0);
    borders.dedup();
    // Token i starts a word when text lies between it and the token before it.
    let word_start = |i: usize| i == 0 || i >= n || toks[i].0 > toks[i - 1].1;
    let mut chunks = Vec::new();
    let mut s = 0;
    // End (token index) of the previous chunk: each chunk ends further on, or it would be redundant.
    let mut prev_end = 0;
    loop {
        let limit = s + window;
        // The last sentence border that fits, else a cut inside the sentence: between words if one
        // falls in the second half of the window (and past the previous chunk), else exactly at the
        // window.
        let at_border = borders.partition_point(|&b| b <= limit);
        let e = match borders[..at_border].last() {
            // A border at or before the previous chunk's end would repeat it: the sentence after
            // it is longer than what the overlap leaves, so it is cut inside instead.
            Some(&b) if b > s.max(prev_end) => b,
            _ => ((s + window / 2).max(prev_end + 1)..=limit).rev().find(|&i| i > s && word_start(i)).unwrap_or(limit),
        }
        .min(n);
        // The chunk is read on its own by the model: count its tokens as the model will. A cut inside
        // a word can read back as more tokens than it held in the passage; then it ends earlier.
        let mut e = e;
        let tokens = loop {
            let count = offsets(&text[toks[s].0..toks[e - 1].1])?.len();
            if count <= window || e - s <= 1 {
                break count;
            }
            e = (e - (count - window)).max(s + 1);
        };
        chunks.push(Chunk { span: toks[s].0..toks[e - 1].1, tokens });
        prev_end = e;
        if e >= n {
            break;
        }
        // The next window starts at the earliest sentence border within `overlap` tokens before the
        // end; after a cut inside a sentence, `overlap` tokens back (at a word start if one is near).
        let from = e.saturating_sub(overlap).max(s + 1);
        let next = if borders.binary_search(&e).is_ok() {
            borders[borders.partition_point(|&b| b < from)..].first().copied().filter(|&b| b <= e).unwrap_or(e)
        } else {
            (from..=e).find(|&i| word_start(i)).unwrap_or(from)
        };
        s = next.clamp(s + 1, e);
    }
    Ok(chunks)
}

/// Byte offsets of the whitespace-separated words of `text`, as Python's `str.split()` finds them.
pub fn word_offsets(text: &str) -> Vec<(usize, usize)> {
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
    out
}

/// Cuts `text` as [`chunk_text`] does, counting `words` whitespace-separated words to a window and
/// `overlap` words shared (MiniCheck-Flan-T5's chunking packs sentences into 500 words); a chunk whose
/// tokens (`offsets`, the model's tokenizer) are more than `max_tokens` is cut again by tokens, so that
/// no chunk is cut by the model. Each chunk's `tokens` are the model's.
pub fn chunk_words<E>(
    text: &str,
    words: usize,
    overlap: usize,
    max_tokens: usize,
    offsets: &dyn Fn(&str) -> Result<Vec<(usize, usize)>, E>,
) -> Result<Vec<Chunk>, E> {
    let by_words = chunk_text(text, words, overlap, &|t| Ok(word_offsets(t)))?;
    let mut out = Vec::with_capacity(by_words.len());
    for c in by_words {
        for piece in chunk_text(&text[c.span.clone()], max_tokens, overlap, offsets)? {
            let span = c.span.start + piece.span.start..c.span.start + piece.span.end;
            // A piece of an overlapping word window that ends within what the pieces before it
            // covered adds nothing (and would step back).
            if out.last().is_some_and(|last: &Chunk| span.end <= last.span.end) {
                continue;
            }
            // One that starts no later than the pieces before it holds them whole: they go.
            while out.last().is_some_and(|last: &Chunk| span.start <= last.span.start) {
                out.pop();
            }
            out.push(Chunk { span, tokens: piece.tokens });
        }
    }
    Ok(out)
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
        Ok(word_offsets(text))
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

#[cfg(test)]
mod properties {
    use super::*;

    /// A small deterministic generator (xorshift), so the properties run the same every time.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A word-piece-like tokenizer: words and punctuation apart, and a word longer than four
    /// characters read as pieces of at most four, so that a chunk cut inside a word reads back
    /// differently, as with the real tokenizer.
    fn pieces(text: &str) -> Result<Vec<(usize, usize)>, ()> {
        let mut out = vec![];
        let mut word: Option<(usize, usize)> = None; // start, chars so far
        let flush = |out: &mut Vec<(usize, usize)>, start: usize, end: usize| {
            let mut s = start;
            let mut k = 0;
            for (i, _) in text[start..end].char_indices() {
                if k == 4 {
                    out.push((s, start + i));
                    s = start + i;
                    k = 0;
                }
                k += 1;
            }
            out.push((s, end));
        };
        for (i, c) in text.char_indices() {
            if c.is_alphanumeric() {
                word = Some(word.map_or((i, 1), |(s, n)| (s, n + 1)));
                continue;
            }
            if let Some((s, _)) = word.take() {
                flush(&mut out, s, i);
            }
            if !c.is_whitespace() {
                out.push((i, i + c.len_utf8()));
            }
        }
        if let Some((s, _)) = word {
            flush(&mut out, s, text.len());
        }
        Ok(out)
    }

    fn random_text(rng: &mut Rng) -> String {
        const WORDS: &[&str] = &["the", "refund", "policy", "is", "30", "days", "Dr.", "e.g.", "3.5", "über", "naïve", "日本語", "🙂", "—"];
        let mut t = String::new();
        for _ in 0..rng.below(400) {
            match rng.below(12) {
                0 => t.push_str(". "),
                1 => t.push_str("\n\n"),
                2 => t.push_str("!? "),
                3 => t.push_str(&"x".repeat(rng.below(120))),
                4 => t.push_str("- "),
                _ => {
                    t.push_str(WORDS[rng.below(WORDS.len())]);
                    t.push(' ');
                }
            }
        }
        t
    }

    /// Every chunk fits the window as the tokenizer reads it alone, chunks go forward, and every
    /// token of the passage is in some chunk.
    fn check(text: &str, window: usize, overlap: usize) -> Vec<Chunk> {
        let chunks = chunk_text(text, window, overlap, &pieces).unwrap();
        let window = window.max(MIN_WINDOW);
        let toks = pieces(text).unwrap();
        let mut last = 0..0;
        for c in &chunks {
            assert!(text.is_char_boundary(c.span.start) && text.is_char_boundary(c.span.end) && c.span.end <= text.len());
            let n = pieces(&text[c.span.clone()]).unwrap().len();
            assert_eq!(n, c.tokens, "a chunk's token count is what the tokenizer reads");
            assert!(n <= window, "chunk of {n} tokens over the window {window}: {:?}", &text[c.span.clone()]);
            assert!(
                c.span.start >= last.start && c.span.end > last.end,
                "chunks go forward: {last:?} then {:?} (window {window}, overlap {overlap}): {:?}",
                c.span,
                &text[last.start.min(c.span.start)..c.span.end.max(last.end)]
            );
            last = c.span.clone();
        }
        for (s, e) in toks {
            assert!(chunks.iter().any(|c| c.span.start <= s && e <= c.span.end), "token {:?} at {s} in no chunk", &text[s..e]);
        }
        chunks
    }

    #[test]
    fn chunks_fit_cover_and_go_forward_on_random_text() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..400 {
            let text = random_text(&mut rng);
            let window = rng.below(70);
            let overlap = rng.below(50);
            check(&text, window, overlap);
        }
    }

    /// A 100-page passage becomes many chunks, in order, and its last sentence is read.
    #[test]
    fn a_long_passage_is_read_to_its_end() {
        let mut text = String::new();
        for i in 0..3000 {
            text.push_str(&format!("Clause {i} of the handbook says that staff may take leave on day {i}. "));
        }
        text.push_str("The final clause says that refunds are due within 30 days.");
        let chunks = check(&text, 192, 32);
        assert!(chunks.len() > 150, "{} chunks", chunks.len());
        let last = &text[chunks.last().unwrap().span.clone()];
        assert!(last.ends_with("refunds are due within 30 days."), "{last}");
        // Consecutive chunks share whole sentences (the overlap) and cut at sentence borders.
        for w in chunks.windows(2) {
            assert!(w[1].span.start < w[0].span.end, "no overlap between {:?} and {:?}", w[0].span, w[1].span);
            assert!(text[w[1].span.clone()].starts_with("Clause ") || text[w[1].span.clone()].starts_with("The final"));
        }
    }

    /// A tokenizer that reports offsets out of order (as overflowing encodings can) still gives
    /// chunks that cover the passage.
    #[test]
    fn offsets_out_of_order_are_put_in_order() {
        let text = (0..100).map(|i| format!("Sentence number {i} is here.")).collect::<Vec<_>>().join(" ");
        let shuffled = |t: &str| -> Result<Vec<(usize, usize)>, ()> {
            let mut o = pieces(t)?;
            let half = o.len() / 2;
            o.rotate_left(half);
            Ok(o)
        };
        let chunks = chunk_text(&text, 20, 5, &shuffled).unwrap();
        assert!(chunks.iter().all(|c| c.tokens <= 20));
        assert!(chunks.last().unwrap().span.end == text.len());
    }

    /// Words are counted as Python's `str.split()` counts them (MiniCheck-Flan-T5's
    /// `len(sentence.split())`): runs of any whitespace, none at either end.
    #[test]
    fn words_are_split_as_python_splits_them() {
        let text = "  The refund\twindow\n\nis 30\u{a0}days.  ";
        let got: Vec<&str> = word_offsets(text).iter().map(|&(s, e)| &text[s..e]).collect();
        // Python: "  The refund\twindow\n\nis 30\xa0days.  ".split() == ['The', 'refund', 'window', 'is', '30', 'days.']
        assert_eq!(got, ["The", "refund", "window", "is", "30", "days."]);
        assert!(word_offsets(" \n\t").is_empty());
    }

    /// Chunks by words hold at most the words asked, fit the model's tokens, cover every token of
    /// the passage in order, and pack whole sentences where they fit.
    #[test]
    fn chunks_by_words_fit_both_counts_and_cover_the_passage() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..300 {
            let text = random_text(&mut rng);
            let (n_words, max_tokens, overlap) = (8 + rng.below(60), 8 + rng.below(80), rng.below(20));
            let chunks = chunk_words(&text, n_words, overlap, max_tokens, &pieces).unwrap();
            let mut last = 0..0;
            for c in &chunks {
                let inside = &text[c.span.clone()];
                assert!(word_offsets(inside).len() <= n_words, "{} words over {n_words}: {inside:?}", word_offsets(inside).len());
                assert_eq!(pieces(inside).unwrap().len(), c.tokens);
                assert!(c.tokens <= max_tokens, "{} tokens over {max_tokens}", c.tokens);
                assert!(c.span.start >= last.start && c.span.end > last.end, "chunks go forward");
                last = c.span.clone();
            }
            for (s, e) in pieces(&text).unwrap() {
                assert!(chunks.iter().any(|c| c.span.start <= s && e <= c.span.end), "token {:?} in no chunk", &text[s..e]);
            }
        }
        // 1,000 sentences of ten words, 500 words a chunk and no overlap: fifty sentences a chunk,
        // as MiniCheck packs them, and the last sentence is read.
        let text: String = (0..1000).map(|i| format!("Sentence {i} of the long report has ten words here. ")).collect();
        let chunks = chunk_words(&text, 500, 0, 2048, &pieces).unwrap();
        assert_eq!(chunks.len(), 20);
        assert!(chunks.iter().all(|c| word_offsets(&text[c.span.clone()]).len() == 500));
        assert!(text[chunks[19].span.clone()].ends_with("Sentence 999 of the long report has ten words here."));
        // The same words but a model that reads only 300 tokens: each 500-word chunk is cut again.
        let tight = chunk_words(&text, 500, 0, 300, &pieces).unwrap();
        assert!(tight.len() > 20 && tight.iter().all(|c| c.tokens <= 300), "{}", tight.len());
    }
}

//! Tokenisation and batching: inputs are tokenised in parallel, sorted by length, and cut into batches
//! by a budget of padded tokens rather than by a fixed count, so that short inputs travel in large
//! batches and long ones in small batches.

use std::path::Path;

use rayon::prelude::*;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};

/// One tokenised input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids, special tokens included.
    pub ids: Vec<u32>,
    /// Segment ids.
    pub type_ids: Vec<u32>,
    /// Whether the input was cut to fit the model's window.
    pub truncated: bool,
}

/// Special tokens a cross-encoder adds around a pair (`[CLS] a [SEP] b [SEP]`; RoBERTa's `<s> a </s></s>
/// b </s>` has four).
pub const PAIR_SPECIAL_TOKENS: usize = 4;

/// Tokens kept free beside a pair prompt's own, for merges where a text meets the prompt (a
/// sentencepiece tokenizer may split "Premise: x" differently from "Premise: " and "x").
const PROMPT_MARGIN: usize = 2;

/// Writes a (premise, hypothesis) pair into a prompt with `{text1}` for the premise and `{text2}` for
/// the hypothesis (Python's `str.format(text1=..., text2=...)`, as HHEM's `predict` does), in one pass,
/// so that braces inside the texts stay as they are. `{{` and `}}` are literal braces, as in Python.
pub fn fill_pair_prompt(prompt: &str, premise: &str, hypothesis: &str) -> String {
    let mut out = String::with_capacity(prompt.len() + premise.len() + hypothesis.len());
    let mut rest = prompt;
    while let Some(at) = rest.find(['{', '}']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (text, skip) = if tail.starts_with("{text1}") {
            (premise, 7)
        } else if tail.starts_with("{text2}") {
            (hypothesis, 7)
        } else if tail.starts_with("{{") || tail.starts_with("}}") {
            (&tail[..1], 2)
        } else {
            (&tail[..1], 1)
        };
        out.push_str(text);
        rest = &tail[skip..];
    }
    out.push_str(rest);
    out
}

/// A tokenizer set up for batch inference: no fixed padding, truncation at the model's window.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    /// The same tokenizer without truncation, for counting and cutting texts: truncation's
    /// overflowing pieces did not give back every token's offsets, so the chunker never saw the
    /// tokens past the first window of a long passage.
    plain: Tokenizer,
    pad_id: u32,
    max_tokens: usize,
    /// A model that reads a pair as one text written into a prompt (HHEM) has it here.
    pair_prompt: Option<String>,
    /// Tokens the pair format adds to the two texts' own.
    pair_overhead: usize,
}

impl TextTokenizer {
    /// Loads `tokenizer.json`, turns its own padding off (candor pads per batch) and truncates at
    /// `max_tokens` (longest text first, for pairs).
    pub fn from_file(path: &Path, max_tokens: usize) -> Result<Self> {
        let inner = Tokenizer::from_file(path).map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        Self::from_tokenizer(inner, max_tokens, &path.display().to_string())
    }

    /// Wraps a loaded tokenizer (`source` names it in errors).
    pub fn from_tokenizer(mut inner: Tokenizer, max_tokens: usize, source: &str) -> Result<Self> {
        let pad_id = inner
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| ["[PAD]", "<pad>", "<PAD>"].iter().find_map(|t| inner.token_to_id(t)))
            .unwrap_or(0);
        inner.with_padding(None);
        let mut plain = inner.clone();
        plain.with_truncation(None).map_err(|e| Error::Tokenizer(format!("{source}: {e}")))?;
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::Tokenizer(format!("{source}: {e}")))?;
        Ok(Self { inner, plain, pad_id, max_tokens, pair_prompt: None, pair_overhead: PAIR_SPECIAL_TOKENS })
    }

    /// Pairs are read as one text: `prompt` with `{text1}` replaced by the premise and `{text2}` by the
    /// hypothesis ([`fill_pair_prompt`]), special tokens added as for a single text.
    pub fn with_pair_prompt(mut self, prompt: &str) -> Result<Self> {
        let empty = fill_pair_prompt(prompt, "", "");
        let enc = self.plain.encode(empty.as_str(), true).map_err(|e| Error::Tokenizer(e.to_string()))?;
        self.pair_overhead = enc.get_ids().len() + PROMPT_MARGIN;
        self.pair_prompt = Some(prompt.to_string());
        Ok(self)
    }

    /// The prompt pairs are written into, if the model reads them that way.
    pub fn pair_prompt(&self) -> Option<&str> {
        self.pair_prompt.as_deref()
    }

    /// The tokens a pair's two texts may take together without the model cutting them: the window
    /// less what the pair format adds (special tokens, a prompt's words).
    pub fn pair_room(&self) -> usize {
        self.max_tokens.saturating_sub(self.pair_overhead)
    }

    /// The id used for padding.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The window, in tokens.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The underlying tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    fn convert(enc: tokenizers::Encoding) -> Encoded {
        Encoded {
            truncated: !enc.get_overflowing().is_empty(),
            ids: enc.get_ids().to_vec(),
            type_ids: enc.get_type_ids().to_vec(),
        }
    }

    /// Tokenises single texts, in parallel.
    pub fn encode_texts(&self, texts: &[&str]) -> Result<Vec<Encoded>> {
        texts
            .par_iter()
            .map(|t| self.inner.encode(*t, true).map(Self::convert).map_err(|e| Error::Tokenizer(e.to_string())))
            .collect()
    }

    /// Tokenises (first, second) pairs, in parallel.
    pub fn encode_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<Encoded>> {
        pairs
            .par_iter()
            .map(|(a, b)| {
                let enc = match &self.pair_prompt {
                    Some(prompt) => self.inner.encode(fill_pair_prompt(prompt, a, b), true),
                    None => self.inner.encode((*a, *b), true),
                };
                enc.map(Self::convert).map_err(|e| Error::Tokenizer(e.to_string()))
            })
            .collect()
    }

    /// Number of tokens of a text without special tokens (for chunking).
    pub fn count_tokens(&self, text: &str) -> Result<usize> {
        let enc = self.plain.encode(text, false).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().len())
    }
}

impl TextTokenizer {
    /// Byte offsets of the tokens of `text` (no special tokens, no truncation), for cutting texts
    /// into windows by tokens.
    pub fn token_offsets(&self, text: &str) -> Result<Vec<(usize, usize)>> {
        let enc = self.plain.encode(text, false).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_offsets().to_vec())
    }
}

/// Cuts inputs of the given token lengths into batches: longest first, each batch's padded size
/// (count x longest) within `token_budget`, and at most `max_batch` inputs. A single input longer than
/// the budget gets a batch of its own. Returns indices into `lengths`.
pub fn plan_batches(lengths: &[usize], token_budget: usize, max_batch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    // Stable sort keeps equal lengths in input order, so plans are deterministic.
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]));
    let mut batches = vec![];
    let mut current: Vec<usize> = vec![];
    let mut longest = 0;
    for i in order {
        let len = lengths[i].max(1);
        let new_longest = longest.max(len);
        if !current.is_empty() && (new_longest * (current.len() + 1) > token_budget || current.len() >= max_batch) {
            batches.push(std::mem::take(&mut current));
            longest = 0;
        }
        longest = longest.max(len);
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Pads the selected inputs to the longest of them: (ids, mask, type ids) rows.
pub fn pad_batch(items: &[&Encoded], pad_id: u32) -> (Vec<Vec<u32>>, Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let longest = items.iter().map(|e| e.ids.len()).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(items.len());
    let mut mask = Vec::with_capacity(items.len());
    let mut types = Vec::with_capacity(items.len());
    for e in items {
        let pad = longest - e.ids.len();
        let mut row = e.ids.clone();
        row.extend(std::iter::repeat_n(pad_id, pad));
        ids.push(row);
        let mut m = vec![1u32; e.ids.len()];
        m.extend(std::iter::repeat_n(0, pad));
        mask.push(m);
        let mut t = e.type_ids.clone();
        t.extend(std::iter::repeat_n(0, pad));
        types.push(t);
    }
    (ids, mask, types)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HHEMv2Config.prompt, from vectara/hallucination_evaluation_model's configuration_hhem_v2.py.
    const HHEM_PROMPT: &str =
        "<pad> Determine if the hypothesis is true given the premise?\n\nPremise: {text1}\n\nHypothesis: {text2}";

    #[test]
    fn pair_prompts_are_filled_as_python_formats_them() {
        // Python: HHEM_PROMPT.format(text1="The cat {text2} sat.", text2="A {cat} }{.")
        assert_eq!(
            fill_pair_prompt(HHEM_PROMPT, "The cat {text2} sat.", "A {cat} }{."),
            "<pad> Determine if the hypothesis is true given the premise?\n\nPremise: The cat {text2} sat.\n\nHypothesis: A {cat} }{."
        );
        // Python: "{{x}} {text1}".format(text1="a", text2="b")
        assert_eq!(fill_pair_prompt("{{x}} {text1}", "a", "b"), "{x} a");
    }

    #[test]
    fn a_pair_prompt_makes_one_text_and_its_words_count_against_the_window() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/candor-nli-minilm/tokenizer.json");
        let plain = TextTokenizer::from_file(&path, 256).unwrap();
        let prompted = plain.clone().with_pair_prompt(HHEM_PROMPT).unwrap();
        assert_eq!(plain.pair_room(), 256 - PAIR_SPECIAL_TOKENS);
        let words = plain.count_tokens(&fill_pair_prompt(HHEM_PROMPT, "", "")).unwrap();
        assert_eq!(prompted.pair_room(), 256 - (words + 2) - PROMPT_MARGIN, "[CLS] and [SEP] around the prompt's words");
        let pair = [("The refund window is 30 days.", "Refunds take 30 days.")];
        let got = &prompted.encode_pairs(&pair).unwrap()[0];
        let want = &plain.encode_texts(&[&fill_pair_prompt(HHEM_PROMPT, pair[0].0, pair[0].1)]).unwrap()[0];
        assert_eq!(got, want);
        assert!(got.type_ids.iter().all(|&t| t == 0), "one text, one segment");
        assert_ne!(got, &plain.encode_pairs(&pair).unwrap()[0]);
    }

    /// MiniCheck's encoders join document and claim with the tokenizer's end-of-sequence token in one
    /// text: the special token written in the text is read as that token, so with BERT's tokenizer
    /// the ids are those of the tokenizer's own pair, in one segment.
    #[test]
    fn a_special_token_in_a_prompt_is_read_as_that_token() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/candor-nli-minilm/tokenizer.json");
        let plain = TextTokenizer::from_file(&path, 256).unwrap();
        let joined = plain.clone().with_pair_prompt("{text1}[SEP]{text2}").unwrap();
        let pair = [("The refund window is 30 days.", "Refunds take 30 days.")];
        let got = &joined.encode_pairs(&pair).unwrap()[0];
        let want = &plain.encode_pairs(&pair).unwrap()[0];
        assert_eq!(got.ids, want.ids);
        assert!(got.type_ids.iter().all(|&t| t == 0) && want.type_ids.contains(&1));
    }

    #[test]
    fn batches_respect_the_token_budget_and_sort_longest_first() {
        let lengths = [10, 200, 30, 30, 5, 120, 64];
        let plan = plan_batches(&lengths, 256, 64);
        // Every input appears exactly once.
        let mut seen: Vec<usize> = plan.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        for b in &plan {
            let longest = b.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(b.len() == 1 || longest * b.len() <= 256, "{b:?}");
        }
        assert_eq!(plan[0], vec![1]); // 200: alone, as 2 x 200 > 256
        assert_eq!(plan[1], vec![5, 6]); // 120 + 64 -> 2 x 120 = 240
        // Lengths never increase along the plan.
        let flat: Vec<usize> = plan.iter().flatten().map(|&i| lengths[i]).collect();
        assert!(flat.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn oversized_inputs_get_their_own_batch_and_max_batch_holds() {
        let plan = plan_batches(&[1000, 1000, 3], 256, 64);
        assert_eq!(plan, vec![vec![0], vec![1], vec![2]]);
        let plan = plan_batches(&[1; 10], 1000, 4);
        assert_eq!(plan.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        assert!(plan_batches(&[], 100, 4).is_empty());
    }

    #[test]
    fn pads_to_the_longest() {
        let a = Encoded { ids: vec![1, 2, 3], type_ids: vec![0, 0, 1], truncated: false };
        let b = Encoded { ids: vec![4], type_ids: vec![0], truncated: false };
        let (ids, mask, types) = pad_batch(&[&a, &b], 9);
        assert_eq!(ids, vec![vec![1, 2, 3], vec![4, 9, 9]]);
        assert_eq!(mask, vec![vec![1, 1, 1], vec![1, 0, 0]]);
        assert_eq!(types, vec![vec![0, 0, 1], vec![0, 0, 0]]);
    }
}

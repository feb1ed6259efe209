//! Hallucinated spans, as LettuceDetect (Kovács et al. 2025, KRLabsOrg/LettuceDetect) finds them: a
//! token classifier reads the question, the passages and the answer in its authors' prompt, labels
//! every answer token, and runs of hallucinated tokens become character spans of the answer.
//!
//! Each step follows the authors' `lettucedetect/detectors/transformer.py` and
//! `prompt_utils.py`: the English QA and summary prompts (`prompts/qa_prompt_en.txt`,
//! `summary_prompt_en.txt`); the pair (prompt, answer) tokenised with special tokens and the prompt
//! cut first; passages grouped greedily so that each group's prompt fits beside the answer
//! (`_group_passages_into_chunks`); a token's hallucination probability the maximum over groups; a
//! token hallucinated at probability 0.5 or more; consecutive hallucinated tokens merged into one
//! span whose confidence is their highest probability (`_build_spans_from_tokens`). One departure:
//! span offsets are the answer's own character positions (the authors subtract the first answer
//! token's start, which shifts every span when an answer begins with a space).

use std::ops::Range;

use candle_core::{DType, Device};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};
use crate::models::arch::{self, EncodedBatch, TokenClassifier};
use crate::models::ResolvedModel;

/// `prompts/qa_prompt_en.txt`, with Python's `string.Template` fields.
pub const QA_PROMPT: &str = "Briefly answer the following question:\n${question}\nBear in mind that your response should be strictly based on the following ${num_passages} passages:\n${context}\nIn case the passages do not contain the necessary information to answer the question, please reply with: \"Unable to answer based on given passages.\"\noutput:";
/// `prompts/summary_prompt_en.txt`.
pub const SUMMARY_PROMPT: &str = "Summarize the following text:\n${text}\noutput:";

/// A token is hallucinated at this probability or more (the authors' `max_prob >= 0.5`).
pub const TOKEN_THRESHOLD: f32 = 0.5;

/// `PromptUtils.format_context`: the passages numbered from 1 ("passage 1: ...", one a line) in
/// the QA prompt, or in the summary prompt where there is no question.
pub fn format_context(passages: &[&str], question: Option<&str>) -> String {
    let block = passages.iter().enumerate().map(|(i, p)| format!("passage {}: {p}", i + 1)).collect::<Vec<_>>().join("\n");
    match question {
        None => SUMMARY_PROMPT.replace("${text}", &block),
        Some(q) => QA_PROMPT
            .replace("${num_passages}", &passages.len().to_string())
            .replace("${question}", q)
            .replace("${context}", &block),
    }
}

/// `_group_passages_into_chunks`: passages (indices) grouped so that each group's prompt fits in
/// `max_length` tokens beside the answer's `answer_tokens` and 3 special tokens. `count` gives a
/// text's tokens without special tokens. All in one group when they fit (or when the instructions
/// alone leave no room); otherwise greedily, each passage counted as "passage i: text" with its
/// number in the whole list and one token for each newline between passages. A passage longer
/// than the room is a group of its own (its prompt is then cut).
pub fn group_passages(passages: &[&str], question: Option<&str>, answer_tokens: usize, max_length: usize, count: &dyn Fn(&str) -> usize) -> Vec<Vec<usize>> {
    let all: Vec<usize> = (0..passages.len()).collect();
    let total = max_length as i64 - answer_tokens as i64 - 3;
    if count(&format_context(passages, question)) as i64 <= total {
        return vec![all];
    }
    let overhead = count(&format_context(&[""], question)) as i64;
    let budget = total - overhead;
    if budget <= 0 {
        return vec![all];
    }
    let mut groups: Vec<Vec<usize>> = vec![];
    let mut current: Vec<usize> = vec![];
    let mut used = 0i64;
    for (i, p) in passages.iter().enumerate() {
        let n = count(&format!("passage {}: {p}", i + 1)) as i64;
        let mut effective = n + i64::from(!current.is_empty());
        if used + effective > budget && !current.is_empty() {
            groups.push(std::mem::take(&mut current));
            used = 0;
            effective = n;
        }
        current.push(i);
        used += effective;
    }
    if !current.is_empty() {
        groups.push(current);
    }
    if groups.is_empty() {
        vec![all]
    } else {
        groups
    }
}

/// A run of hallucinated answer tokens.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Span {
    /// Byte range in the answer.
    pub bytes: Range<usize>,
    /// The highest hallucination probability of its tokens.
    pub confidence: f32,
}

/// `_build_spans_from_tokens`: consecutive tokens at [`TOKEN_THRESHOLD`] or more merged into spans.
/// `tokens` are the answer's tokens in order, each its byte range in the answer and its
/// probability; empty ranges (special tokens) are passed over without ending a span.
pub fn merge_spans(tokens: &[(Range<usize>, f32)]) -> Vec<Span> {
    let mut spans: Vec<Span> = vec![];
    let mut open: Option<Span> = None;
    for (r, p) in tokens {
        if r.is_empty() {
            continue;
        }
        if *p >= TOKEN_THRESHOLD {
            match &mut open {
                Some(s) => {
                    s.bytes.end = r.end;
                    s.confidence = s.confidence.max(*p);
                }
                None => open = Some(Span { bytes: r.clone(), confidence: *p }),
            }
        } else if let Some(s) = open.take() {
            spans.push(s);
        }
    }
    spans.extend(open);
    spans
}

/// What the tagger found in one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Every answer token: its byte range in the answer and its hallucination probability, the
    /// highest over the passage groups.
    pub tokens: Vec<(Range<usize>, f32)>,
    /// The hallucinated spans.
    pub spans: Vec<Span>,
    /// Passage groups read (1 when everything fit in one prompt).
    pub groups: usize,
    /// Whether some prompt was cut to fit (a passage longer than the window).
    pub truncated: bool,
}

impl Detection {
    /// The highest hallucination probability among the answer tokens inside `bytes` (0 when none
    /// is).
    pub fn max_within(&self, bytes: &Range<usize>) -> f32 {
        self.tokens.iter().filter(|(r, _)| !r.is_empty() && r.start < bytes.end && r.end > bytes.start).map(|(_, p)| *p).fold(0.0, f32::max)
    }
}

/// A LettuceDetect-style token classifier with its tokenizer, on a device.
pub struct SpanTagger {
    model: Box<dyn TokenClassifier>,
    tokenizer: Tokenizer,
    plain: Tokenizer,
    device: Device,
    max_length: usize,
    id: String,
    /// Index of the hallucinated label (`not_entailment`; 1 in LettuceDetect's two-label head).
    hallucinated: usize,
}

impl SpanTagger {
    /// Loads a resolved (verified) token-classifier model on `device`; its registry `max_tokens` is
    /// the prompt-and-answer window (LettuceDetect's `max_length`, 4096 by default).
    pub fn load(model: &ResolvedModel, device: &Device) -> Result<Self> {
        let e = &model.entry;
        let dtype = super::device::default_dtype(device);
        let net = arch::load_token_classifier(e.architecture, &model.dir, dtype, device)?;
        super::outputs_match_labels(e, net.num_labels())?;
        // LettuceDetect's labels: 0 supported, 1 hallucinated; the registry names them
        // `entailment` and `not_entailment`.
        let hallucinated = e.labels.iter().position(|l| l == "not_entailment").ok_or_else(|| Error::Unsupported {
            model: e.name.clone(),
            reason: "a span tagger's labels must include `not_entailment` (hallucinated)".into(),
        })?;
        let path = model.file("tokenizer.json");
        let tok_err = |err: tokenizers::Error| Error::Tokenizer(format!("{}: {err}", path.display()));
        let mut tokenizer = Tokenizer::from_file(&path).map_err(tok_err)?;
        tokenizer.with_padding(None);
        let mut plain = tokenizer.clone();
        plain.with_truncation(None).map_err(tok_err)?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: e.max_tokens,
                strategy: TruncationStrategy::OnlyFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(tok_err)?;
        Ok(Self { model: net, tokenizer, plain, device: device.clone(), max_length: e.max_tokens, id: model.id(), hallucinated })
    }

    /// `name@sha-prefix` of the weights.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether `answer` fits the window with its special tokens and at least one prompt token
    /// (the prompt is cut first; an answer longer than that cannot be read whole).
    pub fn fits(&self, answer: &str) -> bool {
        self.count(answer) + 3 < self.max_length
    }

    fn count(&self, text: &str) -> usize {
        self.plain.encode(text, false).map(|e| e.get_ids().len()).unwrap_or(0)
    }

    /// Per-token hallucination probabilities of `answer` read after `prompt`: each answer token's
    /// byte range in the answer and its probability; and whether the prompt was cut (`answer_tokens`:
    /// the answer's own token count).
    fn read(&self, prompt: &str, answer: &str, answer_tokens: usize) -> Result<(Vec<(Range<usize>, f32)>, bool)> {
        let enc = self.tokenizer.encode((prompt, answer), true).map_err(|e| Error::Tokenizer(e.to_string()))?;
        let truncated = !enc.get_overflowing().is_empty() || self.count(prompt) + answer_tokens + 3 > self.max_length;
        let ids = enc.get_ids().to_vec();
        let n = ids.len();
        let batch = EncodedBatch::from_rows(&[ids], &[vec![1; n]], &[vec![0; n]], &self.device)?;
        let logits = self.model.token_logits(&batch)?.to_dtype(DType::F32)?.get(0)?;
        let probs = candle_nn::ops::softmax_last_dim(&logits)?.to_device(&Device::Cpu)?.to_vec2::<f32>()?;
        let seq = enc.get_sequence_ids();
        let offsets = enc.get_offsets();
        // The answer's tokens: those of the second sequence, and the closing special token after them
        // (labelled too by the authors; its empty range keeps it out of spans).
        let first = seq.iter().position(|s| *s == Some(1)).unwrap_or(n);
        let tokens = (first..n)
            .map(|i| {
                let r = if seq[i] == Some(1) { offsets[i].0..offsets[i].1 } else { 0..0 };
                (r, probs[i][self.hallucinated])
            })
            .collect();
        Ok((tokens, truncated))
    }

    /// Reads `answer` against `passages` (and `question`, or the summary prompt without one), as
    /// LettuceDetect's `predict(..., output_format="spans")` does.
    pub fn detect(&self, passages: &[&str], question: Option<&str>, answer: &str) -> Result<Detection> {
        let answer_tokens = self.count(answer);
        let groups = group_passages(passages, question, answer_tokens, self.max_length, &|t| self.count(t));
        let mut tokens: Vec<(Range<usize>, f32)> = vec![];
        let mut truncated = false;
        for g in &groups {
            let group: Vec<&str> = g.iter().map(|&i| passages[i]).collect();
            let (t, cut) = self.read(&format_context(&group, question), answer, answer_tokens)?;
            truncated |= cut;
            if tokens.is_empty() {
                tokens = t;
            } else {
                for (have, (_, p)) in tokens.iter_mut().zip(t) {
                    have.1 = have.1.max(p);
                }
            }
        }
        let spans = merge_spans(&tokens);
        Ok(Detection { tokens, spans, groups: groups.len(), truncated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prompts as LettuceDetect's PromptUtils.format_context writes them (strings from
    /// prompts/qa_prompt_en.txt and summary_prompt_en.txt, filled by string.Template).
    #[test]
    fn prompts_match_the_authors() {
        assert_eq!(
            format_context(&["Paris is the capital of France.", "It has 2.1 million people."], Some("What is the capital of France?")),
            "Briefly answer the following question:\nWhat is the capital of France?\nBear in mind that your response should be strictly based on the following 2 passages:\npassage 1: Paris is the capital of France.\npassage 2: It has 2.1 million people.\nIn case the passages do not contain the necessary information to answer the question, please reply with: \"Unable to answer based on given passages.\"\noutput:"
        );
        assert_eq!(format_context(&["A long article."], None), "Summarize the following text:\npassage 1: A long article.\noutput:");
    }

    /// Grouping by the authors' rule, with one token a word: everything in one group when it fits;
    /// otherwise greedy groups under the budget left after the instructions, a newline token
    /// between passages, and an oversized passage alone.
    #[test]
    fn passages_are_grouped_as_the_authors_do() {
        let words = |t: &str| t.split_whitespace().count();
        let p = ["a b c d e", "f g h i j", "k l m n o", "p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z"];
        let q = Some("why?");
        // The summary prompt with one empty passage is 7 words ("Summarize the following text:",
        // "passage 1:", "output:"): the instructions' overhead. Each passage of 5 words counts 7.
        assert_eq!(group_passages(&p[..2], None, 1, 100, &words), vec![vec![0, 1]]);
        // max_length 24, an answer of 1 token: 20 for the prompt, 13 for passages: 7 + (1 + 7) > 13.
        assert_eq!(group_passages(&p[..3], None, 1, 24, &words), vec![vec![0], vec![1], vec![2]]);
        // max_length 26: 15 for passages holds 7 + 1 + 7.
        assert_eq!(group_passages(&p[..3], None, 1, 26, &words), vec![vec![0, 1], vec![2]]);
        // An oversized passage is a group of its own.
        assert_eq!(group_passages(&p, None, 1, 26, &words), vec![vec![0, 1], vec![2], vec![3]]);
        // No room beside the instructions: one group (the prompt is then cut).
        assert_eq!(group_passages(&p, q, 1, 30, &words), vec![vec![0, 1, 2, 3]]);
    }

    #[test]
    fn spans_merge_runs_of_hallucinated_tokens() {
        let t = |a: usize, b: usize, p: f32| (a..b, p);
        let tokens = [t(0, 3, 0.1), t(3, 8, 0.7), t(8, 8, 0.1), t(8, 12, 0.5), t(12, 15, 0.49), t(15, 20, 0.9), t(0, 0, 0.99)];
        assert_eq!(
            merge_spans(&tokens),
            vec![Span { bytes: 3..12, confidence: 0.7 }, Span { bytes: 15..20, confidence: 0.9 }]
        );
        assert!(merge_spans(&[t(0, 4, 0.2)]).is_empty());
        let d = Detection { tokens: tokens.to_vec(), spans: merge_spans(&tokens), groups: 1, truncated: false };
        assert_eq!(d.max_within(&(0..4)), 0.7);
        assert_eq!(d.max_within(&(12..15)), 0.49);
        assert_eq!(d.max_within(&(30..40)), 0.0);
    }
}

//! The judge runtime: a quantized chat model that reads prompts and reports the probability of each
//! rating token at the answer position (G-Eval), without generating anything.
//!
//! Prompts come as a shared prefix (the rubric) and one continuation per case. The prefix is run
//! once and its KV cache reused by every case; continuations run in right-padded batches sorted by
//! length, cut by a token budget. Nothing is sampled, so the same prompts give the same ratings.

use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::Device;
use tokenizers::Tokenizer;

use crate::engine::RunStats;
use crate::error::{Error, Result};
use crate::models::arch::gguf_llama::{GgufLlama, KvCache};
use crate::models::gguf::{tokenizer_from_gguf, ChatTemplate};
use crate::models::{ResolvedModel, Role};

/// One piece of a prompt: template text (its special tokens are tokens) or data (read as plain text
/// even when it spells a special token such as `<|im_start|>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text written by candor: chat template and instructions.
    Template(String),
    /// Text from the suite: never able to open or close a chat turn.
    Data(String),
}

/// The rating distribution the judge gave one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Rating {
    /// P(rating = k) for k = 1..=scale, renormalised over the scale's tokens.
    pub distribution: Vec<f32>,
    /// The expected rating, in [1, scale].
    pub expected: f32,
    /// Probability the model put on the scale's tokens at all, before renormalising: low values mean
    /// the judge did not read the prompt as asking for a rating.
    pub mass: f32,
}

impl Rating {
    /// The expected rating mapped to [0, 1].
    pub fn score(&self) -> f32 {
        let scale = self.distribution.len().max(2) as f32;
        ((self.expected - 1.0) / (scale - 1.0)).clamp(0.0, 1.0)
    }
}

/// A loaded judge model.
pub struct JudgeModel {
    net: GgufLlama,
    chat: Tokenizer,
    plain: Tokenizer,
    template: ChatTemplate,
    digits: Vec<u32>,
    /// The GGUF's end-of-text token, where it names one.
    eos: Option<u32>,
    id: String,
    /// Most continuation tokens (rows x longest) in one batch.
    pub token_budget: usize,
    /// Whether the shared prefix's KV cache is reused (off: every prompt runs from its first token;
    /// for measuring what the reuse saves).
    pub reuse_prefix: bool,
    /// What the model computed so far (rating and generation together).
    pub stats: RunStats,
    /// Prompts answered by generation so far (claim decomposition).
    pub generated: usize,
}

impl JudgeModel {
    /// Loads a registry judge model (one `.gguf` file).
    pub fn load(model: &ResolvedModel, device: &Device) -> Result<Self> {
        model.require_role(Role::Judge)?;
        let e = &model.entry;
        let file = e
            .files
            .iter()
            .find(|f| f.path.ends_with(".gguf"))
            .ok_or_else(|| Error::Unsupported { model: e.name.clone(), reason: "names no .gguf file".into() })?;
        Self::from_file(&model.file(&file.path), model.id(), device)
    }

    /// Loads a GGUF file directly.
    pub fn from_file(path: &Path, id: String, device: &Device) -> Result<Self> {
        let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let ct = gguf_file::Content::read(&mut f).map_err(|e| Error::Unsupported {
            model: id.clone(),
            reason: format!("{} is not a readable GGUF file: {e}", path.display()),
        })?;
        let net = GgufLlama::from_gguf(&ct, &mut f, device)?;
        let chat = tokenizer_from_gguf(&ct)?;
        let mut plain = chat.clone();
        plain.set_encode_special_tokens(true);
        let template = ChatTemplate::from_gguf(&ct)?;
        let mut digits = Vec::new();
        for d in 1..=9 {
            let enc = chat.encode(d.to_string(), false).map_err(|e| Error::Tokenizer(e.to_string()))?;
            match enc.get_ids() {
                [one] => digits.push(*one),
                _ => return Err(Error::Unsupported { model: id, reason: format!("the digit {d} is not a single token") }),
            }
        }
        let token_budget = if device.is_cpu() { 2048 } else { 32_768 };
        let eos = ct.metadata.get("tokenizer.ggml.eos_token_id").and_then(|v| v.to_u32().ok());
        Ok(Self { net, chat, plain, template, digits, eos, id, token_budget, reuse_prefix: true, stats: RunStats::default(), generated: 0 })
    }

    /// `name@sha-prefix` of the weights.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The chat template family.
    pub fn template(&self) -> ChatTemplate {
        self.template
    }

    /// The token ids of the digits 1 to 9, whose next-token probabilities a rating reads.
    pub fn digits(&self) -> &[u32] {
        &self.digits
    }

    /// The network.
    pub fn network(&self) -> &GgufLlama {
        &self.net
    }

    /// Token ids of prompt pieces, in order.
    pub fn encode(&self, pieces: &[Piece]) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for p in pieces {
            let (tok, text) = match p {
                Piece::Template(t) => (&self.chat, t),
                Piece::Data(t) => (&self.plain, t),
            };
            let enc = tok.encode(text.as_str(), false).map_err(|e| Error::Tokenizer(e.to_string()))?;
            ids.extend_from_slice(enc.get_ids());
        }
        Ok(ids)
    }

    /// The tokenizer that reads data (special tokens as plain text).
    pub fn data_tokenizer(&self) -> &Tokenizer {
        &self.plain
    }

    /// Decodes token ids (for showing prompts).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.chat.decode(ids, false).map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Runs the shared prefix once; every prompt after it continues from the returned cache.
    fn run_prefix(&mut self, prefix: &[u32]) -> Result<KvCache> {
        let (_, cache) = self.net.forward(&[prefix.to_vec()], None)?;
        self.stats.tokens += prefix.len();
        self.stats.padded_tokens += prefix.len();
        Ok(cache)
    }

    /// Greedy continuations of each prompt after the shared `prefix`, up to `max_new[i]` tokens for
    /// prompt `i` or the end of the assistant's turn, decoded. The prefix runs once; each prompt then
    /// runs alone (so its text does not depend on the others). Nothing is sampled: the same prompts
    /// give the same texts. `done` is called with the number of prompts finished, after each.
    pub fn generate(&mut self, prefix: &[u32], prompts: &[Vec<u32>], max_new: &[usize], done: &dyn Fn(usize)) -> Result<Vec<String>> {
        if max_new.len() != prompts.len() {
            return Err(Error::Judge(format!("{} token budgets for {} prompts", max_new.len(), prompts.len())));
        }
        let stop = self.encode(&[Piece::Template(self.template.end_of_turn().to_string())])?;
        let stop = match stop.as_slice() {
            [one] => *one,
            _ => return Err(Error::Judge("the end-of-turn token is not a single token".into())),
        };
        let started = std::time::Instant::now();
        let past = if prefix.is_empty() { None } else { Some(self.run_prefix(prefix)?) };
        let max = self.net.max_positions();
        let mut out = Vec::with_capacity(prompts.len());
        for (k, (p, &max_new)) in prompts.iter().zip(max_new).enumerate() {
            let room = max.saturating_sub(prefix.len() + max_new + 1);
            if p.is_empty() || room == 0 {
                out.push(String::new());
                done(k + 1);
                continue;
            }
            let p = if p.len() > room { &p[p.len() - room..] } else { p.as_slice() };
            let (mut logits, mut cache) = self.net.forward(&[p.to_vec()], past.as_ref())?;
            self.stats.tokens += p.len();
            let mut ids = Vec::new();
            for _ in 0..max_new {
                let row: Vec<f32> = logits.squeeze(0)?.to_vec1()?;
                let next = argmax(&row);
                if next == stop || Some(next) == self.eos {
                    break;
                }
                ids.push(next);
                (logits, cache) = self.net.forward(&[vec![next]], Some(&cache))?;
                self.stats.tokens += 1;
            }
            out.push(self.decode(&ids)?);
            self.generated += 1;
            done(k + 1);
        }
        self.stats.model_time += started.elapsed();
        Ok(out)
    }

    /// Rates each continuation after the shared `prefix` on a 1..=`scale` scale. Continuations
    /// longer than the model's context are cut from the front of their data, never silently: the
    /// second value lists which were cut.
    pub fn rate(&mut self, prefix: &[u32], continuations: &[Vec<u32>], scale: usize) -> Result<(Vec<Rating>, Vec<bool>)> {
        if !(2..=9).contains(&scale) {
            return Err(Error::Judge(format!("a rating scale runs from 1 to 2..9, not to {scale}")));
        }
        let digits = self.digits[..scale].to_vec();
        let (rows, truncated) = self.next_token_logits(prefix, continuations)?;
        Ok((rows.iter().map(|l| read_rating(l, &digits)).collect(), truncated))
    }

    /// The next-token logits (over the whole vocabulary) after the shared `prefix` and each
    /// continuation, as [`JudgeModel::rate`] reads them, with which continuations were cut.
    pub fn next_token_logits(&mut self, prefix: &[u32], continuations: &[Vec<u32>]) -> Result<(Vec<Vec<f32>>, Vec<bool>)> {
        let max = self.net.max_positions();
        let room = max.saturating_sub(prefix.len() + 16).max(1);
        let mut truncated = vec![false; continuations.len()];
        let rows: Vec<&[u32]> = continuations
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if c.len() > room {
                    truncated[i] = true;
                    &c[c.len() - room..]
                } else {
                    c.as_slice()
                }
            })
            .collect();
        let started = std::time::Instant::now();
        let past = if self.reuse_prefix && !prefix.is_empty() { Some(self.run_prefix(prefix)?) } else { None };
        let mut out: Vec<Option<Vec<f32>>> = vec![None; rows.len()];
        // Each row runs padded to a width chosen from its own length, so its rating does not depend
        // on which other rows share its batch (see GgufLlama::forward_padded): sharded, resumed and
        // whole runs agree exactly.
        let full = |i: usize| rows[i].len() + if past.is_some() { 0 } else { prefix.len() };
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| (bucket(full(i)), i));
        let mut start = 0;
        while start < order.len() {
            let width = bucket(full(order[start]));
            let per_batch = (self.token_budget / width).clamp(1, 64);
            let mut end = start;
            while end < order.len() && end - start < per_batch && bucket(full(order[end])) == width {
                end += 1;
            }
            let batch = &order[start..end];
            start = end;
            let batch_rows: Vec<Vec<u32>> = batch
                .iter()
                .map(|&i| if past.is_some() { rows[i].to_vec() } else { [prefix, rows[i]].concat() })
                .collect();
            let (logits, _) = self.net.forward_padded(&batch_rows, past.as_ref(), width)?;
            let logits: Vec<Vec<f32>> = logits.to_vec2()?;
            for (&i, l) in batch.iter().zip(logits) {
                out[i] = Some(l);
            }
            self.stats.batches += 1;
            self.stats.tokens += batch_rows.iter().map(Vec::len).sum::<usize>();
            self.stats.padded_tokens += width * batch_rows.len();
        }
        self.stats.inputs += rows.len();
        self.stats.computed += rows.len();
        self.stats.model_time += started.elapsed();
        Ok((out.into_iter().map(|r| r.expect("every row is in one batch")).collect(), truncated))
    }
}

/// The index of the largest value (the first, on ties).
fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// The padded width of a row of `len` tokens: the next multiple of 16.
fn bucket(len: usize) -> usize {
    len.div_ceil(16) * 16
}

/// The rating distribution in a row of next-token logits.
fn read_rating(logits: &[f32], scale_tokens: &[u32]) -> Rating {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let total: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let p: Vec<f64> = scale_tokens.iter().map(|&t| ((logits[t as usize] - max) as f64).exp()).collect();
    let on_scale: f64 = p.iter().sum();
    let distribution: Vec<f32> = p.iter().map(|x| (x / on_scale) as f32).collect();
    let expected = p.iter().enumerate().map(|(k, x)| (k + 1) as f64 * x / on_scale).sum::<f64>() as f32;
    Rating { distribution, expected, mass: (on_scale / total) as f32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rating_is_the_expectation_over_the_scale_tokens() {
        // Vocabulary of 6; scale tokens 1..=3 at ids 3, 4, 5 with logits ln 1, ln 2, ln 1.
        let l = [0.0f32, 0.0, 0.0, 0.0, 2f32.ln(), 0.0];
        let r = read_rating(&l, &[3, 4, 5]);
        assert!((r.distribution[1] - 0.5).abs() < 1e-6);
        assert!((r.expected - 2.0).abs() < 1e-6);
        assert!((r.mass - 4.0 / 7.0).abs() < 1e-6);
        assert!((r.score() - 0.5).abs() < 1e-6);
        let sure = read_rating(&[0.0, 0.0, 0.0, 30.0, 0.0, 0.0], &[3, 4, 5]);
        assert!(sure.expected < 1.0001 && sure.score() < 1e-4);
    }
}

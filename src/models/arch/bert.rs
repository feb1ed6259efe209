//! BERT (Devlin et al. 2019) and its distillations (MiniLM): the encoder, the sequence-classification
//! head of `BertForSequenceClassification`, and the body of sentence-transformers embedders.
//!
//! Weights load by their upstream names (`bert.embeddings.word_embeddings.weight`, ...; the `bert.`
//! prefix is optional, as in sentence-transformers checkpoints). The encoder also serves RoBERTa and
//! XLM-RoBERTa, which differ only in how positions are numbered and in the head (see `roberta.rs`).

use std::collections::BTreeMap;

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{Embedding, Linear, VarBuilder};
use serde::Deserialize;

use super::layers::{attention_bias, dropout, linear, softmax_last, Activation, Dense, LayerNorm, Mode};
use super::{EncodedBatch, SequenceClassifier, TokenEncoder};
use crate::kernels::int8::Precision;

/// The upstream `config.json` of BERT-family models, read unchanged (unknown keys are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Feed-forward activation.
    #[serde(default)]
    pub hidden_act: Activation,
    /// Number of position embeddings.
    pub max_position_embeddings: usize,
    /// Number of token types (segments); 1 for RoBERTa.
    #[serde(default = "one")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Padding token id (RoBERTa numbers positions after it).
    #[serde(default)]
    pub pad_token_id: Option<usize>,
    /// Dropout after embeddings, attention output and feed-forward.
    #[serde(default)]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities.
    #[serde(default)]
    pub attention_probs_dropout_prob: f64,
    /// Dropout before the classifier (defaults to `hidden_dropout_prob`).
    #[serde(default)]
    pub classifier_dropout: Option<f64>,
    /// `bert`, `roberta`, `xlm-roberta`, ...
    #[serde(default)]
    pub model_type: Option<String>,
    /// Output index -> label name, for classifiers.
    #[serde(default)]
    pub id2label: Option<BTreeMap<String, String>>,
}

fn one() -> usize {
    1
}
fn default_eps() -> f64 {
    1e-12
}

impl Config {
    /// Number of classifier outputs (from `id2label`, else 2 as upstream defaults).
    pub fn num_labels(&self) -> usize {
        self.id2label.as_ref().map(|m| m.len()).filter(|&n| n > 0).unwrap_or(2)
    }
}

/// How positions are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positions {
    /// 0, 1, 2, ... (BERT).
    Absolute,
    /// padding_idx + 1, + 2, ... for real tokens, padding_idx for padding (RoBERTa).
    AfterPadding(usize),
}

struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Option<Embedding>,
    norm: LayerNorm,
    positions: Positions,
    dropout: f64,
}

impl Embeddings {
    fn load(vb: VarBuilder, cfg: &Config, positions: Positions) -> Result<Self> {
        let h = cfg.hidden_size;
        let word = candle_nn::embedding(cfg.vocab_size, h, vb.pp("word_embeddings"))?;
        let position = candle_nn::embedding(cfg.max_position_embeddings, h, vb.pp("position_embeddings"))?;
        let token_type = if cfg.type_vocab_size > 0 {
            Some(candle_nn::embedding(cfg.type_vocab_size, h, vb.pp("token_type_embeddings"))?)
        } else {
            None
        };
        let norm = LayerNorm::load(h, cfg.layer_norm_eps, vb.pp("LayerNorm"))?;
        Ok(Self { word, position, token_type, norm, positions, dropout: cfg.hidden_dropout_prob })
    }

    fn forward(&self, batch: &EncodedBatch, mode: Mode) -> Result<Tensor> {
        let (b, s) = batch.input_ids.dims2()?;
        let mut xs = self.word.forward(&batch.input_ids)?;
        if let Some(tt) = &self.token_type {
            xs = (xs + tt.forward(&batch.token_type_ids)?)?;
        }
        let pos = match self.positions {
            Positions::Absolute => {
                let ids = Tensor::arange(0u32, s as u32, batch.input_ids.device())?;
                self.position.forward(&ids)?.unsqueeze(0)?.broadcast_as((b, s, xs.dim(2)?))?
            }
            Positions::AfterPadding(pad) => {
                let m = batch.attention_mask.to_dtype(DType::F32)?;
                let ids = ((m.cumsum(1)? * &m)? + pad as f64)?.to_dtype(DType::U32)?;
                self.position.forward(&ids)?
            }
        };
        let xs = (xs + pos)?;
        let xs = self.norm.forward(&xs, mode)?;
        dropout(&xs, self.dropout, mode, 1)
    }

    /// Training on the CPU kernels: the embeddings of the real tokens only (`real` indexes the
    /// flattened batch), packed back to back, (total rows, hidden).
    fn forward_train_kernel(&self, batch: &EncodedBatch, real: &Tensor, seed: u64) -> Result<Tensor> {
        let (b, s) = batch.input_ids.dims2()?;
        let flat = |t: &Tensor| t.reshape(b * s)?.index_select(real, 0);
        let mut xs = self.word.forward(&flat(&batch.input_ids)?)?;
        if let Some(tt) = &self.token_type {
            xs = (xs + tt.forward(&flat(&batch.token_type_ids)?)?)?;
        }
        let ids = match self.positions {
            Positions::Absolute => Tensor::arange(0u32, s as u32, batch.input_ids.device())?.unsqueeze(0)?.broadcast_as((b, s))?.contiguous()?,
            Positions::AfterPadding(pad) => {
                let m = batch.attention_mask.to_dtype(DType::F32)?;
                ((m.cumsum(1)? * &m)? + pad as f64)?.to_dtype(DType::U32)?
            }
        };
        let xs = (xs + self.position.forward(&flat(&ids)?)?)?;
        dropout(&self.norm.forward_train_kernel(&xs)?, self.dropout, Mode::Train { seed }, 1)
    }
}

struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    /// Q, K and V weights stacked into one matrix, for inference (one matmul instead of three). Absent
    /// in models loaded for training, whose weights change under it.
    qkv: Option<Dense>,
    out: Dense,
    norm: LayerNorm,
    heads: usize,
    head_dim: usize,
    attn_dropout: f64,
    hidden_dropout: f64,
    /// Base id of this layer's dropout sites.
    site: u64,
}

impl Attention {
    fn load(vb: VarBuilder, cfg: &Config, index: usize, pack: Option<Precision>) -> Result<Self> {
        let h = cfg.hidden_size;
        if h % cfg.num_attention_heads != 0 {
            candle_core::bail!("hidden_size {h} is not a multiple of num_attention_heads {}", cfg.num_attention_heads);
        }
        let sv = vb.pp("self");
        let query = linear(h, h, sv.pp("query"))?;
        let key = linear(h, h, sv.pp("key"))?;
        let value = linear(h, h, sv.pp("value"))?;
        let qkv = match pack {
            Some(p) => Some(Dense::new(stack_linears(&[&query, &key, &value])?).pack_for_inference(p)?),
            None => None,
        };
        let ov = vb.pp("output");
        let out = Dense::load(h, h, ov.pp("dense"))?;
        let out = match pack {
            Some(p) => out.pack_for_inference(p)?,
            None => out,
        };
        let norm = LayerNorm::load(h, cfg.layer_norm_eps, ov.pp("LayerNorm"))?;
        Ok(Self {
            query,
            key,
            value,
            qkv,
            out,
            norm,
            heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
            attn_dropout: cfg.attention_probs_dropout_prob,
            hidden_dropout: cfg.hidden_dropout_prob,
            site: 100 + 10 * index as u64,
        })
    }

    fn forward(&self, xs: &Tensor, bias: &Tensor, mode: Mode) -> Result<Tensor> {
        let (b, s, h) = xs.dims3()?;
        let split = |t: Tensor| -> Result<Tensor> {
            t.reshape((b, s, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous()
        };
        if let (Some(qkv), Mode::Eval) = (&self.qkv, mode) {
            if self.runs_varlen() && xs.device().is_cpu() {
                // One pass over the stacked projections (kernels::cpu): no split, transposes or
                // (batch, heads, seq, seq) scores.
                let ctx = crate::kernels::cpu::attention(&qkv.forward(xs, mode)?, bias, self.heads)?;
                return self.norm.forward(&(self.out.forward(&ctx, mode)? + xs)?, mode);
            }
        }
        let (q, k, v) = match (&self.qkv, mode) {
            (Some(qkv), Mode::Eval) => {
                let qkv = qkv.forward(xs, mode)?;
                (qkv.narrow(D::Minus1, 0, h)?, qkv.narrow(D::Minus1, h, h)?, qkv.narrow(D::Minus1, 2 * h, h)?)
            }
            // Separate projections, so that gradients reach each upstream tensor.
            _ => (self.query.forward(xs)?, self.key.forward(xs)?, self.value.forward(xs)?),
        };
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let q = (split(q)? * scale)?;
        let k = split(k)?;
        let v = split(v)?;
        let scores = q.matmul(&k.t()?)?.broadcast_add(bias)?;
        let probs = softmax_last(&scores, mode)?;
        let probs = dropout(&probs, self.attn_dropout, mode, self.site + 1)?;
        let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, h))?;
        let out = dropout(&self.out.forward(&ctx, mode)?, self.hidden_dropout, mode, self.site + 2)?;
        self.norm.forward(&(out + xs)?, mode)
    }
}

impl Attention {
    /// Training on the CPU kernels, on rows packed back to back (`lens` per sequence): the stacked
    /// projections (the three upstream weights concatenated, so gradients reach each), attention,
    /// output projection, dropout, residual and LayerNorm, each differentiable. With `first_only`,
    /// the first token of each sequence alone comes out (its attention still reads every token).
    fn forward_train_kernel(&self, xs: &Tensor, lens: &[usize], seed: u64, first_only: bool) -> Result<Tensor> {
        let w = Tensor::cat(&[self.query.weight(), self.key.weight(), self.value.weight()], 0)?;
        let b = match (self.query.bias(), self.key.bias(), self.value.bias()) {
            (Some(q), Some(k), Some(v)) => Tensor::cat(&[q, k, v], 0)?,
            _ => candle_core::bail!("the training kernels need biased projections"),
        };
        let qkv = crate::kernels::train::linear(xs, &w, &b)?;
        let (ctx, residual) = if first_only {
            let starts = crate::kernels::cpu::sequence_starts(lens);
            let first = xs.index_select(&Tensor::from_vec(starts, lens.len(), xs.device())?, 0)?;
            (crate::kernels::train::attention_varlen_first(&qkv, lens, self.heads)?, first)
        } else {
            (crate::kernels::train::attention_varlen(&qkv, lens, self.heads)?, xs.clone())
        };
        let out = dropout(&self.out.forward_train_kernel(&ctx)?, self.hidden_dropout, Mode::Train { seed }, self.site + 2)?;
        self.norm.forward_train_kernel(&(out + residual)?)
    }

    /// True when the training kernels run this layer: no attention dropout (the kernel has none) and
    /// heads the attention kernel takes.
    fn trains_on_kernels(&self) -> bool {
        self.attn_dropout == 0.0
            && crate::kernels::cpu::attention_applies(self.head_dim)
            && self.query.bias().is_some()
            && self.key.bias().is_some()
            && self.value.bias().is_some()
    }

    /// True when the CPU attention kernels can run (padded or variable length): stacked, packed
    /// projections on the CPU and heads the kernel takes.
    fn runs_varlen(&self) -> bool {
        self.qkv.as_ref().is_some_and(Dense::runs_cpu_kernel) && crate::kernels::cpu::attention_applies(self.head_dim)
    }

    /// Evaluation on sequences packed back to back without padding: `xs` is (total rows, hidden).
    fn forward_varlen(&self, xs: &Tensor, lens: &[usize]) -> Result<Tensor> {
        let Some(qkv) = &self.qkv else { candle_core::bail!("variable-length attention needs the stacked projections") };
        let ctx = crate::kernels::cpu::attention_varlen(&qkv.forward(xs, Mode::Eval)?, lens, self.heads)?;
        self.norm.forward(&(self.out.forward(&ctx, Mode::Eval)? + xs)?, Mode::Eval)
    }

    /// [`Attention::forward_varlen`] for the first token of each sequence only: (sequences, hidden).
    fn forward_varlen_first(&self, xs: &Tensor, lens: &[usize]) -> Result<Tensor> {
        let Some(qkv) = &self.qkv else { candle_core::bail!("variable-length attention needs the stacked projections") };
        let ctx = crate::kernels::cpu::attention_varlen_first(&qkv.forward(xs, Mode::Eval)?, lens, self.heads)?;
        let starts = crate::kernels::cpu::sequence_starts(lens);
        let first = xs.index_select(&Tensor::from_vec(starts, lens.len(), xs.device())?, 0)?;
        self.norm.forward(&(self.out.forward(&ctx, Mode::Eval)? + first)?, Mode::Eval)
    }
}

/// Stacks the weights and biases of linear layers with the same input into one layer.
fn stack_linears(parts: &[&Linear]) -> Result<Linear> {
    let w = Tensor::cat(&parts.iter().map(|l| l.weight().detach()).collect::<Vec<_>>(), 0)?;
    let b = parts.iter().map(|l| l.bias().map(Tensor::detach)).collect::<Option<Vec<_>>>();
    let b = match b {
        Some(bs) => Some(Tensor::cat(&bs, 0)?),
        None => None,
    };
    Ok(Linear::new(w, b))
}

struct Layer {
    attention: Attention,
    intermediate: Dense,
    output: Dense,
    norm: LayerNorm,
    act: Activation,
    dropout: f64,
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &Config, index: usize, pack: Option<Precision>) -> Result<Self> {
        let attention = Attention::load(vb.pp("attention"), cfg, index, pack)?;
        let mut intermediate = Dense::load(cfg.hidden_size, cfg.intermediate_size, vb.pp("intermediate").pp("dense"))?;
        let mut output = Dense::load(cfg.intermediate_size, cfg.hidden_size, vb.pp("output").pp("dense"))?;
        if let Some(p) = pack {
            intermediate = intermediate.pack_for_inference(p)?;
            // The feed-forward output reads GELU activations, whose outliers 8 bits per row
            // resolve too coarsely (verdicts 99.35% equal to f32's with it in 8 bits, 99.81%
            // without; tests/precision.rs): f32 at every precision.
            output = output.pack_f32_for_inference()?;
        }
        let norm = LayerNorm::load(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?;
        Ok(Self { attention, intermediate, output, norm, act: cfg.hidden_act, dropout: cfg.hidden_dropout_prob })
    }

    fn forward_varlen(&self, xs: &Tensor, lens: &[usize]) -> Result<Tensor> {
        self.feed_forward(self.attention.forward_varlen(xs, lens)?)
    }

    /// The layer for the first token of each sequence only (its attention still reads every token).
    fn forward_varlen_first(&self, xs: &Tensor, lens: &[usize]) -> Result<Tensor> {
        self.feed_forward(self.attention.forward_varlen_first(xs, lens)?)
    }

    /// The feed-forward half of the layer in evaluation, on rows of attention output.
    fn feed_forward(&self, a: Tensor) -> Result<Tensor> {
        let f = self.intermediate.forward_act(&a, self.act, Mode::Eval)?;
        let f = self.output.forward(&f, Mode::Eval)?;
        self.norm.forward(&(f + a)?, Mode::Eval)
    }

    /// Training on the CPU kernels, on rows packed back to back; with `first_only`, the first token
    /// of each sequence alone comes out (the classifier reads no other row of the last layer).
    fn forward_train_kernel(&self, xs: &Tensor, lens: &[usize], seed: u64, first_only: bool) -> Result<Tensor> {
        let a = self.attention.forward_train_kernel(xs, lens, seed, first_only)?;
        let f = crate::kernels::train::gelu(&self.intermediate.forward_train_kernel(&a)?)?;
        let f = dropout(&self.output.forward_train_kernel(&f)?, self.dropout, Mode::Train { seed }, self.attention.site + 3)?;
        self.norm.forward_train_kernel(&(f + a)?)
    }

    fn forward(&self, xs: &Tensor, bias: &Tensor, mode: Mode) -> Result<Tensor> {
        let a = self.attention.forward(xs, bias, mode)?;
        let f = self.intermediate.forward_act(&a, self.act, mode)?;
        let f = dropout(&self.output.forward(&f, mode)?, self.dropout, mode, self.attention.site + 3)?;
        self.norm.forward(&(f + a)?, mode)
    }
}

/// The BERT encoder: embeddings and transformer layers, producing one state per token.
pub struct BertEncoder {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    hidden_size: usize,
    /// Training passes run the CPU training kernels where they apply (`kernels::train`); off, they
    /// compose candle's ops (the reference the kernels' gradients are tested against).
    train_kernels: bool,
}

impl BertEncoder {
    /// Loads the encoder for inference at `precision` from `vb` (which points at the folder holding
    /// `embeddings` and `encoder`).
    pub fn load(vb: VarBuilder, cfg: &Config, positions: Positions, precision: Precision) -> Result<Self> {
        Self::load_with(vb, cfg, positions, Some(precision))
    }

    /// Loads the encoder; `pack`, for inference, stacks the Q, K and V projections and packs (or at
    /// int8 quantizes) the weights for the CPU kernels at that precision; `None` for training, where
    /// weights change.
    pub fn load_with(vb: VarBuilder, cfg: &Config, positions: Positions, pack: Option<Precision>) -> Result<Self> {
        let embeddings = Embeddings::load(vb.pp("embeddings"), cfg, positions)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp("encoder").pp("layer").pp(i), cfg, i, pack))
            .collect::<Result<Vec<_>>>()?;
        let train_kernels = crate::kernels::train::available() && cfg.hidden_act == Activation::Gelu;
        Ok(Self { embeddings, layers, hidden_size: cfg.hidden_size, train_kernels })
    }

    /// Token states, (batch, seq, hidden). Padding positions hold zeros on the CPU's variable-length
    /// path and whatever the padded computation gives elsewhere: callers mask them.
    pub fn forward(&self, batch: &EncodedBatch, mode: Mode) -> Result<Tensor> {
        if mode == Mode::Eval {
            if let Some(lens) = self.varlen_lengths(batch)? {
                return self.forward_varlen(batch, &lens);
            }
        }
        let mut xs = self.embeddings.forward(batch, mode)?;
        let bias = attention_bias(&batch.attention_mask, xs.dtype())?;
        for layer in &self.layers {
            xs = layer.forward(&xs, &bias, mode)?;
        }
        Ok(xs)
    }

    /// Width of the token states.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// The real length of each row when the variable-length CPU path applies: evaluation of a model
    /// loaded for inference on an AVX-512 or AVX2 CPU, with padding only at the end of rows.
    fn varlen_lengths(&self, batch: &EncodedBatch) -> Result<Option<Vec<usize>>> {
        if !batch.input_ids.device().is_cpu() || self.layers.is_empty() || !self.layers.iter().all(|l| l.attention.runs_varlen()) {
            return Ok(None);
        }
        row_lengths(batch)
    }

    /// The encoder on the real tokens only: the rows of all sequences packed back to back (no
    /// padding computed: every linear layer runs on real tokens, attention within each sequence),
    /// then laid out again as (batch, seq, hidden) with zeros at padding.
    fn forward_varlen(&self, batch: &EncodedBatch, lens: &[usize]) -> Result<Tensor> {
        let (b, s) = batch.input_ids.dims2()?;
        let h = self.hidden_size;
        let device = batch.input_ids.device();
        let total: usize = lens.iter().sum();
        let mut xs = self.varlen_embeddings(batch, lens)?;
        for layer in &self.layers {
            xs = layer.forward_varlen(&xs, lens)?;
        }
        let mut back = Vec::with_capacity(b * s);
        let mut offset = 0u32;
        for &n in lens {
            back.extend((0..s).map(|j| if j < n { offset + j as u32 } else { total as u32 }));
            offset += n as u32;
        }
        let xs = Tensor::cat(&[xs.clone(), Tensor::zeros((1, h), xs.dtype(), device)?], 0)?;
        xs.index_select(&Tensor::from_vec(back, b * s, device)?, 0)?.reshape((b, s, h))
    }

    /// The embeddings of the real tokens, packed back to back: (total rows, hidden).
    fn varlen_embeddings(&self, batch: &EncodedBatch, lens: &[usize]) -> Result<Tensor> {
        let (b, s) = batch.input_ids.dims2()?;
        let emb = self.embeddings.forward(batch, Mode::Eval)?;
        emb.reshape((b * s, self.hidden_size))?.index_select(&real_rows(lens, s, batch.input_ids.device())?, 0)
    }

    /// The first token's state of each row, (batch, hidden). On the CPU's variable-length path the
    /// last layer computes that token alone (its attention still reads every token).
    pub fn forward_first(&self, batch: &EncodedBatch, mode: Mode) -> Result<Tensor> {
        if let Some(first) = self.forward_first_train_kernel(batch, mode)? {
            return Ok(first);
        }
        if mode == Mode::Eval {
            let lens = self.varlen_lengths(batch)?.filter(|l| !l.contains(&0));
            if let (Some(lens), Some((last, body))) = (lens, self.layers.split_last()) {
                let mut xs = self.varlen_embeddings(batch, &lens)?;
                for layer in body {
                    xs = layer.forward_varlen(&xs, &lens)?;
                }
                return last.forward_varlen_first(&xs, &lens);
            }
        }
        self.forward(batch, mode)?.narrow(1, 0, 1)?.squeeze(1)?.contiguous()
    }
}

impl BertEncoder {
    /// Switches the CPU training kernels on or off for training passes (on by default where they
    /// apply); for comparing them with candle's composed ops.
    pub fn set_train_kernels(&mut self, on: bool) {
        self.train_kernels = on && crate::kernels::train::available();
    }

    /// Whether training passes of `batch` run the CPU training kernels.
    pub fn trains_on_kernels(&self, batch: &EncodedBatch) -> bool {
        self.train_kernels
            && batch.input_ids.device().is_cpu()
            && self.layers.iter().all(|l| l.attention.trains_on_kernels())
            && self.embeddings.word.embeddings().dtype() == DType::F32
    }

    /// The first token's state of each row in training on the CPU kernels: every layer on the real
    /// tokens only, packed back to back. `None` where the kernels do not run this pass.
    fn forward_first_train_kernel(&self, batch: &EncodedBatch, mode: Mode) -> Result<Option<Tensor>> {
        let Mode::Train { seed } = mode else { return Ok(None) };
        if !self.trains_on_kernels(batch) {
            return Ok(None);
        }
        let Some(lens) = row_lengths(batch)?.filter(|l| !l.contains(&0)) else { return Ok(None) };
        let (b, s) = batch.input_ids.dims2()?;
        let dev = batch.input_ids.device();
        let mut xs = self.embeddings.forward_train_kernel(batch, &real_rows(&lens, s, dev)?, seed)?;
        let Some((last, body)) = self.layers.split_last() else {
            let starts = crate::kernels::cpu::sequence_starts(&lens);
            return Ok(Some(xs.index_select(&Tensor::from_vec(starts, b, dev)?, 0)?));
        };
        for layer in body {
            xs = layer.forward_train_kernel(&xs, &lens, seed, false)?;
        }
        // The last layer computes the first token of each row alone (its attention reads them all).
        Ok(Some(last.forward_train_kernel(&xs, &lens, seed, true)?))
    }
}

/// The real length of each row of `batch`, or `None` where a row has padding before a real token.
fn row_lengths(batch: &EncodedBatch) -> Result<Option<Vec<usize>>> {
    let mask: Vec<Vec<u32>> = batch.attention_mask.to_dtype(DType::U32)?.to_vec2()?;
    let mut lens = Vec::with_capacity(mask.len());
    for row in &mask {
        let n = row.iter().take_while(|&&m| m == 1).count();
        if row[n..].iter().any(|&m| m != 0) {
            return Ok(None);
        }
        lens.push(n);
    }
    Ok(Some(lens))
}

/// The indices of the real tokens of rows of length `lens` in a (rows x `s`) batch, flattened.
fn real_rows(lens: &[usize], s: usize, device: &candle_core::Device) -> Result<Tensor> {
    let real: Vec<u32> = lens.iter().enumerate().flat_map(|(i, &n)| (0..n).map(move |j| (i * s + j) as u32)).collect();
    let total = real.len();
    Tensor::from_vec(real, total, device)
}

/// `BertForSequenceClassification`: encoder, pooler (dense + tanh on [CLS]) and classifier.
pub struct BertClassifier {
    encoder: BertEncoder,
    pooler: Dense,
    classifier: Dense,
    dropout: f64,
    num_labels: usize,
}

impl BertClassifier {
    /// Loads from a checkpoint with upstream names (`bert.*`, `classifier.*`), for inference at
    /// `precision` on the CPU.
    pub fn load(vb: VarBuilder, cfg: &Config, precision: Precision) -> Result<Self> {
        Self::load_with(vb, cfg, Some(precision))
    }

    /// Loads for training: the same network without inference-only fusions, so that every
    /// upstream tensor is a trainable variable of the forward pass.
    pub fn load_for_training(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Self::load_with(vb, cfg, None)
    }

    /// Switches the CPU training kernels of the encoder on or off ([`BertEncoder::set_train_kernels`]).
    pub fn set_train_kernels(&mut self, on: bool) {
        self.encoder.set_train_kernels(on);
    }

    /// Whether training passes of `batch` run the CPU training kernels.
    pub fn trains_on_kernels(&self, batch: &EncodedBatch) -> bool {
        self.encoder.trains_on_kernels(batch)
    }

    fn load_with(vb: VarBuilder, cfg: &Config, pack: Option<Precision>) -> Result<Self> {
        let body = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb.clone() };
        let encoder = BertEncoder::load_with(body.clone(), cfg, Positions::Absolute, pack)?;
        let mut pooler = Dense::load(cfg.hidden_size, cfg.hidden_size, body.pp("pooler").pp("dense"))?;
        let num_labels = cfg.num_labels();
        let mut classifier = Dense::load(cfg.hidden_size, num_labels, vb.pp("classifier"))?;
        if pack.is_some() {
            // One row a sequence: f32 at every precision.
            pooler = pooler.pack_f32_for_inference()?;
            classifier = classifier.pack_f32_for_inference()?;
        }
        let dropout = cfg.classifier_dropout.unwrap_or(cfg.hidden_dropout_prob);
        Ok(Self { encoder, pooler, classifier, dropout, num_labels })
    }
}

impl SequenceClassifier for BertClassifier {
    fn logits(&self, batch: &EncodedBatch, mode: Mode) -> Result<Tensor> {
        let cls = self.encoder.forward_first(batch, mode)?;
        let pooled = self.pooler.forward(&cls, mode)?.tanh()?;
        let pooled = dropout(&pooled, self.dropout, mode, 9001)?;
        self.classifier.forward(&pooled, mode)
    }

    fn num_labels(&self) -> usize {
        self.num_labels
    }
}

/// A BERT body for sentence embeddings (sentence-transformers checkpoints).
pub struct BertTokenEncoder(pub BertEncoder);

impl BertTokenEncoder {
    /// Loads the encoder of a BERT checkpoint, with or without the `bert.` prefix, for inference at
    /// `precision` on the CPU.
    pub fn load(vb: VarBuilder, cfg: &Config, precision: Precision) -> Result<Self> {
        let body = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
        Ok(Self(BertEncoder::load(body, cfg, Positions::Absolute, precision)?))
    }
}

impl TokenEncoder for BertTokenEncoder {
    fn token_states(&self, batch: &EncodedBatch, mode: Mode) -> Result<Tensor> {
        self.0.forward(batch, mode)
    }

    fn hidden_size(&self) -> usize {
        self.0.hidden_size()
    }
}

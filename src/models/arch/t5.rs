//! The T5 encoder (Raffel et al. 2020) with a padding mask, and the HHEM-2.1-open head on it.
//!
//! candle-transformers' T5 encoder applies no attention mask, so a short input padded into a batch
//! attends to the padding and its scores change with its neighbours. This one adds the mask to the
//! relative position bias as transformers' `T5Stack` does (`extended_attention_mask`), computes the
//! attention softmax in f32 whatever the weights' dtype, and reads the upstream `config.json`
//! unchanged (candle-transformers' `t5::Config`).
//!
//! HHEM-2.1-open (vectara/hallucination_evaluation_model, `modeling_hhem_v2.py`) is
//! `T5ForTokenClassification` on flan-t5-base under the attribute `t5`, read at the first token:
//! `logits[:, 0, :]`, softmax, and output 1 ("consistent") is the probability that the hypothesis is
//! supported. Its own `config.json` carries the foundation model's name and the prompt every pair is
//! written into ([`HhemConfig::prompt`]); the foundation's T5 config is kept beside it, in
//! `foundation/config.json`. Weights by upstream names: `t5.transformer.shared`,
//! `t5.transformer.encoder.block.N.layer.{0,1}.*`, `t5.transformer.encoder.final_layer_norm`,
//! `t5.classifier`.
//!
//! MiniCheck-Flan-T5 (lytang/MiniCheck-Flan-T5-Large; Tang et al. 2024, `minicheck/inference.py`) is
//! `T5ForConditionalGeneration` scored by one decoder step from the start token (id 0): the logits of
//! the label tokens 3 and 209, softmaxed, and the second is P(supported). Its input is
//! `"predict: " + eos.join([document, claim])` ([`MINICHECK_PROMPT`]). Weights by upstream names:
//! `shared`, `encoder.*`, `decoder.block.N.layer.{0,1,2}.*`, `decoder.final_layer_norm`, `lm_head`.

use std::path::Path;

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Embedding, Linear, VarBuilder};
use candle_transformers::models::t5 as upstream;
use serde::Deserialize;

use super::layers::Mode;
use super::{EncodedBatch, SequenceClassifier};

/// The upstream config.json of T5 models (t5, flan-t5, t5-v1.1).
pub type Config = upstream::Config;

/// HHEM's own config.json (`HHEMv2Config`): the foundation model and the prompt.
#[derive(Debug, Clone, Deserialize)]
pub struct HhemConfig {
    /// The Hugging Face name of the T5 model the head sits on (`google/flan-t5-base`).
    #[serde(default)]
    pub foundation: String,
    /// The text every (premise, hypothesis) pair is written into, with `{text1}` for the premise and
    /// `{text2}` for the hypothesis.
    pub prompt: String,
}

/// The folder, inside an HHEM model folder, that holds the foundation's T5 `config.json`.
pub const FOUNDATION_DIR: &str = "foundation";

/// T5's layer norm: scale only, no mean subtracted, no bias, computed in f32.
struct T5LayerNorm {
    weight: Tensor,
    eps: f64,
}

impl T5LayerNorm {
    fn load(h: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self { weight: vb.get(h, "weight")?, eps })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dtype = xs.dtype();
        let x = xs.to_dtype(DType::F32)?;
        let var = x.sqr()?.mean_keepdim(D::Minus1)?;
        let x = x.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        x.to_dtype(dtype)?.broadcast_mul(&self.weight.to_dtype(dtype)?)
    }
}

/// The feed-forward block: `wo(act(wi(x)))`, or gated `wo(act(wi_0(x)) * wi_1(x))` (T5 v1.1, flan-t5).
struct FeedForward {
    wi: Linear,
    wi_gate: Option<Linear>,
    wo: Linear,
    act: candle_nn::Activation,
}

impl FeedForward {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let (wi, wi_gate) = if cfg.feed_forward_proj.gated {
            (
                candle_nn::linear_no_bias(cfg.d_model, cfg.d_ff, vb.pp("wi_0"))?,
                Some(candle_nn::linear_no_bias(cfg.d_model, cfg.d_ff, vb.pp("wi_1"))?),
            )
        } else {
            (candle_nn::linear_no_bias(cfg.d_model, cfg.d_ff, vb.pp("wi"))?, None)
        };
        let wo = candle_nn::linear_no_bias(cfg.d_ff, cfg.d_model, vb.pp("wo"))?;
        // T5 v1.0 configs say "relu" with no gating; the upstream deserializer maps both forms.
        Ok(Self { wi, wi_gate, wo, act: cfg.feed_forward_proj.activation })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let h = self.act.forward(&self.wi.forward(xs)?)?;
        let h = match &self.wi_gate {
            Some(gate) => (h * gate.forward(xs)?)?,
            None => h,
        };
        self.wo.forward(&h)
    }
}

/// T5 attention: no 1/sqrt(d) scaling (T5 folds it into the initialisation), a bias (relative
/// positions and padding for self-attention, padding alone for cross-attention) added to the scores,
/// the softmax in f32.
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: usize,
    d_kv: usize,
}

impl Attention {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let inner = cfg.num_heads * cfg.d_kv;
        Ok(Self {
            q: candle_nn::linear_no_bias(cfg.d_model, inner, vb.pp("q"))?,
            k: candle_nn::linear_no_bias(cfg.d_model, inner, vb.pp("k"))?,
            v: candle_nn::linear_no_bias(cfg.d_model, inner, vb.pp("v"))?,
            o: candle_nn::linear_no_bias(inner, cfg.d_model, vb.pp("o"))?,
            heads: cfg.num_heads,
            d_kv: cfg.d_kv,
        })
    }

    /// Queries from `xs` (batch, q_len, d_model), keys and values from `kv` (batch, kv_len, d_model);
    /// `bias`: f32, broadcastable to (batch, heads, q_len, kv_len).
    fn forward(&self, xs: &Tensor, kv: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (b, q_len, _) = xs.dims3()?;
        let kv_len = kv.dim(1)?;
        let split = |t: Tensor, n: usize| -> Result<Tensor> { t.reshape((b, n, self.heads, self.d_kv))?.transpose(1, 2)?.contiguous() };
        let q = split(self.q.forward(xs)?, q_len)?;
        let k = split(self.k.forward(kv)?, kv_len)?;
        let v = split(self.v.forward(kv)?, kv_len)?;
        let scores = q.matmul(&k.t()?)?.to_dtype(DType::F32)?.broadcast_add(bias)?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(v.dtype())?;
        self.o.forward(&weights.matmul(&v)?.transpose(1, 2)?.reshape((b, q_len, self.heads * self.d_kv))?)
    }
}

struct Block {
    attn_norm: T5LayerNorm,
    attn: Attention,
    ff_norm: T5LayerNorm,
    ff: FeedForward,
}

impl Block {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let l0 = vb.pp("layer.0");
        let l1 = vb.pp("layer.1");
        Ok(Self {
            attn_norm: T5LayerNorm::load(cfg.d_model, cfg.layer_norm_epsilon, l0.pp("layer_norm"))?,
            attn: Attention::load(l0.pp("SelfAttention"), cfg)?,
            ff_norm: T5LayerNorm::load(cfg.d_model, cfg.layer_norm_epsilon, l1.pp("layer_norm"))?,
            ff: FeedForward::load(l1.pp("DenseReluDense"), cfg)?,
        })
    }

    fn forward(&self, xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let h = self.attn_norm.forward(xs)?;
        let xs = (xs + self.attn.forward(&h, &h, bias)?)?;
        &xs + self.ff.forward(&self.ff_norm.forward(&xs)?)?
    }
}

/// The bucket of a relative position `memory - query` in a bidirectional encoder, as transformers'
/// `T5Attention._relative_position_bucket(bidirectional=True)`: half the buckets for keys after the
/// query, exact buckets for small distances, logarithmic ones up to `max_distance`.
pub fn relative_position_bucket(relative: i64, num_buckets: usize, max_distance: usize) -> usize {
    let half = num_buckets / 2;
    let offset = if relative > 0 { half } else { 0 };
    let distance = relative.unsigned_abs() as usize;
    let max_exact = half / 2;
    if distance < max_exact {
        return offset + distance;
    }
    // The same f32 arithmetic as upstream: log(d / max_exact) / log(max_distance / max_exact).
    let scale = ((max_distance as f64) / (max_exact as f64)).ln() as f32;
    let large = ((distance as f32 / max_exact as f32).ln() / scale * (half - max_exact) as f32) as usize;
    offset + (max_exact + large).min(half - 1)
}

/// (batch, 1, 1, seq) f32 from a 0/1 mask: 0 where attended, a large negative number at padding, as
/// transformers' extended attention mask ((1 - mask) * finfo.min).
fn padding_bias(mask: &Tensor) -> Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?;
    ((mask - 1.0)? * f64::from(f32::MAX))?.unsqueeze(1)?.unsqueeze(1)
}

/// The T5 encoder stack with a padding mask.
pub struct T5Encoder {
    shared: Embedding,
    blocks: Vec<Block>,
    final_norm: T5LayerNorm,
    relative_bias: Embedding,
    num_buckets: usize,
    max_distance: usize,
    d_model: usize,
}

impl T5Encoder {
    /// Loads from `vb` at the level of `T5EncoderModel` (`shared`, `encoder.*`).
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let shared = if vb.contains_tensor("shared.weight") {
            candle_nn::embedding(cfg.vocab_size, cfg.d_model, vb.pp("shared"))?
        } else {
            // A checkpoint may keep the tied copy under the encoder's name instead.
            candle_nn::embedding(cfg.vocab_size, cfg.d_model, vb.pp("encoder.embed_tokens"))?
        };
        let enc = vb.pp("encoder");
        let blocks = (0..cfg.num_layers).map(|i| Block::load(enc.pp(format!("block.{i}")), cfg)).collect::<Result<Vec<_>>>()?;
        let relative_bias = candle_nn::embedding(
            cfg.relative_attention_num_buckets,
            cfg.num_heads,
            enc.pp("block.0.layer.0.SelfAttention.relative_attention_bias"),
        )?;
        Ok(Self {
            shared,
            blocks,
            final_norm: T5LayerNorm::load(cfg.d_model, cfg.layer_norm_epsilon, enc.pp("final_layer_norm"))?,
            relative_bias,
            num_buckets: cfg.relative_attention_num_buckets,
            max_distance: cfg.relative_attention_max_distance,
            d_model: cfg.d_model,
        })
    }

    /// (1, heads, seq, seq) f32: the relative position bias every layer adds (computed by the first).
    fn position_bias(&self, seq: usize, device: &Device) -> Result<Tensor> {
        let buckets: Vec<u32> = (0..seq)
            .flat_map(|i| (0..seq).map(move |j| (j as i64 - i as i64, ())))
            .map(|(rel, ())| relative_position_bucket(rel, self.num_buckets, self.max_distance) as u32)
            .collect();
        let buckets = Tensor::from_vec(buckets, (seq, seq), device)?;
        self.relative_bias.forward(&buckets)?.to_dtype(DType::F32)?.permute((2, 0, 1))?.unsqueeze(0)
    }

    /// Token states, (batch, seq, d_model); padding (mask 0) is never attended to.
    pub fn forward(&self, batch: &EncodedBatch) -> Result<Tensor> {
        let (_, seq) = batch.input_ids.dims2()?;
        let device = batch.input_ids.device();
        let bias = self.position_bias(seq, device)?.broadcast_add(&padding_bias(&batch.attention_mask)?)?;
        let mut xs = self.shared.forward(&batch.input_ids)?;
        for block in &self.blocks {
            xs = block.forward(&xs, &bias)?;
        }
        self.final_norm.forward(&xs)
    }

    /// Width of the token states.
    pub fn hidden_size(&self) -> usize {
        self.d_model
    }
}

/// HHEM-2.1-open: `T5ForTokenClassification` read at the first token.
pub struct HhemClassifier {
    encoder: T5Encoder,
    classifier: Linear,
    num_labels: usize,
    prompt: String,
}

impl HhemClassifier {
    /// Reads HHEM's config.json and the foundation's T5 config from `dir` and loads the weights.
    pub fn load(vb: VarBuilder, dir: &Path) -> crate::error::Result<Self> {
        let hhem: HhemConfig = super::read_config(dir)?;
        let cfg: Config = super::read_config(&dir.join(FOUNDATION_DIR))?;
        let load = || -> Result<Self> {
            let t5 = vb.pp("t5");
            let encoder = T5Encoder::load(t5.pp("transformer"), &cfg)?;
            let num_labels = t5.pp("classifier").get_unchecked("bias")?.dim(0)?;
            let classifier = candle_nn::linear(cfg.d_model, num_labels, t5.pp("classifier"))?;
            Ok(Self { encoder, classifier, num_labels, prompt: hhem.prompt.clone() })
        };
        load().map_err(|e| super::load_err(dir, e))
    }
}

impl SequenceClassifier for HhemClassifier {
    fn logits(&self, batch: &EncodedBatch, mode: Mode) -> Result<Tensor> {
        if mode.is_train() {
            candle_core::bail!("training HHEM is not supported: candor trains BERT cross-encoders only");
        }
        let states = self.encoder.forward(batch)?;
        self.classifier.forward(&states.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?)
    }

    fn num_labels(&self) -> usize {
        self.num_labels
    }

    fn pair_prompt(&self) -> Option<&str> {
        Some(&self.prompt)
    }
}

/// The label tokens MiniCheck-Flan-T5 reads after one decoder step: `logits[:, [3, 209]]` in
/// `minicheck/inference.py` ("▁" and "▁1" in T5's vocabulary); the second means supported.
pub const MINICHECK_LABEL_TOKENS: [u32; 2] = [3, 209];

/// MiniCheck-Flan-T5's input: `'predict: ' + tokenizer.eos_token.join([doc, claim])`
/// (`minicheck/inference.py`, `batch_tokenize`).
pub const MINICHECK_PROMPT: &str = "predict: {text1}</s>{text2}";

/// One decoder block at the first decoder position. Self-attention over a single position gives that
/// position all the weight whatever its score and bias, so it is `o(v(x))`: the block's `q`, `k` and
/// relative bias do not change the result and are not read.
struct DecoderStep {
    self_norm: T5LayerNorm,
    self_v: Linear,
    self_o: Linear,
    cross_norm: T5LayerNorm,
    cross: Attention,
    ff_norm: T5LayerNorm,
    ff: FeedForward,
}

impl DecoderStep {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let (l0, l1, l2) = (vb.pp("layer.0"), vb.pp("layer.1"), vb.pp("layer.2"));
        let inner = cfg.num_heads * cfg.d_kv;
        Ok(Self {
            self_norm: T5LayerNorm::load(cfg.d_model, cfg.layer_norm_epsilon, l0.pp("layer_norm"))?,
            self_v: candle_nn::linear_no_bias(cfg.d_model, inner, l0.pp("SelfAttention.v"))?,
            self_o: candle_nn::linear_no_bias(inner, cfg.d_model, l0.pp("SelfAttention.o"))?,
            cross_norm: T5LayerNorm::load(cfg.d_model, cfg.layer_norm_epsilon, l1.pp("layer_norm"))?,
            cross: Attention::load(l1.pp("EncDecAttention"), cfg)?,
            ff_norm: T5LayerNorm::load(cfg.d_model, cfg.layer_norm_epsilon, l2.pp("layer_norm"))?,
            ff: FeedForward::load(l2.pp("DenseReluDense"), cfg)?,
        })
    }

    fn forward(&self, xs: &Tensor, states: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let xs = (xs + self.self_o.forward(&self.self_v.forward(&self.self_norm.forward(xs)?)?)?)?;
        // Cross-attention has no position bias in T5: the encoder's padding alone.
        let xs = (&xs + self.cross.forward(&self.cross_norm.forward(&xs)?, states, mask)?)?;
        &xs + self.ff.forward(&self.ff_norm.forward(&xs)?)?
    }
}

/// MiniCheck-Flan-T5: the encoder reads the prompt, one decoder step from the start token, and the
/// output layer's rows for the two label tokens give the logits (not supported, supported).
pub struct MinicheckT5 {
    encoder: T5Encoder,
    decoder: Vec<DecoderStep>,
    final_norm: T5LayerNorm,
    /// (2, d_model): `lm_head`'s rows for [`MINICHECK_LABEL_TOKENS`].
    label_head: Tensor,
    /// d_model**-0.5 where the output layer is the embedding (T5 v1.0); none for flan-t5.
    scale: Option<f64>,
    start: u32,
}

impl MinicheckT5 {
    /// Loads from a `T5ForConditionalGeneration` checkpoint with its upstream config.
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        if MINICHECK_LABEL_TOKENS.iter().any(|&t| t as usize >= cfg.vocab_size) {
            candle_core::bail!("the vocabulary ({}) does not reach MiniCheck's label tokens {MINICHECK_LABEL_TOKENS:?}", cfg.vocab_size);
        }
        let encoder = T5Encoder::load(vb.clone(), cfg)?;
        let layers = cfg.num_decoder_layers.unwrap_or(cfg.num_layers);
        let decoder = (0..layers).map(|i| DecoderStep::load(vb.pp(format!("decoder.block.{i}")), cfg)).collect::<Result<Vec<_>>>()?;
        let final_norm = T5LayerNorm::load(cfg.d_model, cfg.layer_norm_epsilon, vb.pp("decoder.final_layer_norm"))?;
        let head = if cfg.tie_word_embeddings { encoder.shared.embeddings().clone() } else { vb.get((cfg.vocab_size, cfg.d_model), "lm_head.weight")? };
        let rows = Tensor::new(&MINICHECK_LABEL_TOKENS, head.device())?;
        Ok(Self {
            encoder,
            decoder,
            final_norm,
            label_head: head.index_select(&rows, 0)?,
            scale: cfg.tie_word_embeddings.then(|| (cfg.d_model as f64).powf(-0.5)),
            start: cfg.decoder_start_token_id.unwrap_or(cfg.pad_token_id) as u32,
        })
    }
}

impl SequenceClassifier for MinicheckT5 {
    fn logits(&self, batch: &EncodedBatch, mode: Mode) -> Result<Tensor> {
        if mode.is_train() {
            candle_core::bail!("training MiniCheck-Flan-T5 is not supported: candor trains BERT cross-encoders only");
        }
        let states = self.encoder.forward(batch)?;
        let mask = padding_bias(&batch.attention_mask)?;
        let b = states.dim(0)?;
        let start = Tensor::full(self.start, (b, 1), states.device())?;
        let mut xs = self.encoder.shared.forward(&start)?;
        for block in &self.decoder {
            xs = block.forward(&xs, &states, &mask)?;
        }
        let mut xs = self.final_norm.forward(&xs)?.squeeze(1)?;
        if let Some(s) = self.scale {
            xs = (xs * s)?;
        }
        xs.matmul(&self.label_head.to_dtype(xs.dtype())?.t()?)
    }

    fn num_labels(&self) -> usize {
        MINICHECK_LABEL_TOKENS.len()
    }

    fn pair_prompt(&self) -> Option<&str> {
        Some(MINICHECK_PROMPT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_match_transformers() {
        // transformers: T5Attention._relative_position_bucket(torch.arange(-40, 41), True, 32, 128)
        let near: [usize; 81] = [
            12, 12, 12, 12, 12, 12, 12, 12, 12, 11, 11, 11, 11, 11, 11, 11, 11, 11, 10, 10, 10, 10, 10, 10, 10, 9, 9, 9,
            9, 8, 8, 8, 8, 7, 6, 5, 4, 3, 2, 1, 0, 17, 18, 19, 20, 21, 22, 23, 24, 24, 24, 24, 25, 25, 25, 25, 26, 26,
            26, 26, 26, 26, 26, 27, 27, 27, 27, 27, 27, 27, 27, 27, 28, 28, 28, 28, 28, 28, 28, 28, 28,
        ];
        let got: Vec<usize> = (-40..=40).map(|r| relative_position_bucket(r, 32, 128)).collect();
        assert_eq!(got, near);
        // ... (torch.arange(-200, 201, 7), True, 32, 128): past max_distance every bucket is the last.
        let far: [usize; 58] = [
            15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 14, 14, 14, 13, 13, 13, 12, 12, 11, 10, 8,
            4, 19, 24, 26, 27, 27, 28, 28, 29, 29, 30, 30, 30, 30, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
            31, 31,
        ];
        let got: Vec<usize> = (-200..=200).step_by(7).map(|r| relative_position_bucket(r, 32, 128)).collect();
        assert_eq!(got, far);
    }
}

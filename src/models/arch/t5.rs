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

/// Self-attention: no 1/sqrt(d) scaling (T5 folds it into the initialisation), the relative position
/// bias and the padding mask added to the scores.
struct SelfAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: usize,
    d_kv: usize,
}

impl SelfAttention {
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

    /// `bias`: (batch or 1, heads, seq, seq) in f32, position bias plus padding mask.
    fn forward(&self, xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (b, s, _) = xs.dims3()?;
        let split = |t: Tensor| -> Result<Tensor> { t.reshape((b, s, self.heads, self.d_kv))?.transpose(1, 2)?.contiguous() };
        let q = split(self.q.forward(xs)?)?;
        let k = split(self.k.forward(xs)?)?;
        let v = split(self.v.forward(xs)?)?;
        let scores = q.matmul(&k.t()?)?.to_dtype(DType::F32)?.broadcast_add(bias)?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(v.dtype())?;
        let out = weights.matmul(&v)?.transpose(1, 2)?.reshape((b, s, self.heads * self.d_kv))?;
        self.o.forward(&out)
    }
}

struct Block {
    attn_norm: T5LayerNorm,
    attn: SelfAttention,
    ff_norm: T5LayerNorm,
    ff: FeedForward,
}

impl Block {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let l0 = vb.pp("layer.0");
        let l1 = vb.pp("layer.1");
        Ok(Self {
            attn_norm: T5LayerNorm::load(cfg.d_model, cfg.layer_norm_epsilon, l0.pp("layer_norm"))?,
            attn: SelfAttention::load(l0.pp("SelfAttention"), cfg)?,
            ff_norm: T5LayerNorm::load(cfg.d_model, cfg.layer_norm_epsilon, l1.pp("layer_norm"))?,
            ff: FeedForward::load(l1.pp("DenseReluDense"), cfg)?,
        })
    }

    fn forward(&self, xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let xs = (xs + self.attn.forward(&self.attn_norm.forward(xs)?, bias)?)?;
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
        // (batch, 1, 1, seq): 0 where attended, a large negative number at padding, as transformers'
        // extended attention mask ((1 - mask) * finfo.min).
        let mask = batch.attention_mask.to_dtype(DType::F32)?;
        let mask = ((mask - 1.0)? * f64::from(f32::MAX))?.unsqueeze(1)?.unsqueeze(1)?;
        let bias = self.position_bias(seq, device)?.broadcast_add(&mask)?;
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
        self.classifier.forward(&states.narrow(1, 0, 1)?.squeeze(1)?)
    }

    fn num_labels(&self) -> usize {
        self.num_labels
    }

    fn pair_prompt(&self) -> Option<&str> {
        Some(&self.prompt)
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

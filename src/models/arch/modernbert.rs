//! ModernBERT (Warner et al. 2024, "Smarter, Better, Faster, Longer") as a token classifier:
//! `ModernBertForTokenClassification`, the network of LettuceDetect (KRLabsOrg), which marks each
//! token of an answer as supported or hallucinated.
//!
//! Ported from candle-transformers' `modernbert.rs` (which has no token-classification head), checked
//! against transformers' `modeling_modernbert.py`: pre-norm layers (the first without an attention
//! norm), fused QKV without bias, rotary position embeddings with one base for the global layers and
//! another for the local ones, GeGLU feed-forward, LayerNorm without bias. Differences from
//! candle-transformers': the padding mask and the sliding window are finite additive masks (a padded
//! row far from every real token gets no NaN), the attention softmax runs in f32 whatever the
//! weights' dtype, the rotary tables cover only the batch's length, and the config reads both forms
//! transformers writes (`global_attn_every_n_layers` and `*_rope_theta` up to 4.x, `layer_types` and
//! `rope_parameters` from 5.0).

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::{Embedding, Linear, Module, VarBuilder};
use serde::Deserialize;

use super::layers::Activation;
use super::EncodedBatch;

fn default_max_positions() -> usize {
    8192
}
fn default_eps() -> f64 {
    1e-5
}
fn default_local_attention() -> usize {
    128
}
fn default_global_every() -> usize {
    3
}

/// The rotary base of one kind of layer in transformers 5's `rope_parameters`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RopeParameters {
    /// Base of the inverse frequencies.
    pub rope_theta: f64,
    /// Only "default" (plain RoPE) is supported.
    #[serde(default)]
    pub rope_type: Option<String>,
}

/// The upstream `config.json` of a ModernBERT model, read unchanged.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Config {
    /// Token vocabulary size.
    pub vocab_size: usize,
    /// Width of the token states.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the GeGLU feed-forward (Wi's output is twice this).
    pub intermediate_size: usize,
    /// Longest input in tokens.
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    /// LayerNorm's epsilon.
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    /// Whether the LayerNorms have a bias.
    #[serde(default)]
    pub norm_bias: bool,
    /// Whether Wqkv and Wo have biases.
    #[serde(default)]
    pub attention_bias: bool,
    /// Whether the feed-forward layers have biases.
    #[serde(default)]
    pub mlp_bias: bool,
    /// Whether the head's dense layer has a bias.
    #[serde(default)]
    pub classifier_bias: bool,
    /// The feed-forward's activation.
    #[serde(default)]
    pub hidden_activation: Activation,
    /// The head's activation.
    #[serde(default)]
    pub classifier_activation: Activation,
    /// The whole sliding window: a local layer's token sees those at most half of it away.
    #[serde(default = "default_local_attention")]
    pub local_attention: usize,
    /// transformers 4.x: every n-th layer (from the first) is global, the others local.
    #[serde(default = "default_global_every")]
    pub global_attn_every_n_layers: usize,
    /// transformers 5.x: "full_attention" or "sliding_attention" per layer (wins over the above).
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    /// transformers 4.x: rotary base of the global layers.
    #[serde(default)]
    pub global_rope_theta: Option<f64>,
    /// transformers 4.x: rotary base of the local layers.
    #[serde(default)]
    pub local_rope_theta: Option<f64>,
    /// transformers 5.x: rotary bases under "full_attention" and "sliding_attention".
    #[serde(default)]
    pub rope_parameters: Option<HashMap<String, RopeParameters>>,
    /// The head's labels.
    #[serde(default)]
    pub id2label: Option<HashMap<String, String>>,
}

impl Config {
    /// Whether layer `i` attends within the sliding window only.
    pub fn is_local(&self, i: usize) -> bool {
        match &self.layer_types {
            Some(types) => types.get(i).is_some_and(|t| t == "sliding_attention"),
            None => i % self.global_attn_every_n_layers.max(1) != 0,
        }
    }

    /// The rotary base of the local or the global layers (160,000 and 10,000 when the config names
    /// none, transformers' defaults).
    pub fn rope_theta(&self, local: bool) -> f64 {
        let key = if local { "sliding_attention" } else { "full_attention" };
        let from_5x = self.rope_parameters.as_ref().and_then(|p| p.get(key)).map(|p| p.rope_theta);
        let from_4x = if local { self.local_rope_theta } else { self.global_rope_theta };
        from_5x.or(from_4x).unwrap_or(if local { 10_000.0 } else { 160_000.0 })
    }

    /// Number of labels of the classification head (2 when the config names none).
    pub fn num_labels(&self) -> usize {
        self.id2label.as_ref().map(|m| m.len()).filter(|&n| n > 0).unwrap_or(2)
    }

    fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// LayerNorm over the last dimension, in f32, with an optional bias (ModernBERT has none).
struct Norm {
    weight: Tensor,
    bias: Option<Tensor>,
    eps: f64,
}

impl Norm {
    fn load(dim: usize, cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let bias = if cfg.norm_bias { Some(vb.get(dim, "bias")?) } else { None };
        Ok(Self { weight: vb.get(dim, "weight")?, bias, eps: cfg.norm_eps })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dtype = xs.dtype();
        let x = xs.to_dtype(DType::F32)?;
        let mean = x.mean_keepdim(D::Minus1)?;
        let x = x.broadcast_sub(&mean)?;
        let var = x.sqr()?.mean_keepdim(D::Minus1)?;
        let x = x.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        let x = x.to_dtype(dtype)?.broadcast_mul(&self.weight)?;
        match &self.bias {
            Some(b) => x.broadcast_add(b),
            None => Ok(x),
        }
    }
}

fn linear(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder) -> Result<Linear> {
    if bias {
        candle_nn::linear(in_dim, out_dim, vb)
    } else {
        candle_nn::linear_no_bias(in_dim, out_dim, vb)
    }
}

struct Attention {
    wqkv: Linear,
    wo: Linear,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            wqkv: linear(h, 3 * h, cfg.attention_bias, vb.pp("Wqkv"))?,
            wo: linear(h, h, cfg.attention_bias, vb.pp("Wo"))?,
            heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
        })
    }

    /// `bias` is the additive f32 mask, (batch, 1, seq, seq); `cos`/`sin` the rotary tables (seq, head_dim / 2).
    fn forward(&self, xs: &Tensor, bias: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let (b, t, h) = xs.dims3()?;
        let qkv = self.wqkv.forward(xs)?.reshape((b, t, 3, self.heads, self.head_dim))?.permute((2, 0, 3, 1, 4))?;
        let q = candle_nn::rotary_emb::rope(&qkv.get(0)?.contiguous()?, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&qkv.get(1)?.contiguous()?, cos, sin)?;
        let v = qkv.get(2)?.contiguous()?;
        let scale = (self.head_dim as f64).powf(-0.5);
        let scores = (q.matmul(&k.t()?)? * scale)?.to_dtype(DType::F32)?.broadcast_add(bias)?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(v.dtype())?;
        let out = weights.matmul(&v)?.transpose(1, 2)?.reshape((b, t, h))?;
        self.wo.forward(&out)
    }
}

struct Layer {
    attn_norm: Option<Norm>,
    attn: Attention,
    mlp_norm: Norm,
    wi: Linear,
    wo: Linear,
    act: Activation,
    local: bool,
}

impl Layer {
    fn load(i: usize, cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        // transformers: the first layer's attention norm is an Identity (the embeddings are normed).
        let attn_norm = if i == 0 { None } else { Some(Norm::load(h, cfg, vb.pp("attn_norm"))?) };
        Ok(Self {
            attn_norm,
            attn: Attention::load(cfg, vb.pp("attn"))?,
            mlp_norm: Norm::load(h, cfg, vb.pp("mlp_norm"))?,
            wi: linear(h, 2 * cfg.intermediate_size, cfg.mlp_bias, vb.pp("mlp").pp("Wi"))?,
            wo: linear(cfg.intermediate_size, h, cfg.mlp_bias, vb.pp("mlp").pp("Wo"))?,
            act: cfg.hidden_activation,
            local: cfg.is_local(i),
        })
    }

    fn forward(&self, xs: &Tensor, bias: &Tensor, rope: &(Tensor, Tensor)) -> Result<Tensor> {
        let normed = match &self.attn_norm {
            Some(n) => n.forward(xs)?,
            None => xs.clone(),
        };
        let xs = (xs + self.attn.forward(&normed, bias, &rope.0, &rope.1)?)?;
        // GeGLU: the first half of Wi's output, activated, gates the second.
        let wi = self.wi.forward(&self.mlp_norm.forward(&xs)?)?;
        let half = wi.dim(D::Minus1)? / 2;
        let gated = (self.act.forward(&wi.narrow(D::Minus1, 0, half)?)? * wi.narrow(D::Minus1, half, half)?)?;
        xs + self.wo.forward(&gated)?
    }
}

/// A finite stand-in for minus infinity in additive masks.
const MASKED: f32 = -1e30;

/// `ModernBertForTokenClassification`: logits for every token of every input.
pub struct ModernBertTokenClassifier {
    embeddings: Embedding,
    embed_norm: Norm,
    layers: Vec<Layer>,
    final_norm: Norm,
    head_dense: Linear,
    head_act: Activation,
    head_norm: Norm,
    classifier: Linear,
    cfg: Config,
}

impl ModernBertTokenClassifier {
    /// Loads from a checkpoint with upstream names (`model.*`, `head.*`, `classifier`).
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let h = cfg.hidden_size;
        if h % cfg.num_attention_heads != 0 || cfg.head_dim() % 2 != 0 {
            candle_core::bail!("hidden_size {h} does not split into {} heads of an even width", cfg.num_attention_heads);
        }
        if let Some(p) = &cfg.rope_parameters {
            if let Some(other) = p.values().filter_map(|r| r.rope_type.as_deref()).find(|t| *t != "default") {
                candle_core::bail!("rope_type {other:?} is not supported (only the default RoPE)");
            }
        }
        let m = vb.pp("model");
        let layers = (0..cfg.num_hidden_layers).map(|i| Layer::load(i, cfg, m.pp(format!("layers.{i}")))).collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embeddings: candle_nn::embedding(cfg.vocab_size, h, m.pp("embeddings").pp("tok_embeddings"))?,
            embed_norm: Norm::load(h, cfg, m.pp("embeddings").pp("norm"))?,
            layers,
            final_norm: Norm::load(h, cfg, m.pp("final_norm"))?,
            head_dense: linear(h, h, cfg.classifier_bias, vb.pp("head").pp("dense"))?,
            head_act: cfg.classifier_activation,
            head_norm: Norm::load(h, cfg, vb.pp("head").pp("norm"))?,
            classifier: candle_nn::linear(h, cfg.num_labels(), vb.pp("classifier"))?,
            cfg: cfg.clone(),
        })
    }

    fn rope(&self, t: usize, local: bool, dtype: DType, device: &Device) -> Result<(Tensor, Tensor)> {
        let d = self.cfg.head_dim();
        let theta = self.cfg.rope_theta(local);
        let inv: Vec<f32> = (0..d).step_by(2).map(|i| (1.0 / theta.powf(i as f64 / d as f64)) as f32).collect();
        let inv = Tensor::from_vec(inv, (1, d / 2), device)?;
        let pos = Tensor::arange(0u32, t as u32, device)?.to_dtype(DType::F32)?.reshape((t, 1))?;
        let freqs = pos.matmul(&inv)?;
        Ok((freqs.cos()?.to_dtype(dtype)?, freqs.sin()?.to_dtype(dtype)?))
    }

    /// The config this model was loaded with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }
}

impl super::TokenClassifier for ModernBertTokenClassifier {
    fn token_logits(&self, batch: &EncodedBatch) -> Result<Tensor> {
        let (b, t) = batch.input_ids.dims2()?;
        let device = batch.input_ids.device();
        if t > self.cfg.max_position_embeddings {
            candle_core::bail!("{t} tokens exceed the model's {} positions", self.cfg.max_position_embeddings);
        }
        let mut xs = self.embed_norm.forward(&self.embeddings.forward(&batch.input_ids)?)?;
        let dtype = xs.dtype();
        // Keys that are padding are masked for every query; local layers also mask keys more than
        // half the window away (transformers: |i - j| <= local_attention / 2).
        let keys = batch.attention_mask.to_dtype(DType::F32)?;
        let global = ((1.0 - keys)? * MASKED as f64)?.reshape((b, 1, 1, t))?;
        let half = self.cfg.local_attention / 2;
        let window: Vec<f32> = (0..t).flat_map(|i| (0..t).map(move |j| if i.abs_diff(j) > half { MASKED } else { 0.0 })).collect();
        let local = global.broadcast_add(&Tensor::from_vec(window, (1, 1, t, t), device)?)?;
        let global_rope = self.rope(t, false, dtype, device)?;
        let local_rope = self.rope(t, true, dtype, device)?;
        for layer in &self.layers {
            xs = if layer.local { layer.forward(&xs, &local, &local_rope)? } else { layer.forward(&xs, &global, &global_rope)? };
        }
        let xs = self.final_norm.forward(&xs)?;
        let xs = self.head_norm.forward(&self.head_act.forward(&self.head_dense.forward(&xs)?)?)?;
        self.classifier.forward(&xs)
    }

    fn num_labels(&self) -> usize {
        self.cfg.num_labels()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of answerdotai/ModernBERT-base's config.json, which LettuceDetect-base fine-tunes,
    /// with a two-label head: the form transformers 4.x writes.
    const LETTUCE_BASE: &str = r#"{
      "architectures": ["ModernBertForTokenClassification"], "model_type": "modernbert",
      "vocab_size": 50368, "hidden_size": 768, "num_hidden_layers": 22, "num_attention_heads": 12,
      "intermediate_size": 1152, "max_position_embeddings": 8192, "norm_eps": 1e-05, "norm_bias": false,
      "global_rope_theta": 160000.0, "local_rope_theta": 10000.0, "local_attention": 128,
      "global_attn_every_n_layers": 3, "hidden_activation": "gelu", "classifier_activation": "gelu",
      "classifier_bias": false, "attention_bias": false, "mlp_bias": false,
      "id2label": {"0": "LABEL_0", "1": "LABEL_1"}, "pad_token_id": 50283
    }"#;

    #[test]
    fn reads_the_4x_config_form() {
        let cfg: Config = serde_json::from_str(LETTUCE_BASE).unwrap();
        let local: Vec<usize> = (0..cfg.num_hidden_layers).filter(|&i| cfg.is_local(i)).collect();
        assert_eq!(local.len(), 14, "layers 0, 3, ..., 21 are global");
        assert!(!cfg.is_local(0) && cfg.is_local(1) && cfg.is_local(2) && !cfg.is_local(3) && !cfg.is_local(21));
        assert_eq!(cfg.rope_theta(false), 160_000.0);
        assert_eq!(cfg.rope_theta(true), 10_000.0);
        assert_eq!(cfg.num_labels(), 2);
    }

    #[test]
    fn reads_the_5x_config_form() {
        let cfg: Config = serde_json::from_str(
            r#"{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 3, "num_attention_heads": 2,
                "intermediate_size": 12,
                "layer_types": ["full_attention", "full_attention", "sliding_attention"],
                "rope_parameters": {"full_attention": {"rope_theta": 5000.0, "rope_type": "default"},
                                    "sliding_attention": {"rope_theta": 70.0, "rope_type": "default"}}}"#,
        )
        .unwrap();
        assert_eq!([cfg.is_local(0), cfg.is_local(1), cfg.is_local(2)], [false, false, true]);
        assert_eq!(cfg.rope_theta(false), 5000.0);
        assert_eq!(cfg.rope_theta(true), 70.0);
    }
}

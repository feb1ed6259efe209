//! Building blocks shared by the encoder architectures.
//!
//! Every block has two paths: the fused candle ops for inference (fast, no gradient) and a composition
//! of elementary ops for training (differentiable end to end: candle-nn's fused `layer_norm` and
//! `softmax_last_dim` have no backward pass, so gradients would silently stop there).

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{Linear, VarBuilder};
use serde::Deserialize;

/// Whether a forward pass is for inference or for training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Inference: fused ops, no dropout.
    #[default]
    Eval,
    /// Training: differentiable ops, dropout on.
    Train,
}

impl Mode {
    /// True in training.
    pub fn is_train(self) -> bool {
        self == Mode::Train
    }
}

/// The activation functions that upstream configs name in `hidden_act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Activation {
    /// Exact GELU (erf).
    #[default]
    #[serde(rename = "gelu")]
    Gelu,
    /// GELU, tanh approximation.
    #[serde(alias = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    #[serde(rename = "gelu_approximate")]
    GeluApprox,
    /// ReLU.
    #[serde(rename = "relu")]
    Relu,
    /// Tanh.
    #[serde(rename = "tanh")]
    Tanh,
}

impl Activation {
    /// Applies the activation.
    pub fn forward(self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Gelu => xs.gelu_erf(),
            Activation::GeluApprox => xs.gelu(),
            Activation::Relu => xs.relu(),
            Activation::Tanh => xs.tanh(),
        }
    }
}

/// LayerNorm with upstream names (`weight`, `bias`) and both a fused and a differentiable path.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Loads `weight` and `bias` of size `dim`.
    pub fn load(dim: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(dim, "weight", candle_nn::Init::Const(1.0))?;
        let bias = vb.get_with_hints(dim, "bias", candle_nn::Init::Const(0.0))?;
        Ok(Self { weight, bias, eps })
    }

    /// Normalises over the last dimension.
    pub fn forward(&self, xs: &Tensor, mode: Mode) -> Result<Tensor> {
        if !mode.is_train() && xs.is_contiguous() {
            return candle_nn::ops::layer_norm(xs, &self.weight, &self.bias, self.eps as f32);
        }
        layer_norm_diff(xs, &self.weight, &self.bias, self.eps)
    }
}

/// LayerNorm from elementary ops (differentiable), computed in f32.
pub fn layer_norm_diff(xs: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = xs.dtype();
    let xs = xs.to_dtype(DType::F32)?;
    let mean = xs.mean_keepdim(D::Minus1)?;
    let centered = xs.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centered.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed.to_dtype(dtype)?.broadcast_mul(weight)?.broadcast_add(bias)
}

/// Softmax over the last dimension: fused for inference, composed (differentiable) for training.
pub fn softmax_last(xs: &Tensor, mode: Mode) -> Result<Tensor> {
    if mode.is_train() {
        candle_nn::ops::softmax(xs, D::Minus1)
    } else {
        candle_nn::ops::softmax_last_dim(xs)
    }
}

/// Dropout, active in training only.
pub fn dropout(xs: &Tensor, p: f64, mode: Mode) -> Result<Tensor> {
    if mode.is_train() && p > 0.0 {
        candle_nn::ops::dropout(xs, p as f32)
    } else {
        Ok(xs.clone())
    }
}

/// A linear layer with upstream names (`weight` as out x in, `bias`).
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    candle_nn::linear(in_dim, out_dim, vb)
}

/// Applies a linear layer.
pub fn apply(l: &Linear, xs: &Tensor) -> Result<Tensor> {
    l.forward(xs)
}

/// The additive attention bias for a (batch, seq) 0/1 mask: 0 where attended, a large negative
/// number where padded, shaped (batch, 1, 1, seq) in `dtype`.
pub fn attention_bias(mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (b, s) = mask.dims2()?;
    let m = mask.to_dtype(DType::F32)?;
    // -30000 is representable in f16 and bf16 and makes exp() exactly 0.
    let bias = ((m - 1.0)? * 30000.0)?;
    bias.reshape((b, 1, 1, s))?.to_dtype(dtype)
}

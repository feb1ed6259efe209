//! Building blocks shared by the encoder architectures.
//!
//! Every block has two paths: the fused candle ops for inference (fast, no gradient) and a composition
//! of elementary ops for training (differentiable end to end: candle-nn's fused `layer_norm` and
//! `softmax_last_dim` have no backward pass, so gradients would silently stop there).

use std::sync::Arc;

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{Linear, VarBuilder};
use serde::Deserialize;

use crate::kernels::cpu::PackedLinear;
use crate::kernels::int8::{Precision, QuantLinear};

/// Whether a forward pass is for inference or for training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Inference: fused ops, no dropout.
    #[default]
    Eval,
    /// Training: differentiable ops, dropout on. Dropout masks derive from `seed` (one per step) and
    /// the site of each dropout, so that a run resumed from a checkpoint draws the same masks.
    Train {
        /// The step's dropout seed.
        seed: u64,
    },
}

impl Mode {
    /// True in training.
    pub fn is_train(self) -> bool {
        matches!(self, Mode::Train { .. })
    }
}

/// SplitMix64: a small, fast, seedable generator (Steele et al. 2014), for dropout masks, batch order
/// and bootstrap resampling.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A uniform index below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
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

impl LayerNorm {
    /// The training kernel's LayerNorm (`kernels::train`, f32 on an AVX-512 or AVX2 CPU), differentiable.
    pub fn forward_train_kernel(&self, xs: &Tensor) -> Result<Tensor> {
        crate::kernels::train::layer_norm(xs, &self.weight, &self.bias, self.eps)
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

/// Dropout, active in training only. `site` tells the dropout layers of a network apart, so that each
/// draws its own mask; masks are reproducible from (step seed, site).
pub fn dropout(xs: &Tensor, p: f64, mode: Mode, site: u64) -> Result<Tensor> {
    let Mode::Train { seed } = mode else { return Ok(xs.clone()) };
    if p <= 0.0 {
        return Ok(xs.clone());
    }
    if !xs.device().is_cpu() {
        // On a GPU the mask is drawn on the device (no host round trip); the trainer reseeds the
        // device's generator every step, and the sites run in a fixed order, so masks reproduce.
        let keep = candle_core::Tensor::rand(0f32, 1f32, xs.shape(), xs.device())?.ge(p)?;
        return xs.mul(&(keep.to_dtype(xs.dtype())? * (1.0 / (1.0 - p)))?);
    }
    let mut rng = SplitMix64::new(seed ^ site.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let keep = 1.0 - p as f32;
    let scale = 1.0 / keep;
    let mask: Vec<f32> = (0..xs.elem_count()).map(|_| if rng.next_f32() < keep { scale } else { 0.0 }).collect();
    let mask = Tensor::from_vec(mask, xs.shape(), xs.device())?.to_dtype(xs.dtype())?;
    xs.mul(&mask)
}

/// A linear layer with upstream names (`weight` as out x in, `bias`).
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    candle_nn::linear(in_dim, out_dim, vb)
}

/// Applies a linear layer.
pub fn apply(l: &Linear, xs: &Tensor) -> Result<Tensor> {
    l.forward(xs)
}

/// A linear layer of an encoder body: candle's `Linear` (trainable, every device), and for models
/// loaded for inference on an AVX-512 or AVX2 CPU in f32 a packed copy of the weight that evaluation-mode
/// passes run through (`kernels::cpu`), with the activation fused when it is the exact GELU.
#[derive(Debug, Clone)]
pub struct Dense {
    linear: Linear,
    packed: Option<Arc<PackedLinear>>,
    /// The weight in 8 bits, where the layer was loaded with `[engine] precision = "int8"`.
    quant: Option<Arc<QuantLinear>>,
}

impl Dense {
    /// Loads `weight` (out x in) and `bias` by their upstream names.
    pub fn load(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self::new(linear(in_dim, out_dim, vb)?))
    }

    /// Wraps a candle linear layer (not packed).
    pub fn new(linear: Linear) -> Self {
        Self { linear, packed: None, quant: None }
    }

    /// Packs the weight for the CPU kernels where they apply (AVX-512 or AVX2, f32 on the CPU), or, at
    /// `precision` int8, quantizes it to 8 bits (any CPU); a no-op elsewhere. Only for weights that
    /// will not change (models loaded for inference).
    pub fn pack_for_inference(mut self, precision: Precision) -> Result<Self> {
        match precision {
            Precision::Int8 => self.quant = QuantLinear::new(self.linear.weight(), self.linear.bias())?,
            Precision::F32 => return self.pack_f32_for_inference(),
        }
        Ok(self)
    }

    /// Packs the weight for the f32 CPU kernels whatever the precision: for a head that reads one
    /// row a sequence, where 8 bits save no time and cost accuracy.
    pub fn pack_f32_for_inference(mut self) -> Result<Self> {
        self.packed = PackedLinear::new(self.linear.weight(), self.linear.bias())?;
        Ok(self)
    }

    /// True when evaluation-mode passes of f32 CPU inputs run one of candor's CPU kernels (the
    /// packed f32 one or the 8-bit one).
    pub fn runs_cpu_kernel(&self) -> bool {
        self.packed.is_some() || self.quant.is_some()
    }

    /// The candle layer (its `weight` and `bias` are the upstream tensors).
    pub fn linear(&self) -> &Linear {
        &self.linear
    }

    /// The packed weights when this pass runs them: evaluation of f32 inputs on the CPU.
    fn packed_for(&self, xs: &Tensor, mode: Mode) -> Option<&Arc<PackedLinear>> {
        self.packed.as_ref().filter(|_| cpu_inference(xs, mode))
    }

    /// The 8-bit weights when this pass runs them: evaluation of f32 inputs on the CPU.
    fn quant_for(&self, xs: &Tensor, mode: Mode) -> Option<&Arc<QuantLinear>> {
        self.quant.as_ref().filter(|_| cpu_inference(xs, mode))
    }

    /// Applies the layer.
    pub fn forward(&self, xs: &Tensor, mode: Mode) -> Result<Tensor> {
        if let Some(q) = self.quant_for(xs, mode) {
            return q.forward(xs, false);
        }
        match self.packed_for(xs, mode) {
            Some(p) => p.forward(xs, false),
            None => self.linear.forward(xs),
        }
    }

    /// Applies the layer through the training kernel (`kernels::train`, f32 on an AVX-512 or AVX2 CPU),
    /// differentiable in the input, the weight and the bias.
    pub fn forward_train_kernel(&self, xs: &Tensor) -> Result<Tensor> {
        match self.linear.bias() {
            Some(b) => crate::kernels::train::linear(xs, self.linear.weight(), b),
            // A layer without a bias gets a zero one (a constant, not trained).
            None => {
                let zeros = Tensor::zeros(self.linear.weight().dim(0)?, DType::F32, xs.device())?;
                crate::kernels::train::linear(xs, self.linear.weight(), &zeros)
            }
        }
    }

    /// Applies the layer, then `act` (fused into the kernel for the exact GELU where packed).
    pub fn forward_act(&self, xs: &Tensor, act: Activation, mode: Mode) -> Result<Tensor> {
        if let (Some(q), Activation::Gelu) = (self.quant_for(xs, mode), act) {
            return q.forward(xs, true);
        }
        match (self.packed_for(xs, mode), act) {
            (Some(p), Activation::Gelu) => p.forward(xs, true),
            _ => act.forward(&self.forward(xs, mode)?),
        }
    }
}

/// True for an evaluation pass of f32 inputs on the CPU: where the CPU kernels' packed or 8-bit
/// weights run.
fn cpu_inference(xs: &Tensor, mode: Mode) -> bool {
    mode == Mode::Eval && xs.device().is_cpu() && xs.dtype() == DType::F32
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

//! Network architectures, one per file, each reading the upstream `config.json` unchanged and loading
//! weights by their upstream names through a `VarBuilder`.
//!
//! Two traits make them interchangeable for the engine: [`SequenceClassifier`] (cross-encoders: pair in,
//! logits out) and [`TokenEncoder`] (token states, pooled into sentence vectors by [`SentenceEmbedder`]).

pub mod bert;
pub mod deberta_v2;
pub mod gguf_llama;
pub mod layers;
pub mod modernbert;
pub mod roberta;
pub mod t5;

use std::path::Path;

use candle_core::{DType, Device, Result as CResult, Tensor, D};
use candle_nn::VarBuilder;

use crate::error::{Error, Result};
use crate::models::registry::{Architecture, Pooling};
use crate::kernels::int8::Precision;
pub use layers::Mode;

/// A padded batch of tokenised inputs on a device, all (batch, seq) u32 tensors.
#[derive(Debug, Clone)]
pub struct EncodedBatch {
    /// Token ids, padded with the tokenizer's pad id.
    pub input_ids: Tensor,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Tensor,
    /// Segment ids (0 for the first text, 1 for the second, in BERT pairs).
    pub token_type_ids: Tensor,
}

impl EncodedBatch {
    /// Builds a batch from rows of equal length.
    pub fn from_rows(ids: &[Vec<u32>], mask: &[Vec<u32>], types: &[Vec<u32>], device: &Device) -> CResult<Self> {
        let b = ids.len();
        let s = ids.first().map_or(0, Vec::len);
        let flat = |rows: &[Vec<u32>]| -> CResult<Tensor> {
            Tensor::from_vec(rows.concat(), (b, s), device)
        };
        Ok(Self { input_ids: flat(ids)?, attention_mask: flat(mask)?, token_type_ids: flat(types)? })
    }
}

/// A cross-encoder: scores a batch of (text, text) pairs.
pub trait SequenceClassifier: Send + Sync {
    /// Logits, (batch, num_labels), in the model's dtype.
    fn logits(&self, batch: &EncodedBatch, mode: Mode) -> CResult<Tensor>;
    /// Number of output labels.
    fn num_labels(&self) -> usize;
    /// The prompt a model reads each pair written into, as one text (`{text1}` the premise, `{text2}`
    /// the hypothesis), where its authors' pre-processing does that instead of a tokenizer's pair
    /// template.
    fn pair_prompt(&self) -> Option<&str> {
        None
    }
}

/// A token classifier: labels every token of a batch (LettuceDetect marks hallucinated tokens).
pub trait TokenClassifier: Send + Sync {
    /// Logits, (batch, seq, num_labels), in the model's dtype.
    fn token_logits(&self, batch: &EncodedBatch) -> CResult<Tensor>;
    /// Number of output labels.
    fn num_labels(&self) -> usize;
}

/// An encoder that produces one state per token.
pub trait TokenEncoder: Send + Sync {
    /// Token states, (batch, seq, hidden).
    fn token_states(&self, batch: &EncodedBatch, mode: Mode) -> CResult<Tensor>;
    /// Width of the token states.
    fn hidden_size(&self) -> usize;
}

/// A sentence embedder: a token encoder, a pooling rule and optional L2 normalisation.
pub struct SentenceEmbedder {
    encoder: Box<dyn TokenEncoder>,
    pooling: Pooling,
    normalize: bool,
}

impl SentenceEmbedder {
    /// Wraps a token encoder.
    pub fn new(encoder: Box<dyn TokenEncoder>, pooling: Pooling, normalize: bool) -> Self {
        Self { encoder, pooling, normalize }
    }

    /// Sentence vectors, (batch, hidden), in f32.
    pub fn embed(&self, batch: &EncodedBatch) -> CResult<Tensor> {
        let states = self.encoder.token_states(batch, Mode::Eval)?;
        let pooled = match self.pooling {
            Pooling::Cls => states.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?.to_dtype(DType::F32)?,
            // One fused launch for pooling and normalisation (see kernels::fused).
            Pooling::Mean => return crate::kernels::fused::pool_normalize(&states, &batch.attention_mask, self.normalize),
        };
        if self.normalize {
            l2_normalize(&pooled)
        } else {
            Ok(pooled)
        }
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.encoder.hidden_size()
    }
}

/// Mean of token states under a 0/1 mask: (batch, seq, hidden) x (batch, seq) -> (batch, hidden).
pub fn masked_mean(states: &Tensor, mask: &Tensor) -> CResult<Tensor> {
    let m = mask.to_dtype(states.dtype())?.unsqueeze(D::Minus1)?;
    let sum = states.broadcast_mul(&m)?.sum(1)?;
    let count = m.sum(1)?.clamp(1e-9, f64::MAX)?;
    sum.broadcast_div(&count)
}

/// Divides each row by its L2 norm.
pub fn l2_normalize(xs: &Tensor) -> CResult<Tensor> {
    let norm = xs.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    xs.broadcast_div(&norm)
}

fn read_config<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<T> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Config { path, reason: e.to_string() })
}

/// Memory-maps a model folder's `model.safetensors` into a VarBuilder in `dtype` on `device`.
pub fn var_builder(dir: &Path, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
    let weights = dir.join("model.safetensors");
    crate::models::verify::refuse_pickle(&weights)?;
    // SAFETY: the file is memory-mapped read-only; candor verified its sha256 just before, and does
    // not modify model files while they are in use.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], dtype, device) };
    vb.map_err(|e| Error::Config { path: weights, reason: e.to_string() })
}

fn load_err(dir: &Path, e: candle_core::Error) -> Error {
    Error::Config { path: dir.join("model.safetensors"), reason: format!("does not match config.json: {e}") }
}

/// The precision `arch`'s network runs its CPU matrix products at when it is loaded at `precision`:
/// BERT and RoBERTa bodies (candor's CPU kernels) take it; the other architectures run in f32
/// whatever it says, and a runtime loaded so says f32.
pub fn effective_precision(arch: Architecture, precision: Precision) -> Precision {
    match arch {
        Architecture::Bert | Architecture::Roberta | Architecture::XlmRoberta => precision,
        _ => Precision::F32,
    }
}

/// Loads a sequence classifier of `arch` from a model folder (config.json + model.safetensors), for
/// inference, its CPU matrix products at [`effective_precision`].
///
/// DeBERTa-v2 always runs in f32, whatever `dtype` asks: candle-transformers' disentangled attention
/// adds f32 position scores to the query's scores and fails in f16 or bf16 (and its authors advise
/// against f16 for it). The T5 architectures asked for f16 run in bf16: T5 checkpoints are trained
/// in bf16 and their feed-forward activations overflow f16's range (transformers clamps them; bf16
/// has f32's range).
pub fn load_classifier(arch: Architecture, dir: &Path, dtype: DType, device: &Device, precision: Precision) -> Result<Box<dyn SequenceClassifier>> {
    let dtype = match (arch, dtype) {
        (Architecture::DebertaV2, _) => DType::F32,
        (Architecture::HhemT5 | Architecture::MinicheckT5, DType::F16) => DType::BF16,
        _ => dtype,
    };
    let vb = var_builder(dir, dtype, device)?;
    let model: Box<dyn SequenceClassifier> = match arch {
        Architecture::Bert => {
            let cfg: bert::Config = read_config(dir)?;
            Box::new(bert::BertClassifier::load(vb, &cfg, precision).map_err(|e| load_err(dir, e))?)
        }
        Architecture::Roberta | Architecture::XlmRoberta => {
            let cfg: bert::Config = read_config(dir)?;
            Box::new(roberta::RobertaClassifier::load(vb, &cfg, precision).map_err(|e| load_err(dir, e))?)
        }
        Architecture::DebertaV2 => {
            let cfg: deberta_v2::Config = read_config(dir)?;
            Box::new(deberta_v2::DebertaV2Classifier::load(vb, &cfg).map_err(|e| load_err(dir, e))?)
        }
        Architecture::HhemT5 => Box::new(t5::HhemClassifier::load(vb, dir)?),
        Architecture::MinicheckT5 => {
            let cfg: t5::Config = read_config(dir)?;
            Box::new(t5::MinicheckT5::load(vb, &cfg).map_err(|e| load_err(dir, e))?)
        }
        other => {
            return Err(Error::Unsupported {
                model: dir.display().to_string(),
                reason: format!("{other:?} is not a sequence-classifier architecture"),
            })
        }
    };
    Ok(model)
}

/// Loads a token classifier of `arch` from a model folder (config.json + model.safetensors).
pub fn load_token_classifier(arch: Architecture, dir: &Path, dtype: DType, device: &Device) -> Result<Box<dyn TokenClassifier>> {
    let vb = var_builder(dir, dtype, device)?;
    match arch {
        Architecture::Modernbert => {
            let cfg: modernbert::Config = read_config(dir)?;
            Ok(Box::new(modernbert::ModernBertTokenClassifier::load(vb, &cfg).map_err(|e| load_err(dir, e))?))
        }
        other => Err(Error::Unsupported {
            model: dir.display().to_string(),
            reason: format!("{other:?} is not a token-classifier architecture"),
        }),
    }
}

/// Loads a sentence embedder of `arch` from a model folder, its CPU matrix products at `precision`.
pub fn load_embedder(
    arch: Architecture,
    dir: &Path,
    pooling: Pooling,
    normalize: bool,
    dtype: DType,
    device: &Device,
    precision: Precision,
) -> Result<SentenceEmbedder> {
    let vb = var_builder(dir, dtype, device)?;
    let encoder: Box<dyn TokenEncoder> = match arch {
        Architecture::Bert => {
            let cfg: bert::Config = read_config(dir)?;
            Box::new(bert::BertTokenEncoder::load(vb, &cfg, precision).map_err(|e| load_err(dir, e))?)
        }
        Architecture::Roberta | Architecture::XlmRoberta => {
            let cfg: bert::Config = read_config(dir)?;
            Box::new(roberta::RobertaTokenEncoder::load(vb, &cfg, precision).map_err(|e| load_err(dir, e))?)
        }
        other => {
            return Err(Error::Unsupported {
                model: dir.display().to_string(),
                reason: format!("{other:?} is not an embedder architecture"),
            })
        }
    };
    Ok(SentenceEmbedder::new(encoder, pooling, normalize))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the networks on candor's CPU kernels take int8; the others say they ran in f32.
    #[test]
    fn only_bert_and_roberta_bodies_take_the_precision() {
        assert_eq!(effective_precision(Architecture::Bert, Precision::Int8), Precision::Int8);
        assert_eq!(effective_precision(Architecture::XlmRoberta, Precision::Int8), Precision::Int8);
        assert_eq!(effective_precision(Architecture::DebertaV2, Precision::Int8), Precision::F32);
        assert_eq!(effective_precision(Architecture::HhemT5, Precision::Int8), Precision::F32);
        assert_eq!(effective_precision(Architecture::Bert, Precision::F32), Precision::F32);
    }
}

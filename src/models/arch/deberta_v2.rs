//! DeBERTa-v2 and DeBERTa-v3 (He et al. 2021) sequence classifiers, through candle-transformers'
//! implementation (disentangled relative attention), with the upstream config read unchanged.
//! The cross-encoder/nli-deberta-v3-* models and MiniCheck-DeBERTa-v3-Large use this architecture.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::debertav2 as upstream;

use super::layers::Mode;
use super::{EncodedBatch, SequenceClassifier};

/// The upstream config.json of DeBERTa-v2/v3 models.
pub type Config = upstream::Config;

/// `DebertaV2ForSequenceClassification`.
pub struct DebertaV2Classifier {
    inner: upstream::DebertaV2SeqClassificationModel,
    num_labels: usize,
    uses_token_types: bool,
}

impl DebertaV2Classifier {
    /// Loads from a checkpoint with upstream names (`deberta.*`, `pooler.dense`, `classifier`).
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let num_labels = cfg.id2label.as_ref().map(|m| m.len()).filter(|&n| n > 0).unwrap_or(2);
        let inner = upstream::DebertaV2SeqClassificationModel::load(vb.pp("deberta"), cfg, cfg.id2label.clone())?;
        Ok(Self { inner, num_labels, uses_token_types: cfg.type_vocab_size > 0 })
    }
}

impl SequenceClassifier for DebertaV2Classifier {
    fn logits(&self, batch: &EncodedBatch, mode: Mode) -> Result<Tensor> {
        if mode.is_train() {
            candle_core::bail!("training DeBERTa-v2 is not supported: its upstream layers use fused ops without a backward pass");
        }
        let types = self.uses_token_types.then(|| batch.token_type_ids.clone());
        self.inner.forward(&batch.input_ids, types, Some(batch.attention_mask.clone()))
    }

    fn num_labels(&self) -> usize {
        self.num_labels
    }
}

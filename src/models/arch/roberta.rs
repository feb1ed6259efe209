//! RoBERTa (Liu et al. 2019) and XLM-RoBERTa: the BERT encoder with positions numbered after the
//! padding index and no segment embeddings to speak of, and the `RobertaForSequenceClassification` head
//! (dense + tanh + out_proj on the first token). MiniCheck-RoBERTa-Large uses this head.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::bert::{BertEncoder, Config, Positions};
use super::layers::{dropout, linear, Mode};
use super::{EncodedBatch, SequenceClassifier, TokenEncoder};
use crate::kernels::int8::Precision;

fn positions(cfg: &Config) -> Positions {
    Positions::AfterPadding(cfg.pad_token_id.unwrap_or(1))
}

fn body<'a>(vb: &VarBuilder<'a>) -> VarBuilder<'a> {
    // XLMRobertaForSequenceClassification also stores its body under `roberta.`.
    let vb = vb.clone();
    if vb.contains_tensor("roberta.embeddings.word_embeddings.weight") {
        vb.pp("roberta")
    } else {
        vb
    }
}

/// `RobertaForSequenceClassification` / `XLMRobertaForSequenceClassification`.
pub struct RobertaClassifier {
    encoder: BertEncoder,
    dense: Linear,
    out_proj: Linear,
    dropout: f64,
    num_labels: usize,
}

impl RobertaClassifier {
    /// Loads from a checkpoint with upstream names (`roberta.*`, `classifier.dense`, `classifier.out_proj`).
    pub fn load(vb: VarBuilder, cfg: &Config, precision: Precision) -> Result<Self> {
        let encoder = BertEncoder::load(body(&vb), cfg, positions(cfg), precision)?;
        let num_labels = cfg.num_labels();
        let head = vb.pp("classifier");
        let dense = linear(cfg.hidden_size, cfg.hidden_size, head.pp("dense"))?;
        let out_proj = linear(cfg.hidden_size, num_labels, head.pp("out_proj"))?;
        let dropout = cfg.classifier_dropout.unwrap_or(cfg.hidden_dropout_prob);
        Ok(Self { encoder, dense, out_proj, dropout, num_labels })
    }
}

impl SequenceClassifier for RobertaClassifier {
    fn logits(&self, batch: &EncodedBatch, mode: Mode) -> Result<Tensor> {
        let states = self.encoder.forward(batch, mode)?;
        let first = states.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?;
        let x = dropout(&first, self.dropout, mode, 9001)?;
        let x = self.dense.forward(&x)?.tanh()?;
        let x = dropout(&x, self.dropout, mode, 9002)?;
        self.out_proj.forward(&x)
    }

    fn num_labels(&self) -> usize {
        self.num_labels
    }
}

/// A RoBERTa body for sentence embeddings.
pub struct RobertaTokenEncoder(BertEncoder);

impl RobertaTokenEncoder {
    /// Loads the encoder of a RoBERTa checkpoint, with or without the `roberta.` prefix.
    pub fn load(vb: VarBuilder, cfg: &Config, precision: Precision) -> Result<Self> {
        Ok(Self(BertEncoder::load(body(&vb), cfg, positions(cfg), precision)?))
    }
}

impl TokenEncoder for RobertaTokenEncoder {
    fn token_states(&self, batch: &EncodedBatch, mode: Mode) -> Result<Tensor> {
        self.0.forward(batch, mode)
    }

    fn hidden_size(&self) -> usize {
        self.0.hidden_size()
    }
}

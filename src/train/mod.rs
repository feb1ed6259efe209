//! `candor train`: fine-tunes a cross-encoder classifier from an encoder checkpoint on labelled pairs.
//!
//! One code path for CPU and GPU. AdamW with warmup and linear decay, gradient clipping by global
//! norm, length-bucketed batches cut by a token budget, a dev-set evaluation every N steps, and
//! checkpoints (weights, optimizer moments, data position) from which a later run resumes exactly:
//! batch order and dropout masks derive from the seed, the epoch and the step, never from the clock.

pub mod average;
pub mod checkpoint;
pub mod data;
pub mod optim;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::engine::batch::{pad_batch, plan_batches, Encoded, TextTokenizer};
use crate::error::{Error, Result};
use crate::models::arch::bert::{self, BertClassifier};
use crate::models::arch::layers::SplitMix64;
use crate::models::arch::{EncodedBatch, Mode, SequenceClassifier};
use crate::io::{write_atomic, write_atomic_with};
use crate::kernels::int8::Precision;
use crate::models::{Architecture, ResolvedModel};
use checkpoint::Checkpoints;
use data::{DataSet, Example, Target};
use optim::{AdamW, AdamWParams};

/// A training run's configuration (TOML). Paths of data sets are relative to `data_dir`, itself
/// relative to the config file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Registry name of the encoder checkpoint to start from. Leave it out when `from_recipe` is set.
    #[serde(default)]
    pub base: String,
    /// Another recipe (a path relative to this config file) whose model this one continues from,
    /// instead of `base`: the run trains (or resumes, or reuses) that recipe first, in
    /// `OUT/from-recipe`, so that one command reproduces a model made in stages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_recipe: Option<String>,
    /// Other recipes (paths relative to this config file) whose models this one averages, weight by
    /// weight, instead of training (a "model soup"): each is trained (or resumed, or reused) in
    /// `OUT/average/N-NAME`, a recipe named by several of them is trained once, and the average is
    /// written to `OUT/model` and evaluated on this recipe's dev and test sets. Such a recipe has no
    /// `base`, `from_recipe` or training sets of its own; it uses `labels`, `max_tokens`,
    /// `export_dtype`, `data_dir`, `dev` and `test`, and ignores the training settings. Its members
    /// must start from one registry checkpoint and train the same labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub average: Vec<String>,
    /// With `average`: also average in the registry checkpoint the members start from, as one more
    /// member (WiSE-FT, Wortsman et al. 2022: the average of a fine-tuned model and the model it was
    /// tuned from keeps much of what the tuning gained and of what it lost).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub average_base: bool,
    /// The classifier's labels, in output order.
    pub labels: Vec<String>,
    /// Folder the data set paths are relative to.
    #[serde(default = "default_data_dir")]
    pub data_dir: String,
    /// Window in tokens; longer pairs are truncated (longest text first).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// Passes over the training data.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Most padded tokens in one batch.
    #[serde(default = "default_batch_tokens")]
    pub batch_tokens: usize,
    /// Most examples in one batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Fraction of steps spent warming the learning rate up.
    #[serde(default = "default_warmup")]
    pub warmup_ratio: f64,
    /// Gradients are scaled down to this global L2 norm.
    #[serde(default = "default_clip")]
    pub max_grad_norm: f64,
    /// Dropout on hidden states.
    #[serde(default = "default_dropout")]
    pub hidden_dropout: f64,
    /// Dropout on attention probabilities (off by default: it costs time on the CPU and changes little
    /// in fine-tuning).
    #[serde(default)]
    pub attention_dropout: f64,
    /// Seed of batch order, dropout and the new head's initial weights.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Evaluate on the dev sets every this many steps (0: only at the end).
    #[serde(default = "default_eval_every")]
    pub eval_every: u64,
    /// Write a checkpoint every this many steps.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Dtype of the exported weights (`f32`, `f16` or `bf16`).
    #[serde(default = "default_export_dtype")]
    pub export_dtype: String,
    /// AdamW settings.
    #[serde(default)]
    pub optimizer: AdamWParams,
    /// Training sets.
    #[serde(default)]
    pub train: Vec<DataSet>,
    /// Dev sets, evaluated during training.
    #[serde(default)]
    pub dev: Vec<DataSet>,
    /// Test sets, evaluated once on the exported model and reported in the model card.
    #[serde(default)]
    pub test: Vec<DataSet>,
}

fn default_data_dir() -> String {
    ".".into()
}
fn default_max_tokens() -> usize {
    256
}
fn default_epochs() -> usize {
    3
}
fn default_batch_tokens() -> usize {
    4096
}
fn default_batch_size() -> usize {
    32
}
fn default_warmup() -> f64 {
    0.1
}
fn default_clip() -> f64 {
    1.0
}
fn default_dropout() -> f64 {
    0.1
}
fn default_seed() -> u64 {
    17
}
fn default_eval_every() -> u64 {
    500
}
fn default_checkpoint_every() -> u64 {
    100
}
fn default_export_dtype() -> String {
    "f16".into()
}

/// The dtypes a model can be exported in (`export_dtype`).
pub const EXPORT_DTYPES: [&str; 3] = ["f32", "f16", "bf16"];

impl TrainConfig {
    /// Reads a config file and checks it ([`TrainConfig::validate`]): a key it does not know (a typo
    /// such as `bacth_size`, here or in `[optimizer]` or a data set) is an error naming the key and
    /// the file, as is every setting that cannot be trained with.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let location = || path.display().to_string();
        let cfg: Self = toml::from_str(&text).map_err(|e| Error::Input { location: location(), reason: e.to_string() })?;
        cfg.check().map_err(|reason| Error::Input { location: location(), reason })?;
        Ok(cfg)
    }

    /// Checks every setting before anything is loaded or written: sizes that cannot be zero
    /// (`max_tokens`, `epochs`, `batch_tokens`, `batch_size`, `checkpoint_every`), fractions outside
    /// their range (`warmup_ratio`, dropouts, a data set's `heldout` and `distractors`), optimizer
    /// settings (`lr` and `eps` above 0, betas in [0, 1)), numbers that are not finite, the export
    /// dtype, the labels, and each data set's label map. The error lists every problem, each naming
    /// its field.
    pub fn validate(&self) -> Result<()> {
        self.check().map_err(|reason| Error::Input { location: "training config".into(), reason })
    }

    /// Every problem of the config, joined; `Ok` when there is none.
    fn check(&self) -> std::result::Result<(), String> {
        let mut p: Vec<String> = vec![];
        // Model labels.
        if self.labels.is_empty() {
            p.push("`labels` is empty: list the classifier's labels, e.g. [\"entailment\", \"neutral\", \"contradiction\"]".into());
        }
        for (i, l) in self.labels.iter().enumerate() {
            if l.trim().is_empty() {
                p.push(format!("`labels[{i}]` is empty"));
            } else if self.labels[..i].contains(l) {
                p.push(format!("`labels` names `{l}` twice"));
            } else if l == "drop" || l == "not_entailment" {
                p.push(format!("`labels` names `{l}`, which a data set's label map uses to mean something else"));
            }
        }
        // Sizes.
        let at_least = |p: &mut Vec<String>, field: &str, value: u64, min: u64, what: &str| {
            if value < min {
                p.push(format!("`{field}` is {value}; it must be at least {min} ({what})"));
            }
        };
        at_least(&mut p, "max_tokens", self.max_tokens as u64, 4, "a pair takes 3 special tokens and at least one of its own");
        at_least(&mut p, "epochs", self.epochs as u64, 1, "passes over the training data");
        at_least(&mut p, "batch_size", self.batch_size as u64, 1, "most examples in one batch");
        at_least(&mut p, "batch_tokens", self.batch_tokens as u64, 1, "most padded tokens in one batch");
        at_least(&mut p, "checkpoint_every", self.checkpoint_every, 1, "steps between checkpoints");
        if self.batch_tokens > 0 && self.max_tokens > self.batch_tokens {
            p.push(format!(
                "`batch_tokens` is {}, below `max_tokens` ({}): one long pair alone would exceed the batch budget",
                self.batch_tokens, self.max_tokens
            ));
        }
        // Fractions and other numbers.
        let in_range = |p: &mut Vec<String>, field: &str, value: f64, range: std::ops::RangeInclusive<f64>, open_end: bool, what: &str| {
            let ok = value.is_finite() && range.contains(&value) && !(open_end && value == *range.end());
            if !ok {
                let end = if open_end { ")" } else { "]" };
                p.push(format!("`{field}` is {value}; it must be in [{}, {}{end} ({what})", range.start(), range.end()));
            }
        };
        in_range(&mut p, "warmup_ratio", self.warmup_ratio, 0.0..=1.0, false, "the fraction of steps spent warming up; above 1 the warmup outlasts the run");
        in_range(&mut p, "hidden_dropout", self.hidden_dropout, 0.0..=1.0, true, "a probability; at 1 nothing is left");
        in_range(&mut p, "attention_dropout", self.attention_dropout, 0.0..=1.0, true, "a probability; at 1 nothing is left");
        if !(self.max_grad_norm.is_finite() && self.max_grad_norm > 0.0) {
            p.push(format!("`max_grad_norm` is {}; it must be a finite number above 0 (at 0 no step moves a weight)", self.max_grad_norm));
        }
        if !EXPORT_DTYPES.contains(&self.export_dtype.as_str()) {
            p.push(format!("`export_dtype` is `{}`; accepted: {}", self.export_dtype, EXPORT_DTYPES.join(", ")));
        }
        // Optimizer.
        let o = &self.optimizer;
        if !(o.lr.is_finite() && o.lr > 0.0) {
            p.push(format!("`optimizer.lr` is {}; the learning rate must be a finite number above 0", o.lr));
        }
        in_range(&mut p, "optimizer.beta1", o.beta1, 0.0..=1.0, true, "a decay rate");
        in_range(&mut p, "optimizer.beta2", o.beta2, 0.0..=1.0, true, "a decay rate");
        if !(o.eps.is_finite() && o.eps > 0.0) {
            p.push(format!("`optimizer.eps` is {}; it must be a finite number above 0", o.eps));
        }
        if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
            p.push(format!("`optimizer.weight_decay` is {}; it must be a finite number, 0 or above", o.weight_decay));
        }
        // Data sets.
        for (kind, sets) in [("train", &self.train), ("dev", &self.dev), ("test", &self.test)] {
            for (i, set) in sets.iter().enumerate() {
                p.extend(set.problems(&format!("{kind}[{i}]"), &self.labels));
            }
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(p.join("; "))
        }
    }
}

/// Where a run stands; saved with every checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps done.
    pub step: u64,
    /// Current epoch (0-based).
    pub epoch: usize,
    /// Batches of the current epoch done.
    pub batch_in_epoch: usize,
    /// Seconds of training so far, over all sessions.
    pub seconds: f64,
    /// Examples seen so far.
    pub examples: u64,
    /// The model the run started from (`name@hash`), so that a checkpoint is never resumed on top of
    /// another base (absent in checkpoints written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

/// One line of the loss log (`train_log.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// Step number (1-based).
    pub step: u64,
    /// Epoch (0-based).
    pub epoch: usize,
    /// Mean loss of the step's batch.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
}

/// Accuracy figures of a classifier on one labelled set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The set's name.
    pub name: String,
    /// Examples scored.
    pub n: usize,
    /// Exact-label accuracy over examples with one gold label (3-way), when there are any.
    pub accuracy: Option<f64>,
    /// Balanced accuracy of "entailment vs not" at P(entailment) >= 0.5.
    pub balanced_accuracy: f64,
    /// Accuracy of "entailment vs not".
    pub binary_accuracy: f64,
    /// Accuracy of a reference prediction carried by the data (ANLI's `roberta_large_pred`).
    pub reference_accuracy: Option<f64>,
}

/// What the trainer reports as it goes.
pub trait Observer {
    /// After each step.
    fn step(&mut self, _state: &TrainState, _line: &LogLine, _total_steps: u64) {}
    /// After each dev evaluation.
    fn eval(&mut self, _step: u64, _reports: &[EvalReport]) {}
    /// A message for the user.
    fn note(&mut self, _msg: &str) {}
}

/// An observer that reports nothing.
pub struct Silent;
impl Observer for Silent {}

/// Options of one invocation.
#[derive(Clone)]
pub struct RunOptions<'a> {
    /// The output folder (the model, checkpoints and logs).
    pub out: PathBuf,
    /// The data folder (already resolved).
    pub data_dir: PathBuf,
    /// The device.
    pub device: Device,
    /// Stop (with a checkpoint) after this many steps in total, if set.
    pub max_steps: Option<u64>,
    /// Ignore an existing checkpoint and start over.
    pub fresh: bool,
    /// Set to stop cleanly (e.g. on Ctrl-C): the run writes a checkpoint and returns.
    pub stop: &'a AtomicBool,
    /// Folders (or JSON Lines files) of unlabelled documents whose synthetic pairs
    /// (`text::perturb`) join the training sets of the recipe run (not of the stages it continues
    /// from): `candor train --synthesize`.
    pub synthesize: Vec<PathBuf>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run's output folder (for a staged recipe that stopped early, the stage's own).
    pub out: PathBuf,
    /// Where the run stands.
    pub state: TrainState,
    /// Whether every epoch is done (and the model exported).
    pub finished: bool,
    /// The exported model folder, when finished.
    pub model_dir: Option<PathBuf>,
    /// Dev reports of the last evaluation.
    pub dev: Vec<EvalReport>,
    /// Test reports on the exported model.
    pub test: Vec<EvalReport>,
}

/// A BERT sequence classifier under training, with its variables.
pub struct TrainableBert {
    /// The network.
    pub model: BertClassifier,
    /// Its variables, by upstream name.
    pub varmap: VarMap,
    /// Its config (labels included).
    pub config: bert::Config,
    /// The base config.json, as read, for export.
    pub base_config: serde_json::Value,
}

fn upstream_name(name: &str) -> String {
    if name.starts_with("embeddings.") || name.starts_with("encoder.") || name.starts_with("pooler.") {
        format!("bert.{name}")
    } else {
        name.to_string()
    }
}

impl TrainableBert {
    /// Builds the classifier from a base checkpoint folder: the encoder (and pooler, where present)
    /// from the checkpoint, the new head initialised from `seed`.
    pub fn from_base(dir: &Path, labels: &[String], hidden_dropout: f64, attention_dropout: f64, seed: u64, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
        let base_config: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Config { path: cfg_path.clone(), reason: e.to_string() })?;
        let mut config: bert::Config = serde_json::from_value(base_config.clone()).map_err(|e| Error::Config { path: cfg_path, reason: e.to_string() })?;
        config.id2label = Some(labels.iter().enumerate().map(|(i, l)| (i.to_string(), l.clone())).collect());
        config.hidden_dropout_prob = hidden_dropout;
        config.attention_probs_dropout_prob = attention_dropout;
        config.classifier_dropout = None;

        let weights = dir.join("model.safetensors");
        crate::models::verify::refuse_pickle(&weights)?;
        let tensors = candle_core::safetensors::load(&weights, device)?;
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().map_err(|_| Error::Input { location: "varmap".into(), reason: "poisoned lock".into() })?;
            for (name, t) in tensors {
                if t.dtype().is_float() {
                    data.insert(upstream_name(&name), Var::from_tensor(&t.to_dtype(DType::F32)?)?);
                }
            }
        }
        let known: Vec<String> = varmap.data().lock().map(|d| d.keys().cloned().collect()).unwrap_or_default();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let model = BertClassifier::load_for_training(vb, &config)?;
        // New tensors (the head) get seeded weights: uniform in +-1/sqrt(fan_in), zero biases.
        let mut rng = SplitMix64::new(seed ^ 0x4845_4144);
        let data = varmap.data().lock().map_err(|_| Error::Input { location: "varmap".into(), reason: "poisoned lock".into() })?;
        let mut new: Vec<&String> = data.keys().filter(|k| !known.contains(k)).collect();
        new.sort();
        for name in new {
            let var = &data[name];
            let shape = var.shape().clone();
            let init = if name.ends_with(".bias") {
                Tensor::zeros(&shape, DType::F32, device)?
            } else {
                let fan_in = *shape.dims().last().unwrap_or(&1) as f32;
                let bound = 1.0 / fan_in.sqrt();
                let vals: Vec<f32> = (0..shape.elem_count()).map(|_| (rng.next_f32() * 2.0 - 1.0) * bound).collect();
                Tensor::from_vec(vals, &shape, device)?
            };
            var.set(&init)?;
        }
        drop(data);
        Ok(Self { model, varmap, config, base_config })
    }

    /// The variables, by name.
    pub fn vars(&self) -> Vec<(String, Var)> {
        self.varmap.data().lock().map(|d| d.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
    }

    /// Saves the variables (f32) to a safetensors file.
    pub fn save_weights(&self, path: &Path, dtype: DType) -> Result<()> {
        let map: std::collections::HashMap<String, Tensor> = self
            .vars()
            .into_iter()
            .map(|(k, v)| v.as_tensor().to_dtype(dtype).map(|t| (k, t)))
            .collect::<candle_core::Result<_>>()?;
        candle_core::safetensors::save(&map, path).map_err(Error::from)
    }

    /// Loads variables saved by [`TrainableBert::save_weights`].
    pub fn load_weights(&self, path: &Path, device: &Device) -> Result<()> {
        let map = candle_core::safetensors::load(path, device)?;
        for (name, var) in self.vars() {
            let t = map.get(&name).ok_or_else(|| Error::Input {
                location: path.display().to_string(),
                reason: format!("checkpoint lacks `{name}`"),
            })?;
            var.set(&t.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }
}

/// The loss of a batch: mean over examples of -log P(allowed labels). For one gold label this is
/// cross-entropy; for "not entailment" it is -log(1 - P(entailment)).
pub fn batch_loss(logits: &Tensor, allowed: &Tensor) -> candle_core::Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, 1)?;
    let p_allowed = (logp.exp()? * allowed)?.sum(1)?;
    (p_allowed + 1e-12)?.log()?.neg()?.mean(0)
}

/// Cuts an epoch into batches: shuffled (from seed and epoch), sorted by length within windows of
/// 64 batches so that batches hold similar lengths, cut by the token budget, then the batches
/// shuffled. The same seed and epoch give the same plan.
pub fn epoch_plan(lengths: &[usize], seed: u64, epoch: usize, batch_tokens: usize, batch_size: usize) -> Vec<Vec<usize>> {
    let mut rng = SplitMix64::new(seed.wrapping_mul(0x9E37_79B9).wrapping_add(epoch as u64 + 1));
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    shuffle(&mut order, &mut rng);
    let window = batch_size * 64;
    let mut batches = vec![];
    for chunk in order.chunks(window) {
        let lens: Vec<usize> = chunk.iter().map(|&i| lengths[i]).collect();
        for b in plan_batches(&lens, batch_tokens, batch_size) {
            batches.push(b.into_iter().map(|j| chunk[j]).collect::<Vec<_>>());
        }
    }
    shuffle(&mut batches, &mut rng);
    batches
}

fn shuffle<T>(xs: &mut [T], rng: &mut SplitMix64) {
    for i in (1..xs.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        xs.swap(i, j);
    }
}

/// Seed of the dropout masks of a step.
fn step_seed(seed: u64, step: u64) -> u64 {
    let mut r = SplitMix64::new(seed ^ step.wrapping_mul(0xA24B_AED4_963E_E407));
    r.next_u64()
}

fn batch_tensors(items: &[&Encoded], pad_id: u32, device: &Device) -> Result<EncodedBatch> {
    let (ids, mask, types) = pad_batch(items, pad_id);
    Ok(EncodedBatch::from_rows(&ids, &mask, &types, device)?)
}

/// Scores labelled examples with a classifier and reports accuracies.
pub fn evaluate(
    name: &str,
    model: &dyn SequenceClassifier,
    tokenizer: &TextTokenizer,
    examples: &[Example],
    labels: &[String],
    device: &Device,
    reference: Option<&[Option<String>]>,
) -> Result<EvalReport> {
    let probs = probabilities(model, tokenizer, examples, device)?;
    Ok(score_report(name, examples, &probs, labels, reference))
}

/// The classifier's label probabilities for each example, in order.
pub fn probabilities(model: &dyn SequenceClassifier, tokenizer: &TextTokenizer, examples: &[Example], device: &Device) -> Result<Vec<Vec<f32>>> {
    let pairs: Vec<(&str, &str)> = examples.iter().map(|e| (e.premise.as_str(), e.hypothesis.as_str())).collect();
    let encoded = tokenizer.encode_pairs(&pairs)?;
    let lengths: Vec<usize> = encoded.iter().map(|e| e.ids.len()).collect();
    let mut probs = vec![Vec::new(); examples.len()];
    for idx in plan_batches(&lengths, 8192, 128) {
        let items: Vec<&Encoded> = idx.iter().map(|&i| &encoded[i]).collect();
        let batch = batch_tensors(&items, tokenizer.pad_id(), device)?;
        let p = candle_nn::ops::softmax_last_dim(&model.logits(&batch, Mode::Eval)?.to_dtype(DType::F32)?)?.to_vec2::<f32>()?;
        for (i, row) in idx.into_iter().zip(p) {
            probs[i] = row;
        }
    }
    Ok(probs)
}

/// Balanced accuracy of "entailment vs not" when P(entailment) >= `threshold` says entailment.
pub fn balanced_accuracy_at(examples: &[Example], probs: &[Vec<f32>], labels: &[String], threshold: f32) -> f64 {
    BinaryCounts::of(examples, probs, labels, threshold).balanced()
}

/// Entailed and other examples, and how many of each a threshold gets right.
struct BinaryCounts {
    pos: usize,
    pos_ok: usize,
    neg: usize,
    neg_ok: usize,
}

impl BinaryCounts {
    fn of(examples: &[Example], probs: &[Vec<f32>], labels: &[String], threshold: f32) -> Self {
        let ent = labels.iter().position(|l| l == "entailment").unwrap_or(0);
        let mut c = BinaryCounts { pos: 0, pos_ok: 0, neg: 0, neg_ok: 0 };
        for (e, p) in examples.iter().zip(probs) {
            let says = p.get(ent).is_some_and(|&x| x >= threshold);
            if e.is_entailment(labels) {
                c.pos += 1;
                c.pos_ok += says as usize;
            } else {
                c.neg += 1;
                c.neg_ok += (!says) as usize;
            }
        }
        c
    }

    fn balanced(&self) -> f64 {
        match (self.pos, self.neg) {
            (0, _) => rate(self.neg_ok, self.neg),
            (_, 0) => rate(self.pos_ok, self.pos),
            _ => (rate(self.pos_ok, self.pos) + rate(self.neg_ok, self.neg)) / 2.0,
        }
    }
}

fn rate(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The claim threshold a model's registry entry carries: the P(entailment), on a grid of 0.05 to
/// 0.95 in steps of 0.025, with the highest mean balanced accuracy over the given (dev) sets, each
/// set weighing the same; ties go to the threshold nearest 0.5. Returns it with that mean.
pub fn choose_threshold(sets: &[(&[Example], &[Vec<f32>])], labels: &[String]) -> (f32, f64) {
    let mut best = (0.5f32, f64::MIN);
    for k in 0..=36 {
        let t = (50 + 25 * k) as f32 / 1000.0;
        let mean = sets.iter().map(|(e, p)| balanced_accuracy_at(e, p, labels, t)).sum::<f64>() / sets.len().max(1) as f64;
        let nearer = (t - 0.5).abs() < (best.0 - 0.5).abs();
        if mean > best.1 + 1e-12 || ((mean - best.1).abs() <= 1e-12 && nearer) {
            best = (t, mean);
        }
    }
    best
}

/// Accuracy figures from label probabilities.
pub fn score_report(name: &str, examples: &[Example], probs: &[Vec<f32>], labels: &[String], reference: Option<&[Option<String>]>) -> EvalReport {
    let (mut exact_n, mut exact_ok) = (0usize, 0usize);
    let mut ref_ok = 0usize;
    for (i, (e, p)) in examples.iter().zip(probs).enumerate() {
        let argmax = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(j, _)| j).unwrap_or(0);
        if let Target::Label(j) = e.target {
            exact_n += 1;
            exact_ok += (argmax == j) as usize;
            if let Some(Some(r)) = reference.map(|r| &r[i]) {
                ref_ok += (labels.get(j) == Some(r)) as usize;
            }
        }
    }
    let binary = BinaryCounts::of(examples, probs, labels, 0.5);
    EvalReport {
        name: name.to_string(),
        n: examples.len(),
        accuracy: (exact_n > 0).then(|| rate(exact_ok, exact_n)),
        balanced_accuracy: binary.balanced(),
        binary_accuracy: rate(binary.pos_ok + binary.neg_ok, binary.pos + binary.neg),
        reference_accuracy: reference.map(|_| rate(ref_ok, exact_n)),
    }
}

/// Reads `roberta_large_pred` (ANLI's reference predictions) of a set, row for row, if it has them.
pub fn reference_predictions(set: &DataSet, data_dir: &Path, n: usize) -> Option<Vec<Option<String>>> {
    if set.part != data::Part::All || set.limit.is_some() {
        return None;
    }
    let text = std::fs::read_to_string(data_dir.join(&set.path)).ok()?;
    let preds: Vec<Option<String>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<serde_json::Value>(l).ok().and_then(|v| v["roberta_large_pred"].as_str().map(String::from)))
        .collect();
    (preds.len() == n && preds.iter().any(Option::is_some)).then_some(preds)
}

/// The folder, under a run's output, where the recipe named by `from_recipe` is trained.
pub const FROM_RECIPE_DIR: &str = "from-recipe";

/// The folder, under a run's output, where the recipes named by `average` are trained (each in
/// `N-NAME`, N counting from 1 in the order they are listed).
pub const AVERAGE_DIR: &str = "average";

/// How many recipes deep a `from_recipe` or `average` chain may go (a guard against a recipe that
/// names itself).
const MAX_STAGES: usize = 8;

/// Recipes finished during one invocation: the recipe file (canonical path) and its model folder, so
/// that a recipe named by several others is trained once.
type Finished = BTreeMap<PathBuf, PathBuf>;

/// Runs the recipe in the TOML file `config` into `opts.out`, resolving its base from `store`.
///
/// A recipe with `from_recipe` is a later stage: the recipe it names is run first, into
/// `OUT/from-recipe` (recursively), and this one starts from the model that stage exported. A recipe
/// with `average` trains each recipe it names, in `OUT/average/N-NAME`, and writes the average of
/// their weights (see [`average::average_models`]). A finished stage is reused, not re-run, as long
/// as it was made by the same recipe (otherwise the run stops with an error rather than mixing
/// stages); an unfinished one resumes from its checkpoint; a recipe named twice in one run is trained
/// once; `opts.fresh` starts every stage over. If a stage stops early (`max_steps`, Ctrl-C), its
/// outcome is returned unfinished, with its own folder in `out`.
///
/// Each recipe reads its data from `opts.data_dir` when that is set (not empty), otherwise from its
/// own `data_dir`, relative to its file.
pub fn run_recipe(config: &Path, store: &crate::models::ModelStore, opts: &RunOptions, obs: &mut dyn Observer) -> Result<RunOutcome> {
    run_stage(config, store, opts, obs, 0, &mut Finished::new())
}

fn run_stage(
    config: &Path,
    store: &crate::models::ModelStore,
    opts: &RunOptions,
    obs: &mut dyn Observer,
    depth: usize,
    done: &mut Finished,
) -> Result<RunOutcome> {
    let mut cfg = TrainConfig::from_file(config)?;
    let data_dir = if opts.data_dir.as_os_str().is_empty() { recipe_dir(config).join(&cfg.data_dir) } else { opts.data_dir.clone() };
    if depth == 0 && !opts.synthesize.is_empty() {
        if !cfg.average.is_empty() {
            return Err(Error::Input {
                location: config.display().to_string(),
                reason: "--synthesize adds training data, and an `average` recipe trains nothing itself: give it to one of its members".into(),
            });
        }
        for docs in &opts.synthesize {
            cfg.train.push(data::DataSet::documents(docs));
        }
    }
    if !data_dir.is_dir() {
        return Err(Error::Input {
            location: config.display().to_string(),
            reason: format!("data folder {} does not exist (set `data_dir` in the recipe, or --data)", data_dir.display()),
        });
    }
    let refuse = |reason: String| Err(Error::Input { location: config.display().to_string(), reason });
    if (cfg.from_recipe.is_some() || !cfg.average.is_empty()) && depth + 1 >= MAX_STAGES {
        return refuse(format!("`from_recipe` and `average` chain more than {MAX_STAGES} recipes (does a recipe name itself?)"));
    }
    if !cfg.average.is_empty() {
        if !cfg.base.is_empty() || cfg.from_recipe.is_some() || !cfg.train.is_empty() {
            return refuse("an `average` recipe trains nothing itself: leave out `base`, `from_recipe` and `train`".into());
        }
    } else if cfg.average_base {
        return refuse("`average_base` goes with `average` (it adds the members' starting checkpoint to the average)".into());
    }
    if !cfg.average.is_empty() {
        return run_average(config, &cfg, store, opts, &data_dir, obs, depth, done);
    }
    let base = match (&cfg.from_recipe, cfg.base.is_empty()) {
        (Some(_), false) => return refuse("set `base` or `from_recipe`, not both".into()),
        (None, true) => return refuse("missing `base` (or `from_recipe`, or `average`)".into()),
        (None, false) => store.resolve(&cfg.base)?,
        (Some(prev), true) => {
            let prev_path = recipe_dir(config).join(prev);
            let model_dir = match stage_model(&prev_path, &opts.out.join(FROM_RECIPE_DIR), store, opts, obs, depth + 1, done)? {
                Ok(dir) => dir,
                Err(unfinished) => return Ok(unfinished),
            };
            let entry = chain_root(&prev_path, store, depth + 1)?;
            let mut hashes = BTreeMap::new();
            for f in ["config.json", "tokenizer.json", "model.safetensors"] {
                hashes.insert(f.to_string(), crate::models::verify::sha256_file(&model_dir.join(f))?);
            }
            let name = prev_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            ResolvedModel { entry: crate::models::ModelEntry { name, ..entry }, dir: model_dir, from: "recipe".into(), hashes }
        }
    };
    let outcome = run(&cfg, &base, &RunOptions { data_dir, ..opts.clone() }, obs)?;
    if let Some(dir) = outcome.model_dir.as_ref().filter(|_| outcome.finished) {
        done.insert(canonical(config), dir.clone());
    }
    Ok(outcome)
}

/// The model folder of the recipe `recipe`, trained into `out` if this invocation has not finished it
/// already and `out` does not hold it finished (by the same recipe); `Err` carries the outcome of a
/// stage that stopped early.
#[allow(clippy::too_many_arguments)]
fn stage_model(
    recipe: &Path,
    out: &Path,
    store: &crate::models::ModelStore,
    opts: &RunOptions,
    obs: &mut dyn Observer,
    depth: usize,
    done: &mut Finished,
) -> Result<std::result::Result<PathBuf, RunOutcome>> {
    if let Some(dir) = done.get(&canonical(recipe)) {
        obs.note(&format!("stage  {} was finished in this run ({}); using its model", recipe.display(), dir.display()));
        return Ok(Ok(dir.clone()));
    }
    let cfg = TrainConfig::from_file(recipe)?;
    let finished = if opts.fresh { None } else { finished_stage(out, &cfg)? };
    if let Some((dir, made_from)) = finished {
        if from_current_base(recipe, &cfg, made_from.as_deref(), out, done)? {
            obs.note(&format!("stage  {} is finished in {}; using its model", recipe.display(), dir.display()));
            done.insert(canonical(recipe), dir.clone());
            return Ok(Ok(dir));
        }
        obs.note(&format!("stage  {} in {} was made from an earlier model of {}: training it again", recipe.display(), out.display(), cfg.from_recipe.as_deref().unwrap_or("")));
    }
    obs.note(&format!("stage  {} first, into {}", recipe.display(), out.display()));
    // run_stage registers the recipe in `done` when it finishes.
    let outcome = run_stage(recipe, store, &RunOptions { out: out.to_path_buf(), ..opts.clone() }, obs, depth, done)?;
    match outcome.model_dir.clone() {
        Some(dir) if outcome.finished => Ok(Ok(dir)),
        _ => Ok(Err(outcome)),
    }
}

/// Whether a finished stage of `recipe` in `out`, recorded as made from `made_from` (`name@hash`),
/// continued from the model its `from_recipe` has now (looked up among the recipes finished in this
/// run, then in `out/from-recipe`; that model is then registered as finished, so that other stages
/// continuing from it reuse it). A stage whose upstream model is nowhere finished, or that has no
/// `from_recipe`, is taken as it is.
fn from_current_base(recipe: &Path, cfg: &TrainConfig, made_from: Option<&str>, out: &Path, done: &mut Finished) -> Result<bool> {
    let Some(prev) = &cfg.from_recipe else { return Ok(true) };
    let prev_path = recipe_dir(recipe).join(prev);
    let upstream = match done.get(&canonical(&prev_path)) {
        Some(dir) => dir.clone(),
        None => {
            let prev_cfg = TrainConfig::from_file(&prev_path)?;
            let prev_out = out.join(FROM_RECIPE_DIR);
            match finished_stage(&prev_out, &prev_cfg) {
                Ok(Some((dir, prev_made_from))) if from_current_base(&prev_path, &prev_cfg, prev_made_from.as_deref(), &prev_out, done)? => {
                    done.insert(canonical(&prev_path), dir.clone());
                    dir
                }
                _ => return Ok(true),
            }
        }
    };
    let hash = crate::models::verify::sha256_file(&upstream.join("model.safetensors"))?;
    Ok(made_from.and_then(|b| b.rsplit('@').next()).is_some_and(|h| !h.is_empty() && hash.starts_with(h)))
}

/// Trains (or reuses) every recipe an `average` recipe names (each with its own data folder unless
/// `opts` sets one for all), averages their weights into `OUT/model`, evaluates the average on the
/// test sets, read from `data_dir`, and writes `OUT/training.json`.
#[allow(clippy::too_many_arguments)]
fn run_average(
    config: &Path,
    cfg: &TrainConfig,
    store: &crate::models::ModelStore,
    opts: &RunOptions,
    data_dir: &Path,
    obs: &mut dyn Observer,
    depth: usize,
    done: &mut Finished,
) -> Result<RunOutcome> {
    // Refuse what cannot be averaged before training anything: other labels, another base encoder.
    let root = chain_root(config, store, depth)?;
    for m in &cfg.average {
        let path = recipe_dir(config).join(m);
        let member_cfg = TrainConfig::from_file(&path)?;
        let refuse = |reason: String| Err(Error::Input { location: config.display().to_string(), reason });
        if member_cfg.labels != cfg.labels {
            return refuse(format!("`{m}` trains the labels {:?}, this recipe says {:?}", member_cfg.labels, cfg.labels));
        }
        let member_root = chain_root(&path, store, depth + 1)?;
        if member_root.name != root.name {
            return refuse(format!("`{m}` starts from `{}`, `{}` from `{}`: only models fine-tuned from one checkpoint can be averaged", member_root.name, cfg.average[0], root.name));
        }
    }
    let mut members = vec![];
    if cfg.average_base {
        let base = store.resolve(&root.name)?;
        obs.note(&format!("base   {} ({}) is averaged in as a member", root.name, base.dir.display()));
        members.push((format!("base:{}", root.name), base.dir.clone()));
    }
    for (i, m) in cfg.average.iter().enumerate() {
        let path = recipe_dir(config).join(m);
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let out = opts.out.join(AVERAGE_DIR).join(format!("{}-{stem}", i + 1));
        match stage_model(&path, &out, store, opts, obs, depth + 1, done)? {
            Ok(dir) => members.push((m.clone(), dir)),
            Err(unfinished) => return Ok(unfinished),
        }
    }
    let dtype = export_dtype(cfg)?;
    let model_dir = opts.out.join("model");
    let dirs: Vec<&Path> = members.iter().map(|(_, d)| d.as_path()).collect();
    obs.note(&format!("averaging the weights of {} models into {}", dirs.len(), model_dir.display()));
    average::average_models(&dirs, &root.name, dtype, &model_dir).map_err(|e| match e {
        // The members' config.json and tokenizer.json are candor's exports; an upstream base's are not.
        Error::Input { location, reason } if cfg.average_base => Error::Input {
            location,
            reason: format!("{reason} (with `average_base` the base must itself be a model `candor train` exported, as `{}` is not)", root.name),
        },
        other => other,
    })?;

    // What each member's run recorded, and the totals.
    let mut state = TrainState::default();
    let mut listed = vec![];
    for (recipe, dir) in &members {
        if recipe.starts_with("base:") {
            listed.push(serde_json::json!({ "registry": &recipe["base:".len()..], "model_sha256": crate::models::verify::sha256_file(&dir.join("model.safetensors"))? }));
            continue;
        }
        let summary: serde_json::Value = read_json(&dir.parent().unwrap_or(dir).join("training.json"))?;
        state.step += summary["steps"].as_u64().unwrap_or(0);
        state.examples += summary["examples"].as_u64().unwrap_or(0);
        state.seconds += summary["seconds"].as_f64().unwrap_or(0.0);
        listed.push(serde_json::json!({
            "recipe": recipe,
            "model_sha256": crate::models::verify::sha256_file(&dir.join("model.safetensors"))?,
            "base": summary["base"],
            "steps": summary["steps"],
            "seconds": summary["seconds"],
            "test": summary["test"],
        }));
    }
    let own = RunOptions { data_dir: data_dir.to_path_buf(), ..opts.clone() };
    let dev = eval_sets(&cfg.dev, cfg, &model_dir, &own, obs, "dev  ")?;
    let test = eval_sets(&cfg.test, cfg, &model_dir, &own, obs, "test ")?;
    let summary = serde_json::json!({
        "base": format!("average of {}{}", if cfg.average_base { format!("{} (the base), ", root.name) } else { String::new() }, cfg.average.join(", ")),
        "members": listed,
        "steps": state.step,
        "examples": state.examples,
        "seconds": state.seconds,
        "device": crate::engine::device::describe(&opts.device),
        "dev": dev,
        "test": test,
        "config": cfg,
    });
    write_atomic(&opts.out.join("training.json"), serde_json::to_string_pretty(&summary).unwrap_or_default().as_bytes())?;
    done.insert(canonical(config), model_dir.clone());
    Ok(RunOutcome { out: opts.out.clone(), state, finished: true, model_dir: Some(model_dir), dev, test })
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn recipe_dir(config: &Path) -> &Path {
    config.parent().unwrap_or(Path::new("."))
}

/// Reads a JSON file written by a run (training.json, a checkpoint's state.json).
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Input { location: path.display().to_string(), reason: e.to_string() })
}

/// The model folder of a finished stage in `out`, if it is there and was made by `cfg`, with the
/// base its training.json records (`name@hash`).
fn finished_stage(out: &Path, cfg: &TrainConfig) -> Result<Option<(PathBuf, Option<String>)>> {
    let summary = out.join("training.json");
    if !summary.is_file() {
        return Ok(None);
    }
    let json: serde_json::Value = read_json(&summary)?;
    // Test sets are measured after training and do not change the weights: a recipe that gained a
    // test set since is still the recipe that made this stage.
    let without_tests = |v: &serde_json::Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("test");
        }
        v
    };
    let want = serde_json::to_value(cfg).map_err(|e| Error::Input { location: summary.display().to_string(), reason: e.to_string() })?;
    if json.get("config").map(without_tests) != Some(without_tests(&want)) {
        return Err(Error::Input {
            location: summary.display().to_string(),
            reason: "this stage was made by a different recipe; start over with --fresh or choose another output folder".into(),
        });
    }
    Ok(Some((out.join("model"), json["base"].as_str().map(String::from))))
}

/// The registry entry at the root of a `from_recipe` chain (its architecture is every stage's); for
/// an `average` recipe, that of the first recipe it names.
fn chain_root(config: &Path, store: &crate::models::ModelStore, depth: usize) -> Result<crate::models::ModelEntry> {
    let cfg = TrainConfig::from_file(config)?;
    let next = cfg.from_recipe.as_ref().or(cfg.average.first());
    match next {
        Some(prev) if depth + 1 < MAX_STAGES => chain_root(&recipe_dir(config).join(prev), store, depth + 1),
        Some(_) => Err(Error::Input { location: config.display().to_string(), reason: format!("`from_recipe` and `average` chain more than {MAX_STAGES} recipes") }),
        None => Ok(store.registry().get(&cfg.base)?.clone()),
    }
}

/// Evaluates an exported model folder on `sets` (the recipe's test or dev sets), loaded as users will
/// load it; `tag` starts each reported line.
fn eval_sets(sets: &[DataSet], cfg: &TrainConfig, model_dir: &Path, opts: &RunOptions, obs: &mut dyn Observer, tag: &str) -> Result<Vec<EvalReport>> {
    let device = &opts.device;
    let tokenizer = TextTokenizer::from_file(&model_dir.join("tokenizer.json"), cfg.max_tokens)?;
    let exported = crate::models::arch::load_classifier(Architecture::Bert, model_dir, crate::engine::device::default_dtype(device), device, Precision::F32)?;
    let mut reports = vec![];
    for set in sets {
        let ex = data::load(set, &opts.data_dir, &cfg.labels)?;
        let reference = reference_predictions(set, &opts.data_dir, ex.len());
        let r = evaluate(&set.display_name(), exported.as_ref(), &tokenizer, &ex, &cfg.labels, device, reference.as_deref())?;
        obs.note(&format!("{tag}  {}", format_report(&r)));
        reports.push(r);
    }
    Ok(reports)
}

fn export_dtype(cfg: &TrainConfig) -> Result<DType> {
    match cfg.export_dtype.as_str() {
        "f32" => Ok(DType::F32),
        "f16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        other => Err(Error::Input { location: "export_dtype".into(), reason: format!("`{other}` is not a dtype; accepted: {}", EXPORT_DTYPES.join(", ")) }),
    }
}

/// Runs (or resumes) training as configured, exports the model when every epoch is done, and
/// evaluates it on the test sets.
pub fn run(cfg: &TrainConfig, base: &ResolvedModel, opts: &RunOptions, obs: &mut dyn Observer) -> Result<RunOutcome> {
    if base.entry.architecture != Architecture::Bert {
        return Err(Error::Unsupported {
            model: base.entry.name.clone(),
            reason: format!("training supports bert-architecture bases; this one is {}", base.entry.architecture),
        });
    }
    // Before anything is loaded or written.
    cfg.validate()?;
    let device = &opts.device;
    let out = &opts.out;
    let checkpoints = Checkpoints::new(out);
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;

    // Data.
    let tokenizer = TextTokenizer::from_file(&base.file("tokenizer.json"), cfg.max_tokens)?;
    let mut train = vec![];
    for set in &cfg.train {
        let ex = data::load(set, &opts.data_dir, &cfg.labels)?;
        obs.note(&format!("train  {:<28} {:>6} examples", set.display_name(), ex.len()));
        train.extend(ex);
    }
    if train.is_empty() {
        return Err(Error::Input { location: "train config".into(), reason: "no training examples".into() });
    }
    let dev: Vec<(String, Vec<Example>)> = cfg
        .dev
        .iter()
        .map(|s| data::load(s, &opts.data_dir, &cfg.labels).map(|e| (s.display_name(), e)))
        .collect::<Result<_>>()?;
    let pairs: Vec<(&str, &str)> = train.iter().map(|e| (e.premise.as_str(), e.hypothesis.as_str())).collect();
    let encoded = tokenizer.encode_pairs(&pairs)?;
    let allowed: Vec<Vec<f32>> = train.iter().map(|e| e.allowed(&cfg.labels)).collect();
    let lengths: Vec<usize> = encoded.iter().map(|e| e.ids.len()).collect();
    let per_epoch = epoch_plan(&lengths, cfg.seed, 0, cfg.batch_tokens, cfg.batch_size).len() as u64;
    let total_steps = per_epoch * cfg.epochs as u64;
    let warmup = (cfg.warmup_ratio * total_steps as f64).round() as u64;
    obs.note(&format!(
        "{} training examples ({} truncated at {} tokens), {} steps per epoch, {} epochs, {} steps",
        train.len(),
        encoded.iter().filter(|e| e.truncated).count(),
        cfg.max_tokens,
        per_epoch,
        cfg.epochs,
        total_steps
    ));

    // Model, optimizer and state: fresh, or from the checkpoint.
    let net = TrainableBert::from_base(&base.dir, &cfg.labels, cfg.hidden_dropout, cfg.attention_dropout, cfg.seed, device)?;
    let mut opt = AdamW::new(net.vars(), cfg.optimizer)?;
    let log_path = out.join("train_log.jsonl");
    let dev_log_path = out.join("dev_log.jsonl");
    let mut state = TrainState::default();
    // Only a complete checkpoint is read: after a crash in the middle of a swap, the previous one
    // (see `checkpoint`); what the crash left half-written is removed.
    let ckpt = if opts.fresh { None } else { checkpoints.recover()? };
    if let Some(ckpt) = &ckpt {
        state = read_json(&ckpt.join("state.json"))?;
        if let Some(was) = state.base.as_ref().filter(|b| **b != base.id()) {
            obs.note(&format!("the checkpoint in {} was trained from {was}, not from {}: starting over", ckpt.display(), base.id()));
            state = TrainState::default();
        }
    }
    if let Some(ckpt) = ckpt.as_ref().filter(|_| state.step > 0 || state.epoch > 0) {
        net.load_weights(&ckpt.join("model.safetensors"), device)?;
        opt.load(&ckpt.join("optimizer.safetensors"), state.step, device)?;
        truncate_log(&log_path, state.step)?;
        truncate_log(&dev_log_path, state.step)?;
        obs.note(&format!("resuming from step {} (epoch {}, batch {})", state.step, state.epoch + 1, state.batch_in_epoch));
    } else {
        // Starting over: what an earlier run left is no longer this run's result.
        let _ = std::fs::remove_file(&log_path);
        let _ = std::fs::remove_file(&dev_log_path);
        let _ = std::fs::remove_file(out.join("training.json"));
        let _ = std::fs::remove_dir_all(out.join("model"));
    }
    state.base = Some(base.id());

    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(|e| Error::io(&log_path, e))?;
    let mut dev_log =
        std::fs::OpenOptions::new().create(true).append(true).open(&dev_log_path).map_err(|e| Error::io(&dev_log_path, e))?;
    let mut last_dev = vec![];
    let session_start = Instant::now();
    let seconds_before = state.seconds;
    // A checkpoint is written whole into a folder of its own, then swapped in with renames: a crash
    // leaves the previous checkpoint or this one, never weights of one step beside moments of another.
    let save = |state: &TrainState, opt: &AdamW| -> Result<()> {
        checkpoints.save(|dir| {
            net.save_weights(&dir.join("model.safetensors"), DType::F32)?;
            opt.save(&dir.join("optimizer.safetensors"))?;
            let path = dir.join("state.json");
            std::fs::write(&path, serde_json::to_string_pretty(state).unwrap_or_default()).map_err(|e| Error::io(&path, e))
        })
    };

    'epochs: while state.epoch < cfg.epochs {
        let plan = epoch_plan(&lengths, cfg.seed, state.epoch, cfg.batch_tokens, cfg.batch_size);
        while state.batch_in_epoch < plan.len() {
            if opts.stop.load(Ordering::SeqCst) || opts.max_steps.is_some_and(|m| state.step >= m) {
                break 'epochs;
            }
            let idx = &plan[state.batch_in_epoch];
            let items: Vec<&Encoded> = idx.iter().map(|&i| &encoded[i]).collect();
            let batch = batch_tensors(&items, tokenizer.pad_id(), device)?;
            let allowed_rows: Vec<f32> = idx.iter().flat_map(|&i| allowed[i].iter().copied()).collect();
            let allowed_t = Tensor::from_vec(allowed_rows, (idx.len(), cfg.labels.len()), device)?;
            let seed = step_seed(cfg.seed, state.step);
            if !device.is_cpu() {
                // GPU dropout masks come from the device's generator, reseeded every step, so that a
                // resumed run draws the same masks.
                device.set_seed(seed)?;
            }
            let logits = net.model.logits(&batch, Mode::Train { seed })?;
            let loss = batch_loss(&logits, &allowed_t)?;
            let loss_v = loss.to_scalar::<f32>()? as f64;
            if !loss_v.is_finite() {
                return Err(Error::Input { location: format!("step {}", state.step + 1), reason: "the loss is not finite; lower the learning rate".into() });
            }
            let grads = loss.backward()?;
            let norm = opt.grad_norm(&grads)?;
            let scale = if norm > cfg.max_grad_norm { cfg.max_grad_norm / (norm + 1e-6) } else { 1.0 };
            let lr = optim::lr_at(cfg.optimizer.lr, state.step, warmup, total_steps);
            opt.step(&grads, lr, scale)?;
            state.step += 1;
            state.batch_in_epoch += 1;
            state.examples += idx.len() as u64;
            state.seconds = seconds_before + session_start.elapsed().as_secs_f64();
            let line = LogLine { step: state.step, epoch: state.epoch, loss: loss_v, lr, grad_norm: norm };
            use std::io::Write;
            writeln!(log, "{}", serde_json::to_string(&line).unwrap_or_default()).map_err(|e| Error::io(&log_path, e))?;
            obs.step(&state, &line, total_steps);
            if cfg.eval_every > 0 && state.step % cfg.eval_every == 0 && !dev.is_empty() {
                last_dev = dev
                    .iter()
                    .map(|(n, ex)| evaluate(n, &net.model, &tokenizer, ex, &cfg.labels, device, None))
                    .collect::<Result<_>>()?;
                let entry = serde_json::json!({"step": state.step, "dev": last_dev});
                writeln!(dev_log, "{entry}").map_err(|e| Error::io(&dev_log_path, e))?;
                obs.eval(state.step, &last_dev);
            }
            if state.step % cfg.checkpoint_every == 0 {
                save(&state, &opt)?;
            }
        }
        state.epoch += 1;
        state.batch_in_epoch = 0;
    }
    save(&state, &opt)?;
    if state.epoch < cfg.epochs {
        return Ok(RunOutcome { out: out.clone(), state, finished: false, model_dir: None, dev: last_dev, test: vec![] });
    }

    // Export, then evaluate the exported files the way users will load them.
    let model_dir = out.join("model");
    export(&net, cfg, base, &model_dir)?;
    last_dev = dev
        .iter()
        .map(|(n, ex)| evaluate(n, &net.model, &tokenizer, ex, &cfg.labels, device, None))
        .collect::<Result<_>>()?;
    obs.eval(state.step, &last_dev);
    let test = eval_sets(&cfg.test, cfg, &model_dir, opts, obs, "test ")?;
    let summary = serde_json::json!({
        "base": base.id(),
        "steps": state.step,
        "examples": state.examples,
        "seconds": state.seconds,
        "device": crate::engine::device::describe(device),
        "dev": last_dev,
        "test": test,
        "config": cfg,
    });
    write_atomic(&out.join("training.json"), serde_json::to_string_pretty(&summary).unwrap_or_default().as_bytes())?;
    Ok(RunOutcome { out: out.clone(), state, finished: true, model_dir: Some(model_dir), dev: last_dev, test })
}

/// One line for a report: name, n, accuracies.
pub fn format_report(r: &EvalReport) -> String {
    let mut s = format!("{:<28} n={:<6} balanced acc {:.4}  binary acc {:.4}", r.name, r.n, r.balanced_accuracy, r.binary_accuracy);
    if let Some(a) = r.accuracy {
        s.push_str(&format!("  3-way acc {a:.4}"));
    }
    if let Some(a) = r.reference_accuracy {
        s.push_str(&format!("  (reference {a:.4})"));
    }
    s
}

fn truncate_log(path: &Path, step: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l).ok().and_then(|v| v["step"].as_u64()).is_some_and(|s| s <= step)
        })
        .collect();
    let mut body = kept.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    write_atomic(path, body.as_bytes())
}

/// Writes the model folder: config.json (the base config with id2label), tokenizer.json (the base's,
/// without its fixed padding and truncation) and model.safetensors in the export dtype.
pub fn export(net: &TrainableBert, cfg: &TrainConfig, base: &ResolvedModel, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let dtype = export_dtype(cfg)?;
    let mut config = net.base_config.clone();
    let id2label: BTreeMap<String, String> = cfg.labels.iter().enumerate().map(|(i, l)| (i.to_string(), l.clone())).collect();
    let label2id: BTreeMap<String, usize> = cfg.labels.iter().enumerate().map(|(i, l)| (l.clone(), i)).collect();
    config["id2label"] = serde_json::json!(id2label);
    config["label2id"] = serde_json::json!(label2id);
    config["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
    config["_name_or_path"] = serde_json::json!(base.entry.name);
    write_atomic(&dir.join("config.json"), serde_json::to_string_pretty(&config).unwrap_or_default().as_bytes())?;
    let tok_path = base.file("tokenizer.json");
    let text = std::fs::read_to_string(&tok_path).map_err(|e| Error::io(&tok_path, e))?;
    let mut tok: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Tokenizer(e.to_string()))?;
    tok["padding"] = serde_json::Value::Null;
    tok["truncation"] = serde_json::Value::Null;
    write_atomic(&dir.join("tokenizer.json"), serde_json::to_string(&tok).unwrap_or_default().as_bytes())?;
    write_atomic_with(&dir.join("model.safetensors"), |tmp| net.save_weights(tmp, dtype))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_the_one_that_separates_dev_sets_best() {
        let labels: Vec<String> = ["entailment", "neutral", "contradiction"].iter().map(|s| s.to_string()).collect();
        let ex = |ent: bool| Example { premise: "p".into(), hypothesis: "h".into(), target: if ent { Target::Label(0) } else { Target::NotEntailment } };
        // Entailed pairs score 0.3-0.4, the others 0.1-0.2: 0.5 calls everything "not"; 0.25 splits them.
        let examples: Vec<Example> = [true, true, false, false].iter().map(|&e| ex(e)).collect();
        let probs: Vec<Vec<f32>> = [0.3f32, 0.4, 0.1, 0.2].iter().map(|&p| vec![p, 1.0 - p, 0.0]).collect();
        assert_eq!(balanced_accuracy_at(&examples, &probs, &labels, 0.5), 0.5);
        let (t, mean) = choose_threshold(&[(&examples, &probs)], &labels);
        assert!(t > 0.2 && t <= 0.3, "{t}");
        assert_eq!(mean, 1.0);
        // Sets that every threshold in a range separates equally: the one nearest 0.5 wins.
        let probs: Vec<Vec<f32>> = [0.99f32, 0.98, 0.01, 0.02].iter().map(|&p| vec![p, 1.0 - p, 0.0]).collect();
        assert_eq!(choose_threshold(&[(&examples, &probs)], &labels).0, 0.5);
    }

    /// A config that passes every check, with one training set.
    const GOOD: &str = r#"
base = "tiny"
labels = ["entailment", "neutral", "contradiction"]
max_tokens = 32
epochs = 2
batch_tokens = 128
batch_size = 8
checkpoint_every = 3
export_dtype = "f32"
[optimizer]
lr = 1e-3
beta1 = 0.9
beta2 = 0.999
eps = 1e-6
weight_decay = 0.01
[[train]]
path = "g.jsonl"
format = "grounding"
labels = { supported = "entailment", not_supported = "not_entailment", other = "drop" }
heldout = 0.25
part = "train"
"#;

    fn good() -> TrainConfig {
        toml::from_str(GOOD).unwrap()
    }

    /// A change to a config, and what the refusal must say (the field, usually).
    type Edit = (&'static str, Box<dyn Fn(&mut TrainConfig)>);

    /// The message of `cfg`'s validation error (the test fails if it passes).
    fn refusal(cfg: &TrainConfig) -> String {
        match cfg.validate() {
            Err(e @ Error::Input { .. }) => e.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// A recipe file holding `text`, read with `from_file`: the error's message.
    fn file_refusal(text: &str) -> (String, PathBuf, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recipe.toml");
        std::fs::write(&path, text).unwrap();
        let msg = TrainConfig::from_file(&path).map(|_| ()).expect_err(text).to_string();
        (msg, path, dir)
    }

    #[test]
    fn a_good_config_and_every_shipped_recipe_pass_validation() {
        good().validate().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut recipes = vec![];
        for top in ["models", "examples"] {
            let Ok(dirs) = std::fs::read_dir(root.join(top)) else { continue };
            for d in dirs {
                let d = d.unwrap().path();
                let files: Vec<PathBuf> = if d.is_dir() { std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()).collect() } else { vec![d] };
                for f in files {
                    let is_recipe = f.extension().is_some_and(|x| x == "toml")
                        && std::fs::read_to_string(&f).unwrap().lines().any(|l| {
                            let l = l.trim_start();
                            l.starts_with("[[train]]") || l.starts_with("from_recipe") || l.starts_with("average") || l.starts_with("base =")
                        });
                    if is_recipe {
                        recipes.push(f);
                    }
                }
            }
        }
        assert!(recipes.len() >= 8, "{recipes:?}");
        for r in &recipes {
            TrainConfig::from_file(r).unwrap_or_else(|e| panic!("{}: {e}", r.display()));
        }
    }

    #[test]
    fn unknown_keys_are_refused_naming_the_key_and_the_file() {
        for (typo, key) in [
            (GOOD.replace("batch_size = 8", "bacth_size = 8"), "bacth_size"),
            (GOOD.replace("lr = 1e-3", "learning_rate = 1e-3"), "learning_rate"),
            (GOOD.replace("heldout = 0.25", "heldot = 0.25"), "heldot"),
        ] {
            let (msg, path, _dir) = file_refusal(&typo);
            assert!(msg.contains(&format!("unknown field `{key}`")), "{msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
        }
    }

    #[test]
    fn zero_sizes_are_refused_naming_the_field() {
        let cases: Vec<Edit> = vec![
            ("max_tokens", Box::new(|c| c.max_tokens = 0)),
            ("epochs", Box::new(|c| c.epochs = 0)),
            ("batch_size", Box::new(|c| c.batch_size = 0)),
            ("batch_tokens", Box::new(|c| c.batch_tokens = 0)),
            ("checkpoint_every", Box::new(|c| c.checkpoint_every = 0)),
        ];
        for (field, set) in cases {
            let mut cfg = good();
            set(&mut cfg);
            let msg = refusal(&cfg);
            assert!(msg.contains(&format!("`{field}` is 0")), "{field}: {msg}");
        }
        // Not zero, but still too small: a window without room for a pair, a budget below the window.
        let mut cfg = good();
        cfg.max_tokens = 3;
        assert!(refusal(&cfg).contains("`max_tokens` is 3"));
        let mut cfg = good();
        cfg.batch_tokens = 16;
        assert!(refusal(&cfg).contains("`batch_tokens` is 16, below `max_tokens` (32)"));
        // 0 is meaningful for eval_every (only at the end).
        let mut cfg = good();
        cfg.eval_every = 0;
        cfg.validate().unwrap();
    }

    #[test]
    fn rates_and_fractions_out_of_range_or_not_finite_are_refused_naming_the_field() {
        let cases: Vec<Edit> = vec![
            ("optimizer.lr", Box::new(|c| c.optimizer.lr = 0.0)),
            ("optimizer.lr", Box::new(|c| c.optimizer.lr = -1e-5)),
            ("optimizer.lr", Box::new(|c| c.optimizer.lr = f64::NAN)),
            ("optimizer.lr", Box::new(|c| c.optimizer.lr = f64::INFINITY)),
            ("optimizer.beta1", Box::new(|c| c.optimizer.beta1 = 1.0)),
            ("optimizer.beta2", Box::new(|c| c.optimizer.beta2 = -0.1)),
            ("optimizer.eps", Box::new(|c| c.optimizer.eps = 0.0)),
            ("optimizer.weight_decay", Box::new(|c| c.optimizer.weight_decay = f64::NAN)),
            ("warmup_ratio", Box::new(|c| c.warmup_ratio = 1.5)),
            ("warmup_ratio", Box::new(|c| c.warmup_ratio = -0.1)),
            ("hidden_dropout", Box::new(|c| c.hidden_dropout = 1.0)),
            ("attention_dropout", Box::new(|c| c.attention_dropout = f64::INFINITY)),
            ("max_grad_norm", Box::new(|c| c.max_grad_norm = 0.0)),
        ];
        for (field, set) in cases {
            let mut cfg = good();
            set(&mut cfg);
            let msg = refusal(&cfg);
            assert!(msg.contains(&format!("`{field}` is ")), "{field}: {msg}");
        }
        // TOML can spell nan and inf: read from a file, the message names the field and the file.
        let (msg, path, _dir) = file_refusal(&GOOD.replace("lr = 1e-3", "lr = nan"));
        assert!(msg.contains("`optimizer.lr` is NaN") && msg.contains(&path.display().to_string()), "{msg}");
    }

    #[test]
    fn an_unknown_dtype_is_refused_listing_the_accepted_ones() {
        let mut cfg = good();
        cfg.export_dtype = "fp16".into();
        let msg = refusal(&cfg);
        assert!(msg.contains("`export_dtype` is `fp16`; accepted: f32, f16, bf16"), "{msg}");
        for ok in EXPORT_DTYPES {
            cfg.export_dtype = ok.into();
            cfg.validate().unwrap();
            export_dtype(&cfg).unwrap();
        }
    }

    #[test]
    fn bad_labels_and_data_sets_are_refused_naming_the_field() {
        let cases: Vec<Edit> = vec![
            ("`labels` is empty", Box::new(|c| c.labels.clear())),
            ("`labels` names `neutral` twice", Box::new(|c| c.labels.push("neutral".into()))),
            ("`train[0].heldout` is 1.5", Box::new(|c| c.train[0].heldout = 1.5)),
            ("`train[0].heldout` is 1 in `train[0]` (g.jsonl) with part = \"train\"", Box::new(|c| c.train[0].heldout = 1.0)),
            ("`dev[0].heldout` is 0", Box::new(|c| {
                let mut d = c.train[0].clone();
                d.heldout = 0.0;
                d.part = data::Part::Heldout;
                c.dev.push(d);
            })),
            ("`train[0].distractors` is NaN", Box::new(|c| c.train[0].distractors = f64::NAN)),
            ("`train[0].limit` is 0", Box::new(|c| c.train[0].limit = Some(0))),
            ("`train[0].labels` is empty", Box::new(|c| c.train[0].labels.clear())),
            ("`train[0].labels` maps `supported` to `entailed`", Box::new(|c| {
                c.train[0].labels.insert("supported".into(), "entailed".into());
            })),
        ];
        for (words, set) in cases {
            let mut cfg = good();
            set(&mut cfg);
            let msg = refusal(&cfg);
            assert!(msg.contains(words), "expected `{words}` in: {msg}");
        }
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let mut cfg = good();
        cfg.batch_size = 0;
        cfg.optimizer.lr = 0.0;
        cfg.export_dtype = "f8".into();
        let msg = refusal(&cfg);
        for field in ["`batch_size`", "`optimizer.lr`", "`export_dtype`"] {
            assert!(msg.contains(field), "{field} missing from: {msg}");
        }
    }

    #[test]
    fn epoch_plans_are_reproducible_and_cover_every_example() {
        let lengths: Vec<usize> = (0..500).map(|i| 10 + (i * 37) % 200).collect();
        let a = epoch_plan(&lengths, 7, 0, 1024, 16);
        assert_eq!(a, epoch_plan(&lengths, 7, 0, 1024, 16));
        assert_ne!(a, epoch_plan(&lengths, 7, 1, 1024, 16));
        let mut all: Vec<usize> = a.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..500).collect::<Vec<_>>());
        for b in &a {
            let longest = b.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(b.len() <= 16 && (b.len() == 1 || longest * b.len() <= 1024));
        }
    }

    #[test]
    fn loss_is_cross_entropy_for_one_label_and_not_entailment_otherwise() {
        let logits = Tensor::new(&[[2.0f32, 0.0, -1.0], [0.5, 0.5, 0.5]], &Device::Cpu).unwrap();
        let p0: Vec<f32> = {
            let e: Vec<f32> = [2.0f32, 0.0, -1.0].iter().map(|x| x.exp()).collect();
            let s: f32 = e.iter().sum();
            e.iter().map(|x| x / s).collect()
        };
        // Row 0: gold label 0; row 1: "not entailment" (labels 1 and 2 allowed).
        let allowed = Tensor::new(&[[1.0f32, 0.0, 0.0], [0.0, 1.0, 1.0]], &Device::Cpu).unwrap();
        let got = batch_loss(&logits, &allowed).unwrap().to_scalar::<f32>().unwrap();
        let want = (-(p0[0].ln()) - (2.0f32 / 3.0).ln()) / 2.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }
}

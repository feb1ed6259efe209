//! The engine: runs models over many inputs fast. It tokenises in parallel, computes identical inputs
//! once, sorts by length, cuts batches by a token budget, and runs them on the chosen device.
//!
//! The graders call two runtimes: [`CrossEncoder`] (pairs to label probabilities) and [`Embedder`]
//! (texts to sentence vectors). Both take any architecture behind the traits of
//! [`crate::models::arch`], on any device: CPU, CUDA and Metal are one code path.

pub mod batch;
pub mod cache;
pub mod checker;
pub mod device;
pub mod judge;
pub mod spans;

/// The kernels live in [`crate::kernels`] (below [`crate::models`], whose architectures use them);
/// they are re-exported here under their former paths.
pub use crate::kernels::{cpu, fused};

use std::collections::HashMap;
use std::hash::Hash;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::models::arch::{self, EncodedBatch, Mode, SentenceEmbedder, SequenceClassifier};
use crate::models::{ResolvedModel, Role};
use crate::kernels::int8::Precision;
pub use batch::{plan_batches, Encoded, TextTokenizer};
pub use device::DeviceSpec;

/// A loaded network's outputs must be the registry entry's labels, one each.
fn outputs_match_labels(e: &crate::models::ModelEntry, outputs: usize) -> Result<()> {
    if outputs == e.labels.len() {
        return Ok(());
    }
    Err(Error::Unsupported {
        model: e.name.clone(),
        reason: format!("the network has {outputs} outputs but the registry names {} labels", e.labels.len()),
    })
}

/// How inputs are batched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Most padded tokens (batch size x longest input) in one batch.
    pub token_budget: usize,
    /// Most inputs in one batch.
    pub max_batch: usize,
}

impl BatchOptions {
    /// Defaults sized for the device: small batches on the CPU (they stay in cache), large on GPUs.
    pub fn for_device(device: &Device) -> Self {
        if device.is_cpu() {
            Self { token_budget: 4096, max_batch: 64 }
        } else {
            Self { token_budget: 65536, max_batch: 1024 }
        }
    }
}

/// Counts what the engine did, for progress and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Inputs asked for.
    pub inputs: usize,
    /// Distinct inputs actually computed.
    pub computed: usize,
    /// Batches run.
    pub batches: usize,
    /// Real (unpadded) tokens.
    pub tokens: usize,
    /// Tokens including padding.
    pub padded_tokens: usize,
    /// Inputs cut to the model's window.
    pub truncated: usize,
    /// Time spent in the network's forward passes, up to the results being back on the host:
    /// everything else (tokenising, batching, scheduling, writing) is overhead.
    pub model_time: std::time::Duration,
}

impl RunStats {
    /// Adds another run's counts to these.
    pub fn add(&mut self, other: &RunStats) {
        self.inputs += other.inputs;
        self.computed += other.computed;
        self.batches += other.batches;
        self.tokens += other.tokens;
        self.padded_tokens += other.padded_tokens;
        self.truncated += other.truncated;
        self.model_time += other.model_time;
    }
}

/// Keeps the first occurrence of each input: returns the distinct inputs and, for each original
/// input, the index of its distinct twin.
pub fn dedup<T: Hash + Eq + Clone>(items: &[T]) -> (Vec<T>, Vec<usize>) {
    let mut seen: HashMap<&T, usize> = HashMap::with_capacity(items.len());
    let mut unique = Vec::new();
    let index = items
        .iter()
        .map(|it| {
            *seen.entry(it).or_insert_with(|| {
                unique.push(it.clone());
                unique.len() - 1
            })
        })
        .collect();
    (unique, index)
}

/// Runs `f` over the batches of a plan and returns one output row per encoded input, in input order.
///
/// On a GPU the forward passes run asynchronously: the next batch is padded and copied while the
/// device still computes the previous one, whose results are read back only then (one pipeline
/// stage; on the CPU this changes nothing).
fn run_planned(
    encoded: &[Encoded],
    pad_id: u32,
    opts: BatchOptions,
    device: &Device,
    stats: &mut RunStats,
    progress: &(dyn Fn(usize) + Sync),
    f: &dyn Fn(&EncodedBatch) -> candle_core::Result<Tensor>,
) -> Result<Vec<Vec<f32>>> {
    let lengths: Vec<usize> = encoded.iter().map(|e| e.ids.len()).collect();
    let plan = plan_batches(&lengths, opts.token_budget, opts.max_batch);
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); encoded.len()];
    let mut pending: Option<(Vec<usize>, Tensor, std::time::Instant)> = None;
    let mut collect = |pending: Option<(Vec<usize>, Tensor, std::time::Instant)>, stats: &mut RunStats| -> Result<()> {
        if let Some((idx, result, started)) = pending {
            let rows = result.to_dtype(DType::F32)?.to_vec2::<f32>()?;
            stats.model_time += started.elapsed();
            let n = idx.len();
            for (i, row) in idx.into_iter().zip(rows) {
                out[i] = row;
            }
            progress(n);
        }
        Ok(())
    };
    for idx in plan {
        let items: Vec<&Encoded> = idx.iter().map(|&i| &encoded[i]).collect();
        let (ids, mask, types) = batch::pad_batch(&items, pad_id);
        stats.batches += 1;
        stats.tokens += items.iter().map(|e| e.ids.len()).sum::<usize>();
        stats.padded_tokens += ids.len() * ids.first().map_or(0, Vec::len);
        let started = std::time::Instant::now();
        let batch = EncodedBatch::from_rows(&ids, &mask, &types, device)?;
        collect(pending.take(), stats)?;
        let result = f(&batch)?;
        pending = Some((idx, result, started));
        if device.is_cpu() {
            // The CPU computed the batch inside `f`: nothing to overlap.
            collect(pending.take(), stats)?;
        }
    }
    collect(pending.take(), stats)?;
    Ok(out)
}

/// A cross-encoder runtime: (premise, hypothesis) pairs in, label probabilities out.
pub struct CrossEncoder {
    model: Box<dyn SequenceClassifier>,
    tokenizer: TextTokenizer,
    device: Device,
    /// The precision of the network's CPU matrix products, as it was loaded.
    precision: Precision,
    labels: Vec<String>,
    id: String,
    /// Batching of this runtime.
    pub batch: BatchOptions,
}

impl CrossEncoder {
    /// Loads a resolved (verified) NLI model on `device`, its CPU matrix products at `precision`.
    pub fn load(model: &ResolvedModel, device: &Device, precision: Precision) -> Result<Self> {
        model.require_role(Role::Nli)?;
        let e = &model.entry;
        let dtype = device::default_dtype(device);
        let net = arch::load_classifier(e.architecture, &model.dir, dtype, device, precision)?;
        outputs_match_labels(e, net.num_labels())?;
        let mut tokenizer = TextTokenizer::from_file(&model.file("tokenizer.json"), e.max_tokens)?;
        if let Some(prompt) = &e.pair_prompt {
            tokenizer = tokenizer.with_pair_prompt(prompt)?;
        }
        Self::from_parts(net, tokenizer, device.clone(), e.labels.clone(), model.id(), arch::effective_precision(e.architecture, precision))
    }

    /// Builds a runtime from parts (for models that are not in the registry, e.g. during training);
    /// `precision` is the one `model` was loaded at. A model that reads pairs written into a prompt
    /// of its own gets a tokenizer that writes them so, unless the tokenizer was given one already (a
    /// registry entry's `pair_prompt`).
    pub fn from_parts(
        model: Box<dyn SequenceClassifier>,
        tokenizer: TextTokenizer,
        device: Device,
        labels: Vec<String>,
        id: String,
        precision: Precision,
    ) -> Result<Self> {
        let tokenizer = match model.pair_prompt() {
            Some(prompt) if tokenizer.pair_prompt().is_none() => tokenizer.with_pair_prompt(prompt)?,
            _ => tokenizer,
        };
        let batch = BatchOptions::for_device(&device);
        Ok(Self { model, tokenizer, device, precision, labels, id, batch })
    }

    /// The label names, in output order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Index of a label, e.g. `entailment`.
    pub fn label_index(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    /// `name@sha-prefix` of the weights.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The tokenizer (for chunking by tokens).
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Device, number type and kernel path ([`device::runtime`]).
    pub fn runtime(&self) -> String {
        device::runtime(&self.device, self.precision)
    }

    /// Label probabilities for each (premise, hypothesis) pair, in input order.
    pub fn predict(&self, pairs: &[(&str, &str)]) -> Result<Vec<Vec<f32>>> {
        self.predict_with(pairs, &|_| {}).map(|(p, _)| p)
    }

    /// Like [`CrossEncoder::predict_with`], also saying for each pair whether it was cut to fit the
    /// model's window.
    pub fn predict_flagged(
        &self,
        pairs: &[(&str, &str)],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<(Vec<Vec<f32>>, Vec<bool>, RunStats)> {
        let (unique, index) = dedup(pairs);
        let encoded = self.tokenizer.encode_pairs(&unique)?;
        let mut stats = RunStats { inputs: pairs.len(), computed: unique.len(), ..Default::default() };
        stats.truncated = encoded.iter().filter(|e| e.truncated).count();
        let model = &self.model;
        let columns: Vec<usize> = (0..self.labels.len()).collect();
        let probs = run_planned(&encoded, self.tokenizer.pad_id(), self.batch, &self.device, &mut stats, progress, &|b| {
            let logits = model.logits(b, Mode::Eval)?;
            fused::softmax_gather(&logits, &columns)
        })?;
        let flags = index.iter().map(|&i| encoded[i].truncated).collect();
        Ok((index.into_iter().map(|i| probs[i].clone()).collect(), flags, stats))
    }

    /// Like [`CrossEncoder::predict`], calling `progress` with the number of distinct pairs done after
    /// each batch, and returning what was computed.
    pub fn predict_with(&self, pairs: &[(&str, &str)], progress: &(dyn Fn(usize) + Sync)) -> Result<(Vec<Vec<f32>>, RunStats)> {
        self.predict_flagged(pairs, progress).map(|(p, _, s)| (p, s))
    }
}

/// A sentence-embedding runtime: texts in, vectors out.
pub struct Embedder {
    model: SentenceEmbedder,
    tokenizer: TextTokenizer,
    device: Device,
    id: String,
    /// Batching of this runtime.
    pub batch: BatchOptions,
}

impl Embedder {
    /// Loads a resolved (verified) embedding model on `device`, its CPU matrix products at `precision`.
    pub fn load(model: &ResolvedModel, device: &Device, precision: Precision) -> Result<Self> {
        model.require_role(Role::Embed)?;
        let e = &model.entry;
        let dtype = device::default_dtype(device);
        let net = arch::load_embedder(e.architecture, &model.dir, e.pooling.unwrap_or_default(), e.normalize, dtype, device, precision)?;
        let tokenizer = TextTokenizer::from_file(&model.file("tokenizer.json"), e.max_tokens)?;
        Ok(Self { model: net, tokenizer, device: device.clone(), id: model.id(), batch: BatchOptions::for_device(device) })
    }

    /// Builds a runtime from parts (for encoders that are not in the registry as embedders).
    pub fn from_parts(model: SentenceEmbedder, tokenizer: TextTokenizer, device: Device, id: String) -> Self {
        let batch = BatchOptions::for_device(&device);
        Self { model, tokenizer, device, id, batch }
    }

    /// `name@sha-prefix` of the weights.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.model.dim()
    }

    /// One vector per text, in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_with(texts, &|_| {}).map(|(v, _)| v)
    }

    /// Like [`Embedder::embed`], with progress and statistics.
    pub fn embed_with(&self, texts: &[&str], progress: &(dyn Fn(usize) + Sync)) -> Result<(Vec<Vec<f32>>, RunStats)> {
        let (unique, index) = dedup(texts);
        let encoded = self.tokenizer.encode_texts(&unique)?;
        let mut stats = RunStats { inputs: texts.len(), computed: unique.len(), ..Default::default() };
        stats.truncated = encoded.iter().filter(|e| e.truncated).count();
        let model = &self.model;
        let vecs = run_planned(&encoded, self.tokenizer.pad_id(), self.batch, &self.device, &mut stats, progress, &|b| model.embed(b))?;
        Ok((index.into_iter().map(|i| vecs[i].clone()).collect(), stats))
    }
}

/// Tensor code allocates and frees large buffers at every op. By default glibc hands each one back
/// to the kernel and takes fresh zeroed pages for the next: page faults were a third of the CPU time
/// of a training step. Keeping freed memory in the process (a fixed mmap threshold, no trimming, a
/// large top pad) made a training step 1.7x faster on 2 cores. Call it first thing in `main`, before
/// any thread starts; it does nothing outside glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 1 << 30);
    }
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_maps_each_input_to_its_first_twin() {
        let (u, i) = dedup(&["a", "b", "a", "c", "b"]);
        assert_eq!(u, vec!["a", "b", "c"]);
        assert_eq!(i, vec![0, 1, 0, 2, 1]);
    }

    #[test]
    fn cosine_of_known_vectors() {
        assert!((cosine(&[1.0, 0.0], &[0.0, 1.0])).abs() < 1e-6);
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }
}

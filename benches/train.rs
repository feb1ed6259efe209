//! Training speed of `candor train`'s step (forward, backward, gradient norm, AdamW update) on the
//! CPU, over fixed batches drawn from ../shared/data: 128 (premise, hypothesis) pairs, 32 each from
//! SNLI, HaluEval QA, Factcheck-GPT and WiCE (evenly spaced rows), cut at 256 tokens as the recipes
//! cut them, sorted by length and taken 32 at a time (4 steps), the model candor-nli-minilm (MiniLM-L6,
//! bundled), dropout 0.1 on hidden states, none on attention, as models/*/train.toml train it. One
//! pass over the 4 batches is one run; it prints the median of RUNS runs (default 5) after a warm-up.
//! benches/peer_torch_train.py trains the same weights on the same batches with PyTorch.
//!
//!     cargo bench --bench train [-- RUNS]
//!     python3 benches/peer_torch_train.py models/candor-nli-minilm ../shared/data 2 [RUNS]
//!
//! A bench script rather than criterion: one run takes tens of seconds on two cores.
//! Figures are recorded in benches/README.md.

use candle_core::{Device, Tensor};
use candor::engine::batch::pad_batch;
use candor::engine::TextTokenizer;
use candor::models::arch::{EncodedBatch, Mode, SequenceClassifier};
use candor::models::{ModelStore, Registry};
use candor::train::optim::{AdamW, AdamWParams};
use candor::train::{batch_loss, TrainableBert};

mod common;
use common::{rows, text};

/// The 128 pairs, in the order the peer reads them.
pub fn pairs() -> Vec<(String, String)> {
    let mut out = vec![];
    for r in rows("nli/snli-dev.jsonl", 32) {
        out.push((text(&r["premise"]), text(&r["hypothesis"])));
    }
    for f in ["grounding/halueval-qa.jsonl", "grounding/factcheckgpt-stance.jsonl", "grounding/wice-dev.jsonl"] {
        for r in rows(f, 32) {
            out.push((text(&r["evidence"]), text(&r["claim"])));
        }
    }
    out
}

fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5);
    let device = Device::Cpu;
    let model = ModelStore::from_env(Registry::builtin().unwrap()).fetch("candor-nli-minilm").unwrap();
    let labels: Vec<String> = ["entailment", "neutral", "contradiction"].iter().map(|s| s.to_string()).collect();
    let net = TrainableBert::from_base(&model.dir, &labels, 0.1, 0.0, 7, &device).unwrap();
    let tok = TextTokenizer::from_file(&model.file("tokenizer.json"), 256).unwrap();
    let pairs = pairs();
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let enc = tok.encode_pairs(&refs).unwrap();
    // Length-sorted (stable), 32 a batch: the same batches the peer builds.
    let mut order: Vec<usize> = (0..enc.len()).collect();
    order.sort_by_key(|&i| enc[i].ids.len());
    let sorted: Vec<_> = order.iter().map(|&i| enc[i].clone()).collect();
    let batches: Vec<(EncodedBatch, Tensor)> = sorted
        .chunks(32)
        .enumerate()
        .map(|(bi, chunk)| {
            let items: Vec<_> = chunk.iter().collect();
            let (ids, mask, types) = pad_batch(&items, tok.pad_id());
            let batch = EncodedBatch::from_rows(&ids, &mask, &types, &device).unwrap();
            // Gold labels cycle through the three classes (as in the peer).
            let allowed: Vec<f32> = (0..chunk.len()).flat_map(|i| {
                let g = (bi * 32 + i) % 3;
                (0..3).map(move |l| if l == g { 1.0 } else { 0.0 })
            }).collect();
            (batch, Tensor::from_vec(allowed, (chunk.len(), 3), &device).unwrap())
        })
        .collect();
    let tokens: usize = sorted.iter().map(|e| e.ids.len()).sum();
    let padded: usize = sorted.chunks(32).map(|c| c.len() * c.iter().map(|e| e.ids.len()).max().unwrap_or(0)).sum();
    eprintln!("{} pairs in {} batches: {tokens} tokens (mean {:.0}), {padded} padded", sorted.len(), batches.len(), tokens as f64 / sorted.len() as f64);
    let mut opt = AdamW::new(net.vars(), AdamWParams { lr: 3e-5, ..Default::default() }).unwrap();
    let mut step = 0u64;
    let mut losses: Vec<f32> = vec![];
    let mut one_pass = || {
        for (batch, allowed) in &batches {
            step += 1;
            let logits = net.model.logits(batch, Mode::Train { seed: step }).unwrap();
            let loss = batch_loss(&logits, allowed).unwrap();
            losses.push(loss.to_scalar::<f32>().unwrap());
            let grads = loss.backward().unwrap();
            let norm = opt.grad_norm(&grads).unwrap();
            let scale = if norm > 1.0 { 1.0 / (norm + 1e-6) } else { 1.0 };
            opt.step(&grads, 3e-5, scale).unwrap();
        }
    };
    one_pass();
    let mut times = vec![];
    for _ in 0..runs {
        let t = std::time::Instant::now();
        one_pass();
        times.push(t.elapsed().as_secs_f64());
    }
    drop(one_pass);
    // The same batches again and again: the loss falls if the steps train (a check, not a figure).
    let per = batches.len();
    let mean = |xs: &[f32]| xs.iter().sum::<f32>() / xs.len() as f32;
    println!("mean loss: first pass {:.4}, last pass {:.4}", mean(&losses[..per]), mean(&losses[losses.len() - per..]));
    let mut sorted_t = times.clone();
    sorted_t.sort_by(f64::total_cmp);
    let med = sorted_t[sorted_t.len() / 2];
    println!(
        "candor train (kernels {}), {} threads: median {med:.3} s over {runs} runs ({:.1} examples/s); runs: {:?}",
        if candor::kernels::train::available() { "on" } else { "off" },
        rayon::current_num_threads(),
        sorted.len() as f64 / med,
        times.iter().map(|t| (t * 1000.0).round() / 1000.0).collect::<Vec<_>>()
    );
}

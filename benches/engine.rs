//! Throughput of the engine's runtimes on the CPU over a realistic length mix of texts drawn from
//! ../shared/data (short NLI pairs, evidence paragraphs with claims, web evidence, Wikipedia claims).
//!
//! Run: cargo bench --bench engine   (figures and peers are recorded in benches/README.md)

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candor::engine::{CrossEncoder, Embedder};
use candor::models::{ModelStore, Registry, ResolvedModel};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn data_dir() -> PathBuf {
    std::env::var_os("CANDOR_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

fn rows(rel: &str, n: usize) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(data_dir().join(rel)).expect("labelled data (set CANDOR_DATA)");
    // Every k-th row, so the sample spans the file.
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let step = (all.len() / n).max(1);
    all.iter().step_by(step).take(n).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(a) => a.iter().filter_map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
        other => other.as_str().unwrap_or_default().to_string(),
    }
}

/// 128 (premise, hypothesis) pairs: 32 each from SNLI, HaluEval QA, Factcheck-GPT and WiCE.
pub fn pair_mix() -> Vec<(String, String)> {
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

/// 256 texts: STS-B sentences, claims and evidence paragraphs.
pub fn text_mix() -> Vec<String> {
    let mut out = vec![];
    for r in rows("similarity/stsb-test.jsonl", 64) {
        out.push(text(&r["a"]));
        out.push(text(&r["b"]));
    }
    for r in rows("grounding/halueval-qa.jsonl", 64) {
        out.push(text(&r["claim"]));
    }
    for r in rows("grounding/factcheckgpt-stance.jsonl", 64) {
        out.push(text(&r["evidence"]));
    }
    out
}

fn minilm() -> ResolvedModel {
    let cache = std::env::var_os("CANDOR_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-model-cache"));
    ModelStore::from_env(Registry::builtin().unwrap()).with_cache_dir(cache).fetch("all-minilm-l6-v2").unwrap()
}

/// A MiniLM cross-encoder with a random 3-way head: the architecture and size of candor-nli-minilm,
/// so its throughput is that model's.
fn minilm_cross_encoder(base: &ResolvedModel, dir: &Path) -> ResolvedModel {
    let mut tensors = candle_core::safetensors::load(base.file("model.safetensors"), &Device::Cpu).unwrap();
    let w = Tensor::randn(0f32, 0.02, (3, 384), &Device::Cpu).unwrap();
    tensors.insert("classifier.weight".into(), w);
    tensors.insert("classifier.bias".into(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(base.file("config.json")).unwrap()).unwrap();
    cfg["id2label"] = serde_json::json!({"0": "entailment", "1": "neutral", "2": "contradiction"});
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(base.file("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let mut entry = Registry::builtin().unwrap().get("candor-nli-minilm").unwrap().clone();
    entry.max_tokens = 512;
    ResolvedModel { entry, dir: dir.to_path_buf(), from: "bench".into(), hashes: Default::default() }
}

fn bench(c: &mut Criterion) {
    let base = minilm();
    let tmp = tempfile::tempdir().unwrap();
    let ce_model = minilm_cross_encoder(&base, tmp.path());
    let device = Device::Cpu;
    let ce = CrossEncoder::load(&ce_model, &device).unwrap();
    let embedder = Embedder::load(&base, &device).unwrap();

    let pairs = pair_mix();
    let pair_refs: Vec<(&str, &str)> = pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let texts = text_mix();
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (_, ps) = ce.predict_with(&pair_refs, &|_| {}).unwrap();
    let (_, ts) = embedder.embed_with(&text_refs, &|_| {}).unwrap();
    eprintln!(
        "pairs: {} ({} tokens, mean {:.0}, padding overhead {:.1}%, {} truncated at 512); texts: {} (mean {:.0} tokens, truncated at 256: {})",
        ps.inputs,
        ps.tokens,
        ps.tokens as f64 / ps.inputs as f64,
        100.0 * (ps.padded_tokens as f64 / ps.tokens as f64 - 1.0),
        ps.truncated,
        ts.inputs,
        ts.tokens as f64 / ts.inputs as f64,
        ts.truncated
    );

    let mut g = c.benchmark_group("cpu");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(20));
    g.throughput(Throughput::Elements(pairs.len() as u64));
    g.bench_function("cross_encoder_minilm_pairs", |b| b.iter(|| ce.predict(&pair_refs).unwrap()));
    g.throughput(Throughput::Elements(texts.len() as u64));
    g.bench_function("embedder_minilm_texts", |b| b.iter(|| embedder.embed(&text_refs).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

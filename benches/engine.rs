//! Throughput of the engine's runtimes over a realistic length mix of texts drawn from
//! ../shared/data (short NLI pairs, evidence paragraphs with claims, web evidence, Wikipedia claims).
//!
//! Both runtimes run candor-nli-minilm, the first default (the same network as today's, MiniLM-L6; bundled in the repository, so the bench
//! needs no download): the cross-encoder as it is, the embedder as its encoder with mean pooling and L2
//! normalisation, which is all-MiniLM-L6-v2's architecture and size. benches/peer_torch.py runs the
//! same weights on the same inputs in the same batches through PyTorch.
//!
//!     cargo bench --bench engine                              # CPU: 128 pairs, 256 texts
//!     CANDOR_BENCH_DEVICE=cuda target/cuda/release/deps/engine-* --bench   # CUDA: 4096 pairs, 4096 texts
//!     CANDOR_BENCH_PRECISION=int8 cargo bench --bench engine          # CPU, `[engine] precision = "int8"`
//!
//! Figures and peers are recorded in benches/README.md.

use candle_core::Device;
use candor::kernels::int8::Precision;
use candor::kernels::fused;
use candor::engine::{BatchOptions, CrossEncoder, DeviceSpec, Embedder, TextTokenizer};
use candor::models::arch;
use candor::models::registry::{Architecture, Pooling};
use candor::models::{ModelStore, Registry, ResolvedModel};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod common;
use common::{rows, text};

/// 4n (premise, hypothesis) pairs: n each from SNLI, HaluEval QA, Factcheck-GPT and WiCE (WiCE has
/// 1,043 rows: past that it gives all of them).
pub fn pair_mix(n: usize) -> Vec<(String, String)> {
    let mut out = vec![];
    for r in rows("nli/snli-dev.jsonl", n) {
        out.push((text(&r["premise"]), text(&r["hypothesis"])));
    }
    for f in ["grounding/halueval-qa.jsonl", "grounding/factcheckgpt-stance.jsonl", "grounding/wice-dev.jsonl"] {
        for r in rows(f, n) {
            out.push((text(&r["evidence"]), text(&r["claim"])));
        }
    }
    out
}

/// 4n texts: STS-B sentence pairs (2n), claims and evidence paragraphs.
pub fn text_mix(n: usize) -> Vec<String> {
    let mut out = vec![];
    for r in rows("similarity/stsb-test.jsonl", n) {
        out.push(text(&r["a"]));
        out.push(text(&r["b"]));
    }
    for r in rows("grounding/halueval-qa.jsonl", n) {
        out.push(text(&r["claim"]));
    }
    for r in rows("grounding/factcheckgpt-stance.jsonl", n) {
        out.push(text(&r["evidence"]));
    }
    out
}

fn shipped() -> ResolvedModel {
    let mut m = ModelStore::from_env(Registry::builtin().unwrap()).fetch("candor-nli-minilm").unwrap();
    // Pairs are cut at 512 tokens, as in the peer.
    m.entry.max_tokens = 512;
    m
}

fn bench(c: &mut Criterion) {
    let spec: DeviceSpec = std::env::var("CANDOR_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into()).parse().unwrap();
    let device = spec.open().unwrap();
    let gpu = !device.is_cpu();
    let model = shipped();
    let precision: Precision = std::env::var("CANDOR_BENCH_PRECISION").map(|p| p.parse().unwrap()).unwrap_or_default();
    let ce = CrossEncoder::load(&model, &device, precision).unwrap();
    let dtype = candor::engine::device::default_dtype(&device);
    let net = arch::load_embedder(Architecture::Bert, &model.dir, Pooling::Mean, true, dtype, &device, precision).unwrap();
    let tok = TextTokenizer::from_file(&model.file("tokenizer.json"), 256).unwrap();
    let embedder = Embedder::from_parts(net, tok, device.clone(), "candor-nli-minilm encoder".into());

    let n = if gpu { 1024 } else { 32 };
    let pairs = pair_mix(n);
    let pair_refs: Vec<(&str, &str)> = pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let texts = text_mix(if gpu { 1024 } else { 64 });
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (_, ps) = ce.predict_with(&pair_refs, &|_| {}).unwrap();
    let (_, ts) = embedder.embed_with(&text_refs, &|_| {}).unwrap();
    let BatchOptions { token_budget, max_batch } = ce.batch;
    eprintln!(
        "{}: pairs: {} distinct of {} ({} tokens, mean {:.0}, padding overhead {:.1}%, {} truncated at 512, {} batches); \
         texts: {} distinct of {} (mean {:.0} tokens, {} truncated at 256); batches of at most {} padded tokens and {} inputs",
        candor::engine::device::describe(&device),
        ps.computed,
        ps.inputs,
        ps.tokens,
        ps.tokens as f64 / ps.computed as f64,
        100.0 * (ps.padded_tokens as f64 / ps.tokens as f64 - 1.0),
        ps.truncated,
        ps.batches,
        ts.computed,
        ts.inputs,
        ts.tokens as f64 / ts.computed as f64,
        ts.truncated,
        token_budget,
        max_batch,
    );

    let mut g = c.benchmark_group(candor::engine::device::runtime(&device, precision).replace(' ', "-"));
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(if gpu { 5 } else { 20 }));
    g.throughput(Throughput::Elements(pairs.len() as u64));
    g.bench_function("cross_encoder_minilm_pairs", |b| b.iter(|| ce.predict(&pair_refs).unwrap()));
    g.throughput(Throughput::Elements(texts.len() as u64));
    g.bench_function("embedder_minilm_texts", |b| b.iter(|| embedder.embed(&text_refs).unwrap()));
    // The fused tails against the composed candle ops they replace, on a batch of the embedder's shape.
    let states = candle_core::Tensor::randn(0f32, 1.0, (256, 128, 384), &device).unwrap().to_dtype(dtype).unwrap();
    let mask = candle_core::Tensor::ones((256, 128), candle_core::DType::U32, &device).unwrap();
    let sync = |d: &Device| d.synchronize().unwrap();
    g.throughput(Throughput::Elements(256));
    g.bench_function("pool_normalize_fused", |b| {
        b.iter(|| {
            fused::pool_normalize(&states, &mask, true).unwrap();
            sync(&device)
        })
    });
    g.bench_function("pool_normalize_composed", |b| {
        b.iter(|| {
            fused::composed_pool_normalize(&states, &mask, true).unwrap();
            sync(&device)
        })
    });
    // The packed AVX-512 linear layer (kernels::cpu) against candle's, on the feed-forward shape of a
    // 4,096-token batch, GELU included (CPU only, where the kernels apply).
    if device.is_cpu() && candor::kernels::cpu::available() {
        use candle_nn::Module;
        let x = candle_core::Tensor::randn(0f32, 1.0, (4096, 384), &device).unwrap();
        let w = candle_core::Tensor::randn(0f32, 0.05, (1536, 384), &device).unwrap();
        let bias = candle_core::Tensor::randn(0f32, 0.05, 1536, &device).unwrap();
        let packed = candor::kernels::cpu::PackedLinear::new(&w, Some(&bias)).unwrap().unwrap();
        let plain = candle_nn::Linear::new(w, Some(bias));
        g.throughput(Throughput::Elements(4096));
        g.bench_function("linear_gelu_4096x384x1536_packed", |b| b.iter(|| packed.forward(&x, true).unwrap()));
        g.bench_function("linear_gelu_4096x384x1536_candle", |b| b.iter(|| plain.forward(&x).unwrap().gelu_erf().unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Quality of the project's own embedder on human labels: STS Benchmark test, Spearman correlation of
//! cosine similarity with the gold scores. all-MiniLM-L6-v2's published figure is about 0.82.

mod common;

use candle_core::Device;
use candor::kernels::int8::Precision;
use candor::engine::{cosine, Embedder};

#[test]
fn stsb_test_spearman_reaches_0_80() {
    let model = common::fetched("all-minilm-l6-v2");
    let embedder = Embedder::load(&model, &Device::Cpu, Precision::F32).unwrap();
    let rows = common::read_jsonl(&common::data_dir().join("similarity/stsb-test.jsonl"));
    assert!(rows.len() > 1000);
    let a: Vec<&str> = rows.iter().map(|r| r["a"].as_str().unwrap()).collect();
    let b: Vec<&str> = rows.iter().map(|r| r["b"].as_str().unwrap()).collect();
    let gold: Vec<f64> = rows.iter().map(|r| r["score"].as_f64().unwrap()).collect();
    let texts: Vec<&str> = a.iter().chain(b.iter()).copied().collect();
    let (vecs, stats) = embedder.embed_with(&texts, &|_| {}).unwrap();
    assert_eq!(vecs.len(), texts.len());
    assert!(stats.computed < texts.len(), "duplicates in STS-B must be computed once");
    let n = rows.len();
    let sims: Vec<f64> = (0..n).map(|i| cosine(&vecs[i], &vecs[n + i]) as f64).collect();
    let rho = candor::stats::spearman(&sims, &gold).unwrap();
    eprintln!("STS-B test ({n} pairs): Spearman {rho:.4}; {} texts, {} computed, {} batches", texts.len(), stats.computed, stats.batches);
    assert!(rho >= 0.80, "Spearman {rho}");
    // Vectors are unit length (normalize = true in the registry).
    let norm: f32 = vecs[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
}

#[test]
fn batching_and_padding_do_not_change_vectors() {
    let model = common::fetched("all-minilm-l6-v2");
    let mut embedder = Embedder::load(&model, &Device::Cpu, Precision::F32).unwrap();
    let texts = [
        "A man is playing a guitar.",
        "The refund policy allows returns within thirty days of purchase, provided the receipt is kept.",
        "Short.",
    ];
    let together = embedder.embed(&texts).unwrap();
    embedder.batch.max_batch = 1;
    for (i, t) in texts.iter().enumerate() {
        let alone = embedder.embed(&[t]).unwrap();
        let diff = alone[0].iter().zip(&together[i]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff < 1e-4, "text {i}: {diff}");
    }
    // Different texts get different vectors.
    assert!(cosine(&together[0], &together[1]) < 0.9);
}

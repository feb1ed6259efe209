//! candor's GGUF decoder against candle-transformers' `quantized_llama` on the registry's small judge.
//!
//! candor dequantizes the weight types that candle has no SIMD kernel for (see gguf_llama.rs); with
//! CANDLE_DEQUANTIZE_ALL set before any model loads (this file is its own test binary, so the
//! setting reaches no other test), both implementations run every weight in f32 and must agree.

mod common;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candor::engine::judge::{JudgeModel, Piece};
use candor::models::arch::gguf_llama::GgufLlama;

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().map(|x| x.abs()).fold(0.0f32, f32::max).max(1e-6);
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max) / scale
}

fn open(path: &std::path::Path) -> (gguf_file::Content, std::fs::File) {
    let mut f = std::fs::File::open(path).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    (ct, f)
}

#[test]
fn network_matches_candle_transformers_quantized_llama() {
    std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1");
    let m = common::fetched("smollm2-135m-instruct");
    let path = m.file("SmolLM2-135M-Instruct.Q4_1.gguf");
    let j = JudgeModel::load(&m, &Device::Cpu).unwrap();
    let t = j.template();
    let ids = j
        .encode(&[Piece::Template(t.open("You grade answers.")), Piece::Data("The sky is blue because of Rayleigh scattering.".into()), Piece::Template(t.close().into())])
        .unwrap();
    assert!(ids.len() > 20);
    let (ct, mut f) = open(&path);
    let net = GgufLlama::from_gguf(&ct, &mut f, &Device::Cpu).unwrap();
    let (logits, cache) = net.forward(&[ids.clone()], None).unwrap();
    assert_eq!(cache.len(), ids.len());
    let ours: Vec<f32> = logits.squeeze(0).unwrap().to_vec1().unwrap();

    let (ct, mut f) = open(&path);
    let mut reference = candle_transformers::models::quantized_llama::ModelWeights::from_gguf(ct, &mut f, &Device::Cpu).unwrap();
    let x = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let theirs: Vec<f32> = reference.forward(&x, 0).unwrap().squeeze(0).unwrap().to_vec1().unwrap();
    assert_eq!(ours.len(), theirs.len());
    let err = max_rel(&ours, &theirs);
    assert!(err < 1e-3, "max relative difference {err}");

    // One more token through the KV cache.
    let next = j.encode(&[Piece::Data("4".into())]).unwrap();
    let (l2, c2) = net.forward(&[next.clone()], Some(&cache)).unwrap();
    assert_eq!(c2.len(), ids.len() + 1);
    let x = Tensor::new(next.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let t2: Vec<f32> = reference.forward(&x, ids.len()).unwrap().squeeze(0).unwrap().to_vec1().unwrap();
    let err = max_rel(&l2.squeeze(0).unwrap().to_vec1::<f32>().unwrap(), &t2);
    assert!(err < 1e-3, "after the cache: max relative difference {err}");
}


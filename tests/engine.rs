//! The engine's runtimes on a tiny model: de-duplication, token-budget batching and truncation must
//! not change any score.

use std::path::Path;

use candle_core::{DType, Device};
use candor::kernels::int8::Precision;
use candor::engine::CrossEncoder;
use candor::models::arch;
use candor::models::Architecture;

mod common;
use common::tiny_tokenizer;

fn tiny_cross_encoder(max_tokens: usize) -> (CrossEncoder, tempfile::TempDir) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert-cls");
    let tmp = tempfile::tempdir().unwrap();
    let model = arch::load_classifier(Architecture::Bert, &fixture, DType::F32, &Device::Cpu, Precision::F32).unwrap();
    let tok = tiny_tokenizer(tmp.path(), max_tokens);
    let labels = vec!["contradiction".into(), "entailment".into(), "neutral".into()];
    (CrossEncoder::from_parts(model, tok, Device::Cpu, labels, "tiny".into(), Precision::F32).unwrap(), tmp)
}

fn words(seed: usize, n: usize) -> String {
    (0..n).map(|i| format!("w{}", 4 + (seed * 7 + i * 13) % 60)).collect::<Vec<_>>().join(" ")
}

/// A model that reads each pair written into its prompt (HHEM's network, on the tiny parity fixture):
/// the runtime writes the pair into the prompt and encodes one text, and a pair scores the same in a
/// padded batch of longer ones as alone (the T5 encoder's padding mask).
#[test]
fn a_prompt_model_reads_the_filled_prompt_and_padding_changes_nothing() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hhem-t5");
    let tmp = tempfile::tempdir().unwrap();
    let model = arch::load_classifier(Architecture::HhemT5, &fixture, DType::F32, &Device::Cpu, Precision::F32).unwrap();
    let prompt = model.pair_prompt().unwrap().to_string();
    let tok = tiny_tokenizer(tmp.path(), 64);
    let labels = vec!["not_entailment".into(), "entailment".into()];
    let ce = CrossEncoder::from_parts(model, tok.clone(), Device::Cpu, labels, "tiny-hhem".into(), Precision::F32).unwrap();
    assert_eq!(ce.tokenizer().pair_prompt(), Some(prompt.as_str()));
    let pairs: Vec<(String, String)> = (0..6).map(|i| (words(i, 2 + 5 * i), words(i + 3, 1 + i))).collect();
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let together = ce.predict(&refs).unwrap();
    for (i, pair) in refs.iter().enumerate() {
        let alone = ce.predict(std::slice::from_ref(pair)).unwrap();
        for (a, b) in alone[0].iter().zip(&together[i]) {
            assert!((a - b).abs() < 1e-5, "pair {i}: alone {:?}, in a batch {:?}", alone[0], together[i]);
        }
    }
    // The prompt is what the model reads: the pair as one text, not a tokenizer pair.
    let filled = candor::engine::batch::fill_pair_prompt(&prompt, refs[5].0, refs[5].1);
    let one = &tok.encode_texts(&[&filled]).unwrap()[0];
    assert_eq!(&ce.tokenizer().encode_pairs(&refs[5..]).unwrap()[0], one);
    assert!((together[0][1] - together[5][1]).abs() > 1e-4, "different pairs, different scores");
}

#[test]
fn duplicates_are_computed_once_and_get_the_same_scores() {
    let (ce, _tmp) = tiny_cross_encoder(64);
    let texts: Vec<(String, String)> = (0..12).map(|i| (words(i % 4, 3 + i % 4), words(i % 4 + 1, 2 + i % 4))).collect();
    let pairs: Vec<(&str, &str)> = texts.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let (probs, stats) = ce.predict_with(&pairs, &|_| {}).unwrap();
    assert_eq!(probs.len(), pairs.len());
    let distinct: std::collections::HashSet<_> = pairs.iter().collect();
    assert_eq!(stats.computed, distinct.len());
    assert!(stats.computed < pairs.len());
    for (i, p) in pairs.iter().enumerate() {
        assert!((probs[i].iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let first = pairs.iter().position(|q| q == p).unwrap();
        assert_eq!(probs[i], probs[first]);
    }
    // Not all pairs score alike: the model reads its input.
    assert!(probs.iter().any(|p| (p[0] - probs[0][0]).abs() > 1e-4));
}

#[test]
fn batch_budget_does_not_change_scores() {
    let (mut ce, _tmp) = tiny_cross_encoder(64);
    let texts: Vec<(String, String)> = (0..20).map(|i| (words(i, 2 + (i * 5) % 30), words(i + 1, 1 + i % 9))).collect();
    let pairs: Vec<(&str, &str)> = texts.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    ce.batch.token_budget = 10_000;
    let (big, s_big) = ce.predict_with(&pairs, &|_| {}).unwrap();
    ce.batch.token_budget = 40;
    let (small, s_small) = ce.predict_with(&pairs, &|_| {}).unwrap();
    assert!(s_small.batches > s_big.batches);
    // Length-sorted batches waste little padding.
    assert!(s_small.padded_tokens <= s_big.padded_tokens);
    for (a, b) in big.iter().zip(&small) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }
}

#[test]
fn long_inputs_are_truncated_to_the_window_and_counted() {
    let (ce, _tmp) = tiny_cross_encoder(16);
    let long = words(1, 40);
    let (probs, stats) = ce.predict_with(&[(long.as_str(), "w5 w6")], &|_| {}).unwrap();
    assert_eq!(stats.truncated, 1);
    assert_eq!(stats.tokens, 16);
    assert_eq!(probs[0].len(), 3);
    assert_eq!(ce.label_index("entailment"), Some(1));
}

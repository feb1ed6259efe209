//! The judge against human similarity scores: the first 100 STS-B test pairs rated by the registry's
//! small judge under a similarity rubric (G-Eval expected rating), Spearman with the human 0-5
//! scores. The full-set figures for both judge models, beside the embedder's, are in docs/quality.md
//! (benches/judge_stsb.py).

mod common;

use candle_core::Device;
use candor::config::RubricConfig;
use candor::engine::judge::JudgeModel;
use candor::graders::judge;
use candor::suite::parse_case;

#[test]
fn judge_ratings_follow_human_similarity_on_stsb() {
    let rows = common::read_jsonl(&common::data_dir().join("similarity/stsb-test.jsonl"));
    let rows = &rows[..100];
    let cases: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| parse_case(i + 1, &serde_json::json!({"id": i.to_string(), "input": r["a"], "output": r["b"]}).to_string()).unwrap())
        .collect();
    let rubric: RubricConfig = toml::from_str(
        "name = \"similar\"\ncriterion = \"Text A and Text B mean the same thing.\"\nfields = [\"input\", \"output\"]\n\
         labels = { input = \"Text A\", output = \"Text B\" }\nanchors = [\"completely different meanings\", \"exactly the same meaning\"]\n",
    )
    .unwrap();
    let mut j = JudgeModel::load(&common::fetched("smollm2-135m-instruct"), &Device::Cpu).unwrap();
    let refs: Vec<_> = cases.iter().collect();
    let out = judge::grade(&mut j, &rubric, &refs).unwrap();
    let ratings: Vec<f64> = out.iter().map(|o| o.ran().unwrap().rating as f64).collect();
    let gold: Vec<f64> = rows.iter().map(|r| r["score"].as_f64().unwrap()).collect();
    let rho = candor::stats::spearman(&ratings, &gold).unwrap();
    eprintln!("smollm2-135m-instruct: Spearman {rho:.4} on the first 100 STS-B test pairs");
    // A regression guard on these 100 pairs (0.20 when recorded), not a quality claim: over all
    // 1,379 pairs this small model's ratings do not follow the human scores (docs/quality.md).
    assert!(rho > 0.1, "Spearman {rho:.4}");
}

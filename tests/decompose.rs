//! Claim decomposition by the judge (`[support] claims = "judge"`, `graders::decompose`): the
//! model's replies for a few sentences, greedy and repeatable; and `candor grade` with it, whose
//! claims say where they came from and point at their sentence.

mod common;

use candle_core::Device;
use candor::engine::judge::JudgeModel;
use candor::graders::decompose::{decompose, parse, prefix, prompt};
use serde_json::Value;

#[test]
fn the_judge_splits_sentences_into_facts_the_same_way_every_time() {
    let mut j = JudgeModel::load(&common::fetched("smollm2-135m-instruct"), &Device::Cpu).unwrap();
    let items: Vec<(String, String)> = [
        ("", "Purchases can be refunded within 30 days of delivery, and the money goes back to the original payment method."),
        ("Marie Curie was a physicist and chemist.", "She was born in Warsaw in 1867 and moved to Paris in 1891."),
        ("", "The tent is waterproof."),
    ]
    .iter()
    .map(|(c, s)| (c.to_string(), s.to_string()))
    .collect();
    let t = j.template();
    let p = j.encode(&prefix(t)).unwrap();
    let prompts: Vec<Vec<u32>> = items.iter().map(|(c, s)| j.encode(&prompt(t, c, s)).unwrap()).collect();
    let started = std::time::Instant::now();
    let replies = j.generate(&p, &prompts, &[96; 3], &|_| {}).unwrap();
    let generated = j.stats.tokens;
    eprintln!("{} tokens through the model in {:.1} s", generated, started.elapsed().as_secs_f64());
    for ((c, s), r) in items.iter().zip(&replies) {
        eprintln!("sentence: {s}\nreply:\n{r}\nfacts: {:?}\n", parse(r, c, s));
    }
    // Greedy: the same prompts give the same replies.
    assert_eq!(j.generate(&p, &prompts, &[96; 3], &|_| {}).unwrap(), replies);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let facts = decompose(&mut j, &items, &|n| done.store(n, std::sync::atomic::Ordering::Relaxed)).unwrap();
    assert_eq!(done.into_inner(), 2, "two sentences are long enough to split");
    assert!(facts[2].is_none(), "a short sentence is its own fact");
    // Whatever the model wrote, only facts that pass the check against their sentence are used.
    for ((c, s), f) in items.iter().zip(&facts) {
        if let Some(f) = f {
            assert!(!f.is_empty() && f.len() <= 8);
            assert_eq!(parse(&f.iter().map(|x| format!("- {x}")).collect::<Vec<_>>().join("\n"), c, s).as_ref(), Some(f));
        }
    }
    assert!(facts.iter().any(Option::is_some), "the judge split none of the sentences: {replies:?}");
}

#[test]
fn grade_with_decomposed_claims() {
    // The CLI never downloads on its own: fetch the judge into the test cache first (on a fresh
    // machine the other test in this file may not have fetched it yet, or may be fetching it now).
    common::fetched("smollm2-135m-instruct");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("s.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(root.join("examples/suite.jsonl")).unwrap().lines().take(6).map(String::from).collect();
    std::fs::write(&suite, lines.join("\n") + "\n").unwrap();
    let cfg = dir.path().join("c.toml");
    // The small test judge, named: the default judge is the 1.1 GB one.
    std::fs::write(&cfg, "[models]\njudge = \"smollm2-135m-instruct\"\n\n[support]\nclaims = \"judge\"\n").unwrap();
    let run = |name: &str| -> Vec<Value> {
        let out = dir.path().join(name);
        let o = common::candor(&[
            "grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "--metrics", "support", "--no-cache",
        ]);
        assert!(o.status.success() || o.status.code() == Some(1), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let (a, b) = (run("a.jsonl"), run("b.jsonl"));
    assert_eq!(a, b, "the same suite gave other claims or scores");
    assert!(a[0]["model"]["judge"].as_str().unwrap().starts_with("smollm2-135m-instruct@"));
    let mut from_judge = 0;
    for (r, line) in a.iter().zip(&lines) {
        let output: Value = serde_json::from_str(line).unwrap();
        let output: Vec<char> = output["output"].as_str().unwrap().chars().collect();
        for c in r["metrics"]["support"]["claims"].as_array().unwrap() {
            let from = c["from"].as_str().unwrap();
            assert!(from == "judge" || from == "sentence");
            from_judge += (from == "judge") as usize;
            let [s, e] = [c["span"][0].as_u64().unwrap() as usize, c["span"][1].as_u64().unwrap() as usize];
            assert!(s < e && e <= output.len());
            if from == "sentence" {
                let sentence: String = output[s..e].iter().collect();
                assert!(sentence.contains(c["text"].as_str().unwrap().trim_end_matches('.')));
            }
        }
    }
    assert!(from_judge > 0, "no claim came from the judge");
    // Without the setting, claims carry no `from` (results as before).
    std::fs::write(&cfg, "").unwrap();
    let plain = run("c.jsonl");
    assert!(plain[0]["metrics"]["support"]["claims"][0].get("from").is_none());
}

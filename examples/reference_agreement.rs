//! Measures the consistency metric's reference check on human-labelled sentence pairs, through the
//! grader itself (`Grader::grade_block` with only the consistency metric), with the default NLI model
//! and embedder:
//!
//! ```sh
//! cargo run --release --example reference_agreement -- [--rows N] [--allow-download] [DATA_DIR]
//! ```
//!
//! Each pair becomes a case with `a` as the reference and `b` as the output (no input). Reported
//! beside each other: the reference check's `score`, the score of earlier versions (mutual
//! implication, the smaller of `reference_entails_output` and `output_entails_reference`, which the
//! check still reports), SQuAD token F1, and the embedding cosine. MSRP (Microsoft Research
//! Paraphrase Corpus, test split): ROC-AUC against the paraphrase label, and balanced accuracy of
//! `passed` (of `old >= pass` for the old score). STS Benchmark (test split): Spearman correlation
//! with the 0-5 human similarity. Both ask a symmetric question (are the two sentences the same?);
//! the reference check asks a one-sided one (does the output give the reference's answer?), so these
//! figures say how well it tracks human judgements of agreement, not answer correctness itself.
//!
//! DATA_DIR defaults to `CANDOR_DATA/similarity` or `../shared/data/similarity`; `--rows` (default
//! 500) takes the first rows of each file.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use candle_core::Device;
use candor::kernels::int8::Precision;
use candor::config::GradeConfig;
use candor::engine::{CrossEncoder, Embedder};
use candor::graders::results::{ReferenceCheck, ReferenceMethod};
use candor::graders::{Grader, MetricSet};
use candor::models::{ModelStore, Registry, Role};
use candor::stats::{balanced_accuracy, roc_auc, spearman};
use candor::suite::Case;
use serde_json::Value;

/// One graded pair: its reference check.
struct Graded {
    check: ReferenceCheck,
}

impl Graded {
    fn new_score(&self) -> f64 {
        f64::from(self.check.score)
    }
    fn old_score(&self) -> f64 {
        f64::from(self.check.reference_entails_output.min(self.check.output_entails_reference))
    }
    fn out_entails_ref(&self) -> f64 {
        f64::from(self.check.output_entails_reference)
    }
    fn f1(&self) -> f64 {
        f64::from(self.check.token_f1.unwrap_or(0.0))
    }
    fn cosine(&self) -> f64 {
        f64::from(self.check.cosine.unwrap_or(0.0))
    }
}

fn read_rows(path: &Path, n: usize) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1)))
        .collect()
}

fn field<'a>(row: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    row.get(key).and_then(Value::as_str).with_context(|| format!("a row has no string `{key}`: {row}"))
}

/// Grades (reference, output) pairs through the grader's consistency metric.
fn grade(grader: &mut Grader, name: &str, pairs: &[(String, String)]) -> anyhow::Result<Vec<Graded>> {
    let cases: Vec<Case> = pairs
        .iter()
        .enumerate()
        .map(|(i, (a, b))| Case {
            line: i + 1,
            id: format!("{name}-{i}"),
            input: None,
            output: b.clone(),
            contexts: vec![],
            reference: Some(a.clone()),
            samples: vec![],
            segments: Default::default(),
            label: None,
            metadata: None,
            checks: vec![],
            latency_ms: None,
            cost: None,
            expect_refusal: None,
            input_hash: String::new(),
            unknown_fields: vec![],
            id_from_line: false,
            shadowed: vec![],
            respelt: vec![],
            renamed: vec![],
        })
        .collect();
    let mut out = Vec::with_capacity(cases.len());
    for block in cases.chunks(256) {
        for r in grader.grade_block(block, &|_| {})? {
            let check = r
                .metrics
                .consistency
                .as_ref()
                .and_then(|o| o.ran())
                .and_then(|c| c.reference.clone())
                .with_context(|| format!("{}: no reference check", r.id))?;
            out.push(Graded { check });
        }
    }
    Ok(out)
}

fn methods(graded: &[Graded]) -> String {
    let short = graded.iter().filter(|g| g.check.method == Some(ReferenceMethod::ShortAnswer)).count();
    format!("{short} short_answer, {} facts", graded.len() - short)
}

fn main() -> anyhow::Result<()> {
    let mut rows = 500usize;
    let mut allow_download = false;
    let mut dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rows" => rows = args.next().context("--rows needs a number")?.parse().context("--rows needs a number")?,
            "--allow-download" => allow_download = true,
            other if !other.starts_with('-') => dir = Some(PathBuf::from(other)),
            other => anyhow::bail!("unknown option {other}; usage: reference_agreement [--rows N] [--allow-download] [DATA_DIR]"),
        }
    }
    let dir = dir.unwrap_or_else(|| {
        std::env::var_os("CANDOR_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
            .join("similarity")
    });

    let store = ModelStore::from_env(Registry::load(None)?).allow_download(allow_download);
    let name =
        |role: Role| store.registry().default_for(role).map(|e| e.name.clone()).context("the registry names no default model");
    let device = Device::Cpu;
    let nli = CrossEncoder::load(&store.resolve(&name(Role::Nli)?)?, &device, Precision::F32)?;
    let embedder = Embedder::load(&store.resolve(&name(Role::Embed)?)?, &device, Precision::F32)?;
    let cfg = GradeConfig::default();
    let pass = f64::from(cfg.consistency.pass);
    let metrics = MetricSet { support: false, citation: false, consistency: true, judge: false, checks: false };
    let mut grader = Grader::new(&nli, Some(&embedder), cfg, metrics)?;
    println!("models: {:?}; first {rows} rows of each file in {}", grader.model_ids(), dir.display());
    println!("score = the reference check now; old = min(P(ref => out), P(out => ref)); out=>ref = P(out => ref) alone; f1 = SQuAD token F1");

    let started = std::time::Instant::now();
    let msrp = read_rows(&dir.join("msrp-test.jsonl"), rows)?;
    let pairs: Vec<(String, String)> =
        msrp.iter().map(|r| Ok((field(r, "a")?.to_string(), field(r, "b")?.to_string()))).collect::<anyhow::Result<_>>()?;
    let gold: Vec<bool> = msrp.iter().map(|r| field(r, "label").map(|l| l == "paraphrase")).collect::<anyhow::Result<_>>()?;
    let graded = grade(&mut grader, "msrp", &pairs)?;
    let col = |f: fn(&Graded) -> f64| graded.iter().map(f).collect::<Vec<f64>>();
    let auc = |xs: Vec<f64>| roc_auc(&xs, &gold).map_or("-".to_string(), |v| format!("{v:.3}"));
    let bacc = |xs: Vec<f64>| {
        let p: Vec<bool> = xs.iter().map(|x| *x >= pass).collect();
        balanced_accuracy(&p, &gold).map_or("-".to_string(), |v| format!("{v:.3}"))
    };
    println!("\nMSRP test, {} pairs ({} paraphrases; {}):", graded.len(), gold.iter().filter(|g| **g).count(), methods(&graded));
    println!(
        "  ROC-AUC vs paraphrase:      score {}  old {}  out=>ref {}  f1 {}  cosine {}",
        auc(col(Graded::new_score)),
        auc(col(Graded::old_score)),
        auc(col(Graded::out_entails_ref)),
        auc(col(Graded::f1)),
        auc(col(Graded::cosine))
    );
    println!("  balanced accuracy at {pass}: score {}  old {}", bacc(col(Graded::new_score)), bacc(col(Graded::old_score)));
    // The check's own verdict (`passed`: the score's mark, or every fact of the reference stated).
    let passed: Vec<bool> = graded.iter().map(|g| g.check.passed).collect();
    println!(
        "  the check's verdict (passed): balanced accuracy {}, pass rate {:.3}",
        balanced_accuracy(&passed, &gold).map_or("-".to_string(), |v| format!("{v:.3}")),
        passed.iter().filter(|p| **p).count() as f64 / passed.len().max(1) as f64
    );
    println!(
        "  pass rate: score {:.3}  old {:.3}",
        col(Graded::new_score).iter().filter(|x| **x >= pass).count() as f64 / graded.len() as f64,
        col(Graded::old_score).iter().filter(|x| **x >= pass).count() as f64 / graded.len() as f64
    );

    let sts = read_rows(&dir.join("stsb-test.jsonl"), rows)?;
    let pairs: Vec<(String, String)> =
        sts.iter().map(|r| Ok((field(r, "a")?.to_string(), field(r, "b")?.to_string()))).collect::<anyhow::Result<_>>()?;
    let human: Vec<f64> = sts
        .iter()
        .map(|r| r.get("score").and_then(Value::as_f64).with_context(|| format!("a row has no numeric `score`: {r}")))
        .collect::<anyhow::Result<_>>()?;
    let graded = grade(&mut grader, "stsb", &pairs)?;
    let col = |f: fn(&Graded) -> f64| graded.iter().map(f).collect::<Vec<f64>>();
    let rho = |xs: Vec<f64>| spearman(&xs, &human).map_or("-".to_string(), |v| format!("{v:.3}"));
    println!("\nSTS-B test, {} pairs ({}):", graded.len(), methods(&graded));
    println!(
        "  Spearman vs human 0-5:      score {}  old {}  out=>ref {}  f1 {}  cosine {}",
        rho(col(Graded::new_score)),
        rho(col(Graded::old_score)),
        rho(col(Graded::out_entails_ref)),
        rho(col(Graded::f1)),
        rho(col(Graded::cosine))
    );
    // Within each form, so that the mix of forms does not hide what each does.
    for method in [ReferenceMethod::ShortAnswer, ReferenceMethod::Facts] {
        let ix: Vec<usize> = (0..graded.len()).filter(|&i| graded[i].check.method == Some(method)).collect();
        let h: Vec<f64> = ix.iter().map(|&i| human[i]).collect();
        let sub = |f: fn(&Graded) -> f64| -> String {
            let xs: Vec<f64> = ix.iter().map(|&i| f(&graded[i])).collect();
            spearman(&xs, &h).map_or("-".to_string(), |v| format!("{v:.3}"))
        };
        println!(
            "  {:?} only ({} pairs):    score {}  old {}  out=>ref {}  f1 {}  cosine {}",
            method,
            ix.len(),
            sub(Graded::new_score),
            sub(Graded::old_score),
            sub(Graded::out_entails_ref),
            sub(Graded::f1),
            sub(Graded::cosine)
        );
    }
    println!("\n{:.1} s on {} NLI pairs", started.elapsed().as_secs_f64(), grader.nli_stats().computed);
    Ok(())
}

//! Grades a labelled grounding set of a training recipe through the whole grader (chunks, claims,
//! the whole output: what `candor grade` does), not as bare model pairs, and prints how far the
//! support verdicts agree with the labels. Long documents (HaluEval summarization's news articles)
//! are measured this way: the grader reads every chunk, a model pair is cut at its window.
//!
//! ```sh
//! cargo run --release --example grade_set -- RECIPE.toml dev|test SET_NAME_PREFIX OUT_DIR [NLI_MODEL|MODEL_DIR] [LIMIT]
//! ```
//!
//! NLI_MODEL is a registry name (default: the default NLI model); a folder (a model `candor train`
//! wrote, with config.json, tokenizer.json and model.safetensors) is graded as a registry entry of
//! its own, its files hashed and verified like any other.
//!
//! The set is read as the recipe reads it (split, part, limit); each row becomes a case whose
//! contexts hold the premise and whose output is the claim. A case is judged supported when every
//! claim is and the whole output is (as tests/grade_quality.rs judges); its score is the weakest.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use candor::run::{Quiet, RunSpec};
use candor::train::{data, TrainConfig};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [recipe, which, prefix, out, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: grade_set RECIPE.toml dev|test SET_NAME_PREFIX OUT_DIR [NLI_MODEL] [LIMIT]");
    };
    let recipe = Path::new(recipe);
    let cfg = TrainConfig::from_file(recipe)?;
    let data_dir = recipe.parent().unwrap_or(Path::new(".")).join(&cfg.data_dir);
    let sets = match which.as_str() {
        "dev" => &cfg.dev,
        "test" => &cfg.test,
        other => anyhow::bail!("`{other}`: expected dev or test"),
    };
    let set = sets.iter().find(|s| s.display_name().starts_with(prefix.as_str())).ok_or_else(|| anyhow::anyhow!("no {which} set named {prefix}*"))?;
    let mut examples = data::load(set, &data_dir, &cfg.labels)?;
    if let Some(limit) = rest.get(1) {
        examples.truncate(limit.parse()?);
    }
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    let suite = out.join("suite.jsonl");
    let lines: Vec<String> = examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            serde_json::json!({"id": i.to_string(), "output": e.hypothesis, "contexts": [e.premise], "label": {"supported": e.is_entailment(&cfg.labels)}})
                .to_string()
        })
        .collect();
    std::fs::write(&suite, lines.join("\n") + "\n")?;
    let model = rest.first().cloned();
    let (registry, nli) = match model.as_deref().map(Path::new).filter(|p| p.is_dir()) {
        Some(dir) => (local_registry(dir)?, Some("local-model".to_string())),
        None => (candor::models::Registry::load(None)?, model.clone()),
    };
    let store = candor::models::ModelStore::from_env(registry);
    let mut spec = RunSpec::new(&suite, out.join("results.jsonl"));
    spec.metrics = "support".parse().map_err(anyhow::Error::msg)?;
    spec.config.models.nli = nli;
    candor::run::grade(&store, &spec, &Quiet, &AtomicBool::new(false))?;
    let (mut predicted, mut scores, mut gold) = (vec![], vec![], vec![]);
    // The verdicts under the rule measured on 2026-11-30 and not adopted (docs/quality.md): a claim
    // whose highest P(contradiction) exceeds its support is not supported (A), or only where that
    // contradiction also reaches 0.5 (B); claims that repeat a source sentence word for word exempt.
    let (mut rule_a, mut rule_b) = (vec![], vec![]);
    for line in std::fs::read_to_string(out.join("results.jsonl"))?.lines().filter(|l| !l.trim().is_empty()) {
        let r: candor::graders::CaseResult = serde_json::from_str(line)?;
        let Some(candor::graders::Outcome::Ran(s)) = &r.metrics.support else { continue };
        if let Some((supported, weakest)) = s.verdict() {
            let outweighed = |floor: f32| s.claims.iter().any(|c| !c.verbatim && c.contradiction > c.score && c.contradiction >= floor);
            rule_a.push(supported && !outweighed(0.0));
            rule_b.push(supported && !outweighed(0.5));
            predicted.push(supported);
            scores.push(weakest);
            gold.push(r.label.as_ref().and_then(|l| l["supported"].as_bool()).unwrap_or(false));
        }
    }
    println!(
        "{} ({} cases, {} graded, model {}): support balanced accuracy {:.4}, ROC-AUC {:.4}",
        set.display_name(),
        examples.len(),
        gold.len(),
        rest.first().map(String::as_str).unwrap_or("default"),
        candor::stats::balanced_accuracy(&predicted, &gold).unwrap_or(f64::NAN),
        candor::stats::roc_auc(&scores, &gold).unwrap_or(f64::NAN)
    );
    println!(
        "  not supported where contradiction outweighs support: balanced accuracy {:.4} (A: any), {:.4} (B: from 0.5)",
        candor::stats::balanced_accuracy(&rule_a, &gold).unwrap_or(f64::NAN),
        candor::stats::balanced_accuracy(&rule_b, &gold).unwrap_or(f64::NAN)
    );
    Ok(())
}

/// A registry whose NLI model `local-model` is the folder `dir`, with its labels from config.json
/// and its files' sha256 (the embedder stays the built-in registry's default).
fn local_registry(dir: &Path) -> anyhow::Result<candor::models::Registry> {
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let id2label = config["id2label"].as_object().ok_or_else(|| anyhow::anyhow!("{}: config.json has no id2label", dir.display()))?;
    let mut labels: Vec<(usize, String)> = id2label.iter().map(|(k, v)| Ok((k.parse()?, v.as_str().unwrap_or_default().to_string()))).collect::<anyhow::Result<_>>()?;
    labels.sort();
    let files: Vec<String> = ["config.json", "tokenizer.json", "model.safetensors"]
        .iter()
        .map(|f| Ok(format!("{{ path = \"{f}\", sha256 = \"{}\" }}", candor::models::verify::sha256_file(&dir.join(f))?)))
        .collect::<anyhow::Result<_>>()?;
    let builtin = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("models.toml"))?;
    let text = format!(
        "{builtin}\n[[model]]\nname = \"local-model\"\nrole = \"nli\"\narchitecture = \"bert\"\nlicense = \"local\"\nmax_tokens = 256\nlabels = [{}]\nfiles = [{}]\n[[model.source]]\npath = {:?}\n",
        labels.iter().map(|(_, l)| format!("{l:?}")).collect::<Vec<_>>().join(", "),
        files.join(", "),
        dir.display().to_string()
    );
    Ok(candor::models::Registry::parse(&text, "grade_set", Path::new(env!("CARGO_MANIFEST_DIR")))?)
}

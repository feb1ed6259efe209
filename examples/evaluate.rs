//! Scores an exported classifier on a training recipe's dev or test sets, without training:
//!
//! ```sh
//! cargo run --release --example evaluate -- MODEL_DIR RECIPE.toml [dev|test|threshold]
//! ```
//!
//! `threshold` scores the dev sets and prints the claim threshold a registry entry carries
//! (`claim_threshold` in models.toml): the P(entailment) with the highest mean balanced accuracy over
//! them (`candor::train::choose_threshold`), with each set's balanced accuracy at 0.5 and at it.
//!
//! The sets are read from the recipe's `data_dir` (relative to the recipe), with the recipe's labels
//! and input window, on the CPU, and reported as `candor train` reports them.

use std::path::Path;

use candle_core::{DType, Device};
use candor::kernels::int8::Precision;
use candor::engine::batch::TextTokenizer;
use candor::models::{arch::load_classifier, Architecture};
use candor::train::{data, evaluate, TrainConfig};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_dir, recipe, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: evaluate MODEL_DIR RECIPE.toml [dev|test|threshold]");
    };
    let which = rest.first().map(String::as_str).unwrap_or("dev");
    if which == "threshold" {
        return threshold(Path::new(model_dir), Path::new(recipe));
    }
    let (model_dir, recipe) = (Path::new(model_dir), Path::new(recipe));
    let cfg = TrainConfig::from_file(recipe)?;
    let data_dir = recipe.parent().unwrap_or(Path::new(".")).join(&cfg.data_dir);
    let device = Device::Cpu;
    let tokenizer = TextTokenizer::from_file(&model_dir.join("tokenizer.json"), cfg.max_tokens)?;
    let model = load_classifier(Architecture::Bert, model_dir, DType::F32, &device, Precision::F32)?;
    let sets = match which {
        "dev" => &cfg.dev,
        "test" => &cfg.test,
        other => anyhow::bail!("`{other}`: expected dev or test"),
    };
    for set in sets {
        let examples = data::load(set, &data_dir, &cfg.labels)?;
        let r = evaluate(&set.display_name(), model.as_ref(), &tokenizer, &examples, &cfg.labels, &device, None)?;
        let entailment_rows = examples.iter().filter(|e| e.is_entailment(&cfg.labels)).count();
        println!(
            "{:50} n={:<5} balanced acc {:.4}  3-way acc {}  ({entailment_rows} entailment rows)",
            r.name,
            r.n,
            r.balanced_accuracy,
            r.accuracy.map_or("-".into(), |a| format!("{a:.4}"))
        );
    }
    Ok(())
}

/// Chooses the claim threshold on the recipe's dev sets.
fn threshold(model_dir: &Path, recipe: &Path) -> anyhow::Result<()> {
    let cfg = TrainConfig::from_file(recipe)?;
    let data_dir = recipe.parent().unwrap_or(Path::new(".")).join(&cfg.data_dir);
    let device = Device::Cpu;
    let tokenizer = TextTokenizer::from_file(&model_dir.join("tokenizer.json"), cfg.max_tokens)?;
    let model = load_classifier(Architecture::Bert, model_dir, DType::F32, &device, Precision::F32)?;
    let mut scored = vec![];
    for set in &cfg.dev {
        let examples = data::load(set, &data_dir, &cfg.labels)?;
        let probs = candor::train::probabilities(model.as_ref(), &tokenizer, &examples, &device)?;
        scored.push((set.display_name(), examples, probs));
    }
    let sets: Vec<(&[data::Example], &[Vec<f32>])> = scored.iter().map(|(_, e, p)| (e.as_slice(), p.as_slice())).collect();
    let (t, mean) = candor::train::choose_threshold(&sets, &cfg.labels);
    for (name, e, p) in &scored {
        println!(
            "{name:50} n={:<5} balanced acc at 0.5 {:.4}  at {t} {:.4}",
            e.len(),
            candor::train::balanced_accuracy_at(e, p, &cfg.labels, 0.5),
            candor::train::balanced_accuracy_at(e, p, &cfg.labels, t)
        );
    }
    let at_half = sets.iter().map(|(e, p)| candor::train::balanced_accuracy_at(e, p, &cfg.labels, 0.5)).sum::<f64>() / sets.len().max(1) as f64;
    println!("claim_threshold = {t}  (mean balanced accuracy over {} dev sets {mean:.4}; at 0.5 {at_half:.4})", sets.len());
    Ok(())
}

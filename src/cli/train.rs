//! `candor train`

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use candor::engine::DeviceSpec;
use candor::models::ModelStore;
use candor::train::{self, EvalReport, LogLine, Observer, RunOptions, TrainState};

/// Fine-tune a cross-encoder classifier on labelled pairs.
///
/// The config (TOML) names the base encoder from the registry, the labels, the training, dev and
/// test sets (JSON Lines: premise/hypothesis/label or evidence/claim/label, with a label mapping per
/// set) and the hyper-parameters. See models/candor-nli-minilm/train.toml for a complete example.
///
/// Checkpoints go to OUT/checkpoint every `checkpoint_every` steps and on Ctrl-C; running the same
/// command again resumes exactly where it stopped (same batches, same dropout, same loss curve).
/// When every epoch is done the model is written to OUT/model and evaluated on the test sets.
///
/// A recipe may continue from another one (`from_recipe = "stage1.toml"` instead of `base`): the
/// command then trains that recipe first, in OUT/from-recipe, and reuses it once it is finished, so
/// one command reproduces a model made in stages.
///
/// A recipe may instead average others (`average = ["a.toml", "b.toml"]`, with no base or training
/// sets): each is trained in OUT/average/N-NAME (a recipe several of them continue from, once), and
/// the mean of their weights is written to OUT/model and tested. models/candor-nli-minilm/
/// train-average.toml, which makes the default model, is one.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training config (TOML).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,
    /// Output folder: model/, checkpoint/, train_log.jsonl, dev_log.jsonl, training.json.
    #[arg(long, short = 'o', value_name = "DIR")]
    out: PathBuf,
    /// Folder that the data set paths are relative to, for every stage (default: each recipe's
    /// `data_dir`, relative to its file).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Device: auto, cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
    /// Stop the stage being trained after this many of its steps (writing a checkpoint), e.g. to
    /// train in slices.
    #[arg(long, value_name = "N")]
    max_steps: Option<u64>,
    /// Start over, ignoring an existing checkpoint.
    #[arg(long)]
    fresh: bool,
    /// Also train on pairs made from unlabelled documents: a folder of .txt/.md files, or a JSON
    /// Lines file with a `text` (or `document`, `article`, `evidence`) field per row. From each
    /// document's sentences come entailed claims (copied, or two sentences merged) and claims that
    /// are not (numbers, dates or names swapped, negated, pronouns swapped, a sentence of another
    /// document, or the sentence removed from its evidence). Adapts the grader to a team's own
    /// documents with no labels; measure it on labelled cases. Repeatable; in a recipe, a `[[train]]`
    /// set with `format = "documents"` does the same.
    #[arg(long, value_name = "DIR|FILE")]
    synthesize: Vec<PathBuf>,
}

struct Progress {
    bar: Option<ProgressBar>,
    started: std::time::Instant,
    examples_at_start: Option<u64>,
}

impl Observer for Progress {
    fn step(&mut self, state: &TrainState, line: &LogLine, total: u64) {
        let bar = self.bar.get_or_insert_with(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] step {pos}/{len} {msg} (eta {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_position(state.step.saturating_sub(1));
            b
        });
        if bar.length() != Some(total) {
            // A new stage of a staged recipe: its own length and rate.
            bar.set_length(total);
            bar.reset_eta();
            self.started = std::time::Instant::now();
            self.examples_at_start = None;
        }
        let first = *self.examples_at_start.get_or_insert(state.examples);
        let rate = state.examples.saturating_sub(first) as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        bar.set_position(state.step);
        bar.set_message(format!("epoch {} loss {:.4} lr {:.2e} | {:.1} ex/s", line.epoch + 1, line.loss, line.lr, rate));
    }

    fn eval(&mut self, step: u64, reports: &[EvalReport]) {
        for r in reports {
            self.note(&format!("dev    step {step}: {}", train::format_report(r)));
        }
    }

    fn note(&mut self, msg: &str) {
        match &self.bar {
            Some(b) if !b.is_hidden() => b.println(msg),
            _ => eprintln!("{msg}"),
        }
    }
}

pub fn run(store: &ModelStore, args: TrainArgs) -> anyhow::Result<ExitCode> {
    let device = args.device.open()?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\nstopping after this step and writing a checkpoint (Ctrl-C again to quit at once)");
        })?;
    }
    // --synthesize paths are the user's, relative to where the command runs (a recipe's data sets
    // are relative to its data folder).
    let cwd = std::env::current_dir()?;
    let synthesize: Vec<PathBuf> = args.synthesize.iter().map(|p| cwd.join(p)).collect();
    // An empty folder means "each recipe's own"; `train::run_recipe` checks the folder it uses.
    let opts = RunOptions { out: args.out.clone(), data_dir: args.data.clone().unwrap_or_default(), device, max_steps: args.max_steps, fresh: args.fresh, stop: &stop, synthesize };
    let mut progress = Progress { bar: None, started: std::time::Instant::now(), examples_at_start: None };
    let outcome = train::run_recipe(&args.config, store, &opts, &mut progress)?;
    if let Some(b) = &progress.bar {
        b.finish();
    }
    if outcome.finished {
        let dir = outcome.model_dir.unwrap_or_default();
        eprintln!("model written to {} after {} steps ({:.0} s of training)", dir.display(), outcome.state.step, outcome.state.seconds);
        for f in ["config.json", "tokenizer.json", "model.safetensors"] {
            let p = dir.join(f);
            let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            println!("{{ path = \"{f}\", sha256 = \"{}\", size = {size} }},", candor::models::verify::sha256_file(&p)?);
        }
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "stopped at step {} (epoch {}); run the same command again to resume from {}",
            outcome.state.step,
            outcome.state.epoch + 1,
            outcome.out.join("checkpoint").display()
        );
        Ok(ExitCode::SUCCESS)
    }
}

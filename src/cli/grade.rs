//! `candor grade`

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use candor::config::GradeConfig;
use candor::engine::judge::JudgeModel;
use candor::engine::{CrossEncoder, DeviceSpec, Embedder};
use candor::graders::{Grader, MetricSet};
use candor::models::{ModelStore, Role};
use candor::report::{summary_path, SummaryBuilder};
use candor::suite::{self, Case, Shard, SuiteProblem, SuiteReader};

/// Grade a suite: factual support, citation entailment, semantic consistency and rubric metrics
/// (a local judge model) of every case.
///
/// The suite is JSON Lines, one case per line: {"id", "output", "contexts", "input", "reference",
/// "samples", "segments", "label", "metadata"} (peer field names such as `response`,
/// `retrieved_contexts` and `ground_truth` are accepted). Results go to RESULTS, one line per case in
/// suite order, with a summary table at the end and a summary JSON beside the results
/// (RESULTS with `.summary.json`).
///
/// Bad lines are listed with their line number and reason, and the run goes on with the rest
/// (--strict stops before grading anything). Results are written as each block of cases is done:
/// after a crash, Ctrl-C or SIGTERM, --resume carries on where the file ends.
///
/// Examples:
///   candor grade examples/suite.jsonl -o results.jsonl
///   candor grade suite.jsonl -o r.jsonl --metrics support,citation --config candor.toml
///   candor grade big.jsonl -o r.jsonl --resume        # after an interruption
///   candor grade big.jsonl -o part-0.jsonl --shard 0/4 # one machine of four; then `candor merge`
///   candor grade examples/suite.jsonl -o r.jsonl --config examples/judge.toml   # + rubric metrics
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct GradeArgs {
    /// The suite (JSON Lines).
    suite: PathBuf,
    /// Where to write the results (JSON Lines).
    #[arg(long, short = 'o', value_name = "RESULTS")]
    out: PathBuf,
    /// Metrics to run, comma-separated: support, citation, consistency, judge (the config's
    /// [[rubric]] metrics, rated by the judge model; they run only when the config has some).
    #[arg(long, default_value = "support,citation,consistency,judge")]
    metrics: MetricSet,
    /// Grading config (thresholds, aggregation, models, chunking); defaults apply without one.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Device: auto, cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
    /// Stop before grading if any line of the suite is invalid.
    #[arg(long)]
    strict: bool,
    /// Keep the results already in RESULTS and grade only the cases not there yet.
    #[arg(long)]
    resume: bool,
    /// Grade only shard K of N (K from 0): the cases whose id hashes to K (fnv1a64(id) mod N), so
    /// that N machines split a suite without coordination; `candor merge` joins their results.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// The persistent score cache: NLI pair scores keyed by model, window and exact texts, so that
    /// re-grading after a change computes only the new pairs [default: CANDOR_CACHE/scores.redb].
    #[arg(long, value_name = "FILE", conflicts_with = "no_cache")]
    cache: Option<PathBuf>,
    /// Neither read nor write the score cache.
    #[arg(long)]
    no_cache: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
}

pub fn run(store: &ModelStore, args: GradeArgs) -> anyhow::Result<ExitCode> {
    // Nothing this run writes may be a file it reads: checked before anything is opened.
    let summary_file = summary_path(&args.out);
    let cache_path = (!args.no_cache).then(|| args.cache.clone().unwrap_or_else(|| store.cache_dir().join("scores.redb")));
    let mut inputs = vec![("suite", args.suite.as_path())];
    inputs.extend(args.config.as_deref().map(|c| ("config", c)));
    let mut outputs = vec![("results", args.out.as_path()), ("summary", summary_file.as_path())];
    outputs.extend(cache_path.as_deref().map(|c| ("score cache", c)));
    candor::io::check_outputs(&inputs, &outputs)?;

    let cfg = match &args.config {
        Some(p) => GradeConfig::from_file(p)?,
        None => GradeConfig::default(),
    };
    let file = suite::open(&args.suite).context("cannot open the suite")?;
    let total_lines = suite::count_lines(&args.suite)?;

    // Validate first with --strict: nothing is graded if any line is bad.
    if args.strict {
        let mut reader = SuiteReader::new(BufReader::new(suite::open(&args.suite)?));
        let problems: Vec<SuiteProblem> = reader.by_ref().filter_map(|r| r.err()).collect();
        reader.finish(&args.suite)?;
        if !problems.is_empty() {
            for p in &problems {
                eprintln!("{}: {p}", args.suite.display());
            }
            anyhow::bail!("{} invalid line(s) in {}; nothing graded (--strict)", problems.len(), args.suite.display());
        }
    }

    let device = args.device.open()?;
    let nli_name = match &cfg.models.nli {
        Some(n) => n.clone(),
        None => store.registry().default_for(Role::Nli).map(|e| e.name.clone()).context("the registry names no default nli model")?,
    };
    let nli_model = store.resolve(&nli_name)?;
    let mut nli = CrossEncoder::load(&nli_model, &device)?;
    if cfg.engine.batch_tokens > 0 {
        nli.batch.token_budget = cfg.engine.batch_tokens;
    }
    let embedder = if args.metrics.consistency {
        let name = match &cfg.models.embed {
            Some(n) => n.clone(),
            None => store.registry().default_for(Role::Embed).map(|e| e.name.clone()).context("the registry names no default embed model")?,
        };
        Some(Embedder::load(&store.resolve(&name)?, &device)?)
    } else {
        None
    };
    let decomposes = args.metrics.support && cfg.support.claims == candor::config::ClaimSplit::Judge;
    let mut judge = if (args.metrics.judge && !cfg.rubric.is_empty()) || decomposes {
        let name = match &cfg.models.judge {
            Some(n) => n.clone(),
            None => store.registry().default_for(Role::Judge).map(|e| e.name.clone()).context("the registry names no default judge model")?,
        };
        Some(JudgeModel::load(&store.resolve(&name)?, &device)?)
    } else {
        if args.metrics == (MetricSet { support: false, citation: false, consistency: false, judge: true }) {
            anyhow::bail!("--metrics judge: the config names no [[rubric]] to grade (see examples/judge.toml)");
        }
        None
    };
    let mut grader = Grader::new(&nli, embedder.as_ref(), cfg.clone(), args.metrics)?;
    if let Some(j) = judge.as_mut() {
        grader.set_judge(j);
    }
    if let Some(path) = &cache_path {
        match candor::engine::cache::ScoreCache::open(path) {
            Ok(cache) => {
                if let Some(r) = cache.recovered() {
                    eprintln!(
                        "warning: the score cache {} was damaged ({}); moved it aside to {} and started a fresh one",
                        path.display(),
                        r.reason,
                        r.aside.display()
                    );
                }
                grader.set_cache(cache)
            }
            // Another run holds it (redb locks the file), or it cannot be written: grade without.
            Err(e) => eprintln!("warning: {e}; grading without the score cache"),
        }
    }

    // Results already written (with --resume) are kept; a torn last line is dropped.
    // The summary is counted as results come (nothing per case is kept but labelled scores).
    let mut summary = SummaryBuilder::new();
    let mut done: HashSet<String> = HashSet::new();
    // A summary left by an earlier run would sit beside results it does not describe until this run
    // ends (or for good, if it is killed): removed before a results line is written. The results
    // are the record; the summary is rewritten from them at the end.
    candor::io::remove_if_present(&summary_file)?;
    if args.resume && args.out.exists() {
        // Finished lines are never rewritten: only a torn tail after the last newline is cut.
        let (results, len) = candor::report::finished_results(&args.out)?;
        let torn = candor::report::cut_torn_tail(&args.out, len)?;
        if torn > 0 {
            eprintln!("dropped the torn last {torn} byte(s) of {}", args.out.display());
        }
        eprintln!("resuming: {} case(s) already graded in {}", results.len(), args.out.display());
        for r in &results {
            summary.add(r);
            done.insert(r.id.clone());
        }
    }
    let out_file = if args.resume {
        OpenOptions::new().append(true).create(true).open(&args.out)
    } else {
        File::create(&args.out)
    }
    .with_context(|| format!("cannot write {}", args.out.display()))?;
    let mut out = BufWriter::new(out_file);

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\nstopping after this block (Ctrl-C or SIGTERM); the results so far are kept (again to quit at once)");
        });
    }

    let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(total_lines as u64) };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} cases {msg} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_position(done.len() as u64);
    let started = std::time::Instant::now();
    let mut problems: Vec<SuiteProblem> = Vec::new();
    let mut block: Vec<Case> = Vec::with_capacity(cfg.engine.block_cases);
    let mut graded_now = 0usize;
    let mut reader = SuiteReader::new(BufReader::new(file));
    let mut interrupted = false;
    loop {
        let item = reader.next();
        let end = item.is_none();
        match item {
            Some(Ok(case)) if done.contains(&case.id) => {}
            Some(Ok(case)) if args.shard.is_some_and(|s| !s.contains(&case.id)) => bar.inc(1),
            Some(Ok(case)) => block.push(case),
            Some(Err(p)) => {
                note(&bar, &format!("{}: {p} (skipped)", args.suite.display()));
                problems.push(p);
                bar.inc(1);
            }
            None => {
                // A read error ended the suite early: what is graded so far is kept, nothing more
                // is graded, and no summary claims the suite was done.
                if let Err(e) = reader.finish(&args.suite) {
                    out.flush()?;
                    return Err(anyhow::Error::from(e).context(format!(
                        "the results so far are kept in {}; once the suite can be read, finish with --resume",
                        args.out.display()
                    )));
                }
            }
        }
        if block.len() >= cfg.engine.block_cases || (end && !block.is_empty()) {
            let pairs_bar = bar.clone();
            let fresh = grader.grade_block(&block, &move |_| pairs_bar.tick())?;
            // A NaN would be written as null and make the file unreadable: the whole block is
            // checked before any of it is written.
            for r in &fresh {
                if let Err(e) = candor::io::check_finite_result(r) {
                    out.flush()?;
                    return Err(e.into());
                }
            }
            for r in &fresh {
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            graded_now += fresh.len();
            bar.inc(fresh.len() as u64);
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "| {:.1} cases/s, {:.1} claims/s",
                graded_now as f64 / secs,
                grader.progress.claims as f64 / secs
            ));
            for r in &fresh {
                summary.add(r);
            }
            block.clear();
            if stop.load(Ordering::SeqCst) {
                interrupted = true;
                break;
            }
        }
        if end {
            break;
        }
    }
    bar.finish_and_clear();
    out.flush()?;

    let summary = summary.finish(problems.len(), grader.model_ids().clone());
    super::write_atomic(&summary_file, serde_json::to_string_pretty(&summary)?.as_bytes())?;
    println!("{}", summary.table());
    let stats = grader.nli_stats();
    let embed = grader.embed_stats();
    let judged = grader.judge_stats().unwrap_or_default();
    let wall = started.elapsed().as_secs_f64();
    let model = (stats.model_time + embed.model_time + judged.model_time).as_secs_f64();
    let generated = grader.judge_generated();
    if generated > 0 {
        eprintln!("judge: {generated} sentence(s) decomposed into claims");
    }
    if judged.inputs > 0 {
        eprintln!("judge: {} prompt(s) rated in {} batch(es), {:.1} s", judged.inputs, judged.batches, judged.model_time.as_secs_f64());
    }
    eprintln!(
        "{} case(s) graded in {:.1} s ({} NLI pairs from the score cache, {} asked of the model, {} computed, {} truncated; \
         {} texts embedded); model time {:.1} s, {:.1}% of the run; results: {}; summary: {}",
        graded_now,
        wall,
        grader.cache_hits(),
        stats.inputs,
        stats.computed,
        stats.truncated,
        embed.computed,
        model,
        100.0 * model / wall.max(1e-9),
        args.out.display(),
        summary_file.display()
    );
    if !problems.is_empty() {
        eprintln!("{} invalid line(s) were skipped (listed above; --strict refuses such suites)", problems.len());
    }
    if interrupted {
        eprintln!("interrupted: run the same command with --resume to grade the rest");
        return Ok(ExitCode::from(130));
    }
    // Fail closed: a run that graded nothing because every line was invalid, or because the suite
    // is empty, did not grade the suite; exit 2 rather than a success a pipeline would read as a
    // pass. (A shard that no valid case hashes to is not an error: its siblings hold them.)
    if summary.overall.cases == 0 && (!problems.is_empty() || args.shard.is_none()) {
        eprintln!("error: no case of {} could be graded", args.suite.display());
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a line above the progress bar, or to stderr when there is no bar (-q, not a terminal).
fn note(bar: &ProgressBar, msg: &str) {
    if bar.is_hidden() {
        eprintln!("{msg}");
    } else {
        bar.println(msg);
    }
}

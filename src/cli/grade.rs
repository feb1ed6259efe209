//! `candor grade`

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use candor::config::GradeConfig;
use candor::engine::DeviceSpec;
use candor::graders::MetricSet;
use candor::models::ModelStore;
use candor::run::{Events, Progress, RunSpec, SuiteSource};
use candor::suite::Shard;

/// Grade a suite: support, citations, consistency and rubric metrics of every case.
///
/// Factual support and citation entailment (NLI), semantic consistency (embeddings and NLI), and
/// rubric metrics rated by a local judge model.
///
/// The suite is JSON Lines, one case per line (or one JSON array of cases, as peer tools export
/// them): {"id", "output", "contexts", "input", "reference",
/// "samples", "segments", "label", "metadata"} (peer field names such as `response`,
/// `retrieved_contexts` and `ground_truth` are accepted; a case without an `id` gets its line
/// number; a field candor does not know is named, with the one it may mean). Results go to RESULTS, one line per case in
/// suite order, with a summary table at the end and a summary JSON beside the results
/// (RESULTS with `.summary.json`).
///
/// The suite is read once, as it streams: `-` reads standard input. Bad lines are listed with their
/// line number and reason, and the run goes on with the rest (--strict reads the whole suite first
/// and grades nothing if any line is bad).
///
/// The summary carries the run's manifest: candor's version, each model's sha256 and labels, the
/// device, number type and kernels, the effective config and its hash, the suite's sha256, the
/// shard, and whether the run is complete. It is written, marked incomplete, before the first
/// result, and marked complete at the end; `report`, `gate`, `calibrate`, `compare` and `merge` read
/// it (a gate fails on an incomplete run). One run at a time writes a results file (a lock).
///
/// Results are written as each block of cases is done: after a crash, Ctrl-C or SIGTERM, --resume
/// carries on where the file ends, never rewriting a finished line. It refuses results made with
/// another config, model, runtime, metric set or shard, and re-grades a case whose suite line
/// changed since (results of changed and deleted cases are dropped at the end in one atomic rewrite;
/// re-graded cases then follow the others: `candor merge` restores suite order).
///
/// Examples:
///   candor grade examples/suite.jsonl -o results.jsonl
///   candor grade suite.jsonl -o r.jsonl --metrics support,citation --config candor.toml
///   candor grade big.jsonl -o r.jsonl --resume        # after an interruption
///   candor grade big.jsonl -o part-1.jsonl --shard 1/4 # one machine of four; then `candor merge`
///   gunzip -c suite.jsonl.gz | candor grade - -o r.jsonl
///   candor grade examples/suite.jsonl -o r.jsonl --config examples/judge.toml   # + rubric metrics
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct GradeArgs {
    /// The suite (JSON Lines, or one JSON array), or - for standard input.
    suite: PathBuf,
    /// Where to write the results (JSON Lines).
    #[arg(long, short = 'o', value_name = "RESULTS")]
    out: PathBuf,
    /// Metrics to run, comma-separated: support, citation, consistency, judge (the config's
    /// [[rubric]] metrics, rated by the judge model; they run only when the config has some),
    /// checks (the config's [[check]] and each case's `checks`; no model).
    #[arg(long, default_value = "support,citation,consistency,judge,checks")]
    metrics: MetricSet,
    /// Grading config (thresholds, aggregation, models, chunking); defaults apply without one.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// The NLI model that grades support and citations, by its registry name (`candor models list`
    /// shows them): for instance `hhem-2.1-open` or `minicheck-deberta-v3-large`. Overrides the
    /// config's `[models] nli`; its own `claim_threshold` applies unless the config sets one.
    #[arg(long, value_name = "NAME")]
    nli: Option<String>,
    /// Device: auto, cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
    /// CPU precision of the BERT encoders' linear layers: f32, or int8 (8-bit weights and inputs,
    /// exact 32-bit sums; faster on two cores, not bit-equal: see docs/quality.md). Overrides the
    /// config's `[engine] precision`.
    #[arg(long, value_name = "PRECISION")]
    precision: Option<candor::kernels::int8::Precision>,
    /// Stop before grading if any line of the suite is invalid.
    #[arg(long)]
    strict: bool,
    /// Keep the results already in RESULTS and grade only the cases not there yet.
    #[arg(long)]
    resume: bool,
    /// Grade only shard K of N, K from 1 to N (as Playwright, Jest and nextest count): the cases
    /// whose id hashes to K-1 (fnv1a64(id) mod N), so that N machines split a suite without
    /// coordination; `candor merge` joins their results.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// The persistent score cache: NLI pair scores keyed by model, window, runtime and exact texts, so that
    /// re-grading after a change computes only the new pairs [default: CANDOR_CACHE/scores.redb].
    #[arg(long, value_name = "FILE", conflicts_with = "no_cache")]
    cache: Option<PathBuf>,
    /// Neither read nor write the score cache.
    #[arg(long)]
    no_cache: bool,
    /// How the suite is written [default: by its extension: .csv, .tsv, .yaml/.yml, else JSON
    /// Lines or one JSON array]. CSV needs a header row; list columns (contexts, samples) hold a
    /// JSON list, a Python list as pandas writes it, or one text; `segments.KEY` columns give
    /// segments. YAML is promptfoo's tests, graded where they carry `providerOutput` (or an `output`
    /// var), their assertions run as checks.
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<InputFormat>,
    /// Read the suite's field FROM as candor's field TO (repeatable). Phoenix's eval frames name the
    /// retrieved context `reference`: `--field reference=contexts`. A column of your own:
    /// `--field passages=contexts`. A yes/no label column (1/0, true/false, yes/no) reads as one
    /// key of the case's human label, for `candor calibrate`: `--field Answer_Faithfulness_Label=label.supported`
    /// (keys: supported, attributable, consistent).
    #[arg(long = "field", value_name = "FROM=TO", value_parser = parse_rename)]
    fields: Vec<(String, String)>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// The suite formats `--format` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// JSON Lines, or one JSON array.
    Json,
    /// The same as json.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
    /// Tab-separated values with a header row.
    Tsv,
    /// promptfoo's YAML tests (a list, or a config's `tests:`), with `providerOutput` or an `output` var.
    Yaml,
}

/// `FROM=TO`, both non-empty.
fn parse_rename(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => Ok((from.trim().to_string(), to.trim().to_string())),
        _ => Err(format!("`{s}` is not FROM=TO (for instance reference=contexts)")),
    }
}

pub fn run(store: &ModelStore, args: GradeArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = match &args.config {
        Some(p) => GradeConfig::from_file(p)?,
        None => GradeConfig::default(),
    };
    if let Some(nli) = &args.nli {
        cfg.models.nli = Some(nli.clone());
    }
    if let Some(p) = args.precision {
        cfg.engine.precision = p;
    }
    let cache = (!args.no_cache).then(|| args.cache.clone().unwrap_or_else(|| store.cache_dir().join("scores.redb")));
    let spec = RunSpec {
        suite: SuiteSource::from_arg(&args.suite),
        format: args.format.map(|f| match f {
            InputFormat::Json | InputFormat::Jsonl => candor::suite::SuiteFormat::Json,
            InputFormat::Csv => candor::suite::SuiteFormat::Csv,
            InputFormat::Tsv => candor::suite::SuiteFormat::Tsv,
            InputFormat::Yaml => candor::suite::SuiteFormat::Yaml,
        }),
        fields: args.fields.clone(),
        results: args.out.clone(),
        config_file: args.config.clone(),
        config: cfg,
        metrics: args.metrics,
        device: args.device.clone(),
        shard: args.shard,
        resume: args.resume,
        strict: args.strict,
        cache,
    };

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
    let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::no_length() };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {percent}% of the suite read {msg} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let events = Bar(bar.clone());
    let outcome = candor::run::grade(store, &spec, &events, &stop)?;
    bar.finish_and_clear();

    let summary = &outcome.summary;
    println!("{}", summary.table());
    let model = (outcome.nli.model_time + outcome.embed.model_time + outcome.judge.model_time).as_secs_f64();
    let wall = outcome.wall.as_secs_f64();
    if outcome.judge_generated > 0 {
        eprintln!("judge: {} sentence(s) decomposed into claims", outcome.judge_generated);
    }
    if outcome.judge.inputs > 0 {
        eprintln!(
            "judge: {} prompt(s) rated in {} batch(es), {:.1} s",
            outcome.judge.inputs,
            outcome.judge.batches,
            outcome.judge.model_time.as_secs_f64()
        );
    }
    if outcome.regraded > 0 || outcome.dropped > 0 {
        eprintln!(
            "resume: {} case(s) re-graded because their suite line changed; {} stale result line(s) dropped",
            outcome.regraded, outcome.dropped
        );
    }
    eprintln!(
        "{} case(s) graded in {:.1} s ({} NLI pairs from the score cache, {} asked of the model, {} computed, {} truncated; \
         {} texts embedded); model time {:.1} s, {:.1}% of the run; results: {}; summary: {}",
        outcome.graded_now,
        wall,
        outcome.cache_hits,
        outcome.nli.inputs,
        outcome.nli.computed,
        outcome.nli.truncated,
        outcome.embed.computed,
        model,
        100.0 * model / wall.max(1e-9),
        args.out.display(),
        outcome.summary_file.display()
    );
    if !outcome.problems.is_empty() {
        eprintln!("{} invalid line(s) were skipped (listed above; --strict refuses such suites)", outcome.problems.len());
        // Problems repeated past what was listed, counted by the run.
        for r in &outcome.repeated_problems {
            let field = r.field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default();
            eprintln!("  {} line(s), the first line {}: {field}{}", r.lines, r.first_line, r.reason);
        }
    }
    if outcome.interrupted {
        eprintln!("interrupted: run the same command with --resume to grade the rest (the summary says the run is incomplete)");
        return Ok(ExitCode::from(130));
    }
    // Fail closed: a run that graded nothing because every line was invalid, or because the suite
    // is empty, did not grade the suite; exit 2 rather than a success a pipeline would read as a
    // pass.
    if outcome.ids_from_lines > 0 {
        eprintln!(
            "note: {} case(s) had no `id`: each was given its line number as id (its row in a CSV or TSV file, its position in a JSON array; give cases ids of their own to keep results paired when lines move)",
            outcome.ids_from_lines
        );
    }
    if let Some(line) = candor::suite::describe_shadowed(&outcome.shadowed_fields) {
        eprintln!("note: {line}");
    }
    if let Some(line) = candor::suite::describe_respelt(&outcome.respelt_fields) {
        eprintln!("note: {line}");
    }
    if let Some(line) = candor::suite::describe_unknown_fields(&outcome.unknown_fields) {
        // Said when first seen during the run, and here again with the whole suite's counts.
        eprintln!("warning (whole suite): {line}");
    }
    if outcome.graded_nothing(args.shard.is_some()) {
        let why = if summary.overall.cases > 0 { ": no metric could run on any case (see `skipped` in the results)" } else { "" };
        eprintln!("error: no case of {} could be graded{why}", args.suite.display());
        source_hint(&outcome);
        return Ok(ExitCode::from(2));
    }
    if summary.overall.skipped > 0 {
        source_hint(&outcome);
    }
    Ok(ExitCode::SUCCESS)
}

/// Where cases were skipped and the sources may be under a name candor does not read, says which
/// field and how to read it (UpTrain's rows name the passage `document_text`).
fn source_hint(outcome: &candor::run::Outcome) {
    if let Some((name, n)) = candor::suite::context_candidates(&outcome.unknown_fields).first() {
        eprintln!("hint: `{name}` ({n} case(s)) may hold the source passages: grade it as contexts with `--field {name}=contexts`");
    }
}

/// The progress bar, fed by the run's events.
struct Bar(ProgressBar);

impl Events for Bar {
    fn note(&self, msg: &str) {
        // A line above the bar, or on stderr when there is no bar (-q, not a terminal).
        if self.0.is_hidden() {
            eprintln!("{msg}");
        } else {
            self.0.println(msg);
        }
    }

    fn progress(&self, p: &Progress) {
        if let Some(total) = p.bytes_total {
            self.0.set_length(total);
        }
        self.0.set_position(p.bytes_read);
        let secs = p.elapsed.as_secs_f64().max(1e-9);
        self.0.set_message(format!(
            "| {} graded{} | {:.1} cases/s, {:.1} claims/s",
            p.graded_now,
            if p.kept > 0 { format!(" ({} kept)", p.kept) } else { String::new() },
            p.graded_now as f64 / secs,
            p.claims as f64 / secs
        ));
    }

    fn tick(&self) {
        self.0.tick();
    }
}

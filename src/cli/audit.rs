//! `candor agreement`, `drift`, `coverage` and `probe`: decisions about the suite and the grader
//! (`candor::audit`). Presentation only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use clap::Args;

use candor::audit::{self, Doc};
use candor::config::GradeConfig;
use candor::engine::DeviceSpec;
use candor::models::ModelStore;
use candor::suite::Case;

use super::analyse::Format;

/// Where and how a report is written.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format: table (plain text), markdown, json or html.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write here instead of the terminal.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,
}

impl OutputArgs {
    /// Checks that the report would overwrite none of `inputs`.
    fn check(&self, inputs: &[(&str, &Path)]) -> anyhow::Result<()> {
        let outputs: Vec<(&str, &Path)> = self.out.as_deref().map(|p| ("report", p)).into_iter().collect();
        Ok(candor::io::check_outputs(inputs, &outputs)?)
    }

    fn emit<T: serde::Serialize>(&self, value: &T, doc: &Doc) -> anyhow::Result<()> {
        emit(value, doc, self.format, self.out.as_deref())
    }
}

/// Writes a report as asked: plain text (`table`), Markdown, JSON, or HTML.
fn emit<T: serde::Serialize>(value: &T, doc: &Doc, format: Format, out: Option<&Path>) -> anyhow::Result<()> {
    let text = match format {
        Format::Table => doc.text(),
        Format::Markdown => doc.markdown(),
        Format::Json => serde_json::to_string_pretty(value)? + "\n",
        Format::Html => doc.html(),
    };
    match out {
        Some(p) => candor::io::write_atomic(p, text.as_bytes()).with_context(|| format!("cannot write {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

/// Reads a whole suite; any bad line stops the command (a case left out would bias the comparison).
fn read_all(path: &Path) -> anyhow::Result<Vec<Case>> {
    let (cases, problems) = candor::suite::read_suite(path)?;
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().take(10).map(|p| format!("  {}: {p}", path.display())).collect();
        anyhow::bail!("{} has {} invalid line(s); nothing compared:\n{}", path.display(), problems.len(), list.join("\n"));
    }
    anyhow::ensure!(!cases.is_empty(), "{} holds no case", path.display());
    Ok(cases)
}

/// The suite a results file was graded from, where `path` is a results file (its first line has
/// `metrics` and `passed`): the suite its run's manifest names, which must be there unchanged.
/// `None` for a suite.
fn graded_suite(path: &Path) -> anyhow::Result<Option<PathBuf>> {
    use std::io::BufRead as _;
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let first = std::io::BufReader::new(file).lines().map_while(Result::ok).find(|l| !l.trim().is_empty()).unwrap_or_default();
    let is_results = serde_json::from_str::<serde_json::Value>(&first).is_ok_and(|v| v.get("metrics").is_some() && v.get("passed").is_some());
    if !is_results {
        return Ok(None);
    }
    let provenance = candor::report::manifest::provenance(path)?;
    let m = provenance
        .manifest()
        .ok_or_else(|| anyhow::anyhow!("{} is a results file without the run manifest that names its suite: give the suite itself", path.display()))?;
    let suite = PathBuf::from(&m.suite.path);
    anyhow::ensure!(m.suite.path != "-" && suite.is_file(), "{} was graded from `{}`, which is not here: give the suite itself", path.display(), m.suite.path);
    if let Some(want) = &m.suite.sha256 {
        anyhow::ensure!(
            &candor::report::manifest::file_sha256(&suite)? == want,
            "{} was graded from {}, which has changed since: give the suite to compare",
            path.display(),
            suite.display()
        );
    }
    eprintln!("note: {} is a results file: reading the suite it graded, {}", path.display(), suite.display());
    Ok(Some(suite))
}

/// A suite, given as itself or as the results file of a run over it.
fn read_suite_or_results(path: &Path) -> anyhow::Result<Vec<Case>> {
    match graded_suite(path)? {
        Some(suite) => read_all(&suite),
        None => read_all(path),
    }
}

/// Agreement between reviewers, and between them and the grader.
///
/// Cases labelled by several people carry each one's label under `label.reviewers`:
///   {"id": "q7", "output": "...", "label": {"reviewers": {"ana": {"supported": true}, "bo": {"supported": false}}}}
/// From a results file of such a suite, this reports Cohen's kappa for each pair of reviewers,
/// Fleiss' kappa and Krippendorff's alpha over all of them, the grader's kappa with each reviewer
/// and with their majority, and the disputed cases (failure class `reviewer_disagreement`).
/// Exits 2 when no case carries reviewers' labels for the metric.
///
/// Examples:
///   candor agreement results.jsonl
///   candor agreement results.jsonl --metric citation --format html -o agreement.html
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct AgreementArgs {
    /// Results of `candor grade` on a suite whose cases carry `label.reviewers`.
    results: PathBuf,
    /// The metric whose verdict is compared: support (label key `supported`), citation
    /// (`attributable`) or consistency (`consistent`).
    #[arg(long, default_value = "support")]
    metric: String,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn agreement(args: AgreementArgs) -> anyhow::Result<ExitCode> {
    args.output.check(&[("results", args.results.as_path())])?;
    let results = candor::report::read_results(&args.results)?;
    let a = audit::agreement::agreement(&results, &args.metric)
        .ok_or_else(|| anyhow::anyhow!("--metric {}: one of support, citation, consistency", args.metric))?;
    anyhow::ensure!(
        a.cases > 0,
        "no case of {} carries reviewers' labels on `{}` (label.reviewers: {{\"ana\": {{\"{}\": true}}, ...}}): nothing to measure",
        args.results.display(),
        a.key,
        a.key
    );
    args.output.emit(&a, &audit::agreement::doc(&a))?;
    Ok(ExitCode::SUCCESS)
}

/// The embedding model and device, for commands that compare texts.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// The embedding model, by registry name [default: the registry's default embedder].
    #[arg(long, value_name = "NAME")]
    embed: Option<String>,
    /// Device: auto, cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
}

impl EmbedArgs {
    fn embedder(&self, store: &ModelStore) -> anyhow::Result<candor::engine::Embedder> {
        Ok(candor::run::load_embedder(store, self.embed.clone(), &self.device)?)
    }
}

/// Are two suites from one distribution? Exit 1 when drift is found, 0 when not, 2 on bad input.
///
/// For the inputs, the outputs and the contexts, overall and within each segment both suites have
/// (--by), an energy-distance permutation test on the texts' embeddings and on their lengths; over
/// the whole suites, the refusal rate, the writing systems and the segments' shares. p-values are
/// adjusted together by Holm's method; drift is found where one is at most --level. The input
/// clusters NEW has and BASELINE lacks are listed with examples. Deterministic for a --seed.
///
/// Examples:
///   candor drift last-quarter.jsonl this-week.jsonl --by topic
///   candor drift suite.jsonl traffic.jsonl --format html -o drift.html
///
/// In a gate: `candor drift ... --format json -o drift.json`, then `candor gate results.jsonl
/// --policy P --drift drift.json` with the rule `"drift.found" = "== 0"`.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DriftArgs {
    /// The suite that stands for how things were (or the results of a run over it: the suite its
    /// manifest names is read).
    baseline: PathBuf,
    /// The suite (or sample of traffic, as a suite; or results) to compare with it.
    new: PathBuf,
    /// A segment key to test within, each value both suites have.
    #[arg(long, value_name = "KEY")]
    by: Option<String>,
    /// Family-wise level (after Holm's adjustment).
    #[arg(long, default_value_t = 0.05)]
    level: f64,
    /// Permutations of each test.
    #[arg(long, default_value_t = 999)]
    permutations: usize,
    /// Seed of the permutations and clusters.
    #[arg(long, default_value_t = 17)]
    seed: u64,
    /// Fewest cases of a segment on each side for it to be tested.
    #[arg(long, default_value_t = 10)]
    min_cases: usize,
    #[command(flatten)]
    model: EmbedArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn drift(store: &ModelStore, args: DriftArgs) -> anyhow::Result<ExitCode> {
    args.output.check(&[("baseline", args.baseline.as_path()), ("new", args.new.as_path())])?;
    anyhow::ensure!(args.level > 0.0 && args.level < 1.0, "--level {} must be between 0 and 1", args.level);
    anyhow::ensure!(args.permutations >= 19, "--permutations {}: at least 19, so that p can reach 0.05", args.permutations);
    let (base, new) = (read_suite_or_results(&args.baseline)?, read_suite_or_results(&args.new)?);
    if let Some(key) = &args.by {
        anyhow::ensure!(
            base.iter().chain(&new).any(|c| c.segments.contains_key(key)),
            "--by {key}: no case of either suite has the segment key `{key}`"
        );
    }
    let embedder = args.model.embedder(store)?;
    eprintln!("embedding {} + {} cases with {} ...", base.len(), new.len(), embedder.id());
    let opts = audit::drift::Options { by: args.by.clone(), level: args.level, permutations: args.permutations, seed: args.seed, min_cases: args.min_cases };
    let d = audit::drift::drift(&base, &new, &opts, &|t| embedder.embed(t))?;
    args.output.emit(&d, &audit::drift::doc(&d))?;
    Ok(if d.drift { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// How well a suite stands for a sample of production inputs.
///
/// The sample (JSON Lines with an `input`/`question`/`query` field, or text with one input a line)
/// is clustered by embedding; each suite case joins its nearest cluster. The report gives each
/// cluster's share of the traffic and of the suite, the under-covered clusters (the suite's share
/// under half the traffic's) with traffic examples to add, and the suite cases that stand for no
/// traffic (candidates to retire). Deterministic for a --seed.
///
/// Examples:
///   candor coverage suite.jsonl traffic-sample.jsonl
///   candor coverage suite.jsonl queries.txt --clusters 20 --format html -o coverage.html
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CoverageArgs {
    /// The suite (or the results of a run over it: the suite its manifest names is read).
    suite: PathBuf,
    /// A sample of production inputs.
    sample: PathBuf,
    /// Clusters [default: about the square root of half the sample, 2 to 30].
    #[arg(long, default_value_t = 0)]
    clusters: usize,
    /// Seed of the clustering.
    #[arg(long, default_value_t = 17)]
    seed: u64,
    #[command(flatten)]
    model: EmbedArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn coverage(store: &ModelStore, args: CoverageArgs) -> anyhow::Result<ExitCode> {
    args.output.check(&[("suite", args.suite.as_path()), ("sample", args.sample.as_path())])?;
    let suite = read_suite_or_results(&args.suite)?;
    let sample = audit::coverage::read_inputs(&args.sample)?;
    let embedder = args.model.embedder(store)?;
    eprintln!("embedding {} sample inputs and {} cases with {} ...", sample.len(), suite.len(), embedder.id());
    let c = audit::coverage::coverage(&suite, &sample, &audit::coverage::Options { clusters: args.clusters, seed: args.seed }, &|t| embedder.embed(t))?;
    args.output.emit(&c, &audit::coverage::doc(&c))?;
    Ok(ExitCode::SUCCESS)
}

/// A grader self-test with no labels (after CheckList).
///
/// Grades the suite's support (or reads --results), edits each claim found supported in ways that
/// must flip the verdict (number or date moved, negation, a name swapped for another of the same
/// sources, a unit changed) and ways that must not (casing, whitespace, a citation marker, a
/// paraphrase template), writes the edits as a suite to -o, grades them, and reports per edit type
/// (and per segment with --by) how often the grader caught the change or kept its verdict. The probe
/// suite's results go beside it (PROBES.results.jsonl). Deterministic for a --seed.
///
/// Examples:
///   candor probe examples/suite.jsonl -o probes.jsonl
///   candor probe suite.jsonl -o probes.jsonl --results results.jsonl --by topic --format html --report probe.html
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ProbeArgs {
    /// The suite whose claims are probed.
    suite: PathBuf,
    /// Where the probes are written, as a suite (JSON Lines).
    #[arg(long, short = 'o', value_name = "PROBES")]
    out: PathBuf,
    /// Results of `candor grade` on SUITE with support, to start from [default: grade it now].
    #[arg(long, value_name = "RESULTS")]
    results: Option<PathBuf>,
    /// Grading config, as for `candor grade`.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// The NLI model, as for `candor grade --nli`.
    #[arg(long, value_name = "NAME")]
    nli: Option<String>,
    /// A segment key to report by.
    #[arg(long, value_name = "KEY")]
    by: Option<String>,
    /// Supported claims of each case that are edited.
    #[arg(long, default_value_t = 2)]
    claims_per_case: usize,
    /// Seed of the edits.
    #[arg(long, default_value_t = 17)]
    seed: u64,
    /// Device: auto, cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write the report here instead of the terminal.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

pub fn probe(store: &ModelStore, args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let probe_results = candor::audit::probe::results_path(&args.out);
    let mut inputs = vec![("suite", args.suite.as_path())];
    inputs.extend(args.results.as_deref().map(|r| ("results", r)));
    inputs.extend(args.config.as_deref().map(|c| ("config", c)));
    let mut outputs = vec![("probes", args.out.as_path()), ("probe results", probe_results.as_path())];
    outputs.extend(args.report.as_deref().map(|r| ("report", r)));
    candor::io::check_outputs(&inputs, &outputs)?;
    let cases = read_all(&args.suite)?;
    let mut cfg = match &args.config {
        Some(p) => GradeConfig::from_file(p)?,
        None => GradeConfig::default(),
    };
    if let Some(nli) = &args.nli {
        cfg.models.nli = Some(nli.clone());
    }
    let metrics: candor::graders::MetricSet = "support".parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let stop = AtomicBool::new(false);
    let grade = |suite: &Path, results: &Path| -> anyhow::Result<Vec<candor::graders::results::CaseResult>> {
        let mut spec = candor::run::RunSpec::new(suite, results);
        spec.config = cfg.clone();
        spec.config_file = args.config.clone();
        spec.metrics = metrics;
        spec.device = args.device.clone();
        spec.strict = true;
        candor::run::grade(store, &spec, &candor::run::Quiet, &stop)?;
        Ok(candor::report::read_results(results)?)
    };
    let results = match &args.results {
        Some(r) => candor::report::read_results(r)?,
        None => {
            eprintln!("grading {} for support ...", args.suite.display());
            let dir = tempfile::tempdir()?;
            grade(&args.suite, &dir.path().join("results.jsonl"))?
        }
    };
    let opts = audit::probe::Options { claims_per_case: args.claims_per_case, seed: args.seed, by: args.by.clone() };
    let (report, _) = audit::probe::probe(&cases, &results, &opts, &mut |probes: &[Case], lines: &[String]| {
        let mut text = lines.join("\n");
        text.push('\n');
        candor::io::write_atomic(&args.out, text.as_bytes())?;
        eprintln!("grading {} probes ({}) ...", probes.len(), args.out.display());
        grade(&args.out, &probe_results).map_err(|e| candor::Error::Input { location: args.out.display().to_string(), reason: format!("{e:#}") })
    })?;
    anyhow::ensure!(
        !report.probes.is_empty(),
        "no probe could be made: the grader found no claim of {} supported (or no edit applied)",
        args.suite.display()
    );
    emit(&report, &audit::probe::doc(&report), args.format, args.report.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

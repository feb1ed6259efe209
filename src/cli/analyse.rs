//! `candor compare` and `candor calibrate`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use candor::report::{calibrate, compare, read_results, render};

/// Compare two runs of the same suite: what changed, and is it real?
///
/// Per metric and segment: the mean before and after, the change with a paired bootstrap 95%
/// interval (cases paired by id; fixed seed, so the same files give the same figures), McNemar's test
/// on pass/fail, and the cases that flipped, regressions first and the largest score drop first.
///
/// Example:
///   candor compare last-release.jsonl results.jsonl
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CompareArgs {
    /// Results of the old run.
    old: PathBuf,
    /// Results of the new run.
    new: PathBuf,
    /// How many flipped cases to list.
    #[arg(long, default_value_t = 20)]
    flips: usize,
    /// Write the comparison as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

pub fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let outputs: Vec<(&str, &std::path::Path)> = args.json.as_deref().map(|p| ("JSON comparison", p)).into_iter().collect();
    candor::io::check_outputs(&[("old results", args.old.as_path()), ("new results", args.new.as_path())], &outputs)?;
    let old = read_results(&args.old)?;
    let new = read_results(&args.new)?;
    let c = compare::compare(&old, &new, 0x5EED);
    anyhow::ensure!(!c.changes.is_empty(), "{} and {} share no case ids", args.old.display(), args.new.display());
    // Two runs made differently (another config, model, runtime or metric set) differ for that too:
    // said before the figures, and in the JSON.
    let made = candor::report::manifest::made_differently(&args.old, &args.new)?;
    for line in &made {
        println!("note: {}", candor::report::escape::terminal(line));
    }
    print!("{}", c.table(args.flips));
    if let Some(p) = &args.json {
        let mut v = serde_json::to_value(&c)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("made_differently".into(), serde_json::json!(made));
        }
        std::fs::write(p, serde_json::to_string_pretty(&v)?).with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Measure the grader against human labels and choose its thresholds.
///
/// Needs results of cases that carry `label` ({"supported": bool} for support, {"attributable": bool}
/// for citation, {"consistent": bool} for consistency). Per metric (and per segment with --by):
/// balanced accuracy at the configured threshold, ROC-AUC, the threshold that maximises balanced
/// accuracy, and the expected calibration error with a reliability table.
///
/// --write-policy stores the chosen thresholds in a candor.toml (created, or updated keeping its other
/// settings); it refuses when a class has fewer than 50 labelled cases (--allow-small-sample writes
/// anyway). Each chosen threshold comes with its 95% bootstrap interval. Choose thresholds on one
/// labelled set and check them on another: a threshold chosen and measured on the same cases flatters
/// itself.
///
/// Examples:
///   candor calibrate labelled-results.jsonl
///   candor calibrate labelled-results.jsonl --by task --config candor.toml --write-policy candor.toml
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CalibrateArgs {
    /// Results of `candor grade` on labelled cases.
    results: PathBuf,
    /// Segment keys to calibrate per segment too, comma-separated.
    #[arg(long, value_delimiter = ',')]
    by: Vec<String>,
    /// A config whose thresholds to measure [default: the run's own, from its manifest].
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Write the chosen thresholds into this candor.toml.
    #[arg(long, value_name = "FILE")]
    write_policy: Option<PathBuf>,
    /// Write the calibration as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write thresholds chosen on fewer than 50 labelled cases of a class anyway (by default
    /// --write-policy refuses: a threshold chosen on so few is noise).
    #[arg(long)]
    allow_small_sample: bool,
}

pub fn calibrate(args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    // --write-policy may update the --config file on purpose; every other output must be a file
    // that the command does not read.
    let json: Vec<(&str, &std::path::Path)> = args.json.as_deref().map(|p| ("JSON calibration", p)).into_iter().collect();
    let mut inputs = vec![("results", args.results.as_path())];
    inputs.extend(args.config.as_deref().map(|c| ("config", c)));
    candor::io::check_outputs(&inputs, &json)?;
    if let Some(policy) = &args.write_policy {
        let mut outputs = json.clone();
        outputs.push(("policy", policy.as_path()));
        candor::io::check_outputs(&[("results", args.results.as_path())], &outputs)?;
    }
    // The run's own config (from its manifest) unless one is given.
    let (mut cfg, notes) = candor::report::manifest::config_for(&args.results, args.config.as_deref())?;
    for n in notes {
        eprintln!("{}", candor::report::escape::terminal(&n));
    }
    let results = read_results(&args.results)?;
    let cals = calibrate::calibrate(&results, &cfg, &args.by);
    anyhow::ensure!(
        !cals.is_empty(),
        "no case of {} carries a label that a metric can be measured against (supported, attributable, consistent)",
        args.results.display()
    );
    print!("{}", calibrate::table(&cals));
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&cals)?).with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &args.write_policy {
        if p.exists() && args.config.as_deref() != Some(p.as_path()) {
            cfg = candor::config::GradeConfig::from_file(p)?;
        }
        let small: Vec<String> = cals.iter().filter(|c| c.group == "overall").filter_map(calibrate::small_sample).collect();
        for w in &small {
            eprintln!("{w}");
        }
        if !small.is_empty() && !args.allow_small_sample {
            eprintln!(
                "error: nothing written to {}: a threshold needs at least {} labelled cases of each class (label more, or pass --allow-small-sample to write it anyway)",
                p.display(),
                calibrate::MIN_CASES_PER_CLASS
            );
            return Ok(ExitCode::from(2));
        }
        let changed = calibrate::apply(&cals, &mut cfg);
        let text = format!(
            "# Written by `candor calibrate {}`; thresholds chosen to maximise balanced accuracy.\n{}",
            args.results.display(),
            toml::to_string(&cfg)?
        );
        std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?;
        for (k, v) in changed {
            println!("{} = {v} written to {}", k, p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Output formats of `candor report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Plain text.
    Table,
    /// Markdown.
    Markdown,
    /// JSON.
    Json,
    /// One self-contained HTML page (inline SVG charts, searchable case table, no network).
    Html,
}

/// Report a run: per segment pass rates with intervals, mean scores, failures and the worst cases.
///
/// Groups: the whole run, every value of the --by keys (default: every segment key), and pairs of
/// keys written `a+b` (e.g. --by task,risk,task+risk). Pass rates carry a Wilson 95% interval and mean
/// scores a bootstrap 95% interval; groups with fewer than --min-cases cases are marked "too few"
/// and not ranked.
///
/// Examples:
///   candor report results.jsonl
///   candor report results.jsonl --by task,task+risk --format html -o report.html
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ReportArgs {
    /// Results of `candor grade`.
    results: PathBuf,
    /// Segment keys (and `a+b` pairs) to group by, comma-separated; default: every key.
    #[arg(long, value_delimiter = ',')]
    by: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write here instead of the terminal.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,
    /// Groups with fewer cases are marked "too few" and not ranked.
    #[arg(long, default_value_t = 10)]
    min_cases: usize,
    /// How many of the worst cases to show.
    #[arg(long, default_value_t = 10)]
    worst: usize,
    /// A config for calibration figures [default: the run's own, from its manifest].
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// A gate policy whose `[cost]` table prices the failure classes: the report then gives each
    /// group's expected cost per case with its bootstrap interval.
    #[arg(long, value_name = "POLICY")]
    policy: Option<PathBuf>,
    /// The graded suite, to quote the evidence of the worst cases [default: the suite the run's
    /// manifest names, if it is there unchanged; else the evidence is given as character spans].
    #[arg(long, value_name = "SUITE")]
    suite: Option<PathBuf>,
}

/// The graded suite's contexts, to quote evidence: `given`, else the suite the run's manifest names
/// when that file is still there with the sha256 it had then; else none, with a note saying why.
fn sources_for(results: &std::path::Path, given: Option<&std::path::Path>) -> anyhow::Result<(Option<render::SuiteContexts>, Option<String>)> {
    use candor::suite::{SuiteFormat, SuiteReader};
    let read = |p: &std::path::Path| -> anyhow::Result<render::SuiteContexts> {
        let file = candor::suite::open(p)?;
        let cases = SuiteReader::with_format(std::io::BufReader::new(file), SuiteFormat::for_path(p)).filter_map(Result::ok);
        Ok(render::SuiteContexts::from_cases(cases))
    };
    if let Some(p) = given {
        return Ok((Some(read(p)?), None));
    }
    let provenance = candor::report::manifest::provenance(results)?;
    let Some(m) = provenance.manifest() else { return Ok((None, None)) };
    let path = std::path::Path::new(&m.suite.path);
    let as_spans = "the evidence is given as character spans; pass --suite to quote it";
    if m.suite.path == "-" || !path.is_file() {
        return Ok((None, Some(format!("note: the graded suite `{}` is not here: {as_spans}", m.suite.path))));
    }
    if let Some(want) = &m.suite.sha256 {
        if &candor::report::manifest::file_sha256(path)? != want {
            return Ok((None, Some(format!("note: {} changed since the run: {as_spans}", path.display()))));
        }
    }
    Ok((Some(read(path)?), None))
}

pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let mut inputs = vec![("results", args.results.as_path())];
    inputs.extend(args.config.as_deref().map(|c| ("config", c)));
    inputs.extend(args.policy.as_deref().map(|c| ("policy", c)));
    let outputs: Vec<(&str, &std::path::Path)> = args.out.as_deref().map(|p| ("report", p)).into_iter().collect();
    candor::io::check_outputs(&inputs, &outputs)?;
    let (cfg, notes) = candor::report::manifest::config_for(&args.results, args.config.as_deref())?;
    for n in notes {
        eprintln!("{}", candor::report::escape::terminal(&n));
    }
    let results = read_results(&args.results)?;
    anyhow::ensure!(!results.is_empty(), "{} has no results", args.results.display());
    // A --by key no case has (a misspelt `topc`) would leave only the overall group, silently.
    let keys = candor::report::segment_keys(&results);
    for key in args.by.iter().flat_map(|b| b.split('+')).map(str::trim) {
        anyhow::ensure!(
            keys.iter().any(|k| k == key),
            "--by {key}: no case has the segment key `{key}` (keys here: {})",
            if keys.is_empty() { "none".to_string() } else { keys.join(", ") }
        );
    }
    let (sources, note) = sources_for(&args.results, args.suite.as_deref())?;
    if let Some(n) = note {
        eprintln!("{}", candor::report::escape::terminal(&n));
    }
    // A run that did not finish (or changed since) is said at the top of the report itself, where
    // a reader of the file CI uploaded sees it, not only here; results with no manifest at all
    // (written by hand, or by an older candor) say nothing either way.
    let incomplete = match candor::report::manifest::provenance(&args.results)? {
        candor::report::manifest::Provenance::Unknown => None,
        p => p.incomplete_reason(&args.results),
    };
    let mut r = render::build(&results, &args.by, args.min_cases, args.worst, &cfg, sources.as_ref()).incomplete(incomplete);
    if let Some(p) = &args.policy {
        let text = std::fs::read_to_string(p).with_context(|| format!("cannot read the policy {}", p.display()))?;
        let policy = candor::report::gate::Policy::parse(&text).map_err(|e| anyhow::anyhow!("policy {}: {e}", p.display()))?;
        let cost = policy.cost.as_ref().ok_or_else(|| anyhow::anyhow!("policy {}: no [cost] table to price the failure classes with", p.display()))?;
        r = r.with_costs(&results, cost);
    }
    let text = match args.format {
        Format::Table => r.table(),
        Format::Markdown => r.markdown(),
        Format::Json => serde_json::to_string_pretty(&r)?,
        Format::Html => r.html(),
    };
    match &args.out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

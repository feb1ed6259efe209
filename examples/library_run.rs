//! candor as a library: a resumable, sharded grading run, then the shards merged, without the CLI.
//!
//! `candor::run::grade` is what `candor grade` runs: it reads the suite once, grades it a block at a
//! time into the results file, writes the run's manifest into the summary, and with `resume` keeps
//! what an earlier run of the same settings finished. Here the example suite is graded in two shards
//! (as two machines would), the first one stopped after its first block and resumed, and the shards
//! merged into one results file in suite order.
//!
//!     cargo run --release --example library_run -- examples/suite.jsonl target/library-run

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use candor::run::{Events, Progress, RunSpec};

/// Prints progress, and asks the run to stop after its first block (as Ctrl-C would).
struct StopAfterFirstBlock<'a>(&'a AtomicBool);

impl Events for StopAfterFirstBlock<'_> {
    fn note(&self, msg: &str) {
        eprintln!("{msg}");
    }
    fn progress(&self, p: &Progress) {
        eprintln!("  {} case(s) graded, {} of {:?} bytes of the suite read", p.graded_now, p.bytes_read, p.bytes_total);
        self.0.store(true, Ordering::SeqCst);
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let suite = PathBuf::from(args.next().unwrap_or_else(|| "examples/suite.jsonl".into()));
    let dir = PathBuf::from(args.next().unwrap_or_else(|| std::env::temp_dir().join("candor-library").display().to_string()));
    std::fs::create_dir_all(&dir)?;
    let store = candor::models::ModelStore::from_env(candor::models::Registry::load(None)?);

    let mut parts = Vec::new();
    for k in 1..=2 {
        let out = dir.join(format!("part-{k}.jsonl"));
        let mut spec = RunSpec::new(&suite, &out);
        spec.metrics = "support,citation".parse().map_err(anyhow::Error::msg)?;
        spec.shard = Some(format!("{k}/2").parse().map_err(anyhow::Error::msg)?);
        spec.config.engine.block_cases = 8;
        // The first shard is stopped after one block, then resumed.
        let stop = AtomicBool::new(false);
        let first = candor::run::grade(&store, &spec, &StopAfterFirstBlock(&stop), &stop)?;
        println!("shard {k}/2: {} graded, interrupted: {}", first.graded_now, first.interrupted);
        if first.interrupted {
            spec.resume = true;
            let done = candor::run::grade(&store, &spec, &candor::run::Quiet, &AtomicBool::new(false))?;
            println!("shard {k}/2 resumed: {} kept, {} graded", done.kept, done.graded_now);
        }
        parts.push(out);
    }

    let merged = dir.join("results.jsonl");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&merged)?);
    let m = candor::report::merge::merge(&suite, &parts, &mut w)?;
    println!("merged {} case(s) into {}", m.cases, merged.display());
    print!("{}", m.summary.table());
    Ok(())
}

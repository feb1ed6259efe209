//! The run manifest: how a results file was made, written in its summary and checked on every read.
//!
//! A results file alone does not say whether its run finished, which config, models, device and
//! kernels made it, or which suite it graded. The manifest says all of that, so that:
//! - `grade --resume` refuses to mix results made another way into one file;
//! - `merge` refuses shards made differently;
//! - `report`, `calibrate` and `gate` use the run's own config, and a gate fails on an incomplete run;
//! - `compare` says when the two runs it compares were made differently.
//!
//! It sits in the summary JSON beside the results (`r.jsonl` -> `r.summary.json`, under `"run"`).
//! `grade` writes a summary holding only the manifest, marked incomplete, before it writes its first
//! result, and the full summary, marked complete, when the suite is done: a killed run leaves a
//! manifest that says so. The complete manifest records the sha256 of the results it describes, so a
//! results file changed afterwards is not taken for the one the manifest describes.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::GradeConfig;
use crate::error::{Error, Result};

/// How a results file was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The candor version that graded.
    pub candor: String,
    /// The models, by role (`nli`, `embed`, `judge`).
    pub models: BTreeMap<String, ModelRecord>,
    /// Device, number type and kernel path, e.g. `cpu f32 avx512f`.
    pub runtime: String,
    /// The metrics asked for (`support`, `citation`, `consistency`, `judge`).
    pub metrics: Vec<String>,
    /// The effective config (every key, defaults included).
    pub config: GradeConfig,
    /// sha256 of the effective config's canonical JSON.
    pub config_sha256: String,
    /// The suite graded.
    pub suite: SuiteRecord,
    /// The shard graded (`K/N`, K from 1), or none for the whole suite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Whether the run graded every case of the suite (of its shard) to the end.
    pub complete: bool,
    /// What the results file held when the run completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<ResultsRecord>,
}

/// One model of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Registry name.
    pub name: String,
    /// `name@sha256-prefix` of the weights, as results carry it.
    pub id: String,
    /// sha256 of each model file, by path.
    pub sha256: BTreeMap<String, String>,
    /// The output labels in order (classifiers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// The suite of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuiteRecord {
    /// The path given (`-` for standard input).
    pub path: String,
    /// sha256 of every byte read, once the whole suite was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The results a complete run wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultsRecord {
    /// Result lines.
    pub cases: usize,
    /// sha256 of the results file's bytes.
    pub sha256: String,
}

/// sha256 of a config's canonical JSON (keys in declaration order, every key written).
pub fn config_sha256(cfg: &GradeConfig) -> String {
    let json = serde_json::to_vec(cfg).unwrap_or_default();
    hex(&Sha256::digest(&json))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// sha256 of a file's bytes, read in pieces.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

impl Manifest {
    /// How this run and `other` were made differently, one line per difference: the candor version,
    /// the models (weights or label order), the runtime, the metrics and the config. Empty when they
    /// were made the same way. (The suite, the shard and completeness are not compared here.)
    pub fn differences(&self, other: &Manifest) -> Vec<String> {
        let mut out = Vec::new();
        if self.candor != other.candor {
            out.push(format!("candor {} vs {}", self.candor, other.candor));
        }
        let roles: std::collections::BTreeSet<&String> = self.models.keys().chain(other.models.keys()).collect();
        for role in roles {
            match (self.models.get(role), other.models.get(role)) {
                (Some(a), Some(b)) if a.sha256 != b.sha256 || a.name != b.name => {
                    out.push(format!("{role} model {} vs {}", a.id, b.id))
                }
                (Some(a), Some(b)) if a.labels != b.labels => {
                    out.push(format!("{role} model labels [{}] vs [{}]", a.labels.join(", "), b.labels.join(", ")))
                }
                (Some(a), None) => out.push(format!("{role} model {} vs none", a.id)),
                (None, Some(b)) => out.push(format!("{role} model none vs {}", b.id)),
                _ => {}
            }
        }
        if self.runtime != other.runtime {
            out.push(format!("runtime `{}` vs `{}`", self.runtime, other.runtime));
        }
        if self.metrics != other.metrics {
            out.push(format!("metrics {} vs {}", self.metrics.join(","), other.metrics.join(",")));
        }
        if self.config_sha256 != other.config_sha256 {
            out.push(format!("config {} vs {}{}", short(&self.config_sha256), short(&other.config_sha256), config_diff(&self.config, &other.config)));
        }
        out
    }
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

/// The keys of two configs that differ, as ` (support.claim_threshold: 0.5 vs 0.7, ...)`.
fn config_diff(a: &GradeConfig, b: &GradeConfig) -> String {
    let (Ok(a), Ok(b)) = (serde_json::to_value(a), serde_json::to_value(b)) else { return String::new() };
    let mut diffs = Vec::new();
    walk("", &a, &b, &mut diffs);
    if diffs.is_empty() {
        String::new()
    } else {
        format!(" ({})", diffs.join(", "))
    }
}

fn walk(at: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let sub = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                walk(&sub, x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), out);
            }
        }
        _ if a != b => out.push(format!("{at}: {a} vs {b}")),
        _ => {}
    }
}

/// What a reader knows of how a results file was made.
#[derive(Debug, Clone, PartialEq)]
pub enum Provenance {
    /// A complete run whose manifest describes these results byte for byte.
    Complete(Box<Manifest>),
    /// A run that did not finish (killed, interrupted, or still running).
    Incomplete(Box<Manifest>),
    /// A manifest whose recorded results differ from the file now (edited or appended since).
    Changed(Box<Manifest>),
    /// No manifest: no summary beside the results, or one written before manifests existed.
    Unknown,
}

impl Provenance {
    /// The manifest, where there is one.
    pub fn manifest(&self) -> Option<&Manifest> {
        match self {
            Provenance::Complete(m) | Provenance::Incomplete(m) | Provenance::Changed(m) => Some(m),
            Provenance::Unknown => None,
        }
    }

    /// Why these results cannot be taken for a complete run, or `None` when they can.
    pub fn incomplete_reason(&self, results: &Path) -> Option<String> {
        let summary = super::summary_path(results);
        match self {
            Provenance::Complete(_) => None,
            Provenance::Incomplete(_) => Some(format!(
                "the run that wrote {} did not finish ({} says incomplete); finish it with `candor grade ... --resume`",
                results.display(),
                summary.display()
            )),
            Provenance::Changed(m) => Some(format!(
                "{} changed after its run completed (the manifest in {} records {} result(s) with another sha256)",
                results.display(),
                summary.display(),
                m.results.as_ref().map_or(0, |r| r.cases)
            )),
            Provenance::Unknown => Some(format!(
                "no run manifest for {} ({} is missing or has no \"run\"): nothing says the run finished",
                results.display(),
                summary.display()
            )),
        }
    }
}

/// Reads the manifest of a results file from the summary beside it and checks it against the file.
/// A summary that cannot be parsed is an error (it is candor's own file); a missing one is
/// [`Provenance::Unknown`].
pub fn provenance(results: &Path) -> Result<Provenance> {
    let path = super::summary_path(results);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Provenance::Unknown),
        Err(e) => return Err(Error::io(&path, e)),
    };
    #[derive(Deserialize)]
    struct RunOnly {
        #[serde(default)]
        run: Option<Manifest>,
    }
    let only: RunOnly = serde_json::from_str(&text)
        .map_err(|e| Error::Input { location: path.display().to_string(), reason: format!("not a candor summary: {e}") })?;
    let Some(m) = only.run else { return Ok(Provenance::Unknown) };
    if !m.complete {
        return Ok(Provenance::Incomplete(Box::new(m)));
    }
    let same = match &m.results {
        Some(r) => results.exists() && file_sha256(results)? == r.sha256,
        None => false,
    };
    Ok(if same { Provenance::Complete(Box::new(m)) } else { Provenance::Changed(Box::new(m)) })
}

/// The config to read a run's results with, and notes for the user: the given file's config (noting
/// where the run was graded with another), else the run's own from its manifest, else the defaults
/// (noting that nothing says how the run was configured); and, where the manifest says the run did
/// not finish or its results changed since, that too. The manifest is read once.
pub fn config_for(results: &Path, given: Option<&Path>) -> Result<(GradeConfig, Vec<String>)> {
    let prov = provenance(results)?;
    let run = prov.manifest();
    let mut notes = Vec::new();
    let cfg = match (given, run) {
        (Some(file), run) => {
            let mut cfg = GradeConfig::from_file(file)?;
            // A file that sets no claim threshold was graded with the model's own (the registry's,
            // applied at grading time and recorded in the manifest): read it the same way.
            if let Some(m) = run.filter(|_| !cfg.support.claim_threshold_set) {
                cfg.support.claim_threshold = m.config.support.claim_threshold;
            }
            if let Some(m) = run.filter(|m| m.config_sha256 != config_sha256(&cfg)) {
                notes.push(format!(
                    "note: {} was graded with another config than {}{}; the figures use {}",
                    results.display(),
                    file.display(),
                    config_diff(&m.config, &cfg),
                    file.display()
                ));
            }
            cfg
        }
        (None, Some(m)) => m.config.clone(),
        (None, None) => {
            notes.push(format!(
                "note: no run manifest for {} ({} is missing): the default config is assumed; pass --config with the one it was graded with",
                results.display(),
                super::summary_path(results).display()
            ));
            GradeConfig::default()
        }
    };
    // A run that did not finish (or changed since) is read as it is, but said to be so.
    if let (Some(_), Some(why)) = (run, prov.incomplete_reason(results)) {
        notes.push(format!("note: {why}"));
    }
    Ok((cfg, notes))
}

/// What a comparison of two runs must say first: how they were made differently (from their
/// manifests), or that one has no manifest, or that one did not finish. Empty when both were made
/// the same way and completed.
pub fn made_differently(old: &Path, new: &Path) -> Result<Vec<String>> {
    let (a, b) = (provenance(old)?, provenance(new)?);
    let mut out = Vec::new();
    for (p, path) in [(&a, old), (&b, new)] {
        if let Some(why) = p.incomplete_reason(path) {
            out.push(why);
        }
    }
    if let (Some(x), Some(y)) = (a.manifest(), b.manifest()) {
        let d = x.differences(y);
        if !d.is_empty() {
            out.push(format!("the runs were made differently (old vs new): {}", d.join("; ")));
        }
        if x.suite.sha256.is_some() && y.suite.sha256.is_some() && x.suite.sha256 != y.suite.sha256 {
            out.push("the runs graded different suites (their sha256 differ): only the cases they share are compared".into());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let mut models = BTreeMap::new();
        models.insert(
            "nli".to_string(),
            ModelRecord {
                name: "m".into(),
                id: "m@abc".into(),
                sha256: [("model.safetensors".to_string(), "abc".to_string())].into(),
                labels: vec!["entailment".into(), "neutral".into()],
            },
        );
        let config = GradeConfig::default();
        Manifest {
            candor: "1.0".into(),
            models,
            runtime: "cpu f32 portable".into(),
            metrics: vec!["support".into()],
            config_sha256: config_sha256(&config),
            config,
            suite: SuiteRecord { path: "s.jsonl".into(), sha256: None },
            shard: None,
            complete: false,
            results: None,
        }
    }

    #[test]
    fn differences_name_what_differs() {
        let a = manifest();
        assert!(a.differences(&a.clone()).is_empty());
        let mut b = a.clone();
        b.config.support.claim_threshold = 0.7;
        b.config_sha256 = config_sha256(&b.config);
        let d = a.differences(&b);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].contains("support.claim_threshold: 0.5 vs 0.7"), "{d:?}");
        let mut c = a.clone();
        c.models.get_mut("nli").unwrap().labels.reverse();
        c.runtime = "cuda f16".into();
        let d = a.differences(&c);
        assert!(d.iter().any(|l| l.contains("labels")) && d.iter().any(|l| l.contains("runtime")), "{d:?}");
        // The shard, suite and completeness are not how a run was made.
        let mut e = a.clone();
        e.shard = Some("2/3".into());
        e.complete = true;
        e.suite.sha256 = Some("ff".into());
        assert!(a.differences(&e).is_empty());
    }

    #[test]
    fn readers_use_the_runs_own_config() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("r.jsonl");
        std::fs::write(&results, b"{}\n").unwrap();
        let (cfg, notes) = config_for(&results, None).unwrap();
        assert_eq!(cfg, GradeConfig::default());
        assert!(notes.len() == 1 && notes[0].contains("default config is assumed"), "{notes:?}");
        let mut m = manifest();
        m.config.support.claim_threshold = 0.8;
        m.config_sha256 = config_sha256(&m.config);
        std::fs::write(super::super::summary_path(&results), serde_json::json!({ "run": m }).to_string()).unwrap();
        let (cfg, notes) = config_for(&results, None).unwrap();
        assert_eq!(cfg.support.claim_threshold, 0.8);
        // The manifest is of an incomplete run: that is said, and nothing else.
        assert!(notes.len() == 1 && notes[0].contains("did not finish"), "{notes:?}");
        let given = dir.path().join("c.toml");
        // A file that sets no claim threshold reads the run's (the model's own, recorded when graded).
        std::fs::write(&given, "[support]\npass = 0.75\n").unwrap();
        assert_eq!(config_for(&results, Some(&given)).unwrap().0.support.claim_threshold, 0.8);
        std::fs::write(&given, "[support]\nclaim_threshold = 0.6\n").unwrap();
        let (cfg, notes) = config_for(&results, Some(&given)).unwrap();
        assert_eq!(cfg.support.claim_threshold, 0.6);
        assert!(notes[0].contains("support.claim_threshold: 0.8 vs 0.6"), "{notes:?}");
    }

    #[test]
    fn provenance_checks_the_results_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("r.jsonl");
        assert_eq!(provenance(&results).unwrap(), Provenance::Unknown);
        std::fs::write(&results, b"{}\n").unwrap();
        let mut m = manifest();
        let write = |m: &Manifest| {
            let v = serde_json::json!({ "run": m });
            std::fs::write(super::super::summary_path(&results), v.to_string()).unwrap();
        };
        write(&m);
        assert!(matches!(provenance(&results).unwrap(), Provenance::Incomplete(_)));
        m.complete = true;
        m.results = Some(ResultsRecord { cases: 1, sha256: file_sha256(&results).unwrap() });
        write(&m);
        assert!(matches!(provenance(&results).unwrap(), Provenance::Complete(_)));
        std::fs::write(&results, b"{}\n{}\n").unwrap();
        let p = provenance(&results).unwrap();
        assert!(matches!(p, Provenance::Changed(_)));
        assert!(p.incomplete_reason(&results).unwrap().contains("changed"));
        std::fs::write(super::super::summary_path(&results), b"{\"overall\": ").unwrap();
        assert!(provenance(&results).is_err());
    }
}

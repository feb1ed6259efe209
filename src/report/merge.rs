//! Merging the results of a suite graded in shards (`candor grade --shard K/N`, K from 1 to N)
//! into one results file in suite order, as an unsharded run writes it.
//!
//! Memory stays bounded like `candor grade`'s: the shards are indexed (each result's id, file, byte
//! offset and line), then the suite is read in order and each result line copied from its shard to
//! the output, the summary counted as lines pass. Nothing but the index is held.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::graders::CaseResult;
use crate::report::{Summary, SummaryBuilder};
use crate::report::manifest::{Manifest, Provenance, SuiteRecord};
use crate::suite::{HashingReader, SuiteReader};

/// The manifests of the shards, checked: each from a complete run that made its results as they are,
/// all made the same way (config, models, runtime, metrics, candor version), of one shard count, no
/// shard twice. Returns the merged run's manifest (complete, no shard; its results recorded once
/// written) and each shard's.
fn shard_manifests(shards: &[PathBuf]) -> Result<(Manifest, Vec<Manifest>)> {
    let mut all: Vec<Manifest> = Vec::new();
    for path in shards {
        let prov = crate::report::manifest::provenance(path)?;
        let m = match prov {
            Provenance::Complete(m) => *m,
            other => {
                let why = other.incomplete_reason(path).unwrap_or_default();
                return Err(Error::Input { location: path.display().to_string(), reason: format!("cannot merge: {why}") });
            }
        };
        if let Some(first) = all.first() {
            let d = first.differences(&m);
            if !d.is_empty() {
                return Err(Error::Input {
                    location: path.display().to_string(),
                    reason: format!("graded differently from {} ({}): shards must be graded the same way", shards[0].display(), d.join("; ")),
                });
            }
        }
        let count = |m: &Manifest| m.shard.as_deref().and_then(|s| s.split_once('/')).map(|(_, n)| n.to_string());
        match (&m.shard, all.first().map(count)) {
            (None, _) => {
                return Err(Error::Input {
                    location: path.display().to_string(),
                    reason: "is the results of a whole suite, not of a shard (graded without --shard)".into(),
                })
            }
            (Some(_), Some(n)) if n != count(&m) => {
                return Err(Error::Input {
                    location: path.display().to_string(),
                    reason: format!(
                        "is shard {} but {} is shard {}: shards of one run split the suite the same number of ways",
                        m.shard.as_deref().unwrap_or("?"),
                        shards[0].display(),
                        all[0].shard.as_deref().unwrap_or("?")
                    ),
                })
            }
            _ => {}
        }
        if let Some(k) = all.iter().position(|o| o.shard == m.shard) {
            return Err(Error::Input {
                location: path.display().to_string(),
                reason: format!("is shard {} like {}: each shard once", m.shard.as_deref().unwrap_or("?"), shards[k].display()),
            });
        }
        all.push(m);
    }
    let Some(first) = all.first() else {
        return Err(Error::Input { location: "merge".into(), reason: "no shard given".into() });
    };
    let mut merged = first.clone();
    merged.shard = None;
    merged.complete = true;
    merged.results = None;
    Ok((merged, all))
}

/// What a merge wrote.
#[derive(Debug)]
pub struct Merged {
    /// Result lines written.
    pub cases: usize,
    /// Lines of the suite that could not be graded (an unsharded run skips and counts them too).
    pub invalid_lines: usize,
    /// The summary of the merged results.
    pub summary: Summary,
}

/// Where one result line is.
struct Entry {
    shard: usize,
    offset: u64,
    len: usize,
    line: usize,
}

/// Merges shard results files against their suite, writing the result lines to `out` in suite
/// order, exactly as the shards wrote them. Every valid case of the suite must have exactly one
/// result across the shards, no shard may hold a case the suite does not have, and all shards must
/// have been graded by the same models; each violation is an error naming the file, line and id
/// (`out` may then hold a partial file: write it to a temporary name).
pub fn merge(suite: &Path, shards: &[PathBuf], out: &mut dyn Write) -> Result<Merged> {
    // Opened first: a suite that cannot be read (or is a directory) fails before any work.
    let file = crate::suite::open(suite)?;
    let run = shard_manifests(shards)?;
    let mut index: HashMap<String, Entry> = HashMap::new();
    let mut models: Option<(BTreeMap<String, String>, String)> = None;
    for (k, shard) in shards.iter().enumerate() {
        let mut reader = BufReader::new(std::fs::File::open(shard).map_err(|e| Error::io(shard, e))?);
        let (mut offset, mut line, mut buf) = (0u64, 0usize, String::new());
        loop {
            buf.clear();
            let n = reader.read_line(&mut buf).map_err(|e| Error::io(shard, e))?;
            if n == 0 {
                break;
            }
            line += 1;
            let start = offset;
            offset += n as u64;
            let text = buf.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            let location = format!("{}:{line}", shard.display());
            let r: CaseResult = serde_json::from_str(text).map_err(|e| Error::Input {
                location: location.clone(),
                reason: format!("not a result line ({e}); an interrupted shard is finished with `candor grade --resume`"),
            })?;
            match &models {
                None => models = Some((r.model.clone(), location.clone())),
                Some((m, first)) if *m != r.model => {
                    return Err(Error::Input {
                        location,
                        reason: format!("graded by {:?}, but {first} by {m:?}: shards must use the same models", r.model),
                    })
                }
                Some(_) => {}
            }
            if let Some(e) = index.get(&r.id) {
                let earlier = format!("{}:{}", shards[e.shard].display(), e.line);
                return Err(Error::Input { location, reason: format!("case `{}` is also in {earlier}", r.id) });
            }
            index.insert(r.id, Entry { shard: k, offset: start, len: text.len(), line });
        }
    }
    let mut files: Vec<std::fs::File> =
        shards.iter().map(|p| std::fs::File::open(p).map_err(|e| Error::io(p, e))).collect::<Result<_>>()?;
    let (mut invalid_lines, mut cases, mut missing) = (0usize, 0usize, Vec::new());
    let mut summary = SummaryBuilder::new();
    let mut buf = Vec::new();
    let mut reader = SuiteReader::new(BufReader::new(HashingReader::new(file, Default::default())));
    for item in reader.by_ref() {
        let id = match item {
            Ok(case) => case.id,
            Err(_) => {
                invalid_lines += 1;
                continue;
            }
        };
        let Some(e) = index.remove(&id) else {
            missing.push(id);
            continue;
        };
        if !missing.is_empty() {
            continue; // the merge fails below; no need to copy more
        }
        let (f, path) = (&mut files[e.shard], &shards[e.shard]);
        buf.resize(e.len, 0);
        f.seek(SeekFrom::Start(e.offset)).and_then(|_| f.read_exact(&mut buf)).map_err(|err| Error::io(path, err))?;
        let r: CaseResult = serde_json::from_slice(&buf).map_err(|err| Error::Input {
            location: format!("{}:{}", path.display(), e.line),
            reason: format!("changed while merging ({err})"),
        })?;
        summary.add(&r);
        out.write_all(&buf).and_then(|_| out.write_all(b"\n")).map_err(|err| Error::io(Path::new("merged results"), err))?;
        cases += 1;
    }
    reader.finish(suite)?;
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        return Err(Error::Input {
            location: suite.display().to_string(),
            reason: format!(
                "{} case(s) have no result in the shards given (first: {}); a shard is missing or unfinished",
                missing.len(),
                shown.join(", ")
            ),
        });
    }
    if let Some((id, e)) = index.iter().min_by_key(|(_, e)| (e.shard, e.line)) {
        return Err(Error::Input {
            location: format!("{}:{}", shards[e.shard].display(), e.line),
            reason: format!("case `{id}` is not in the suite {}", suite.display()),
        });
    }
    let models = models.map(|(m, _)| m).unwrap_or_default();
    let suite_sha256 = reader.into_inner().into_inner().sha256();
    let mut run = run;
    for (path, m) in shards.iter().zip(&run.1) {
        if m.suite.sha256.as_deref() != Some(suite_sha256.as_str()) {
            return Err(Error::Input {
                location: path.display().to_string(),
                reason: format!(
                    "graded another version of the suite (its manifest records sha256 {}, {} has {suite_sha256})",
                    m.suite.sha256.as_deref().unwrap_or("none"),
                    suite.display()
                ),
            });
        }
    }
    run.0.suite = SuiteRecord { path: suite.display().to_string(), sha256: Some(suite_sha256) };
    let mut summary = summary.finish(invalid_lines, models);
    summary.run = Some(run.0);
    Ok(Merged { cases, invalid_lines, summary })
}

//! Merging the results of a suite graded in shards (`candor grade --shard K/N`) into one results
//! file in suite order, as an unsharded run writes it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::graders::CaseResult;
use crate::suite::SuiteReader;

/// The merged run.
#[derive(Debug)]
pub struct Merged {
    /// Result lines in suite order, exactly as the shards wrote them (without the newline).
    pub lines: Vec<String>,
    /// The same results, parsed.
    pub results: Vec<CaseResult>,
    /// Lines of the suite that could not be graded (an unsharded run skips and counts them too).
    pub invalid_lines: usize,
    /// The models that graded (the same in every shard).
    pub models: BTreeMap<String, String>,
}

/// Merges shard results files against their suite. Every valid case of the suite must have exactly
/// one result across the shards, no shard may hold a case the suite does not have, and all shards
/// must have been graded by the same models; each violation is an error naming the file, line and id.
pub fn merge(suite: &Path, shards: &[PathBuf]) -> Result<Merged> {
    let file = std::fs::File::open(suite).map_err(|e| Error::io(suite, e))?;
    let mut order: Vec<String> = Vec::new();
    let mut invalid_lines = 0;
    for item in SuiteReader::new(std::io::BufReader::new(file)) {
        match item {
            Ok(case) => order.push(case.id),
            Err(_) => invalid_lines += 1,
        }
    }
    let mut found: HashMap<String, (String, CaseResult, String)> = HashMap::with_capacity(order.len());
    let mut models: Option<(BTreeMap<String, String>, String)> = None;
    for shard in shards {
        let text = std::fs::read_to_string(shard).map_err(|e| Error::io(shard, e))?;
        for (i, line) in text.lines().enumerate() {
            let location = format!("{}:{}", shard.display(), i + 1);
            if line.trim().is_empty() {
                continue;
            }
            let r: CaseResult = serde_json::from_str(line).map_err(|e| Error::Input {
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
            if let Some((_, _, earlier)) = found.get(&r.id) {
                return Err(Error::Input { location, reason: format!("case `{}` is also in {earlier}", r.id) });
            }
            found.insert(r.id.clone(), (line.to_string(), r, location));
        }
    }
    let mut lines = Vec::with_capacity(order.len());
    let mut results = Vec::with_capacity(order.len());
    let mut missing = Vec::new();
    for id in &order {
        match found.remove(id) {
            Some((line, r, _)) => {
                lines.push(line);
                results.push(r);
            }
            None => missing.push(id.as_str()),
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).copied().collect();
        return Err(Error::Input {
            location: suite.display().to_string(),
            reason: format!(
                "{} case(s) have no result in the shards given (first: {}); a shard is missing or unfinished",
                missing.len(),
                shown.join(", ")
            ),
        });
    }
    if let Some((id, (_, _, location))) = found.iter().min_by(|a, b| a.1 .2.cmp(&b.1 .2)) {
        return Err(Error::Input { location: location.clone(), reason: format!("case `{id}` is not in the suite {}", suite.display()) });
    }
    Ok(Merged { lines, results, invalid_lines, models: models.map(|(m, _)| m).unwrap_or_default() })
}

//! Labelled pairs for training and evaluation: reading the JSON Lines formats of ../shared/data,
//! mapping each set's labels honestly onto the model's, and stable held-out splits.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The shape of a JSON Lines file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `premise`, `hypothesis`, `label`.
    Nli,
    /// `evidence` (text or list of sentences), `claim`, `label`.
    Grounding,
    /// `references` (list of texts), `claim`, `label`. Citation markers that the claim carries from
    /// its original answer ("... climate change [4].") are removed: they number a reference list
    /// that the row does not keep, and they are not part of what is claimed.
    Attribution,
    /// `a`, `b` and a `label` or a numeric `score` (STS-B's 0-5, MSRP's paraphrase labels). A score
    /// is mapped by bands: a `labels` key `"4.6-5"` takes every score from 4.6 to 5 inclusive, and a
    /// score in no band leaves its row out. Similarity is symmetric, so every row gives two examples,
    /// one in each order (on the same side of the held-out split).
    Similarity,
    /// Unlabelled documents, from which labelled pairs are made (`text::perturb`): a folder of
    /// `.txt` and `.md` files (one document each), or a JSON Lines file whose rows carry the
    /// document as `text`, `document`, `article` or `evidence`. `labels` may map a verdict
    /// (`entailment`, `contradiction`, `not_entailment`) or a transform (`name_swap`, ...) to a model
    /// label or `drop`; unmapped, entailment and contradiction keep their names (contradiction is
    /// read as not entailment by a model without that label). The held-out split is by document.
    Documents,
}

/// Which rows of a file a set takes, by a stable hash of the row's texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// Every row.
    #[default]
    All,
    /// Rows outside the held-out part (for training).
    Train,
    /// The held-out part only (for testing).
    Heldout,
}

/// One labelled file and how to read it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataSet {
    /// A short name for reports (default: the file name).
    #[serde(default)]
    pub name: Option<String>,
    /// The file, relative to the config's data folder.
    pub path: String,
    /// Its shape.
    pub format: Format,
    /// Source label -> model label (`entailment`, `neutral`, `contradiction`), or `not_entailment`
    /// (the example only says "not entailed": the loss is on P(entailment) alone), or `drop`. For
    /// a scored similarity set the keys are score bands, `"LO-HI"` (see [`Format::Similarity`]).
    pub labels: BTreeMap<String, String>,
    /// Fraction of rows held out for testing (by hash), used with `part`.
    #[serde(default)]
    pub heldout: f64,
    /// Which part to take.
    #[serde(default)]
    pub part: Part,
    /// At most this many rows (after the split), taken by hash order so the choice is stable.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Fraction of rows whose premise is padded with 1 to 3 premises of other rows of the same set
    /// (before or after it, chosen by hash), so that a model trained on one-sentence premises learns
    /// that unrelated sentences around the evidence change nothing. The label is unchanged: extra
    /// unrelated text neither adds nor removes support.
    #[serde(default)]
    pub distractors: f64,
    /// Only rows whose `split` field (the release's own split, as the second batch's files carry it)
    /// is one of these; empty: every row. A row without a `split` field is then an error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub splits: Vec<String>,
    /// What the held-out hash reads: the whole pair (default) or the premise alone, so that rows that
    /// share a document (HaluEval summarization gives each article twice, with a right and a wrong
    /// summary) fall on the same side and no held-out document was seen in training.
    #[serde(default, skip_serializing_if = "HeldoutBy::is_pair")]
    pub heldout_by: HeldoutBy,
    /// For a `grounding` set whose rows carry the `question` a claim answers (HaluEval QA): read
    /// each claim as the grader reads it with its question (`text::claim_form::read`: a bare answer
    /// as "question answer", a bare "yes" or "no" as the question answered), so that the model
    /// learns the form it is asked at grading time, not the bare answer alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub questions: bool,
    /// With `questions`: each entailed bare answer also gives a wrong answer made from it
    /// (`text::perturb::swap_answer`: the opposite "yes"/"no", or another name, number or date of
    /// the evidence) as a "not entailment" pair, on the same side of the held-out split. A model
    /// trained only on right answers and unrelated wrong sentences passes "Sydney" for the capital
    /// of Australia when the evidence names Sydney.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub answer_swaps: bool,
}

/// What a set's held-out hash reads (see [`DataSet::heldout_by`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HeldoutBy {
    /// Premise and hypothesis together.
    #[default]
    Pair,
    /// The premise alone.
    Premise,
}

impl HeldoutBy {
    fn is_pair(&self) -> bool {
        *self == HeldoutBy::Pair
    }
}

impl DataSet {
    /// A `documents` set over a folder or file of documents (`candor train --synthesize`), every
    /// document and every pair, default labels.
    pub fn documents(path: &Path) -> Self {
        DataSet {
            name: Some(format!("synthetic pairs from {}", path.display())),
            path: path.to_string_lossy().into_owned(),
            format: Format::Documents,
            labels: BTreeMap::new(),
            heldout: 0.0,
            part: Part::All,
            limit: None,
            distractors: 0.0,
            splits: vec![],
            heldout_by: HeldoutBy::Pair,
            questions: false,
            answer_swaps: false,
        }
    }

    /// The set's display name.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            Path::new(&self.path).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
        })
    }

    /// What is wrong with the set's settings, each problem naming its field as `FIELD.key` (`FIELD`
    /// is where the set is in its config, e.g. `train[1]`), given the model's `labels`: an empty path,
    /// an empty label map or one mapping to a label that is neither the model's nor `not_entailment`
    /// or `drop`, a `heldout` or `distractors` fraction outside [0, 1], a part that can hold no row,
    /// and a `limit` of 0.
    pub fn problems(&self, field: &str, labels: &[String]) -> Vec<String> {
        let mut p = vec![];
        let at = format!("`{field}` ({})", if self.path.is_empty() { "no path" } else { &self.path });
        if self.path.trim().is_empty() {
            p.push(format!("`{field}.path` is empty"));
        }
        if self.labels.is_empty() && self.format != Format::Documents {
            p.push(format!("`{field}.labels` is empty: map each of the set's labels to one of the model's, `not_entailment` or `drop`"));
        }
        for (from, to) in &self.labels {
            if self.format == Format::Documents
                && !["entailment", "contradiction", "not_entailment"].contains(&from.as_str())
                && !crate::text::perturb::Transform::ALL.iter().any(|t| t.name() == from)
            {
                p.push(format!(
                    "`{field}.labels` maps `{from}`, which is neither a verdict (entailment, contradiction, not_entailment) nor a transform ({})",
                    crate::text::perturb::Transform::ALL.map(|t| t.name()).join(", ")
                ));
            }
            if to != "drop" && to != "not_entailment" && !labels.contains(to) {
                p.push(format!(
                    "`{field}.labels` maps `{from}` to `{to}`, which is not one of the model's labels ({}), `not_entailment` or `drop`",
                    labels.join(", ")
                ));
            }
        }
        for (key, value) in [("heldout", self.heldout), ("distractors", self.distractors)] {
            if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
                p.push(format!("`{field}.{key}` is {value} in {at}; it must be a fraction in [0, 1]"));
            }
        }
        match self.part {
            Part::Heldout if self.heldout == 0.0 => {
                p.push(format!("`{field}.heldout` is 0 in {at} with part = \"heldout\": the held-out part holds no row"))
            }
            Part::Train if self.heldout == 1.0 => {
                p.push(format!("`{field}.heldout` is 1 in {at} with part = \"train\": everything is held out, the training part holds no row"))
            }
            _ => {}
        }
        if self.format == Format::Documents {
            // Documents are held out by document, from their own text; a release split or
            // distractors would be silently ignored.
            if !self.splits.is_empty() {
                p.push(format!("`{field}.splits` does not apply to a `documents` set in {at}: give the documents of one split as their own file or folder"));
            }
            if self.distractors > 0.0 {
                p.push(format!("`{field}.distractors` does not apply to a `documents` set in {at}"));
            }
        }
        if self.questions && self.format != Format::Grounding {
            p.push(format!("`{field}.questions` applies to a `grounding` set (rows with `question`, `claim`, `evidence`), not to {at}"));
        }
        if self.answer_swaps && !self.questions {
            p.push(format!("`{field}.answer_swaps` needs `questions = true` in {at}: a wrong answer is made for an answer read with its question"));
        }
        if self.splits.iter().any(|x| x.trim().is_empty()) {
            p.push(format!("`{field}.splits` holds an empty name in {at}"));
        }
        if self.limit == Some(0) {
            p.push(format!("`{field}.limit` is 0 in {at}; it must be at least 1 (leave it out to take every row)"));
        }
        p
    }
}

/// What an example says about the model's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Exactly this label (index into the model's labels).
    Label(usize),
    /// Any label but entailment.
    NotEntailment,
}

/// One labelled pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Premise (evidence).
    pub premise: String,
    /// Hypothesis (claim).
    pub hypothesis: String,
    /// The gold answer.
    pub target: Target,
}

impl Example {
    /// 1 for each model label the example allows, 0 elsewhere.
    pub fn allowed(&self, labels: &[String]) -> Vec<f32> {
        let ent = labels.iter().position(|l| l == "entailment");
        (0..labels.len())
            .map(|i| match &self.target {
                Target::Label(j) => (i == *j) as u8 as f32,
                Target::NotEntailment => (Some(i) != ent) as u8 as f32,
            })
            .collect()
    }

    /// Whether the gold answer is entailment.
    pub fn is_entailment(&self, labels: &[String]) -> bool {
        matches!(self.target, Target::Label(j) if labels.get(j).is_some_and(|l| l == "entailment"))
    }
}

/// A stable number in [0, 1) from a row's texts: the same on every machine and run.
pub fn split_key(premise: &str, hypothesis: &str) -> f64 {
    let h = Sha256::new().chain_update(premise.as_bytes()).chain_update([0u8]).chain_update(hypothesis.as_bytes()).finalize();
    u64::from_be_bytes(h[..8].try_into().unwrap_or([0; 8])) as f64 / 2f64.powi(64)
}

fn text_of(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => {
            let parts: Vec<&str> = a.iter().filter_map(|x| x.as_str()).collect();
            (parts.len() == a.len()).then(|| parts.join(" "))
        }
        _ => None,
    }
}

/// Reads a set, applying its label map, split and limit. Every bad line is an error with its number.
pub fn load(set: &DataSet, data_dir: &Path, labels: &[String]) -> Result<Vec<Example>> {
    let path = data_dir.join(&set.path);
    if set.format == Format::Documents {
        return load_documents(set, &path, labels);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let (pkey, hkey) = match set.format {
        Format::Nli => ("premise", "hypothesis"),
        Format::Grounding => ("evidence", "claim"),
        Format::Attribution => ("references", "claim"),
        Format::Similarity => ("a", "b"),
        Format::Documents => unreachable!("read by load_documents"),
    };
    let bands = if set.format == Format::Similarity { score_bands(set, &path)? } else { vec![] };
    let mut keyed = vec![];
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |field: &str| format!("{}:{} field `{field}`", path.display(), n + 1);
        let row: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Error::Input { location: format!("{}:{}", path.display(), n + 1), reason: e.to_string() })?;
        if !set.splits.is_empty() {
            let split = row["split"].as_str().ok_or_else(|| Error::Input {
                location: at("split"),
                reason: "missing or not a string, and the set takes rows by `splits`".into(),
            })?;
            if !set.splits.iter().any(|x| x == split) {
                continue;
            }
        }
        let premise = text_of(&row[pkey]).ok_or_else(|| Error::Input { location: at(pkey), reason: "missing or not text".into() })?;
        let hypothesis = text_of(&row[hkey]).ok_or_else(|| Error::Input { location: at(hkey), reason: "missing or not text".into() })?;
        let label = match (set.format, &row["label"], &row["score"]) {
            (Format::Similarity, serde_json::Value::Null, serde_json::Value::Number(score)) => {
                let score = score.as_f64().unwrap_or(f64::NAN);
                if bands.is_empty() {
                    return Err(Error::Input { location: at("score"), reason: "a scored row needs score bands in the set's `labels`, such as \"4.6-5\" = \"entailment\"".into() });
                }
                match bands.iter().find(|(lo, hi, _)| *lo <= score && score <= *hi) {
                    Some((_, _, key)) => key.as_str(),
                    None => continue,
                }
            }
            _ => row["label"].as_str().ok_or_else(|| Error::Input { location: at("label"), reason: "missing or not a string".into() })?,
        };
        let mapped = set.labels.get(label).ok_or_else(|| Error::Input {
            location: at("label"),
            reason: format!("label `{label}` has no mapping in the set's `labels`"),
        })?;
        let target = match mapped.as_str() {
            "drop" => continue,
            "not_entailment" => Target::NotEntailment,
            l => Target::Label(labels.iter().position(|x| x == l).ok_or_else(|| Error::Input {
                location: at("label"),
                reason: format!("`{label}` maps to `{l}`, which is not one of the model's labels {labels:?}"),
            })?),
        };
        let key = match set.heldout_by {
            HeldoutBy::Pair => split_key(&premise, &hypothesis),
            HeldoutBy::Premise => split_key(&premise, ""),
        };
        let question = if set.questions {
            // The question as the grader takes it from a case's input (`claim_form::question_of`).
            crate::text::claim_form::question_of(row["question"].as_str().ok_or_else(|| Error::Input {
                location: at("question"),
                reason: "missing or not a string, and the set reads claims with their question (`questions = true`)".into(),
            })?)
        } else {
            None
        };
        let answer = hypothesis.clone();
        let reading = set.questions.then(|| crate::text::claim_form::read(&answer, true, question));
        let bare = reading.as_ref().is_some_and(|r| {
            matches!(r.form, Some(crate::text::claim_form::Form::WithQuestion | crate::text::claim_form::Form::AgainstOpposite))
        });
        let hypothesis = match (set.format, reading) {
            (Format::Attribution, _) => {
                let markers = crate::text::citations::find_markers(&hypothesis, &[]);
                if markers.is_empty() { hypothesis } else { crate::text::citations::strip_markers(&hypothesis, &markers) }
            }
            (_, Some(r)) => r.hypothesis,
            _ => hypothesis,
        };
        let held = key < set.heldout;
        let keep = match set.part {
            Part::All => true,
            Part::Train => !held,
            Part::Heldout => held,
        };
        if keep && set.answer_swaps {
            let entailed = matches!(target, Target::Label(j) if labels.get(j).is_some_and(|l| l == "entailment"));
            if let (true, true, Some(q)) = (bare, entailed, question) {
                let seed = (key * 2f64.powi(53)) as u64;
                if let Some(wrong) = crate::text::perturb::swap_answer(&answer, &premise, seed) {
                    let hypothesis = crate::text::claim_form::read(&wrong, true, Some(q)).hypothesis;
                    keyed.push((key, Example { premise: premise.clone(), hypothesis, target: Target::NotEntailment }));
                }
            }
        }
        if keep {
            if set.format == Format::Similarity {
                keyed.push((key, Example { premise: hypothesis.clone(), hypothesis: premise.clone(), target: target.clone() }));
            }
            keyed.push((key, Example { premise, hypothesis, target }));
        }
    }
    if let Some(limit) = set.limit {
        if keyed.len() > limit {
            // A stable subset, independent of the split: order by a second hash of the key.
            keyed.sort_by(|a, b| (a.0 * 7919.0).fract().total_cmp(&(b.0 * 7919.0).fract()));
            keyed.truncate(limit);
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
    }
    if set.distractors > 0.0 && keyed.len() > 4 {
        add_distractors(&mut keyed, set.distractors);
    }
    Ok(keyed.into_iter().map(|(_, e)| e).collect())
}

/// Fields a JSON Lines row of documents may carry its text in, tried in order.
const DOCUMENT_FIELDS: [&str; 4] = ["text", "document", "article", "evidence"];

/// The documents of a `documents` set: the `.txt` and `.md` files of a folder (sorted by name), or
/// the rows of a JSON Lines file.
pub fn read_documents(path: &Path) -> Result<Vec<String>> {
    let mut docs = vec![];
    if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| Error::io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "txt" || x == "md"))
            .collect();
        files.sort();
        for f in files {
            docs.push(std::fs::read_to_string(&f).map_err(|e| Error::io(&f, e))?);
        }
        if docs.is_empty() {
            return Err(Error::Input { location: path.display().to_string(), reason: "no .txt or .md document in this folder".into() });
        }
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| Error::Input { location: format!("{}:{}", path.display(), n + 1), reason: e.to_string() })?;
            let doc = DOCUMENT_FIELDS.iter().find_map(|f| text_of(&row[*f])).ok_or_else(|| Error::Input {
                location: format!("{}:{}", path.display(), n + 1),
                reason: format!("no document: expected one of the fields {}", DOCUMENT_FIELDS.join(", ")),
            })?;
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Pairs made from a `documents` set (see [`Format::Documents`]): each distinct document once, the
/// held-out part chosen by a hash of the document, then the label map and the limit.
fn load_documents(set: &DataSet, path: &Path, labels: &[String]) -> Result<Vec<Example>> {
    use crate::text::perturb::{synthesize, Options, Verdict};
    let mut docs = read_documents(path)?;
    let mut seen = std::collections::HashSet::new();
    docs.retain(|d| seen.insert(d.clone()));
    let docs: Vec<String> = docs
        .into_iter()
        .filter(|d| {
            let held = split_key(d, "") < set.heldout;
            match set.part {
                Part::All => true,
                Part::Train => !held,
                Part::Heldout => held,
            }
        })
        .collect();
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let pairs = synthesize(&refs, &Options::default());
    let index = |l: &str| labels.iter().position(|x| x == l);
    let mut keyed = vec![];
    for p in pairs {
        let verdict = match p.verdict {
            Verdict::Entailment => "entailment",
            Verdict::Contradiction => "contradiction",
            Verdict::NotEntailment => "not_entailment",
        };
        let mapped = set.labels.get(p.transform.name()).or_else(|| set.labels.get(verdict)).map(String::as_str).unwrap_or(verdict);
        let target = match mapped {
            "drop" => continue,
            "not_entailment" => Target::NotEntailment,
            l => match index(l) {
                Some(i) => Target::Label(i),
                None if l == "contradiction" => Target::NotEntailment,
                None => {
                    return Err(Error::Input {
                        location: path.display().to_string(),
                        reason: format!("`{}` pairs map to `{l}`, which is not one of the model's labels {labels:?}", p.transform.name()),
                    })
                }
            },
        };
        keyed.push((split_key(&p.premise, &p.claim), Example { premise: p.premise, hypothesis: p.claim, target }));
    }
    if let Some(limit) = set.limit {
        if keyed.len() > limit {
            keyed.sort_by(|a, b| (a.0 * 7919.0).fract().total_cmp(&(b.0 * 7919.0).fract()));
            keyed.truncate(limit);
        }
    }
    Ok(keyed.into_iter().map(|(_, e)| e).collect())
}

/// The score bands of a set's `labels` (keys `"LO-HI"`), checked: each band's bounds are numbers in
/// order, and no two bands overlap.
fn score_bands(set: &DataSet, path: &Path) -> Result<Vec<(f64, f64, String)>> {
    let mut bands = vec![];
    for key in set.labels.keys() {
        let Some((lo, hi)) = key.split_once('-') else { continue };
        let (Ok(lo), Ok(hi)) = (lo.trim().parse::<f64>(), hi.trim().parse::<f64>()) else { continue };
        if !(lo <= hi) {
            return Err(Error::Input { location: path.display().to_string(), reason: format!("score band `{key}`: its low end is above its high end") });
        }
        bands.push((lo, hi, key.clone()));
    }
    bands.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some(w) = bands.windows(2).find(|w| w[1].0 <= w[0].1) {
        return Err(Error::Input { location: path.display().to_string(), reason: format!("score bands `{}` and `{}` overlap", w[0].2, w[1].2) });
    }
    Ok(bands)
}

/// Pads a fraction of premises with premises of other rows (see [`DataSet::distractors`]); every
/// choice comes from a hash of the row, so the result is the same on every run.
fn add_distractors(keyed: &mut [(f64, Example)], fraction: f64) {
    let originals: Vec<String> = keyed.iter().map(|(_, e)| e.premise.clone()).collect();
    let n = originals.len();
    for (i, (key, ex)) in keyed.iter_mut().enumerate() {
        let h = Sha256::new().chain_update(key.to_bits().to_be_bytes()).chain_update(b"distractors").finalize();
        let word = |k: usize| u64::from_be_bytes(h[8 * k..8 * k + 8].try_into().unwrap_or([0; 8]));
        if (word(0) as f64 / 2f64.powi(64)) >= fraction {
            continue;
        }
        let count = 1 + (word(1) % 3) as usize;
        let mut parts: Vec<&str> = (0..count)
            .map(|k| {
                let j = (word(2).wrapping_add(k as u64 * 7919) % n as u64) as usize;
                originals[if j == i { (j + 1) % n } else { j }].as_str()
            })
            .collect();
        let at = (word(3) % (count as u64 + 1)) as usize;
        parts.insert(at, &originals[i]);
        ex.premise = parts.join(" ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(part: Part) -> DataSet {
        DataSet {
            name: None,
            path: "g.jsonl".into(),
            format: Format::Grounding,
            labels: [("supported", "entailment"), ("not_supported", "not_entailment"), ("irrelevant", "drop")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            heldout: 0.3,
            part,
            limit: None,
            distractors: 0.0,
            splits: vec![],
            heldout_by: HeldoutBy::Pair,
            questions: false,
            answer_swaps: false,
        }
    }

    /// `questions` reads a bare answer as the grader does, with its question; `answer_swaps` adds a
    /// wrong answer drawn from the evidence for each entailed bare one; sentences stay as written.
    #[test]
    fn answers_are_read_with_their_question_and_get_wrong_twins() {
        let dir = tempfile::tempdir().unwrap();
        let evidence = "Sydney is the largest city of Australia, but Canberra has been its capital since 1913.";
        let rows = [
            json_row(evidence, "What is the capital of Australia?", "Canberra", "supported"),
            json_row(evidence, "Is Canberra the capital of Australia?", "Yes", "supported"),
            json_row(evidence, "What is the capital of Australia?", "The capital of Australia is Melbourne.", "not_supported"),
        ];
        std::fs::write(dir.path().join("g.jsonl"), rows.join("\n")).unwrap();
        let labels: Vec<String> = ["entailment", "neutral", "contradiction"].iter().map(|s| s.to_string()).collect();
        let mut set = set(Part::All);
        set.questions = true;
        let plain = load(&set, dir.path(), &labels).unwrap();
        let hyps: Vec<&str> = plain.iter().map(|e| e.hypothesis.as_str()).collect();
        assert_eq!(hyps, ["What is the capital of Australia? Canberra", "Is Canberra the capital of Australia? yes", "The capital of Australia is Melbourne."]);
        set.answer_swaps = true;
        let swapped = load(&set, dir.path(), &labels).unwrap();
        let wrong: Vec<&str> = swapped.iter().filter(|e| e.target == Target::NotEntailment).map(|e| e.hypothesis.as_str()).collect();
        assert_eq!(swapped.len(), 5, "{swapped:?}");
        assert!(wrong.iter().any(|w| w.starts_with("What is the capital of Australia? ") && !w.ends_with("Canberra")), "{wrong:?}");
        assert!(wrong.contains(&"Is Canberra the capital of Australia? no"), "{wrong:?}");
        assert!(wrong.contains(&"The capital of Australia is Melbourne."), "a sentence keeps its own label and gets no twin");
        // Without a question field the set is refused with the line and field.
        std::fs::write(dir.path().join("g.jsonl"), format!("{{\"evidence\": \"{evidence}\", \"claim\": \"Canberra\", \"label\": \"supported\"}}")).unwrap();
        let e = load(&set, dir.path(), &labels).unwrap_err().to_string();
        assert!(e.contains(":1") && e.contains("`question`"), "{e}");
        let mut nli = set.clone();
        nli.format = Format::Nli;
        assert!(nli.problems("train[0]", &labels).iter().any(|p| p.contains("`train[0].questions`")));
    }

    fn json_row(evidence: &str, question: &str, claim: &str, label: &str) -> String {
        serde_json::json!({"evidence": evidence, "question": question, "claim": claim, "label": label}).to_string()
    }

    #[test]
    fn documents_give_pairs_by_verdict_held_out_by_document_and_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let docs = dir.path().join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        for d in 0..12 {
            let text = format!(
                "The council of town {d} approved the budget on Monday after a long debate. Mayor Alice Brown said the town would hire {} new teachers in 2025. \
                 She added that the plan was funded by a grant from the state of Ohio. The vote was 7 to 2, with John Smith voting against it.",
                10 + d
            );
            std::fs::write(docs.join(format!("{d}.txt")), text).unwrap();
        }
        std::fs::write(docs.join("notes.csv"), "not a document").unwrap();
        let labels: Vec<String> = ["entailment", "neutral", "contradiction"].iter().map(|s| s.to_string()).collect();
        let mut s = DataSet::documents(&docs);
        assert!(s.problems("train[0]", &labels).is_empty(), "{:?}", s.problems("train[0]", &labels));
        let all = load(&s, dir.path(), &labels).unwrap();
        let ent = all.iter().filter(|e| e.target == Target::Label(0)).count();
        assert!(ent > 0 && ent < all.len(), "both kinds of pair");
        assert!(all.iter().any(|e| e.target == Target::Label(2)), "contradictions keep their label");
        // A two-way model reads contradiction as not entailment.
        let two: Vec<String> = ["entailment", "not_entailment"].iter().map(|s| s.to_string()).collect();
        assert!(load(&s, dir.path(), &two).unwrap().iter().all(|e| matches!(e.target, Target::Label(0) | Target::NotEntailment)));
        // Held out by document: no premise sentence is on both sides.
        s.heldout = 0.5;
        s.part = Part::Train;
        let train: Vec<Example> = load(&s, dir.path(), &labels).unwrap();
        s.part = Part::Heldout;
        let held: Vec<Example> = load(&s, dir.path(), &labels).unwrap();
        assert!(!train.is_empty() && !held.is_empty());
        assert_eq!(train.len() + held.len(), all.len());
        let town = |e: &Example| e.premise.split("of town ").nth(1).and_then(|t| t.split(' ').next()).map(String::from);
        let train_towns: std::collections::BTreeSet<_> = train.iter().filter_map(town).collect();
        assert!(held.iter().filter_map(town).all(|t| !train_towns.contains(&t)));
        // Labels map verdicts or transforms; a key that is neither is a problem.
        s.part = Part::All;
        s.heldout = 0.0;
        s.labels = [("contradiction".to_string(), "drop".to_string())].into_iter().collect();
        assert!(load(&s, dir.path(), &labels).unwrap().iter().all(|e| e.target != Target::Label(2)));
        s.labels = [("name_swapp".to_string(), "drop".to_string())].into_iter().collect();
        let p = s.problems("train[0]", &labels);
        assert!(p.iter().any(|x| x.contains("name_swapp") && x.contains("name_swap")), "{p:?}");
        // A release split would be ignored: refused instead.
        s.labels.clear();
        s.splits = vec!["train".into()];
        assert!(s.problems("train[0]", &labels).iter().any(|x| x.contains("splits")));
        // An empty folder is an error that says what it wants.
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(read_documents(&empty).unwrap_err().to_string().contains(".txt"));
    }

    #[test]
    fn splits_take_the_release_split_and_premise_hashing_keeps_documents_together() {
        let dir = tempfile::tempdir().unwrap();
        let rows = [
            serde_json::json!({"split": "train", "evidence": "a", "claim": "x", "label": "supported"}),
            serde_json::json!({"split": "test", "evidence": "b", "claim": "y", "label": "supported"}),
            serde_json::json!({"split": "dev", "evidence": "c", "claim": "z", "label": "not_supported"}),
        ];
        std::fs::write(dir.path().join("g.jsonl"), rows.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n")).unwrap();
        let labels: Vec<String> = ["entailment", "neutral", "contradiction"].iter().map(|s| s.to_string()).collect();
        let mut s = set(Part::All);
        s.splits = vec!["train".into(), "dev".into()];
        let got: Vec<String> = load(&s, dir.path(), &labels).unwrap().into_iter().map(|e| e.premise).collect();
        assert_eq!(got, ["a", "c"]);
        // A row without the field is an error naming its line.
        std::fs::write(dir.path().join("g.jsonl"), "{\"evidence\": \"a\", \"claim\": \"x\", \"label\": \"supported\"}\n").unwrap();
        let err = load(&s, dir.path(), &labels).unwrap_err().to_string();
        assert!(err.contains("g.jsonl:1") && err.contains("split"), "{err}");

        // 40 documents, each with a right and a wrong claim: by premise, both claims of a document
        // fall on the same side; by pair, some documents are split across the sides.
        let rows: Vec<String> = (0..40)
            .flat_map(|d| {
                [
                    serde_json::json!({"evidence": format!("document {d}"), "claim": "right", "label": "supported"}).to_string(),
                    serde_json::json!({"evidence": format!("document {d}"), "claim": "wrong", "label": "not_supported"}).to_string(),
                ]
            })
            .collect();
        std::fs::write(dir.path().join("g.jsonl"), rows.join("\n")).unwrap();
        let premises = |by: HeldoutBy, part: Part| -> std::collections::BTreeSet<String> {
            let mut s = set(part);
            s.heldout = 0.5;
            s.heldout_by = by;
            load(&s, dir.path(), &labels).unwrap().into_iter().map(|e| e.premise).collect()
        };
        let (train, held) = (premises(HeldoutBy::Premise, Part::Train), premises(HeldoutBy::Premise, Part::Heldout));
        assert!(!train.is_empty() && !held.is_empty());
        assert!(train.is_disjoint(&held), "a document on both sides: {:?}", train.intersection(&held).collect::<Vec<_>>());
        assert!(!premises(HeldoutBy::Pair, Part::Train).is_disjoint(&premises(HeldoutBy::Pair, Part::Heldout)));
    }

    #[test]
    fn attribution_claims_lose_their_original_citation_markers() {
        let dir = tempfile::tempdir().unwrap();
        let rows = [
            serde_json::json!({"references": ["Title: A\n\nA text."], "claim": "Poor groups are hit hardest [4]. [1]", "label": "attributable"}),
            serde_json::json!({"references": ["r"], "claim": "No marker here, see [the docs].", "label": "not_attributable"}),
        ];
        std::fs::write(dir.path().join("a.jsonl"), rows.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n")).unwrap();
        let mut s = set(Part::All);
        s.path = "a.jsonl".into();
        s.format = Format::Attribution;
        s.heldout = 0.0;
        s.labels = [("attributable", "entailment"), ("not_attributable", "not_entailment")].iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let labels: Vec<String> = ["entailment", "neutral", "contradiction"].iter().map(|s| s.to_string()).collect();
        let ex = load(&s, dir.path(), &labels).unwrap();
        assert_eq!(ex.len(), 2);
        let hyps: Vec<&str> = ex.iter().map(|e| e.hypothesis.as_str()).collect();
        assert!(hyps.contains(&"Poor groups are hit hardest."), "{hyps:?}");
        assert!(hyps.contains(&"No marker here, see [the docs]."), "{hyps:?}");
    }

    #[test]
    fn maps_labels_and_splits_without_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = vec![];
        for i in 0..200 {
            let label = ["supported", "not_supported", "irrelevant"][i % 3];
            lines.push(serde_json::json!({"evidence": [format!("e{i}"), "x"], "claim": format!("c{i}"), "label": label}).to_string());
        }
        std::fs::write(dir.path().join("g.jsonl"), lines.join("\n")).unwrap();
        let labels: Vec<String> = ["entailment", "neutral", "contradiction"].iter().map(|s| s.to_string()).collect();
        let train = load(&set(Part::Train), dir.path(), &labels).unwrap();
        let held = load(&set(Part::Heldout), dir.path(), &labels).unwrap();
        let all = load(&set(Part::All), dir.path(), &labels).unwrap();
        assert_eq!(train.len() + held.len(), all.len());
        assert_eq!(all.len(), 134); // a third dropped
        assert!(held.len() > 20 && held.len() < 70, "{}", held.len());
        assert!(train.iter().all(|t| !held.iter().any(|h| h.premise == t.premise)));
        assert_eq!(all[0].premise.split(' ').count(), 2); // evidence list joined
        let ne = all.iter().find(|e| e.target == Target::NotEntailment).unwrap();
        assert_eq!(ne.allowed(&labels), vec![0.0, 1.0, 1.0]);
        let mut limited = set(Part::Train);
        limited.limit = Some(10);
        assert_eq!(load(&limited, dir.path(), &labels).unwrap().len(), 10);
        // Distractors pad about the asked fraction of premises, keep the original inside, and are stable.
        let mut padded = set(Part::All);
        padded.distractors = 0.5;
        let a = load(&padded, dir.path(), &labels).unwrap();
        assert_eq!(a, load(&padded, dir.path(), &labels).unwrap());
        let changed = a.iter().zip(&all).filter(|(x, y)| x.premise != y.premise).count();
        assert!(changed > 40 && changed < 95, "{changed}");
        assert!(a.iter().zip(&all).all(|(x, y)| x.premise.contains(&y.premise) && x.hypothesis == y.hypothesis && x.target == y.target));
    }

    #[test]
    fn similarity_scores_map_by_band_in_both_orders() {
        let dir = tempfile::tempdir().unwrap();
        let rows = [
            serde_json::json!({"a": "A plane is taking off.", "b": "An air plane is taking off.", "score": 5.0}),
            serde_json::json!({"a": "A man plays a flute.", "b": "A man plays a large flute.", "score": 3.8}),
            serde_json::json!({"a": "A cat sleeps.", "b": "Stocks fell.", "score": 0.0}),
            serde_json::json!({"a": "Two dogs run.", "b": "A woman cooks.", "score": 1.5}),
        ];
        std::fs::write(dir.path().join("s.jsonl"), rows.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n")).unwrap();
        let labels: Vec<String> = ["entailment", "neutral", "contradiction"].iter().map(|s| s.to_string()).collect();
        let mut s = set(Part::All);
        s.path = "s.jsonl".into();
        s.format = Format::Similarity;
        s.heldout = 0.0;
        s.labels = [("4.6-5", "entailment"), ("0-1.5", "not_entailment")].iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let ex = load(&s, dir.path(), &labels).unwrap();
        // 3.8 is in no band: left out; every other row in both orders.
        assert_eq!(ex.len(), 6, "{ex:?}");
        let plane: Vec<&Example> = ex.iter().filter(|e| e.premise.contains("plane")).collect();
        assert_eq!(plane.len(), 2);
        assert!(plane.iter().all(|e| e.target == Target::Label(0)));
        assert_ne!(plane[0].premise, plane[1].premise);
        assert_eq!(plane[0].premise, plane[1].hypothesis);
        assert_eq!(ex.iter().filter(|e| e.target == Target::NotEntailment).count(), 4);
        assert!(!ex.iter().any(|e| e.premise.contains("flute")));
        // Both orders of a row fall on the same side of a split.
        s.heldout = 0.5;
        s.part = Part::Heldout;
        let held = load(&s, dir.path(), &labels).unwrap();
        s.part = Part::Train;
        let train = load(&s, dir.path(), &labels).unwrap();
        assert_eq!(held.len() + train.len(), 6);
        assert!(held.iter().all(|h| !train.iter().any(|t| t.premise == h.hypothesis)));
        // Overlapping bands, and scores without bands, are errors that say so.
        s.part = Part::All;
        s.labels.insert("1-2".into(), "neutral".into());
        let e = load(&s, dir.path(), &labels).unwrap_err().to_string();
        assert!(e.contains("overlap") && e.contains("s.jsonl"), "{e}");
        s.labels = [("high", "entailment")].iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let e = load(&s, dir.path(), &labels).unwrap_err().to_string();
        assert!(e.contains("s.jsonl:1") && e.contains("score"), "{e}");
        // Rows with a label (MSRP) map like any other set.
        std::fs::write(dir.path().join("s.jsonl"), serde_json::json!({"a": "x y", "b": "y x", "label": "paraphrase"}).to_string()).unwrap();
        s.labels = [("paraphrase", "entailment")].iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert_eq!(load(&s, dir.path(), &labels).unwrap().len(), 2);
    }

    #[test]
    fn bad_lines_name_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("g.jsonl"), "{\"evidence\": \"a\", \"claim\": \"b\", \"label\": \"supported\"}\n{\"evidence\": \"a\", \"label\": \"supported\"}\n").unwrap();
        let labels: Vec<String> = vec!["entailment".into(), "neutral".into(), "contradiction".into()];
        let e = load(&set(Part::All), dir.path(), &labels).unwrap_err().to_string();
        assert!(e.contains("g.jsonl:2") && e.contains("claim"), "{e}");
        std::fs::write(dir.path().join("g.jsonl"), "{\"evidence\": \"a\", \"claim\": \"b\", \"label\": \"maybe\"}\n").unwrap();
        let e = load(&set(Part::All), dir.path(), &labels).unwrap_err().to_string();
        assert!(e.contains("g.jsonl:1") && e.contains("maybe"), "{e}");
    }
}

//! A grading run, start to end: what `candor grade` does, as a library call.
//!
//! [`grade`] owns every guarantee of a run, so that each holds in one place:
//! - the suite is read once, streaming (a file, or standard input as `-`); with `strict` it is
//!   checked whole before anything is graded;
//! - nothing written is a file read ([`crate::io::check_outputs`]); one writer per results file
//!   (an exclusive lock, taken before the file is touched);
//! - the run's manifest ([`crate::report::manifest`]) is written, marked incomplete, before the
//!   first result, and marked complete, with the results' sha256, when the suite is done;
//! - `resume` keeps every finished line as it is (only a torn tail after the last newline is cut),
//!   refuses results made another way (config, models, runtime, metrics, candor version, shard),
//!   and re-grades the cases whose suite line changed; results of changed or deleted cases are
//!   dropped at the end in one atomic rewrite;
//! - results go out a block at a time, each block checked for non-finite numbers first;
//! - the score cache is keyed by model, runtime and texts, and a damaged one is moved aside.
//!
//! The caller configures a [`RunSpec`], passes [`Events`] for progress and messages, and a stop flag
//! (set on Ctrl-C): the run stops after the block it is grading, its results kept.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! # fn main() -> candor::Result<()> {
//! let store = candor::models::ModelStore::from_env(candor::models::Registry::load(None)?);
//! let mut spec = candor::run::RunSpec::new("suite.jsonl", "results.jsonl");
//! spec.shard = Some("1/2".parse().map_err(|e: String| candor::Error::Input { location: "shard".into(), reason: e })?);
//! spec.resume = true;
//! let outcome = candor::run::grade(&store, &spec, &candor::run::Quiet, &AtomicBool::new(false))?;
//! println!("{}", outcome.summary.table());
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};


use crate::config::{ClaimSplit, GradeConfig};
use crate::engine::judge::JudgeModel;
use crate::engine::checker::DecoderChecker;
use crate::engine::spans::SpanTagger;
use crate::engine::{CrossEncoder, DeviceSpec, Embedder, RunStats};
use crate::error::{Error, Result};
use crate::kernels::int8::Precision;
use crate::graders::{Grader, MetricSet};
use crate::models::{ModelStore, ResolvedModel, Role};
use crate::report::manifest::{self, Manifest, ModelRecord, ResultsRecord, SuiteRecord};
use crate::report::{summary_path, Summary, SummaryBuilder};
use crate::suite::{Case, HashingReader, Shard, SuiteFormat, SuiteProblem, SuiteReader};

/// How many lines with one and the same problem a run lists before it only counts them.
pub const SAME_PROBLEM_LISTED: usize = 3;

/// Where the suite comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuiteSource {
    /// A file.
    File(PathBuf),
    /// Standard input (`-`).
    Stdin,
}

impl SuiteSource {
    /// `-` is standard input; anything else a path.
    pub fn from_arg(arg: &Path) -> Self {
        if arg.as_os_str() == "-" {
            SuiteSource::Stdin
        } else {
            SuiteSource::File(arg.to_path_buf())
        }
    }

    /// The suite as named in messages and the manifest.
    pub fn name(&self) -> String {
        match self {
            SuiteSource::File(p) => p.display().to_string(),
            SuiteSource::Stdin => "-".to_string(),
        }
    }
}

/// Everything that configures a run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The suite.
    pub suite: SuiteSource,
    /// How the suite is written (default: by the file's extension, `.csv` and `.tsv`, else JSON
    /// Lines or a JSON array).
    pub format: Option<SuiteFormat>,
    /// Fields read under another name (`--field from=to`: the suite's `from` is candor's `to`).
    pub fields: Vec<(String, String)>,
    /// The results file (JSON Lines); its summary goes beside it ([`summary_path`]).
    pub results: PathBuf,
    /// The config file it came from, if any (checked not to be an output).
    pub config_file: Option<PathBuf>,
    /// The effective config.
    pub config: GradeConfig,
    /// The metrics to run.
    pub metrics: MetricSet,
    /// The device.
    pub device: DeviceSpec,
    /// Grade only this shard.
    pub shard: Option<Shard>,
    /// Keep the results already written and grade the rest.
    pub resume: bool,
    /// Refuse the suite, grading nothing, if any line is invalid.
    pub strict: bool,
    /// The persistent score cache, or none.
    pub cache: Option<PathBuf>,
}

impl RunSpec {
    /// A run of every metric with the default config on the default device, no cache.
    pub fn new(suite: impl AsRef<Path>, results: impl Into<PathBuf>) -> Self {
        Self {
            suite: SuiteSource::from_arg(suite.as_ref()),
            format: None,
            fields: Vec::new(),
            results: results.into(),
            config_file: None,
            config: GradeConfig::default(),
            metrics: MetricSet::default(),
            device: DeviceSpec::Auto,
            shard: None,
            resume: false,
            strict: false,
            cache: None,
        }
    }
}

/// Where a run stands, after each block.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Bytes of the suite read.
    pub bytes_read: u64,
    /// The suite's size, where it is a file.
    pub bytes_total: Option<u64>,
    /// Cases graded by this run.
    pub graded_now: usize,
    /// Results kept from earlier (resume).
    pub kept: usize,
    /// Claims graded by this run.
    pub claims: usize,
    /// Time since the run started grading.
    pub elapsed: Duration,
}

/// What a run tells its caller as it goes. Every method has a default that does nothing.
pub trait Events: Sync {
    /// A message for the user: a skipped line, a warning, what resume found.
    fn note(&self, _msg: &str) {}
    /// After each block written.
    fn progress(&self, _p: &Progress) {}
    /// During a block, as model batches finish (for a spinner).
    fn tick(&self) {}
}

/// Events that go nowhere.
pub struct Quiet;
impl Events for Quiet {}

/// A problem found on many lines of a suite: listed [`SAME_PROBLEM_LISTED`] times, then counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatedProblem {
    /// The field at fault, if one is.
    pub field: Option<String>,
    /// What is wrong.
    pub reason: String,
    /// On how many lines.
    pub lines: usize,
    /// The first line it was found on.
    pub first_line: usize,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The summary written beside the results (its manifest says whether the run completed).
    pub summary: Summary,
    /// Cases graded by this run.
    pub graded_now: usize,
    /// Results kept from an earlier run (resume).
    pub kept: usize,
    /// Cases re-graded because their suite line changed since (resume).
    pub regraded: usize,
    /// Results dropped because their case is no longer in the suite (resume).
    pub dropped: usize,
    /// The suite's invalid lines, skipped.
    pub problems: Vec<SuiteProblem>,
    /// Problems found on more lines than were listed ([`SAME_PROBLEM_LISTED`]), in the order first
    /// seen: what the run counted rather than listed.
    pub repeated_problems: Vec<RepeatedProblem>,
    /// Top-level fields of the suite that candor does not know, with how many cases carry each.
    pub unknown_fields: BTreeMap<String, usize>,
    /// Cases without an `id`, given their line number as id.
    pub ids_from_lines: usize,
    /// Fields set aside for another that takes precedence ((field, graded instead) -> cases).
    pub shadowed_fields: BTreeMap<(String, String), usize>,
    /// Known fields read under their name from another spelling ((as written, as read) -> cases).
    pub respelt_fields: BTreeMap<(String, String), usize>,
    /// Stopped by the stop flag before the end of the suite.
    pub interrupted: bool,
    /// NLI work.
    pub nli: RunStats,
    /// Embedding work.
    pub embed: RunStats,
    /// Judge work (rubrics, decomposition).
    pub judge: RunStats,
    /// Sentences the judge decomposed into claims.
    pub judge_generated: usize,
    /// NLI pairs answered from the score cache.
    pub cache_hits: usize,
    /// Wall time of the grading.
    pub wall: Duration,
    /// The summary file written.
    pub summary_file: PathBuf,
}

impl Outcome {
    /// True when the run graded nothing it could have: every line invalid, an empty suite, or no
    /// metric able to run on any case (each skipped: no contexts, no reference, ...). (A shard that
    /// no valid case hashes to is not that: its siblings hold them.)
    pub fn graded_nothing(&self, sharded: bool) -> bool {
        let o = &self.summary.overall;
        !self.interrupted && ((o.cases == 0 && (!self.problems.is_empty() || !sharded)) || (o.cases > 0 && o.graded() == 0))
    }
}

type Source = HashingReader<Box<dyn Read + Send>>;

/// The record of a model for the manifest.
fn record(m: &ResolvedModel) -> ModelRecord {
    ModelRecord { name: m.entry.name.clone(), id: m.id(), sha256: m.hashes.clone(), labels: m.entry.labels.clone() }
}

fn default_model(store: &ModelStore, configured: &Option<String>, role: Role) -> Result<ResolvedModel> {
    let name = match configured {
        Some(n) => n.clone(),
        None => store
            .registry()
            .default_for(role)
            .map(|e| e.name.clone())
            .ok_or_else(|| Error::Registry {
                path: "models.toml".into(),
                reason: format!("names no default {} model", format!("{role:?}").to_lowercase()),
            })?,
    };
    store.resolve(&name)
}

/// The embedding model `name` (else the config's, else the registry's default) on `device`, for
/// the commands that compare texts by embedding (`drift`, `coverage`).
pub fn load_embedder(store: &ModelStore, name: Option<String>, device: &DeviceSpec) -> Result<Embedder> {
    let m = default_model(store, &name, Role::Embed)?;
    Embedder::load(&m, &device.open()?, Precision::F32)
}

/// Grades a suite into a results file, as the module documentation says.
pub fn grade(store: &ModelStore, spec: &RunSpec, events: &dyn Events, stop: &AtomicBool) -> Result<Outcome> {
    let results_path = spec.results.as_path();
    let summary_file = summary_path(results_path);
    // Nothing this run writes may be a file it reads: checked before anything is opened.
    let mut inputs: Vec<(&str, &Path)> = Vec::new();
    if let SuiteSource::File(p) = &spec.suite {
        inputs.push(("suite", p));
    }
    inputs.extend(spec.config_file.as_deref().map(|c| ("config", c)));
    let mut outputs = vec![("results", results_path), ("summary", summary_file.as_path())];
    outputs.extend(spec.cache.as_deref().map(|c| ("score cache", c)));
    crate::io::check_outputs(&inputs, &outputs)?;

    // The suite is opened (not read) first: a missing suite or a directory fails before any work.
    let bytes_read = Arc::new(AtomicU64::new(0));
    let (raw, bytes_total): (Box<dyn Read + Send>, Option<u64>) = match &spec.suite {
        SuiteSource::File(p) => {
            let f = crate::suite::open(p)?;
            let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
            (Box::new(f), len)
        }
        SuiteSource::Stdin => (Box::new(std::io::stdin()), None),
    };
    let source: Source = HashingReader::new(raw, bytes_read.clone());
    let format = spec.format.unwrap_or_else(|| match &spec.suite {
        SuiteSource::File(p) => SuiteFormat::for_path(p),
        SuiteSource::Stdin => SuiteFormat::Json,
    });
    let mut reader = SuiteReader::with_format(BufReader::with_capacity(1 << 16, source), format)
        .with_renames(spec.fields.clone())
        .map_err(|reason| Error::Input { location: "--field".into(), reason })?;
    let suite_name = spec.suite.name();
    let suite_path = PathBuf::from(&suite_name);

    // With --strict the whole suite is read and checked before anything is graded (or written).
    let mut problems: Vec<SuiteProblem> = Vec::new();
    let mut buffered: Option<std::vec::IntoIter<Case>> = None;
    if spec.strict {
        let mut cases = Vec::new();
        for item in reader.by_ref() {
            match item {
                Ok(c) => cases.push(c),
                Err(p) => problems.push(p),
            }
        }
        reader.finish(&suite_path)?;
        let mut list: Vec<String> = problems.iter().map(|p| format!("{suite_name}: {p}")).collect();
        // Under strict, a field candor does not know is an error too (it would not be graded).
        list.extend(crate::suite::describe_unknown_fields(reader.unknown_fields()).map(|l| format!("{suite_name}: {l}")));
        list.extend(reader.unused_renames().map(|l| format!("{suite_name}: {l}")));
        if !list.is_empty() {
            return Err(Error::Input {
                location: suite_name,
                reason: format!("{} problem(s); nothing graded (strict):\n{}", list.len(), list.join("\n")),
            });
        }
        buffered = Some(cases.into_iter());
    }

    // Models.
    let dev = spec.device.open()?;
    let support_model = default_model(store, &spec.config.models.nli, Role::Nli)?;
    let (cfg, notes) = spec.config.with_model_defaults(&support_model.entry);
    for note in &notes {
        events.note(note);
    }
    let cfg = &cfg;
    let mut models = std::collections::BTreeMap::new();
    // A token classifier (LettuceDetect) grades support and marks spans; citations and the pairs of
    // consistency need a pair model: the registry's default NLI model.
    let (tagger, nli_model) = if support_model.entry.architecture.is_token_classifier() {
        events.note(&format!(
            "support: {} reads each output whole and marks hallucinated spans; citations are graded by the default NLI model",
            support_model.entry.name
        ));
        models.insert("spans".to_string(), record(&support_model));
        (Some(SpanTagger::load(&support_model, &dev)?), default_model(store, &None, Role::Nli)?)
    } else {
        (None, support_model)
    };
    // A chat model (role judge) named as the NLI model is asked Bespoke-MiniCheck's question.
    let (cross, checker);
    let nli: &dyn crate::graders::PairScorer = if nli_model.entry.role == Role::Judge {
        events.note(&format!(
            "support and citations: {} is asked Bespoke-MiniCheck's question (P(\"yes\") that the document supports the claim); its authors take the minimum over claims: [support] aggregation = \"min\"",
            nli_model.entry.name
        ));
        checker = DecoderChecker::load(&nli_model, &dev)?;
        &checker
    } else {
        let mut c = CrossEncoder::load(&nli_model, &dev, cfg.engine.precision)?;
        if cfg.engine.batch_tokens > 0 {
            c.batch.token_budget = cfg.engine.batch_tokens;
        }
        cross = c;
        &cross
    };
    models.insert("nli".to_string(), record(&nli_model));
    let embedder = if spec.metrics.consistency {
        let m = default_model(store, &cfg.models.embed, Role::Embed)?;
        models.insert("embed".to_string(), record(&m));
        Some(Embedder::load(&m, &dev, cfg.engine.precision)?)
    } else {
        None
    };
    let decomposes = spec.metrics.support && cfg.support.claims == ClaimSplit::Judge;
    let mut judge = if (spec.metrics.judge && !cfg.rubric.is_empty()) || decomposes {
        let m = default_model(store, &cfg.models.judge, Role::Judge)?;
        models.insert("judge".to_string(), record(&m));
        Some(JudgeModel::load(&m, &dev)?)
    } else {
        if spec.metrics == (MetricSet { support: false, citation: false, consistency: false, judge: true, checks: false }) {
            return Err(Error::Judge("--metrics judge: the config names no [[rubric]] to grade (see examples/judge.toml)".into()));
        }
        None
    };
    // The run's runtime is its pair scorer's own, as loaded (a network that does not take the
    // configured precision says so).
    let runtime = nli.runtime();
    let mut grader = Grader::new(nli, embedder.as_ref(), cfg.clone(), spec.metrics)?;
    if let Some(j) = judge.as_mut() {
        grader.set_judge(j);
    }
    if let Some(t) = &tagger {
        grader.set_span_tagger(t);
    }
    if let Some(path) = &spec.cache {
        match crate::engine::cache::ScoreCache::open(path) {
            Ok(cache) => {
                if let Some(r) = cache.recovered() {
                    events.note(&format!(
                        "warning: the score cache {} was damaged ({}); moved it aside to {} and started a fresh one",
                        path.display(),
                        r.reason,
                        r.aside.display()
                    ));
                }
                grader.set_cache(cache)
            }
            // Another run holds it (redb locks the file), or it cannot be written: grade without.
            Err(e) => events.note(&format!("warning: {e}; grading without the score cache")),
        }
    }

    let mut manifest = Manifest {
        candor: env!("CARGO_PKG_VERSION").to_string(),
        models,
        runtime,
        metrics: spec.metrics.names(),
        config_sha256: manifest::config_sha256(cfg),
        config: cfg.clone(),
        suite: SuiteRecord { path: suite_name.clone(), sha256: None },
        shard: spec.shard.map(|s| s.to_string()),
        complete: false,
        results: None,
    };

    // One writer per results file: the lock is taken before the file is cut or read.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(results_path)
        .map_err(|e| Error::io(results_path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Error::Input {
                location: results_path.display().to_string(),
                reason: "another candor run is writing these results; wait for it, or give this run another -o".into(),
            })
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(results_path, e)),
    }

    // Results kept from an earlier run: id -> hash of the line they were graded from.
    let mut done: HashMap<String, Option<String>> = HashMap::new();
    let mut kept_len = 0u64;
    let mut duplicates = 0usize;
    // The summary, counted as results are kept and written (rebuilt from the file only when lines
    // are dropped below).
    let mut counted = SummaryBuilder::new();
    if spec.resume && file.metadata().map_err(|e| Error::io(results_path, e))?.len() > 0 {
        let earlier = manifest::provenance(results_path)?;
        let Some(m) = earlier.manifest() else {
            return Err(Error::Input {
                location: results_path.display().to_string(),
                reason: format!(
                    "cannot resume: no run manifest in {} says how these results were made; grade without --resume (or to another -o)",
                    summary_file.display()
                ),
            });
        };
        let mut diffs = m.differences(&manifest);
        if m.shard != manifest.shard {
            diffs.push(format!(
                "shard {} vs {}",
                m.shard.as_deref().unwrap_or("none"),
                manifest.shard.as_deref().unwrap_or("none")
            ));
        }
        if !diffs.is_empty() {
            return Err(Error::Input {
                location: results_path.display().to_string(),
                reason: format!(
                    "cannot resume: these results were made differently from this run (earlier vs now: {}); resume with the same settings, or grade to another -o",
                    diffs.join("; ")
                ),
            });
        }
        let (results, len) = crate::report::finished_results(results_path)?;
        let torn = crate::report::cut_torn_tail(results_path, len)?;
        if torn > 0 {
            events.note(&format!("dropped the torn last {torn} byte(s) of {}", results_path.display()));
        }
        let lines = results.len();
        for r in results {
            counted.add(&r);
            done.insert(r.id, r.input_hash);
        }
        // Two lines for one id: a resume that re-graded a changed case was stopped before it
        // dropped the older line. The next compaction (below) keeps the last.
        duplicates = lines - done.len();
        kept_len = len;
        events.note(&format!("resuming: {} case(s) already graded in {}", done.len(), results_path.display()));
    } else {
        // The summary of an earlier run must not sit beside results it does not describe.
        crate::io::remove_if_present(&summary_file)?;
        file.set_len(0).map_err(|e| Error::io(results_path, e))?;
    }
    // From here on, a summary marked incomplete stands beside the results until the run completes.
    write_summary(&summary_file, SummaryBuilder::new().finish(0, grader.model_ids().clone()), &manifest)?;

    let mut out = BufWriter::new(&file);
    use std::io::Seek as _;
    out.seek(std::io::SeekFrom::Start(kept_len)).map_err(|e| Error::io(results_path, e))?;
    // Results kept as they are: not re-graded, not of a deleted case (known once the suite is read;
    // until then, progress counts every result found).
    let mut kept = done.len();
    let started = Instant::now();
    let mut seen: HashSet<String> = HashSet::new();
    let (mut graded_now, mut regraded) = (0usize, 0usize);
    let mut block: Vec<Case> = Vec::with_capacity(cfg.engine.block_cases);
    let mut interrupted = false;
    let (mut unknown_seen, mut warned) = (0usize, HashSet::<String>::new());
    // Each distinct problem (field, reason), in the order first seen, with its count.
    let mut repeats: Vec<RepeatedProblem> = Vec::new();
    let mut repeat_at: HashMap<(Option<String>, String), usize> = HashMap::new();
    let progress = |graded_now: usize, claims: usize| Progress {
        bytes_read: bytes_read.load(Ordering::Relaxed),
        bytes_total,
        graded_now,
        kept,
        claims,
        elapsed: started.elapsed(),
    };
    loop {
        let item = match buffered.as_mut() {
            Some(cases) => cases.next().map(Ok),
            None => reader.next(),
        };
        let end = item.is_none();
        if end && !spec.strict {
            if let Some(line) = reader.unused_renames() {
                events.note(&format!("warning: {suite_name}: {line}"));
            }
        }
        // A field candor does not know is said at once, the first time it is seen (a misspelt
        // `retrieved_context` would otherwise grade every case without its contexts).
        if reader.unknown_fields().len() > unknown_seen {
            let fresh: BTreeMap<String, usize> =
                reader.unknown_fields().iter().filter(|(k, _)| !warned.contains(*k)).map(|(k, v)| (k.clone(), *v)).collect();
            if let Some(line) = crate::suite::describe_unknown_fields_at(&fresh, reader.line()) {
                events.note(&format!("warning: {suite_name}: {line}"));
            }
            warned.extend(fresh.into_keys());
            unknown_seen = reader.unknown_fields().len();
        }
        match item {
            Some(Ok(case)) if spec.shard.is_some_and(|s| !s.contains(&case.id)) => {}
            Some(Ok(case)) => {
                seen.insert(case.id.clone());
                match done.get(&case.id) {
                    Some(h) if h.as_deref() == Some(case.input_hash.as_str()) => {}
                    Some(_) => {
                        regraded += 1;
                        block.push(case);
                    }
                    None => block.push(case),
                }
            }
            Some(Err(p)) => {
                // The same problem on many lines (a column named otherwise than candor reads it) is
                // listed three times, then counted: `candor grade` sums them up at the end.
                let i = *repeat_at.entry((p.field.clone(), p.reason.clone())).or_insert_with(|| {
                    repeats.push(RepeatedProblem { field: p.field.clone(), reason: p.reason.clone(), lines: 0, first_line: p.line });
                    repeats.len() - 1
                });
                let same = repeats[i].lines;
                repeats[i].lines += 1;
                if same < SAME_PROBLEM_LISTED {
                    events.note(&format!("{suite_name}: {p} (skipped)"));
                } else if same == SAME_PROBLEM_LISTED {
                    events.note(&format!("{suite_name}: line {}: the same problem again (skipped); further lines with it are counted, not listed", p.line));
                }
                problems.push(p);
            }
            None => {
                // A read error ended the suite early: what is graded so far is kept, nothing more
                // is graded, and the manifest still says incomplete.
                if let Err(e) = reader.finish(&suite_path) {
                    out.flush().map_err(|e| Error::io(results_path, e))?;
                    return Err(Error::Input {
                        location: results_path.display().to_string(),
                        reason: format!("{e}; the results so far are kept; once the suite can be read, finish with --resume"),
                    });
                }
            }
        }
        if block.len() >= cfg.engine.block_cases || (end && !block.is_empty()) {
            let fresh = grader.grade_block(&block, &|_| events.tick())?;
            // A NaN would be written as null and make the file unreadable: the whole block is
            // checked before any of it is written.
            for r in &fresh {
                r.check_finite()?;
            }
            for r in &fresh {
                serde_json::to_writer(&mut out, r).map_err(|e| Error::io(results_path, e.into()))?;
                out.write_all(b"\n").map_err(|e| Error::io(results_path, e))?;
                counted.add(r);
            }
            out.flush().map_err(|e| Error::io(results_path, e))?;
            graded_now += fresh.len();
            block.clear();
            events.progress(&progress(graded_now, grader.progress.claims));
            if stop.load(Ordering::SeqCst) {
                interrupted = true;
                break;
            }
        }
        if end {
            break;
        }
    }
    out.flush().map_err(|e| Error::io(results_path, e))?;
    drop(out);
    let wall = started.elapsed();
    if !interrupted {
        kept = done.keys().filter(|id| seen.contains(*id)).count().saturating_sub(regraded);
    }
    let unknown_fields = reader.unknown_fields().clone();
    let ids_from_lines = reader.ids_from_lines();
    let shadowed_fields = reader.shadowed_fields().clone();
    let respelt_fields = reader.respelt_fields().clone();
    let stats = |summary: Summary, dropped: usize, interrupted: bool| Outcome {
        summary,
        graded_now,
        kept,
        regraded,
        dropped,
        problems: problems.clone(),
        repeated_problems: repeats.iter().filter(|r| r.lines > SAME_PROBLEM_LISTED).cloned().collect(),
        unknown_fields: unknown_fields.clone(),
        ids_from_lines,
        shadowed_fields: shadowed_fields.clone(),
        respelt_fields: respelt_fields.clone(),
        interrupted,
        nli: grader.nli_stats(),
        embed: grader.embed_stats(),
        judge: grader.judge_stats().unwrap_or_default(),
        judge_generated: grader.judge_generated(),
        cache_hits: grader.cache_hits(),
        wall,
        summary_file: summary_file.clone(),
    };
    if interrupted {
        // The summary on disk stays the incomplete one: counts of a partial run are not a summary.
        return Ok(stats(counted.finish(problems.len(), grader.model_ids().clone()), 0, true));
    }

    // Results of cases changed since (superseded by a later line) or gone from the suite are
    // dropped in one atomic rewrite: a crash leaves the old file or the new one.
    let stale = done.keys().filter(|id| !seen.contains(*id)).count();
    if stale > 0 && (!problems.is_empty() || seen.is_empty()) {
        // Results whose case is not in the suite as read now: deleted, or unreadable this time (an
        // empty pipe, a cut file, a JSON array with one bad token). Nothing finished is dropped on
        // a reading that may be wrong: the run stays incomplete.
        return Err(Error::Input {
            location: results_path.display().to_string(),
            reason: format!(
                "{stale} finished result(s) have no case in the suite as read now ({} valid case(s), {} invalid line(s)); nothing was dropped and the run is not complete: fix the suite's invalid lines (or grade to another -o) and resume",
                seen.len(),
                problems.len()
            ),
        });
    }
    let dropped = if regraded > 0 || stale > 0 || duplicates > 0 { compact(results_path, &seen)? } else { 0 };
    // The rewrite replaced the locked file: the lock is taken again on the new one before the
    // summary is written, so no other run can start on it in between.
    let file = if dropped > 0 {
        let f = OpenOptions::new().read(true).write(true).open(results_path).map_err(|e| Error::io(results_path, e))?;
        f.try_lock().map_err(|_| Error::Input {
            location: results_path.display().to_string(),
            reason: "another candor run took these results while this one was finishing; its summary is not written".into(),
        })?;
        drop(file);
        f
    } else {
        file
    };
    file.sync_all().map_err(|e| Error::io(results_path, e))?;
    if dropped > 0 {
        counted = SummaryBuilder::new();
        crate::report::each_result(results_path, |r| counted.add(&r))?;
    }
    let mut summary = counted.finish(problems.len(), grader.model_ids().clone());
    summary.misspelt_fields = unknown_fields.keys().filter_map(|k| Some((k.clone(), crate::suite::meant_field(k)?.to_string()))).collect();
    // A check scoped to a segment no case has checked nothing (a misspelt `task=refund` for
    // `task=refunds`): said, not passed over.
    if spec.metrics.checks {
        for (i, c) in cfg.check.iter().enumerate() {
            if let Some(seg) = c.segment.as_ref().filter(|s| !summary.segments.contains_key(*s)) {
                events.note(&format!("warning: [[check]] {} applies to segment {seg}, which no case has: it checked nothing", i + 1));
            }
        }
    }
    manifest.suite.sha256 = Some(reader_hash(reader));
    manifest.complete = true;
    manifest.results = Some(ResultsRecord { cases: summary.overall.cases, sha256: manifest::file_sha256(results_path)? });
    write_summary(&summary_file, summary.clone(), &manifest)?;
    summary.run = Some(manifest);
    drop(file);
    Ok(stats(summary, dropped, false))
}

/// The hex sha256 of every byte the reader consumed.
fn reader_hash(reader: SuiteReader<BufReader<Source>>) -> String {
    reader.into_inner().into_inner().sha256()
}

fn write_summary(path: &Path, mut summary: Summary, manifest: &Manifest) -> Result<()> {
    summary.run = Some(manifest.clone());
    let bytes = serde_json::to_vec_pretty(&summary).map_err(|e| Error::io(path, e.into()))?;
    crate::io::write_atomic(path, &bytes)
}

/// Rewrites a results file keeping, for each id in `keep`, its last line, in the order those lines
/// stand; says how many lines were dropped. Atomic: a temporary file renamed over the old.
fn compact(results: &Path, keep: &HashSet<String>) -> Result<usize> {
    let bytes = std::fs::read(results).map_err(|e| Error::io(results, e))?;
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).collect();
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    let ids: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_slice::<Id>(l).map(|x| x.id).map_err(|e| Error::Input {
                location: format!("{}:{}", results.display(), i + 1),
                reason: format!("not a result line: {e}"),
            })
        })
        .collect::<Result<_>>()?;
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        last.insert(id, i);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut dropped = 0;
    for (i, (line, id)) in lines.iter().zip(&ids).enumerate() {
        if keep.contains(id) && last.get(id.as_str()) == Some(&i) {
            out.extend_from_slice(line);
            out.push(b'\n');
        } else {
            dropped += 1;
        }
    }
    crate::io::write_atomic(results, &out)?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str) -> String {
        format!(r#"{{"id":"{id}","segments":{{}},"metrics":{{}},"failures":[],"passed":true,"model":{{}}}}"#)
    }

    #[test]
    fn compact_keeps_the_last_line_of_each_kept_id_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        let text = [line("a"), line("b"), line("gone"), line("a").replace("true", "false"), line("c")].join("\n") + "\n";
        std::fs::write(&p, text).unwrap();
        let keep: HashSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(compact(&p, &keep).unwrap(), 2);
        let after = std::fs::read_to_string(&p).unwrap();
        let want = [line("b"), line("a").replace("true", "false"), line("c")].join("\n") + "\n";
        assert_eq!(after, want);
    }

    #[test]
    fn the_reader_hash_is_the_hash_of_the_bytes() {
        let text = b"{\"id\":\"1\",\"output\":\"x\"}\n\n{\"id\":\"2\",\"output\":\"y\"}".to_vec();
        let read = Arc::new(AtomicU64::new(0));
        let src: Source = HashingReader::new(Box::new(std::io::Cursor::new(text.clone())), read.clone());
        let mut r = SuiteReader::new(BufReader::new(src));
        assert_eq!(r.by_ref().filter(|c| c.is_ok()).count(), 2);
        assert_eq!(read.load(Ordering::Relaxed), text.len() as u64);
        use sha2::Digest as _;
        assert_eq!(reader_hash(r), manifest::hex(&sha2::Sha256::digest(&text)));
    }
}

//! The pair scheduler: every NLI question the graders ask, for a whole block of cases, goes to the
//! model in one call, sorted by length and de-duplicated, and stays cached for the rest of the suite.
//!
//! A question is (premise text, hypothesis). A premise longer than the window is cut into overlapping
//! chunks ([`crate::text::chunk_text`]); the answer is the best chunk: the highest P(entailment), with
//! the highest P(contradiction) over chunks beside it. The support and citation graders ask many of
//! the same questions (a context cited alone is also a support premise); they are scored once.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use crate::engine::cache::{self, ScoreCache};
use crate::engine::{CrossEncoder, RunStats};
use crate::error::{Error, Result};
use crate::text::{chunk_text, Chunk};

/// The model's answer for one (chunk, hypothesis) pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairScore {
    /// P(entailment).
    pub entail: f32,
    /// P(contradiction) (0 for models without that label).
    pub contradict: f32,
    /// Whether the pair was cut to fit the window.
    pub truncated: bool,
}

/// The answer for a (premise, hypothesis) question: the best chunk of the premise.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// Highest P(entailment) over the chunks.
    pub entail: f32,
    /// Byte span, in the premise, of the chunk with the highest P(entailment).
    pub entail_span: Range<usize>,
    /// Highest P(contradiction) over the chunks.
    pub contradict: f32,
    /// Byte span of the chunk with the highest P(contradiction).
    pub contradict_span: Range<usize>,
    /// SelfCheckGPT's contradiction score of the best-entailing chunk: P(c) / (P(c) + P(e)).
    pub contradict_vs_entail: f32,
    /// Whether any pair was cut to fit the window.
    pub truncated: bool,
}

/// Schedules and caches NLI pairs.
pub struct PairScheduler<'m> {
    model: &'m CrossEncoder,
    entail_ix: usize,
    contradict_ix: Option<usize>,
    window: usize,
    overlap: usize,
    chunks: HashMap<Arc<str>, Arc<Vec<Chunk>>>,
    scores: HashMap<(Arc<str>, Arc<str>), PairScore>,
    pending: Vec<(Arc<str>, Arc<str>)>,
    pending_set: HashSet<(Arc<str>, Arc<str>)>,
    /// What the model did so far.
    pub stats: RunStats,
    /// The persistent score cache, when one is open.
    cache: Option<ScoreCache>,
    /// Pairs answered from the persistent cache instead of the model.
    pub cache_hits: usize,
}

impl<'m> PairScheduler<'m> {
    /// A scheduler over `model`, cutting premises into `window`-token chunks overlapping by `overlap`.
    pub fn new(model: &'m CrossEncoder, window: usize, overlap: usize) -> Result<Self> {
        let entail_ix = model.label_index("entailment").ok_or_else(|| Error::Unsupported {
            model: model.id().to_string(),
            reason: format!("an NLI model needs an `entailment` label; it has {:?}", model.labels()),
        })?;
        let contradict_ix = model.label_index("contradiction");
        Ok(Self {
            model,
            entail_ix,
            contradict_ix,
            window,
            overlap,
            chunks: HashMap::new(),
            scores: HashMap::new(),
            pending: Vec::new(),
            pending_set: HashSet::new(),
            stats: RunStats::default(),
            cache: None,
            cache_hits: 0,
        })
    }

    /// Drops the scores and chunks kept in memory when a persistent cache holds the scores, and says
    /// whether it did (the grader calls it after each block, so that memory does not grow with the
    /// suite; a pair seen again later is then a cache hit). Without a cache they are kept, for
    /// suite-wide de-duplication.
    pub fn end_block(&mut self) -> bool {
        if self.cache.is_none() {
            return false;
        }
        self.scores = HashMap::new();
        self.chunks = HashMap::new();
        true
    }

    /// Keeps pair scores in `cache` across runs: pairs found there are not sent to the model, and
    /// new scores are added to it after each run.
    pub fn set_cache(&mut self, cache: ScoreCache) {
        self.cache = Some(cache);
    }

    /// What a cached score depends on besides its texts: the model (name and weights' hash), its
    /// token window and its labels.
    fn cache_namespace(&self) -> String {
        format!("nli|{}|window={}|labels={}", self.model.id(), self.model.tokenizer().max_tokens(), self.model.labels().join(","))
    }

    /// Whether `hypothesis` fits beside a full premise chunk without cutting the pair.
    pub fn fits_beside_chunk(&self, hypothesis: &str) -> bool {
        let tokenizer = self.model.tokenizer();
        // [CLS] chunk [SEP] hypothesis [SEP]: three special tokens at most.
        tokenizer.count_tokens(hypothesis).is_ok_and(|n| n + self.window + 3 <= tokenizer.max_tokens())
    }

    /// Whether the model tells contradiction apart.
    pub fn has_contradiction(&self) -> bool {
        self.contradict_ix.is_some()
    }

    /// The chunks of a premise (computed on first use).
    pub fn chunks_of(&self, premise: &str) -> Option<Arc<Vec<Chunk>>> {
        self.chunks.get(premise).cloned()
    }

    /// Queues questions. Premises are chunked (in parallel, once each) and the chunk pairs not yet
    /// scored are queued for [`PairScheduler::run`].
    pub fn ask(&mut self, questions: &[(String, String)]) -> Result<()> {
        let new_premises: Vec<&str> = {
            let mut seen = HashSet::new();
            questions
                .iter()
                .map(|(p, _)| p.as_str())
                .filter(|p| !self.chunks.contains_key(*p) && seen.insert(*p))
                .collect()
        };
        let tokenizer = self.model.tokenizer();
        let (window, overlap) = (self.window, self.overlap);
        let cut: Vec<(Arc<str>, Arc<Vec<Chunk>>)> = new_premises
            .par_iter()
            .map(|p| {
                let chunks = chunk_text(p, window, overlap, &|t| tokenizer.token_offsets(t))?;
                Ok((Arc::from(*p), Arc::new(chunks)))
            })
            .collect::<Result<_>>()?;
        self.chunks.extend(cut);
        for (premise, hypothesis) in questions {
            let chunks = self.chunks[premise.as_str()].clone();
            let hyp: Arc<str> = Arc::from(hypothesis.as_str());
            for c in chunks.iter() {
                let key = (Arc::from(&premise[c.span.clone()]), hyp.clone());
                if !self.scores.contains_key(&key) && self.pending_set.insert(key.clone()) {
                    self.pending.push(key);
                }
            }
        }
        Ok(())
    }

    /// Number of pairs queued and not yet scored.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Scores every queued pair in one model call; `progress` gets the pairs done after each batch.
    pub fn run(&mut self, progress: &(dyn Fn(usize) + Sync)) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut pending = std::mem::take(&mut self.pending);
        self.pending_set.clear();
        let mut keys: Vec<cache::Key> = Vec::new();
        if let Some(c) = &self.cache {
            let ns = self.cache_namespace();
            keys = pending.par_iter().map(|(p, h)| cache::key(&ns, &[p, h])).collect();
            let found = c.get_many(&keys)?;
            let mut missing = Vec::with_capacity(pending.len());
            let mut missing_keys = Vec::with_capacity(pending.len());
            for ((pair, key), hit) in pending.into_iter().zip(keys).zip(found) {
                match hit.as_deref().and_then(decode) {
                    Some(score) => {
                        self.scores.insert(pair, score);
                        self.cache_hits += 1;
                    }
                    None => {
                        missing.push(pair);
                        missing_keys.push(key);
                    }
                }
            }
            pending = missing;
            keys = missing_keys;
            if pending.is_empty() {
                return Ok(());
            }
        }
        let pairs: Vec<(&str, &str)> = pending.iter().map(|(p, h)| (&**p, &**h)).collect();
        let (probs, flags, stats) = self.model.predict_flagged(&pairs, progress)?;
        self.stats.add(&stats);
        let mut fresh = Vec::with_capacity(keys.len());
        for (i, ((key, p), truncated)) in pending.into_iter().zip(probs).zip(flags).enumerate() {
            let score = PairScore {
                entail: p[self.entail_ix],
                contradict: self.contradict_ix.map_or(0.0, |i| p[i]),
                truncated,
            };
            if let Some(k) = keys.get(i) {
                fresh.push((*k, encode(&score)));
            }
            self.scores.insert(key, score);
        }
        if let Some(c) = &self.cache {
            c.put_many(&fresh)?;
        }
        Ok(())
    }

    /// The answer to an asked and run question. An empty premise entails nothing.
    pub fn judge(&self, premise: &str, hypothesis: &str) -> Judgement {
        let mut j = Judgement {
            entail: 0.0,
            entail_span: 0..0,
            contradict: 0.0,
            contradict_span: 0..0,
            contradict_vs_entail: 0.5,
            truncated: false,
        };
        let Some(chunks) = self.chunks.get(premise) else { return j };
        let mut best_entail = -1.0f32;
        for c in chunks.iter() {
            let key: (Arc<str>, Arc<str>) = (Arc::from(&premise[c.span.clone()]), Arc::from(hypothesis));
            let Some(s) = self.scores.get(&key) else { continue };
            j.truncated |= s.truncated;
            if s.entail > best_entail {
                best_entail = s.entail;
                j.entail = s.entail;
                j.entail_span = c.span.clone();
                let denom = s.entail + s.contradict;
                j.contradict_vs_entail = if denom > 0.0 { s.contradict / denom } else { 0.5 };
            }
            if s.contradict > j.contradict {
                j.contradict = s.contradict;
                j.contradict_span = c.span.clone();
            }
        }
        j
    }
}

/// A pair score as the cache stores it: entailment and contradiction as little-endian f32 (bit-exact,
/// so cached and computed runs write the same results), then 1 if the input was cut, else 0.
fn encode(s: &PairScore) -> Vec<u8> {
    let mut v = Vec::with_capacity(9);
    v.extend_from_slice(&s.entail.to_le_bytes());
    v.extend_from_slice(&s.contradict.to_le_bytes());
    v.push(u8::from(s.truncated));
    v
}

/// Reads [`encode`]'s bytes; `None` for anything else (treated as a miss).
fn decode(b: &[u8]) -> Option<PairScore> {
    if b.len() != 9 || b[8] > 1 {
        return None;
    }
    let f = |i: usize| f32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    Some(PairScore { entail: f(0), contradict: f(4), truncated: b[8] == 1 })
}

//! The pair scheduler: every NLI question the graders ask, for a whole block of cases, goes to the
//! model in one call, sorted by length and de-duplicated, and stays cached for the rest of the suite.
//!
//! A question is (premise text, hypothesis). A premise longer than the window is cut into overlapping
//! chunks ([`crate::text::chunk_text`]); the answer is the best chunk: the highest P(entailment), with
//! the highest P(contradiction) over chunks beside it. Every chunk fits the model's window together
//! with its hypothesis: a hypothesis too long to sit beside a full window gets smaller windows (in
//! steps of [`WINDOW_STEP`] tokens, so that hypotheses of similar length share one chunking), and a
//! pair is cut by the model (`truncated`) only when the hypothesis cannot fit beside even
//! [`MIN_PAIR_WINDOW`] tokens of premise. The support and citation graders ask many of
//! the same questions (a context cited alone is also a support premise); they are scored once.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use crate::engine::cache::{self, ScoreCache};
use crate::engine::RunStats;
use crate::graders::scorer::PairScorer;
use crate::error::{Error, Result};
use crate::models::WindowUnit;
use crate::text::{chunk_text, chunk_words, claim_form, Chunk};

/// The fewest premise tokens a chunk is given beside a long hypothesis; a hypothesis that leaves less
/// room than this is cut by the model instead (and the pair is flagged `truncated`).
pub const MIN_PAIR_WINDOW: usize = 32;

/// Windows shrunk for long hypotheses are multiples of this many tokens.
pub const WINDOW_STEP: usize = 16;

/// The premise window for a hypothesis of `hypothesis_tokens` tokens: the configured `window`, or
/// less where the hypothesis would not fit beside it in `pair_room` (the tokens a pair's two texts may
/// take together: [`crate::engine::batch::TextTokenizer::pair_room`]), never under [`MIN_PAIR_WINDOW`].
pub fn window_for(window: usize, pair_room: usize, hypothesis_tokens: usize) -> usize {
    let room = pair_room.saturating_sub(hypothesis_tokens);
    if room >= window {
        window
    } else {
        (room / WINDOW_STEP * WINDOW_STEP).max(MIN_PAIR_WINDOW).min(window)
    }
}

/// What the model reads of a premise chunk: the chunk without its markdown, as a claim is read
/// ([`claim_form::without_markup`]: a link or image as its text, a code span as its code, escapes
/// and emphasis marks off). Documentation pages carry link addresses by the dozen (ARES's
/// Databricks pages: 1,431 links, 59 kB of addresses in 111 documents), which take a small model's
/// window and read as words. The chunk's span, the evidence reported, stays the text as written.
fn read_premise(chunk: &str) -> Arc<str> {
    claim_form::without_markup(chunk).map_or_else(|| Arc::from(chunk), Arc::from)
}

/// A premise cut for one window: its chunks, and what the model reads of each
/// ([`read_premise`], made once when the premise is cut, not at each question or judgement).
#[derive(Debug)]
struct Cut {
    chunks: Vec<Chunk>,
    read: Vec<Arc<str>>,
}

impl Cut {
    fn new(premise: &str, chunks: Vec<Chunk>) -> Self {
        let read = chunks.iter().map(|c| read_premise(&premise[c.span.clone()])).collect();
        Cut { chunks, read }
    }

    /// Each chunk with the text the model reads of it.
    fn pairs(&self) -> impl Iterator<Item = (&Chunk, &Arc<str>)> {
        self.chunks.iter().zip(&self.read)
    }
}

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
    model: &'m dyn PairScorer,
    entail_ix: usize,
    contradict_ix: Option<usize>,
    window: usize,
    overlap: usize,
    /// What `window` and `overlap` count.
    unit: WindowUnit,
    /// Chunks of each premise, by premise and window.
    chunks: HashMap<Arc<str>, HashMap<usize, Arc<Cut>>>,
    /// The premise window of each hypothesis asked so far.
    windows: HashMap<Arc<str>, usize>,
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
    /// A scheduler over `model`, cutting premises into chunks of `window` units (tokens or words)
    /// overlapping by `overlap`.
    pub fn new(model: &'m dyn PairScorer, window: usize, overlap: usize, unit: WindowUnit) -> Result<Self> {
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
            unit,
            chunks: HashMap::new(),
            windows: HashMap::new(),
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
        self.windows = HashMap::new();
        true
    }

    /// Keeps pair scores in `cache` across runs: pairs found there are not sent to the model, and
    /// new scores are added to it after each run.
    pub fn set_cache(&mut self, cache: ScoreCache) {
        self.cache = Some(cache);
    }

    /// What a cached score depends on besides its texts: the model (name and weights' hash), its
    /// token window, its labels, and the runtime that computed it (device, number type, kernels: an
    /// f16 GPU score is not a CPU one).
    fn cache_namespace(&self) -> String {
        format!(
            "nli|{}|window={}|labels={}|runtime={}",
            self.model.id(),
            self.model.tokenizer().max_tokens(),
            self.model.labels().join(","),
            self.model.runtime()
        )
    }

    /// Whether `hypothesis` fits beside a full premise chunk without cutting the pair.
    pub fn fits_beside_chunk(&self, hypothesis: &str) -> bool {
        let tokenizer = self.model.tokenizer();
        tokenizer.count_tokens(hypothesis).is_ok_and(|n| n + self.window() <= tokenizer.pair_room())
    }

    /// The premise window for a hypothesis that fits beside a full one, in tokens; for a window
    /// counted in words, the tokens of that many English words (about 1.3 a word), at most the room
    /// of a pair.
    pub fn window(&self) -> usize {
        match self.unit {
            WindowUnit::Tokens => self.window,
            WindowUnit::Words => (self.window * 13 / 10).min(self.model.tokenizer().pair_room()),
        }
    }

    /// Whether the model tells contradiction apart.
    pub fn has_contradiction(&self) -> bool {
        self.contradict_ix.is_some()
    }

    /// The chunks a premise was cut into for `hypothesis` (once both were asked).
    fn chunks_of(&self, premise: &str, hypothesis: &str) -> Option<Arc<Cut>> {
        let window = *self.windows.get(hypothesis)?;
        self.chunks.get(premise)?.get(&window).cloned()
    }

    /// Queues questions. Each hypothesis gets its premise window, premises are chunked for it (in
    /// parallel, once each per window) and the chunk pairs not yet scored are queued for
    /// [`PairScheduler::run`].
    pub fn ask(&mut self, questions: &[(String, String)]) -> Result<()> {
        let tokenizer = self.model.tokenizer();
        let (window, overlap, pair_room) = (self.window, self.overlap, tokenizer.pair_room());
        let new_hypotheses: Vec<&str> = {
            let mut seen = HashSet::new();
            questions.iter().map(|(_, h)| h.as_str()).filter(|h| !self.windows.contains_key(*h) && seen.insert(*h)).collect()
        };
        let sized: Vec<(Arc<str>, usize)> = new_hypotheses
            .par_iter()
            .map(|h| {
                // Counted in words, the window is the words'; the tokens a chunk may take are all the
                // room the hypothesis leaves.
                let tokens = match self.unit {
                    WindowUnit::Tokens => window,
                    WindowUnit::Words => pair_room,
                };
                Ok((Arc::from(*h), window_for(tokens, pair_room, tokenizer.count_tokens(h)?)))
            })
            .collect::<Result<_>>()?;
        self.windows.extend(sized);
        let new_premises: Vec<(&str, usize)> = {
            let mut seen = HashSet::new();
            questions
                .iter()
                .map(|(p, h)| (p.as_str(), self.windows[h.as_str()]))
                .filter(|&(p, w)| !self.chunks.get(p).is_some_and(|c| c.contains_key(&w)) && seen.insert((p, w)))
                .collect()
        };
        let cut: Vec<(&str, usize, Arc<Cut>)> = new_premises
            .par_iter()
            .map(|&(p, w)| {
                let offsets = |t: &str| tokenizer.token_offsets(t);
                let chunks = match self.unit {
                    WindowUnit::Tokens => chunk_text(p, w, overlap, &offsets)?,
                    WindowUnit::Words => chunk_words(p, window, overlap, w, &offsets)?,
                };
                Ok((p, w, Arc::new(Cut::new(p, chunks))))
            })
            .collect::<Result<_>>()?;
        for (p, w, chunks) in cut {
            self.chunks.entry(Arc::from(p)).or_default().insert(w, chunks);
        }
        for (premise, hypothesis) in questions {
            let w = self.windows[hypothesis.as_str()];
            let cut = self.chunks[premise.as_str()][&w].clone();
            let hyp: Arc<str> = Arc::from(hypothesis.as_str());
            for (_, read) in cut.pairs() {
                let key = (read.clone(), hyp.clone());
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
        let (probs, flags, stats) = self.model.score_pairs(&pairs, progress)?;
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
        let Some(cut) = self.chunks_of(premise, hypothesis) else { return j };
        let mut best_entail = -1.0f32;
        let hyp: Arc<str> = Arc::from(hypothesis);
        for (c, read) in cut.pairs() {
            let key: (Arc<str>, Arc<str>) = (read.clone(), hyp.clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::TextTokenizer;

    #[test]
    fn long_hypotheses_get_smaller_windows() {
        assert_eq!(window_for(192, 252, 20), 192, "a short claim fits beside the full window");
        assert_eq!(window_for(192, 252, 60), 192);
        assert_eq!(window_for(192, 252, 61), 176, "one token more: the next step down");
        assert_eq!(window_for(192, 252, 200), 48);
        assert_eq!(window_for(192, 252, 240), MIN_PAIR_WINDOW, "no room: the smallest window, cut by the model");
    }

    /// With the shipped tokenizer: every chunk of a long passage fits beside its hypothesis as the
    /// model reads the pair (nothing truncated), whatever the hypothesis' length, until the
    /// hypothesis leaves less than the smallest window.
    #[test]
    fn every_pair_fits_the_model_window() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/candor-nli-minilm/tokenizer.json");
        let plain = TextTokenizer::from_file(&path, 256).unwrap();
        // A model that reads the pair written into a prompt (HHEM's) has less room for the texts.
        let prompted = plain.clone().with_pair_prompt("<pad> Is the hypothesis true given the premise?\n\nPremise: {text1}\n\nHypothesis: {text2}").unwrap();
        assert!(prompted.pair_room() + 10 < plain.pair_room());
        let mut passage = String::new();
        for i in 0..121 {
            passage.push_str(&format!(
                "Section {i}: employees of Kaspersky-Ørsted GmbH (founded 1987) may claim €{i},250.50 in travel costs, e.g. \
                 for trains — \"within {i} working days\". "
            ));
            if i % 17 == 0 {
                passage.push_str(&"unbrokenwordwithoutanyspaces".repeat(30));
                passage.push('\n');
            }
        }
        for (tok, words) in [&plain, &prompted].into_iter().flat_map(|t| [1usize, 10, 40, 80, 90, 94, 98, 150, 260].map(|w| (t, w))) {
            let hypothesis = (0..words).map(|i| format!("claim{i}")).collect::<Vec<_>>().join(" ");
            let n = tok.count_tokens(&hypothesis).unwrap();
            let w = window_for(192, tok.pair_room(), n);
            let chunks = chunk_text(&passage, w, 32, &|t| tok.token_offsets(t)).unwrap();
            assert!(chunks.len() > 20);
            let pairs: Vec<(&str, &str)> = chunks.iter().map(|c| (&passage[c.span.clone()], hypothesis.as_str())).collect();
            let enc = tok.encode_pairs(&pairs).unwrap();
            let fits = n + MIN_PAIR_WINDOW <= tok.pair_room();
            for (e, c) in enc.iter().zip(&chunks) {
                assert!(c.tokens <= w);
                assert!(!fits || !e.truncated, "hypothesis of {n} tokens, window {w}, chunk of {} tokens: cut", c.tokens);
            }
            // A hypothesis that leaves less than the smallest window is cut by the model (flagged),
            // though a short chunk (the last, or one that ends early at a boundary) may still fit.
            assert!(fits || enc.iter().filter(|e| e.truncated).count() * 2 > enc.len(), "hypothesis of {n} tokens in {room}", room = tok.pair_room());
            // The passage's last words are in the last chunk.
            assert!(passage[chunks.last().unwrap().span.clone()].ends_with("within 120 working days\"."));
        }
    }

    /// Chunks counted in words (MiniCheck-Flan-T5's 500) still fit the model beside every
    /// hypothesis: the scheduler gives them all the room the hypothesis leaves, and a window of words
    /// that would not fit is cut again by tokens.
    #[test]
    fn word_windows_fit_the_model_window() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/candor-nli-minilm/tokenizer.json");
        let tok = TextTokenizer::from_file(&path, 256).unwrap();
        let passage: String = (0..300).map(|i| format!("Clause {i} sets the refund window at {i} days for orders over €{i}0. ")).collect();
        for words in [1usize, 20, 50] {
            let hypothesis = (0..words).map(|i| format!("claim{i}")).collect::<Vec<_>>().join(" ");
            let n = tok.count_tokens(&hypothesis).unwrap();
            let w = window_for(tok.pair_room(), tok.pair_room(), n);
            // 120 words would be ~200 tokens of this text: more than the room beside most hypotheses.
            let chunks = chunk_words(&passage, 120, 0, w, &|t| tok.token_offsets(t)).unwrap();
            let pairs: Vec<(&str, &str)> = chunks.iter().map(|c| (&passage[c.span.clone()], hypothesis.as_str())).collect();
            for (e, c) in tok.encode_pairs(&pairs).unwrap().iter().zip(&chunks) {
                assert!(c.tokens <= w && !e.truncated, "hypothesis of {n} tokens, room {w}, chunk of {} tokens", c.tokens);
                assert!(crate::text::word_offsets(&passage[c.span.clone()]).len() <= 120);
            }
            assert!(passage[chunks.last().unwrap().span.clone()].ends_with("orders over €2990."));
        }
    }
}

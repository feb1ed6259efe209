//! The graders: factual support, citation entailment and semantic consistency, as
//! `graders.md` defines them, producing result lines as `suite-format.md` defines them.
//!
//! A [`Grader`] takes cases a block at a time. For a block it first asks every NLI question that
//! any metric of any case needs, then runs the model once over all of them (sorted by length,
//! de-duplicated, cached across the suite: see [`pairs`]), embeds the texts that need vectors in one
//! call, and only then assembles each case's result. So grading costs model time, not overhead.

pub mod checks;
pub mod citation;
pub mod consistency;
pub mod decompose;
pub mod judge;
pub mod pairs;
pub mod results;
pub mod scorer;
pub mod span_support;
pub mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rayon::prelude::*;

use crate::config::GradeConfig;
use crate::engine::{Embedder, RunStats};
use crate::error::{Error, Result};
use crate::models::WindowUnit;
use crate::suite::Case;
use crate::text::about_sources::{self, About};
use crate::text::{analyse_output, claim_form, code, find_markers, strip_markers, CharIndex, Sentence};
pub use pairs::{Judgement, PairScheduler};
pub use results::{CaseResult, Failure, Outcome};
pub use scorer::PairScorer;

pub use crate::config::{label_key, BUILT_IN_METRICS};

/// Which metrics to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricSet {
    /// Factual support of claims by contexts.
    pub support: bool,
    /// Citation entailment (ALCE).
    pub citation: bool,
    /// Consistency with the reference and the samples, and answer relevance.
    pub consistency: bool,
    /// The rubric metrics of the configuration (`[[rubric]]`), graded by the judge model.
    pub judge: bool,
    /// The deterministic checks of the configuration (`[[check]]`) and of each case (`checks`).
    pub checks: bool,
}

impl Default for MetricSet {
    fn default() -> Self {
        Self { support: true, citation: true, consistency: true, judge: true, checks: true }
    }
}

impl MetricSet {
    /// The metrics of the set by name, in the fixed order (the built-in ones, then `judge`).
    pub fn names(&self) -> Vec<String> {
        let on = [self.support, self.citation, self.consistency, self.checks];
        let built_in = BUILT_IN_METRICS.iter().zip(on).filter(|(_, on)| *on).map(|(n, _)| n.to_string());
        built_in.chain(self.judge.then(|| "judge".to_string())).collect()
    }
}

impl std::str::FromStr for MetricSet {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let mut m = MetricSet { support: false, citation: false, consistency: false, judge: false, checks: false };
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "support" => m.support = true,
                "citation" => m.citation = true,
                "consistency" => m.consistency = true,
                "judge" => m.judge = true,
                "checks" => m.checks = true,
                "all" => m = MetricSet::default(),
                other => return Err(format!("unknown metric `{other}` (known: {}, judge)", BUILT_IN_METRICS.join(", "))),
            }
        }
        if !(m.support || m.citation || m.consistency || m.judge || m.checks) {
            return Err("no metric named".into());
        }
        Ok(m)
    }
}

/// A case, analysed: its sentences and what its metrics will ask.
struct Prepared<'c> {
    case: &'c Case,
    sentences: Vec<Sentence>,
    /// The output without citation markers.
    clean_output: String,
    /// Whether the output carries any citation marker.
    has_markers: bool,
    /// Indices of the sentences checked as claims: the claim sentences, or, in a short answer with
    /// none ("Paris."), every sentence that is not a question.
    claim_ix: Vec<usize>,
    /// What the support grader checks: the claim sentences, or the judge's atomic facts of them.
    support_claims: Vec<Claim>,
    /// The whole output as one hypothesis, when `[support] whole_output` is on, the output is more
    /// than its one claim, and it fits beside a context window.
    whole: Option<String>,
    /// The question the case's input asks, which bare answers are graded with.
    question: Option<&'c str>,
    /// Whether the output claims nothing checkable (an abstention, punctuation, a bare "yes" with no
    /// question): it has no claims, and is never supported.
    claims_nothing: bool,
    /// Indices of the sentences not graded because they speak of the sources: those saying the
    /// sources lack something, and every sentence of an output that does nothing else.
    about_sources: Vec<usize>,
    /// Byte ranges of the sentences of each context (filled when support or citation runs), where
    /// evidence sentences are picked ([`support::evidence_windows`]).
    context_sentences: Vec<Vec<std::ops::Range<usize>>>,
    /// Each context's sentences indexed for claims repeated word for word
    /// ([`support::verbatim_sentence`]; filled with `context_sentences`).
    verbatim: Vec<support::VerbatimIndex>,
    /// The longest evidence window, in characters (about a chunk's worth).
    window_chars: usize,
    /// How many evidence sentences of each context a claim is read against (`[support]
    /// evidence_sentences`).
    evidence_sentences: usize,
}

/// One claim the support grader checks.
#[derive(Debug, Clone)]
struct Claim {
    /// The claim text.
    text: String,
    /// What the NLI model reads for it: the text, or another form of it ([`claim_form`]).
    hypothesis: String,
    /// How `hypothesis` was made from `text`, when it differs.
    form: Option<results::ClaimForm>,
    /// For a bare "yes" or "no" to a yes/no question: the question with the opposite answer, which
    /// the claim is weighed against ([`results::ClaimForm::AgainstOpposite`]); for a claim negated
    /// at an auxiliary: the claim without its "not" ([`results::ClaimForm::AgainstAffirmative`]).
    opposite: Option<String>,
    /// Byte range of its sentence in the output.
    span: std::ops::Range<usize>,
    /// Where it came from, when the judge decomposes claims.
    from: Option<results::ClaimFrom>,
}

impl Claim {
    /// A claim graded in the form [`claim_form`] gives it: a bare "yes" or "no" with its question
    /// and against the opposite answer, another bare answer with its question, a claim without its
    /// leading answer particle, a claim negated at an auxiliary against its affirmative, or as it
    /// stands.
    fn new(text: String, span: std::ops::Range<usize>, is_claim: bool, question: Option<&str>, from: Option<results::ClaimFrom>) -> Self {
        let reading = claim_form::read(&text, is_claim, question);
        Claim { text, hypothesis: reading.hypothesis, form: reading.form, opposite: reading.opposite, span, from }
    }

    /// What the NLI model reads for this claim: its hypothesis, and the one it is weighed against;
    /// nothing for a code block, which is looked up in the sources instead.
    fn hypotheses(&self) -> impl Iterator<Item = &String> {
        let read = self.form != Some(results::ClaimForm::Code);
        std::iter::once(&self.hypothesis).chain(&self.opposite).filter(move |_| read)
    }
}

/// Writes the lengths of time of each claim's hypotheses as the case's contexts write them
/// ([`crate::text::specifics::Lengths::in_source_units`]: "2 years" as a context's "24 months");
/// the contexts are read only when a claim states a length.
fn in_source_units(claims: &mut [Claim], case: &Case) {
    use crate::text::specifics::Lengths;
    let read = |c: &Claim| c.form != Some(results::ClaimForm::Code);
    if !claims.iter().any(|c| read(c) && Lengths::any_in(&c.hypothesis)) {
        return;
    }
    let contexts: Vec<&str> = case.contexts.iter().map(|c| c.text.as_str()).collect();
    let lengths = Lengths::new(&contexts);
    for c in claims.iter_mut().filter(|c| read(c)) {
        if let Some(h) = lengths.in_source_units(&c.hypothesis) {
            c.hypothesis = h;
            c.opposite = c.opposite.take().map(|o| lengths.in_source_units(&o).unwrap_or(o));
            c.form.get_or_insert(results::ClaimForm::UnitsAsInSources);
        }
    }
}

impl<'c> Prepared<'c> {
    fn new(case: &'c Case) -> Self {
        Self::with_question(case, case.input.as_deref().and_then(claim_form::question_of))
    }

    /// A case analysed with `question` as the question its bare answers are read with.
    fn with_question(case: &'c Case, question: Option<&'c str>) -> Self {
        let ids: Vec<&str> = case.contexts.iter().map(|c| c.id.as_str()).collect();
        let markers = find_markers(&case.output, &ids);
        let clean_output = strip_markers(&case.output, &markers);
        let sentences = analyse_output(&case.output, &ids);
        let mut claim_ix: Vec<usize> = (0..sentences.len()).filter(|&i| sentences[i].is_claim).collect();
        if claim_ix.is_empty() {
            claim_ix = (0..sentences.len()).filter(|&i| !sentences[i].text.trim_end().ends_with('?')).collect();
        }
        // Sentences about the sources (`text::about_sources`): one saying they lack something is an
        // abstention, not a claim; an output whose every claim speaks of the sources answers nothing.
        let about = about_sources::in_order(sentences.iter().map(|s| s.text.as_str()));
        // A code block is graded beside the claims (looked up in the sources): an output with one
        // answers something.
        let has_code = sentences.iter().any(|s| code::is_fenced(&s.text));
        let only_about_sources = !has_code && !claim_ix.is_empty() && claim_ix.iter().all(|&i| about[i].is_some());
        let lacks = |i: &usize| about[*i] == Some(About::Lacks);
        let about_sources: Vec<usize> = claim_ix.iter().copied().filter(|i| only_about_sources || lacks(i)).collect();
        claim_ix.retain(|i| !lacks(i));
        // An output of questions alone ("Which city do you mean?") asserts nothing either: it fails as
        // `no_claim` rather than being skipped, which would leave it out of the pass rate.
        // Nor does an output that only restates what the case asks ("Shallow clone table
        // performance." to the query "shallow clone table performance").
        let claims_nothing = claim_form::claims_nothing(&clean_output, question.is_some())
            || (claim_ix.is_empty() && !sentences.is_empty())
            || only_about_sources
            || case.input.as_deref().is_some_and(|input| claim_form::restates_question(&clean_output, input));
        if claims_nothing {
            claim_ix.clear();
        }
        // Support reads the claims and, beside them, the output's fenced code blocks (checked line
        // by line against the sources, `text::code`): code copied from elsewhere is not grounded.
        let mut support_claims: Vec<Claim> = (0..sentences.len())
            .filter(|i| claim_ix.contains(i) || (!claims_nothing && code::is_fenced(&sentences[*i].text)))
            .map(|i| Claim::new(sentences[i].text.clone(), sentences[i].span.clone(), sentences[i].is_claim, question, None))
            .collect();
        in_source_units(&mut support_claims, case);
        Prepared {
            case,
            sentences,
            clean_output,
            has_markers: !markers.is_empty(),
            claim_ix,
            support_claims,
            whole: None,
            question,
            claims_nothing,
            about_sources,
            context_sentences: vec![],
            verbatim: vec![],
            window_chars: 0,
            evidence_sentences: 0,
        }
    }

    /// The evidence windows of a claim's hypothesis in context `k` (none before the context
    /// sentences are filled).
    fn evidence_windows(&self, k: usize, hypothesis: &str) -> Vec<std::ops::Range<usize>> {
        match (self.case.contexts.get(k), self.context_sentences.get(k)) {
            (Some(c), Some(sentences)) => {
                support::evidence_windows(&c.text, sentences, hypothesis, self.evidence_sentences, self.window_chars)
            }
            _ => vec![],
        }
    }

    /// The (context, sentence) pair the decomposition prompt shows for each claim sentence: the
    /// previous sentence of the output as context.
    /// Code blocks are not decomposed.
    fn decomposition_items(&self) -> Vec<(usize, (String, String))> {
        self.claim_ix
            .iter()
            .filter(|&&i| !code::is_fenced(&self.sentences[i].text))
            .map(|&i| (i, (if i > 0 { self.sentences[i - 1].text.clone() } else { String::new() }, self.sentences[i].text.clone())))
            .collect()
    }

    /// What SelfCheckGPT checks against each sample: the claim sentences, each without a leading
    /// answer particle as support reads it, or the whole output when it has none.
    fn selfcheck_units(&self) -> Vec<&str> {
        consistency::selfcheck_units(self.claims().map(|s| claim_form::strip_particle(&s.text).unwrap_or(&s.text)), &self.clean_output)
    }

    /// Whether the output holds more than support grades: a sentence that is neither a claim, nor a
    /// code block, nor one that speaks of the sources (a question, a fragment).
    fn beyond_claims(&self) -> bool {
        self.sentences
            .iter()
            .enumerate()
            .any(|(i, s)| !self.claim_ix.contains(&i) && !self.about_sources.contains(&i) && !code::is_fenced(&s.text))
    }

    /// The sentences left ungraded as speaking of the sources, for the results.
    fn about_sources_read(&self) -> Vec<results::SentenceRef> {
        let chars = CharIndex::new(&self.case.output);
        self.about_sources
            .iter()
            .map(|&i| {
                let s = &self.sentences[i];
                results::SentenceRef { text: s.text.clone(), span: [chars.offset(s.span.start), chars.offset(s.span.end)] }
            })
            .collect()
    }

    fn claims(&self) -> impl Iterator<Item = &Sentence> {
        self.claim_ix.iter().map(|&i| &self.sentences[i])
    }

    fn context(&self, id: &str) -> Option<&str> {
        self.case.contexts.iter().find(|c| c.id == id).map(|c| c.text.as_str())
    }

    /// The premise for a set of cited ids: their passages joined by new lines, in citing order.
    fn joint(&self, ids: &[String]) -> String {
        ids.iter().filter_map(|id| self.context(id)).collect::<Vec<_>>().join("\n")
    }

    fn is_empty(&self) -> bool {
        self.case.output.trim().is_empty()
    }
}

/// Progress of a grading run, for a progress bar.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Claims graded so far.
    pub claims: usize,
}

/// Grades blocks of cases with one NLI model and, for consistency, one embedder.
pub struct Grader<'m> {
    sched: PairScheduler<'m>,
    /// A token classifier that grades support instead of the pair model (LettuceDetect).
    tagger: Option<&'m crate::engine::spans::SpanTagger>,
    judge: Option<&'m mut crate::engine::judge::JudgeModel>,
    embedder: Option<&'m Embedder>,
    cfg: GradeConfig,
    metrics: MetricSet,
    /// candor.toml's checks, compiled.
    checks: Vec<checks::Check>,
    models: BTreeMap<String, String>,
    vectors: HashMap<String, Arc<Vec<f32>>>,
    /// Counters for progress reports.
    pub progress: Progress,
    embed_stats: RunStats,
}

impl<'m> Grader<'m> {
    /// A grader over loaded models. The embedder is needed only for consistency.
    pub fn new(nli: &'m dyn PairScorer, embedder: Option<&'m Embedder>, cfg: GradeConfig, metrics: MetricSet) -> Result<Self> {
        let unit = cfg.chunking.unit;
        let window = if cfg.chunking.window > 0 {
            cfg.chunking.window
        } else if unit == WindowUnit::Words {
            return Err(Error::Unsupported {
                model: nli.id().to_string(),
                reason: "chunking.unit = \"words\" needs a chunking.window (MiniCheck-Flan-T5's authors use 500)".into(),
            });
        } else {
            nli.tokenizer().max_tokens() * 3 / 4
        };
        // A window in words is cut again by tokens wherever it would not fit, so only a token window
        // can leave no room for the claim.
        if unit == WindowUnit::Tokens && window + 16 > nli.tokenizer().max_tokens() {
            return Err(Error::Unsupported {
                model: nli.id().to_string(),
                reason: format!(
                    "chunking.window = {window} leaves no room for the claim in the model's {} tokens",
                    nli.tokenizer().max_tokens()
                ),
            });
        }
        let sched = PairScheduler::new(nli, window, cfg.chunking.overlap, unit)?;
        let mut models = BTreeMap::new();
        models.insert("nli".to_string(), nli.id().to_string());
        if let (true, Some(e)) = (metrics.consistency, embedder) {
            models.insert("embed".to_string(), e.id().to_string());
        }
        let checks = cfg
            .check
            .iter()
            .enumerate()
            .map(|(i, c)| checks::Check::new(c).map_err(|e| Error::Input { location: format!("candor.toml [[check]] {}", i + 1), reason: e }))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            sched,
            tagger: None,
            judge: None,
            embedder,
            cfg,
            metrics,
            checks,
            models,
            vectors: HashMap::new(),
            progress: Progress::default(),
            embed_stats: RunStats::default(),
        })
    }

    /// Grades the configuration's rubric metrics with this judge model.
    pub fn set_judge(&mut self, judge: &'m mut crate::engine::judge::JudgeModel) {
        self.models.insert("judge".to_string(), judge.id().to_string());
        self.judge = Some(judge);
    }

    /// Grades support with this token classifier instead of the pair model (which still grades
    /// citations and consistency).
    pub fn set_span_tagger(&mut self, tagger: &'m crate::engine::spans::SpanTagger) {
        self.models.insert("spans".to_string(), tagger.id().to_string());
        self.tagger = Some(tagger);
    }

    /// What the judge computed so far.
    pub fn judge_stats(&self) -> Option<RunStats> {
        self.judge.as_ref().map(|j| j.stats)
    }

    /// Sentences the judge decomposed into claims so far.
    pub fn judge_generated(&self) -> usize {
        self.judge.as_ref().map_or(0, |j| j.generated)
    }

    /// The model ids written into every result.
    pub fn model_ids(&self) -> &BTreeMap<String, String> {
        &self.models
    }

    /// What the NLI model computed so far.
    pub fn nli_stats(&self) -> RunStats {
        self.sched.stats
    }

    /// Keeps NLI pair scores in a persistent cache across runs (see `engine::cache`).
    pub fn set_cache(&mut self, cache: crate::engine::cache::ScoreCache) {
        self.sched.set_cache(cache);
    }

    /// NLI pairs answered from the persistent cache so far.
    pub fn cache_hits(&self) -> usize {
        self.sched.cache_hits
    }

    /// What the embedder computed so far.
    pub fn embed_stats(&self) -> RunStats {
        self.embed_stats
    }

    /// Grades a block of cases; results come back in the order of `cases`. `on_pairs` is called
    /// with the number of NLI pairs done after each batch, and with 0 after each sentence the judge
    /// decomposes (so a progress bar moves during decomposition too).
    pub fn grade_block(&mut self, cases: &[Case], on_pairs: &(dyn Fn(usize) + Sync)) -> Result<Vec<CaseResult>> {
        // `[support] short_answers = "bare"`: bare answers are read alone, no question carried (an
        // output of bare particles then claims nothing, as it would without an input).
        let bare = self.cfg.support.short_answers == crate::config::ShortAnswers::Bare;
        let mut prepared: Vec<Prepared> =
            cases.par_iter().map(|c| if bare { Prepared::with_question(c, None) } else { Prepared::new(c) }).collect();
        if self.metrics.support && self.cfg.support.claims == crate::config::ClaimSplit::Judge {
            self.decompose(&mut prepared, on_pairs)?;
        }
        if self.metrics.support && self.cfg.support.whole_output {
            for p in prepared.iter_mut().filter(|p| !p.support_claims.is_empty()) {
                let whole = p.clean_output.trim();
                let whole = claim_form::strip_particle(whole).unwrap_or(whole).to_string();
                let more = p.support_claims.len() >= 2 || p.support_claims[0].text.trim() != whole;
                p.whole = (more && self.sched.fits_beside_chunk(&whole)).then_some(whole);
            }
        }
        if self.metrics.support || self.metrics.citation {
            // About four characters a token: a window of sentences no longer than a chunk.
            let window_chars = self.sched.window() * 4;
            let count = self.cfg.support.evidence_sentences;
            prepared.par_iter_mut().filter(|p| !p.is_empty() && !p.claims_nothing).for_each(|p| {
                p.evidence_sentences = count;
                p.context_sentences = p.case.contexts.iter().map(|c| crate::text::split_sentences(&c.text)).collect();
                p.verbatim = p.case.contexts.iter().zip(&p.context_sentences).map(|(c, ss)| support::verbatim_index(&c.text, ss)).collect();
                p.window_chars = window_chars;
            });
        }
        let mut questions: Vec<(String, String)> = Vec::new();
        for p in prepared.iter().filter(|p| !p.is_empty()) {
            self.ask(p, &mut questions);
        }
        self.sched.ask(&questions)?;
        self.sched.run(on_pairs)?;
        if self.metrics.consistency {
            self.embed_block(&prepared)?;
        }
        // The span tagger's reading of each case it grades (those support settles without a model
        // are not read, nor an output too long for its window: support says so for that case).
        let mut detections: Vec<Option<crate::engine::spans::Detection>> = Vec::with_capacity(prepared.len());
        for p in &prepared {
            let read = match self.tagger.filter(|_| self.metrics.support) {
                Some(tagger) if !p.is_empty() && support::settled_without_model(p).is_none() && tagger.fits(&p.case.output) => {
                    let passages: Vec<&str> = p.case.contexts.iter().map(|c| c.text.as_str()).collect();
                    let d = tagger.detect(&passages, p.question, &p.case.output)?;
                    on_pairs(0);
                    Some(d)
                }
                _ => None,
            };
            detections.push(read);
        }
        let mut results: Vec<CaseResult> = prepared.iter().zip(&detections).map(|(p, d)| self.assemble(p, d.as_ref())).collect();
        if let (true, Some(judge)) = (self.metrics.judge, self.judge.as_deref_mut()) {
            let cases: Vec<&Case> = cases.iter().collect();
            for rubric in &self.cfg.rubric {
                let outcomes = judge::grade(judge, rubric, &cases)?;
                for (r, o) in results.iter_mut().zip(outcomes) {
                    if o.ran().is_some_and(|x| !x.passed) {
                        r.add_failure(Failure::RubricFailed);
                    }
                    if o.ran().is_some_and(|x| !x.injection.is_empty()) {
                        r.add_failure(Failure::JudgeInjection);
                    }
                    r.metrics.rubrics.insert(rubric.name.clone(), o);
                }
            }
            for (r, p) in results.iter_mut().zip(&prepared) {
                r.passed = !p.is_empty() && r.metrics.earned_pass() && !self.fails_for_no_claim(p);
            }
        }
        self.progress.claims += prepared.iter().map(|p| p.support_claims.len()).sum::<usize>();
        // With a persistent score cache, nothing of this block needs to stay in memory.
        if self.sched.end_block() {
            self.vectors = HashMap::new();
        }
        Ok(results)
    }

    /// Replaces each case's claim sentences by the judge's atomic facts of them (a sentence the judge
    /// does not split stays). Each distinct (context, sentence) is decomposed once per block.
    fn decompose(&mut self, prepared: &mut [Prepared], tick: &(dyn Fn(usize) + Sync)) -> Result<()> {
        let judge = self.judge.as_deref_mut().ok_or_else(|| {
            Error::Judge("`[support] claims = \"judge\"` needs the judge model, and none was loaded".into())
        })?;
        let mut items: Vec<(String, String)> = prepared
            .iter()
            .filter(|p| !p.is_empty() && p.case.contexts.iter().any(|c| !c.text.trim().is_empty()))
            .flat_map(Prepared::decomposition_items)
            .map(|(_, item)| item)
            .collect();
        items.sort_unstable();
        items.dedup();
        let facts = decompose::decompose(judge, &items, &|_| tick(0))?;
        let by: HashMap<&(String, String), &Option<Vec<String>>> = items.iter().zip(&facts).collect();
        for p in prepared.iter_mut() {
            let mut claims = Vec::new();
            // Code blocks are not decomposed: they stay as they were read, in their place.
            let code: Vec<Claim> = p.support_claims.drain(..).filter(|c| c.form == Some(results::ClaimForm::Code)).collect();
            for (i, item) in &p.decomposition_items() {
                let i = *i;
                let span = p.sentences[i].span.clone();
                match by.get(item) {
                    Some(Some(f)) => claims.extend(
                        f.iter().map(|t| Claim::new(t.clone(), span.clone(), true, p.question, Some(results::ClaimFrom::Judge))),
                    ),
                    _ => claims.push(Claim::new(
                        item.1.clone(),
                        span,
                        p.sentences[i].is_claim,
                        p.question,
                        Some(results::ClaimFrom::Sentence),
                    )),
                }
            }
            in_source_units(&mut claims, p.case);
            claims.extend(code);
            claims.sort_by_key(|c| c.span.start);
            p.support_claims = claims;
        }
        Ok(())
    }

    /// Every NLI question a case's metrics need.
    fn ask(&self, p: &Prepared, q: &mut Vec<(String, String)>) {
        let case = p.case;
        if self.metrics.support && self.tagger.is_none() {
            for h in p.support_claims.iter().flat_map(Claim::hypotheses).chain(&p.whole) {
                for c in &case.contexts {
                    q.push((c.text.clone(), h.clone()));
                }
            }
            for h in p.support_claims.iter().flat_map(Claim::hypotheses) {
                for (k, c) in case.contexts.iter().enumerate() {
                    for r in p.evidence_windows(k, h) {
                        q.push((c.text[r].to_string(), h.clone()));
                    }
                }
            }
        }
        if self.metrics.citation {
            for s in p.sentences.iter().filter(|s| !s.cites.is_empty()) {
                if s.cites.iter().any(|id| p.context(id).is_none()) {
                    continue;
                }
                q.push((p.joint(&s.cites), s.text.clone()));
                for (k, c) in case.contexts.iter().enumerate().filter(|(_, c)| s.cites.contains(&c.id)) {
                    for r in p.evidence_windows(k, &s.text) {
                        q.push((c.text[r].to_string(), s.text.clone()));
                    }
                }
                if s.cites.len() > 1 {
                    for c in &s.cites {
                        q.push((p.joint(std::slice::from_ref(c)), s.text.clone()));
                        let rest: Vec<String> = s.cites.iter().filter(|x| *x != c).cloned().collect();
                        q.push((p.joint(&rest), s.text.clone()));
                    }
                }
            }
        }
        if self.metrics.consistency {
            if let Some(plan) = consistency::reference_plan(p) {
                q.extend(plan.questions());
            }
            let max_chars = consistency::sample_window_chars(&self.sched);
            for sample in consistency::case_samples(case) {
                for h in p.selfcheck_units() {
                    for read in sample.reads(h, self.cfg.consistency.sample_sentences, max_chars).unwrap_or_default() {
                        q.push((read.to_string(), h.to_string()));
                    }
                }
            }
        }
    }

    fn embed_block(&mut self, prepared: &[Prepared]) -> Result<()> {
        let Some(embedder) = self.embedder else { return Ok(()) };
        let mut texts: Vec<&str> = Vec::new();
        for p in prepared {
            let case = p.case;
            let wants_reference = case.reference.as_deref().is_some_and(|r| !r.trim().is_empty());
            if wants_reference || case.input.is_some() {
                texts.push(&p.clean_output);
            }
            if wants_reference {
                texts.extend(case.reference.as_deref());
            }
            texts.extend(case.input.as_deref().filter(|i| !i.trim().is_empty()));
        }
        texts.retain(|t| !self.vectors.contains_key(*t));
        texts.sort_unstable();
        texts.dedup();
        if texts.is_empty() {
            return Ok(());
        }
        let (vecs, stats) = embedder.embed_with(&texts, &|_| {})?;
        self.embed_stats.add(&stats);
        for (t, v) in texts.into_iter().zip(vecs) {
            self.vectors.insert(t.to_string(), Arc::new(v));
        }
        Ok(())
    }

    /// Builds a case's result from the scored pairs.
    fn assemble(&self, p: &Prepared, detection: Option<&crate::engine::spans::Detection>) -> CaseResult {
        let case = p.case;
        let mut r = CaseResult::new(case, self.models.clone());
        if self.metrics.checks {
            if let Some(found) = checks::check_case(&self.checks, case) {
                found.checks.iter().filter_map(|c| c.failure).for_each(|f| r.add_failure(f));
                r.metrics.checks = Some(Outcome::Ran(found));
            }
        }
        if p.is_empty() {
            if self.metrics.support {
                r.metrics.support = Some(Outcome::skipped("empty output"));
            }
            if self.metrics.citation {
                r.metrics.citation = Some(Outcome::skipped("empty output"));
            }
            if self.metrics.consistency {
                r.metrics.consistency = Some(Outcome::skipped("empty output"));
            }
            r.add_failure(Failure::EmptyOutput);
            r.passed = false;
            return r;
        }
        let mut truncated = false;
        if self.metrics.support {
            let (outcome, fails, t) = match self.tagger {
                Some(_) => span_support::grade(p, detection, &self.cfg.support),
                None => support::grade(p, &self.sched, &self.cfg.support),
            };
            truncated |= t;
            r.metrics.support = Some(outcome);
            fails.into_iter().for_each(|f| r.add_failure(f));
        }
        if self.metrics.citation {
            let (outcome, fails, t) = grade_citation(p, &self.sched, &self.cfg);
            truncated |= t;
            r.metrics.citation = Some(outcome);
            fails.into_iter().for_each(|f| r.add_failure(f));
        }
        if self.metrics.consistency {
            let (outcome, fails, t) = consistency::grade(p, &self.sched, &self.vectors, &self.cfg.consistency);
            truncated |= t;
            r.metrics.consistency = Some(outcome);
            fails.into_iter().for_each(|f| r.add_failure(f));
        }
        if truncated {
            r.add_failure(Failure::TruncatedInput);
        }
        if self.fails_for_no_claim(p) {
            r.add_failure(Failure::NoClaim);
        }
        r.passed = r.metrics.earned_pass() && !self.fails_for_no_claim(p);
        r
    }

    /// Whether a case fails as `no_claim`: its output claims nothing and a grounding metric (support
    /// or citation) was asked for, which it cannot pass.
    fn fails_for_no_claim(&self, p: &Prepared) -> bool {
        p.claims_nothing && (self.metrics.support || self.metrics.citation)
    }
}

/// Citation entailment of one case.
fn grade_citation(p: &Prepared, sched: &PairScheduler, cfg: &GradeConfig) -> (Outcome<results::CitationResult>, Vec<Failure>, bool) {
    use results::{CitationResult, CitedSentence};
    let case = p.case;
    if !p.has_markers {
        return (Outcome::skipped("no citations"), vec![], false);
    }
    if p.claims_nothing {
        // "I don't know [1]." cites a passage for nothing: no citation to check, and the support
        // grader fails the case as `no_claim`.
        return (Outcome::skipped("claims nothing"), vec![], false);
    }
    let threshold = cfg.citation.entail_threshold;
    let mut truncated = false;
    let mut failures = vec![];
    let mut verdicts = vec![];
    let mut details = vec![];
    let mut uncited = 0;
    let output_chars = CharIndex::new(&case.output);
    for (i, s) in p.sentences.iter().enumerate() {
        // A sentence about the sources ("The context does not mention X [1].") claims nothing a
        // citation could entail, and is no uncited claim either.
        if p.about_sources.contains(&i) {
            continue;
        }
        if s.cites.is_empty() {
            if s.is_claim && cfg.citation.uncited == crate::config::Uncited::Missing {
                uncited += 1;
                details.push(CitedSentence {
                    text: s.text.clone(),
                    span: [output_chars.offset(s.span.start), output_chars.offset(s.span.end)],
                    cites: vec![],
                    fabricated: vec![],
                    entailed: false,
                    score: None,
                    irrelevant: vec![],
                    status: "missing".into(),
                });
                if !failures.contains(&Failure::MissingCitation) {
                    failures.push(Failure::MissingCitation);
                }
            }
            continue;
        }
        let fabricated: Vec<String> = s.cites.iter().filter(|id| p.context(id).is_none()).cloned().collect();
        // The cited passages entail the sentence when their joint text does, when one of them holds
        // the sentence word for word, or (with `[support] evidence_sentences`) when the sentences of
        // a cited passage that share most words with it do, as support reads claims.
        let entailment = |ids: &[String]| {
            let j = sched.judge(&p.joint(ids), &s.text);
            let cited = || p.case.contexts.iter().enumerate().filter(|(_, c)| ids.contains(&c.id));
            let windows = cited().flat_map(|(k, c)| {
                p.evidence_windows(k, &s.text).into_iter().map(move |r| sched.judge(&c.text[r], &s.text).entail)
            });
            // A sentence that repeats a sentence of a cited passage word for word is entailed by it.
            let verbatim = cited().any(|(k, c)| {
                p.verbatim.get(k).is_some_and(|index| support::verbatim_sentence(&c.text, index, &s.text).is_some())
            });
            // One a cited passage states word for word but for a negation, or with another name in
            // the place of one of its names, is not: it is denied.
            let indexed = || cited().filter_map(|(k, c)| Some((k, c.id.as_str(), c.text.as_str(), p.verbatim.get(k)?)));
            let denied = !verbatim && (support::denied_by(indexed(), &s.text).is_some() || support::swapped_by(indexed(), &s.text).is_some());
            (if verbatim { 1.0 } else if denied { 0.0 } else { windows.fold(j.entail, f32::max) }, j.truncated)
        };
        let joint_score = (fabricated.is_empty()).then(|| entailment(&s.cites).0);
        let mut entails = |ids: &[String]| {
            let (e, cut) = entailment(ids);
            truncated |= cut;
            e >= threshold
        };
        let v = citation::judge_sentence(&s.cites, !fabricated.is_empty(), &mut entails);
        let status = if !fabricated.is_empty() {
            "fabricated"
        } else if !v.entailed {
            "not_entailed"
        } else if !v.irrelevant.is_empty() {
            "irrelevant_citation"
        } else {
            "supported"
        };
        if !fabricated.is_empty() && !failures.contains(&Failure::FabricatedCitation) {
            failures.push(Failure::FabricatedCitation);
        }
        if fabricated.is_empty() && (!v.entailed || !v.irrelevant.is_empty()) && !failures.contains(&Failure::WrongCitation) {
            failures.push(Failure::WrongCitation);
        }
        details.push(CitedSentence {
            text: s.text.clone(),
            span: [output_chars.offset(s.span.start), output_chars.offset(s.span.end)],
            cites: s.cites.clone(),
            fabricated,
            entailed: v.entailed,
            score: joint_score,
            irrelevant: v.irrelevant.clone(),
            status: status.into(),
        });
        verdicts.push(v);
    }
    let (recall, precision) = citation::case_scores(&verdicts, uncited);
    let recall = recall.unwrap_or(0.0);
    let precision = precision.unwrap_or(0.0);
    let score = if recall + precision > 0.0 { 2.0 * recall * precision / (recall + precision) } else { 0.0 };
    let passed = recall >= cfg.citation.pass_recall && precision >= cfg.citation.pass_precision;
    let result = CitationResult { score, recall, precision, passed, sentences: details };
    (Outcome::Ran(result), failures, truncated)
}

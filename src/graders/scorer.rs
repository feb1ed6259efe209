//! The one thing the graders ask of an NLI model: label probabilities for (premise, hypothesis)
//! pairs, with the tokenizer that says how long a text is for it. The graders see the model only
//! through [`PairScorer`], so their logic (claims, chunking, evidence, verdicts, failure classes) is
//! tested with a scorer made for the test, no model loaded; [`crate::engine::CrossEncoder`] is the
//! scorer of real runs, on any device.

use crate::engine::{CrossEncoder, RunStats, TextTokenizer};
use crate::error::Result;

/// Label probabilities for (premise, hypothesis) pairs.
pub trait PairScorer: Sync {
    /// `name@sha-prefix` of the weights (results carry it; the score cache is keyed by it).
    fn id(&self) -> &str;
    /// The label names, in the order of each probability row; must include `entailment`.
    fn labels(&self) -> &[String];
    /// The tokenizer that measures texts for this model's window (chunking is by its tokens).
    fn tokenizer(&self) -> &TextTokenizer;
    /// Device, number type and kernel path: scores from two runtimes are not taken for each other.
    fn runtime(&self) -> String;
    /// One probability row per pair, in input order; for each pair whether it was cut to fit the
    /// window; and what was computed. `progress` gets the pairs done after each batch.
    fn score_pairs(&self, pairs: &[(&str, &str)], progress: &(dyn Fn(usize) + Sync)) -> Result<(Vec<Vec<f32>>, Vec<bool>, RunStats)>;

    /// Index of a label, e.g. `entailment`.
    fn label_index(&self, label: &str) -> Option<usize> {
        self.labels().iter().position(|l| l == label)
    }
}

impl PairScorer for CrossEncoder {
    fn id(&self) -> &str {
        CrossEncoder::id(self)
    }

    fn labels(&self) -> &[String] {
        CrossEncoder::labels(self)
    }

    fn tokenizer(&self) -> &TextTokenizer {
        CrossEncoder::tokenizer(self)
    }

    fn runtime(&self) -> String {
        CrossEncoder::runtime(self)
    }

    fn score_pairs(&self, pairs: &[(&str, &str)], progress: &(dyn Fn(usize) + Sync)) -> Result<(Vec<Vec<f32>>, Vec<bool>, RunStats)> {
        self.predict_flagged(pairs, progress)
    }
}

/// A chat model asked "is the claim consistent with the document?" (Bespoke-MiniCheck's way): its
/// P("yes") as entailment, the rest as not.
impl PairScorer for crate::engine::checker::DecoderChecker {
    fn id(&self) -> &str {
        crate::engine::checker::DecoderChecker::id(self)
    }

    fn labels(&self) -> &[String] {
        static LABELS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        LABELS.get_or_init(|| vec!["entailment".to_string(), "not_entailment".to_string()])
    }

    fn tokenizer(&self) -> &TextTokenizer {
        crate::engine::checker::DecoderChecker::tokenizer(self)
    }

    fn runtime(&self) -> String {
        crate::engine::checker::DecoderChecker::runtime(self).to_string()
    }

    fn score_pairs(&self, pairs: &[(&str, &str)], progress: &(dyn Fn(usize) + Sync)) -> Result<(Vec<Vec<f32>>, Vec<bool>, RunStats)> {
        let (p, cut, stats) = self.support(pairs, progress)?;
        Ok((p.into_iter().map(|y| vec![y, 1.0 - y]).collect(), cut, stats))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The graders, run on a scorer that reads words instead of a model.

    use super::*;
    use crate::config::GradeConfig;
    use crate::graders::{Failure, Grader, MetricSet, Outcome};

    /// A scorer for tests: a hypothesis is entailed when every word of it (lower-cased, 3 letters or
    /// more) is in the premise, contradicted when it holds a number the premise does not, neutral
    /// otherwise. It counts the pairs it was asked.
    pub struct WordScorer {
        tokenizer: TextTokenizer,
        labels: Vec<String>,
        pub asked: std::sync::atomic::AtomicUsize,
        pub runtime: String,
    }

    fn words(s: &str) -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() >= 3 || w.chars().all(|c| c.is_ascii_digit()) && !w.is_empty()).map(str::to_lowercase).collect()
    }

    impl WordScorer {
        pub fn new(dir: &std::path::Path) -> Self {
            // A word-level tokenizer with BERT's pair template: every word one token ([UNK]).
            let special = |t: &str, id: u32| serde_json::json!({"id": t, "ids": [id], "tokens": [t]});
            let tok = serde_json::json!({
                "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
                "pre_tokenizer": {"type": "Whitespace"},
                "post_processor": {"type": "TemplateProcessing",
                    "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                               {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                    "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                             {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                             {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
                    "special_tokens": {"[CLS]": special("[CLS]", 2), "[SEP]": special("[SEP]", 3)}},
                "decoder": null,
                "model": {"type": "WordLevel", "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}, "unk_token": "[UNK]"}
            });
            let path = dir.join("tokenizer.json");
            std::fs::write(&path, tok.to_string()).unwrap();
            Self {
                tokenizer: TextTokenizer::from_file(&path, 64).unwrap(),
                labels: vec!["entailment".into(), "neutral".into(), "contradiction".into()],
                asked: Default::default(),
                runtime: "test".into(),
            }
        }
    }

    impl PairScorer for WordScorer {
        fn id(&self) -> &str {
            "words@0"
        }
        fn labels(&self) -> &[String] {
            &self.labels
        }
        fn tokenizer(&self) -> &TextTokenizer {
            &self.tokenizer
        }
        fn runtime(&self) -> String {
            self.runtime.clone()
        }
        fn score_pairs(&self, pairs: &[(&str, &str)], _: &(dyn Fn(usize) + Sync)) -> Result<(Vec<Vec<f32>>, Vec<bool>, RunStats)> {
            self.asked.fetch_add(pairs.len(), std::sync::atomic::Ordering::Relaxed);
            let rows = pairs
                .iter()
                .map(|(p, h)| {
                    let pw = words(p);
                    let hw = words(h);
                    if hw.iter().all(|w| pw.contains(w)) {
                        vec![0.98, 0.01, 0.01]
                    } else if hw.iter().any(|w| w.chars().all(|c| c.is_ascii_digit()) && !pw.contains(w)) {
                        vec![0.01, 0.04, 0.95]
                    } else {
                        vec![0.05, 0.9, 0.05]
                    }
                })
                .collect();
            Ok((rows, vec![false; pairs.len()], RunStats { inputs: pairs.len(), computed: pairs.len(), ..Default::default() }))
        }
    }

    fn case(line: &str) -> crate::suite::Case {
        crate::suite::parse_case(1, line).unwrap()
    }

    #[test]
    fn support_and_citation_verdicts_come_from_the_scorer_without_a_model() {
        let dir = tempfile::tempdir().unwrap();
        let scorer = WordScorer::new(dir.path());
        let support_citation = MetricSet { support: true, citation: true, consistency: false, judge: false, checks: false };
        let mut grader = Grader::new(&scorer, None, GradeConfig::default(), support_citation).unwrap();
        let cases = [
            case(r#"{"id": "good", "output": "The office opens at 9 am [1].", "contexts": ["The office opens at 9 am on weekdays."]}"#),
            case(r#"{"id": "wrong", "output": "The office opens at 7 am [1].", "contexts": ["The office opens at 9 am on weekdays."]}"#),
            case(r#"{"id": "invented", "output": "The office serves breakfast [2].", "contexts": ["The office opens at 9 am on weekdays."]}"#),
        ];
        let results = grader.grade_block(&cases, &|_| {}).unwrap();
        assert!(scorer.asked.load(std::sync::atomic::Ordering::Relaxed) > 0);
        let support = |i: usize| match &results[i].metrics.support {
            Some(Outcome::Ran(s)) => s.clone(),
            other => panic!("support did not run: {other:?}"),
        };
        assert!(results[0].passed, "{:?}", results[0]);
        assert!(support(0).claims[0].score > 0.9);
        // A wrong number: contradicted, and flagged as a specific found in no source.
        assert!(!results[1].passed);
        assert!(results[1].failures.contains(&Failure::ContradictedClaim), "{:?}", results[1].failures);
        assert!(results[1].failures.contains(&Failure::UnsupportedSpecific), "{:?}", results[1].failures);
        // An unsupported claim citing a passage that does not exist.
        assert!(!results[2].passed);
        assert!(results[2].failures.contains(&Failure::UnsupportedClaim), "{:?}", results[2].failures);
        assert!(results[2].failures.contains(&Failure::FabricatedCitation), "{:?}", results[2].failures);
        // Every result names the scorer as its model.
        assert!(results.iter().all(|r| r.model.get("nli").map(String::as_str) == Some("words@0")));
    }

    /// The score cache answers a pair only for the model and runtime that computed it: the same
    /// scorer again is answered from the cache, the same weights on another runtime (another device,
    /// number type or kernel path) are asked afresh. (Before, the key ignored the runtime, so a CPU
    /// run could be served f16 GPU scores.)
    #[test]
    fn the_score_cache_is_keyed_by_runtime() {
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scores.redb");
        let cases = [case(r#"{"id": "a", "output": "The office opens at 9 am.", "contexts": ["The office opens at 9 am on weekdays."]}"#)];
        let only_support = MetricSet { support: true, citation: false, consistency: false, judge: false, checks: false };
        let grade = |scorer: &WordScorer| {
            let mut g = Grader::new(scorer, None, GradeConfig::default(), only_support).unwrap();
            g.set_cache(crate::engine::cache::ScoreCache::open(&path).unwrap());
            let r = g.grade_block(&cases, &|_| {}).unwrap();
            (r, g.cache_hits())
        };
        let first = WordScorer::new(dir.path());
        let (a, hits) = grade(&first);
        let asked = first.asked.load(Ordering::Relaxed);
        assert!(asked > 0 && hits == 0);
        let again = WordScorer::new(dir.path());
        let (b, hits) = grade(&again);
        assert_eq!((again.asked.load(Ordering::Relaxed), hits), (0, asked), "the same runtime is answered from the cache");
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        let mut gpu = WordScorer::new(dir.path());
        gpu.runtime = "cuda F16 candle".into();
        let (_, hits) = grade(&gpu);
        assert_eq!((gpu.asked.load(Ordering::Relaxed), hits), (asked, 0), "another runtime is asked afresh");
    }
}

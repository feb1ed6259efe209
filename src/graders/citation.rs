//! Citation entailment after ALCE (Gao et al. 2023, "Enabling Large Language Models to Generate Text
//! with Citations"), computed as its reference code `compute_autoais` does:
//!
//! - citation recall of a sentence: 1 if the concatenation of its cited passages entails it, else 0;
//!   a sentence that cites a passage that does not exist gets 0 (ALCE: out-of-range citation);
//! - when a sentence with two or more citations is entailed, each citation is checked: it is
//!   *irrelevant* if it does not entail the sentence alone AND the other citations still entail it
//!   without it. With one citation, the citation is relevant exactly when the sentence is entailed;
//!   with several and no joint entailment, none is.
//! - case recall: mean over the counted sentences; case precision: relevant citations over all
//!   citations of the case (ALCE's ratio, not a mean of per-sentence ratios).
//!
//! candor departs from ALCE in two documented ways: sentences that neither cite nor make a claim
//! (questions, headings) are not counted, and uncited claim sentences count as recall 0 and are
//! reported as `missing_citation` (or are left out with `uncited = "ignore"`). ALCE used a T5-11B NLI
//! model; candor uses the configured NLI model and names it in the results.

/// The citation verdict for one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentenceVerdict {
    /// Whether the cited passages together entail the sentence.
    pub entailed: bool,
    /// Citations judged relevant.
    pub relevant: usize,
    /// All citations of the sentence (fabricated ones included).
    pub total: usize,
    /// The citations judged irrelevant.
    pub irrelevant: Vec<String>,
}

/// ALCE's rule for one sentence. `cites` are its cited context ids, `fabricated` whether any of them
/// names no context, and `entails(ids)` whether the concatenation of those passages entails it.
pub fn judge_sentence(cites: &[String], fabricated: bool, entails: &mut dyn FnMut(&[String]) -> bool) -> SentenceVerdict {
    let total = cites.len();
    if cites.is_empty() || fabricated {
        return SentenceVerdict { entailed: false, relevant: 0, total, irrelevant: vec![] };
    }
    let joint = entails(cites);
    if !joint {
        return SentenceVerdict { entailed: false, relevant: 0, total, irrelevant: vec![] };
    }
    if total == 1 {
        return SentenceVerdict { entailed: true, relevant: 1, total, irrelevant: vec![] };
    }
    let mut relevant = 0;
    let mut irrelevant = vec![];
    for c in cites {
        if entails(std::slice::from_ref(c)) {
            relevant += 1;
            continue;
        }
        let rest: Vec<String> = cites.iter().filter(|x| *x != c).cloned().collect();
        if entails(&rest) {
            irrelevant.push(c.clone());
        } else {
            relevant += 1;
        }
    }
    SentenceVerdict { entailed: true, relevant, total, irrelevant }
}

/// Case recall and precision from per-sentence verdicts (`counted` sentences include uncited claims
/// with recall 0). Returns `None` for a quantity with nothing to measure.
pub fn case_scores(verdicts: &[SentenceVerdict], uncited_counted: usize) -> (Option<f32>, Option<f32>) {
    let counted = verdicts.iter().filter(|v| v.total > 0).count() + uncited_counted;
    let entailed = verdicts.iter().filter(|v| v.total > 0 && v.entailed).count();
    let total: usize = verdicts.iter().map(|v| v.total).sum();
    let relevant: usize = verdicts.iter().map(|v| v.relevant).sum();
    let recall = (counted > 0).then(|| entailed as f32 / counted as f32);
    let precision = (total > 0).then(|| relevant as f32 / total as f32);
    (recall, precision)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    /// An oracle from the sets of ids that entail the sentence.
    fn oracle<'a>(entailing: &'a [&'a [&'a str]]) -> impl FnMut(&[String]) -> bool + 'a {
        move |q: &[String]| {
            entailing.iter().any(|set| set.len() == q.len() && set.iter().all(|s| q.iter().any(|x| x == s)))
        }
    }

    #[test]
    fn single_citation_is_relevant_exactly_when_entailed() {
        let v = judge_sentence(&ids(&["1"]), false, &mut oracle(&[&["1"]]));
        assert_eq!((v.entailed, v.relevant, v.total), (true, 1, 1));
        let v = judge_sentence(&ids(&["1"]), false, &mut oracle(&[]));
        assert_eq!((v.entailed, v.relevant, v.total), (false, 0, 1));
    }

    #[test]
    fn a_citation_that_adds_nothing_is_irrelevant() {
        // [1] alone entails; [1,2] entails; [2] alone does not, and without it [1] still does.
        let v = judge_sentence(&ids(&["1", "2"]), false, &mut oracle(&[&["1", "2"], &["1"]]));
        assert!(v.entailed);
        assert_eq!(v.irrelevant, ids(&["2"]));
        assert_eq!((v.relevant, v.total), (1, 2));
    }

    #[test]
    fn citations_needed_together_are_both_relevant() {
        // Only the pair entails (multi-hop): neither alone, and removing either breaks it.
        let v = judge_sentence(&ids(&["1", "2"]), false, &mut oracle(&[&["1", "2"]]));
        assert_eq!((v.entailed, v.relevant, v.total), (true, 2, 2));
        assert!(v.irrelevant.is_empty());
    }

    #[test]
    fn redundant_citations_that_each_entail_are_both_relevant() {
        // Each entails alone: ALCE keeps both (the first test, "alone entails", passes).
        let v = judge_sentence(&ids(&["1", "2"]), false, &mut oracle(&[&["1", "2"], &["1"], &["2"]]));
        assert_eq!((v.relevant, v.total), (2, 2));
    }

    #[test]
    fn no_joint_entailment_means_no_relevant_citation() {
        // [1] alone would entail, but ALCE checks precision only when the joint passage entails.
        let v = judge_sentence(&ids(&["1", "2"]), false, &mut oracle(&[&["1"]]));
        assert_eq!((v.entailed, v.relevant, v.total), (false, 0, 2));
    }

    #[test]
    fn fabricated_citation_fails_the_sentence() {
        let mut calls = 0;
        let v = judge_sentence(&ids(&["1", "9"]), true, &mut |_: &[String]| {
            calls += 1;
            true
        });
        assert_eq!((v.entailed, v.relevant, v.total), (false, 0, 2));
        assert_eq!(calls, 0);
    }

    #[test]
    fn case_scores_follow_alce() {
        let a = SentenceVerdict { entailed: true, relevant: 1, total: 2, irrelevant: ids(&["2"]) };
        let b = SentenceVerdict { entailed: false, relevant: 0, total: 1, irrelevant: vec![] };
        // One uncited claim counts as recall 0: recall = 1 / 3; precision = 1 / 3 citations.
        let (r, p) = case_scores(&[a.clone(), b.clone()], 1);
        assert!((r.unwrap() - 1.0 / 3.0).abs() < 1e-6);
        assert!((p.unwrap() - 1.0 / 3.0).abs() < 1e-6);
        let (r, p) = case_scores(&[a], 0);
        assert_eq!((r, p), (Some(1.0), Some(0.5)));
        assert_eq!(case_scores(&[], 0), (None, None));
        assert_eq!(case_scores(&[], 2), (Some(0.0), None));
    }
}

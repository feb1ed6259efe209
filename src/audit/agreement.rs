//! Agreement between people who labelled the same cases, and between them and the grader.
//!
//! A case carries its reviewers' labels under `label.reviewers`, one label object per reviewer
//! (`{"supported": true}`, as the single `label` is written), beside or instead of the consensus:
//!
//! ```json
//! {"id": "q7", "output": "...", "label": {"reviewers": {"ana": {"supported": true}, "bo": {"supported": false}}}}
//! ```
//!
//! Statistics, each for nominal labels: Cohen's kappa for each pair of reviewers (Cohen 1960), Fleiss'
//! kappa over the cases every reviewer labelled (Fleiss 1971), Krippendorff's alpha over all of them,
//! missing labels allowed (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability"). The
//! grader counts as one more rater: its kappa with each reviewer and with the reviewers' majority is
//! set beside theirs with each other, so that a team sees whether the grader disagrees with people
//! more than people disagree among themselves. Cases where reviewers split are listed (`disputed`)
//! and carry the failure class `reviewer_disagreement` in results.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{fmt3, Doc};
use crate::config::label_key;
use crate::graders::results::CaseResult;
pub use crate::suite::reviewers::{check_reviewers, reviewer_labels, reviewers_split, REVIEWERS_KEY};

/// Cohen's kappa of two raters over the same items (`None` when there are none, or when both give
/// one and the same category to every item: agreement by chance is then 1 and kappa undefined).
pub fn cohen_kappa<T: Ord + Clone>(a: &[T], b: &[T]) -> Option<f64> {
    assert_eq!(a.len(), b.len(), "cohen_kappa: the raters' items differ in number");
    let n = a.len();
    if n == 0 {
        return None;
    }
    let mut pa: BTreeMap<&T, f64> = BTreeMap::new();
    let mut pb: BTreeMap<&T, f64> = BTreeMap::new();
    let mut agree = 0.0;
    for (x, y) in a.iter().zip(b) {
        *pa.entry(x).or_default() += 1.0 / n as f64;
        *pb.entry(y).or_default() += 1.0 / n as f64;
        if x == y {
            agree += 1.0;
        }
    }
    let po = agree / n as f64;
    let pe: f64 = pa.iter().map(|(k, p)| p * pb.get(k).copied().unwrap_or(0.0)).sum();
    if (1.0 - pe).abs() < 1e-12 {
        return None;
    }
    Some((po - pe) / (1.0 - pe))
}

/// Fleiss' kappa from a table of counts: one row per item, one column per category, each row
/// summing to the same number of raters (at least two). `None` for an empty table, rows of unequal
/// sums, or chance agreement of 1.
pub fn fleiss_kappa(counts: &[Vec<usize>]) -> Option<f64> {
    let first = counts.first()?;
    let raters: usize = first.iter().sum();
    if raters < 2 || counts.iter().any(|r| r.iter().sum::<usize>() != raters || r.len() != first.len()) {
        return None;
    }
    let (n_items, m) = (counts.len() as f64, raters as f64);
    let p_bar: f64 =
        counts.iter().map(|r| (r.iter().map(|&c| (c * c) as f64).sum::<f64>() - m) / (m * (m - 1.0))).sum::<f64>() / n_items;
    let pe: f64 = (0..first.len())
        .map(|j| {
            let pj = counts.iter().map(|r| r[j] as f64).sum::<f64>() / (n_items * m);
            pj * pj
        })
        .sum();
    if (1.0 - pe).abs() < 1e-12 {
        return None;
    }
    Some((p_bar - pe) / (1.0 - pe))
}

/// Krippendorff's alpha for nominal values: one row per unit (case), one value (or `None`, not
/// labelled) per rater. Units with fewer than two values are not pairable and are left out. `None`
/// when fewer than two values are pairable or every pairable value is the same.
pub fn krippendorff_alpha<T: Ord + Clone>(units: &[Vec<Option<T>>]) -> Option<f64> {
    // The coincidence matrix o[c][k], built from the values of each unit with at least two.
    let mut o: BTreeMap<(T, T), f64> = BTreeMap::new();
    for unit in units {
        let vals: Vec<&T> = unit.iter().flatten().collect();
        let mu = vals.len();
        if mu < 2 {
            continue;
        }
        for (i, a) in vals.iter().enumerate() {
            for (j, b) in vals.iter().enumerate() {
                if i != j {
                    *o.entry(((*a).clone(), (*b).clone())).or_default() += 1.0 / (mu - 1) as f64;
                }
            }
        }
    }
    let mut n_c: BTreeMap<T, f64> = BTreeMap::new();
    for ((c, _), v) in &o {
        *n_c.entry(c.clone()).or_default() += v;
    }
    let n: f64 = n_c.values().sum();
    if n < 2.0 || n_c.len() < 2 {
        return None;
    }
    let observed: f64 = o.iter().filter(|((c, k), _)| c != k).map(|(_, v)| v).sum();
    let expected: f64 = n_c.iter().flat_map(|(c, a)| n_c.iter().filter(move |(k, _)| *k != c).map(move |(_, b)| a * b)).sum::<f64>() / (n - 1.0);
    Some(1.0 - observed / expected)
}

/// Kappa and raw agreement of two raters on the items both labelled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pairwise {
    /// The first rater (a reviewer, or `grader`).
    pub a: String,
    /// The second rater (a reviewer, or `majority`).
    pub b: String,
    /// Items both labelled.
    pub n: usize,
    /// Share of those where they agree.
    pub agreement: Option<f64>,
    /// Cohen's kappa.
    pub kappa: Option<f64>,
}

/// A case where reviewers split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disputed {
    /// The case id.
    pub id: String,
    /// Each reviewer's label.
    pub votes: BTreeMap<String, bool>,
    /// The grader's verdict, where it gave one.
    pub grader: Option<bool>,
}

/// Reviewers and grader on one label key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// The label key (`supported`, `attributable`, `consistent`).
    pub key: String,
    /// The metric whose verdict is the grader's (`support`, `citation`, `consistency`).
    pub metric: String,
    /// The reviewers, by name.
    pub reviewers: Vec<String>,
    /// Cases with at least one reviewer's label on `key`.
    pub cases: usize,
    /// Each pair of reviewers.
    pub between_reviewers: Vec<Pairwise>,
    /// Fleiss' kappa over the cases every reviewer labelled (three reviewers or more; for two it is
    /// close to Cohen's).
    pub fleiss_kappa: Option<f64>,
    /// Cases every reviewer labelled.
    pub fleiss_cases: usize,
    /// Krippendorff's alpha (nominal) over all labelled cases.
    pub krippendorff_alpha: Option<f64>,
    /// The grader against each reviewer, then against the majority (cases without a tie).
    pub grader: Vec<Pairwise>,
    /// Cases where the reviewers split.
    pub disputed: Vec<Disputed>,
}

/// The grader's verdict on `metric` for a case: whether the metric ran and passed.
fn grader_verdict(r: &CaseResult, metric: &str) -> Option<bool> {
    let v = serde_json::to_value(&r.metrics).ok()?;
    v.get(metric)?.get("passed")?.as_bool()
}

/// Agreement on `metric`'s label key over a set of results.
pub fn agreement(results: &[CaseResult], metric: &str) -> Option<Agreement> {
    let key = label_key(metric)?;
    // Each labelled case with its reviewers' labels and the grader's verdict (read once).
    let labelled: Vec<(&CaseResult, BTreeMap<String, bool>, Option<bool>)> = results
        .iter()
        .map(|r| (r, reviewer_labels(r.label.as_ref(), key)))
        .filter(|(_, l)| !l.is_empty())
        .map(|(r, l)| (r, l, grader_verdict(r, metric)))
        .collect();
    let mut reviewers: Vec<String> = labelled.iter().flat_map(|(_, l, _)| l.keys().cloned()).collect();
    reviewers.sort();
    reviewers.dedup();
    let pair = |a: &str, b: &str, xs: Vec<(bool, bool)>| {
        let (l, r): (Vec<bool>, Vec<bool>) = xs.iter().copied().unzip();
        Pairwise {
            a: a.into(),
            b: b.into(),
            n: xs.len(),
            agreement: (!xs.is_empty()).then(|| xs.iter().filter(|(x, y)| x == y).count() as f64 / xs.len() as f64),
            kappa: cohen_kappa(&l, &r),
        }
    };
    let mut between = vec![];
    for (i, a) in reviewers.iter().enumerate() {
        for b in &reviewers[i + 1..] {
            let xs = labelled.iter().filter_map(|(_, l, _)| Some((*l.get(a)?, *l.get(b)?))).collect();
            between.push(pair(a, b, xs));
        }
    }
    let complete: Vec<Vec<usize>> = labelled
        .iter()
        .filter(|(_, l, _)| l.len() == reviewers.len())
        .map(|(_, l, _)| {
            let yes = l.values().filter(|&&v| v).count();
            vec![yes, l.len() - yes]
        })
        .collect();
    let units: Vec<Vec<Option<bool>>> = labelled.iter().map(|(_, l, _)| reviewers.iter().map(|w| l.get(w).copied()).collect()).collect();
    let mut grader = vec![];
    for w in &reviewers {
        let xs = labelled.iter().filter_map(|(_, l, g)| Some(((*g)?, *l.get(w)?))).collect();
        grader.push(pair("grader", w, xs));
    }
    let majority = labelled
        .iter()
        .filter_map(|(_, l, g)| {
            let yes = l.values().filter(|&&v| v).count();
            let no = l.len() - yes;
            (yes != no).then(|| Some(((*g)?, yes > no))).flatten()
        })
        .collect();
    grader.push(pair("grader", "majority", majority));
    let disputed = labelled
        .iter()
        .filter(|(_, l, _)| l.values().any(|&v| v) && l.values().any(|&v| !v))
        .map(|(r, l, g)| Disputed { id: r.id.clone(), votes: l.clone(), grader: *g })
        .collect();
    Some(Agreement {
        key: key.into(),
        metric: metric.into(),
        reviewers,
        cases: labelled.len(),
        between_reviewers: between,
        fleiss_kappa: fleiss_kappa(&complete),
        fleiss_cases: complete.len(),
        krippendorff_alpha: krippendorff_alpha(&units),
        grader,
        disputed,
    })
}

/// The report of one label key.
pub fn doc(a: &Agreement) -> Doc {
    let mut d = Doc::new(format!("Reviewer agreement on `{}` ({} verdicts)", a.key, a.metric), "agreement");
    d.para(format!(
        "{} reviewer(s), {} labelled case(s). Krippendorff's alpha (nominal, all cases): {}. Fleiss' kappa ({} case(s) every reviewer labelled): {}.",
        a.reviewers.len(),
        a.cases,
        fmt3(a.krippendorff_alpha),
        a.fleiss_cases,
        fmt3(a.fleiss_kappa)
    ));
    let rows = a.between_reviewers.iter().chain(&a.grader).map(|p| vec![p.a.clone(), p.b.clone(), p.n.to_string(), fmt3(p.agreement), fmt3(p.kappa)]).collect();
    d.table(&["rater", "with", "cases", "agreement", "Cohen's kappa"], rows);
    let people: Vec<f64> = a.between_reviewers.iter().filter_map(|p| p.kappa).collect();
    let machine: Vec<f64> = a.grader.iter().filter(|p| p.b != "majority").filter_map(|p| p.kappa).collect();
    if !people.is_empty() && !machine.is_empty() {
        let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
        let (h, g) = (mean(&people), mean(&machine));
        d.para(format!(
            "Mean kappa between reviewers {h:.3}; between the grader and a reviewer {g:.3}: the grader agrees with people {} than they agree with each other.",
            if g >= h { "as well or better" } else { "less" }
        ));
    }
    if !a.disputed.is_empty() {
        d.heading(format!("{} disputed case(s) (failure class reviewer_disagreement)", a.disputed.len()));
        let rows = a
            .disputed
            .iter()
            .map(|x| {
                let votes: Vec<String> = x.votes.iter().map(|(w, v)| format!("{w}: {v}")).collect();
                vec![x.id.clone(), votes.join(", "), x.grader.map_or("-".into(), |g| g.to_string())]
            })
            .collect();
        d.table(&["case", "votes", "grader"], rows);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Cohen's kappa on the worked example of Wikipedia's "Cohen's kappa" (50 proposals, 20 yes/yes,
    /// 5 yes/no, 10 no/yes, 15 no/no): p_o = 0.7, p_e = 0.5, kappa = 0.4; sklearn's
    /// cohen_kappa_score gives the same.
    #[test]
    fn cohen_on_the_textbook_table() {
        let mut a = vec![];
        let mut b = vec![];
        for (x, y, n) in [(true, true, 20), (true, false, 5), (false, true, 10), (false, false, 15)] {
            for _ in 0..n {
                a.push(x);
                b.push(y);
            }
        }
        assert!((cohen_kappa(&a, &b).unwrap() - 0.4).abs() < 1e-12);
        assert!((cohen_kappa(&a, &a).unwrap() - 1.0).abs() < 1e-12, "perfect agreement");
        assert!(cohen_kappa(&[true, true], &[true, true]).is_none(), "one category: undefined");
        let never: Vec<bool> = a.iter().map(|x| !x).collect();
        assert!(cohen_kappa(&a, &never).unwrap() < 0.0, "systematic disagreement is below chance");
    }

    /// Fleiss' kappa on the worked example of Fleiss (1971) as Wikipedia's "Fleiss' kappa" gives it
    /// (10 subjects, 14 raters, 5 categories): P-bar 0.378, P-e 0.213, kappa 0.210; statsmodels'
    /// fleiss_kappa gives 0.20993.
    #[test]
    fn fleiss_on_the_textbook_table() {
        let t = vec![
            vec![0, 0, 0, 0, 14],
            vec![0, 2, 6, 4, 2],
            vec![0, 0, 3, 5, 6],
            vec![0, 3, 9, 2, 0],
            vec![2, 2, 8, 1, 1],
            vec![7, 7, 0, 0, 0],
            vec![3, 2, 6, 3, 0],
            vec![2, 5, 3, 2, 2],
            vec![6, 5, 2, 1, 0],
            vec![0, 2, 2, 3, 7],
        ];
        let k = fleiss_kappa(&t).unwrap();
        assert!((k - 0.20993).abs() < 1e-4, "{k}");
        assert!(fleiss_kappa(&[vec![2, 0], vec![1, 2]]).is_none(), "rows of unequal raters");
    }

    /// Krippendorff's alpha on the reliability data of Krippendorff (2011), "Computing Krippendorff's
    /// Alpha-Reliability", section C (4 observers, 12 units, missing values): nominal alpha 0.743;
    /// the `krippendorff` package from PyPI gives 0.7434.
    #[test]
    fn alpha_on_the_textbook_table() {
        let (a, b, c, d) = (
            [Some(1), Some(2), Some(3), Some(3), Some(2), Some(1), Some(4), Some(1), Some(2), None, None, None],
            [Some(1), Some(2), Some(3), Some(3), Some(2), Some(2), Some(4), Some(1), Some(2), Some(5), None, Some(3)],
            [None, Some(3), Some(3), Some(3), Some(2), Some(3), Some(4), Some(2), Some(2), Some(5), Some(1), None],
            [Some(1), Some(2), Some(3), Some(3), Some(2), Some(4), Some(4), Some(1), Some(2), Some(5), Some(1), None],
        );
        let units: Vec<Vec<Option<i32>>> = (0..12).map(|i| vec![a[i], b[i], c[i], d[i]]).collect();
        let alpha = krippendorff_alpha(&units).unwrap();
        assert!((alpha - 0.743).abs() < 5e-4, "{alpha}");
        // Two raters and no missing values: alpha is close to Cohen's kappa (Krippendorff corrects for
        // small samples), and perfect agreement is 1.
        let units: Vec<Vec<Option<bool>>> = vec![vec![Some(true), Some(true)], vec![Some(false), Some(false)]];
        assert_eq!(krippendorff_alpha(&units), Some(1.0));
        assert!(krippendorff_alpha::<bool>(&[vec![Some(true), None]]).is_none(), "nothing pairable");
    }

    fn result(id: &str, passed: Option<bool>, reviewers: Value) -> CaseResult {
        let mut r: CaseResult = serde_json::from_value(serde_json::json!({
            "id": id, "metrics": {}, "failures": [], "passed": true, "model": {},
            "label": {"reviewers": reviewers},
        }))
        .unwrap();
        if let Some(p) = passed {
            r.metrics = serde_json::from_value(serde_json::json!({"support": {"score": 1.0, "passed": p, "claims": []}})).unwrap_or_default();
        }
        r
    }

    #[test]
    fn reviewers_and_grader_are_compared_and_disputes_listed() {
        use serde_json::json;
        let results = vec![
            result("a", Some(true), json!({"ana": {"supported": true}, "bo": {"supported": true}, "cy": {"supported": true}})),
            result("b", Some(false), json!({"ana": {"supported": false}, "bo": {"supported": false}, "cy": {"supported": true}})),
            result("c", Some(true), json!({"ana": {"supported": true}, "bo": {"supported": false}})),
            result("d", Some(false), json!({"ana": {"supported": false}, "bo": {"supported": false}, "cy": {"supported": false}})),
        ];
        if grader_verdict(&results[0], "support").is_none() {
            panic!("the test's support outcome did not parse: {:?}", results[0].metrics);
        }
        let a = agreement(&results, "support").unwrap();
        assert_eq!(a.reviewers, ["ana", "bo", "cy"]);
        assert_eq!(a.cases, 4);
        assert_eq!(a.fleiss_cases, 3, "c lacks cy");
        let ab = &a.between_reviewers[0];
        assert_eq!((ab.a.as_str(), ab.b.as_str(), ab.n), ("ana", "bo", 4));
        assert_eq!(ab.agreement, Some(0.75));
        let ids: Vec<&str> = a.disputed.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
        // The grader says what ana says on every case.
        let ana = a.grader.iter().find(|p| p.b == "ana").unwrap();
        assert_eq!((ana.n, ana.agreement, ana.kappa), (4, Some(1.0), Some(1.0)));
        // Majority: a yes, b no, c tie (left out), d no.
        let maj = a.grader.iter().find(|p| p.b == "majority").unwrap();
        assert_eq!((maj.n, maj.agreement), (3, Some(1.0)));
        assert!(reviewers_split(results[1].label.as_ref()) && !reviewers_split(results[0].label.as_ref()));
        let md = doc(&a).markdown();
        assert!(md.contains("| grader | majority | 3 | 1.000 |") && md.contains("2 disputed case(s)"), "{md}");
    }

    #[test]
    fn a_malformed_reviewers_field_is_an_error() {
        use serde_json::json;
        assert!(check_reviewers(&json!({"reviewers": {"ana": {"supported": true}}})).is_ok());
        assert!(check_reviewers(&json!({"supported": true})).is_ok());
        assert!(check_reviewers(&json!({"reviewers": [true, false]})).unwrap_err().contains("object of reviewers"));
        assert!(check_reviewers(&json!({"reviewers": {"ana": true}})).unwrap_err().contains("label.reviewers.ana"));
        let e = check_reviewers(&json!({"reviewers": {"ana": {"supported": "yes"}}})).unwrap_err();
        assert!(e.contains("label.reviewers.ana.supported must be true or false"), "{e}");
    }
}

//! `candor drift BASELINE NEW`: are two suites from one distribution?
//!
//! For each field (the inputs, the outputs, the contexts), overall and in each segment that both
//! suites have (`--by KEY`), the energy-distance permutation test on the texts' embeddings
//! ([`super::twosample::energy_test`]) and on their lengths; over the whole suites, the refusal rate
//! of the outputs, the writing systems of the inputs and the segments' shares (chi-square tests).
//! The p-values of every test are adjusted together by Holm's method, so that a report of many
//! segments does not find drift by chance; drift is found where an adjusted p-value is at most the
//! level. Then the inputs of both suites are clustered together, and the clusters that NEW has and
//! BASELINE lacks (at least three times NEW's share of it) are listed with examples: what is new in
//! the traffic.

use std::collections::BTreeMap;

use serde::Serialize;

use super::twosample::{chi_square_homogeneity, energy_test, holm, kmeans, nearest, unit};
use super::{clip, fmt3, fmt_p, Doc};
use crate::error::Result;
use crate::suite::Case;

/// The most cases of each suite whose texts are embedded and tested (evenly spaced through the suite);
/// the energy test itself reads at most [`super::twosample::MAX_PER_SAMPLE`] of them a side.
pub const MAX_READ: usize = 5000;

/// The fewest cases of each suite `drift` tests: with fewer, a permutation test can hardly reject
/// at any useful level, and "no drift" would be a pass no test earned.
pub const MIN_CASES: usize = 5;

/// A text field of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The question.
    Input,
    /// The output graded.
    Output,
    /// The context passages, joined.
    Contexts,
}

impl Field {
    /// Every field.
    pub const ALL: [Field; 3] = [Field::Input, Field::Output, Field::Contexts];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Field::Input => "input",
            Field::Output => "output",
            Field::Contexts => "contexts",
        }
    }

    /// The field's text in a case (`None` where the case has none).
    pub fn text(self, c: &Case) -> Option<String> {
        let t = match self {
            Field::Input => c.input.clone().unwrap_or_default(),
            Field::Output => c.output.clone(),
            Field::Contexts => c.contexts.iter().map(|x| x.text.as_str()).collect::<Vec<_>>().join("\n\n"),
        };
        (!t.trim().is_empty()).then_some(t)
    }
}

/// How to test.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The segment key to test within (each value both suites have).
    pub by: Option<String>,
    /// Family-wise level: drift is found where a Holm-adjusted p-value is at most this.
    pub level: f64,
    /// Permutations of each embedding test.
    pub permutations: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Fewest cases of a segment in each suite for the segment to be tested.
    pub min_cases: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { by: None, level: 0.05, permutations: 999, seed: 17, min_cases: 10 }
    }
}

/// One test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Test {
    /// `all`, or `KEY=VALUE` for a segment.
    pub scope: String,
    /// What was compared: `input embeddings`, `output length`, `refusal rate`, ...
    pub what: String,
    /// Cases of BASELINE read.
    pub n_baseline: usize,
    /// Cases of NEW read.
    pub n_new: usize,
    /// Energy distance, or the difference the test is about (a rate, a share).
    pub statistic: f64,
    /// The test's own p-value.
    pub p_value: f64,
    /// Holm-adjusted over every test of the report.
    pub adjusted_p: f64,
    /// Whether drift is found here.
    pub drift: bool,
    /// What moved, in words.
    pub detail: String,
}

/// A cluster of inputs NEW has and BASELINE lacks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewCluster {
    /// Cases of NEW in it.
    pub count_new: usize,
    /// Cases of BASELINE in it.
    pub count_baseline: usize,
    /// Its share of NEW.
    pub share_new: f64,
    /// Its share of BASELINE.
    pub share_baseline: f64,
    /// NEW's inputs nearest its centre (ids and text).
    pub examples: Vec<(String, String)>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    /// Whether drift was found in any test.
    pub drift: bool,
    /// The level used.
    pub level: f64,
    /// Cases in BASELINE and NEW.
    pub cases: (usize, usize),
    /// Every test, in the order run.
    pub tests: Vec<Test>,
    /// Input clusters NEW has and BASELINE lacks.
    pub new_clusters: Vec<NewCluster>,
    /// Segment values (of `--by`) found in one suite only, or with too few cases to test.
    pub untested_segments: Vec<String>,
}

/// The writing system most of a text's letters are in.
fn script(text: &str) -> &'static str {
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        let s = match c as u32 {
            0x0000..=0x024F | 0x1E00..=0x1EFF => "Latin",
            0x0370..=0x03FF => "Greek",
            0x0400..=0x052F => "Cyrillic",
            0x0590..=0x05FF => "Hebrew",
            0x0600..=0x06FF | 0x0750..=0x077F => "Arabic",
            0x0900..=0x097F => "Devanagari",
            0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF => "CJK",
            0xAC00..=0xD7AF | 0x1100..=0x11FF => "Hangul",
            _ => "other",
        };
        *counts.entry(s).or_default() += 1;
    }
    counts.into_iter().max_by_key(|&(_, n)| n).map_or("none", |(s, _)| s)
}

/// Tests BASELINE against NEW; `embed` turns texts into vectors (the embedding model).
pub fn drift(baseline: &[Case], new: &[Case], opts: &Options, embed: &dyn Fn(&[&str]) -> Result<Vec<Vec<f32>>>) -> Result<Drift> {
    // Too few cases cannot show drift at any useful level: a report of "no drift" from them would
    // be a pass no test earned.
    if baseline.len().min(new.len()) < MIN_CASES {
        return Err(crate::error::Error::Input {
            location: "drift".into(),
            reason: format!(
                "{} case(s) in BASELINE and {} in NEW: at least {MIN_CASES} on each side are needed to test for drift",
                baseline.len(),
                new.len()
            ),
        });
    }
    let mut tests: Vec<Test> = vec![];
    let mut untested = vec![];
    // The cases read for the embedding and length tests: at most MAX_READ of each suite, evenly
    // spaced (the segment shares, refusals and writing systems count every case).
    let read = |n: usize| -> Vec<usize> { if n <= MAX_READ { (0..n).collect() } else { (0..MAX_READ).map(|i| i * n / MAX_READ).collect() } };
    let (rb, rn) = (read(baseline.len()), read(new.len()));
    // Scopes: all, then each segment value both suites have enough of.
    let mut scopes: Vec<(String, Vec<usize>, Vec<usize>)> = vec![("all".into(), rb.clone(), rn.clone())];
    if let Some(key) = &opts.by {
        let value = |c: &Case| c.segments.get(key).cloned().unwrap_or_else(|| "(none)".into());
        let values = |cs: &[Case]| -> BTreeMap<String, usize> {
            let mut m = BTreeMap::new();
            for c in cs {
                *m.entry(value(c)).or_default() += 1;
            }
            m
        };
        let (vb, vn) = (values(baseline), values(new));
        let all: std::collections::BTreeSet<&String> = vb.keys().chain(vn.keys()).collect();
        for v in all {
            let (nb, nn) = (vb.get(v).copied().unwrap_or(0), vn.get(v).copied().unwrap_or(0));
            if nb >= opts.min_cases && nn >= opts.min_cases {
                let of = |cs: &[Case], idx: &[usize]| -> Vec<usize> { idx.iter().copied().filter(|&i| value(&cs[i]) == *v).collect() };
                scopes.push((format!("{key}={v}"), of(baseline, &rb), of(new, &rn)));
            } else {
                untested.push(format!("{key}={v} ({nb} in BASELINE, {nn} in NEW; {} needed in each)", opts.min_cases));
            }
        }
        let cats: Vec<&String> = vb.keys().chain(vn.keys()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let ca: Vec<usize> = cats.iter().map(|v| vb.get(*v).copied().unwrap_or(0)).collect();
        let cb: Vec<usize> = cats.iter().map(|v| vn.get(*v).copied().unwrap_or(0)).collect();
        if let Some(p) = chi_square_homogeneity(&ca, &cb) {
            let moved = cats
                .iter()
                .zip(ca.iter().zip(&cb))
                .map(|(v, (&a, &b))| (v, a as f64 / baseline.len() as f64, b as f64 / new.len() as f64))
                .max_by(|x, y| (x.2 - x.1).abs().total_cmp(&(y.2 - y.1).abs()));
            let detail = moved.map_or(String::new(), |(v, a, b)| format!("largest move: {key}={v} from {:.1}% to {:.1}% of cases", a * 100.0, b * 100.0));
            tests.push(test("all", &format!("{key} shares"), baseline.len(), new.len(), 0.0, p, detail));
        }
    }
    // Embeddings of every text read, once.
    let mut vectors: BTreeMap<(Field, bool, usize), Vec<f32>> = BTreeMap::new();
    for field in Field::ALL {
        for (is_new, cases, idx) in [(false, baseline, &rb), (true, new, &rn)] {
            let texts: Vec<(usize, String)> = idx.iter().filter_map(|&i| Some((i, field.text(&cases[i])?))).collect();
            let refs: Vec<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
            if refs.is_empty() {
                continue;
            }
            for ((i, _), v) in texts.iter().zip(embed(&refs)?) {
                vectors.insert((field, is_new, *i), unit(v));
            }
        }
    }
    for (scope, b, n) in &scopes {
        for field in Field::ALL {
            let pick = |idx: &[usize], is_new: bool| -> Vec<Vec<f32>> { idx.iter().filter_map(|&i| vectors.get(&(field, is_new, i)).cloned()).collect() };
            let (xb, xn) = (pick(b, false), pick(n, true));
            if let Some(t) = energy_test(&xb, &xn, opts.permutations, opts.seed) {
                tests.push(test(scope, &format!("{} embeddings", field.name()), t.n_a, t.n_b, t.statistic, t.p_value, String::new()));
            }
            let lengths = |cs: &[Case], idx: &[usize]| -> Vec<Vec<f32>> {
                idx.iter().filter_map(|&i| field.text(&cs[i])).map(|t| vec![(1.0 + t.split_whitespace().count() as f32).ln()]).collect()
            };
            let (lb, ln) = (lengths(baseline, b), lengths(new, n));
            if let Some(t) = energy_test(&lb, &ln, opts.permutations, opts.seed) {
                let median = |xs: &[Vec<f32>]| {
                    let mut v: Vec<f32> = xs.iter().map(|x| x[0].exp() - 1.0).collect();
                    v.sort_by(f32::total_cmp);
                    v[v.len() / 2]
                };
                let detail = format!("median words {:.0} -> {:.0}", median(&lb), median(&ln));
                tests.push(test(scope, &format!("{} length", field.name()), t.n_a, t.n_b, t.statistic, t.p_value, detail));
            }
        }
    }
    // Whole-suite features: refusals among outputs, writing systems of inputs.
    let refusals = |cs: &[Case]| cs.iter().filter(|c| crate::graders::checks::refusal(&c.output).is_some()).count();
    let (fb, fnew) = (refusals(baseline), refusals(new));
    if let Some(p) = chi_square_homogeneity(&[fb, baseline.len() - fb], &[fnew, new.len() - fnew]) {
        let (a, b) = (fb as f64 / baseline.len() as f64, fnew as f64 / new.len() as f64);
        tests.push(test("all", "refusal rate", baseline.len(), new.len(), b - a, p, format!("{:.1}% -> {:.1}% of outputs decline", a * 100.0, b * 100.0)));
    }
    let scripts = |cs: &[Case]| -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for c in cs {
            *m.entry(script(&Field::Input.text(c).unwrap_or_else(|| c.output.clone()))).or_default() += 1;
        }
        m
    };
    let (sb, sn) = (scripts(baseline), scripts(new));
    let names: Vec<&str> = sb.keys().chain(sn.keys()).copied().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    if let Some(p) = chi_square_homogeneity(
        &names.iter().map(|s| sb.get(s).copied().unwrap_or(0)).collect::<Vec<_>>(),
        &names.iter().map(|s| sn.get(s).copied().unwrap_or(0)).collect::<Vec<_>>(),
    ) {
        let share = |m: &BTreeMap<&str, usize>, total: usize| names.iter().map(|s| format!("{s} {:.0}%", 100.0 * m.get(s).copied().unwrap_or(0) as f64 / total as f64)).collect::<Vec<_>>().join(", ");
        let detail = format!("{} -> {}", share(&sb, baseline.len()), share(&sn, new.len()));
        tests.push(test("all", "input writing system", baseline.len(), new.len(), 0.0, p, detail));
    }
    if tests.is_empty() {
        return Err(crate::error::Error::Input { location: "drift".into(), reason: "no field has text on both sides to compare: nothing was tested".into() });
    }
    let adjusted = holm(&tests.iter().map(|t| t.p_value).collect::<Vec<_>>());
    for (t, a) in tests.iter_mut().zip(adjusted) {
        t.adjusted_p = a;
        t.drift = a <= opts.level;
    }
    let new_clusters = new_clusters(new, &vectors, opts.seed);
    Ok(Drift { drift: tests.iter().any(|t| t.drift), level: opts.level, cases: (baseline.len(), new.len()), tests, new_clusters, untested_segments: untested })
}

fn test(scope: &str, what: &str, n_baseline: usize, n_new: usize, statistic: f64, p_value: f64, detail: String) -> Test {
    Test { scope: scope.into(), what: what.into(), n_baseline, n_new, statistic, p_value, adjusted_p: p_value, drift: false, detail }
}

/// Clusters the inputs (else the outputs) of both suites together and keeps those NEW has at least
/// three times as much of as BASELINE (at least 3 cases and 5% of NEW).
fn new_clusters(new: &[Case], vectors: &BTreeMap<(Field, bool, usize), Vec<f32>>, seed: u64) -> Vec<NewCluster> {
    let field = if vectors.keys().any(|k| k.0 == Field::Input) { Field::Input } else { Field::Output };
    let points: Vec<(bool, usize, &Vec<f32>)> = vectors.iter().filter(|(k, _)| k.0 == field).map(|(k, v)| (k.1, k.2, v)).collect();
    let (n_b, n_n) = (points.iter().filter(|p| !p.0).count(), points.iter().filter(|p| p.0).count());
    if n_b == 0 || n_n == 0 {
        return vec![];
    }
    let k = (((points.len() / 2) as f64).sqrt().round() as usize).clamp(2, 12);
    let xs: Vec<Vec<f32>> = points.iter().map(|p| p.2.clone()).collect();
    let cl = kmeans(&xs, k, seed);
    let mut out = vec![];
    for (c, centre) in cl.centroids.iter().enumerate() {
        let members: Vec<usize> = (0..points.len()).filter(|&i| cl.assignment[i] == c).collect();
        let cn = members.iter().filter(|&&i| points[i].0).count();
        let cb = members.len() - cn;
        let (sn, sb) = (cn as f64 / n_n as f64, cb as f64 / n_b as f64);
        if cn >= 3 && sn >= 0.05 && sb * 3.0 <= sn {
            let mut mine: Vec<(f64, usize)> = members.iter().filter(|&&i| points[i].0).map(|&i| (nearest(std::slice::from_ref(centre), points[i].2).1, points[i].1)).collect();
            mine.sort_by(|a, b| a.0.total_cmp(&b.0));
            let all: Vec<(String, String)> = mine.iter().map(|&(_, i)| (new[i].id.clone(), field.text(&new[i]).unwrap_or_default())).collect();
            let examples = super::coverage::distinct(all.iter(), |x| x.1.as_str()).into_iter().take(3).cloned().collect();
            out.push(NewCluster { count_new: cn, count_baseline: cb, share_new: sn, share_baseline: sb, examples });
        }
    }
    out.sort_by(|a, b| (b.share_new - b.share_baseline).total_cmp(&(a.share_new - a.share_baseline)));
    out
}

/// The report.
pub fn doc(d: &Drift) -> Doc {
    let mut doc = Doc::new("Drift between BASELINE and NEW", "drift");
    let found: Vec<&Test> = d.tests.iter().filter(|t| t.drift).collect();
    doc.para(if d.drift {
        format!(
            "DRIFT: {} of {} tests find that NEW is not drawn from BASELINE's distribution (Holm-adjusted p <= {}). {} and {} cases.",
            found.len(),
            d.tests.len(),
            d.level,
            d.cases.0,
            d.cases.1
        )
    } else {
        format!("No drift found: none of {} tests reaches the level {} after Holm's adjustment. {} and {} cases.", d.tests.len(), d.level, d.cases.0, d.cases.1)
    });
    let rows = d
        .tests
        .iter()
        .map(|t| {
            vec![
                t.scope.clone(),
                t.what.clone(),
                format!("{} / {}", t.n_baseline, t.n_new),
                fmt3(Some(t.statistic)),
                fmt_p(t.p_value),
                fmt_p(t.adjusted_p),
                if t.drift { "DRIFT".into() } else { "ok".into() },
                t.detail.clone(),
            ]
        })
        .collect();
    doc.table(&["scope", "test", "cases", "statistic", "p", "Holm p", "verdict", "detail"], rows);
    if !d.new_clusters.is_empty() {
        doc.heading("What NEW has that BASELINE lacks (input clusters)");
        let rows = d
            .new_clusters
            .iter()
            .map(|c| {
                vec![
                    format!("{:.1}% ({})", c.share_new * 100.0, c.count_new),
                    format!("{:.1}% ({})", c.share_baseline * 100.0, c.count_baseline),
                    c.examples.iter().map(|(id, t)| format!("{id}: {}", clip(t, 90))).collect::<Vec<_>>().join(" / "),
                ]
            })
            .collect();
        doc.table(&["share of NEW", "share of BASELINE", "examples from NEW"], rows);
    }
    if !d.untested_segments.is_empty() {
        doc.para(format!("Not tested (too few cases on one side): {}.", d.untested_segments.join("; ")));
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str, input: &str, output: &str, seg: &str) -> Case {
        let line = serde_json::json!({"id": id, "input": input, "output": output, "segments": {"topic": seg}}).to_string();
        crate::suite::parse_case(1, &line).unwrap()
    }

    /// A toy embedder: counts of a few words, so that topics are apart.
    fn embed(texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        const WORDS: [&str; 6] = ["refund", "order", "password", "login", "invoice", "crash"];
        Ok(texts.iter().map(|t| WORDS.iter().map(|w| t.matches(w).count() as f32 + 0.1 * (t.len() % 7) as f32).collect()).collect())
    }

    fn suite(prefix: &str, billing: usize, account: usize, crash: usize) -> Vec<Case> {
        let mut out = vec![];
        for i in 0..billing {
            out.push(case(&format!("{prefix}b{i}"), &format!("Where is my refund for order {i}?"), "Refunds take 5 days.", "billing"));
        }
        for i in 0..account {
            out.push(case(&format!("{prefix}a{i}"), &format!("I forgot my password, login fails {i}"), "Reset it from the login page.", "account"));
        }
        for i in 0..crash {
            out.push(case(&format!("{prefix}c{i}"), &format!("The app shows a crash on start {i}"), "Update the app.", "bugs"));
        }
        out
    }

    #[test]
    fn a_new_topic_is_drift_and_is_named() {
        let base = suite("x", 30, 30, 0);
        let new = suite("y", 20, 20, 20);
        let opts = Options { by: Some("topic".into()), permutations: 199, ..Options::default() };
        let d = drift(&base, &new, &opts, &embed).unwrap();
        assert!(d.drift, "{}", doc(&d).markdown());
        let c = d.new_clusters.first().expect("the crash cluster");
        assert!(c.examples.iter().all(|(_, t)| t.contains("crash")), "{c:?}");
        assert!(d.untested_segments.iter().any(|s| s.starts_with("topic=bugs")), "{:?}", d.untested_segments);
        assert!(d.tests.iter().any(|t| t.what == "topic shares" && t.drift));
        let md = doc(&d).markdown();
        assert!(md.contains("DRIFT:") && md.contains("examples from NEW"), "{md}");
    }

    #[test]
    fn two_halves_of_one_suite_do_not_drift() {
        let all = suite("x", 40, 40, 40);
        let (a, b): (Vec<(usize, Case)>, Vec<(usize, Case)>) = all.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let a: Vec<Case> = a.into_iter().map(|x| x.1).collect();
        let b: Vec<Case> = b.into_iter().map(|x| x.1).collect();
        let opts = Options { by: Some("topic".into()), permutations: 199, ..Options::default() };
        let d = drift(&a, &b, &opts, &embed).unwrap();
        assert!(!d.drift, "{}", doc(&d).markdown());
        assert!(d.new_clusters.is_empty(), "{:?}", d.new_clusters);
        assert!(d.tests.len() > 10, "every field, scope and feature: {}", d.tests.len());
    }

    #[test]
    fn too_few_cases_are_an_error_not_a_pass() {
        let base = suite("x", 3, 0, 0);
        let new = suite("y", 30, 0, 0);
        let e = drift(&base, &new, &Options::default(), &embed).unwrap_err().to_string();
        assert!(e.contains("at least 5"), "{e}");
    }

    #[test]
    fn scripts_are_told_apart() {
        assert_eq!(script("Where is my refund?"), "Latin");
        assert_eq!(script("Где мой возврат?"), "Cyrillic");
        assert_eq!(script("返金はどこですか"), "CJK");
        assert_eq!(script("123 ?"), "none");
    }
}

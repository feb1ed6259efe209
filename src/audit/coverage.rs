//! `candor coverage SUITE SAMPLE`: does a suite stand for the traffic it is meant to test?
//!
//! The sample's inputs (a few hundred or thousand real questions) are clustered by embedding
//! (k-means, k about the square root of half the sample, at most 30); each suite case joins the
//! cluster whose centre is nearest its input. A cluster is under-covered when the suite's share of it
//! is less than half the sample's (the seeds' "if 30% of your production queries involve code
//! debugging, 30% of your test set should"), and the report gives the sample's inputs nearest its
//! centre as cases to add. A suite case is stale when its input is further from every cluster's
//! centre than the sample's outliers are from theirs (the 99th percentile of the sample's cosine
//! distance to its centre, plus that percentile's distance from the median): it stands for no
//! traffic, a candidate to retire.

use std::path::Path;

use serde::Serialize;

use super::twosample::{kmeans, nearest, unit};
use super::{clip, Doc};
use crate::error::{Error, Result};
use crate::suite::Case;

/// One input of the production sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Input {
    /// Its id (the line's `id`, else its line number).
    pub id: String,
    /// The text.
    pub text: String,
}

/// Reads a sample of production inputs: JSON Lines whose objects carry the input under any name a
/// suite may use (`input`, `question`, `query`, `user_input`; `output` is not needed), or a text file
/// with one input a line. Errors name the line.
pub fn read_inputs(path: &Path) -> Result<Vec<Input>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let jsonl = matches!(path.extension().and_then(|e| e.to_str()), Some("jsonl" | "json" | "ndjson"));
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if !jsonl {
            out.push(Input { id: line_no.to_string(), text: line.trim().to_string() });
            continue;
        }
        let bad = |reason: String| Error::Input { location: format!("{}:{line_no}", path.display()), reason };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let obj = v.as_object().ok_or_else(|| bad("must be a JSON object".into()))?;
        let text = crate::suite::INPUT
            .iter()
            .find_map(|k| obj.get(*k).and_then(|x| x.as_str()))
            .ok_or_else(|| bad(format!("no input: give the question under one of {}", crate::suite::INPUT.join(", "))))?;
        let id = match obj.get("id") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(x) if !x.is_null() => x.to_string(),
            _ => line_no.to_string(),
        };
        out.push(Input { id, text: text.to_string() });
    }
    Ok(out)
}

/// How to cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Clusters; 0 picks the square root of half the sample (2 to 30).
    pub clusters: usize,
    /// Seed of k-means.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self { clusters: 0, seed: 17 }
    }
}

/// One cluster of the sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    /// Sample inputs in it.
    pub production: usize,
    /// Suite cases nearest it.
    pub suite: usize,
    /// Its share of the sample.
    pub share_production: f64,
    /// Its share of the suite.
    pub share_suite: f64,
    /// The suite's share is under half the sample's.
    pub under_covered: bool,
    /// The sample's inputs nearest its centre: what it is about, and cases to add.
    pub examples: Vec<Input>,
    /// Ids of suite cases in it (the first few).
    pub suite_cases: Vec<String>,
}

/// A suite case far from all the traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stale {
    /// The case id.
    pub id: String,
    /// Its input.
    pub text: String,
    /// Cosine similarity to the nearest cluster centre of the traffic.
    pub similarity: f64,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    /// Sample inputs read.
    pub sample: usize,
    /// Suite cases with an input.
    pub suite: usize,
    /// Clusters, largest share of the sample first.
    pub clusters: Vec<Cluster>,
    /// Share of the sample in clusters that are not under-covered.
    pub covered_share: f64,
    /// A suite case less similar than this to every cluster centre is stale: one minus the traffic's
    /// 99th percentile of cosine distance to its own centre, less that percentile's distance from the median.
    pub stale_below: f64,
    /// Stale suite cases, least similar first.
    pub stale: Vec<Stale>,
}

/// Cosine similarity to a cluster's centre from which a case counts as of that cluster, however tight
/// the traffic.
pub const NEAR: f64 = 0.9;

/// The items whose key was not seen before, in order (traffic repeats its questions; examples should not).
pub fn distinct<'a, T>(items: impl Iterator<Item = &'a T>, key: impl Fn(&T) -> &str) -> Vec<&'a T> {
    let mut seen = std::collections::HashSet::new();
    items.filter(|x| seen.insert(key(x).trim().to_lowercase())).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum()
}

/// Measures how well `suite` covers `sample`; `embed` turns texts into vectors.
pub fn coverage(suite: &[Case], sample: &[Input], opts: &Options, embed: &dyn Fn(&[&str]) -> Result<Vec<Vec<f32>>>) -> Result<Coverage> {
    let cases: Vec<(&Case, &str)> = suite.iter().filter_map(|c| Some((c, c.input.as_deref().filter(|t| !t.trim().is_empty())?))).collect();
    if sample.len() < 2 || cases.is_empty() {
        return Err(Error::Input {
            location: "coverage".into(),
            reason: format!("needs at least 2 sample inputs and 1 suite case with an input (got {} and {})", sample.len(), cases.len()),
        });
    }
    let xs: Vec<Vec<f32>> = embed(&sample.iter().map(|s| s.text.as_str()).collect::<Vec<_>>())?.into_iter().map(unit).collect();
    let ys: Vec<Vec<f32>> = embed(&cases.iter().map(|c| c.1).collect::<Vec<_>>())?.into_iter().map(unit).collect();
    let k = if opts.clusters > 0 { opts.clusters } else { (((sample.len() / 2) as f64).sqrt().round() as usize).clamp(2, 30) };
    let cl = kmeans(&xs, k, opts.seed);
    let suite_of: Vec<usize> = ys.iter().map(|y| nearest(&cl.centroids, y).0).collect();
    let (n, m) = (sample.len() as f64, cases.len() as f64);
    let mut clusters = vec![];
    for (c, centre) in cl.centroids.iter().enumerate() {
        let members: Vec<usize> = (0..xs.len()).filter(|&i| cl.assignment[i] == c).collect();
        if members.is_empty() {
            continue;
        }
        let mine: Vec<usize> = (0..ys.len()).filter(|&j| suite_of[j] == c).collect();
        let (sp, ss) = (members.len() as f64 / n, mine.len() as f64 / m);
        let mut near: Vec<(f64, usize)> = members.iter().map(|&i| (nearest(std::slice::from_ref(centre), &xs[i]).1, i)).collect();
        near.sort_by(|a, b| a.0.total_cmp(&b.0));
        clusters.push(Cluster {
            production: members.len(),
            suite: mine.len(),
            share_production: sp,
            share_suite: ss,
            under_covered: ss < sp / 2.0,
            examples: distinct(near.iter().map(|&(_, i)| &sample[i]), |x| x.text.as_str()).into_iter().take(3).cloned().collect(),
            suite_cases: mine.iter().take(5).map(|&j| cases[j].0.id.clone()).collect(),
        });
    }
    clusters.sort_by(|a, b| b.share_production.total_cmp(&a.share_production));
    let covered_share = clusters.iter().filter(|c| !c.under_covered).map(|c| c.share_production).sum();
    // Each sample input's cosine distance to its cluster's centre. A suite case is stale where its
    // distance to every centre is past the traffic's 99th percentile by the traffic's own spread
    // (99th percentile less the median): clearly further out than the traffic's outliers.
    let centres: Vec<Vec<f32>> = cl.centroids.iter().map(|c| unit(c.clone())).collect();
    let mut own: Vec<f64> = xs.iter().zip(&cl.assignment).map(|(x, &c)| 1.0 - dot(x, &centres[c])).collect();
    own.sort_by(f64::total_cmp);
    let (q99, median) = (crate::stats::quantile_sorted(&own, 0.99), crate::stats::quantile_sorted(&own, 0.5));
    // Traffic of near-identical queries has almost no spread: a case within cosine 0.9 of a centre
    // is of that cluster whatever the spread.
    let stale_below = (1.0 - (q99 + (q99 - median))).min(NEAR);
    let mut stale: Vec<Stale> = ys
        .iter()
        .enumerate()
        .map(|(j, y)| (j, centres.iter().map(|c| dot(c, y)).fold(f64::NEG_INFINITY, f64::max)))
        .filter(|&(_, s)| s < stale_below)
        .map(|(j, s)| Stale { id: cases[j].0.id.clone(), text: cases[j].1.to_string(), similarity: s })
        .collect();
    stale.sort_by(|a, b| a.similarity.total_cmp(&b.similarity));
    Ok(Coverage { sample: sample.len(), suite: cases.len(), clusters, covered_share, stale_below, stale })
}

/// The report.
pub fn doc(c: &Coverage) -> Doc {
    let mut d = Doc::new("Coverage of production traffic by the suite", "coverage");
    let under = c.clusters.iter().filter(|x| x.under_covered).count();
    d.para(format!(
        "{} sample inputs in {} clusters; {} suite cases. {:.1}% of the traffic falls in clusters the suite covers at least half as much as the traffic does; {under} cluster(s) are under-covered, {} suite case(s) stand for no traffic.",
        c.sample,
        c.clusters.len(),
        c.suite,
        c.covered_share * 100.0,
        c.stale.len()
    ));
    let rows = c
        .clusters
        .iter()
        .map(|x| {
            vec![
                format!("{:.1}% ({})", x.share_production * 100.0, x.production),
                format!("{:.1}% ({})", x.share_suite * 100.0, x.suite),
                if x.under_covered { "UNDER-COVERED".into() } else { "ok".into() },
                x.examples.iter().map(|e| clip(&e.text, 70)).collect::<Vec<_>>().join(" / "),
            ]
        })
        .collect();
    d.table(&["share of traffic", "share of suite", "verdict", "traffic examples (cases to add where under-covered)"], rows);
    if !c.stale.is_empty() {
        d.heading("Suite cases that stand for no traffic (candidates to retire)");
        d.para(format!(
            "Each is further from every cluster of the traffic than the traffic's own outliers are from theirs (cosine below {:.3}: the 99th percentile of the traffic's distance to its centre, plus that percentile's distance from the median; never above 0.9).",
            c.stale_below
        ));
        let rows = c.stale.iter().map(|s| vec![s.id.clone(), format!("{:.3}", s.similarity), clip(&s.text, 90)]).collect();
        d.table(&["case", "nearest cluster (cosine)", "input"], rows);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy embedder: counts of topic words, so that topics are apart.
    fn embed(texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        const WORDS: [&str; 5] = ["refund", "password", "crash", "weather", "invoice"];
        Ok(texts.iter().map(|t| WORDS.iter().map(|w| t.matches(w).count() as f32 + 0.01 * (t.len() % 5) as f32).collect()).collect())
    }

    fn case(id: &str, input: &str) -> Case {
        crate::suite::parse_case(1, &serde_json::json!({"id": id, "input": input, "output": "x"}).to_string()).unwrap()
    }

    #[test]
    fn a_topic_taken_out_of_the_suite_is_found_and_a_stray_case_is_stale() {
        let topics = ["refund", "password", "crash"];
        let sample: Vec<Input> =
            (0..90).map(|i| Input { id: i.to_string(), text: format!("question {i} about my {} please", topics[i % 3]) }).collect();
        // The suite: refunds and passwords, no crashes, and one case about the weather.
        let mut suite: Vec<Case> = (0..20).map(|i| case(&format!("s{i}"), &format!("my {} is wrong {i}", topics[i % 2]))).collect();
        suite.push(case("stray", "what is the weather like"));
        let c = coverage(&suite, &sample, &Options { clusters: 3, seed: 1 }, &embed).unwrap();
        let under: Vec<&Cluster> = c.clusters.iter().filter(|x| x.under_covered).collect();
        assert_eq!(under.len(), 1, "{}", doc(&c).markdown());
        assert!(under[0].examples.iter().all(|e| e.text.contains("crash")), "{:?}", under[0].examples);
        assert!((c.covered_share - 2.0 / 3.0).abs() < 1e-9, "{}", c.covered_share);
        assert_eq!(c.stale.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["stray"], "{}", doc(&c).text());
        let md = doc(&c).markdown();
        assert!(md.contains("UNDER-COVERED") && md.contains("candidates to retire"), "{md}");
        assert!(doc(&c).text().contains("stray"));
    }

    #[test]
    fn inputs_are_read_from_json_lines_or_text_with_line_numbers_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.jsonl");
        std::fs::write(&p, "{\"id\": \"q1\", \"question\": \"a?\"}\n\n{\"query\": \"b?\"}\n").unwrap();
        let got = read_inputs(&p).unwrap();
        assert_eq!(got, [Input { id: "q1".into(), text: "a?".into() }, Input { id: "3".into(), text: "b?".into() }]);
        std::fs::write(&p, "{\"id\": 1, \"output\": \"no input\"}\n").unwrap();
        let e = read_inputs(&p).unwrap_err().to_string();
        assert!(e.contains("s.jsonl:1") && e.contains("no input"), "{e}");
        let t = dir.path().join("s.txt");
        std::fs::write(&t, "first question\n\nsecond\n").unwrap();
        assert_eq!(read_inputs(&t).unwrap().len(), 2);
    }
}

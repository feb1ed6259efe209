//! `candor probe SUITE -o PROBES.jsonl`: a grader self-test that needs no labels (after CheckList,
//! Ribeiro et al. 2020).
//!
//! The suite is graded for support; from each claim the grader finds supported, edits are made with
//! [`crate::text::perturb::edit`]: some must flip the verdict (a number or date moved to a value no
//! source states, a negation, a name swapped for another of the same sources, a unit changed), some
//! must keep it (casing, whitespace, a citation marker, a paraphrase template). Each edit becomes a
//! case of its own (the original's question, contexts and segments; the edited claim as output) and
//! is graded the same way. The report gives, per edit type and per segment, how often the grader
//! caught the change or kept the invariant, with the misses. Every choice comes from a fixed seed.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::{clip, Doc};
use crate::error::Result;
use crate::graders::results::{CaseResult, Outcome};
use crate::suite::Case;
use crate::text::perturb::{edit, Edit};

/// Where the results of a probe suite go: beside it, `PROBES.results.jsonl` for `PROBES.jsonl`.
pub fn results_path(probes: &std::path::Path) -> std::path::PathBuf {
    let stem = probes.file_stem().map_or_else(|| "probes".into(), |s| s.to_string_lossy().into_owned());
    probes.with_file_name(format!("{stem}.results.jsonl"))
}

/// How many probes.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Supported claims of each case that are edited (the first ones).
    pub claims_per_case: usize,
    /// Seed of every edit.
    pub seed: u64,
    /// The segment key to report by.
    pub by: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self { claims_per_case: 2, seed: 17, by: None }
    }
}

/// One probe: an edited claim, and what the grader must say of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    /// The case it was made from.
    pub case: String,
    /// The claim as the grader found it supported.
    pub claim: String,
    /// The edit.
    pub edit: Edit,
    /// The edited claim.
    pub text: String,
    /// Whether the grader must find it supported.
    pub expect_supported: bool,
    /// The case's segment value (of `by`), or `all`.
    pub segment: String,
    /// What the grader said: supported or not (`None` where support did not run on it).
    pub graded_supported: Option<bool>,
    /// Its weakest claim's support score (P(entailment) of the best chunk).
    pub score: Option<f32>,
}

impl Probe {
    /// Whether the grader did what it must.
    pub fn held(&self) -> Option<bool> {
        self.graded_supported.map(|g| g == self.expect_supported)
    }
}

/// Per edit type (and segment): probes graded and held, counting only claims the grader supports
/// alone (the `unedited` control, whose own row counts every claim).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The segment, or `all`.
    pub segment: String,
    /// The edit.
    pub edit: Edit,
    /// Whether the edit must flip the verdict.
    pub must_flip: bool,
    /// Probes graded.
    pub graded: usize,
    /// Of those, where the grader caught the change (must flip) or kept its verdict (must keep).
    pub held: usize,
}

impl Row {
    /// held / graded.
    pub fn rate(&self) -> Option<f64> {
        (self.graded > 0).then(|| self.held as f64 / self.graded as f64)
    }
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeReport {
    /// Cases of the suite.
    pub cases: usize,
    /// Claims the grader found supported (those read against the same sources and question in
    /// several cases are edited once).
    pub supported_claims: usize,
    /// Every probe, graded.
    pub probes: Vec<Probe>,
    /// Per edit type over the suite, then per segment and edit type.
    pub rows: Vec<Row>,
}

/// The suite's supported claims, each with its case.
fn supported_claims<'a>(cases: &'a [Case], results: &[CaseResult], per_case: usize) -> Vec<(&'a Case, String)> {
    let by_id: BTreeMap<&str, &CaseResult> = results.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut out = vec![];
    for c in cases {
        let Some(Some(Outcome::Ran(s))) = by_id.get(c.id.as_str()).map(|r| &r.metrics.support) else { continue };
        for claim in s.claims.iter().filter(|x| x.label == "supported").take(per_case) {
            out.push((c, claim.text.clone()));
        }
    }
    out
}

/// The case a probe is graded as, as a suite line: the original's question, contexts and segments,
/// the edited claim as output, and the probe in `metadata.probe`.
fn probe_line(c: &Case, p: &Probe, n: usize) -> serde_json::Value {
    let contexts: Vec<serde_json::Value> = c
        .contexts
        .iter()
        .map(|x| {
            let mut o = x.extra.clone();
            o.insert("id".into(), json!(x.id));
            o.insert("text".into(), json!(x.text));
            serde_json::Value::Object(o)
        })
        .collect();
    json!({
        "id": format!("{}#probe{n}:{}", c.id, p.edit.name()),
        "input": c.input,
        "output": p.text,
        "contexts": contexts,
        "segments": c.segments,
        "metadata": {"probe": {"case": c.id, "claim": p.claim, "edit": p.edit.name(), "expect": if p.expect_supported { "supported" } else { "unsupported" }}},
    })
}

/// Runs the probe over a suite and its results (graded for support): makes the probes, has
/// `grade_probes` grade them (given as cases and as the suite lines they were read from), and
/// returns the report and the probe suite's lines.
pub fn probe(
    cases: &[Case],
    results: &[CaseResult],
    opts: &Options,
    grade_probes: &mut dyn FnMut(&[Case], &[String]) -> Result<Vec<CaseResult>>,
) -> Result<(ProbeReport, Vec<String>)> {
    let claims = supported_claims(cases, &results, opts.claims_per_case);
    let mut probes = vec![];
    let mut probe_cases = vec![];
    let mut lines = vec![];
    // A claim read against the same sources in several cases is probed once.
    let mut seen = std::collections::HashSet::new();
    for (c, claim) in &claims {
        let sources: String = c.contexts.iter().map(|x| x.text.as_str()).collect::<Vec<_>>().join("\n\n");
        if !seen.insert((claim.clone(), sources.clone(), c.input.clone())) {
            continue;
        }
        let segment = opts.by.as_ref().map_or("all".to_string(), |k| c.segments.get(k).cloned().unwrap_or_else(|| "(none)".into()));
        // The claim alone first: the control its edits are measured against.
        for e in std::iter::once(Edit::Unedited).chain(Edit::ALL) {
            let Some(text) = edit(claim, &sources, e, opts.seed) else { continue };
            let p = Probe {
                case: c.id.clone(),
                claim: claim.clone(),
                edit: e,
                text,
                expect_supported: !e.must_flip(),
                segment: segment.clone(),
                graded_supported: None,
                score: None,
            };
            let line = probe_line(c, &p, probes.len()).to_string();
            // A probe line is read back as any suite line is, so that the file written is the suite graded.
            let case = crate::suite::parse_case(probes.len() + 1, &line).map_err(|e| crate::error::Error::Input { location: format!("probe of case {}", c.id), reason: e.to_string() })?;
            probe_cases.push(case);
            lines.push(line);
            probes.push(p);
        }
    }
    let graded = if probe_cases.is_empty() { vec![] } else { grade_probes(&probe_cases, &lines)? };
    let by_id: BTreeMap<&str, &CaseResult> = graded.iter().map(|r| (r.id.as_str(), r)).collect();
    for (p, c) in probes.iter_mut().zip(&probe_cases) {
        if let Some(Some(Outcome::Ran(s))) = by_id.get(c.id.as_str()).map(|r| &r.metrics.support) {
            p.graded_supported = Some(s.passed);
            // The weakest claim's P(entailment) (the case score is a share of claims).
            p.score = s.claims.iter().map(|c| c.score).reduce(f32::min);
        }
    }
    let mut rows = vec![];
    let scopes: Vec<String> = if opts.by.is_some() {
        let mut s: Vec<String> = probes.iter().map(|p| p.segment.clone()).collect();
        s.sort();
        s.dedup();
        std::iter::once("all".to_string()).chain(s).collect()
    } else {
        vec!["all".into()]
    };
    // An edit is measured only where the grader supports the claim alone (the control): a claim
    // supported in its case but not alone (it leans on the output's other sentences, or on its
    // question) says nothing of the edit.
    let alone: std::collections::BTreeSet<(&str, &str)> =
        probes.iter().filter(|p| p.edit == Edit::Unedited && p.graded_supported == Some(true)).map(|p| (p.case.as_str(), p.claim.as_str())).collect();
    for scope in scopes {
        for e in std::iter::once(Edit::Unedited).chain(Edit::ALL) {
            let counted = |p: &&Probe| e == Edit::Unedited || alone.contains(&(p.case.as_str(), p.claim.as_str()));
            let mine: Vec<&Probe> = probes.iter().filter(|p| p.edit == e && (scope == "all" || p.segment == scope)).filter(counted).collect();
            let graded = mine.iter().filter(|p| p.held().is_some()).count();
            let held = mine.iter().filter(|p| p.held() == Some(true)).count();
            rows.push(Row { segment: scope.clone(), edit: e, must_flip: e.must_flip(), graded, held });
        }
    }
    Ok((ProbeReport { cases: cases.len(), supported_claims: seen.len(), probes, rows }, lines))
}

/// The report.
pub fn doc(r: &ProbeReport) -> Doc {
    let mut d = Doc::new("Grader self-test (probe)", "probe");
    let (flip, keep): (Vec<&Row>, Vec<&Row>) = r.rows.iter().filter(|x| x.segment == "all" && x.edit != Edit::Unedited).partition(|x| x.must_flip);
    let control = r.rows.iter().find(|x| x.segment == "all" && x.edit == Edit::Unedited);
    let total = |rows: &[&Row]| {
        let (g, h) = rows.iter().fold((0, 0), |(g, h), x| (g + x.graded, h + x.held));
        if g == 0 {
            "no probe".to_string()
        } else {
            format!("{h} of {g} ({:.1}%)", 100.0 * h as f64 / g as f64)
        }
    };
    d.para(format!(
        "{} cases; {} claims the grader found supported were edited into {} probes. Changes caught (edits that must make a claim unsupported): {}. Invariants kept (edits that must not change the verdict): {}.",
        r.cases,
        r.supported_claims,
        r.probes.len(),
        total(&flip),
        total(&keep)
    ));
    if let Some(c) = control {
        d.para(format!(
            "Control: {} of {} claims are still supported read alone, without the rest of their output; the edits are counted on those only (the others lean on their context, and say nothing of an edit).",
            c.held, c.graded
        ));
    }
    let rows = r
        .rows
        .iter()
        .filter(|x| x.graded > 0)
        .map(|x| {
            vec![
                x.segment.clone(),
                x.edit.name().to_string(),
                match (x.edit, x.must_flip) {
                    (Edit::Unedited, _) => "control".into(),
                    (_, true) => "must flip".into(),
                    _ => "must keep".into(),
                },
                x.graded.to_string(),
                x.rate().map_or("-".into(), |v| format!("{:.1}%", v * 100.0)),
            ]
        })
        .collect();
    d.table(&["segment", "edit", "expectation", "probes", "held"], rows);
    let alone: std::collections::BTreeSet<(&str, &str)> =
        r.probes.iter().filter(|p| p.edit == Edit::Unedited && p.graded_supported == Some(true)).map(|p| (p.case.as_str(), p.claim.as_str())).collect();
    let misses: Vec<&Probe> =
        r.probes.iter().filter(|p| p.edit != Edit::Unedited && p.held() == Some(false) && alone.contains(&(p.case.as_str(), p.claim.as_str()))).collect();
    if !misses.is_empty() {
        d.heading(format!("Misses ({}; the first 20)", misses.len()));
        let rows = misses
            .iter()
            .take(20)
            .map(|p| {
                vec![
                    p.case.clone(),
                    p.edit.name().to_string(),
                    clip(&p.claim, 70),
                    clip(&p.text, 70),
                    format!("{} ({})", if p.graded_supported == Some(true) { "supported" } else { "not supported" }, p.score.map_or("-".into(), |s| format!("{s:.3}"))),
                ]
            })
            .collect();
        d.table(&["case", "edit", "claim", "edited", "grader said"], rows);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graders::results::{ClaimResult, SupportResult};

    /// A grader by words: a claim is supported when every word of it (lower-cased, punctuation and
    /// markers dropped) occurs in the contexts. It misses negations that remove words, and catches
    /// changed numbers.
    fn word_grader(cases: &[Case]) -> Result<Vec<CaseResult>> {
        Ok(cases
            .iter()
            .map(|c| {
                let ctx: String = c.contexts.iter().map(|x| x.text.to_lowercase()).collect::<Vec<_>>().join(" ");
                let words = |s: &str| -> Vec<String> {
                    crate::text::strip_markers(s, &crate::text::find_markers(s, &["1"])).split(|ch: char| !ch.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
                };
                let known = words(&ctx);
                let ok = words(&c.output).iter().all(|w| known.contains(w) || w == "according" || w == "to" || w == "sources");
                let claim = ClaimResult {
                    text: c.output.trim().to_string(),
                    span: [0, c.output.len()],
                    score: if ok { 1.0 } else { 0.0 },
                    contradiction: 0.0,
                    label: if ok { "supported".into() } else { "unsupported".into() },
                    evidence: None,
                    from: None,
                    graded: None,
                    specifics: vec![],
                    verbatim: false,
                    denied: false,
                    swapped: None,
                };
                let mut r = CaseResult::new(c, BTreeMap::new());
                r.metrics.support = Some(Outcome::Ran(SupportResult { score: claim.score, passed: ok, claims: vec![claim], output: None, spans: vec![], about_sources: vec![] }));
                r
            })
            .collect())
    }

    #[test]
    fn probes_are_made_from_supported_claims_graded_and_counted() {
        let line = |id: &str, out: &str, seg: &str| {
            crate::suite::parse_case(
                1,
                &json!({"id": id, "input": "When?", "output": out, "contexts": ["Refunds are accepted within 30 days of delivery. The shop is in Lyon."], "segments": {"team": seg}}).to_string(),
            )
            .unwrap()
        };
        let cases = vec![
            line("a", "Refunds are accepted within 30 days of delivery.", "billing"),
            line("b", "Refunds are accepted within 90 days.", "billing"),
            line("c", "The shop is in Lyon.", "stores"),
        ];
        let results = word_grader(&cases).unwrap();
        let mut probe_cases = vec![];
        let mut grade = |cs: &[Case], lines: &[String]| {
            assert_eq!(cs.len(), lines.len());
            probe_cases = cs.to_vec();
            word_grader(cs)
        };
        let (r, lines) = probe(&cases, &results, &Options { by: Some("team".into()), ..Options::default() }, &mut grade).unwrap();
        assert_eq!(r.supported_claims, 2, "b's 90 days is not supported: not probed");
        assert_eq!((probe_cases.len(), lines.len()), (r.probes.len(), r.probes.len()));
        let row = |seg: &str, e: Edit| r.rows.iter().find(|x| x.segment == seg && x.edit == e).unwrap().clone();
        // The word grader catches a changed number and unit, keeps every invariant, and misses the
        // negation (every word of "are not accepted" but "not" is in the context... and "not" is not):
        assert_eq!(row("all", Edit::NumberChanged).rate(), Some(1.0));
        assert_eq!(row("all", Edit::UnitChanged).rate(), Some(1.0));
        assert_eq!(row("all", Edit::Casing).rate(), Some(1.0));
        assert_eq!(row("all", Edit::CitationMarker).rate(), Some(1.0));
        assert_eq!(row("stores", Edit::NumberChanged).graded, 0, "Lyon's claim has no number");
        assert!(row("billing", Edit::Negated).graded == 1);
        // Each probe case keeps the original's contexts and segments and says what it tests.
        let p = &probe_cases[0];
        assert!(p.id.starts_with("a#probe0:") && p.contexts == cases[0].contexts && p.segments == cases[0].segments);
        assert_eq!(p.metadata.as_ref().unwrap()["probe"]["case"], "a");
        let text = doc(&r).text();
        assert!(text.contains("Changes caught") && text.contains("| billing | number_changed | must flip | 1 | 100.0% |"), "{text}");
        // The same suite gives the same probes.
        let (again, _) = probe(&cases, &results, &Options { by: Some("team".into()), ..Options::default() }, &mut |cs: &[Case], _: &[String]| word_grader(cs)).unwrap();
        assert_eq!(again, r);
    }
}

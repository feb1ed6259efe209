//! `candor report`: a run's results as a table, Markdown, JSON or one self-contained HTML page.
//!
//! Groups: the whole run, every value of the chosen segment keys, and pairs of keys (`task+risk`).
//! Each group: cases, pass rate with a Wilson 95% interval, mean score per metric with a bootstrap
//! 95% interval (fixed seed), failures by class. Groups with fewer than `min_cases` cases are marked
//! "too few" and are not ranked. Then the worst cases with their failing claims and evidence.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::escape::{self, html as esc, terminal};
use super::{by_group, calibrate, segment_groups, segment_keys, BUILT_IN_METRICS};
use crate::config::GradeConfig;
use crate::graders::{CaseResult, Failure, Outcome};
use crate::stats;

/// A metric's mean in a group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeanScore {
    /// Cases where it ran.
    pub cases: usize,
    /// The mean.
    pub mean: f64,
    /// Bootstrap 95% interval.
    pub interval: [f64; 2],
}

/// One group of cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// `overall`, `key=value` or `key=value,key=value`.
    pub name: String,
    /// Cases.
    pub cases: usize,
    /// Cases that passed (at least one metric ran).
    pub passed: usize,
    /// Cases skipped entirely (no metric ran, nothing failed): outside the pass rate.
    pub skipped: usize,
    /// Pass rate of the graded cases: passed / (cases - skipped).
    pub pass_rate: f64,
    /// Wilson 95% interval.
    pub pass_rate_ci: [f64; 2],
    /// Per metric.
    pub metrics: BTreeMap<String, MeanScore>,
    /// Cases per failure class.
    pub failures: BTreeMap<String, usize>,
    /// Of those, the cases that passed all the same ([`super::passing_with_failures`]).
    pub failures_passed: BTreeMap<String, usize>,
    /// Fewer cases than the report's minimum: shown, not ranked.
    pub too_few: bool,
}

/// A failing claim or sentence of a worst case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The metric.
    pub metric: String,
    /// The claim or sentence.
    pub text: String,
    /// Its label or status.
    pub verdict: String,
    /// Its score.
    pub score: Option<f64>,
    /// Where the evidence is: the context (and, where the suite cannot be read, the character span).
    pub evidence: Option<String>,
    /// The evidence quoted from the suite, the span marked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote: Option<Quote>,
    /// Parts of `text` a token-classifier support model marked as hallucinated (the HTML report
    /// highlights them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub marked: Vec<String>,
}

/// Evidence as text: the span of a context the verdict rests on, with a little of what surrounds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quote {
    /// Up to [`QUOTE_AROUND`] characters before the span (`…` first where cut).
    pub before: String,
    /// The span (its middle elided past [`QUOTE_SPAN`] characters).
    pub text: String,
    /// Up to [`QUOTE_AROUND`] characters after it.
    pub after: String,
}

/// Characters of context shown on each side of a quoted span.
pub const QUOTE_AROUND: usize = 60;
/// Characters of a span quoted whole; a longer one keeps its start and end around `…`.
pub const QUOTE_SPAN: usize = 320;

/// The contexts of the graded suite, by case id, for quoting evidence.
#[derive(Debug, Default)]
pub struct SuiteContexts {
    cases: std::collections::HashMap<String, Vec<(String, String)>>,
}

impl SuiteContexts {
    /// Reads the contexts of `cases` (as the suite reader gives them).
    pub fn from_cases(cases: impl IntoIterator<Item = crate::suite::Case>) -> Self {
        let cases = cases.into_iter().map(|c| (c.id, c.contexts.into_iter().map(|x| (x.id, x.text)).collect())).collect();
        Self { cases }
    }

    /// The quote of characters `span` of context `context` of case `case`, if the suite has them.
    pub fn quote(&self, case: &str, context: &str, span: [usize; 2]) -> Option<Quote> {
        let text = &self.cases.get(case)?.iter().find(|(id, _)| id == context)?.1;
        let chars: Vec<char> = text.chars().collect();
        let [a, b] = span;
        if a > b || b > chars.len() {
            return None;
        }
        let piece = |r: std::ops::Range<usize>| chars[r].iter().collect::<String>();
        let before = if a > QUOTE_AROUND { format!("…{}", piece(a - QUOTE_AROUND..a)) } else { piece(0..a) };
        let after = if chars.len() - b > QUOTE_AROUND { format!("{}…", piece(b..b + QUOTE_AROUND)) } else { piece(b..chars.len()) };
        let text = if b - a > QUOTE_SPAN {
            format!("{} … {}", piece(a..a + QUOTE_SPAN / 2).trim_end(), piece(b - QUOTE_SPAN / 2..b).trim_start())
        } else {
            piece(a..b)
        };
        Some(Quote { before, text, after })
    }
}

impl Quote {
    /// `"…before «span» after…"`, for the terminal and Markdown: each run of whitespace one space.
    pub fn marked(&self) -> String {
        format!("\"{}«{}»{}\"", squeeze(&self.before), squeeze(&self.text).trim(), squeeze(&self.after))
    }
}

/// Each run of whitespace (newlines included) as one space.
fn squeeze(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    out
}

/// One of the worst cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorstCase {
    /// Case id.
    pub id: String,
    /// Its lowest metric score.
    pub lowest: f64,
    /// Failure classes.
    pub failures: Vec<String>,
    /// What failed.
    pub findings: Vec<Finding>,
}

/// A case row for the HTML table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseRow {
    /// Case id.
    pub id: String,
    /// Passed?
    pub passed: bool,
    /// Scores by metric.
    pub scores: BTreeMap<String, f64>,
    /// Failure classes.
    pub failures: Vec<String>,
    /// Segments, `k=v` joined.
    pub segments: String,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Groups, overall first.
    pub groups: Vec<Group>,
    /// The worst cases.
    pub worst: Vec<WorstCase>,
    /// Score histograms: metric -> 10 bin counts over [0, 1].
    pub histograms: BTreeMap<String, Vec<usize>>,
    /// Calibration where labels exist.
    pub calibration: Vec<calibrate::Calibration>,
    /// Models that graded.
    pub models: BTreeMap<String, String>,
    /// Minimum cases for a group to be ranked.
    pub min_cases: usize,
    /// Every case, for the HTML table.
    #[serde(skip)]
    pub rows: Vec<CaseRow>,
    /// The segment keys (and `a+b` pairs) the groups were made by.
    #[serde(skip)]
    pub keys: Vec<String>,
    /// Expected cost per case by group, where a gate policy's `[cost]` table was given
    /// ([`Report::with_costs`]): the estimate, or why it cannot be measured there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub costs: Vec<GroupCost>,
    /// Agreement with the labels over the whole run, as the run's summary measures it (the same
    /// cases, verdicts and ranking `candor grade` reported; see [`Report::agreement`]).
    #[serde(skip)]
    pub agreement: Vec<AgreementRow>,
    /// Why the run these results come from cannot be taken as whole (it did not finish, or its
    /// results changed since: [`super::manifest::Provenance::incomplete_reason`]), set with
    /// [`Report::incomplete`]; every format then opens with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

/// A group's expected cost per case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupCost {
    /// The group.
    pub group: String,
    /// Mean cost per priced case, its interval, the total and how many cases were priced.
    pub estimate: Option<super::cost::Estimate>,
    /// Why it cannot be measured, where it cannot.
    pub unmeasured: Option<String>,
    /// The interval's confidence.
    pub confidence: f64,
}

impl GroupCost {
    fn text(&self) -> String {
        match (&self.estimate, &self.unmeasured) {
            (Some(e), _) => e.describe(self.confidence),
            (None, Some(why)) => format!("cannot be measured: {why}"),
            _ => "-".into(),
        }
    }
}

fn group(name: String, rs: &[&CaseResult], min_cases: usize, seed: u64) -> Group {
    // Counts, pass rate and failure classes as the summary counts them; the report adds bootstrap
    // intervals of the mean scores.
    let counts = super::GroupSummary::of(rs);
    let mut scores: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in rs {
        for (m, s, _) in r.metrics.scores() {
            scores.entry(m.to_string()).or_default().push(s as f64);
        }
    }
    let metrics = scores
        .into_iter()
        .map(|(m, v)| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let (a, b) = stats::bootstrap_mean_ci(&v, 1000, 0.05, seed).unwrap_or((mean, mean));
            (m, MeanScore { cases: v.len(), mean, interval: [a, b] })
        })
        .collect();
    Group {
        name,
        cases: counts.cases,
        passed: counts.passed,
        skipped: counts.skipped,
        pass_rate: counts.pass_rate,
        pass_rate_ci: counts.pass_rate_ci,
        metrics,
        failures: counts.failures,
        failures_passed: counts.failures_passed,
        too_few: counts.cases < min_cases,
    }
}

/// Where a finding's evidence is, as the report prints it, and its quote where the suite has it:
/// then the context's id alone, else the id and the character span.
fn evidence_of(e: &crate::graders::results::Evidence, case: &str, sources: Option<&SuiteContexts>) -> (Option<String>, Option<Quote>) {
    match sources.and_then(|s| s.quote(case, &e.context, e.span)) {
        Some(q) => (Some(format!("context {}", e.context)), Some(q)),
        None => (Some(format!("context {} [{}..{}]", e.context, e.span[0], e.span[1])), None),
    }
}

/// `text` escaped for HTML with each of `marks` (in order, each after the previous) in `<mark>`.
fn marked_html(text: &str, marks: &[String]) -> String {
    let mut out = String::new();
    let mut rest = text;
    for m in marks {
        if let Some(at) = rest.find(m.as_str()) {
            out.push_str(&esc(&rest[..at]));
            out.push_str("<mark class=span>");
            out.push_str(&esc(m));
            out.push_str("</mark>");
            rest = &rest[at + m.len()..];
        }
    }
    out.push_str(&esc(rest));
    out
}

fn findings(r: &CaseResult, sources: Option<&SuiteContexts>) -> Vec<Finding> {
    let mut out = vec![];
    if let Some(Outcome::Ran(s)) = &r.metrics.support {
        for c in s.claims.iter().filter(|c| c.label != "supported") {
            let (evidence, quote) = c.evidence.as_ref().map(|e| evidence_of(e, &r.id, sources)).unwrap_or_default();
            // The hallucinated spans inside the claim, where its text holds them as they are.
            let marked = s
                .spans
                .iter()
                .filter(|sp| sp.span[0] < c.span[1] && sp.span[1] > c.span[0] && c.text.contains(sp.text.trim()))
                .map(|sp| sp.text.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
            out.push(Finding { metric: "support".into(), text: c.text.clone(), verdict: c.label.clone(), score: Some(c.score as f64), evidence, quote, marked });
        }
        // Every claim passed but the output read whole did not: what fails is outside the claims.
        if let Some(o) = s.output.as_ref().filter(|_| r.failures.contains(&Failure::UnsupportedOutput)) {
            let (evidence, quote) = o.evidence.as_ref().map(|e| evidence_of(e, &r.id, sources)).unwrap_or_default();
            out.push(Finding {
                metric: "support".into(),
                text: "(the whole output)".into(),
                verdict: Failure::UnsupportedOutput.name().into(),
                score: Some(o.score as f64),
                evidence,
                quote,
                marked: vec![],
            });
        }
    }
    if let Some(Outcome::Ran(c)) = &r.metrics.citation {
        for s in c.sentences.iter().filter(|s| s.status != "supported") {
            out.push(Finding {
                metric: "citation".into(),
                text: s.text.clone(),
                verdict: s.status.clone(),
                score: s.score.map(|x| x as f64),
                evidence: (!s.cites.is_empty()).then(|| format!("cites {}", s.cites.join(", "))),
                quote: None,
                marked: vec![],
            });
        }
    }
    if let Some(Outcome::Ran(c)) = &r.metrics.consistency {
        if !c.passed {
            out.push(Finding {
                metric: "consistency".into(),
                text: String::new(),
                verdict: r.failures.iter().filter(|f| matches!(f, Failure::InconsistentSamples | Failure::ReferenceMismatch)).map(|f| f.name()).collect::<Vec<_>>().join(", "),
                score: Some(c.score as f64),
                evidence: None,
                quote: None,
                marked: vec![],
            });
        }
    }
    out
}

/// Builds the report. `by` holds segment keys, and pairs as `a+b`; empty means every key. `sources`
/// (the graded suite's contexts) lets the evidence be quoted.
pub fn build(results: &[CaseResult], by: &[String], min_cases: usize, worst: usize, cfg: &GradeConfig, sources: Option<&SuiteContexts>) -> Report {
    let seed = 0x5EED;
    let keys: Vec<String> = if by.is_empty() { segment_keys(results) } else { by.to_vec() };
    let all: Vec<&CaseResult> = results.iter().collect();
    let mut groups = vec![group("overall".into(), &all, min_cases, seed)];
    for key in &keys {
        let mut buckets: BTreeMap<String, Vec<&CaseResult>> = BTreeMap::new();
        for r in results {
            if let Some(g) = by_group(r, key) {
                buckets.entry(g).or_default().push(r);
            }
        }
        let mut gs: Vec<Group> = buckets.into_iter().map(|(n, rs)| group(n, &rs, min_cases, seed)).collect();
        // Ranked groups by pass rate (worst first); those with too few cases after, unranked.
        gs.sort_by(|a, b| a.too_few.cmp(&b.too_few).then(if a.too_few { a.name.cmp(&b.name) } else { a.pass_rate.total_cmp(&b.pass_rate) }));
        groups.extend(gs);
    }
    let lowest = |r: &CaseResult| r.metrics.scores().iter().map(|(_, s, _)| *s as f64).fold(1.0, f64::min);
    let mut failing: Vec<&CaseResult> = results.iter().filter(|r| !r.passed && !super::skipped_entirely(r)).collect();
    failing.sort_by(|a, b| lowest(a).total_cmp(&lowest(b)).then(b.failures.len().cmp(&a.failures.len())));
    let worst = failing
        .iter()
        .take(worst)
        .map(|r| WorstCase {
            id: r.id.clone(),
            lowest: lowest(r),
            failures: r.failures.iter().map(|f| f.name().to_string()).collect(),
            findings: findings(r, sources),
        })
        .collect();
    let mut histograms: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for r in results {
        for (m, s, _) in r.metrics.scores() {
            let h = histograms.entry(m.to_string()).or_insert_with(|| vec![0; 10]);
            h[((s as f64 * 10.0) as usize).min(9)] += 1;
        }
    }
    let rows = results
        .iter()
        .map(|r| CaseRow {
            id: r.id.clone(),
            passed: r.passed,
            scores: r.metrics.scores().into_iter().map(|(m, s, _)| (m.to_string(), s as f64)).collect(),
            failures: r.failures.iter().map(|f| f.name().to_string()).collect(),
            segments: segment_groups(r).collect::<Vec<_>>().join(" "),
        })
        .collect();
    let calibration = calibrate::calibrate(results, cfg, &[]);
    let mut summary = super::SummaryBuilder::new();
    for r in results {
        summary.add(r);
    }
    let agreement = summary
        .finish(0, Default::default())
        .overall
        .agreement
        .into_iter()
        .filter(|(_, a)| a.label != "score")
        .map(|(metric, a)| AgreementRow {
            threshold: calibration.iter().find(|c| c.group == "overall" && c.metric == metric).map(|c| c.current_threshold),
            metric,
            label: a.label,
            cases: a.cases,
            balanced_accuracy: a.balanced_accuracy,
            roc_auc: a.roc_auc,
        })
        .collect();
    Report {
        groups,
        worst,
        histograms,
        calibration,
        models: super::models_of(results),
        min_cases,
        rows,
        keys,
        costs: vec![],
        agreement,
        incomplete: None,
    }
}

impl Report {
    /// The report of a run that cannot be taken as whole, saying why (`reason`) at its top.
    pub fn incomplete(mut self, reason: Option<String>) -> Self {
        self.incomplete = reason;
        self
    }

    /// Adds each group's expected cost per case under `cost` (a gate policy's `[cost]` table), from
    /// the cases of `results` in that group.
    pub fn with_costs(mut self, results: &[CaseResult], cost: &super::cost::CostPolicy) -> Self {
        // A priced segment no case has (misspelt) would drop its prices: no group is priced then.
        let all_groups: std::collections::BTreeSet<String> = results.iter().flat_map(segment_groups).collect();
        let missing = cost.missing_segment(|seg| all_groups.contains(seg)).map(str::to_string);
        let keys = self.keys.clone();
        self.costs = self
            .groups
            .iter()
            .map(|g| {
                if let Some(seg) = &missing {
                    return GroupCost { group: g.name.clone(), estimate: None, unmeasured: Some(format!("[cost.segments.\"{seg}\"]: no case has this segment")), confidence: cost.confidence };
                }
                // Membership as the report grouped the cases (a value may hold ',' or '=').
                let member = |r: &&CaseResult| g.name == "overall" || keys.iter().any(|k| by_group(r, k).as_deref() == Some(g.name.as_str()));
                let cases: Vec<&CaseResult> = results.iter().filter(member).collect();
                let mut b = super::SummaryBuilder::new();
                for r in &cases {
                    b.add(r);
                }
                let summary = b.finish(0, Default::default());
                let (estimate, unmeasured) = match cost.estimate(&summary.overall, &cases) {
                    Ok(e) => (Some(e), None),
                    Err(why) => (None, Some(why)),
                };
                GroupCost { group: g.name.clone(), estimate, unmeasured, confidence: cost.confidence }
            })
            .collect();
        self
    }
}

/// The grader's agreement with the labels on one metric, over the whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct AgreementRow {
    /// The metric.
    pub metric: String,
    /// The label key.
    pub label: String,
    /// Labelled cases where the metric ran.
    pub cases: usize,
    /// The threshold the verdicts used, where the metric has one.
    pub threshold: Option<f64>,
    /// Balanced accuracy of the verdicts at it.
    pub balanced_accuracy: Option<f64>,
    /// ROC-AUC of the probability.
    pub roc_auc: Option<f64>,
}

impl AgreementRow {
    /// One line for the terminal.
    pub fn sentence(&self) -> String {
        format!(
            "agreement of {} with label `{}` on {} cases: balanced accuracy {}{}, ROC-AUC {}",
            self.metric,
            terminal(&self.label),
            self.cases,
            opt(self.balanced_accuracy),
            self.at(" (threshold {})"),
            opt(self.roc_auc)
        )
    }

    /// `form` with the threshold in place of `{}`, or nothing where the metric has none. Thresholds
    /// are f32 in the config: printed as such, 0.3 and not 0.30000001192092896.
    fn at(&self, form: &str) -> String {
        self.threshold.map_or_else(String::new, |t| form.replace("{}", &(t as f32).to_string()))
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}

impl Report {
    /// Agreement with the labels where cases carry them (the run as a whole): the run summary's
    /// measure, so that `report` says what `grade` said of the same results. Calibration (below it)
    /// re-derives verdicts from claim scores at each threshold and leaves out cases with nothing to
    /// score; its figures may differ, and are shown as calibration's.
    pub fn agreement(&self) -> Vec<AgreementRow> {
        self.agreement.clone()
    }

    fn metric_names(&self) -> Vec<&'static str> {
        BUILT_IN_METRICS.iter().copied().filter(|m| self.groups.first().is_some_and(|g| g.metrics.contains_key(*m))).collect()
    }

    /// Plain text for the terminal.
    pub fn table(&self) -> String {
        let ms = self.metric_names();
        let mut s = String::new();
        if let Some(why) = &self.incomplete {
            let _ = writeln!(s, "INCOMPLETE: {}\n", terminal(why));
        }
        let _ = write!(s, "{:<32} {:>6} {:>22}", "group", "cases", "pass rate (95% CI)");
        for m in &ms {
            let _ = write!(s, " {:>24}", format!("{m} mean (95% CI)"));
        }
        let _ = writeln!(s);
        for g in &self.groups {
            let _ = write!(s, "{:<32} {:>6} {:>6.1}% ({:>5.1}-{:>5.1})", terminal(&g.name), g.cases, 100.0 * g.pass_rate, 100.0 * g.pass_rate_ci[0], 100.0 * g.pass_rate_ci[1]);
            for m in &ms {
                match g.metrics.get(*m) {
                    Some(x) => {
                        let _ = write!(s, " {:>24}", format!("{:.3} ({:.3}-{:.3})", x.mean, x.interval[0], x.interval[1]));
                    }
                    None => {
                        let _ = write!(s, " {:>24}", "-");
                    }
                }
            }
            if g.too_few {
                let _ = write!(s, "  too few cases (< {}), not ranked", self.min_cases);
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s, "\nfailures (cases): {}", fmt_counts(&self.groups[0].failures));
        if let Some(line) = super::passing_with_failures(&self.groups[0].failures_passed) {
            let _ = writeln!(s, "{line}");
        }
        if !self.costs.is_empty() {
            let _ = writeln!(s, "\nexpected cost per case (the policy's [cost] prices):");
            for c in &self.costs {
                let _ = writeln!(s, "  {:<30} {}", terminal(&c.group), c.text());
            }
        }
        for a in self.agreement() {
            let _ = writeln!(s, "{}", a.sentence());
        }
        let _ = writeln!(s, "\nworst cases:");
        for w in &self.worst {
            let _ = writeln!(s, "  {} (lowest score {:.3}): {}", terminal(&w.id), w.lowest, w.failures.join(", "));
            for f in &w.findings {
                let _ = writeln!(
                    s,
                    "    {} {}{}: {}{}",
                    f.metric,
                    terminal(&f.verdict),
                    f.score.map(|x| format!(" {x:.3}")).unwrap_or_default(),
                    terminal(&f.text),
                    f.evidence.as_ref().map(|e| format!("  [{}]", terminal(e))).unwrap_or_default()
                );
                if let Some(q) = &f.quote {
                    let _ = writeln!(s, "      evidence: {}", terminal(&q.marked()));
                }
            }
        }
        s
    }

    /// Markdown, for a pull request or a wiki.
    pub fn markdown(&self) -> String {
        let ms = self.metric_names();
        let mut s = String::from("## candor report\n\n");
        if let Some(why) = &self.incomplete {
            let _ = writeln!(s, "> **INCOMPLETE:** {}\n", super::escape::markdown(why));
        }
        s.push_str("| group | cases | pass rate (95% CI) |");
        for m in &ms {
            let _ = write!(s, " {m} mean (95% CI) |");
        }
        s.push_str("\n|---|---:|---:|");
        for _ in &ms {
            s.push_str("---:|");
        }
        s.push('\n');
        for g in &self.groups {
            let name = escape::markdown(&g.name);
            let name = if g.too_few { format!("{name} *(too few)*") } else { name };
            let _ = write!(s, "| {} | {} | {:.1}% ({:.1}-{:.1}) |", name, g.cases, 100.0 * g.pass_rate, 100.0 * g.pass_rate_ci[0], 100.0 * g.pass_rate_ci[1]);
            for m in &ms {
                match g.metrics.get(*m) {
                    Some(x) => {
                        let _ = write!(s, " {:.3} ({:.3}-{:.3}) |", x.mean, x.interval[0], x.interval[1]);
                    }
                    None => s.push_str(" - |"),
                }
            }
            s.push('\n');
        }
        let _ = writeln!(s, "\n**Failures:** {}\n", fmt_counts(&self.groups[0].failures));
        if !self.costs.is_empty() {
            s.push_str("### Expected cost per case (the policy's [cost] prices)\n\n| group | expected cost |\n|---|---|\n");
            for c in &self.costs {
                let _ = writeln!(s, "| {} | {} |", escape::markdown(&c.group), escape::markdown(&c.text()));
            }
            s.push('\n');
        }
        let agreement = self.agreement();
        if !agreement.is_empty() {
            s.push_str("### Agreement with the labels\n\n| metric | label | labelled cases | balanced accuracy (at threshold) | ROC-AUC |\n|---|---|---:|---:|---:|\n");
            for a in &agreement {
                let _ = writeln!(s, "| {} | `{}` | {} | {}{} | {} |", a.metric, a.label, a.cases, opt(a.balanced_accuracy), a.at(" (at {})"), opt(a.roc_auc));
            }
            s.push('\n');
        }
        s.push_str("### Worst cases\n\n");
        for w in &self.worst {
            let _ = writeln!(s, "- {} (lowest score {:.3}): {}", escape::markdown_code(&w.id, false), w.lowest, w.failures.join(", "));
            for f in &w.findings {
                let _ = writeln!(
                    s,
                    "  - {} *{}*{}: {}{}",
                    f.metric,
                    escape::markdown(&f.verdict),
                    f.score.map(|x| format!(" {x:.3}")).unwrap_or_default(),
                    escape::markdown(&f.text),
                    match (&f.quote, &f.evidence) {
                        (Some(q), Some(e)) => format!("<br>evidence, {}: {}", escape::markdown(e), escape::markdown(&q.marked())),
                        (None, Some(e)) => format!(" [{}]", escape::markdown(e)),
                        _ => String::new(),
                    }
                );
            }
        }
        s
    }

    /// One self-contained HTML page: inline SVG charts, a searchable case table, no network.
    pub fn html(&self) -> String {
        let ms = self.metric_names();
        let mut h = String::new();
        h.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>candor report</title><style>");
        h.push_str("body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}.num{text-align:right}.fail{color:#b00020}.ok{color:#18794e}.few{color:#888}svg text{font:11px system-ui,sans-serif}.charts{display:flex;flex-wrap:wrap;gap:24px}#q{padding:4px;width:320px}");
        h.push_str("</style></head><body>\n<h1>candor report</h1>\n");
        if let Some(why) = &self.incomplete {
            let _ = writeln!(h, "<p class=\"fail\" role=\"alert\"><strong>INCOMPLETE:</strong> {}</p>", esc(why));
        }
        let _ = writeln!(h, "<p>{} cases; models: {}</p>", self.groups[0].cases, esc(&self.models.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")));
        h.push_str("<h2>Pass rate by segment (95% Wilson interval)</h2>\n");
        h.push_str(&self.svg_pass_rates());
        h.push_str("<h2>Score distributions</h2>\n<div class=\"charts\">");
        for m in &ms {
            if let Some(hist) = self.histograms.get(*m) {
                h.push_str(&svg_histogram(m, hist));
            }
        }
        h.push_str("</div>\n<h2>Failure classes</h2>\n");
        h.push_str(&svg_bars(&self.groups[0].failures));
        if let Some(n) = self.groups[0].failures.get("reviewer_disagreement").filter(|&&n| n > 0) {
            let _ = writeln!(
                h,
                "<p class=note>{n} case(s) have reviewers who disagree (<code>reviewer_disagreement</code>): <code>candor agreement RESULTS</code> measures the reviewers against each other and the grader (<a href=\"{docs}#agreement\">{docs}#agreement</a>).</p>",
                docs = super::AUDIT_DOCS
            );
        }
        if !self.calibration.is_empty() {
            h.push_str("<h2>Reliability (where cases carry labels)</h2>\n<div class=\"charts\">");
            for c in self.calibration.iter().filter(|c| c.group == "overall") {
                h.push_str(&svg_reliability(c));
            }
            h.push_str("</div>\n");
        }
        let agreement = self.agreement();
        if !agreement.is_empty() {
            h.push_str("<h2>Agreement with the labels</h2>\n<table><tr><th>metric</th><th>label</th><th class=num>labelled cases</th><th class=num>balanced accuracy (at threshold)</th><th class=num>ROC-AUC</th></tr>\n");
            for a in &agreement {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td class=num>{}</td><td class=num>{}{}</td><td class=num>{}</td></tr>",
                    esc(&a.metric),
                    esc(&a.label),
                    a.cases,
                    opt(a.balanced_accuracy),
                    esc(&a.at(" (at {})")),
                    opt(a.roc_auc)
                );
            }
            h.push_str("</table>\n");
        }
        if !self.costs.is_empty() {
            h.push_str("<h2>Expected cost per case (the policy's [cost] prices)</h2>\n<table><tr><th>group</th><th>expected cost</th></tr>\n");
            for c in &self.costs {
                let _ = writeln!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(&c.group), esc(&c.text()));
            }
            h.push_str("</table>\n");
        }
        h.push_str("<h2>Groups</h2>\n<table><tr><th>group</th><th class=num>cases</th><th class=num>pass rate (95% CI)</th>");
        for m in &ms {
            let _ = write!(h, "<th class=num>{m} mean (95% CI)</th>");
        }
        h.push_str("</tr>\n");
        for g in &self.groups {
            let cls = if g.too_few { " class=few" } else { "" };
            let _ = write!(
                h,
                "<tr{cls}><td>{}{}</td><td class=num>{}</td><td class=num>{:.1}% ({:.1}-{:.1})</td>",
                esc(&g.name),
                if g.too_few { " (too few)" } else { "" },
                g.cases,
                100.0 * g.pass_rate,
                100.0 * g.pass_rate_ci[0],
                100.0 * g.pass_rate_ci[1]
            );
            for m in &ms {
                match g.metrics.get(*m) {
                    Some(x) => {
                        let _ = write!(h, "<td class=num>{:.3} ({:.3}-{:.3})</td>", x.mean, x.interval[0], x.interval[1]);
                    }
                    None => h.push_str("<td class=num>-</td>"),
                }
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n<h2>Worst cases</h2>\n<ul>");
        for w in &self.worst {
            let _ = write!(h, "<li><b>{}</b> (lowest score {:.3}): {}<ul>", esc(&w.id), w.lowest, esc(&w.failures.join(", ")));
            for f in &w.findings {
                let _ = write!(
                    h,
                    "<li>{} <i>{}</i>{}: {}{}</li>",
                    f.metric,
                    esc(&f.verdict),
                    f.score.map(|x| format!(" {x:.3}")).unwrap_or_default(),
                    marked_html(&f.text, &f.marked),
                    match (&f.quote, &f.evidence) {
                        (Some(q), Some(e)) => format!(
                            "<br><span class=few>evidence, {}:</span> <q>{}<mark>{}</mark>{}</q>",
                            esc(e),
                            esc(&squeeze(&q.before)),
                            esc(squeeze(&q.text).trim()),
                            esc(&squeeze(&q.after))
                        ),
                        (None, Some(e)) => format!(" <span class=few>[{}]</span>", esc(e)),
                        _ => String::new(),
                    }
                );
            }
            h.push_str("</ul></li>");
        }
        h.push_str("</ul>\n<h2>Cases</h2>\n<p><input id=q placeholder=\"filter: id, segment, failure class\"> <span id=shown></span></p>\n<table id=cases><thead><tr><th>id</th><th>passed</th>");
        for m in &ms {
            let _ = write!(h, "<th class=num>{m}</th>");
        }
        h.push_str("<th>failures</th><th>segments</th></tr></thead><tbody></tbody></table>\n");
        // The rows travel as JSON and are drawn by script, so 100,000 cases stay a light page.
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                let scores: Vec<serde_json::Value> = ms.iter().map(|m| r.scores.get(*m).map_or(serde_json::Value::Null, |x| serde_json::json!((x * 1000.0).round() / 1000.0))).collect();
                serde_json::json!([r.id, r.passed, scores, r.failures.join(" "), r.segments])
            })
            .collect();
        let data = escape::json_in_html(&serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into()));
        let _ = write!(h, "<script id=data type=\"application/json\">{data}</script>\n");
        let _ = writeln!(
            h,
            "<p class=note>Is the suite still the traffic, and the grader still right on it? <code>candor drift</code> (the suite against new traffic), <code>candor coverage</code> (the traffic's topics the suite misses) and <code>candor probe</code> (edits that must flip the grader): <a href=\"{docs}\">{docs}</a> in candor's source.</p>",
            docs = super::AUDIT_DOCS
        );
        h.push_str(SCRIPT);
        h.push_str("</body></html>\n");
        h
    }

    fn svg_pass_rates(&self) -> String {
        let gs: Vec<&Group> = self.groups.iter().filter(|g| !g.too_few).take(40).collect();
        let row = 18.0;
        let (left, width) = (230.0, 420.0);
        let height = gs.len() as f64 * row + 30.0;
        let mut s = format!("<svg class=chart role=img aria-label=\"pass rate by segment\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">", left + width + 60.0, left + width + 60.0);
        for (i, g) in gs.iter().enumerate() {
            let y = i as f64 * row + 4.0;
            let _ = write!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", left - 6.0, y + 12.0, esc(&g.name));
            let _ = write!(s, "<rect x=\"{left}\" y=\"{y}\" width=\"{:.1}\" height=\"13\" fill=\"#6b9bd1\"/>", width * g.pass_rate);
            let (a, b) = (left + width * g.pass_rate_ci[0], left + width * g.pass_rate_ci[1]);
            let _ = write!(s, "<line x1=\"{a:.1}\" x2=\"{b:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#222\"/>", y + 6.5, y + 6.5);
            let _ = write!(s, "<text x=\"{:.1}\" y=\"{}\">{:.0}%</text>", left + width + 6.0, y + 12.0, 100.0 * g.pass_rate);
        }
        let axis = gs.len() as f64 * row + 8.0;
        for k in 0..=4 {
            let x = left + width * k as f64 / 4.0;
            let _ = write!(s, "<line x1=\"{x}\" x2=\"{x}\" y1=\"0\" y2=\"{axis}\" stroke=\"#ccc\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}%</text>", axis + 14.0, k * 25);
        }
        s.push_str("</svg>\n");
        s
    }
}

fn svg_histogram(metric: &str, counts: &[usize]) -> String {
    let (w, h) = (300.0, 150.0);
    let max = *counts.iter().max().unwrap_or(&1).max(&1) as f64;
    let bw = w / counts.len() as f64;
    let mut s = format!("<svg class=chart role=img aria-label=\"{metric} score histogram\" width=\"{w}\" height=\"{}\"><text x=\"0\" y=\"12\">{metric} score</text>", h + 34.0);
    for (i, c) in counts.iter().enumerate() {
        let bh = (h - 20.0) * *c as f64 / max;
        let _ = write!(s, "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#8fbc8f\"><title>{:.1}-{:.1}: {c}</title></rect>", i as f64 * bw + 1.0, h - bh, bw - 2.0, i as f64 / 10.0, (i + 1) as f64 / 10.0);
    }
    let _ = write!(s, "<text x=\"0\" y=\"{}\">0</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">1</text></svg>", h + 14.0, w, h + 14.0);
    s
}

fn svg_bars(counts: &BTreeMap<String, usize>) -> String {
    let mut items: Vec<(&String, &usize)> = counts.iter().collect();
    items.sort_by(|a, b| b.1.cmp(a.1));
    let max = items.first().map_or(1, |x| *x.1).max(1) as f64;
    let row = 18.0;
    let height = items.len().max(1) as f64 * row + 6.0;
    let mut s = format!("<svg class=chart role=img aria-label=\"failure classes\" width=\"640\" height=\"{height}\">");
    for (i, (k, v)) in items.iter().enumerate() {
        let y = i as f64 * row + 2.0;
        let _ = write!(s, "<text x=\"170\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"176\" y=\"{y}\" width=\"{:.1}\" height=\"13\" fill=\"#d98b8b\"/><text x=\"{:.1}\" y=\"{}\">{v}</text>", y + 11.0, esc(k), 400.0 * **v as f64 / max, 182.0 + 400.0 * **v as f64 / max, y + 11.0);
    }
    s.push_str("</svg>\n");
    s
}

fn svg_reliability(c: &calibrate::Calibration) -> String {
    let size = 220.0;
    let mut s = format!("<svg class=chart role=img aria-label=\"{} reliability\" width=\"{}\" height=\"{}\"><text x=\"0\" y=\"12\">{} vs `{}` (ECE {})</text>", c.metric, size + 40.0, size + 40.0, c.metric, c.label, c.ece.map_or("n/a".into(), |e| format!("{e:.3}")));
    let (x0, y0) = (30.0, 20.0);
    let _ = write!(s, "<rect x=\"{x0}\" y=\"{y0}\" width=\"{size}\" height=\"{size}\" fill=\"none\" stroke=\"#ccc\"/><line x1=\"{x0}\" y1=\"{}\" x2=\"{}\" y2=\"{y0}\" stroke=\"#bbb\" stroke-dasharray=\"4\"/>", y0 + size, x0 + size);
    for b in &c.reliability {
        let cx = x0 + size * b.confidence;
        let cy = y0 + size * (1.0 - b.observed);
        let r = 2.0 + (b.cases as f64).sqrt().min(10.0);
        let _ = write!(s, "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{r:.1}\" fill=\"#6b9bd1\" fill-opacity=\"0.8\"><title>{} cases: predicted {:.2}, observed {:.2}</title></circle>", b.cases, b.confidence, b.observed);
    }
    let _ = write!(s, "<text x=\"{x0}\" y=\"{}\">predicted</text><text x=\"{}\" y=\"{}\">observed</text></svg>", y0 + size + 14.0, x0 + 4.0, y0 + 12.0);
    s
}

fn fmt_counts(c: &BTreeMap<String, usize>) -> String {
    let mut v: Vec<(&String, &usize)> = c.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    if v.is_empty() {
        return "none".into();
    }
    v.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

/// Draws the case table from the embedded JSON and filters it; records script errors and the number of
/// charts on `<body>` (data-errors, data-charts), which the browser test reads.
const SCRIPT: &str = r#"<script>
(function(){
  var errors = 0;
  window.addEventListener('error', function(){ errors++; document.body.setAttribute('data-errors', String(errors)); });
  document.body.setAttribute('data-errors', '0');
  var rows = JSON.parse(document.getElementById('data').textContent);
  var body = document.querySelector('#cases tbody');
  var q = document.getElementById('q');
  var shown = document.getElementById('shown');
  function esc(s){ return String(s).replace(/[&<>"]/g, function(c){ return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]; }); }
  function draw(){
    var f = q.value.trim().toLowerCase(), out = [], n = 0;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      var hay = (r[0] + ' ' + r[3] + ' ' + r[4]).toLowerCase();
      if (f && hay.indexOf(f) < 0) continue;
      n++;
      if (out.length >= 500) continue;
      var cells = r[2].map(function(x){ return '<td class=num>' + (x === null ? '-' : x.toFixed(3)) + '</td>'; }).join('');
      out.push('<tr><td>' + esc(r[0]) + '</td><td class=' + (r[1] ? 'ok>pass' : 'fail>fail') + '</td>' + cells + '<td>' + esc(r[3]) + '</td><td>' + esc(r[4]) + '</td></tr>');
    }
    body.innerHTML = out.join('');
    shown.textContent = n + ' of ' + rows.length + ' cases' + (n > 500 ? ' (first 500 shown)' : '');
  }
  q.addEventListener('input', draw);
  draw();
  document.body.setAttribute('data-charts', String(document.querySelectorAll('svg.chart').length));
  document.body.setAttribute('data-rows', String(body.rows.length));
})();
</script>
"#;

#[cfg(test)]
mod tests {
    #[test]
    fn evidence_is_quoted_by_character_span_with_its_surroundings() {
        let ctx = |text: &str| crate::suite::Context { id: "1".into(), text: text.into(), extra: Default::default() };
        let case = |id: &str, text: &str| {
            let mut c = crate::suite::parse_case(1, &format!("{{\"id\": \"{id}\", \"output\": \"o\"}}")).unwrap();
            c.contexts = vec![ctx(text)];
            c
        };
        // Characters, not bytes: "é" is one character.
        let sources = SuiteContexts::from_cases([case("a", "Café hours: 9 to 5.\nClosed   Sundays."), case("long", &"x".repeat(500))]);
        let q = sources.quote("a", "1", [12, 18]).unwrap();
        assert_eq!((q.before.as_str(), q.text.as_str(), q.after.as_str()), ("Café hours: ", "9 to 5", ".\nClosed   Sundays."));
        assert_eq!(q.marked(), "\"Café hours: «9 to 5». Closed Sundays.\"");
        // Long: the surroundings cut at 60 characters, the span's middle elided past 320.
        let q = sources.quote("long", "1", [100, 480]).unwrap();
        assert_eq!(q.before.chars().count(), 1 + QUOTE_AROUND);
        assert!(q.before.starts_with('…') && q.after == "x".repeat(20));
        assert_eq!(q.text, format!("{} … {}", "x".repeat(160), "x".repeat(160)));
        // A span past the text, another case or context: no quote.
        assert!(sources.quote("a", "1", [12, 99]).is_none() && sources.quote("b", "1", [0, 1]).is_none() && sources.quote("a", "2", [0, 1]).is_none());
    }

    use super::*;

    /// A failing case with `id`, segment `task` = `task`, and a failing claim `claim`.
    fn hostile(id: &str, task: &str, claim: &str) -> CaseResult {
        serde_json::from_value(serde_json::json!({"id": id, "segments": {"task": task},
            "metrics": {"support": {"score": 0.0, "passed": false,
                "claims": [{"text": claim, "span": [0, 3], "score": 0.1, "contradiction": 0.0, "label": "unsupported",
                            "evidence": {"context": "c<1>\u{1b}", "span": [0, 3]}}]}},
            "failures": ["unsupported_claim"], "passed": false, "model": {"nli": "m<b>@1"}}))
        .unwrap()
    }

    /// The HTML page's data block holds ids that try to end the script (`</script>`) or open a
    /// comment in it (`<!--<script>`): no `<` is left in the block, the JSON in it reads back to the
    /// same ids, and the page has no script but its own two.
    #[test]
    fn the_html_data_block_cannot_be_broken_out_of() {
        let ids = ["<!--<script>", "</script><script>alert(1)</script>", "a\u{2028}b&c>"];
        let results: Vec<CaseResult> = ids.iter().map(|id| hostile(id, "</script>", "<img src=x onerror=alert(1)>")).collect();
        let html = build(&results, &[], 1, 10, &GradeConfig::default(), None).html();
        let open = "<script id=data type=\"application/json\">";
        let start = html.find(open).map(|i| i + open.len()).expect("a data block");
        let end = start + html[start..].find("</script>").expect("the data block ends");
        let block = &html[start..end];
        assert!(!block.contains('<') && !block.contains('>') && !block.contains('\u{2028}'), "{block}");
        let rows: Vec<serde_json::Value> = serde_json::from_str(block).unwrap();
        let back: Vec<&str> = rows.iter().filter_map(|r| r[0].as_str()).collect();
        assert_eq!(back, ids);
        assert_eq!(rows[0][4], "task=</script>");
        assert_eq!(html.matches("<script").count(), 2, "only the page's own scripts");
        assert!(!html.contains("<img") && !html.contains("<!--"), "{html}");
    }

    /// A report of a run that did not finish says so at the top of every format, and the JSON
    /// carries the reason; a whole run's says nothing of it.
    #[test]
    fn an_incomplete_run_is_said_at_the_top_of_every_format() {
        let results = vec![hostile("a", "x", "claim")];
        let whole = build(&results, &[], 1, 10, &GradeConfig::default(), None);
        assert!(!whole.markdown().contains("INCOMPLETE") && !whole.html().contains("INCOMPLETE") && !whole.table().contains("INCOMPLETE"));
        assert!(serde_json::to_value(&whole).unwrap().get("incomplete").is_none());
        let why = "the run that wrote r.jsonl did not finish <b>";
        let r = whole.incomplete(Some(why.to_string()));
        assert!(r.table().starts_with("INCOMPLETE: the run that wrote r.jsonl did not finish"), "{}", r.table());
        assert!(r.markdown().contains("> **INCOMPLETE:** the run that wrote r.jsonl did not finish"), "{}", r.markdown());
        let html = r.html();
        let banner = html.find("INCOMPLETE:").expect("a banner");
        assert!(banner < html.find("<h2>").unwrap() && html.contains("did not finish &lt;b&gt;</p>"), "{html}");
        assert_eq!(serde_json::to_value(&r).unwrap()["incomplete"], why);
    }

    /// Ids, segment values, claims and evidence that carry terminal escapes, line breaks and
    /// Markdown: the terminal table shows no control character and keeps one line a group; the
    /// Markdown keeps its table's columns and opens no HTML.
    #[test]
    fn terminal_and_markdown_show_what_a_user_wrote_safely() {
        const NASTY: &str = "\u{1}\u{1b}[31m<&>\"'";
        let results = vec![
            hostile(NASTY, "a|b\nc", "Claim | with `code`\nand\u{9b}31m *stars* <b>bold</b>"),
            hostile("x`y", "\u{1b}]0;title\u{7}", "ok"),
        ];
        let r = build(&results, &[], 1, 10, &GradeConfig::default(), None);
        let table = r.table();
        assert!(!table.chars().any(|c| c.is_control() && c != '\n'), "{table:?}");
        assert!(table.contains("\\x01\\x1b[31m<&>\"'") && table.contains("task=a|b\\nc"), "{table}");
        assert!(table.contains("\\x9b31m") && table.contains("context c<1>\\x1b"), "{table}");
        // overall and two groups, one line each, then the worst cases.
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[1].starts_with("overall") && lines[2].starts_with("task=") && lines[3].starts_with("task="), "{table}");
        assert_eq!(lines[4], "", "{table}");

        let md = r.markdown();
        assert!(!md.chars().any(|c| c.is_control() && c != '\n'), "{md}");
        // The one `<` is the id's, inside its code span, where Markdown opens no HTML.
        assert_eq!(md.matches('<').count(), 1, "{md}");
        assert!(md.contains("- `\\x01\\x1b[31m<&>\"'` "), "{md}");
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(rows.len(), 2 + 3, "header, rule, overall and two groups: {md}");
        let cells = |row: &str| row.replace("\\|", "").matches('|').count();
        assert!(rows.iter().all(|row| cells(row) == cells(rows[0])), "{md}");
        // Each worst case is one list item with one finding: the claim's line break did not end it.
        let items: Vec<&str> = md.lines().filter(|l| l.starts_with("- ") || l.starts_with("  - ")).collect();
        assert_eq!(items.len(), 4, "{md}");
        assert!(md.contains("- ``x`y``"), "a backtick in an id widens its code span: {md}");
        assert!(md.contains("Claim \\| with \\`code\\`\\nand\\x9b31m \\*stars\\* &lt;b&gt;bold&lt;/b&gt;"), "{md}");
    }

    #[test]
    fn hallucinated_spans_are_marked_in_the_html_and_escaped() {
        assert_eq!(
            marked_html("Paris has <9> million people and two rivers.", &["<9> million".into(), "two rivers".into()]),
            "Paris has <mark class=span>&lt;9&gt; million</mark> people and <mark class=span>two rivers</mark>."
        );
        assert_eq!(marked_html("no marks & all", &["absent".into()]), "no marks &amp; all");
    }

    #[test]
    fn a_case_that_fails_only_as_a_whole_output_shows_why() {
        let line = |failures: &[&str], label: &str| {
            serde_json::json!({"id": "1", "metrics": {"support": {"score": 1.0, "passed": failures.is_empty(),
                "claims": [{"text": "Robert Downey Jr. starred in Zodiac.", "span": [0, 36], "score": 0.67, "contradiction": 0.1,
                            "label": "supported", "evidence": {"context": "1", "span": [0, 118]}}],
                "output": {"score": 0.01, "label": label, "evidence": {"context": "1", "span": [0, 118]}}}},
                "failures": failures, "passed": failures.is_empty(), "model": {}})
        };
        let failing: CaseResult = serde_json::from_value(line(&["unsupported_output"], "unsupported")).unwrap();
        let f = findings(&failing, None);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].verdict.as_str(), f[0].score), ("unsupported_output", Some(0.01f32 as f64)));
        assert_eq!(f[0].evidence.as_deref(), Some("context 1 [0..118]"));
        // The whole output unsupported next to an unsupported claim: the claim says it, no extra line.
        let mut claim_fails = line(&["unsupported_claim"], "unsupported");
        claim_fails["metrics"]["support"]["claims"][0]["label"] = "unsupported".into();
        let f = findings(&serde_json::from_value(claim_fails).unwrap(), None);
        assert_eq!(f.iter().map(|x| x.verdict.as_str()).collect::<Vec<_>>(), ["unsupported"]);
    }
}

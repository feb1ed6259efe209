//! Release gates: rules over the summary of a run, overall and per segment, and against a baseline
//! run. A policy is TOML (see `docs/gate.md` and `examples/gate.toml`):
//!
//! ```toml
//! min_cases = 20                           # groups with fewer cases are reported, not gated
//!
//! [rules]                                  # the whole run
//! "pass_rate" = ">= 0.75"
//! "support.pass_rate" = ">= 0.80"
//! "failures.fabricated_citation" = "== 0"
//!
//! [segments."risk=high"]                   # one segment (`key=value` of the cases' segments)
//! min_cases = 10
//! rules = { "support.pass_rate" = ">= 0.95" }
//!
//! [baseline]                               # with --baseline OLD_RESULTS.jsonl
//! max_drop = 0.05                          # no group may drop by more than this ...
//! confidence = 0.95                        # ... with a drop whose interval excludes 0
//! quantities = ["pass_rate", "support.mean"]
//! ```
//!
//! Quantities: `cases`, `pass_rate`, `<metric>.pass_rate`, `<metric>.mean` (metric: support, citation,
//! consistency), `failures.<class>` (a count) and `failures.<class>.rate`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;

use super::{GroupSummary, Summary};
use crate::graders::CaseResult;
use crate::stats;

/// A comparison in a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `<`
    Lt,
    /// `==`
    Eq,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Ge => a >= b,
            Op::Gt => a > b,
            Op::Le => a <= b,
            Op::Lt => a < b,
            Op::Eq => (a - b).abs() < 1e-12,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Eq => "==",
        }
    }
}

/// One rule: quantity, comparison, bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The quantity, e.g. `support.pass_rate`.
    pub quantity: String,
    /// The comparison.
    pub op: Op,
    /// The bound.
    pub bound: f64,
}

impl Rule {
    /// Parses `">= 0.95"` for `quantity`.
    pub fn parse(quantity: &str, text: &str) -> Result<Self, String> {
        let t = text.trim();
        let (op, rest) = [(">=", Op::Ge), ("<=", Op::Le), ("==", Op::Eq), (">", Op::Gt), ("<", Op::Lt)]
            .iter()
            .find_map(|(s, op)| t.strip_prefix(s).map(|r| (*op, r)))
            .ok_or_else(|| format!("rule `{quantity}` = \"{text}\": start with >=, >, <=, < or =="))?;
        let bound: f64 = rest.trim().parse().map_err(|_| format!("rule `{quantity}` = \"{text}\": `{}` is not a number", rest.trim()))?;
        check_quantity(quantity)?;
        Ok(Self { quantity: quantity.to_string(), op, bound })
    }

    /// `support.pass_rate >= 0.95`
    pub fn describe(&self) -> String {
        format!("{} {} {}", self.quantity, self.op.symbol(), self.bound)
    }
}

const METRICS: [&str; 3] = ["support", "citation", "consistency"];

fn check_quantity(q: &str) -> Result<(), String> {
    let ok = match q.split('.').collect::<Vec<_>>().as_slice() {
        ["cases"] | ["pass_rate"] => true,
        // Built-in metrics, or a rubric's name (checked against the results when the policy runs).
        [m, "pass_rate" | "mean"] => {
            METRICS.contains(m) || (!m.is_empty() && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        }
        ["failures", class] => crate::graders::Failure::ALL.iter().any(|f| f.name() == *class),
        ["failures", class, "rate"] => crate::graders::Failure::ALL.iter().any(|f| f.name() == *class),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "unknown quantity `{q}` (use cases, pass_rate, <metric>.pass_rate, <metric>.mean, failures.<class>, failures.<class>.rate; metrics: {} or a rubric's name)",
            METRICS.join(", ")
        ))
    }
}

/// The value of a quantity in a group; `None` when the metric never ran there.
pub fn quantity(g: &GroupSummary, q: &str) -> Option<f64> {
    let parts: Vec<&str> = q.split('.').collect();
    match parts.as_slice() {
        ["cases"] => Some(g.cases as f64),
        ["pass_rate"] => Some(g.pass_rate),
        [m, "pass_rate"] => g.metrics.get(*m).map(|s| s.pass_rate),
        [m, "mean"] => g.metrics.get(*m).map(|s| s.mean),
        ["failures", class] => Some(*g.failures.get(*class).unwrap_or(&0) as f64),
        ["failures", class, "rate"] => Some(*g.failures.get(*class).unwrap_or(&0) as f64 / g.cases.max(1) as f64),
        _ => None,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    min_cases: Option<usize>,
    #[serde(default)]
    rules: BTreeMap<String, String>,
    #[serde(default)]
    segments: BTreeMap<String, SegmentFile>,
    #[serde(default)]
    baseline: Option<BaselinePolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentFile {
    #[serde(default)]
    min_cases: Option<usize>,
    #[serde(default)]
    rules: BTreeMap<String, String>,
}

/// Rules against a baseline run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselinePolicy {
    /// The largest drop allowed.
    pub max_drop: f64,
    /// Confidence of the drop's interval.
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// Quantities compared (rates and means).
    #[serde(default = "default_quantities")]
    pub quantities: Vec<String>,
}

fn default_confidence() -> f64 {
    0.95
}

fn default_quantities() -> Vec<String> {
    vec!["pass_rate".into()]
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Groups with fewer cases are not gated.
    pub min_cases: usize,
    /// Rules on the whole run.
    pub rules: Vec<Rule>,
    /// Rules per segment (`key=value`), with their own minimum.
    pub segments: Vec<(String, usize, Vec<Rule>)>,
    /// Rules against a baseline.
    pub baseline: Option<BaselinePolicy>,
}

impl Policy {
    /// Parses policy text; errors name the rule at fault.
    pub fn parse(text: &str) -> Result<Self, String> {
        let f: PolicyFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let min_cases = f.min_cases.unwrap_or(1);
        let rules = f.rules.iter().map(|(q, t)| Rule::parse(q, t)).collect::<Result<Vec<_>, _>>()?;
        let mut segments = vec![];
        for (name, s) in f.segments {
            if !name.contains('=') {
                return Err(format!("segment `{name}`: name it as key=value, e.g. \"risk=high\""));
            }
            let rules = s.rules.iter().map(|(q, t)| Rule::parse(q, t)).collect::<Result<Vec<_>, _>>()?;
            segments.push((name, s.min_cases.unwrap_or(min_cases), rules));
        }
        if let Some(b) = &f.baseline {
            if !(0.0..1.0).contains(&b.confidence) || b.confidence <= 0.0 {
                return Err(format!("baseline.confidence = {} must be in (0, 1)", b.confidence));
            }
            for q in &b.quantities {
                check_quantity(q)?;
                if !(q == "pass_rate" || q.ends_with(".pass_rate") || q.ends_with(".mean")) {
                    return Err(format!("baseline quantity `{q}`: only pass rates and means can be compared"));
                }
            }
        }
        Ok(Self { min_cases, rules, segments, baseline: f.baseline })
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// `overall` or the segment.
    pub group: String,
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// Whether it was not gated (too few cases, metric absent).
    pub skipped: Option<String>,
    /// The measured value and the explanation.
    pub detail: String,
}

impl Check {
    /// `pass`, `FAIL` or `skip`.
    pub fn mark(&self) -> &'static str {
        if self.skipped.is_some() {
            "skip"
        } else if self.passed {
            "pass"
        } else {
            "FAIL"
        }
    }

    /// The measured value, or why the check was skipped.
    pub fn explanation(&self) -> &str {
        self.skipped.as_deref().unwrap_or(&self.detail)
    }
}

/// Evaluates a policy on a run (and a baseline run). Returns every check: the run's rules, then each
/// segment's, then the baseline's, rules sorted by quantity within each group.
pub fn evaluate(policy: &Policy, results: &[CaseResult], summary: &Summary, baseline: Option<&[CaseResult]>) -> Vec<Check> {
    let mut checks = vec![];
    let run_rules = |group: &str, g: Option<&GroupSummary>, min: usize, rules: &[Rule], checks: &mut Vec<Check>| {
        for rule in rules {
            let name = rule.describe();
            // A metric that is not built in must be a rubric of this run: a misspelt name fails the
            // gate rather than being skipped as "did not run".
            let metric = rule.quantity.split('.').next().unwrap_or_default();
            let two_part = rule.quantity.split('.').count() == 2 && !["failures", "cases", "pass_rate"].contains(&metric);
            if two_part && !METRICS.contains(&metric) && !summary.overall.metrics.contains_key(metric) {
                let detail = format!("no metric `{metric}` in these results (a misspelt metric, or a rubric that did not run)");
                checks.push(Check { group: group.into(), name, passed: false, skipped: None, detail });
                continue;
            }
            let check = match g {
                None => Check { group: group.into(), name, passed: true, skipped: Some("no cases in this segment".into()), detail: String::new() },
                Some(g) if g.cases < min => Check {
                    group: group.into(),
                    name,
                    passed: true,
                    skipped: Some(format!("{} case(s), fewer than the {min} needed to gate", g.cases)),
                    detail: String::new(),
                },
                Some(g) => match quantity(g, &rule.quantity) {
                    None => Check { group: group.into(), name, passed: true, skipped: Some("the metric did not run".into()), detail: String::new() },
                    Some(v) => {
                        let ok = rule.op.holds(v, rule.bound);
                        let detail = format!("{} = {} on {} case(s)", rule.quantity, fmt_value(v), g.cases);
                        Check { group: group.into(), name, passed: ok, skipped: None, detail }
                    }
                },
            };
            checks.push(check);
        }
    };
    run_rules("overall", Some(&summary.overall), policy.min_cases, &policy.rules, &mut checks);
    for (seg, min, rules) in &policy.segments {
        run_rules(seg, summary.segments.get(seg), *min, rules, &mut checks);
    }
    if let (Some(bp), Some(old)) = (&policy.baseline, baseline) {
        checks.extend(baseline_checks(bp, policy.min_cases, results, old));
    }
    checks
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

/// Per case value of a comparable quantity (1/0 for pass rates, the score for means).
fn case_value(r: &CaseResult, q: &str) -> Option<f64> {
    let parts: Vec<&str> = q.split('.').collect();
    match parts.as_slice() {
        ["pass_rate"] => Some(r.passed as u8 as f64),
        [m, what] => r.metrics.scores().into_iter().find(|(n, _, _)| n == m).map(|(_, s, p)| if *what == "mean" { s as f64 } else { p as u8 as f64 }),
        _ => None,
    }
}

fn baseline_checks(bp: &BaselinePolicy, min_cases: usize, new: &[CaseResult], old: &[CaseResult]) -> Vec<Check> {
    let old_by_id: BTreeMap<&str, &CaseResult> = old.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut groups: BTreeMap<String, Vec<(&CaseResult, &CaseResult)>> = BTreeMap::new();
    for r in new {
        if let Some(o) = old_by_id.get(r.id.as_str()) {
            groups.entry("overall".into()).or_default().push((o, r));
            for (k, v) in &r.segments {
                groups.entry(format!("{k}={v}")).or_default().push((o, r));
            }
        }
    }
    let mut checks = vec![];
    for (group, pairs) in groups {
        for q in &bp.quantities {
            let name = format!("{q} drops by at most {} against the baseline", bp.max_drop);
            let vals: Vec<(f64, f64)> = pairs.iter().filter_map(|(o, n)| Some((case_value(o, q)?, case_value(n, q)?))).collect();
            if vals.len() < min_cases.max(2) {
                checks.push(Check {
                    group: group.clone(),
                    name,
                    passed: true,
                    skipped: Some(format!("{} paired case(s), fewer than needed", vals.len())),
                    detail: String::new(),
                });
                continue;
            }
            let (a, b): (Vec<f64>, Vec<f64>) = vals.into_iter().unzip();
            let n = a.len() as f64;
            let change = b.iter().sum::<f64>() / n - a.iter().sum::<f64>() / n;
            let (lo, hi) = stats::paired_bootstrap_diff_ci(&a, &b, 2000, 1.0 - bp.confidence, 0x5EED).unwrap_or((change, change));
            // A failure is a drop beyond the allowance that is also real: its interval excludes 0.
            let failed = -change > bp.max_drop && hi < 0.0;
            checks.push(Check {
                group: group.clone(),
                name,
                passed: !failed,
                skipped: None,
                detail: format!(
                    "{q}: change {:+.4} ({:.0}% interval {:+.4} to {:+.4}) on {} paired case(s)",
                    change,
                    100.0 * bp.confidence,
                    lo,
                    hi,
                    a.len()
                ),
            });
        }
    }
    checks
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// JUnit XML: one test case per check (skipped checks as `<skipped/>`), so CI systems show each rule.
pub fn junit(checks: &[Check], seconds: f64) -> String {
    let failures = checks.iter().filter(|c| !c.passed).count();
    let skipped = checks.iter().filter(|c| c.skipped.is_some()).count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(x, "<testsuites name=\"candor gate\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{seconds:.3}\">", checks.len());
    let _ = writeln!(
        x,
        "  <testsuite name=\"candor gate\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{seconds:.3}\">",
        checks.len()
    );
    for c in checks {
        let _ = write!(x, "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"", xml_escape(&c.group), xml_escape(&c.name));
        if let Some(why) = &c.skipped {
            let _ = writeln!(x, ">\n      <skipped message=\"{}\"/>\n    </testcase>", xml_escape(why));
        } else if !c.passed {
            let _ = writeln!(
                x,
                ">\n      <failure message=\"{}\" type=\"gate\">{}</failure>\n    </testcase>",
                xml_escape(&c.detail),
                xml_escape(&format!("{}: {} failed: {}", c.group, c.name, c.detail))
            );
        } else {
            let _ = writeln!(x, "/>");
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// A Markdown summary for a pull-request comment.
pub fn markdown(checks: &[Check]) -> String {
    let failed = checks.iter().filter(|c| !c.passed).count();
    let mut m = String::new();
    if failed == 0 {
        let _ = writeln!(m, "### candor gate: passed ({} checks)\n", checks.len());
    } else {
        let _ = writeln!(m, "### candor gate: FAILED ({failed} of {} checks)\n", checks.len());
    }
    m.push_str("| | group | rule | measured |\n|---|---|---|---|\n");
    for c in checks {
        let mark = if c.mark() == "FAIL" { "**FAIL**" } else { c.mark() };
        let _ = writeln!(m, "| {mark} | {} | `{}` | {} |", c.group, c.name, c.explanation().replace('|', "\\|"));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_reject_nonsense() {
        let r = Rule::parse("support.pass_rate", ">= 0.95").unwrap();
        assert_eq!((r.op, r.bound), (Op::Ge, 0.95));
        assert_eq!(Rule::parse("failures.fabricated_citation", "== 0").unwrap().op, Op::Eq);
        assert!(Rule::parse("support.pass_rate", "0.95").is_err());
        assert!(Rule::parse("support.pass_rat", ">= 0.9").unwrap_err().contains("unknown quantity"));
        assert!(Rule::parse("failures.made_up", "<= 1").is_err());
    }

    #[test]
    fn rubric_metrics_gate_and_misspelt_metrics_fail() {
        use crate::graders::results::{Outcome, RubricResult};
        let line = r#"{"id": "a", "metrics": {}, "failures": [], "passed": true, "model": {}}"#;
        let mut r: CaseResult = serde_json::from_str(line).unwrap();
        let rr = RubricResult { score: 0.8, passed: true, rating: 4.2, distribution: vec![0.0, 0.0, 0.2, 0.4, 0.4], mass: 0.9, truncated: false, injection: vec![] };
        r.metrics.rubrics.insert("polite".into(), Outcome::Ran(rr));
        let mut b = crate::report::SummaryBuilder::new();
        b.add(&r);
        let summary = b.finish(0, Default::default());
        let p = Policy::parse("[rules]\n\"polite.mean\" = \">= 0.75\"\n\"polit.mean\" = \">= 0.75\"\n").unwrap();
        let checks = evaluate(&p, std::slice::from_ref(&r), &summary, None);
        let by = |q: &str| checks.iter().find(|c| c.name.starts_with(q)).unwrap();
        assert!(by("polite.mean").passed && by("polite.mean").skipped.is_none());
        assert!(!by("polit.mean").passed, "a misspelt metric must fail the gate");
        assert!(by("polit.mean").detail.contains("no metric `polit`"));
    }

    #[test]
    fn policy_with_segments_and_baseline() {
        let p = Policy::parse(
            r#"
min_cases = 5
[rules]
"pass_rate" = ">= 0.5"
[segments."risk=high"]
min_cases = 2
rules = { "support.pass_rate" = ">= 0.99" }
[baseline]
max_drop = 0.05
quantities = ["pass_rate", "support.mean"]
"#,
        )
        .unwrap();
        assert_eq!(p.rules.len(), 1);
        assert_eq!(p.segments[0].0, "risk=high");
        assert_eq!(p.segments[0].1, 2);
        assert_eq!(p.baseline.unwrap().confidence, 0.95);
        assert!(Policy::parse("[segments.high]\nrules = {}\n").unwrap_err().contains("key=value"));
        assert!(Policy::parse("[rules]\nx = 1\n").is_err());
    }

    #[test]
    fn junit_escapes_and_counts() {
        let checks = vec![
            Check { group: "overall".into(), name: "pass_rate >= 0.5".into(), passed: true, skipped: None, detail: "x".into() },
            Check { group: "risk=\"high\"".into(), name: "a < b".into(), passed: false, skipped: None, detail: "0.3 & less".into() },
        ];
        let x = junit(&checks, 1.0);
        assert!(x.contains("tests=\"2\" failures=\"1\""));
        assert!(x.contains("risk=&quot;high&quot;") && x.contains("a &lt; b") && x.contains("0.3 &amp; less"));
        assert!(markdown(&checks).contains("FAILED (1 of 2"));
    }
}

//! Release gates: rules over the summary of a run, overall and per segment, and against a baseline
//! run. A policy is TOML (see `docs/gate.md` and `examples/gate.toml`):
//!
//! ```toml
//! min_cases = 20                           # a group with fewer cases cannot be gated: its checks fail
//! allow_unevaluated = false                # true: report checks that cannot be evaluated as skipped
//! allow_skipped_cases = false              # true: allow cases where no metric ran
//! allow_incomplete = false                 # true: gate a run whose manifest does not say it completed
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
//! quantities = ["pass_rate", "support.mean", "cost.mean"]
//! max_cost_rise = 0.5                      # cost.mean may rise by at most this (interval above 0)
//!
//! [cost]                                   # prices per failure class (see report::cost)
//! per_failure = { contradicted_claim = 20, unsupported_claim = 5 }
//! [cost.segments."risk=high"]
//! per_failure = { unsupported_claim = 50 }
//! ```
//!
//! Quantities: `cases`, `pass_rate`, `<metric>.pass_rate`, `<metric>.mean` (metric: support, citation,
//! consistency, checks), `failures.<class>` (a count), `failures.<class>.rate`, and with `[cost]`
//! `cost.mean` (expected cost per case), `cost.upper` / `cost.lower` (its bootstrap interval's ends)
//! and `cost.total`.
//!
//! Fail closed: a check that cannot be evaluated (its metric did not run, its segment matches no case,
//! its group is below `min_cases`, the baseline pairs too few cases) fails, saying why, unless the
//! policy sets `allow_unevaluated = true`; a run with cases where no metric ran fails unless it sets
//! `allow_skipped_cases = true`; a run whose manifest (in its summary) does not say it completed, and
//! describes its results as they are, fails unless it sets `allow_incomplete = true`. An empty
//! policy, or a misspelt quantity, is an error.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;

use super::cost::{metric_ran, CostFile, CostPolicy, Estimate};
use super::{escape, grouped, skipped_entirely, GroupSummary, Summary, BUILT_IN_METRICS};
use crate::graders::{CaseResult, Failure};
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
        // A rate is a fraction: ">= 99" (a percentage) could never pass, "<= 5" never fail.
        if (quantity.ends_with("pass_rate") || quantity.ends_with(".rate")) && !(0.0..=1.0).contains(&bound) {
            return Err(format!(
                "rule `{quantity}` = \"{text}\": a rate is a fraction from 0 to 1, and {bound} is outside it (for {bound}% write {})",
                bound / 100.0
            ));
        }
        Ok(Self { quantity: quantity.to_string(), op, bound })
    }

    /// `support.pass_rate >= 0.95`
    pub fn describe(&self) -> String {
        format!("{} {} {}", self.quantity, self.op.symbol(), self.bound)
    }
}

fn failure_class(name: &str) -> Option<Failure> {
    Failure::ALL.iter().copied().find(|f| f.name() == name)
}

fn check_quantity(q: &str) -> Result<(), String> {
    let ok = match q.split('.').collect::<Vec<_>>().as_slice() {
        ["cases"] | ["pass_rate"] => true,
        ["cost", "mean" | "upper" | "lower" | "total"] => true,
        ["cost", ..] => return Err(format!("unknown quantity `{q}`: cost quantities are cost.mean, cost.upper, cost.lower and cost.total")),
        ["drift", "found" | "tests_found"] => true,
        ["drift", ..] => return Err(format!("unknown quantity `{q}`: drift quantities are drift.found (1 or 0) and drift.tests_found")),
        // Built-in metrics, or a rubric's name (checked against the results when the policy runs).
        [m, "pass_rate" | "mean"] => {
            // A near miss of a built-in metric is a typo, not a rubric: refused with the name it meant.
            // One edit: a rubric may be named two edits from a metric (`rapport`, `support`).
            if let Some(b) = BUILT_IN_METRICS.iter().find(|b| **b != *m && crate::suite::within_edits(m, b, 1)) {
                return Err(format!("unknown quantity `{q}`: no metric `{m}`; did you mean `{b}`?"));
            }
            BUILT_IN_METRICS.contains(m) || (!m.is_empty() && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        }
        ["failures", class] | ["failures", class, "rate"] => {
            if failure_class(class).is_none() {
                let classes: Vec<&str> = Failure::ALL.iter().map(|f| f.name()).collect();
                let meant = classes.iter().find(|c| crate::suite::within_edits(class, c, 2)).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default();
                return Err(format!("unknown quantity `{q}`: no failure class `{class}`{meant} (classes: {})", classes.join(", ")));
            }
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "unknown quantity `{q}` (use cases, pass_rate, <metric>.pass_rate, <metric>.mean, failures.<class>, failures.<class>.rate; metrics: {} or a rubric's name)",
            BUILT_IN_METRICS.join(", ")
        ))
    }
}

/// The value of a quantity in a group; `None` when it cannot be measured there: its metric never ran
/// (for `failures.<class>`, the metric that finds the class, [`Failure::metric`]), or, for
/// `pass_rate`, no case was graded.
pub fn quantity(g: &GroupSummary, q: &str) -> Option<f64> {
    measure(g, q).ok()
}

/// The value of a quantity in a group, or why it cannot be measured there.
fn measure(g: &GroupSummary, q: &str) -> Result<f64, String> {
    let parts: Vec<&str> = q.split('.').collect();
    let none_ran = |what: String| format!("{what} on none of the {} case(s)", g.cases);
    match parts.as_slice() {
        ["cases"] => Ok(g.cases as f64),
        ["pass_rate"] if g.graded() == 0 => Err(format!("no metric ran on any of the {} case(s)", g.cases)),
        ["pass_rate"] => Ok(g.pass_rate),
        [m, "pass_rate"] => g.metrics.get(*m).map(|s| s.pass_rate).ok_or_else(|| none_ran(format!("metric `{m}` ran"))),
        [m, "mean"] => g.metrics.get(*m).map(|s| s.mean).ok_or_else(|| none_ran(format!("metric `{m}` ran"))),
        ["failures", class, rest @ ..] if rest.is_empty() || rest == ["rate"] => {
            let f = failure_class(class).ok_or_else(|| format!("no failure class `{class}`"))?;
            let n = g.failure_count(f).ok_or_else(|| match f.metric() {
                Some("rubric") => none_ran(format!("`{class}` is found by rubric metrics, and no rubric ran")),
                Some(m) => none_ran(format!("`{class}` is found by the `{m}` metric, which ran")),
                None => format!("`{class}` was not counted"),
            })? as f64;
            Ok(if rest.is_empty() { n } else { n / g.cases.max(1) as f64 })
        }
        _ => Err(format!("unknown quantity `{q}`")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    min_cases: Option<usize>,
    #[serde(default)]
    allow_unevaluated: bool,
    #[serde(default)]
    allow_skipped_cases: bool,
    #[serde(default)]
    allow_incomplete: bool,
    #[serde(default)]
    allow_invalid_lines: bool,
    #[serde(default)]
    allow_unknown_fields: bool,
    #[serde(default)]
    rules: BTreeMap<String, toml::Spanned<String>>,
    #[serde(default)]
    segments: BTreeMap<String, SegmentFile>,
    #[serde(default)]
    baseline: Option<BaselinePolicy>,
    #[serde(default)]
    cost: Option<CostFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentFile {
    #[serde(default)]
    min_cases: Option<usize>,
    #[serde(default)]
    rules: BTreeMap<String, toml::Spanned<String>>,
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
    /// Quantities compared (rates and means, and `cost.mean`).
    #[serde(default = "default_quantities")]
    pub quantities: Vec<String>,
    /// The largest rise of `cost.mean` allowed (needed when `quantities` lists it).
    #[serde(default)]
    pub max_cost_rise: Option<f64>,
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
    /// Groups with fewer cases cannot be gated (their checks are unevaluated).
    pub min_cases: usize,
    /// Report checks that cannot be evaluated (metric absent, segment empty, group below
    /// `min_cases`, too few baseline pairs) as skipped instead of failing them.
    pub allow_unevaluated: bool,
    /// Let a run pass with cases where no metric ran (counted apart as skipped).
    pub allow_skipped_cases: bool,
    /// Let a run be gated whose manifest does not say it completed (killed, interrupted, changed
    /// since, or without a manifest); its check is then skipped, saying why.
    pub allow_incomplete: bool,
    /// Let a run be gated whose suite had lines that could not be read (not graded).
    pub allow_invalid_lines: bool,
    /// Let a run be gated whose suite had fields that look like a known field misspelt (their
    /// content not graded: `retreival_context`).
    pub allow_unknown_fields: bool,
    /// Rules on the whole run.
    pub rules: Vec<Rule>,
    /// Rules per segment (`key=value`), with their own minimum.
    pub segments: Vec<(String, usize, Vec<Rule>)>,
    /// Rules against a baseline.
    pub baseline: Option<BaselinePolicy>,
    /// Prices per failure class, for the `cost.*` quantities.
    pub cost: Option<CostPolicy>,
}

impl Policy {
    /// Parses policy text; errors name the rule at fault.
    pub fn parse(text: &str) -> Result<Self, String> {
        let f: PolicyFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let min_cases = f.min_cases.unwrap_or(1);
        // A rule's error names its line: "line 11: unknown quantity `citaton.mean` ...".
        let rule = |q: &str, t: &toml::Spanned<String>| {
            Rule::parse(q, t.get_ref()).map_err(|e| format!("line {}: {e}", 1 + text[..t.span().start.min(text.len())].matches('\n').count()))
        };
        let rules = f.rules.iter().map(|(q, t)| rule(q, t)).collect::<Result<Vec<_>, _>>()?;
        let mut segments = vec![];
        for (name, s) in f.segments {
            if !name.contains('=') {
                return Err(format!("segment `{name}`: name it as key=value, e.g. \"risk=high\""));
            }
            let rules = s.rules.iter().map(|(q, t)| rule(q, t)).collect::<Result<Vec<_>, _>>()?;
            if rules.is_empty() {
                return Err(format!("segment `{name}` has no rules: give it rules = {{ \"pass_rate\" = \">= 0.9\" }}, or remove it"));
            }
            segments.push((name, s.min_cases.unwrap_or(min_cases), rules));
        }
        if let Some(b) = &f.baseline {
            if !(0.0..1.0).contains(&b.confidence) || b.confidence <= 0.0 {
                return Err(format!("baseline.confidence = {} must be in (0, 1)", b.confidence));
            }
            if !(b.max_drop.is_finite() && b.max_drop >= 0.0) {
                return Err(format!("baseline.max_drop = {} must be a number >= 0", b.max_drop));
            }
            if b.quantities.is_empty() {
                return Err("baseline.quantities is empty: list what to compare, e.g. [\"pass_rate\"]".into());
            }
            for q in &b.quantities {
                check_quantity(q).map_err(|e| format!("baseline.quantities: {e}"))?;
                if q.starts_with("cost.") && q != "cost.mean" {
                    return Err(format!("baseline quantity `{q}`: of the costs, cost.mean is compared"));
                }
                if !(q == "pass_rate" || q.ends_with(".pass_rate") || q.ends_with(".mean")) {
                    return Err(format!("baseline quantity `{q}`: only pass rates and means can be compared"));
                }
            }
            match b.max_cost_rise {
                None if b.quantities.iter().any(|q| q == "cost.mean") => {
                    return Err("baseline.quantities compares cost.mean: set baseline.max_cost_rise, the rise allowed".into())
                }
                Some(r) if !(r.is_finite() && r >= 0.0) => return Err(format!("baseline.max_cost_rise = {r} must be a number >= 0")),
                _ => {}
            }
        }
        let cost = f.cost.map(CostPolicy::from_file).transpose()?;
        let uses_cost = rules.iter().chain(segments.iter().flat_map(|(_, _, r)| r)).any(|r| r.quantity.starts_with("cost."))
            || f.baseline.as_ref().is_some_and(|b| b.quantities.iter().any(|q| q.starts_with("cost.")));
        if uses_cost && cost.is_none() {
            return Err("a rule gates on cost, and the policy has no [cost] table: price the failure classes with [cost] per_failure = { ... }".into());
        }
        if rules.is_empty() && segments.is_empty() && f.baseline.is_none() {
            return Err("the policy has no rules, so it would pass anything: add [rules], [segments.\"key=value\"] or [baseline]".into());
        }
        Ok(Self {
            min_cases,
            allow_unevaluated: f.allow_unevaluated,
            allow_skipped_cases: f.allow_skipped_cases,
            allow_incomplete: f.allow_incomplete,
            allow_invalid_lines: f.allow_invalid_lines,
            allow_unknown_fields: f.allow_unknown_fields,
            rules,
            segments,
            baseline: f.baseline,
            cost,
        })
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
    /// Why it was not gated, where it could not be evaluated and the policy allows that
    /// (`allow_unevaluated`, `allow_skipped_cases`); such a check fails otherwise.
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

    /// The check as one terminal line, `FAIL  [group] name: explanation`, what a user wrote in it
    /// (segment names and values, case ids) shown with its control characters escaped
    /// ([`escape::terminal`]).
    pub fn line(&self) -> String {
        let t = escape::terminal;
        format!("{}  [{}] {}: {}", self.mark(), t(&self.group), t(&self.name), t(self.explanation()))
    }
}

/// Up to `max` items joined by ", ", then how many more.
fn some_of<S: AsRef<str>>(items: &[S], max: usize) -> String {
    let shown: Vec<&str> = items.iter().take(max).map(AsRef::as_ref).collect();
    let mut s = shown.join(", ");
    if items.len() > max {
        let _ = write!(s, " and {} more", items.len() - max);
    }
    s
}

/// Why a segment selector matched no case: a value the key never takes, or a key no case has.
fn no_segment(seg: &str, summary: &Summary) -> String {
    let (key, _) = seg.split_once('=').unwrap_or((seg, ""));
    let pairs: Vec<(&str, &str)> = summary.segments.keys().filter_map(|k| k.split_once('=')).collect();
    let values: Vec<&str> = pairs.iter().filter(|(k, _)| *k == key).map(|(_, v)| *v).collect();
    if !values.is_empty() {
        return format!("no case has segment `{seg}` (values of `{key}` here: {})", some_of(&values, 12));
    }
    let keys: std::collections::BTreeSet<&str> = pairs.iter().map(|(k, _)| *k).collect();
    if keys.is_empty() {
        format!("no case has segment `{seg}`: no case has any segment")
    } else {
        format!("no case has segment `{seg}`: no case has the key `{key}` (keys here: {})", some_of(&keys.into_iter().collect::<Vec<_>>(), 12))
    }
}

/// Evaluates a policy on a run (and a baseline run). Returns every check: whether every case was
/// graded (only where some case was skipped entirely), the run's rules, then each segment's, then
/// the baseline's, rules sorted by quantity within each group.
///
/// Fails closed: a check that cannot be evaluated (its metric did not run, its segment matches no
/// case, its group has fewer than `min_cases` cases, the baseline pairs too few cases) fails with the
/// reason in its detail, unless the policy sets `allow_unevaluated` (then it is skipped with that
/// reason). Cases where no metric ran fail the gate unless the policy sets `allow_skipped_cases`.
pub fn evaluate(policy: &Policy, results: &[CaseResult], summary: &Summary, baseline: Option<&[CaseResult]>) -> Vec<Check> {
    evaluate_with(policy, results, summary, baseline, &BTreeMap::new())
}

/// The quantities of a drift report (`candor drift --format json`) that a policy can gate on:
/// `drift.found` (1 where any test found drift, else 0) and `drift.tests_found`.
pub fn drift_quantities(report: &serde_json::Value) -> Result<BTreeMap<String, f64>, String> {
    let found = report.get("drift").and_then(serde_json::Value::as_bool).ok_or("not a drift report: no `drift` true/false at the top")?;
    let tests = report.get("tests").and_then(serde_json::Value::as_array).ok_or("not a drift report: no `tests` list")?;
    let n = tests.iter().filter(|t| t.get("drift").and_then(serde_json::Value::as_bool) == Some(true)).count();
    Ok(BTreeMap::from([("drift.found".to_string(), if found { 1.0 } else { 0.0 }), ("drift.tests_found".to_string(), n as f64)]))
}

/// [`evaluate`], with quantities measured outside the results (a drift report's: [`drift_quantities`]).
pub fn evaluate_with(
    policy: &Policy,
    results: &[CaseResult],
    summary: &Summary,
    baseline: Option<&[CaseResult]>,
    external: &BTreeMap<String, f64>,
) -> Vec<Check> {
    let mut checks = vec![];
    let unevaluated = |group: &str, name: String, why: String| {
        if policy.allow_unevaluated {
            Check { group: group.into(), name, passed: true, skipped: Some(why), detail: String::new() }
        } else {
            let detail = format!("cannot be evaluated: {why}; `allow_unevaluated = true` in the policy would skip it");
            Check { group: group.into(), name, passed: false, skipped: None, detail }
        }
    };
    if summary.overall.skipped > 0 {
        let ids: Vec<&str> = results.iter().filter(|r| skipped_entirely(r)).map(|r| r.id.as_str()).collect();
        let why = format!(
            "{} of {} case(s) skipped entirely: no metric ran for them, so they neither passed nor failed (ids: {})",
            summary.overall.skipped,
            summary.overall.cases,
            some_of(&ids, 5)
        );
        let name = "every case graded".to_string();
        checks.push(if policy.allow_skipped_cases {
            Check { group: "overall".into(), name, passed: true, skipped: Some(why), detail: String::new() }
        } else {
            let detail = format!("{why}; `allow_skipped_cases = true` in the policy would allow them");
            Check { group: "overall".into(), name, passed: false, skipped: None, detail }
        });
    }
    // The cost quantities need the group's cases: priced per case, then bootstrapped.
    let refs: Vec<&CaseResult> = results.iter().collect();
    let cases_of = grouped(&refs, None, |r| *r);
    let cost_of = |group: &str, g: &GroupSummary| -> Result<(&CostPolicy, Estimate), String> {
        let Some(cost) = &policy.cost else { return Err("the policy has no [cost] table".into()) };
        if let Some(seg) = cost.missing_segment(|seg| summary.segments.contains_key(seg)) {
            return Err(format!("[cost.segments.\"{seg}\"]: {}", no_segment(seg, summary)));
        }
        let cases = cases_of.get(group).map(Vec::as_slice).unwrap_or_default();
        cost.estimate(g, cases).map(|e| (cost, e))
    };
    // A quantity's value in a group; a cost quantity with the estimate it is read from (measured once).
    let measured = |group: &str, g: &GroupSummary, q: &str| -> Result<(f64, Option<(&CostPolicy, Estimate)>), String> {
        if q.starts_with("drift.") {
            // Drift is measured between whole suites, and only where its report was given.
            if group != "overall" {
                return Err("drift is measured between whole suites: gate it in the top-level [rules]".into());
            }
            return external
                .get(q)
                .map(|&v| (v, None))
                .ok_or_else(|| "no drift report: pass --drift DRIFT.json (written by `candor drift BASELINE NEW --format json -o DRIFT.json`)".into());
        }
        match q.strip_prefix("cost.") {
            Some(what) => cost_of(group, g).map(|(c, e)| (e.get(what).unwrap_or(e.mean), Some((c, e)))),
            None => measure(g, q).map(|v| (v, None)),
        }
    };
    let run_rules = |group: &str, g: Option<&GroupSummary>, min: usize, rules: &[Rule], checks: &mut Vec<Check>| {
        for rule in rules {
            let name = rule.describe();
            // A metric that is not built in must be a rubric of this run: a misspelt name fails the
            // gate, whatever the policy allows, rather than being skipped as "did not run".
            let metric = rule.quantity.split('.').next().unwrap_or_default();
            let two_part = rule.quantity.split('.').count() == 2 && !["failures", "cases", "pass_rate", "cost", "drift"].contains(&metric);
            if two_part && !BUILT_IN_METRICS.contains(&metric) && !summary.overall.metrics.contains_key(metric) {
                let detail = format!("no metric `{metric}` in these results (a misspelt metric, or a rubric that did not run)");
                checks.push(Check { group: group.into(), name, passed: false, skipped: None, detail });
                continue;
            }
            let check = match g {
                None => unevaluated(group, name, no_segment(group, summary)),
                Some(g) if g.cases < min => {
                    unevaluated(group, name, format!("{} case(s), fewer than the {min} needed to gate (min_cases)", g.cases))
                }
                Some(g) => match measured(group, g, &rule.quantity) {
                    Err(why) => unevaluated(group, name, why),
                    Ok((v, estimate)) => {
                        let ok = rule.op.holds(v, rule.bound);
                        // The cases the value was measured over: a metric's rate and mean over the
                        // cases it ran on, which a run with skipped cases makes fewer than the group's.
                        let over = match rule.quantity.split('.').collect::<Vec<_>>().as_slice() {
                            ["pass_rate"] => g.graded(),
                            [m, "pass_rate" | "mean"] => g.metrics.get(*m).map_or(g.cases, |s| s.cases),
                            _ => g.cases,
                        };
                        let mut detail = if over == g.cases {
                            format!("{} = {} on {} case(s)", rule.quantity, fmt_value(v), g.cases)
                        } else {
                            format!("{} = {} on the {over} of {} case(s) it was measured on", rule.quantity, fmt_value(v), g.cases)
                        };
                        if let Some((cost, e)) = estimate {
                            let _ = write!(detail, ": expected cost {}", e.describe(cost.confidence));
                        }
                        if g.skipped > 0 {
                            let _ = write!(detail, " ({} skipped entirely)", g.skipped);
                        }
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
        checks.extend(baseline_checks(bp, policy.cost.as_ref(), policy.min_cases, results, old, summary, &unevaluated));
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

/// Per case value of a comparable quantity (1/0 for pass rates, the score for means); `None` where
/// the metric did not run, and for `pass_rate` where no metric ran (the case earned no pass).
fn case_value(r: &CaseResult, q: &str) -> Option<f64> {
    let parts: Vec<&str> = q.split('.').collect();
    match parts.as_slice() {
        ["pass_rate"] => (!skipped_entirely(r)).then_some(r.passed as u8 as f64),
        [m, what] => r.metrics.scores().into_iter().find(|(n, _, _)| n == m).map(|(_, s, p)| if *what == "mean" { s as f64 } else { p as u8 as f64 }),
        _ => None,
    }
}

/// The baseline's checks: every quantity in the overall group, which fails closed (through
/// `unevaluated`) when too few cases pair, and in every segment, where a segment below `min_cases`
/// is reported as skipped (small segments are shown, not gated on noise).
#[allow(clippy::too_many_arguments)]
fn baseline_checks(
    bp: &BaselinePolicy,
    cost: Option<&CostPolicy>,
    min_cases: usize,
    new: &[CaseResult],
    old: &[CaseResult],
    summary: &Summary,
    unevaluated: &dyn Fn(&str, String, String) -> Check,
) -> Vec<Check> {
    let old_by_id: BTreeMap<&str, &CaseResult> = old.iter().map(|r| (r.id.as_str(), r)).collect();
    let pairs: Vec<(&CaseResult, &CaseResult)> = new.iter().filter_map(|r| Some((*old_by_id.get(r.id.as_str())?, r))).collect();
    // The overall group is checked even when no case pairs: a baseline of another suite must not
    // make its checks vanish.
    let groups = grouped(&pairs, None, |p| p.1);
    let need = min_cases.max(2);
    // What cannot be compared fails closed overall (through `unevaluated`) and is shown as skipped in
    // a segment (small segments are not gated on noise).
    let not_gated = |group: &str, name: String, why: String| {
        if group == "overall" {
            unevaluated(group, name, why)
        } else {
            Check { group: group.into(), name, passed: true, skipped: Some(why), detail: String::new() }
        }
    };
    let mut checks = vec![];
    let mut quantities = vec![];
    for q in &bp.quantities {
        let metric = q.split('.').next().unwrap_or_default();
        if q.contains('.') && metric != "cost" && !BUILT_IN_METRICS.contains(&metric) && !summary.overall.metrics.contains_key(metric) {
            let name = format!("{q} drops by at most {} against the baseline", bp.max_drop);
            let detail = format!("no metric `{metric}` in these results (a misspelt metric, or a rubric that did not run)");
            checks.push(Check { group: "overall".into(), name, passed: false, skipped: None, detail });
        } else {
            quantities.push(q);
        }
    }
    let value = |r: &CaseResult, q: &str| match (q, cost) {
        ("cost.mean", Some(c)) => c.case_cost(r),
        _ => case_value(r, q),
    };
    for (group, pairs) in groups {
        for q in &quantities {
            let is_cost = q.as_str() == "cost.mean";
            let allowed = if is_cost { bp.max_cost_rise.unwrap_or(0.0) } else { bp.max_drop };
            let name = if is_cost {
                format!("{q} rises by at most {allowed} against the baseline")
            } else {
                format!("{q} drops by at most {allowed} against the baseline")
            };
            // A priced class whose metric ran on one side only would make that side's cost look free.
            if let (true, Some(c)) = (is_cost, cost) {
                if let Some(seg) = c.missing_segment(|seg| summary.segments.contains_key(seg)) {
                    let why = format!("[cost.segments.\"{seg}\"]: {}", no_segment(seg, summary));
                    checks.push(not_gated(&group, name, why));
                    continue;
                }
                let unseen = |rs: &mut dyn Iterator<Item = &CaseResult>| {
                    let rs: Vec<&CaseResult> = rs.collect();
                    c.priced_classes().into_iter().find(|f| f.metric().is_some_and(|m| !rs.iter().any(|r| metric_ran(r, m))))
                };
                let side = unseen(&mut pairs.iter().map(|p| p.0)).map(|f| ("the baseline", f)).or_else(|| unseen(&mut pairs.iter().map(|p| p.1)).map(|f| ("this run", f)));
                if let (Some((side, f)), false) = (side, pairs.is_empty()) {
                    let why = format!("`{}` is priced, and the metric that finds it ran on no paired case of {side}", f.name());
                    checks.push(not_gated(&group, name, why));
                    continue;
                }
            }
            let vals: Vec<(f64, f64)> = pairs.iter().filter_map(|(o, n)| Some((value(o, q)?, value(n, q)?))).collect();
            if vals.len() < need {
                let why = if pairs.is_empty() {
                    format!(
                        "no case id in common with the baseline ({} case(s) here, {} there: a baseline of another suite?)",
                        new.len(),
                        old.len()
                    )
                } else {
                    format!(
                        "{} of {} paired case(s) have `{q}` on both sides, fewer than the {need} needed",
                        vals.len(),
                        pairs.len()
                    )
                };
                checks.push(not_gated(&group, name, why));
                continue;
            }
            let (a, b): (Vec<f64>, Vec<f64>) = vals.into_iter().unzip();
            let n = a.len() as f64;
            let change = b.iter().sum::<f64>() / n - a.iter().sum::<f64>() / n;
            let (lo, hi) = stats::paired_bootstrap_diff_ci(&a, &b, 2000, 1.0 - bp.confidence, 0x5EED).unwrap_or((change, change));
            // A failure is a drop (for cost, a rise) beyond the allowance that is also real: its
            // interval excludes 0.
            let failed = if is_cost { change > allowed && lo > 0.0 } else { -change > allowed && hi < 0.0 };
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
        let _ = write!(x, "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"", escape::xml(&c.group), escape::xml(&c.name));
        if let Some(why) = &c.skipped {
            let _ = writeln!(x, ">\n      <skipped message=\"{}\"/>\n    </testcase>", escape::xml(why));
        } else if !c.passed {
            let _ = writeln!(
                x,
                ">\n      <failure message=\"{}\" type=\"gate\">{}</failure>\n    </testcase>",
                escape::xml(&c.detail),
                escape::xml(&format!("{}: {} failed: {}", c.group, c.name, c.detail))
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
        let _ = writeln!(
            m,
            "| {mark} | {} | {} | {} |",
            escape::markdown(&c.group),
            escape::markdown_code(&c.name, true),
            escape::markdown(c.explanation())
        );
    }
    m
}

/// A check on what the gate could see: skipped, saying `why`, where the policy `allowed` it; else
/// failed, with `why` and how the policy would let it pass (`remedy`).
fn allowed_or_failed(group: &str, name: &str, allowed: bool, why: String, remedy: &str) -> Check {
    let (group, name) = (group.to_string(), name.to_string());
    if allowed {
        Check { group, name, passed: true, skipped: Some(why.clone()), detail: why }
    } else {
        Check { group, name, passed: false, skipped: None, detail: format!("{why}; {remedy}") }
    }
}

/// The check that the run being gated completed: `why` is the reason it cannot be taken for a
/// complete run ([`super::manifest::Provenance::incomplete_reason`]), `None` when it can. Fails
/// unless the policy allows incomplete runs (then skipped, saying why).
pub fn completeness(policy: &Policy, why: Option<String>) -> Check {
    let name = "run complete";
    match why {
        None => Check { group: "overall".into(), name: name.into(), passed: true, skipped: None, detail: "the run's manifest says it completed".into() },
        Some(why) => allowed_or_failed("overall", name, policy.allow_incomplete, why, "`allow_incomplete = true` in the policy would gate it anyway"),
    }
}

/// The check standing for a policy's `[baseline]` rules when the gate was given no baseline to
/// compare with: they were not checked, so it fails, unless the policy sets `allow_unevaluated`
/// (then it is skipped, saying why).
pub fn baseline_missing(policy: &Policy) -> Check {
    let why = "the policy has [baseline] rules and no baseline was given (`--baseline OLD_RESULTS.jsonl`): nothing was compared".to_string();
    allowed_or_failed("baseline", "[baseline] rules", policy.allow_unevaluated, why, "`allow_unevaluated = true` in the policy would skip it")
}

/// The check that every line of the suite became a case: a run that set lines aside as unreadable
/// (`invalid_lines` in its summary) graded less than the suite, which fails the gate unless the
/// policy sets `allow_invalid_lines = true`.
pub fn lines_read(policy: &Policy, invalid_lines: usize) -> Option<Check> {
    if invalid_lines == 0 {
        return None;
    }
    let why = format!("{invalid_lines} line(s) of the suite could not be read and were not graded (the grade run listed them)");
    let remedy = "`allow_invalid_lines = true` in the policy would gate the rest anyway";
    Some(allowed_or_failed("overall", "every line of the suite read", policy.allow_invalid_lines, why, remedy))
}

/// The check that no field of the suite was a known field misspelt: such a field's content was not
/// graded (a case whose `retreival_context` was never read passed on its reference alone), which
/// fails the gate unless the policy sets `allow_unknown_fields = true`. `misspelt` is the summary's
/// `misspelt_fields`.
pub fn fields_known(policy: &Policy, misspelt: &BTreeMap<String, String>) -> Option<Check> {
    if misspelt.is_empty() {
        return None;
    }
    let list: Vec<String> = misspelt.iter().map(|(f, k)| format!("`{f}` (did you mean `{k}`?)")).collect();
    let why = format!("field(s) candor does not know, whose content was not graded: {}", list.join(", "));
    let remedy = "rename the field (or map it with `candor grade --field`) and grade again, or set `allow_unknown_fields = true` in the policy";
    Some(allowed_or_failed("overall", "every field of the suite known", policy.allow_unknown_fields, why, remedy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_rules_without_a_baseline_fail_unless_allowed() {
        let rules = "[rules]\n\"pass_rate\" = \">= 0.1\"\n[baseline]\nmax_drop = 0.02\n";
        let c = baseline_missing(&Policy::parse(rules).unwrap());
        assert!(!c.passed && c.detail.contains("no baseline was given"), "{c:?}");
        let c = baseline_missing(&Policy::parse(&format!("allow_unevaluated = true\n{rules}")).unwrap());
        assert!(c.passed && c.skipped.is_some(), "{c:?}");
    }

    #[test]
    fn misspelt_fields_fail_the_gate_unless_allowed() {
        let misspelt: BTreeMap<String, String> = [("retreival_context".to_string(), "retrieval_context".to_string())].into();
        let strict = Policy::parse("[rules]\n\"pass_rate\" = \">= 0.1\"\n").unwrap();
        let c = fields_known(&strict, &misspelt).unwrap();
        assert!(!c.passed && c.detail.contains("`retreival_context` (did you mean `retrieval_context`?)"), "{c:?}");
        let lenient = Policy::parse("allow_unknown_fields = true\n[rules]\n\"pass_rate\" = \">= 0.1\"\n").unwrap();
        assert!(fields_known(&lenient, &misspelt).unwrap().passed);
        assert!(fields_known(&strict, &BTreeMap::new()).is_none());
    }

    #[test]
    fn rules_parse_and_reject_nonsense() {
        let r = Rule::parse("support.pass_rate", ">= 0.95").unwrap();
        assert_eq!((r.op, r.bound), (Op::Ge, 0.95));
        assert_eq!(Rule::parse("failures.fabricated_citation", "== 0").unwrap().op, Op::Eq);
        assert!(Rule::parse("support.pass_rate", "0.95").is_err());
        assert!(Rule::parse("support.pass_rat", ">= 0.9").unwrap_err().contains("unknown quantity"));
        assert!(Rule::parse("failures.made_up", "<= 1").is_err());
        // A near miss of a built-in metric is refused with the one it meant; a rubric name is not.
        assert!(Rule::parse("suport.mean", ">= 0.9").unwrap_err().contains("did you mean `support`?"));
        assert!(Rule::parse("polite.mean", ">= 0.9").is_ok());
        // A rate written as a percentage could never pass (or never fail): refused, with the fraction.
        let e = Rule::parse("support.pass_rate", ">= 99").unwrap_err();
        assert!(e.contains("fraction from 0 to 1") && e.contains("write 0.99"), "{e}");
        assert!(Rule::parse("failures.contradicted_claim.rate", "<= 5").is_err());
        assert!(Rule::parse("pass_rate", ">= 1").is_ok() && Rule::parse("failures.contradicted_claim", "<= 5").is_ok());
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

    /// A result line with `support` as given (`None`: not asked for; `Some(None)`: skipped; else
    /// score and pass), in segment `risk=<risk>`.
    fn case(id: &str, risk: &str, support: Option<Option<(f64, bool)>>) -> CaseResult {
        let metrics = match support {
            None => serde_json::json!({}),
            Some(None) => serde_json::json!({"support": {"skipped": "no contexts"}}),
            Some(Some((score, passed))) => {
                serde_json::json!({"support": {"score": score, "passed": passed, "claims": []}})
            }
        };
        let passed = support.flatten().is_none_or(|(_, p)| p);
        let line = serde_json::json!({"id": id, "segments": {"risk": risk}, "metrics": metrics, "failures": [], "passed": passed, "model": {}});
        serde_json::from_value(line).unwrap()
    }

    fn run(policy: &str, results: &[CaseResult], baseline: Option<&[CaseResult]>) -> Vec<Check> {
        let summary = crate::report::Summary::of(results, 0, Default::default());
        evaluate(&Policy::parse(policy).unwrap(), results, &summary, baseline)
    }

    fn named<'a>(checks: &'a [Check], group: &str, name: &str) -> &'a Check {
        checks.iter().find(|c| c.group == group && c.name.starts_with(name)).unwrap_or_else(|| panic!("no check {group} {name}: {checks:?}"))
    }

    /// A case graded by support (score, pass) in segment `risk=<risk>` with failure classes `failures`.
    fn failing(id: &str, risk: &str, failures: &[&str]) -> CaseResult {
        let mut r = case(id, risk, Some(Some((0.5, failures.is_empty()))));
        r.failures = failures.iter().map(|f| super::failure_class(f).unwrap()).collect();
        r
    }

    #[test]
    fn cost_weighted_rules_price_each_case_and_fail_closed() {
        // Prices: contradicted 20, unsupported 5; in risk=high unsupported costs 50. By hand:
        //   a (low): contradicted + unsupported = 25;  b (low): nothing = 0;
        //   c (high): unsupported = 50;                 d (high): contradicted = 20.
        // Overall mean (25 + 0 + 50 + 20) / 4 = 23.75, total 95; risk=high (50 + 20) / 2 = 35.
        let results = vec![
            failing("a", "low", &["contradicted_claim", "unsupported_claim"]),
            failing("b", "low", &[]),
            failing("c", "high", &["unsupported_claim"]),
            failing("d", "high", &["contradicted_claim"]),
        ];
        let policy = r#"
[rules]
"cost.mean" = "<= 25"
"cost.total" = "== 95"
"cost.upper" = "<= 30"
[segments."risk=high"]
rules = { "cost.mean" = "<= 30" }
[cost]
per_failure = { contradicted_claim = 20, unsupported_claim = 5 }
[cost.segments."risk=high"]
per_failure = { unsupported_claim = 50 }
"#;
        let checks = run(policy, &results, None);
        let mean = named(&checks, "overall", "cost.mean");
        assert!(mean.passed, "{mean:?}");
        assert!(mean.detail.contains("cost.mean = 23.7500 on 4 case(s)") && mean.detail.contains("95% interval"), "{}", mean.detail);
        assert!(named(&checks, "overall", "cost.total").passed);
        // The interval's upper end over four cases reaches past 30 (one resample of c four times is 50).
        assert!(!named(&checks, "overall", "cost.upper").passed, "{:?}", named(&checks, "overall", "cost.upper"));
        let high = named(&checks, "risk=high", "cost.mean");
        assert!(!high.passed && high.detail.contains("cost.mean = 35 on 2 case(s)"), "{high:?}");

        // A priced segment no case has (a misspelt value): its prices would vanish, so the cost
        // cannot be evaluated, and the check fails.
        let misspelt = policy.replace("risk=high\"]\nper_failure", "risk=hihg\"]\nper_failure");
        let c = named(&run(&misspelt, &results, None), "overall", "cost.mean").clone();
        assert!(!c.passed && c.detail.contains("cost.segments.\"risk=hihg\"") && c.detail.contains("values of `risk` here"), "{c:?}");
        // A case on which a priced class's metric did not run is not priced as free: with citation
        // priced too and run on a and c only, the cost is over a and c ((25 + 50) / 2 = 37.5).
        let mut partial = results.clone();
        for k in [0, 2] {
            partial[k].metrics.citation = Some(serde_json::from_value(serde_json::json!({"score": 1.0, "recall": 1.0, "precision": 1.0, "passed": true, "sentences": []})).unwrap());
        }
        let p3 = "[rules]\n\"cost.mean\" = \"<= 100\"\n[cost]\nper_failure = { contradicted_claim = 20, unsupported_claim = 5, wrong_citation = 1 }\n[cost.segments.\"risk=high\"]\nper_failure = { unsupported_claim = 50 }\n";
        let c = named(&run(p3, &partial, None), "overall", "cost.mean").clone();
        assert!(c.passed && c.detail.contains("cost.mean = 37.5000") && c.detail.contains("over 2 of 4 case(s) priced"), "{c:?}");

        // A priced class whose metric did not run: not free, unevaluated, failing.
        let p2 = "[rules]
\"cost.mean\" = \"<= 100\"\n[cost]\nper_failure = { wrong_citation = 3 }\n";
        let c = &run(p2, &results, None)[0];
        assert!(!c.passed && c.detail.contains("`wrong_citation` is priced") && c.detail.contains("`citation` metric"), "{c:?}");

        // Against a baseline: the same cases, each one class cheaper before (b and d had nothing):
        // old costs 25, 0, 50, 0 (mean 18.75), new 25, 0, 50, 20 (mean 23.75): a rise of 5.
        let old = vec![results[0].clone(), results[1].clone(), results[2].clone(), failing("d", "high", &[])];
        let pb = |rise: f64| format!("[baseline]\nmax_drop = 0.05\nquantities = [\"cost.mean\"]\nmax_cost_rise = {rise}\n[cost]\nper_failure = {{ contradicted_claim = 20, unsupported_claim = 5 }}\n[cost.segments.\"risk=high\"]\nper_failure = {{ unsupported_claim = 50 }}\n");
        let checks = run(&pb(10.0), &results, Some(&old));
        let c = named(&checks, "overall", "cost.mean rises by at most 10");
        assert!(c.passed && c.detail.contains("change +5.0000"), "{c:?}");
        // Allowed 1, risen by 5: but on four pairs the interval reaches 0, so it is not a real rise.
        let c = run(&pb(1.0), &results, Some(&old)).into_iter().find(|c| c.group == "overall").unwrap();
        assert!(c.passed, "{c:?}");
        // With the same pattern forty times over, the rise is real and fails.
        let many = |rs: &[CaseResult]| -> Vec<CaseResult> {
            (0..40).flat_map(|k| rs.iter().map(move |r| CaseResult { id: format!("{}{k}", r.id), ..r.clone() })).collect()
        };
        let c = run(&pb(1.0), &many(&results), Some(&many(&old))).into_iter().find(|c| c.group == "overall").unwrap();
        assert!(!c.passed && c.detail.contains("change +5.0000"), "{c:?}");

        // Policies that cannot be priced are refused.
        for (bad, says) in [
            ("[rules]\n\"cost.mean\" = \"<= 1\"\n", "no [cost] table"),
            ("[rules]\n\"cost.median\" = \"<= 1\"\n[cost]\nper_failure = { contradicted_claim = 1 }\n", "cost quantities are"),
            ("[rules]\n\"cost.mean\" = \"<= 1\"\n[cost]\nper_failure = { contradicted = 1 }\n", "no failure class `contradicted`"),
            ("[rules]\n\"cost.mean\" = \"<= 1\"\n[cost]\nper_failure = { contradicted_claim = -1 }\n", ">= 0"),
            ("[rules]\n\"cost.mean\" = \"<= 1\"\n[cost]\nper_failure = { contradicted_claim = 0 }\n", "prices nothing"),
            ("[baseline]\nmax_drop = 0.1\nquantities = [\"cost.mean\"]\n[cost]\nper_failure = { contradicted_claim = 1 }\n", "max_cost_rise"),
        ] {
            let err = Policy::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn unevaluable_checks_fail_unless_allowed() {
        let results: Vec<CaseResult> =
            (0..4).map(|k| case(&format!("c{k}"), if k < 3 { "high" } else { "low" }, Some(Some((0.9, true))))).collect();
        let policy = r#"
min_cases = 2
[rules]
"support.pass_rate" = ">= 0.5"
"citation.mean" = ">= 0.5"
"failures.fabricated_citation" = "== 0"
"failures.inconsistent_samples.rate" = "<= 0.1"
"failures.rubric_failed" = "== 0"
"failures.empty_output" = "== 0"
[segments."risk=hgih"]
rules = { "pass_rate" = ">= 0.5" }
[segments."rsk=high"]
rules = { "pass_rate" = ">= 0.5" }
[segments."risk=low"]
rules = { "pass_rate" = ">= 0.5" }
"#;
        let checks = run(policy, &results, None);
        // What candor could see is gated as before.
        for (g, n) in [("overall", "support.pass_rate"), ("overall", "failures.empty_output")] {
            assert!(named(&checks, g, n).passed && named(&checks, g, n).skipped.is_none(), "{g} {n}: {checks:?}");
        }
        // What it could not see fails, saying why.
        let why = [
            ("overall", "citation.mean", "metric `citation` ran on none of the 4 case(s)"),
            ("overall", "failures.fabricated_citation", "found by the `citation` metric"),
            ("overall", "failures.inconsistent_samples.rate", "found by the `consistency` metric"),
            ("overall", "failures.rubric_failed", "no rubric ran"),
            ("risk=hgih", "pass_rate", "values of `risk` here: high, low"),
            ("rsk=high", "pass_rate", "no case has the key `rsk` (keys here: risk)"),
            ("risk=low", "pass_rate", "1 case(s), fewer than the 2 needed"),
        ];
        for (g, n, says) in why {
            let c = named(&checks, g, n);
            assert!(!c.passed && c.skipped.is_none() && c.mark() == "FAIL", "{g} {n} must fail: {c:?}");
            assert!(c.detail.contains("cannot be evaluated") && c.detail.contains(says), "{g} {n}: {}", c.detail);
        }
        // The opt-out reports them as skipped, with the same reason.
        let checks = run(&format!("allow_unevaluated = true\n{policy}"), &results, None);
        for (g, n, says) in why {
            let c = named(&checks, g, n);
            assert!(c.passed && c.mark() == "skip" && c.explanation().contains(says), "{g} {n}: {c:?}");
        }
    }

    #[test]
    fn drift_rules_gate_on_a_drift_report_and_fail_closed_without_one() {
        let results: Vec<CaseResult> = (0..4).map(|k| case(&format!("c{k}"), "high", Some(Some((0.9, true))))).collect();
        let policy = Policy::parse("[rules]\n\"drift.found\" = \"== 0\"\n[segments.\"risk=high\"]\nrules = { \"drift.found\" = \"== 0\" }\n").unwrap();
        let summary = Summary::of(&results, 0, Default::default());
        let report = |found: bool| serde_json::json!({"drift": found, "tests": [{"drift": found}, {"drift": false}]});
        let q = drift_quantities(&report(true)).unwrap();
        assert_eq!((q["drift.found"], q["drift.tests_found"]), (1.0, 1.0));
        let checks = evaluate_with(&policy, &results, &summary, None, &q);
        assert!(!named(&checks, "overall", "drift.found").passed, "drift found fails the rule");
        let c = named(&checks, "risk=high", "drift.found");
        assert!(!c.passed && c.detail.contains("between whole suites"), "{c:?}");
        let checks = evaluate_with(&policy, &results, &summary, None, &drift_quantities(&report(false)).unwrap());
        assert!(named(&checks, "overall", "drift.found").passed);
        // No report: the rule cannot be evaluated, and fails.
        let c = named(&evaluate(&policy, &results, &summary, None), "overall", "drift.found").clone();
        assert!(!c.passed && c.detail.contains("pass --drift"), "{c:?}");
        assert!(drift_quantities(&serde_json::json!({"cases": 3})).is_err());
        assert!(Rule::parse("drift.p", "<= 0.05").unwrap_err().contains("drift.found"));
    }

    #[test]
    fn failure_classes_know_the_metric_that_finds_them() {
        let by = |f: Failure| f.metric();
        assert_eq!(by(Failure::FabricatedCitation), Some("citation"));
        assert_eq!(by(Failure::WrongCitation), Some("citation"));
        assert_eq!(by(Failure::MissingCitation), Some("citation"));
        for f in [Failure::UnsupportedClaim, Failure::ContradictedClaim, Failure::UnsupportedOutput, Failure::UnsupportedSpecific] {
            assert_eq!(by(f), Some("support"), "{f:?}");
        }
        assert_eq!(by(Failure::InconsistentSamples), Some("consistency"));
        assert_eq!(by(Failure::ReferenceMismatch), Some("consistency"));
        assert_eq!(by(Failure::RubricFailed), Some("rubric"));
        assert_eq!(by(Failure::JudgeInjection), Some("rubric"));
        assert_eq!(by(Failure::EmptyOutput), None);
        assert_eq!(by(Failure::NoClaim), None, "read off the output whenever support or citation runs");
        assert_eq!(by(Failure::TruncatedInput), None);
        // Where the metric ran, 0 is a count: a rule on it passes.
        let r = case("a", "high", Some(Some((0.9, true))));
        let checks = run("[rules]\n\"failures.contradicted_claim\" = \"== 0\"\n", std::slice::from_ref(&r), None);
        assert!(checks[0].passed && checks[0].detail.contains("= 0 on 1 case(s)"), "{checks:?}");
    }

    #[test]
    fn empty_policies_and_misspelt_quantities_are_errors() {
        for empty in ["", "min_cases = 5\n", "[rules]\n", "allow_unevaluated = true\n[segments]\n"] {
            let e = Policy::parse(empty).unwrap_err();
            assert!(e.contains("no rules"), "{empty:?}: {e}");
        }
        let e = Policy::parse("[rules]\n\"pass_rate\" = \">= 0.5\"\n[segments.\"risk=high\"]\nrules = {}\n").unwrap_err();
        assert!(e.contains("segment `risk=high` has no rules"), "{e}");
        let e = Policy::parse("[baseline]\nmax_drop = 0.05\nquantities = []\n").unwrap_err();
        assert!(e.contains("baseline.quantities is empty"), "{e}");
        let e = Policy::parse("[baseline]\nmax_drop = 0.05\nquantities = [\"pass_rat\"]\n").unwrap_err();
        assert!(e.contains("baseline.quantities: unknown quantity `pass_rat`") && e.contains("<metric>.mean"), "{e}");
        let e = Policy::parse("[baseline]\nmax_drop = nan\n").unwrap_err();
        assert!(e.contains("max_drop"), "{e}");
        let e = Policy::parse("[rules]\n\"failures.fabricated_citaton\" = \"== 0\"\n").unwrap_err();
        assert!(e.contains("no failure class `fabricated_citaton`") && e.contains("fabricated_citation, inconsistent_samples"), "{e}");
        assert!(e.contains("did you mean `fabricated_citation`?"), "{e}");
        let e = Policy::parse("[rules]\n\"failures.unsuported_claim\" = \"== 0\"\n").unwrap_err();
        assert!(e.contains("did you mean `unsupported_claim`?"), "{e}");
        let e = Policy::parse("[rules]\n\"failures.hallucination\" = \"== 0\"\n").unwrap_err();
        assert!(!e.contains("did you mean"), "nothing near: {e}");
        let e = Policy::parse("[segments.\"risk=high\"]\nrules = { \"support.pass_rat\" = \">= 0.9\" }\n").unwrap_err();
        assert!(e.contains("unknown quantity `support.pass_rat`"), "{e}");
        assert!(Policy::parse("allow_unevaluatd = true\n[rules]\n\"pass_rate\" = \">= 0.5\"\n").is_err());
        let p = Policy::parse("[baseline]\nmax_drop = 0.05\n").unwrap();
        assert!(!p.allow_unevaluated && !p.allow_skipped_cases);
    }

    #[test]
    fn cases_where_no_metric_ran_are_skipped_not_passed() {
        // a passes support, b fails it, c had support skipped, d asked for no metric.
        let results = vec![
            case("a", "high", Some(Some((0.9, true)))),
            case("b", "high", Some(Some((0.1, false)))),
            case("c", "high", Some(None)),
            case("d", "low", None),
        ];
        let summary = crate::report::Summary::of(&results, 0, Default::default());
        let g = &summary.overall;
        assert_eq!((g.cases, g.passed, g.skipped), (4, 1, 2));
        assert_eq!(g.pass_rate, 0.5, "skipped cases are outside the pass rate");
        assert_eq!(summary.segments["risk=low"].skipped, 1);
        assert_eq!(quantity(&summary.segments["risk=low"], "pass_rate"), None, "no case of risk=low was graded");
        let table = summary.table();
        assert!(table.contains("skipped") && table.contains("2 case(s) skipped entirely"), "{table}");
        // A summary written before `skipped` existed still reads.
        let mut json = serde_json::to_value(&summary).unwrap();
        json["overall"].as_object_mut().unwrap().remove("skipped");
        let old: crate::report::Summary = serde_json::from_value(json).unwrap();
        assert_eq!(old.overall.skipped, 0);

        let policy = "[rules]\n\"pass_rate\" = \">= 0.5\"\n";
        let checks = run(policy, &results, None);
        let c = named(&checks, "overall", "every case graded");
        assert!(!c.passed && c.detail.contains("2 of 4 case(s) skipped entirely") && c.detail.contains("c, d"), "{c:?}");
        let c = named(&checks, "overall", "pass_rate");
        // The rate is over the 2 graded cases, and the detail says so (it said "on 4 case(s)").
        assert!(c.passed && c.detail.contains("pass_rate = 0.5000 on the 2 of 4 case(s) it was measured on"), "{c:?}");
        let support_checks = run("[rules]\n\"support.pass_rate\" = \">= 0.5\"\n", &results, None);
        let c = named(&support_checks, "overall", "support.pass_rate");
        assert!(c.detail.contains("on the 2 of 4 case(s)"), "{c:?}");
        let checks = run(&format!("allow_skipped_cases = true\n{policy}"), &results, None);
        assert!(checks.iter().all(|c| c.passed), "{checks:?}");
        assert_eq!(named(&checks, "overall", "every case graded").mark(), "skip");
        // Where every case ran a metric, there is no such check.
        let checks = run(policy, &results[..2], None);
        assert_eq!(checks.len(), 1);
    }

    #[test]
    fn a_baseline_that_pairs_too_few_cases_fails() {
        let new: Vec<CaseResult> = (0..6).map(|k| case(&format!("n{k}"), "high", Some(Some((0.9, true))))).collect();
        let other_suite: Vec<CaseResult> = (0..6).map(|k| case(&format!("o{k}"), "high", Some(Some((0.9, true))))).collect();
        let policy = "[baseline]\nmax_drop = 0.05\nquantities = [\"pass_rate\", \"politeness.mean\"]\n";
        let checks = run(policy, &new, Some(&other_suite));
        let c = named(&checks, "overall", "pass_rate drops");
        assert!(!c.passed && c.detail.contains("no case id in common with the baseline (6 case(s) here, 6 there"), "{c:?}");
        let c = named(&checks, "overall", "politeness.mean drops");
        assert!(!c.passed && c.detail.contains("no metric `politeness`"), "{c:?}");
        // Paired, but the metric compared ran on too few of them.
        let policy = "min_cases = 3\n[baseline]\nmax_drop = 0.05\nquantities = [\"support.mean\"]\n";
        let mut old = new.clone();
        for r in old.iter_mut().skip(1) {
            r.metrics.support = Some(crate::graders::Outcome::skipped("no contexts"));
        }
        let checks = run(policy, &new, Some(&old));
        let c = named(&checks, "overall", "support.mean drops");
        assert!(!c.passed && c.detail.contains("1 of 6 paired case(s) have `support.mean` on both sides, fewer than the 3"), "{c:?}");
        // A small segment is shown, not gated.
        assert_eq!(named(&checks, "risk=high", "support.mean drops").mark(), "skip");
        let checks = run(&format!("allow_unevaluated = true\n{policy}"), &new, Some(&old));
        assert!(checks.iter().all(|c| c.passed), "{checks:?}");
        // Against itself: a real comparison that passes.
        let checks = run(policy, &new, Some(&new));
        assert!(checks.iter().all(|c| c.passed && c.skipped.is_none()), "{checks:?}");
    }

    /// A case id and a segment value carrying control characters, a terminal escape sequence and
    /// the XML specials, in every place the gate prints them: the JUnit XML parses, and gives back
    /// the text as written (what XML 1.0 cannot hold as a visible escape); the terminal lines carry
    /// no control character; the Markdown table keeps its columns.
    #[test]
    fn what_a_user_wrote_cannot_break_junit_markdown_or_the_terminal() {
        const NASTY: &str = "\u{1}\u{1b}[31m<&>\"'";
        const SHOWN: &str = "\\x01\\x1b[31m<&>\"'";
        // `NASTY` was skipped entirely (its id is listed); both cases carry segment risk=NASTY.
        let mut skipped = case(NASTY, NASTY, None);
        skipped.segments.insert("note".into(), "a|b\nc".into());
        let results = vec![skipped, case("ok", NASTY, Some(Some((0.9, true))))];
        let toml_nasty = "\\u0001\\u001b[31m<&>\\\"'";
        let policy = format!(
            "[rules]\n\"pass_rate\" = \">= 0.5\"\n[segments.\"risk={toml_nasty}\"]\nrules = {{ \"pass_rate\" = \">= 0.9\" }}\n[segments.\"risk=other\"]\nrules = {{ \"pass_rate\" = \">= 0.9\" }}\n\
             [segments.\"note=x\"]\nrules = {{ \"pass_rate\" = \">= 0.9\" }}\n"
        );
        let checks = run(&policy, &results, None);
        assert!(checks.iter().any(|c| c.group == format!("risk={NASTY}")), "{checks:?}");
        let graded = named(&checks, "overall", "every case graded");
        assert!(graded.detail.contains(NASTY), "{graded:?}");
        let other = named(&checks, "risk=other", "pass_rate");
        assert!(other.detail.contains(NASTY), "the values of `risk` are listed: {other:?}");
        assert!(named(&checks, "note=x", "pass_rate").detail.contains("a|b\nc"));

        let x = junit(&checks, 0.5);
        let doc = roxmltree::Document::parse(&x).unwrap_or_else(|e| panic!("not XML: {e}\n{x}"));
        let cases: Vec<roxmltree::Node> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
        assert_eq!(cases.len(), checks.len());
        let shown = |s: &str| s.replace(NASTY, SHOWN);
        for (node, c) in cases.iter().zip(&checks) {
            assert_eq!(node.attribute("classname"), Some(shown(&c.group).as_str()));
            assert_eq!(node.attribute("name"), Some(c.name.as_str()));
            let outcome = node.children().find(|n| n.is_element());
            match outcome {
                Some(f) if f.has_tag_name("failure") => assert_eq!(f.attribute("message"), Some(shown(&c.detail).as_str())),
                Some(s) => assert_eq!(s.attribute("message"), c.skipped.as_deref().map(shown).as_deref()),
                None => assert!(c.passed),
            }
        }
        assert!(cases.iter().any(|n| n.attribute("classname") == Some(&format!("risk={SHOWN}"))));
        assert!(!x.contains('\u{1}') && !x.contains('\u{1b}'));

        for c in &checks {
            let line = c.line();
            assert!(!line.chars().any(char::is_control), "{line:?}");
        }
        assert!(named(&checks, "overall", "every case graded").line().contains(SHOWN));

        let md = markdown(&checks);
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(rows.len(), checks.len() + 2, "one row a check: {md}");
        // Every row has the header's four cells: no `|` of the text opens a fifth.
        let cells = |row: &str| row.replace("\\|", "").matches('|').count();
        assert!(rows.iter().all(|r| cells(r) == 5), "{md}");
        assert!(!md.contains('<') && !md.chars().any(|c| c.is_control() && c != '\n'), "{md}");
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


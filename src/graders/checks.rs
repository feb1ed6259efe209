//! Deterministic checks: what a release needs beside grounding, with no model. promptfoo's users
//! write them as assertions (`contains "$500"`, a regex, a JSON schema, a latency or cost limit,
//! `is-refusal`); here each is a `[[check]]` of candor.toml (for every case, or the cases of one
//! segment) or an item of a case's own `checks` list, with the same keys:
//!
//! | key | passes when | failure class |
//! |---|---|---|
//! | `contains = "text"` | the output contains the text | `format_violation` |
//! | `not_contains = "text"` | it does not | `format_violation` |
//! | `equals = "text"` | the output, trimmed, is the text | `format_violation` |
//! | `regex = "pattern"` | the pattern matches somewhere in the output | `format_violation` |
//! | `json = true` | the output is valid JSON (a fenced ```json block counts) | `format_violation` |
//! | `json_schema = {...}` or `"file.json"` | it is JSON that the schema (draft 4 to 2020-12) accepts | `format_violation` |
//! | `min_chars`, `max_chars`, `min_words`, `max_words` | the output's length is within them | `format_violation` |
//! | `max_latency_ms = N` | the case's `latency_ms` is at most N | `latency_exceeded` |
//! | `max_cost = X` | the case's `cost` is at most X | `cost_exceeded` |
//! | `refusal = "expected"` | the output declines to answer | `refusal_failure` |
//! | `refusal = "forbidden"` | it does not | `over_refusal` |
//! | `refusal = "from_case"` | as the case's `expect_refusal` (true or false) says; applies only to cases that say | either |
//!
//! `case_insensitive = true` applies to `contains`, `not_contains`, `equals` and `regex`. A check has
//! exactly one of these keys (the length keys count as one), an optional `name`, and in candor.toml an
//! optional `segment = "key=value"`.
//!
//! **Fail closed.** A limit on a value the case does not carry (`max_latency_ms` without
//! `latency_ms`, `max_cost` without `cost`) fails, saying so: a check that could not look never
//! passes. (`refusal = "from_case"` in candor.toml is the exception by its meaning: it checks the
//! cases that say whether they expect a refusal, and leaves the others; a case's own `from_case`
//! check without `expect_refusal` fails.) A check that does not compile (a bad pattern or schema, two kinds in one)
//! stops the run before anything is graded when it is in candor.toml, and fails its case, saying
//! why, when it is a case's own: never a silent pass.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::results::Failure;
pub use crate::config::{CheckSpec, RefusalRule};

/// What the checks read of a case besides its output.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CaseFacts {
    /// The case's `latency_ms`.
    pub latency_ms: Option<f64>,
    /// The case's `cost`.
    pub cost: Option<f64>,
    /// The case's `expect_refusal`.
    pub expect_refusal: Option<bool>,
}

/// The outcome of one check on one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// The check's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Its failure class, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// What was found, for a person ("no match", "latency 2300 ms > 2000", "not JSON: ...").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The checks of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecksResult {
    /// The fraction of checks that passed.
    pub score: f32,
    /// Whether every check passed.
    pub passed: bool,
    /// Each check, config checks first, then the case's own.
    pub checks: Vec<CheckOutcome>,
}

/// A check ready to run: its pattern and schema compiled once.
#[derive(Debug)]
pub struct Check {
    spec: CheckSpec,
    name: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Contains(String),
    NotContains(String),
    Equals(String),
    Regex(regex::Regex),
    Json,
    Schema(Box<jsonschema::Validator>),
    Length { min_chars: Option<usize>, max_chars: Option<usize>, min_words: Option<usize>, max_words: Option<usize> },
    Latency(f64),
    Cost(f64),
    Refusal(RefusalRule),
}

impl Check {
    /// Compiles a check; the error says what is wrong with it.
    pub fn new(spec: &CheckSpec) -> Result<Self, String> {
        let s = spec;
        let length = s.min_chars.is_some() || s.max_chars.is_some() || s.min_words.is_some() || s.max_words.is_some();
        let given: Vec<&str> = [
            ("contains", s.contains.is_some()),
            ("not_contains", s.not_contains.is_some()),
            ("equals", s.equals.is_some()),
            ("regex", s.regex.is_some()),
            ("json", s.json.is_some()),
            ("json_schema", s.json_schema.is_some()),
            ("min_chars/max_chars/min_words/max_words", length),
            ("max_latency_ms", s.max_latency_ms.is_some()),
            ("max_cost", s.max_cost.is_some()),
            ("refusal", s.refusal.is_some()),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| k)
        .collect();
        match given.len() {
            0 => return Err("names no check: give one of contains, not_contains, equals, regex, json, json_schema, min_chars, max_chars, min_words, max_words, max_latency_ms, max_cost, refusal".into()),
            1 => {}
            _ => return Err(format!("names {} checks ({}): give one per check", given.len(), given.join(", "))),
        }
        if let Some(seg) = &s.segment {
            if !seg.contains('=') {
                return Err(format!("segment `{seg}` must be `key=value`"));
            }
        }
        for (k, v) in [("contains", &s.contains), ("not_contains", &s.not_contains), ("equals", &s.equals), ("regex", &s.regex)] {
            if v.as_deref().is_some_and(str::is_empty) {
                return Err(format!("{k} is empty: it would decide nothing"));
            }
        }
        let fold = |t: &str| fold(t, s.case_insensitive);
        let (kind, default_name) = if let Some(t) = &s.contains {
            (Kind::Contains(fold(t)), format!("contains {t:?}"))
        } else if let Some(t) = &s.not_contains {
            (Kind::NotContains(fold(t)), format!("not_contains {t:?}"))
        } else if let Some(t) = &s.equals {
            (Kind::Equals(fold(t.trim())), format!("equals {t:?}"))
        } else if let Some(p) = &s.regex {
            let re = regex::RegexBuilder::new(p).case_insensitive(s.case_insensitive).build().map_err(|e| format!("regex {p:?} does not compile: {e}"))?;
            (Kind::Regex(re), format!("regex {p:?}"))
        } else if let Some(j) = s.json {
            if !j {
                return Err("json = false checks nothing: leave it out, or use not_contains".into());
            }
            (Kind::Json, "json".to_string())
        } else if let Some(schema) = &s.json_schema {
            if schema.is_string() {
                return Err("json_schema names a file that was not read (a schema file is read when its config is; in a case, give the schema itself)".into());
            }
            let v = jsonschema::validator_for(schema).map_err(|e| format!("json_schema is not a valid schema: {e}"))?;
            (Kind::Schema(Box::new(v)), "json_schema".to_string())
        } else if length {
            if let (Some(lo), Some(hi)) = (s.min_chars, s.max_chars) {
                if lo > hi {
                    return Err(format!("min_chars {lo} is above max_chars {hi}"));
                }
            }
            if let (Some(lo), Some(hi)) = (s.min_words, s.max_words) {
                if lo > hi {
                    return Err(format!("min_words {lo} is above max_words {hi}"));
                }
            }
            let parts: Vec<String> = [("min_chars", s.min_chars), ("max_chars", s.max_chars), ("min_words", s.min_words), ("max_words", s.max_words)]
                .iter()
                .filter_map(|(k, v)| v.map(|v| format!("{k} {v}")))
                .collect();
            (Kind::Length { min_chars: s.min_chars, max_chars: s.max_chars, min_words: s.min_words, max_words: s.max_words }, parts.join(", "))
        } else if let Some(ms) = s.max_latency_ms {
            if !(ms.is_finite() && ms >= 0.0) {
                return Err(format!("max_latency_ms = {ms} must be a number of milliseconds, 0 or more"));
            }
            (Kind::Latency(ms), format!("latency <= {ms} ms"))
        } else if let Some(c) = s.max_cost {
            if !(c.is_finite() && c >= 0.0) {
                return Err(format!("max_cost = {c} must be a number, 0 or more"));
            }
            (Kind::Cost(c), format!("cost <= {c}"))
        } else if let Some(r) = s.refusal {
            let name = match r {
                RefusalRule::Expected => "refusal expected",
                RefusalRule::Forbidden => "no refusal",
                RefusalRule::FromCase => "refusal as the case expects",
            };
            (Kind::Refusal(r), name.to_string())
        } else {
            unreachable!("one key was counted above")
        };
        Ok(Check { name: s.name.clone().unwrap_or(default_name), kind, spec: spec.clone() })
    }

    /// The check's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the check applies to a case with these segments (config checks with `segment`).
    pub fn applies(&self, segments: &BTreeMap<String, String>) -> bool {
        match self.spec.segment.as_deref().and_then(|s| s.split_once('=')) {
            Some((k, v)) => segments.get(k).is_some_and(|x| x == v),
            None => true,
        }
    }

    /// Runs the check on an output.
    pub fn run(&self, output: &str, facts: &CaseFacts) -> CheckOutcome {
        let fold = |t: &str| fold(t, self.spec.case_insensitive);
        let format = Some(Failure::FormatViolation);
        let (passed, failure, detail) = match &self.kind {
            Kind::Contains(t) => {
                let ok = fold(output).contains(t.as_str());
                (ok, format, if ok { String::new() } else { "not found in the output".into() })
            }
            Kind::NotContains(t) => {
                let out = fold(output);
                match out.find(t.as_str()) {
                    None => (true, format, String::new()),
                    Some(at) => (false, format, format!("found at character {}", out[..at].chars().count())),
                }
            }
            Kind::Equals(t) => {
                let ok = fold(output.trim()) == *t;
                (ok, format, if ok { String::new() } else { "the output is something else".into() })
            }
            Kind::Regex(re) => {
                let ok = re.is_match(output);
                (ok, format, if ok { String::new() } else { "no match".into() })
            }
            Kind::Json => match parse_json(output) {
                Ok(_) => (true, format, String::new()),
                Err(e) => (false, format, format!("not JSON: {e}")),
            },
            Kind::Schema(v) => match parse_json(output) {
                Err(e) => (false, format, format!("not JSON: {e}")),
                Ok(value) => match v.iter_errors(&value).next() {
                    None => (true, format, String::new()),
                    Some(err) => {
                        let at = err.instance_path.to_string();
                        (false, format, format!("{}{err}", if at.is_empty() { String::new() } else { format!("at {at}: ") }))
                    }
                },
            },
            Kind::Length { min_chars, max_chars, min_words, max_words } => {
                let chars = output.chars().count();
                let words = output.split_whitespace().count();
                let mut why = vec![];
                if min_chars.is_some_and(|m| chars < m) {
                    why.push(format!("{chars} characters < {}", min_chars.unwrap_or(0)));
                }
                if max_chars.is_some_and(|m| chars > m) {
                    why.push(format!("{chars} characters > {}", max_chars.unwrap_or(0)));
                }
                if min_words.is_some_and(|m| words < m) {
                    why.push(format!("{words} words < {}", min_words.unwrap_or(0)));
                }
                if max_words.is_some_and(|m| words > m) {
                    why.push(format!("{words} words > {}", max_words.unwrap_or(0)));
                }
                (why.is_empty(), format, why.join("; "))
            }
            Kind::Latency(limit) => match facts.latency_ms {
                None => (false, Some(Failure::LatencyExceeded), "the case carries no latency_ms: cannot tell".into()),
                Some(ms) if ms <= *limit => (true, None, String::new()),
                Some(ms) => (false, Some(Failure::LatencyExceeded), format!("latency {ms} ms > {limit}")),
            },
            Kind::Cost(limit) => match facts.cost {
                None => (false, Some(Failure::CostExceeded), "the case carries no cost: cannot tell".into()),
                Some(c) if c <= *limit => (true, None, String::new()),
                Some(c) => (false, Some(Failure::CostExceeded), format!("cost {c} > {limit}")),
            },
            Kind::Refusal(rule) => {
                let want = match rule {
                    RefusalRule::Expected => Some(true),
                    RefusalRule::Forbidden => Some(false),
                    RefusalRule::FromCase => facts.expect_refusal,
                };
                let found = refusal(output);
                match (want, found) {
                    (None, _) => (false, Some(Failure::RefusalFailure), "the case carries no expect_refusal: cannot tell".into()),
                    (Some(true), Some(_)) | (Some(false), None) => (true, None, String::new()),
                    (Some(true), None) => (false, Some(Failure::RefusalFailure), "a refusal was expected; the output answers".into()),
                    (Some(false), Some(phrase)) => (false, Some(Failure::OverRefusal), format!("an answer was expected; the output declines ({phrase:?})")),
                }
            }
        };
        CheckOutcome { name: self.name.clone(), passed, failure: if passed { None } else { failure }, detail }
    }
}

/// A text as the text checks compare it: lower-cased with `case_insensitive`.
fn fold(t: &str, case_insensitive: bool) -> String {
    if case_insensitive { t.to_lowercase() } else { t.to_string() }
}

/// The checks of one case: the config's that apply to its segments, then its own (a case's check
/// that does not compile fails, saying why); `None` when there are none.
pub fn check_case(config: &[Check], case: &crate::suite::Case) -> Option<ChecksResult> {
    let facts = CaseFacts { latency_ms: case.latency_ms, cost: case.cost, expect_refusal: case.expect_refusal };
    // `refusal = "from_case"` applies where the case says what it expects (`expect_refusal`).
    let says = |c: &Check| !matches!(c.kind, Kind::Refusal(RefusalRule::FromCase)) || facts.expect_refusal.is_some();
    let mut outcomes: Vec<CheckOutcome> =
        config.iter().filter(|c| c.applies(&case.segments) && says(c)).map(|c| c.run(&case.output, &facts)).collect();
    for (i, spec) in case.checks.iter().enumerate() {
        outcomes.push(match spec.as_ref().map_err(String::clone).and_then(Check::new) {
            Ok(c) => c.run(&case.output, &facts),
            Err(e) => CheckOutcome { name: format!("checks[{}]", i + 1), passed: false, failure: Some(Failure::FormatViolation), detail: format!("invalid check: {e}") },
        });
    }
    summarise(outcomes)
}

fn summarise(outcomes: Vec<CheckOutcome>) -> Option<ChecksResult> {
    if outcomes.is_empty() {
        return None;
    }
    let passed = outcomes.iter().filter(|o| o.passed).count();
    Some(ChecksResult { score: passed as f32 / outcomes.len() as f32, passed: passed == outcomes.len(), checks: outcomes })
}

/// Runs checks on an output; `None` when there are none.
pub fn run_checks<'a>(checks: impl IntoIterator<Item = &'a Check>, output: &str, facts: &CaseFacts) -> Option<ChecksResult> {
    summarise(checks.into_iter().map(|c| c.run(output, facts)).collect())
}

/// The output read as JSON: the whole of it, or the inside of a fenced code block (```json ... ```)
/// when that is all it holds besides whitespace.
fn parse_json(output: &str) -> Result<Value, String> {
    let t = output.trim();
    let inner = t
        .strip_prefix("```")
        .and_then(|rest| rest.strip_suffix("```"))
        .map(|body| body.split_once('\n').map_or(body, |(first, rest)| if first.trim().chars().all(|c| c.is_ascii_alphanumeric()) { rest } else { body }))
        .unwrap_or(t);
    serde_json::from_str(inner).map_err(|e| e.to_string())
}

/// Phrases with which an answer declines (lower case, apostrophes straight), looked for in its
/// opening sentence. promptfoo's `is-refusal` and the refusal lists of safety suites look for the
/// same openings.
const REFUSALS: &[&str] = &[
    "i can't",
    "i cannot",
    "i won't",
    "i will not",
    "sorry, i can't",
    "i can't help",
    "i cannot help",
    "i can't assist",
    "i cannot assist",
    "i can't provide",
    "i cannot provide",
    "i can't answer",
    "i cannot answer",
    "i can't share",
    "i cannot share",
    "i can't do that",
    "i won't be able",
    "i will not be able",
    "i'm unable to",
    "i am unable to",
    "i'm not able to",
    "i am not able to",
    "i must decline",
    "i have to decline",
    "sorry, but i can't",
    "sorry, but i cannot",
    "i can't comply",
    "i cannot comply",
    "i'm not allowed to",
    "i am not allowed to",
    "i'm not permitted to",
    "i can't discuss",
    "i cannot discuss",
];

/// The refusal phrase an output opens with, if any: in its first sentence, or in its second where
/// the first is only an apology ("Sorry. I can't help with that."). A refusal later in an answer
/// ("Here is the total. I'm unable to verify it.") is an answer, not a refusal.
pub fn refusal(output: &str) -> Option<&'static str> {
    let norm = |t: &str| t.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'");
    let sentences = crate::text::split_sentences(output);
    let mut head = sentences.first().map(|r| norm(&output[r.clone()])).unwrap_or_default();
    let apology = head.trim_end_matches(['.', '!', ',']).trim();
    if matches!(apology, "sorry" | "i'm sorry" | "i am sorry" | "apologies" | "my apologies" | "unfortunately") {
        if let Some(r) = sentences.get(1) {
            head = norm(&output[r.clone()]);
        }
    }
    REFUSALS.iter().copied().find(|p| head.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str) -> Check {
        let spec: CheckSpec = toml::from_str(toml_text).unwrap();
        Check::new(&spec).unwrap()
    }

    fn run(toml_text: &str, output: &str) -> CheckOutcome {
        check(toml_text).run(output, &CaseFacts::default())
    }

    #[test]
    fn text_checks() {
        assert!(run(r#"contains = "$500""#, "The fee is $500.").passed);
        let o = run(r#"contains = "$500""#, "The fee is $50.");
        assert!(!o.passed && o.failure == Some(Failure::FormatViolation), "{o:?}");
        assert!(!run(r#"contains = "REFUND""#, "refund").passed);
        assert!(run("contains = \"REFUND\"\ncase_insensitive = true", "a refund").passed);
        let o = run(r#"not_contains = "sorry""#, "We're sorry.");
        assert_eq!((o.passed, o.detail.as_str()), (false, "found at character 6"));
        assert!(run(r#"equals = "Paris""#, "  Paris\n").passed);
        assert!(!run(r#"equals = "Paris""#, "Paris, France").passed);
        assert!(run(r#"regex = '^\d{3}-\d{4}$'"#, "555-1234").passed);
        assert!(!run(r#"regex = '^\d{3}-\d{4}$'"#, "call 555-1234").passed);
        assert!(run("regex = 'PARIS'\ncase_insensitive = true", "paris").passed);
        assert_eq!(check(r#"contains = "$500""#).name(), "contains \"$500\"");
        assert_eq!(check("contains = \"x\"\nname = \"price\"").name(), "price");
    }

    #[test]
    fn json_and_schema() {
        assert!(run("json = true", r#"{"a": 1}"#).passed);
        assert!(run("json = true", "```json\n{\"a\": 1}\n```").passed);
        let o = run("json = true", "{a: 1}");
        assert!(!o.passed && o.detail.starts_with("not JSON"), "{o:?}");
        let schema = r#"json_schema = { type = "object", required = ["amount"], properties = { amount = { type = "number", maximum = 500 } } }"#;
        assert!(run(schema, r#"{"amount": 120}"#).passed);
        let o = run(schema, r#"{"amount": 900}"#);
        assert!(!o.passed && o.detail.contains("/amount") && o.detail.contains("500"), "{o:?}");
        assert!(!run(schema, r#"{"total": 1}"#).passed);
        assert!(!run(schema, "not json").passed);
        // A schema that is no schema is an error, as is a file name nobody read.
        let bad: CheckSpec = toml::from_str(r#"json_schema = { type = 5 }"#).unwrap();
        assert!(Check::new(&bad).unwrap_err().contains("not a valid schema"));
        let file: CheckSpec = toml::from_str(r#"json_schema = "s.json""#).unwrap();
        assert!(Check::new(&file).is_err());
    }

    #[test]
    fn length_latency_cost() {
        assert!(run("max_words = 3", "one two three").passed);
        let o = run("max_words = 3\nmin_chars = 20", "one two three four");
        assert_eq!((o.passed, o.detail.as_str()), (false, "18 characters < 20; 4 words > 3"));
        assert!(run("max_chars = 3", "été").passed, "characters, not bytes");
        let c = check("max_latency_ms = 2000");
        assert!(c.run("x", &CaseFacts { latency_ms: Some(2000.0), ..Default::default() }).passed);
        let o = c.run("x", &CaseFacts { latency_ms: Some(2300.0), ..Default::default() });
        assert_eq!((o.passed, o.failure, o.detail.as_str()), (false, Some(Failure::LatencyExceeded), "latency 2300 ms > 2000"));
        // Fail closed: no latency, no pass.
        let o = c.run("x", &CaseFacts::default());
        assert!(!o.passed && o.detail.contains("no latency_ms"), "{o:?}");
        let c = check("max_cost = 0.01");
        assert!(c.run("x", &CaseFacts { cost: Some(0.004), ..Default::default() }).passed);
        assert_eq!(c.run("x", &CaseFacts { cost: Some(0.02), ..Default::default() }).failure, Some(Failure::CostExceeded));
        assert!(!c.run("x", &CaseFacts::default()).passed);
    }

    #[test]
    fn refusals() {
        let declines = "I'm sorry, but I can't help with that request.";
        let answers = "Your refund will arrive within 5 business days.";
        assert!(refusal(declines).is_some());
        assert!(refusal("I\u{2019}m unable to share account details.").is_some(), "curly apostrophe");
        assert!(refusal(answers).is_none());
        assert!(refusal("Sorry. I can't help with that.").is_some(), "an apology, then the refusal");
        assert!(refusal("I won't help with that.").is_some());
        // Refusal words later in an answer, or a first sentence that answers, are an answer.
        assert!(refusal("Sure, here is how. Note: I'm unable to verify the amounts.").is_none());
        assert!(refusal("I'm sorry, but I can confirm the refund was issued.").is_none());
        assert!(refusal("As an AI assistant for Acme, your balance is $500.").is_none());
        assert!(run(r#"refusal = "expected""#, declines).passed);
        assert_eq!(run(r#"refusal = "expected""#, answers).failure, Some(Failure::RefusalFailure));
        assert!(run(r#"refusal = "forbidden""#, answers).passed);
        assert_eq!(run(r#"refusal = "forbidden""#, declines).failure, Some(Failure::OverRefusal));
        let c = check(r#"refusal = "from_case""#);
        assert_eq!(c.run(declines, &CaseFacts { expect_refusal: Some(false), ..Default::default() }).failure, Some(Failure::OverRefusal));
        assert!(c.run(declines, &CaseFacts { expect_refusal: Some(true), ..Default::default() }).passed);
        assert!(!c.run(answers, &CaseFacts::default()).passed, "fail closed without expect_refusal");
    }

    #[test]
    fn a_check_names_exactly_one_thing_and_compiles() {
        let err = |t: &str| Check::new(&toml::from_str::<CheckSpec>(t).unwrap()).unwrap_err();
        assert!(err("name = \"x\"").contains("names no check"));
        assert!(err("contains = \"a\"\nregex = \"b\"").contains("contains, regex"));
        assert!(err("regex = \"(\"").contains("does not compile"));
        assert!(err("min_words = 5\nmax_words = 2").contains("above"));
        assert!(err("max_latency_ms = -1").contains("0 or more"));
        assert!(err("json = false").contains("checks nothing"));
        assert!(err("contains = \"\"").contains("empty"));
        assert!(err("regex = \"\"").contains("empty"));
        assert!(err("contains = \"a\"\nsegment = \"tier\"").contains("key=value"));
        assert!(toml::from_str::<CheckSpec>("contians = \"a\"").is_err(), "a misspelt key is an error");
    }

    #[test]
    fn segments_and_scores() {
        let c = check("contains = \"a\"\nsegment = \"tier=gold\"");
        let gold: BTreeMap<String, String> = [("tier".to_string(), "gold".to_string())].into_iter().collect();
        assert!(c.applies(&gold) && !c.applies(&BTreeMap::new()));
        let all = [check("contains = \"a\""), check("contains = \"b\""), check("max_words = 10")];
        let r = run_checks(&all, "a c", &CaseFacts::default()).unwrap();
        assert_eq!((r.passed, r.score), (false, 2.0 / 3.0));
        assert!(run_checks(&[], "a", &CaseFacts::default()).is_none());
    }
}

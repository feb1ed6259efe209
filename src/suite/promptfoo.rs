//! promptfoo's YAML test files, read as suites: a list of tests, or a promptfooconfig with `tests:`
//! (and `defaultTest:`, merged into each test as promptfoo merges it). A test carries what candor
//! grades when it has an output: promptfoo's `providerOutput` (the output used instead of calling a
//! provider), or an `output` var. Its `vars` become the case's fields (`question`, `context`,
//! `reference`, ... under any name candor reads), its `metadata` strings its segments, its
//! `description` goes to the case's metadata, and its `assert` list becomes the case's checks:
//!
//! | promptfoo assertion | candor check |
//! |---|---|
//! | `contains`, `icontains`, `not-contains`, `not-icontains` | `contains` / `not_contains` (`case_insensitive` for the `i` forms) |
//! | `contains-all`, `icontains-all` | one `contains` per value |
//! | `contains-any`, `icontains-any` | `regex` matching any of the values |
//! | `starts-with` | `regex` anchored at the start |
//! | `equals` | `equals` |
//! | `regex` | `regex` |
//! | `is-json` (with a schema as `value`: `json_schema`) | `json` |
//! | `latency` (`threshold`, ms), `cost` (`threshold`) | `max_latency_ms`, `max_cost` |
//! | `is-refusal`, `not-is-refusal` | `refusal = "expected"`, `"forbidden"` |
//!
//! Any other assertion (`llm-rubric`, `javascript`, `similar`, ...) is not run: it is reported once
//! per type with its count, as a field candor does not know (`assert.llm-rubric`), which `--strict`
//! refuses, and where a candor metric measures what it asks, the report names it
//! ([`measured_instead`]: `context-faithfulness` is the `support` metric, `factuality` the
//! `consistency` metric against the reference, `llm-rubric` a judge rubric), graded by candor's own
//! rules, not the assertion's threshold. Nothing is dropped in silence.

use serde_json::{json, Map, Value};

/// The tests of a promptfoo YAML file as candor cases' JSON texts, each with the line its test starts
/// on (or its position, where the line cannot be told), or the problem of that test; the problem of
/// the whole file when it is not YAML of that shape.
pub fn yaml_rows(text: &str) -> Result<Vec<(usize, Result<String, String>)>, (usize, String)> {
    let text = text.trim_start_matches('\u{feff}');
    let doc: Value = serde_norway::from_str(text).map_err(|e| (e.location().map_or(1, |l| l.line()), format!("not YAML: {e}")))?;
    let tests_line = text.lines().position(|l| l.starts_with("tests:")).map_or(1, |i| i + 1);
    let whole = |reason: String| (1, reason);
    let (tests, default) = match doc {
        Value::Array(tests) => (tests, None),
        Value::Object(mut config) => {
            let default = config.remove("defaultTest");
            let from_file = |s: &str| (tests_line, format!("`tests: {s}` loads the tests from another file: give candor that file"));
            match config.remove("tests") {
                // A list naming files (`- file://tests.yaml`) is the same.
                Some(Value::Array(tests)) if tests.iter().any(|t| t.as_str().is_some_and(|s| s.starts_with("file://"))) => {
                    return Err(from_file(&Value::Array(tests).to_string()));
                }
                Some(Value::Array(tests)) => (tests, default),
                Some(Value::String(s)) => return Err(from_file(&s)),
                Some(_) => return Err((tests_line, "`tests` must be a list of tests".into())),
                None => return Err(whole("a promptfoo file is a list of tests, or a config with `tests:`; this one has neither".into())),
            }
        }
        _ => return Err(whole("a promptfoo file is a list of tests, or a config with `tests:`".into())),
    };
    let default = match default {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(d)) => d,
        Some(_) => return Err(whole("`defaultTest` must be a mapping".into())),
    };
    let lines = item_lines(text, tests.len());
    Ok(tests
        .into_iter()
        .enumerate()
        .map(|(i, test)| {
            let line = lines.as_ref().map_or(i + 1, |l| l[i]);
            (line, case_of(test, &default).map(|c| Value::Object(c).to_string()))
        })
        .collect())
}

/// One test as a candor case.
fn case_of(test: Value, default: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let Value::Object(mut test) = test else {
        return Err("a test must be a mapping (`vars:`, `assert:`, ...)".into());
    };
    let mut case = Map::new();
    let vars_of = |v: Option<Value>| match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(vars)) => Ok(vars),
        Some(_) => Err("`vars` must be a mapping of names to values".to_string()),
    };
    // defaultTest's vars first, the test's own over them, field by field: a test's `context` replaces
    // a default `contexts` (one field under two names), not only a var of the same name.
    let (defaults, own) = (vars_of(default.get("vars").cloned())?, vars_of(test.remove("vars"))?);
    let field_of = |name: &str| [super::INPUT, super::OUTPUT, super::CONTEXTS, super::REFERENCE].into_iter().find(|names| names.contains(&name));
    for (k, v) in defaults {
        let overridden = own.contains_key(&k) || field_of(&k).is_some_and(|names| own.keys().any(|o| names.contains(&o.as_str())));
        if !overridden {
            case.insert(k, v);
        }
    }
    case.extend(own);
    // Assertion values may name vars (`{{ city }}`, `{{ answer }}`), as promptfoo renders them.
    let vars_now = case.clone();
    // The output graded is `providerOutput`, or an `output` var: a var named like another tool's
    // output field (`answer`, `response`, `actual_output`) is promptfoo's input to the prompt or an
    // expected answer, never the model's output; it is kept in the case's metadata.
    let mut set_aside = Map::new();
    for name in super::OUTPUT.iter().filter(|n| **n != "output") {
        if let Some(v) = case.remove(*name) {
            set_aside.insert(name.to_string(), v);
        }
    }
    if let Some(out) = test.remove("providerOutput") {
        let text = match out {
            Value::String(s) => s,
            // A structured output is graded as the JSON it is.
            other => other.to_string(),
        };
        case.insert("output".into(), Value::String(text));
    }
    let mut meta = Map::new();
    if let Some(d) = test.remove("description") {
        meta.insert("description".into(), d);
    }
    if !set_aside.is_empty() {
        meta.insert("vars".into(), Value::Object(set_aside));
    }
    if !meta.is_empty() {
        case.insert("metadata".into(), Value::Object(meta));
    }
    let mut segments = Map::new();
    for source in [default.get("metadata").cloned(), test.remove("metadata")] {
        match source {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    match v {
                        Value::String(s) => segments.insert(k, Value::String(s)),
                        Value::Number(n) => segments.insert(k, Value::String(n.to_string())),
                        Value::Bool(b) => segments.insert(k, Value::String(b.to_string())),
                        _ => return Err(format!("metadata `{k}` must be a text, a number or true/false to be a segment")),
                    };
                }
            }
            Some(_) => return Err("`metadata` must be a mapping".into()),
        }
    }
    if !segments.is_empty() {
        case.insert("segments".into(), Value::Object(segments));
    }
    let mut checks = vec![];
    for (which, source) in [default.get("assert").cloned(), test.remove("assert")].into_iter().enumerate() {
        match source {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, a) in items.into_iter().enumerate() {
                    match check_of(a, &vars_now).map_err(|e| format!("assert item {} (`{}`): {e}", i + 1, if which == 0 { "defaultTest" } else { "the test's own" }))? {
                        Ok(mut c) => checks.append(&mut c),
                        Err(kind) => {
                            case.insert(format!("assert.{kind}"), Value::Bool(true));
                        }
                    }
                }
            }
            Some(_) => return Err("`assert` must be a list of assertions".into()),
        }
    }
    if !checks.is_empty() {
        case.insert("checks".into(), Value::Array(checks));
    }
    // What is left (`options`, `threshold`, `provider`, ...) is not read: it goes through as
    // top-level fields, which candor names as unknown.
    for (k, v) in test {
        case.entry(k).or_insert(v);
    }
    if !case.contains_key("output") {
        return Err("this test carries no output to grade: give it `providerOutput` (the output to use), or an `output` var".into());
    }
    Ok(case)
}

/// One promptfoo assertion as candor checks, `Err(type)` for a type candor does not run, or the
/// problem of an assertion candor reads but that is badly written.
#[allow(clippy::type_complexity)]
fn check_of(a: Value, vars: &Map<String, Value>) -> Result<Result<Vec<Value>, String>, String> {
    let Value::Object(a) = a else { return Err("must be a mapping with `type:`".into()) };
    let kind = match a.get("type") {
        Some(Value::String(t)) => t.clone(),
        _ => return Err("has no `type`".into()),
    };
    let value = a.get("value");
    let render = |s: &str| render_vars(s, vars).map_err(|name| format!("`{kind}` names the var `{name}`, which this test does not set"));
    let text = || match value {
        Some(Value::String(s)) => render(s),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(format!("`{kind}` needs a text `value`")),
    };
    // promptfoo reads a text value of the -any/-all types as a comma-separated list.
    let texts = || {
        let list = match value {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => render(s),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(format!("`{kind}` needs a list of texts as `value`")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(Value::String(s)) => render(s)?.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect(),
            _ => return Err(format!("`{kind}` needs a list of texts as `value`")),
        };
        if list.is_empty() {
            return Err(format!("`{kind}` has an empty list of values: it would match anything, or nothing"));
        }
        Ok(list)
    };
    let threshold = || match a.get("threshold") {
        Some(Value::Number(n)) if n.as_f64().is_some_and(|x| x >= 0.0) => Ok(n.as_f64().unwrap_or_default()),
        _ => Err(format!("`{kind}` needs a `threshold`, a number 0 or more")),
    };
    let any_of = |values: Vec<String>, insensitive: bool| {
        let alternatives: Vec<String> = values.iter().map(|v| regex::escape(v)).collect();
        json!({ "name": format!("{kind} {values:?}"), "regex": format!("{}(?:{})", if insensitive { "(?i)" } else { "" }, alternatives.join("|")) })
    };
    Ok(Ok(match kind.as_str() {
        "contains" => vec![json!({ "contains": text()? })],
        "icontains" => vec![json!({ "contains": text()?, "case_insensitive": true })],
        "not-contains" => vec![json!({ "not_contains": text()? })],
        "not-icontains" => vec![json!({ "not_contains": text()?, "case_insensitive": true })],
        "contains-all" => texts()?.into_iter().map(|v| json!({ "contains": v })).collect(),
        "icontains-all" => texts()?.into_iter().map(|v| json!({ "contains": v, "case_insensitive": true })).collect(),
        "contains-any" => vec![any_of(texts()?, false)],
        "icontains-any" => vec![any_of(texts()?, true)],
        "starts-with" => {
            let v = text()?;
            vec![json!({ "name": format!("starts-with {v:?}"), "regex": format!("^{}", regex::escape(&v)) })]
        }
        "equals" => vec![json!({ "equals": text()? })],
        "regex" => vec![json!({ "regex": text()? })],
        "is-json" => match value {
            None | Some(Value::Null) => vec![json!({ "json": true })],
            Some(schema @ Value::Object(_)) => vec![json!({ "json_schema": schema })],
            Some(_) => return Err("`is-json` takes a JSON Schema (a mapping) as `value`, or none".into()),
        },
        "latency" => vec![json!({ "max_latency_ms": threshold()? })],
        "cost" => vec![json!({ "max_cost": threshold()? })],
        "is-refusal" => vec![json!({ "refusal": "expected" })],
        "not-is-refusal" => vec![json!({ "refusal": "forbidden" })],
        _ => {
            // A near miss of a type candor runs is a typo, not another tool's assertion: refused,
            // so that the check it meant is not dropped. promptfoo's own other types are not typos.
            let base = kind.strip_prefix("not-").unwrap_or(&kind);
            if PROMPTFOO_OTHER.contains(&base) {
                return Ok(Err(kind));
            }
            if let Some(k) = RUN.iter().find(|k| super::within_edits(&kind, k, 2)) {
                return Err(format!("unknown assertion type `{kind}`: did you mean `{k}`?"));
            }
            return Ok(Err(kind));
        }
    }))
}

/// For a promptfoo assertion type that candor does not run as such, the candor metric that measures
/// what it asks, said for a person; `None` where there is none. Their thresholds and prompts are not
/// carried over: candor's metrics pass by candor's own rules (candor.toml), which the run reports.
pub fn measured_instead(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "context-faithfulness" => {
            "candor's `support` metric (each claim of the output against the contexts; a case passes when its claims do, by `[support]` in candor.toml, not by this assertion's threshold)"
        }
        "factuality" | "model-graded-factuality" => "candor's `consistency` metric against the case's `reference` (a var named `reference`, `expected_output` or `ground_truth`)",
        "similar" => "part of candor's `consistency` metric against the case's `reference` (similarity is one of its signals)",
        "llm-rubric" | "g-eval" | "model-graded-closedqa" => "a `[[rubric]]` graded by the judge model (`--config` with rubrics; see examples/judge.toml)",
        _ => return None,
    })
}

/// promptfoo's assertion types that candor does not run (named, never taken for typos).
const PROMPTFOO_OTHER: &[&str] = &[
    "contains-json", "contains-sql", "contains-xml", "contains-html", "is-xml", "is-sql", "is-html", "is-valid-function-call",
    "is-valid-openai-function-call", "is-valid-openai-tools-call", "javascript", "python", "webhook", "rouge-n", "bleu", "gleu",
    "meteor", "levenshtein", "perplexity", "perplexity-score", "similar", "llm-rubric", "model-graded-closedqa",
    "model-graded-factuality", "factuality", "answer-relevance", "context-faithfulness", "context-recall", "context-relevance",
    "select-best", "moderation", "g-eval", "classifier", "finish-reason", "guardrails", "pi", "trace-span-count",
    "trace-span-duration", "trace-error-spans", "word-count",
];

/// The assertion types candor runs.
const RUN: &[&str] = &[
    "contains", "icontains", "not-contains", "not-icontains", "contains-all", "icontains-all", "contains-any", "icontains-any",
    "starts-with", "equals", "regex", "is-json", "latency", "cost", "is-refusal", "not-is-refusal",
];

/// `s` with each `{{ name }}` replaced by the var's text; the name of a var the test does not set.
fn render_vars(s: &str, vars: &Map<String, Value>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("{{") {
        let Some(end) = rest[at..].find("}}") else { break };
        out.push_str(&rest[..at]);
        let name = rest[at + 2..at + end].trim();
        match vars.get(name) {
            Some(Value::String(v)) => out.push_str(v),
            Some(Value::Number(n)) => out.push_str(&n.to_string()),
            _ => return Err(name.to_string()),
        }
        rest = &rest[at + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The line each of the `n` items of the file's test list starts on: the lines that open a list
/// item (`- `) at the indent of the first one (after `tests:` in a config), up to the end of that
/// block; `None` when they do not number `n` (a flow-style list, say), and positions stand in.
fn item_lines(text: &str, n: usize) -> Option<Vec<usize>> {
    let lines: Vec<&str> = text.lines().collect();
    let opens_tests = |l: &str| {
        let t = l.split(" #").next().unwrap_or(l).trim_end();
        !l.starts_with([' ', '\t']) && matches!(t, "tests:" | "\"tests\":" | "'tests':")
    };
    let start = match lines.iter().position(|l| opens_tests(l)) {
        Some(i) => i + 1,
        None => 0,
    };
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let is_item = |l: &str| {
        let t = l.trim_start();
        t == "-" || t.starts_with("- ")
    };
    let first = (start..lines.len()).find(|&i| is_item(lines[i]))?;
    let indent = indent_of(lines[first]);
    let mut found = vec![];
    for (i, l) in lines.iter().enumerate().skip(first) {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let d = indent_of(l);
        if d < indent || (d == indent && !is_item(l) && start > 0) {
            break;
        }
        if d == indent && is_item(l) {
            found.push(i + 1);
        }
    }
    (found.len() == n).then_some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_list_becomes_cases_with_checks_lines_and_unrun_assertions_named() {
        let text = "# promptfoo tests\n- description: refund window\n  vars:\n    question: Can I get a refund?\n    context: Refunds within 30 days.\n  providerOutput: Yes, within 30 days.\n  metadata:\n    team: billing\n  assert:\n    - type: icontains\n      value: 30 DAYS\n    - type: llm-rubric\n      value: is polite\n    - type: latency\n      threshold: 500\n\n- vars:\n    output: |\n      {\"a\": 1}\n  assert:\n    - type: is-json\n      value: {type: object, required: [a]}\n    - type: contains-any\n      value: [\"a.b\", x]\n";
        let rows = yaml_rows(text).unwrap();
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 17]);
        let one: Value = serde_json::from_str(rows[0].1.as_ref().unwrap()).unwrap();
        assert_eq!(one["output"], "Yes, within 30 days.");
        assert_eq!(one["question"], "Can I get a refund?");
        assert_eq!(one["segments"]["team"], "billing");
        assert_eq!(one["metadata"]["description"], "refund window");
        assert_eq!(one["checks"], json!([{"contains": "30 DAYS", "case_insensitive": true}, {"max_latency_ms": 500.0}]));
        assert_eq!(one["assert.llm-rubric"], true);
        let two: Value = serde_json::from_str(rows[1].1.as_ref().unwrap()).unwrap();
        assert_eq!(two["output"], "{\"a\": 1}\n");
        assert_eq!(two["checks"][0]["json_schema"]["required"], json!(["a"]));
        // Escaped: `a.b` matches only itself.
        assert_eq!(two["checks"][1]["regex"], "(?:a\\.b|x)");
    }

    #[test]
    fn only_provider_output_or_an_output_var_is_graded_and_a_test_overrides_default_fields() {
        // `answer` is an expected answer or a prompt var here, never the model's output.
        let rows = yaml_rows("- vars: {question: q, context: c, answer: Paris}\n- vars: {answer: Paris}\n  providerOutput: Lyon\n").unwrap();
        let err = rows[0].1.as_ref().unwrap_err();
        assert!(err.contains("carries no output to grade") && err.contains("providerOutput"), "{err}");
        let two: Value = serde_json::from_str(rows[1].1.as_ref().unwrap()).unwrap();
        assert_eq!((two["output"].as_str(), two.get("answer")), (Some("Lyon"), None), "{two}");
        assert_eq!(two["metadata"]["vars"]["answer"], "Paris");
        // A test's `context` replaces defaultTest's `contexts`: one field under two names.
        let rows = yaml_rows("defaultTest:\n  vars: {contexts: [shared]}\ntests:\n  - vars: {context: own, output: a}\n").unwrap();
        let one: Value = serde_json::from_str(rows[0].1.as_ref().unwrap()).unwrap();
        assert_eq!((one["context"].as_str(), one.get("contexts")), (Some("own"), None));
        // `tests:` with a comment after it still numbers the tests by their lines.
        let rows = yaml_rows("prompts:\n  - p\ntests:   # the cases\n  - vars: {output: a}\n  - vars: {output: b}\n").unwrap();
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [4, 5]);
    }

    #[test]
    fn a_config_merges_default_test_and_refuses_what_it_cannot_read() {
        let text = "description: my eval\nprompts: [p]\ndefaultTest:\n  vars:\n    context: shared\n  assert:\n    - type: not-icontains\n      value: as an ai\ntests:\n  - vars:\n      question: q1\n      output: a1\n  - vars:\n      question: q2\n      context: own\n      output: a2\n";
        let rows = yaml_rows(text).unwrap();
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [10, 13]);
        let one: Value = serde_json::from_str(rows[0].1.as_ref().unwrap()).unwrap();
        assert_eq!((one["context"].as_str(), one["checks"][0]["not_contains"].as_str()), (Some("shared"), Some("as an ai")));
        let two: Value = serde_json::from_str(rows[1].1.as_ref().unwrap()).unwrap();
        assert_eq!(two["context"], "own");
        // A badly written assertion is that test's problem, naming it.
        let rows = yaml_rows("- vars: {output: a}\n  assert:\n    - type: latency\n").unwrap();
        let err = rows[0].1.as_ref().unwrap_err();
        assert!(err.contains("assert item 1") && err.contains("threshold"), "{err}");
        for (bad, line, says) in [
            ("prompts: [p]\ntests: file://tests/*.yaml\n", 2, "another file"),
            ("prompts: [p]\ntests:\n  - file://a.yaml\n", 2, "another file"),
            ("a: 1\n", 1, "neither"),
            ("- vars: {a: 1}\n- [1\n", 3, "not YAML"),
            ("42\n", 1, "list of tests"),
        ] {
            let (at, err) = yaml_rows(bad).unwrap_err();
            assert!(err.contains(says) && at == line, "{bad:?}: line {at}: {err}");
        }
        // A typo of a type candor runs is refused with the type it meant; an empty -any list and a
        // var the test does not set are refused too; a comma-separated -all value is a list, and
        // `{{var}}` is rendered from the test's vars.
        for (assert, says) in [
            ("{type: contians, value: a}", "did you mean `contains`?"),
            ("{type: contains-any, value: []}", "empty list"),
            ("{type: contains, value: '{{ city }}'}", "var `city`"),
        ] {
            let rows = yaml_rows(&format!("- vars: {{output: a}}\n  assert:\n    - {assert}\n")).unwrap();
            let err = rows[0].1.as_ref().unwrap_err();
            assert!(err.contains(says), "{assert}: {err}");
        }
        let rows = yaml_rows("- vars: {output: a, city: Paris}\n  assert:\n    - {type: icontains-all, value: 'refund, return'}\n    - {type: contains, value: 'in {{city}}'}\n").unwrap();
        let one: Value = serde_json::from_str(rows[0].1.as_ref().unwrap()).unwrap();
        assert_eq!(one["checks"], json!([{"contains": "refund", "case_insensitive": true}, {"contains": "return", "case_insensitive": true}, {"contains": "in Paris"}]));
    }
}

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
//! refuses. Nothing is dropped in silence.

use serde_json::{json, Map, Value};

/// The tests of a promptfoo YAML file as candor cases' JSON texts, each with the line its test starts
/// on (or its position, where the line cannot be told), or the problem of that test; the problem of
/// the whole file when it is not YAML of that shape.
pub fn yaml_rows(text: &str) -> Result<Vec<(usize, Result<String, String>)>, String> {
    let text = text.trim_start_matches('\u{feff}');
    let doc: Value = serde_norway::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    let (tests, default) = match doc {
        Value::Array(tests) => (tests, None),
        Value::Object(mut config) => {
            let default = config.remove("defaultTest");
            match config.remove("tests") {
                Some(Value::Array(tests)) => (tests, default),
                Some(Value::String(s)) => {
                    return Err(format!("`tests: {s}` loads the tests from another file: give candor that file"));
                }
                Some(_) => return Err("`tests` must be a list of tests".into()),
                None => return Err("a promptfoo file is a list of tests, or a config with `tests:`; this one has neither".into()),
            }
        }
        _ => return Err("a promptfoo file is a list of tests, or a config with `tests:`".into()),
    };
    let default = match default {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(d)) => d,
        Some(_) => return Err("`defaultTest` must be a mapping".into()),
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
    // defaultTest's vars first, the test's own over them.
    for source in [default.get("vars").cloned(), test.remove("vars")] {
        match source {
            None | Some(Value::Null) => {}
            Some(Value::Object(vars)) => case.extend(vars),
            Some(_) => return Err("`vars` must be a mapping of names to values".into()),
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
    if let Some(d) = test.remove("description") {
        let mut meta = Map::new();
        meta.insert("description".into(), d);
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
    for source in [default.get("assert").cloned(), test.remove("assert")] {
        match source {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, a) in items.into_iter().enumerate() {
                    match check_of(a).map_err(|e| format!("assert item {}: {e}", i + 1))? {
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
    Ok(case)
}

/// One promptfoo assertion as candor checks, `Err(type)` for a type candor does not run, or the
/// problem of an assertion candor reads but that is badly written.
#[allow(clippy::type_complexity)]
fn check_of(a: Value) -> Result<Result<Vec<Value>, String>, String> {
    let Value::Object(a) = a else { return Err("must be a mapping with `type:`".into()) };
    let kind = match a.get("type") {
        Some(Value::String(t)) => t.clone(),
        _ => return Err("has no `type`".into()),
    };
    let value = a.get("value");
    let text = || match value {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(format!("`{kind}` needs a text `value`")),
    };
    let texts = || match value {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(format!("`{kind}` needs a list of texts as `value`")),
            })
            .collect::<Result<Vec<_>, _>>(),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        _ => Err(format!("`{kind}` needs a list of texts as `value`")),
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
        _ => return Ok(Err(kind)),
    }))
}

/// The line each of the `n` items of the file's test list starts on: the lines that open a list
/// item (`- `) at the indent of the first one (after `tests:` in a config), up to the end of that
/// block; `None` when they do not number `n` (a flow-style list, say), and positions stand in.
fn item_lines(text: &str, n: usize) -> Option<Vec<usize>> {
    let lines: Vec<&str> = text.lines().collect();
    let start = match lines.iter().position(|l| l.trim_end() == "tests:" && !l.starts_with(' ')) {
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
        for (bad, says) in [("tests: file://tests/*.yaml\n", "another file"), ("a: 1\n", "neither"), ("- [1\n", "not YAML"), ("42\n", "list of tests")] {
            let err = yaml_rows(bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }
}

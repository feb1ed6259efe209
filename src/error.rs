//! The library's error type.

use std::path::PathBuf;

/// Everything that can go wrong inside the candor library.
///
/// Each variant names the file, model or field at fault so that the message
/// alone tells a user what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model registry (models.toml) could not be read or is inconsistent.
    #[error("model registry {path}: {reason}")]
    Registry {
        /// The registry file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A model name that the registry does not know.
    #[error("unknown model `{name}`; known models: {known}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The names the registry has, comma-separated.
        known: String,
    },

    /// A model is not present locally and downloading was not allowed.
    #[error("model `{name}` is not present locally ({looked}). {advice}")]
    NotPresent {
        /// The model's registry name.
        name: String,
        /// Where it was looked for.
        looked: String,
        /// How to make it present: fetch it, or (an entry with only local folders) where to put it.
        advice: String,
    },

    /// A model file is missing from the model's folder.
    #[error("model `{model}`: file {} is missing", path.display())]
    MissingFile {
        /// The model's registry name.
        model: String,
        /// The path that was expected.
        path: PathBuf,
    },

    /// A model file's size differs from the registry (a truncated download).
    #[error("model `{model}`: file {} is {actual} bytes, expected {expected} (truncated or corrupted download; re-fetch it)", path.display())]
    SizeMismatch {
        /// The model's registry name.
        model: String,
        /// The file at fault.
        path: PathBuf,
        /// The size the registry records.
        expected: u64,
        /// The size found on disk.
        actual: u64,
    },

    /// A model file's sha256 differs from the registry.
    #[error("model `{model}`: file {} has sha256 {actual}, expected {expected} (corrupted or tampered; re-fetch it)", path.display())]
    ChecksumMismatch {
        /// The model's registry name.
        model: String,
        /// The file at fault.
        path: PathBuf,
        /// The checksum the registry records.
        expected: String,
        /// The checksum of the file on disk.
        actual: String,
    },

    /// A pickle checkpoint, which candor refuses to load (it can run arbitrary code).
    #[error("refusing pickle checkpoint {}: pickle files can execute code when loaded; convert it to safetensors", path.display())]
    PickleRefused {
        /// The file at fault.
        path: PathBuf,
    },

    /// Fetching a model from one of its sources failed.
    #[error("fetching model `{model}` from {source_desc}: {reason}")]
    Fetch {
        /// The model's registry name.
        model: String,
        /// The source that was tried.
        source_desc: String,
        /// What went wrong.
        reason: String,
    },

    /// A model's architecture or role is not supported by this build.
    #[error("model `{model}`: {reason}")]
    Unsupported {
        /// The model's registry name.
        model: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// A config.json that does not match the architecture.
    #[error("config {}: {reason}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A judge model or rubric that cannot be used as asked.
    #[error("judge: {0}")]
    Judge(String),

    /// The tokenizer failed to load or to encode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// A device that is not available in this build or on this machine.
    #[error("device `{spec}`: {reason}")]
    Device {
        /// The device as the user wrote it.
        spec: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// An error from the tensor library.
    #[error("tensor: {0}")]
    Candle(#[from] candle_core::Error),

    /// An input/output error on a named path.
    // The underlying error is in the message, not also a `source()`: the binary prints the chain
    // (`{:#}`), which would say it twice.
    #[error("{}: {error}", path.display())]
    Io {
        /// The path being read or written.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },

    /// The persistent score cache could not be opened, read or written.
    #[error("score cache {}: {reason}", path.display())]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// An output path that names the same file as an input (or another output) of the same command:
    /// writing it would destroy what the command reads.
    #[error(
        "refusing to write the {output_role} {}: it is the same file as the {other_role} {}; nothing was written (give the {output_role} another path)",
        output.display(),
        other.display()
    )]
    SameFile {
        /// What the output is ("results", "summary", "JUnit XML", ...).
        output_role: String,
        /// The output as given.
        output: PathBuf,
        /// What the other file is ("suite", "results", ...).
        other_role: String,
        /// The other file as given.
        other: PathBuf,
    },

    /// A result holding a number that is NaN or infinite (a model returned one): it cannot be
    /// written as JSON and read back.
    #[error(
        "case `{case}`: {field} is {value}, not a finite number{}; the model returned an invalid score, and the result is not written",
        text.as_deref().map(|t| format!(" (for `{}`)", t.chars().take(120).collect::<String>())).unwrap_or_default()
    )]
    NonFinite {
        /// The case id.
        case: String,
        /// The field: `metrics.support.claims[2].score`.
        field: String,
        /// The value.
        value: f64,
        /// The claim or sentence the number belongs to, when it has a text.
        text: Option<String>,
    },

    /// Invalid input data, with its location.
    #[error("{location}: {reason}")]
    Input {
        /// File and line (or field) of the bad input.
        location: String,
        /// What is wrong.
        reason: String,
    },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), error: source }
    }
}

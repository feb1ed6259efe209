//! Training checkpoints, swapped in whole: a checkpoint is a folder of several files (weights,
//! optimizer moments, state), and a crash at any instant leaves the previous complete checkpoint or
//! the new complete one, never a mix of the two.
//!
//! In a run's output folder `OUT`:
//! - `OUT/checkpoint` is the checkpoint;
//! - a new one is written whole into `OUT/checkpoint.tmp` (each file flushed to disk, then the
//!   folder), then swapped in: `checkpoint` is renamed `checkpoint.old`, `checkpoint.tmp` is renamed
//!   `checkpoint`, `OUT` is flushed, and `checkpoint.old` is removed.
//!
//! What a crash can leave, and what [`Checkpoints::find`] reads then:
//! - `checkpoint` and a partial `checkpoint.tmp` (crash while writing): `checkpoint`;
//! - `checkpoint.old` and a complete `checkpoint.tmp` (between the two renames): `checkpoint.old`,
//!   the previous checkpoint (a `checkpoint.tmp` is never read: nothing says it is complete);
//! - `checkpoint` and a complete or partly removed `checkpoint.old` (after the swap): `checkpoint`.
//!
//! [`Checkpoints::recover`] puts the folder back to its plain form (only `checkpoint`) before a run
//! reads or writes a checkpoint.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::{sync_dir, sync_file};

/// The checkpoint folder's name in a run's output folder.
pub const CHECKPOINT: &str = "checkpoint";
/// The previous checkpoint while a new one is swapped in.
pub const OLD: &str = "checkpoint.old";
/// A checkpoint being written.
pub const TMP: &str = "checkpoint.tmp";
/// The files of a complete checkpoint; `state.json` says where the run stands.
pub const FILES: [&str; 3] = ["model.safetensors", "optimizer.safetensors", "state.json"];

/// How far [`Checkpoints::save`] goes: all the way, or (in tests) up to a simulated crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// The new checkpoint is written and flushed in `checkpoint.tmp`.
    Written,
    /// The previous `checkpoint` is renamed `checkpoint.old`.
    OldSetAside,
    /// `checkpoint.tmp` is renamed `checkpoint` and the folder flushed.
    Swapped,
    /// `checkpoint.old` is removed.
    Done,
}

/// The checkpoints of one run's output folder.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    out: PathBuf,
}

impl Checkpoints {
    /// The checkpoints of the run whose output folder is `out`.
    pub fn new(out: &Path) -> Self {
        Self { out: out.to_path_buf() }
    }

    /// `OUT/checkpoint`, where the checkpoint lives.
    pub fn path(&self) -> PathBuf {
        self.out.join(CHECKPOINT)
    }

    /// The complete checkpoint to resume from, if there is one, without changing anything:
    /// `checkpoint` when it holds every file, otherwise `checkpoint.old` when it does (a crash between
    /// the two renames of a swap). A `checkpoint.tmp` is never read.
    pub fn find(&self) -> Option<PathBuf> {
        [CHECKPOINT, OLD].iter().map(|n| self.out.join(n)).find(|d| is_complete(d))
    }

    /// Brings the folder back to one checkpoint after a crash, and returns it (as [`Checkpoints::find`]
    /// would): removes a leftover `checkpoint.tmp`, renames `checkpoint.old` back to `checkpoint` when
    /// it is the only complete one, and removes it otherwise.
    pub fn recover(&self) -> Result<Option<PathBuf>> {
        let (ckpt, old, tmp) = (self.out.join(CHECKPOINT), self.out.join(OLD), self.out.join(TMP));
        remove_dir_if_present(&tmp)?;
        if old.exists() {
            if !is_complete(&ckpt) && is_complete(&old) {
                // The crash came between the renames: the previous checkpoint is the one to keep.
                remove_dir_if_present(&ckpt)?;
                std::fs::rename(&old, &ckpt).map_err(|e| Error::io(&old, e))?;
                sync_dir(&self.out)?;
            } else {
                remove_dir_if_present(&old)?;
            }
        }
        Ok(self.find())
    }

    /// Writes a new checkpoint and swaps it in: `write` fills the empty folder it is given with
    /// [`FILES`]; they are flushed to disk, and the folder replaces `checkpoint` (see the module's
    /// documentation). When `write` fails, the previous checkpoint stays as it was.
    pub fn save(&self, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        self.save_until(write, Stage::Done)
    }

    /// [`Checkpoints::save`], stopping after `stage` as a crash would.
    pub(crate) fn save_until(&self, write: impl FnOnce(&Path) -> Result<()>, stage: Stage) -> Result<()> {
        let (ckpt, old, tmp) = (self.out.join(CHECKPOINT), self.out.join(OLD), self.out.join(TMP));
        std::fs::create_dir_all(&self.out).map_err(|e| Error::io(&self.out, e))?;
        self.recover()?;
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        if let Err(e) = write(&tmp) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        for f in FILES {
            let p = tmp.join(f);
            if !p.is_file() {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(Error::Input { location: tmp.display().to_string(), reason: format!("the checkpoint lacks {f}; the previous checkpoint is kept") });
            }
            sync_file(&p)?;
        }
        sync_dir(&tmp)?;
        if stage == Stage::Written {
            return Ok(());
        }
        if ckpt.exists() {
            std::fs::rename(&ckpt, &old).map_err(|e| Error::io(&ckpt, e))?;
        }
        if stage == Stage::OldSetAside {
            return Ok(());
        }
        std::fs::rename(&tmp, &ckpt).map_err(|e| Error::io(&tmp, e))?;
        sync_dir(&self.out)?;
        if stage == Stage::Swapped {
            return Ok(());
        }
        remove_dir_if_present(&old)
    }
}

/// Whether `dir` is a folder holding every file of a checkpoint.
fn is_complete(dir: &Path) -> bool {
    FILES.iter().all(|f| dir.join(f).is_file())
}

fn remove_dir_if_present(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint at `step`: every file, each saying its step.
    fn write_step(step: u64) -> impl FnOnce(&Path) -> Result<()> {
        move |dir: &Path| {
            for f in FILES {
                std::fs::write(dir.join(f), format!("{f} of step {step}")).map_err(|e| Error::io(dir, e))?;
            }
            Ok(())
        }
    }

    /// The step of the checkpoint in `dir`, checking that all its files are of that step.
    fn step_of(dir: &Path) -> u64 {
        let steps: Vec<u64> = FILES
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(f).display()));
                text.rsplit(' ').next().unwrap().parse().unwrap()
            })
            .collect();
        assert!(steps.iter().all(|s| *s == steps[0]), "a mixed checkpoint in {}: {steps:?}", dir.display());
        steps[0]
    }

    fn entries(out: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_crash_at_every_stage_of_a_swap_leaves_one_complete_checkpoint() {
        for stage in [Stage::Written, Stage::OldSetAside, Stage::Swapped, Stage::Done] {
            let dir = tempfile::tempdir().unwrap();
            let c = Checkpoints::new(dir.path());
            c.save(write_step(1)).unwrap();
            assert_eq!(entries(dir.path()), vec![CHECKPOINT]);
            c.save_until(write_step(2), stage).unwrap();
            // Before the new one is in place the previous one is read, afterwards the new one; never
            // the temporary folder, never a mix.
            let want = if stage >= Stage::Swapped { 2 } else { 1 };
            let found = c.find().unwrap_or_else(|| panic!("{stage:?}: no checkpoint found in {:?}", entries(dir.path())));
            assert_eq!(step_of(&found), want, "{stage:?}: {}", found.display());
            assert_ne!(found, dir.path().join(TMP), "{stage:?}");
            // Recovery leaves the plain form, with the same checkpoint.
            let recovered = c.recover().unwrap().unwrap();
            assert_eq!(recovered, c.path(), "{stage:?}");
            assert_eq!(step_of(&recovered), want, "{stage:?}");
            assert_eq!(entries(dir.path()), vec![CHECKPOINT], "{stage:?}");
            // And the next save works from there.
            c.save(write_step(3)).unwrap();
            assert_eq!(step_of(&c.find().unwrap()), 3, "{stage:?}");
            assert_eq!(entries(dir.path()), vec![CHECKPOINT], "{stage:?}");
        }
    }

    #[test]
    fn a_crash_during_the_first_save_leaves_no_checkpoint_or_the_new_one() {
        for stage in [Stage::Written, Stage::OldSetAside, Stage::Swapped] {
            let dir = tempfile::tempdir().unwrap();
            let c = Checkpoints::new(dir.path());
            c.save_until(write_step(1), stage).unwrap();
            match stage {
                Stage::Swapped => assert_eq!(step_of(&c.find().unwrap()), 1),
                _ => assert_eq!(c.find(), None, "{stage:?}: a checkpoint.tmp was taken for a checkpoint"),
            }
            c.recover().unwrap();
            assert!(!dir.path().join(TMP).exists() && !dir.path().join(OLD).exists(), "{stage:?}");
        }
    }

    #[test]
    fn partial_folders_left_by_a_crash_are_ignored_and_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::new(dir.path());
        c.save(write_step(4)).unwrap();
        // A crash while writing the next checkpoint: half of checkpoint.tmp.
        std::fs::create_dir(dir.path().join(TMP)).unwrap();
        std::fs::write(dir.path().join(TMP).join("model.safetensors"), "model.safetensors of step 5").unwrap();
        assert_eq!(step_of(&c.find().unwrap()), 4);
        // A crash while removing checkpoint.old: part of it is left beside the new checkpoint.
        std::fs::create_dir(dir.path().join(OLD)).unwrap();
        std::fs::write(dir.path().join(OLD).join("state.json"), "state.json of step 3").unwrap();
        assert_eq!(c.find().unwrap(), c.path());
        assert_eq!(step_of(&c.recover().unwrap().unwrap()), 4);
        assert_eq!(entries(dir.path()), vec![CHECKPOINT]);
        // A complete checkpoint.tmp (crash between the renames) beside checkpoint.old: the old one
        // wins, since nothing marks a temporary folder complete.
        std::fs::rename(c.path(), dir.path().join(OLD)).unwrap();
        std::fs::create_dir(dir.path().join(TMP)).unwrap();
        write_step(5)(&dir.path().join(TMP)).unwrap();
        assert_eq!(c.find().unwrap(), dir.path().join(OLD));
        assert_eq!(step_of(&c.recover().unwrap().unwrap()), 4);
        assert_eq!(entries(dir.path()), vec![CHECKPOINT]);
    }

    #[test]
    fn a_failed_or_incomplete_write_keeps_the_previous_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::new(dir.path());
        c.save(write_step(6)).unwrap();
        let err = c
            .save(|d: &Path| {
                std::fs::write(d.join("model.safetensors"), "model.safetensors of step 7").unwrap();
                Err(Error::Input { location: "test".into(), reason: "disk full".into() })
            })
            .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(step_of(&c.find().unwrap()), 6);
        assert_eq!(entries(dir.path()), vec![CHECKPOINT]);
        // A writer that forgets a file is refused, and the previous checkpoint kept.
        let err = c.save(|d: &Path| std::fs::write(d.join("state.json"), "state.json of step 7").map_err(|e| Error::io(d, e))).unwrap_err();
        assert!(err.to_string().contains("lacks model.safetensors"), "{err}");
        assert_eq!(step_of(&c.find().unwrap()), 6);
        assert_eq!(entries(dir.path()), vec![CHECKPOINT]);
    }
}

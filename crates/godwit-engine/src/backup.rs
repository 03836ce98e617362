//! Recoverable deletes and overwrites (`--backup-dir`). A run given a backup location keeps
//! what it would otherwise lose at the target in a folder of its own under that location, named
//! by the run (a run id starts with the date and time the run started): a file gone from the
//! source is moved there instead of being deleted, and a file about to be replaced is kept there
//! first (a hard link on a local target, a copy inside the store on S3 and Azure, a rename on
//! SFTP, put back when the new version then cannot be written). `godwit undo RUN_ID` moves them
//! back (see `undo.rs`).
//!
//! The backup location must be on the target's own store (the same bucket, container or server;
//! for a local target the same file system), so that keeping a file never sends its bytes
//! again, and outside the target, so that no listing of the target (a verification, a true-up
//! comparing with the target) ever meets a backup.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use godwit_spec::Location;
use serde::{Deserialize, Serialize};

use crate::error::{JobError, reason};
use crate::store::Remote;

/// In a run's folder: where that run kept what it deleted or replaced (a [`BackupPlace`]).
pub const BACKUP_FILE: &str = "backup.json";

/// What a run's folder records of its backups, for `undo`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupPlace {
    /// The backup location the run was given.
    pub backup_dir: String,
    /// The run's own folder under it.
    pub folder: String,
    /// The target the files were kept from.
    pub target: String,
}

/// Where a run keeps what it deletes or replaces at its target.
#[derive(Debug)]
pub struct Backup {
    /// The run's backup folder, as people read it.
    pub shown: String,
    place: Place,
}

#[derive(Debug)]
enum Place {
    Local {
        target: PathBuf,
        folder: PathBuf,
    },
    /// The store opened at its root (the bucket, the container, the server's `/`), so one
    /// operator addresses both the target and the backup folder.
    Remote {
        store: Remote,
        /// The target's prefix in the store: empty, or ending with `/`.
        target: String,
        /// The run's backup folder in the store, ending with `/`.
        folder: String,
    },
}

/// How a file goes into the backup folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// Kept before being replaced: the target keeps it until then.
    Keep,
    /// Moved, instead of being deleted.
    Take,
}

/// A file kept in the backup folder before being replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// Where it is, as people read it.
    pub shown: String,
    /// It was moved there (SFTP), so the target holds nothing at its place until the new
    /// version is written: [`Backup::put_back`] when that fails.
    pub moved: bool,
}

fn refuse(what: &str) -> JobError {
    JobError::config(&format!("--backup-dir {what}"))
}

/// `prefix` as a folder of a store: empty, or ending with one `/`, with no leading `/`.
fn folder_of(prefix: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

/// Whether one of the folders `a` and `b` (empty or ending with `/`) holds the other.
fn overlap(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

impl Backup {
    /// The backup location `backup_dir` for `target`, checked: on the target's store, outside
    /// the target, and for a local target on its file system (the folder is made there).
    /// Anything else is refused with 724 before the run starts. [`Backup::for_run`] then names
    /// the run's own folder under it.
    pub fn plan(target: &Location, backup_dir: &str) -> Result<Backup, JobError> {
        let backup = match Location::parse(backup_dir)? {
            Location::Local(p) => Location::Local(std::path::absolute(&p).unwrap_or(p)),
            other => other,
        };
        let other_store = || {
            refuse(&format!(
                "{backup}: not on the target's store ({target}); the backup folder must be where \
                 the target's files can be moved without sending them again: the same bucket, \
                 container or server, or for a local target the same file system"
            ))
        };
        let inside = || {
            refuse(&format!(
                "{backup}: overlaps the target ({target}); choose a folder outside the target, \
                 so that verifications and true-ups never take the backups for the target's files"
            ))
        };
        match (target, &backup) {
            (Location::Local(t), Location::Local(b)) => {
                let t = std::path::absolute(t).unwrap_or_else(|_| t.clone());
                if b.starts_with(&t) || t.starts_with(b) {
                    return Err(inside());
                }
                fs::create_dir_all(b).map_err(|e| {
                    refuse(&format!(
                        "{}: the folder cannot be made: {}",
                        b.display(),
                        reason(&e)
                    ))
                })?;
                if let (Some(td), Ok(bm)) = (device_of(&t), fs::metadata(b))
                    && td != bm.dev()
                {
                    return Err(other_store());
                }
                Ok(Backup {
                    shown: b.display().to_string(),
                    place: Place::Local {
                        target: t,
                        folder: b.clone(),
                    },
                })
            }
            (Location::Local(_), _) | (_, Location::Local(_)) => Err(other_store()),
            _ => {
                let (root, t, b) = match (target, &backup) {
                    (
                        Location::S3 { bucket, prefix },
                        Location::S3 {
                            bucket: b,
                            prefix: bp,
                        },
                    ) if bucket == b => (
                        Location::S3 {
                            bucket: bucket.clone(),
                            prefix: String::new(),
                        },
                        prefix,
                        bp,
                    ),
                    (
                        Location::Azure { container, prefix },
                        Location::Azure {
                            container: c,
                            prefix: bp,
                        },
                    ) if container == c => (
                        Location::Azure {
                            container: container.clone(),
                            prefix: String::new(),
                        },
                        prefix,
                        bp,
                    ),
                    (
                        Location::Sftp {
                            user,
                            host,
                            port,
                            path,
                        },
                        Location::Sftp {
                            user: bu,
                            host: bh,
                            port: bpo,
                            path: bp,
                        },
                    ) if user == bu && host == bh && port == bpo => (
                        Location::Sftp {
                            user: user.clone(),
                            host: host.clone(),
                            port: *port,
                            path: "/".into(),
                        },
                        path,
                        bp,
                    ),
                    (Location::Memory { prefix }, Location::Memory { prefix: bp }) => (
                        Location::Memory {
                            prefix: String::new(),
                        },
                        prefix,
                        bp,
                    ),
                    _ => return Err(other_store()),
                };
                let (t, b) = (folder_of(t), folder_of(b));
                if overlap(&t, &b) {
                    return Err(inside());
                }
                let store = crate::store::connect_with(
                    &root,
                    "target",
                    &crate::store::StoreEnv::process(),
                )?;
                Ok(Backup {
                    shown: backup.to_string().trim_end_matches('/').to_string(),
                    place: Place::Remote {
                        store,
                        target: t,
                        folder: b,
                    },
                })
            }
        }
    }

    /// The folder of run `run_id` under the backup location: what the run keeps goes there
    /// (made when the first file is kept).
    pub fn for_run(mut self, run_id: &str) -> Backup {
        self.shown = format!("{}/{run_id}", self.shown);
        match &mut self.place {
            Place::Local { folder, .. } => folder.push(run_id),
            Place::Remote { folder, .. } => *folder = format!("{folder}{run_id}/"),
        }
        self
    }

    /// What the run's folder records of this backup.
    pub fn place(&self, backup_dir: &str, target: &Location) -> BackupPlace {
        BackupPlace {
            backup_dir: backup_dir.to_string(),
            folder: self.shown.clone(),
            target: target.to_string(),
        }
    }

    /// Where the target's `rel` is kept, as people read it.
    pub fn shown_of(&self, rel: &[u8]) -> String {
        format!(
            "{}/{}",
            self.shown,
            crate::record::display_path(rel).trim_start_matches('/')
        )
    }

    /// Whether the store needs a runtime: a remote one does.
    pub fn remote(&self) -> bool {
        matches!(self.place, Place::Remote { .. })
    }

    /// Keeps the target's `rel` in the backup folder before it is replaced. None: the target
    /// holds nothing there, so nothing needs keeping. An error is the reason it could not be
    /// kept (the file must then not be replaced).
    pub fn keep(
        &self,
        rt: Option<&tokio::runtime::Runtime>,
        rel: &[u8],
    ) -> Result<Option<Kept>, String> {
        let moved = match &self.place {
            Place::Local { .. } => false,
            Place::Remote { store, .. } => !store.features().server_side_copy,
        };
        Ok(self.carry(rt, rel, How::Keep)?.then(|| Kept {
            shown: self.shown_of(rel),
            moved,
        }))
    }

    /// Moves a file [`Backup::keep`] moved away back to its place, when its new version could
    /// not be written: the target is then as it was.
    pub fn put_back(&self, rt: Option<&tokio::runtime::Runtime>, rel: &[u8]) {
        if let (
            Place::Remote {
                store,
                target,
                folder,
            },
            Some(rt),
            Ok(rel),
        ) = (&self.place, rt, utf8(rel))
        {
            let (from, to) = (format!("{folder}{rel}"), format!("{target}{rel}"));
            if let Err(e) = rt.block_on(store.op.rename(&from, &to)) {
                tracing::warn!(path = rel, "a kept file could not be put back: {e}");
            }
        }
    }

    /// Moves the target's `rel` into the backup folder instead of deleting it. None: the
    /// target held nothing there.
    pub fn take(
        &self,
        rt: Option<&tokio::runtime::Runtime>,
        rel: &[u8],
    ) -> Result<Option<String>, String> {
        Ok(self.carry(rt, rel, How::Take)?.then(|| self.shown_of(rel)))
    }

    /// Carries the target's `rel` into the backup folder: kept (a second name on a local
    /// target, a copy inside an object store; moved on SFTP, which has neither) or taken
    /// (moved). Ok(false): the target holds nothing there.
    fn carry(
        &self,
        rt: Option<&tokio::runtime::Runtime>,
        rel: &[u8],
        how: How,
    ) -> Result<bool, String> {
        match &self.place {
            Place::Local { target, folder } => {
                let from = crate::backend::inside_target(target, rel)?;
                let to = folder.join(std::ffi::OsStr::from_bytes(rel));
                // A second name for the same bytes: the replace that follows leaves them here.
                let op = |a: &Path, b: &Path| match how {
                    How::Keep => fs::hard_link(a, b),
                    How::Take => fs::rename(a, b),
                };
                match local(&from, &to, op) {
                    Ok(done) => Ok(done),
                    // Kept already by this run (a file is kept once).
                    Err(e) if how == How::Keep && e.kind() == io::ErrorKind::AlreadyExists => {
                        Ok(true)
                    }
                    Err(e) => Err(reason(&e)),
                }
            }
            Place::Remote {
                store,
                target,
                folder,
            } => {
                let rt = rt.ok_or("a remote store without a runtime (a bug in godwit)")?;
                let rel = utf8(rel)?;
                let (from, to) = (format!("{target}{rel}"), format!("{folder}{rel}"));
                let result = rt.block_on(async {
                    if how == How::Keep && store.features().server_side_copy {
                        store.op.copy(&from, &to).await.map(|_| ())
                    } else {
                        move_in(store, &from, &to).await
                    }
                });
                match result {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(store_reason(&e)),
                }
            }
        }
    }

    /// Moves the kept `rel` back to its place at the target, replacing what is there when
    /// `replace` (the file the run wrote over it), else only where the target holds nothing.
    pub fn restore(
        &self,
        rt: Option<&tokio::runtime::Runtime>,
        rel: &[u8],
        replace: bool,
    ) -> Result<(), String> {
        const TAKEN: &str = "the target holds a file at its place again, which is never \
                             overwritten";
        match &self.place {
            Place::Local { target, folder } => {
                let from = folder.join(std::ffi::OsStr::from_bytes(rel));
                let to = crate::backend::inside_target(target, rel)?;
                if let Err(e) = fs::symlink_metadata(&from) {
                    return Err(not_kept(&e));
                }
                make_parent(&to)?;
                if replace {
                    fs::rename(&from, &to).map_err(|e| reason(&e))
                } else {
                    // A link cannot replace a name: whatever came to be there is kept.
                    match fs::hard_link(&from, &to) {
                        Ok(()) => fs::remove_file(&from).map_err(|e| reason(&e)),
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(TAKEN.into()),
                        Err(e) => Err(reason(&e)),
                    }
                }
            }
            Place::Remote {
                store,
                target,
                folder,
            } => {
                let rt = rt.ok_or("a remote store without a runtime (a bug in godwit)")?;
                let rel = utf8(rel)?;
                let (from, to) = (format!("{folder}{rel}"), format!("{target}{rel}"));
                rt.block_on(async {
                    match store.op.stat(&from).await {
                        Ok(_) => {}
                        Err(e) if e.kind() == opendal::ErrorKind::NotFound => {
                            return Err("it is no longer in the backup folder (put back by an \
                                        earlier undo, or removed)"
                                .to_string());
                        }
                        Err(e) => return Err(store_reason(&e)),
                    }
                    if !replace {
                        match store.op.stat(&to).await {
                            Ok(_) => return Err(TAKEN.into()),
                            Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
                            Err(e) => return Err(store_reason(&e)),
                        }
                    }
                    move_in(store, &from, &to)
                        .await
                        .map_err(|e| store_reason(&e))
                })
            }
        }
    }

    /// Removes the run's backup folder where nothing is left in it (a local folder and the
    /// empty folders below it; object stores have no empty folders to leave).
    pub fn prune(&self) {
        if let Place::Local { folder, .. } = &self.place {
            prune_empty(folder);
        }
    }
}

/// Moves `from` to `to` within one store: a rename where the store has one, else a copy inside
/// the store and a delete.
async fn move_in(store: &Remote, from: &str, to: &str) -> opendal::Result<()> {
    if store.features().rename {
        store.op.rename(from, to).await
    } else {
        store.op.copy(from, to).await?;
        store.op.delete(from).await
    }
}

/// Removes `dir` and every folder below it that holds no file; true when `dir` is gone.
fn prune_empty(dir: &Path) -> bool {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                prune_empty(&e.path());
            }
        }
    }
    fs::remove_dir(dir).is_ok()
}

/// `op(from, to)` on a local file, making `to`'s folder first when it is missing. Ok(false):
/// there is no `from` (nothing is made then, so a run of new files leaves no empty folders in
/// the backup).
fn local(from: &Path, to: &Path, op: impl Fn(&Path, &Path) -> io::Result<()>) -> io::Result<bool> {
    match op(from, to) {
        Ok(()) => Ok(true),
        Err(e) if gone(&e) => {
            if fs::symlink_metadata(from).is_err() {
                return Ok(false);
            }
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent)?;
            }
            op(from, to).map(|()| true)
        }
        Err(e) => Err(e),
    }
}

fn not_kept(e: &io::Error) -> String {
    if gone(e) {
        "it is no longer in the backup folder (put back by an earlier undo, or removed)".into()
    } else {
        reason(e)
    }
}

fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn make_parent(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(p) => fs::create_dir_all(p).map_err(|e| reason(&e)),
        None => Ok(()),
    }
}

fn utf8(rel: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(rel)
        .map_err(|_| "the name is not UTF-8, which this target cannot address".to_string())
}

fn store_reason(e: &opendal::Error) -> String {
    crate::error::FileError::store(e, crate::error::Side::Target).reason
}

/// The device of `path`, or of the nearest folder above it that exists (a target not made
/// yet is made on its parent's file system).
fn device_of(path: &Path) -> Option<u64> {
    path.ancestors()
        .find_map(|p| fs::metadata(p).ok())
        .map(|m| m.dev())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_folder_inside_the_target_or_on_another_store_is_refused() {
        let s3 = |b: &str, p: &str| Location::S3 {
            bucket: b.into(),
            prefix: p.into(),
        };
        for (target, backup) in [
            (s3("b", "share"), "s3://b/share/old"),
            (s3("b", ""), "s3://b/backups"),
            (s3("b", "share/x"), "s3://b/share"),
            (s3("b", "share"), "s3://other/backups"),
            (s3("b", "share"), "/tmp/backups"),
            (s3("b", "share"), "az://b/backups"),
        ] {
            let e = Backup::plan(&target, backup).unwrap_err();
            assert_eq!(
                e.code,
                godwit_codes::Code::INCORRECT_MIGRATION_CONFIG,
                "{backup}"
            );
            assert!(e.message.contains("--backup-dir"), "{}", e.message);
        }
        let dir = tempfile::tempdir().unwrap();
        let t = Location::Local(dir.path().join("target"));
        let inside = dir.path().join("target/.old");
        let e = Backup::plan(&t, inside.to_str().unwrap()).unwrap_err();
        assert!(e.message.contains("overlaps the target"), "{}", e.message);
        assert!(!inside.exists(), "a refused backup folder is not made");
        let ok = Backup::plan(&t, dir.path().join("old").to_str().unwrap()).unwrap();
        assert!(dir.path().join("old").is_dir());
        let ok = ok.for_run("r1");
        assert_eq!(ok.shown, dir.path().join("old/r1").display().to_string());
    }

    #[test]
    fn kept_and_taken_files_go_back_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        fs::create_dir_all(target.join("a")).unwrap();
        fs::write(target.join("a/replaced"), b"old").unwrap();
        fs::write(target.join("a/deleted"), b"gone").unwrap();
        let t = Location::Local(target.clone());
        let b = Backup::plan(&t, dir.path().join("bk").to_str().unwrap())
            .unwrap()
            .for_run("r1");
        let kept = b.keep(None, b"a/replaced").unwrap().unwrap();
        assert!(!kept.moved);
        assert_eq!(b.keep(None, b"a/never-there").unwrap(), None);
        // The run replaces the file: the kept name holds the old bytes.
        fs::write(target.join("a/new"), b"new").unwrap();
        fs::rename(target.join("a/new"), target.join("a/replaced")).unwrap();
        assert_eq!(
            fs::read(dir.path().join("bk/r1/a/replaced")).unwrap(),
            b"old"
        );
        assert!(b.take(None, b"a/deleted").unwrap().is_some());
        assert!(!target.join("a/deleted").exists());
        assert_eq!(b.take(None, b"a/never-there").unwrap(), None);

        // Something new at a deleted file's place is never overwritten.
        fs::write(target.join("a/deleted"), b"someone else's").unwrap();
        let e = b.restore(None, b"a/deleted", false).unwrap_err();
        assert!(e.contains("never overwritten"), "{e}");
        fs::remove_file(target.join("a/deleted")).unwrap();
        b.restore(None, b"a/deleted", false).unwrap();
        b.restore(None, b"a/replaced", true).unwrap();
        assert_eq!(fs::read(target.join("a/deleted")).unwrap(), b"gone");
        assert_eq!(fs::read(target.join("a/replaced")).unwrap(), b"old");
        let again = b.restore(None, b"a/deleted", false).unwrap_err();
        assert!(again.contains("no longer in the backup folder"), "{again}");
        b.prune();
        assert!(!dir.path().join("bk/r1").exists());
    }
}

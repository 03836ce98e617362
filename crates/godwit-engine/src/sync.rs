//! True-up: what `sync` adds to `copy`. Files deleted at the source are found by comparing each
//! folder's listing with the index as the walk lists it (no global set of seen paths, so memory
//! stays flat); the list is written to the run's folder, guarded, and carried out only with
//! `--delete`.
//!
//! A folder that cannot be read is never listed, so nothing below it can ever be taken for
//! deleted: that holds by construction, and the 9090 guard pauses the run besides so a person
//! looks at why part of the source is unreadable before anything is removed.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use godwit_codes::Code;

use crate::backend::{Side, prune_folders};
use crate::backup::Backup;
use crate::error::{JobError, reason};
use crate::index::Index;
use crate::record::{CopyLog, CopyRecord, decode_line, display_path};
use crate::state::Run;

pub use godwit_spec::options::delete_guard as guard;

/// How the deletes went.
#[derive(Debug, Default, Clone, Copy)]
pub struct DeleteOutcome {
    /// Deleted, or with a backup folder moved there.
    /// (Counted in a summary by [`DeleteOutcome::count_into`].)
    pub deleted: u64,
    /// Of those, moved to the backup folder (AZSM2046).
    pub backed_up: u64,
    /// On the list, but the source holds the path again: not deleted.
    pub kept: u64,
    pub failed: u64,
    /// Of those, not moved into the backup folder (AZSM2080); the rest are AZSM2072.
    pub no_backup: u64,
    pub stopped: bool,
}

impl DeleteOutcome {
    /// Adds the files of each code to `summary`'s counts.
    pub fn count_into(&self, summary: &mut crate::record::Summary) {
        summary.count(Code::AZSM2043, self.deleted - self.backed_up);
        summary.count(Code::AZSM2046, self.backed_up);
        summary.count(Code::AZSM2072, self.failed - self.no_backup);
        summary.count(Code::AZSM2080, self.no_backup);
    }
}

/// What the source holds at a path now.
enum AtSource {
    Gone,
    Present,
    /// It could not be told (an error other than "not found"): the file is kept.
    Unknown,
}

fn at_source(src: &Side, rel: &[u8], rt: Option<&tokio::runtime::Runtime>) -> AtSource {
    match src {
        Side::Local(root) => {
            match fs::symlink_metadata(root.join(std::ffi::OsStr::from_bytes(rel))) {
                Ok(_) => AtSource::Present,
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.kind() == io::ErrorKind::NotADirectory =>
                {
                    AtSource::Gone
                }
                Err(_) => AtSource::Unknown,
            }
        }
        Side::Remote(r) => {
            let (Some(rt), Ok(rel)) = (rt, std::str::from_utf8(rel)) else {
                return AtSource::Unknown;
            };
            match rt.block_on(r.op.stat(rel)) {
                Ok(_) => AtSource::Present,
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => AtSource::Gone,
                Err(_) => AtSource::Unknown,
            }
        }
    }
}

/// Deletes at the target the files of the list at `list` (written by a run of this migration),
/// each only if the source still does not hold it, recording each in the copy log (AZSM2043,
/// or AZSM2072 when the target refuses) and removing it from the index. `from_listing`: the
/// list came from a listing of the target (`--compare target`), so a file need not be in the
/// index. With a `backup`, each file is moved into it instead (AZSM2046).
#[allow(clippy::too_many_arguments)]
pub fn apply_deletes(
    src: &Side,
    dst: &Side,
    backup: Option<&Backup>,
    index: &Index,
    list: &Path,
    from_listing: bool,
    run: &Run,
    log: &mut CopyLog,
    stop: &AtomicBool,
) -> Result<DeleteOutcome, JobError> {
    let mut outcome = DeleteOutcome::default();
    let file = match File::open(list) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(outcome),
        Err(e) => {
            let path = list.display().to_string();
            return Err(JobError::new(
                Code::SYNC_DIFF_CALCULATE_ERROR,
                &[("reason", &format!("{path}: {}", reason(&e)))],
            ));
        }
    };
    let rt = Side::runtime_for(src, dst, false, &run.id)?;
    let mut removed: Vec<Vec<u8>> = Vec::new();
    for line in BufReader::new(file).lines() {
        if stop.load(Ordering::Relaxed) {
            outcome.stopped = true;
            break;
        }
        let line = line.map_err(|e| {
            JobError::new(
                Code::SYNC_DIFF_CALCULATE_ERROR,
                &[("reason", &format!("{}: {}", list.display(), reason(&e)))],
            )
        })?;
        let Some(rel) = decode_line(&line) else {
            continue;
        };
        match at_source(src, &rel, rt.as_ref()) {
            AtSource::Gone => {}
            AtSource::Present | AtSource::Unknown => {
                outcome.kept += 1;
                continue;
            }
        }
        // Only what godwit wrote, as it wrote it, is deleted.
        let Some(written) = index.get(&rel)? else {
            if from_listing {
                // Listed at the target, never written there by this migration.
                let why = "godwit has no record of writing it there, so it is kept";
                refuse(&rel, why, (run, &mut *log), &mut outcome)?;
            }
            // Otherwise already deleted by an earlier confirmation.
            continue;
        };
        if delete_one(
            (src, dst, backup),
            index,
            (&rel, &written),
            rt.as_ref(),
            (run, &mut *log),
            &mut outcome,
        )? {
            removed.push(rel);
            if removed.len() >= 1024 {
                index.remove_batch(&removed)?;
                removed.clear();
            }
        }
    }
    index.remove_batch(&removed)?;
    Ok(outcome)
}

/// A file the true-up will not delete at the target (AZSM2072, with why): it stays there.
fn refuse(
    rel: &[u8],
    why: &str,
    (run, log): (&Run, &mut CopyLog),
    outcome: &mut DeleteOutcome,
) -> Result<(), JobError> {
    outcome.failed += 1;
    log.write(
        run,
        &CopyRecord::new(rel, 0, Code::AZSM2072, &[("reason", why)]),
    )
}

/// Deletes `rel` at the target (under its sanitized name, if it got one) and records it
/// (AZSM2043, or AZSM2072 with the reason); true when it is gone, so the index forgets it.
/// The target must still hold the file as godwit wrote it (`written`: its size and time); one
/// changed there since is kept, and so is anything behind a link at the target.
fn delete_one(
    (src, dst, backup): (&Side, &Side, Option<&Backup>),
    index: &Index,
    (rel, written): (&[u8], &crate::index::IndexEntry),
    rt: Option<&tokio::runtime::Runtime>,
    (run, log): (&Run, &mut CopyLog),
    outcome: &mut DeleteOutcome,
) -> Result<bool, JobError> {
    use crate::transfer::AtTarget;
    let sanitized = index.target_name(rel)?;
    let target = sanitized.clone().unwrap_or_else(|| rel.to_vec());
    let result = match crate::transfer::holds(dst, rt, &target, (written.size, written.mtime_ns)) {
        AtTarget::Same => delete_at_target(dst, src, backup, (rel, &target), rt),
        // Gone already: what the true-up wanted.
        AtTarget::Missing => Ok(None),
        AtTarget::Differs => Err(NotDeleted::Kept(match dst {
            Side::Local(root) => match crate::backend::inside_target(root, &target) {
                Err(link) => format!("{link}, so it is kept"),
                Ok(_) => "it was changed at the target since godwit wrote it, so it is kept".into(),
            },
            Side::Remote(_) => {
                "it was changed at the target since godwit wrote it, so it is kept".into()
            }
        })),
        AtTarget::Unknown => Err(NotDeleted::Kept(
            "it could not be checked at the target, so it is kept".into(),
        )),
    };
    let mut record = match &result {
        Ok(Some(kept)) => {
            outcome.deleted += 1;
            outcome.backed_up += 1;
            let mut r = CopyRecord::new(rel, 0, Code::AZSM2046, &[("backup", kept)]);
            r.backup = Some(kept.clone());
            r
        }
        Ok(None) => {
            outcome.deleted += 1;
            CopyRecord::new(rel, 0, Code::AZSM2043, &[])
        }
        Err(NotDeleted::Kept(why)) => {
            outcome.failed += 1;
            CopyRecord::new(rel, 0, Code::AZSM2072, &[("reason", why)])
        }
        Err(NotDeleted::NoBackup { backup, why }) => {
            outcome.failed += 1;
            outcome.no_backup += 1;
            CopyRecord::new(
                rel,
                0,
                Code::AZSM2080,
                &[("backup", backup), ("reason", why)],
            )
        }
    };
    if sanitized.is_some() {
        record.target_path = Some(display_path(&target));
    }
    log.write(run, &record)?;
    if result.is_ok() && sanitized.is_some() {
        index.forget_target_name(rel)?;
    }
    Ok(result.is_ok())
}

/// Why a listed file is still at the target.
enum NotDeleted {
    /// AZSM2072: changed there, behind a link, or the target refused.
    Kept(String),
    /// AZSM2080: it could not be moved into the backup folder.
    NoBackup { backup: String, why: String },
}

/// Deletes the file godwit wrote for `rel` at `target` (its name there), or with a `backup`
/// moves it there: Some(where) when it was kept.
fn delete_at_target(
    dst: &Side,
    src: &Side,
    backup: Option<&Backup>,
    (rel, target): (&[u8], &[u8]),
    rt: Option<&tokio::runtime::Runtime>,
) -> Result<Option<String>, NotDeleted> {
    if let Some(b) = backup {
        let kept = b.take(rt, target).map_err(|why| NotDeleted::NoBackup {
            backup: b.shown_of(target),
            why,
        })?;
        if let Side::Local(root) = dst {
            prune_folders(root, src, rel, target);
        }
        return Ok(kept);
    }
    delete_plain(dst, src, (rel, target), rt)
        .map(|()| None)
        .map_err(NotDeleted::Kept)
}

fn delete_plain(
    dst: &Side,
    src: &Side,
    (rel, target): (&[u8], &[u8]),
    rt: Option<&tokio::runtime::Runtime>,
) -> Result<(), String> {
    match dst {
        Side::Local(root) => {
            let path = crate::backend::inside_target(root, target)?;
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(reason(&e)),
            }
            prune_folders(root, src, rel, target);
            Ok(())
        }
        Side::Remote(r) => {
            let target = std::str::from_utf8(target)
                .map_err(|_| "the name is not UTF-8, which this target cannot address")?;
            let rt = rt.ok_or("a remote store without a runtime (a bug in godwit)")?;
            rt.block_on(r.op.delete(target)).map_err(|e| {
                let f = crate::error::FileError::store(&e, crate::error::Side::Target);
                f.reason
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_guard_has_its_code() {
        assert!(guard(5, 5, 0).is_none());
        assert!(
            guard(0, 5, 3).is_none(),
            "nothing to delete: nothing to pause"
        );
        assert_eq!(
            guard(6, 5, 0).unwrap().code,
            Code::FILE_SYNCHRONISE_REVIEW_TRUE_UP_ERROR
        );
        assert_eq!(
            guard(1, 5, 2).unwrap().code,
            Code::INACCESSIBLE_PATH_TRUE_UP_ERROR
        );
        assert_eq!(
            guard(9, 5, 2).unwrap().code,
            Code::SYNC_DELETES_TRUE_UP_ERROR
        );
    }
}

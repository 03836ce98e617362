//! Permissions carried with the data (`copy` and `sync --metadata`): a file's owner, group,
//! mode, ACLs, extended attributes and times, through the owner map, set at the target as it
//! is written, as `godwit permissions` sets them (see `perms.rs`).
//!
//! The index keeps a fingerprint of what was set on each path, so a true-up finds a file whose
//! permissions did not change without asking the target, and carries a change of permissions
//! alone (AZSM2048) without sending the data again. Folders are done after their files, so
//! that their times are the source's at the end of the run.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use godwit_codes::Code;

use crate::ctx::{CopyOptions, CopyOutcome, Ctx, Done};
use crate::error::{JobError, reason};
use crate::index::Index;
use crate::perms::{Meta, OwnerMap, PermsTarget, What};
use crate::record::{CopyLog, CopyRecord, PathList, decode_line};
use crate::state::Run;

/// What `--metadata` carries, and how owners and groups are translated.
#[derive(Debug, Clone, Default)]
pub struct MetadataOptions {
    pub what: What,
    pub map: OwnerMap,
}

/// Where the permissions of a copy go: the target, read from the local source.
#[derive(Debug)]
pub(crate) struct Carrier<'a> {
    pub(crate) target: PermsTarget<'a>,
    pub(crate) src: &'a Path,
    pub(crate) options: &'a MetadataOptions,
    /// What the target cannot hold, with how many files had it, for the summary.
    pub(crate) not_carried: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

/// One path's permissions, translated and ready to set.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    pub(crate) want: Meta,
    /// What of them this target carries.
    pub(crate) what: What,
    /// What the index keeps once they are set.
    pub(crate) print: u64,
}

/// Why a path's permissions cannot be set: the code of its record and the reason.
#[derive(Debug, Clone)]
pub(crate) struct Refused {
    pub(crate) code: Code,
    pub(crate) reason: String,
}

/// The run's list of the folders it met, whose permissions are set once their files are in.
pub(crate) const FOLDERS_FILE: &str = "metadata-folders.txt";

impl Carrier<'_> {
    /// What `rel` at the source carries to this target, translated.
    pub(crate) fn wanted(&self, rel: &[u8]) -> Result<Wanted, Refused> {
        let meta =
            crate::perms::extract(&self.src.join(OsStr::from_bytes(rel))).map_err(|e| Refused {
                code: Code::AZSM2063,
                reason: format!("its permissions could not be read: {}", reason(&e)),
            })?;
        let cannot = self.target.cannot(&meta, self.options.what);
        if !cannot.is_empty() {
            let mut tally = self
                .not_carried
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for c in cannot {
                *tally.entry(c).or_default() += 1;
            }
        }
        let what = self.target.carries(self.options.what, meta.symlink);
        let want =
            crate::perms::translate(&meta, &self.options.map, what).map_err(|why| Refused {
                code: Code::PERMISSION_TRANSLATION_ERROR,
                reason: why,
            })?;
        Ok(Wanted {
            print: crate::perms::fingerprint(&want, what),
            want,
            what,
        })
    }

    /// The user metadata an object is uploaded with, so that a copy to S3 or Azure Blob
    /// carries permissions with no request of its own; None for other targets.
    pub(crate) fn upload_metadata(&self, w: &Wanted) -> Option<Vec<(String, String)>> {
        matches!(self.target, PermsTarget::Object { .. })
            .then(|| crate::perms::object_metadata(&w.want, w.what))
    }

    /// Sets `w` on `rel` at the target, after its data was written (an object store had them
    /// with the upload).
    pub(crate) fn after_write(&self, rel: &[u8], w: &Wanted) -> Result<(), Refused> {
        if matches!(self.target, PermsTarget::Object { .. }) {
            return Ok(());
        }
        self.set(rel, w)
    }

    fn set(&self, rel: &[u8], w: &Wanted) -> Result<(), Refused> {
        self.target
            .set(rel, &w.want, w.what)
            .map_err(|why| Refused {
                code: Code::PERMISSION_APPLY_FAILURE,
                reason: why,
            })
    }
}

/// The record of `done` said again with `code` (the file's size, target name, attempts,
/// checksum and backup kept).
fn recode(done: &mut Done, code: Code, params: &[(&str, &str)]) {
    let old = &done.record;
    let mut record = CopyRecord::new(&done.rel, old.size, code, params);
    record.target_path = old.target_path.clone();
    record.attempts = old.attempts;
    record.checksum = old.checksum.clone();
    record.backup = old.backup.clone();
    record.operation = old.operation;
    done.record = record;
}

/// A refusal as the record of `done`.
fn refuse(done: &mut Done, r: &Refused) {
    recode(done, r.code, &[("reason", &r.reason)]);
    done.perms = None;
}

/// A file written by this run at `target` (`done` is its success): its permissions set, and
/// the index told; or its record says why they are not (its data stays, and the next run
/// tries again).
pub(crate) fn written(
    c: &Carrier<'_>,
    target: &[u8],
    wanted: &Result<Wanted, Refused>,
    mut done: Done,
) -> Done {
    let result = wanted
        .as_ref()
        .map_err(Refused::clone)
        .and_then(|w| c.after_write(target, w).map(|()| w.print));
    match result {
        Ok(print) => done.perms = Some(print),
        Err(mut r) => {
            r.reason
                .push_str("; its data was copied, and the next run sets its permissions");
            refuse(&mut done, &r);
        }
    }
    done
}

/// A file whose data the target holds already (`done`: AZSM2041, AZSM2042, or AZSM0000 for
/// one an interrupted run wrote): its permissions are set when they differ from what the index
/// says was set, and a file that changed in nothing else is then AZSM2048. An unchanged file
/// costs no request.
pub(crate) fn unchanged(ctx: &Ctx<'_>, c: &Carrier<'_>, target: &[u8], mut done: Done) -> Done {
    let w = match c.wanted(&done.rel) {
        Ok(w) => w,
        Err(r) => {
            refuse(&mut done, &r);
            return done;
        }
    };
    if ctx.index.perms_reusing(&done.rel).ok().flatten() == Some(w.print) {
        return done;
    }
    let only_permissions = done.record.code != Code::AZSM0000;
    if ctx.options.dry_run {
        if only_permissions {
            recode(&mut done, Code::AZSM2048, &[]);
        }
        return done;
    }
    match c.set(target, &w) {
        Ok(()) => {
            if only_permissions {
                recode(&mut done, Code::AZSM2048, &[]);
            }
            done.perms = Some(w.print);
        }
        Err(r) => refuse(&mut done, &r),
    }
    done
}

/// After the files: the permissions of every folder the run met (the root too), set where
/// they differ from what the index says was set. Each folder set is recorded as AZSM2048;
/// one refused as 7020 or 7030. An object store has no folders: nothing to do there (and the
/// walk lists none).
pub(crate) fn folders(
    c: &Carrier<'_>,
    index: &Index,
    run: &Run,
    log: &mut CopyLog,
    options: &CopyOptions,
    outcome: &mut CopyOutcome,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<(), JobError> {
    let list = run.dir.join(FOLDERS_FILE);
    if c.target.no_folders() {
        return Ok(());
    }
    let mut paths: Box<dyn Iterator<Item = Vec<u8>>> = Box::new(std::iter::once(Vec::new()));
    if let Ok(f) = std::fs::File::open(&list) {
        let lines = BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| decode_line(&l));
        paths = Box::new(paths.chain(lines));
    }
    // A folder renamed at the target (`--sanitize on-the-fly`) is found by its name there.
    let at = |rel: &[u8]| {
        index
            .target_name(rel)
            .ok()
            .flatten()
            .unwrap_or_else(|| rel.to_vec())
    };
    let mut prints = Vec::new();
    for rel in paths {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let record = match c.wanted(&rel) {
            Err(r) => Some(CopyRecord::new(&rel, 0, r.code, &[("reason", &r.reason)])),
            // This thread outlives the run: a fresh read, not the transfer threads' reused one.
            Ok(w) if index.perms_of(&rel).ok().flatten() == Some(w.print) => None,
            Ok(w) => {
                let there = at(&rel);
                if c.target.now(&there).is_err() {
                    // Not at the target (nothing in it was copied): nothing to set.
                    None
                } else if options.dry_run {
                    Some(CopyRecord::new(&rel, 0, Code::AZSM2048, &[]))
                } else {
                    match c.set(&there, &w) {
                        Ok(()) => {
                            prints.push((rel.clone(), Some(w.print)));
                            Some(CopyRecord::new(&rel, 0, Code::AZSM2048, &[]))
                        }
                        Err(r) => Some(CopyRecord::new(&rel, 0, r.code, &[("reason", &r.reason)])),
                    }
                }
            }
        };
        if let Some(record) = record {
            *outcome.counts.entry(record.code).or_default() += 1;
            log.write(run, &record)?;
        }
        if prints.len() >= 4096 {
            index.set_perms_batch(&std::mem::take(&mut prints))?;
        }
    }
    index.set_perms_batch(&prints)?;
    let _ = std::fs::remove_file(&list);
    Ok(())
}

/// The list of folders a run with `--metadata` writes as its walk meets them.
pub(crate) fn folder_list(run: &Run) -> PathList {
    PathList::new(&run.dir, FOLDERS_FILE)
}

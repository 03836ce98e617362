//! `godwit undo RUN_ID`: what a run with a backup folder deleted or replaced at the target,
//! moved back from that folder, file by file, from the run's own copy log. A file is put back
//! only where the target still holds what the run left there (the file it wrote, or nothing
//! where it deleted one): anything changed at the target since is kept, and said so
//! (AZSM2079). The index learns each file put back as it is at the target again, so the next
//! true-up compares the source with it.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use godwit_codes::Code;

use crate::backend::Side;
use crate::backup::Backup;
use crate::error::{JobError, reason};
use crate::index::{Index, IndexEntry};
use crate::record::{CopyLog, CopyRecord, display_path};
use crate::state::Run;
use crate::store::MTIME_KEY;
use crate::transfer::AtTarget;

/// How an undo went.
#[derive(Debug, Default, Clone, Copy)]
pub struct UndoOutcome {
    pub restored: u64,
    pub failed: u64,
    pub stopped: bool,
}

/// One file the run kept: its source path, its name at the target, and whether the run
/// deleted it (else it replaced it).
struct KeptFile {
    rel: Vec<u8>,
    target: Vec<u8>,
    deleted: bool,
    backup: String,
}

fn kept_file(line: &str) -> Option<KeptFile> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let backup = v.get("backup")?.as_str()?.to_string();
    let rel = match v.get("path_hex").and_then(|h| h.as_str()) {
        Some(hex) => (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?,
        None => v.get("path")?.as_str()?.as_bytes().to_vec(),
    };
    let target = match v.get("target_path").and_then(|t| t.as_str()) {
        Some(t) => t.as_bytes().to_vec(),
        None => rel.clone(),
    };
    let deleted = v.get("code")?.as_str()? == Code::AZSM2046.id();
    Some(KeptFile {
        rel,
        target,
        deleted,
        backup,
    })
}

/// Puts back what the run in `undone` kept in `backup`, recording each file in this run's copy
/// log (AZSM2047, or AZSM2079 with the reason) and in the index.
#[allow(clippy::too_many_arguments)]
pub fn undo(
    undone: &Path,
    backup: &Backup,
    dst: &Side,
    index: &Index,
    rt: Option<&tokio::runtime::Runtime>,
    run: &Run,
    log: &mut CopyLog,
    stop: &AtomicBool,
) -> Result<UndoOutcome, JobError> {
    let list = undone.join("copylog.jsonl");
    let unreadable = |e: &std::io::Error| {
        JobError::new(
            Code::SYNC_DIFF_CALCULATE_ERROR,
            &[("reason", &format!("{}: {}", list.display(), reason(e)))],
        )
    };
    let file = File::open(&list).map_err(|e| unreadable(&e))?;
    let mut outcome = UndoOutcome::default();
    let mut learned = Vec::new();
    for line in BufReader::new(file).lines() {
        if stop.load(Ordering::Relaxed) {
            outcome.stopped = true;
            break;
        }
        let line = line.map_err(|e| unreadable(&e))?;
        let Some(kept) = kept_file(&line) else {
            continue;
        };
        let result = put_back(&kept, backup, dst, index, rt);
        let mut record = match &result {
            Ok(_) => {
                outcome.restored += 1;
                CopyRecord::new(&kept.rel, 0, Code::AZSM2047, &[("backup", &kept.backup)])
            }
            Err(why) => {
                outcome.failed += 1;
                CopyRecord::new(
                    &kept.rel,
                    0,
                    Code::AZSM2079,
                    &[("backup", &kept.backup), ("reason", why)],
                )
            }
        };
        record.backup = Some(kept.backup.clone());
        if kept.target != kept.rel {
            record.target_path = Some(display_path(&kept.target));
        }
        if let Ok(Some(entry)) = result {
            record.size = entry.size;
            learned.push((kept.rel, entry));
        }
        log.write(run, &record)?;
        if learned.len() >= 1024 {
            index.insert_batch(&learned)?;
            learned.clear();
        }
    }
    index.insert_batch(&learned)?;
    backup.prune();
    Ok(outcome)
}

/// Moves one kept file back; the index entry it gets (None: its size and time could not be
/// read back, so the index does not hold it and the next true-up compares it anew).
fn put_back(
    kept: &KeptFile,
    backup: &Backup,
    dst: &Side,
    index: &Index,
    rt: Option<&tokio::runtime::Runtime>,
) -> Result<Option<IndexEntry>, String> {
    let replace = if kept.deleted {
        false
    } else {
        // The run replaced it: the target must still hold what the run wrote.
        let written = index.get(&kept.rel).map_err(|e| e.message)?;
        let at = written.map_or(AtTarget::Unknown, |w| {
            crate::transfer::holds(dst, rt, &kept.target, (w.size, w.mtime_ns))
        });
        match at {
            AtTarget::Same => true,
            AtTarget::Missing => false,
            AtTarget::Differs | AtTarget::Unknown => {
                return Err(
                    "the target's file is no longer the one that run wrote (changed \
                            or removed since), so it is kept as it is"
                        .into(),
                );
            }
        }
    };
    backup.restore(rt, &kept.target, replace)?;
    Ok(stat(dst, rt, &kept.target))
}

/// The size and modification time of the target's `rel`, as the index keeps a file's.
fn stat(dst: &Side, rt: Option<&tokio::runtime::Runtime>, rel: &[u8]) -> Option<IndexEntry> {
    let entry = |size, mtime_ns| IndexEntry {
        size,
        mtime_ns,
        hash: 0,
        ino: 0,
    };
    match dst {
        Side::Local(root) => {
            let m =
                std::fs::symlink_metadata(crate::backend::inside_target(root, rel).ok()?).ok()?;
            Some(entry(
                m.len(),
                m.mtime()
                    .saturating_mul(1_000_000_000)
                    .saturating_add(m.mtime_nsec()),
            ))
        }
        Side::Remote(r) => {
            let m = rt?
                .block_on(r.op.stat(std::str::from_utf8(rel).ok()?))
                .ok()?;
            let mtime = m
                .user_metadata()
                .and_then(|u| u.get(MTIME_KEY))
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or_else(|| crate::store::mtime_ns_of(&m));
            Some(entry(m.content_length(), mtime))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_record_is_read_back_exactly() {
        let k = kept_file(
            r#"{"path":"a/b\ufffd","path_hex":"612f62ff","target_path":"a/b_","size":1,"code":"AZSM2046","backup":"/bk/r/a/b_"}"#,
        )
        .unwrap();
        assert_eq!(k.rel, b"a/b\xff");
        assert_eq!(k.target, b"a/b_");
        assert!(k.deleted);
        let k = kept_file(r#"{"path":"x","size":1,"code":"AZSM0000","backup":"/bk/r/x"}"#).unwrap();
        assert!(!k.deleted);
        assert_eq!(k.target, b"x");
        assert!(kept_file(r#"{"path":"x","size":1,"code":"AZSM0000"}"#).is_none());
    }
}

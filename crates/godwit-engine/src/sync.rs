//! True-up: what `sync` adds to `copy`. Files deleted at the source are found by comparing each
//! folder's listing with the index as the walk lists it (no global set of seen paths, so memory
//! stays flat); the list is written to the run's folder, guarded, and carried out only with
//! `--delete`.
//!
//! A folder that cannot be read is never listed, so nothing below it can ever be taken for
//! deleted: that holds by construction, and the 9090 guard pauses the run besides so a person
//! looks at why part of the source is unreadable before anything is removed.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use godwit_codes::Code;

use crate::copy::Side;
use crate::error::{JobError, reason};
use crate::index::Index;
use crate::run::{CopyLog, CopyRecord, Run, display_path};

/// The run's list of files to delete at the target (one escaped path a line).
pub const DELETES_FILE: &str = "deletes.txt";
/// The run's list of source paths that could not be read.
pub const UNREADABLE_FILE: &str = "unreadable.txt";

/// What a true-up found and did about deletions, in `summary.json`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TrueUp {
    /// Files the index holds that the source no longer does (listed in `deletes.txt`).
    pub gone_from_source: u64,
    /// Source paths that could not be read (listed in `unreadable.txt`).
    pub unreadable: u64,
    /// Whether `--delete` was given.
    pub delete: bool,
    /// The most deletions allowed without review.
    pub max_delete: u64,
    pub deleted: u64,
    /// Listed, but back at the source by the time of deleting: kept.
    pub kept: u64,
    pub delete_failed: u64,
    /// The reviewed run whose list was carried out (`--confirm-deletes`, `godwit confirm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed_run: Option<String>,
    /// The list to review when the run paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
}

/// Where a run's sides are recorded, for `godwit confirm`.
pub const JOB_FILE: &str = "job.json";
/// Written into a run's folder when it paused for review.
pub const PAUSED_FILE: &str = "paused";
/// Written into a paused run's folder when its list was carried out.
pub const CONFIRMED_FILE: &str = "confirmed";

/// The sides of a run, as `job.json` keeps them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JobSides {
    pub source: String,
    pub target: String,
    /// The deletions came from a listing of the target (`--compare target`).
    pub compare_target: bool,
}

/// The folder of run `run_id` under any migration of `state_dir`, if it paused for review.
pub fn find_paused_run(state_dir: &Path, run_id: &str) -> Result<PathBuf, JobError> {
    let not_found = || {
        JobError::new(
            Code::DB_ERR_GET_DOC_NOT_FOUND,
            &[("kind", "true-up run paused for review"), ("id", run_id)],
        )
    };
    if run_id.is_empty() || run_id.contains(['/', '\\']) || run_id.starts_with('.') {
        return Err(not_found());
    }
    let migrations = fs::read_dir(state_dir.join("migrations")).map_err(|_| not_found())?;
    for m in migrations.flatten() {
        let dir = m.path().join("runs").join(run_id);
        if dir.join(PAUSED_FILE).exists() {
            return Ok(dir);
        }
    }
    Err(not_found())
}

/// Default `--max-delete`: this share of the files in the index...
const DEFAULT_SHARE: f64 = 0.05;
/// ...but never more than this many files without a review.
const DEFAULT_CAP: u64 = 1000;

/// `path` as one line of text: UTF-8 as it is, with `\` as `\\`, line breaks as `\n` and `\r`,
/// and bytes that are not UTF-8 as `\xNN`, so any name fits on one line and reads back exactly.
pub fn encode_line(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for chunk in path.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

/// The path `encode_line` wrote, or None for a line it cannot have written.
pub fn decode_line(line: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(line.len());
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1)? {
            b'\\' => out.push(b'\\'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'x' => {
                let hex = std::str::from_utf8(bytes.get(i + 2..i + 4)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            _ => return None,
        }
        i += 2;
    }
    Some(out)
}

/// Appends paths to one of the run's lists.
#[derive(Debug)]
pub struct PathList {
    out: Option<BufWriter<File>>,
    path: PathBuf,
    pub count: u64,
}

impl PathList {
    /// A list at `run_dir/name`, created when the first path is added.
    pub fn new(run_dir: &Path, name: &str) -> Self {
        PathList {
            out: None,
            path: run_dir.join(name),
            count: 0,
        }
    }

    pub fn add(&mut self, path: &[u8]) -> io::Result<()> {
        let out = match &mut self.out {
            Some(out) => out,
            None => self.out.insert(BufWriter::new(File::create(&self.path)?)),
        };
        self.count += 1;
        writeln!(out, "{}", encode_line(path))
    }

    pub fn finish(&mut self) -> io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

/// `--max-delete`: a number of files, or a share of the files in the index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxDelete {
    /// 5% of the files in the index, at most 1,000.
    Default,
    Count(u64),
    Percent(f64),
}

impl MaxDelete {
    /// `500` or `2%`; anything else is a 724 usage error naming what is expected.
    pub fn parse(text: &str) -> Result<Self, JobError> {
        let invalid = || {
            JobError::new(
                Code::INCORRECT_MIGRATION_CONFIG,
                &[(
                    "reason",
                    &format!(
                        "--max-delete {text}: give a number of files (500) or a share of the files in the index (2%)"
                    ),
                )],
            )
        };
        let t = text.trim();
        if let Some(p) = t.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| invalid())?;
            if !(0.0..=100.0).contains(&p) {
                return Err(invalid());
            }
            return Ok(MaxDelete::Percent(p));
        }
        t.parse().map(MaxDelete::Count).map_err(|_| invalid())
    }

    /// The most files a run may delete without a review, for an index of `files` files.
    pub fn limit(self, files: u64) -> u64 {
        match self {
            MaxDelete::Default => ((files as f64 * DEFAULT_SHARE) as u64).min(DEFAULT_CAP),
            MaxDelete::Count(n) => n,
            MaxDelete::Percent(p) => (files as f64 * p / 100.0) as u64,
        }
    }
}

/// The error that pauses a true-up before it deletes anything, if one should: 9080 when it
/// would delete more than `limit` files, 9090 when part of the source could not be read, 9100
/// for both.
pub fn guard(deletes: u64, limit: u64, unreadable: u64) -> Option<JobError> {
    let (count, limit_s, unreadable_s) = (
        deletes.to_string(),
        limit.to_string(),
        unreadable.to_string(),
    );
    match (deletes > limit, unreadable > 0 && deletes > 0) {
        (true, true) => Some(JobError::new(
            Code::SYNC_DELETES_TRUE_UP_ERROR,
            &[
                ("count", &count),
                ("limit", &limit_s),
                ("unreadable", &unreadable_s),
            ],
        )),
        (true, false) => Some(JobError::new(
            Code::FILE_SYNCHRONISE_REVIEW_TRUE_UP_ERROR,
            &[("count", &count), ("limit", &limit_s)],
        )),
        (false, true) => Some(JobError::new(
            Code::INACCESSIBLE_PATH_TRUE_UP_ERROR,
            &[("count", &unreadable_s)],
        )),
        (false, false) => None,
    }
}

/// How the deletes went.
#[derive(Debug, Default, Clone, Copy)]
pub struct DeleteOutcome {
    pub deleted: u64,
    /// On the list, but the source holds the path again: not deleted.
    pub kept: u64,
    pub failed: u64,
    pub stopped: bool,
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
/// index.
#[allow(clippy::too_many_arguments)]
pub fn apply_deletes(
    src: &Side,
    dst: &Side,
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
    let rt = match (src, dst) {
        (Side::Local(_), Side::Local(_)) => None,
        _ => Some(crate::store::runtime(&run.id)?),
    };
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
        if !from_listing && index.get(&rel)?.is_none() {
            // Already deleted by an earlier confirmation.
            continue;
        }
        let sanitized = index.target_name(&rel)?;
        let target = sanitized.clone().unwrap_or_else(|| rel.clone());
        let result = delete_at_target(dst, src, &rel, &target, rt.as_ref());
        let mut record = match &result {
            Ok(()) => {
                outcome.deleted += 1;
                CopyRecord::new(&rel, 0, Code::AZSM2043, &[])
            }
            Err(why) => {
                outcome.failed += 1;
                CopyRecord::new(&rel, 0, Code::AZSM2072, &[("reason", why)])
            }
        };
        if sanitized.is_some() {
            record.target_path = Some(display_path(&target));
        }
        log.write(run, &record)?;
        if result.is_ok() {
            if sanitized.is_some() {
                index.forget_target_name(&rel)?;
            }
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

fn delete_at_target(
    dst: &Side,
    src: &Side,
    rel: &[u8],
    target: &[u8],
    rt: Option<&tokio::runtime::Runtime>,
) -> Result<(), String> {
    match dst {
        Side::Local(root) => {
            let path = root.join(std::ffi::OsStr::from_bytes(target));
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
                let f = crate::store::failure(&e, true);
                f.reason
            })
        }
    }
}

/// Removes the local target's folders above a deleted file that are gone at the source too
/// and now empty (removing a folder that holds anything fails, and is left).
pub(crate) fn prune_folders(root: &Path, src: &Side, rel: &[u8], target: &[u8]) {
    let Side::Local(src_root) = src else {
        return;
    };
    let src_parts: Vec<&[u8]> = rel.split(|b| *b == b'/').collect();
    let dst_parts: Vec<&[u8]> = target.split(|b| *b == b'/').collect();
    if src_parts.len() != dst_parts.len() {
        return;
    }
    for depth in (1..src_parts.len()).rev() {
        let src_dir = src_parts[..depth].join(&b'/');
        if src_root
            .join(std::ffi::OsStr::from_bytes(&src_dir))
            .symlink_metadata()
            .is_ok()
        {
            return;
        }
        let dst_dir = dst_parts[..depth].join(&b'/');
        if fs::remove_dir(root.join(std::ffi::OsStr::from_bytes(&dst_dir))).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_name_fits_on_one_line_and_reads_back() {
        for name in [
            &b"plain/name.txt"[..],
            b"line\nbreak",
            b"back\\slash\\n",
            b"bad\xff\xfebytes",
            b"cr\rhere",
            "ünï/cødé".as_bytes(),
        ] {
            let line = encode_line(name);
            assert!(!line.contains('\n'));
            assert_eq!(decode_line(&line).unwrap(), name);
        }
        assert_eq!(decode_line("dangling\\"), None);
        assert_eq!(decode_line("bad\\q"), None);
    }

    #[test]
    fn max_delete_parses_counts_and_shares() {
        assert_eq!(MaxDelete::parse("500").unwrap(), MaxDelete::Count(500));
        assert_eq!(MaxDelete::parse("2%").unwrap(), MaxDelete::Percent(2.0));
        assert!(MaxDelete::parse("lots").is_err());
        assert!(MaxDelete::parse("120%").is_err());
        assert_eq!(MaxDelete::Default.limit(100), 5);
        assert_eq!(MaxDelete::Default.limit(1_000_000), 1000);
        assert_eq!(MaxDelete::Percent(10.0).limit(50), 5);
    }

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

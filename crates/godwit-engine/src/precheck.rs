//! What a copy checks before its first write: enough file handles for its threads (1040), and
//! room for what it will write at a local target and in the state directory (6080), judged by
//! the source's last scan when there is one. A check that fails stops the run before anything
//! is written, with the numbers.

use std::path::Path;

use godwit_codes::Code;

use crate::error::JobError;
use crate::location::Location;
use crate::record::human_bytes;

/// What the state directory keeps for each file of a run, about: its index entry and its
/// copy-log record.
const STATE_BYTES_A_FILE: u64 = 512;

/// Files and bytes the newest scan of `source` under `state_dir` found to migrate.
pub fn last_scan(state_dir: &Path, source: &Location) -> Option<(u64, u64)> {
    let id = crate::state::migration_id(source, None);
    let runs = state_dir.join("migrations").join(id).join("runs");
    let mut scans: Vec<_> = std::fs::read_dir(runs)
        .ok()?
        .flatten()
        .map(|e| e.path().join("scan.json"))
        .filter(|p| p.exists())
        .collect();
    scans.sort();
    scan_in(scans.pop()?.parent()?)
}

/// Files and bytes to migrate by the scan report in run folder `dir`.
pub fn scan_in(dir: &Path) -> Option<(u64, u64)> {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("scan.json")).ok()?).ok()?;
    Some((
        report["files_to_migrate"].as_u64()?,
        report["bytes_to_migrate"].as_u64()?,
    ))
}

/// File handles a run with `transfers` threads may hold at once: each thread's source file,
/// target file and open target folder, the walk's folders, the index, the copy log and the
/// runtime's own.
pub fn handles_needed(transfers: usize) -> u64 {
    64 + 6 * transfers as u64
}

/// The process may open enough files for a run of `transfers` threads (1040 otherwise).
pub fn file_handles(transfers: usize) -> Result<(), JobError> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let Some(soft) = limit.current else {
        return Ok(());
    };
    let needed = handles_needed(transfers);
    if soft >= needed {
        return Ok(());
    }
    Err(JobError::new(
        Code::TOO_MANY_OPEN_FILE_HANDLES_ERROR,
        &[
            ("limit", &soft.to_string()),
            ("needed", &needed.to_string()),
        ],
    ))
}

/// Room at `dir` for `needed` bytes (6080 otherwise).
pub fn room(dir: &Path, needed: u64) -> Result<(), JobError> {
    match free_at(dir) {
        Some(free) if free < needed => Err(no_room(dir, free, needed)),
        _ => Ok(()),
    }
}

/// 6080: only `free` bytes at `dir`, `needed` wanted.
pub(crate) fn no_room(dir: &Path, free: u64, needed: u64) -> JobError {
    JobError::new(
        Code::DISK_SPACE_NOT_ENOUGH_ERROR,
        &[
            ("free", &human_bytes(free)),
            ("path", &dir.display().to_string()),
            ("needed", &human_bytes(needed)),
        ],
    )
}

/// Bytes free to this user at `dir`, or at the nearest folder above it that exists.
pub(crate) fn free_at(dir: &Path) -> Option<u64> {
    let existing = dir.ancestors().find(|d| d.exists())?;
    let v = rustix::fs::statvfs(existing).ok()?;
    Some(v.f_bavail.saturating_mul(v.f_frsize))
}

/// Room in the state directory for the index and copy log of `files` files.
pub fn state_room(state_dir: &Path, files: u64) -> Result<(), JobError> {
    room(state_dir, files.saturating_mul(STATE_BYTES_A_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_without_room_is_6080_with_the_numbers() {
        let dir = tempfile::tempdir().unwrap();
        assert!(room(dir.path(), 1).is_ok());
        let e = room(&dir.path().join("not yet/made"), u64::MAX).unwrap_err();
        assert_eq!(e.code, Code::DISK_SPACE_NOT_ENOUGH_ERROR);
        assert!(e.message.contains("needed"), "{}", e.message);
        assert!(file_handles(1).is_ok(), "a test process has a few handles");
    }
}

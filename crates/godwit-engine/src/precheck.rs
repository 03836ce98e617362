//! What a copy checks before its first write: enough file handles for its threads (1040),
//! enough memory for them (6081), and room for what it will write at a local target and in the
//! state directory (6080), judged by the source's last scan when there is one. A check that
//! fails stops the run before anything is written, with the numbers.

use std::path::Path;

use godwit_codes::Code;

use crate::error::JobError;
use crate::location::Location;
use crate::record::human_bytes;

/// What the state directory keeps for each file of a run, about: its index entry and its
/// copy-log record.
const STATE_BYTES_A_FILE: u64 = 512;

/// Files and bytes the newest scan of `source` (with the include rules `include`, a job's)
/// under `state_dir` found to migrate.
pub fn last_scan(state_dir: &Path, source: &Location, include: &[String]) -> Option<(u64, u64)> {
    let id = crate::state::migration_id(source, None, include);
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

const MIB: u64 = 1 << 20;

/// Memory a run of `transfers` threads holds at most: the index's cache, the queues of files
/// and records, the runtime (32 MiB in all), and each thread's buffers: 1 MiB reading and
/// writing local files, 4 MiB when a store is remote (a small file is sent from memory), plus
/// the parts of one large upload in flight (32 MiB). Measured peaks are in docs/benchmarks.md
/// (26-30 MiB for local copies, 68 MiB for large files to S3).
pub fn memory_needed(transfers: usize, remote: bool) -> u64 {
    let t = transfers as u64;
    if remote {
        64 * MIB + 4 * MIB * t
    } else {
        32 * MIB + MIB * t
    }
}

/// Enough memory for a run of `transfers` threads (6081 otherwise): what the machine has
/// available, or less under a cgroup's limit (a container, a systemd service's MemoryMax).
pub fn memory(transfers: usize, remote: bool) -> Result<(), JobError> {
    let needed = memory_needed(transfers, remote);
    match available_memory() {
        Some(free) if free < needed => Err(JobError::new(
            Code::JOB_ABORTED_LOW_MEMORY,
            &[
                ("free", &human_bytes(free)),
                ("transfers", &transfers.to_string()),
                ("needed", &human_bytes(needed)),
            ],
        )),
        _ => Ok(()),
    }
}

/// The memory this process may still use: the machine's MemAvailable, or the room left under
/// the tightest memory limit of its cgroups (v1 or v2, this one's and those above it), where
/// that is less. Page cache the kernel can drop (inactive files) counts as room.
pub fn available_memory() -> Option<u64> {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024);
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let limits = cgroups.lines().filter_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if id == "0" && controllers.is_empty() {
            cgroup_room(&Path::new("/sys/fs/cgroup").join(path), CGROUP_V2)
        } else if controllers.split(',').any(|c| c == "memory") {
            cgroup_room(&Path::new("/sys/fs/cgroup/memory").join(path), CGROUP_V1)
        } else {
            None
        }
    });
    limits.chain(machine).min()
}

/// The files of a cgroup version: its limit, its usage, and the line of memory.stat with the
/// page cache it can drop.
struct CgroupFiles {
    limit: &'static str,
    usage: &'static str,
    inactive: &'static str,
}

const CGROUP_V1: CgroupFiles = CgroupFiles {
    limit: "memory.limit_in_bytes",
    usage: "memory.usage_in_bytes",
    inactive: "total_inactive_file",
};

const CGROUP_V2: CgroupFiles = CgroupFiles {
    limit: "memory.max",
    usage: "memory.current",
    inactive: "inactive_file",
};

/// The least room under the memory limits of `dir` and the cgroups above it (None: no limit).
fn cgroup_room(dir: &Path, files: CgroupFiles) -> Option<u64> {
    let read = |d: &Path, name: &str| std::fs::read_to_string(d.join(name)).ok();
    dir.ancestors()
        .take_while(|d| d.starts_with("/sys/fs/cgroup"))
        .filter_map(|d| {
            // "max" (v2) or a huge number (v1): no limit here.
            let limit = read(d, files.limit)?.trim().parse::<u64>().ok()?;
            if limit >= 1 << 60 {
                return None;
            }
            let usage = read(d, files.usage)?.trim().parse::<u64>().ok()?;
            let inactive = read(d, "memory.stat")
                .and_then(|stat| {
                    stat.lines().find_map(|l| {
                        let (k, v) = l.split_once(' ')?;
                        (k == files.inactive).then(|| v.trim().parse::<u64>().ok())?
                    })
                })
                .unwrap_or(0);
            Some(limit.saturating_sub(usage.saturating_sub(inactive)))
        })
        .min()
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
pub fn free_at(dir: &Path) -> Option<u64> {
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

    #[test]
    fn memory_is_judged_against_what_the_machine_or_its_cgroup_leaves() {
        let free = available_memory().expect("Linux tells the memory available");
        assert!(free > 0);
        assert!(
            memory(1, false).is_ok(),
            "a test machine has 33 MiB to spare"
        );
        let e = memory(usize::MAX / (8 << 20), true).unwrap_err();
        assert_eq!(e.code, Code::JOB_ABORTED_LOW_MEMORY);
        assert!(e.message.contains("transfers needs about"), "{}", e.message);
        assert!(memory_needed(16, true) > memory_needed(16, false));
    }
}

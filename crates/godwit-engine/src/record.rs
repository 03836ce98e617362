//! A run's records: `copylog.jsonl` (one record per file), the path lists (`deletes.txt`,
//! `unreadable.txt`), `summary.json`, and the one function that decides how a run ended.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use godwit_codes::{Code, Command, State};
use serde::Serialize;

use crate::error::{JobError, reason};
use crate::state::Run;

/// The run's list of files to delete at the target (one escaped path a line).
pub const DELETES_FILE: &str = "deletes.txt";
/// The run's list of source paths that could not be read.
pub const UNREADABLE_FILE: &str = "unreadable.txt";

/// A path as JSON text: itself when it is UTF-8, else with each invalid byte as `\xNN`.
pub fn display_path(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let mut out = String::new();
            for chunk in bytes.utf8_chunks() {
                out.push_str(chunk.valid());
                for b in chunk.invalid() {
                    out.push_str(&format!("\\x{b:02X}"));
                }
            }
            out
        }
    }
}

/// One line of `copylog.jsonl`: the final status of one file.
#[derive(Debug, Serialize)]
pub struct CopyRecord {
    pub path: String,
    /// Set when the path is not UTF-8: the exact bytes, in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_path: Option<String>,
    pub size: u64,
    pub code: Code,
    pub status: &'static str,
    pub message: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// For a failure, what was being done: `read source` or `write target`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<&'static str>,
    /// Where the file the target held before this run deleted or replaced it was kept
    /// (`--backup-dir`), for `godwit undo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}

impl CopyRecord {
    /// The record of `rel` with `code`, its message rendered from `params` plus the path.
    pub fn new(rel: &[u8], size: u64, code: Code, params: &[(&str, &str)]) -> Self {
        let path = display_path(rel);
        let mut all: Vec<(&str, &str)> = vec![("path", &path)];
        all.extend_from_slice(params);
        let message = code.render(&all);
        let path_hex = std::str::from_utf8(rel)
            .is_err()
            .then(|| rel.iter().map(|b| format!("{b:02x}")).collect());
        CopyRecord {
            path_hex,
            target_path: None,
            size,
            code,
            status: code.name(),
            message,
            attempts: 0,
            checksum: None,
            operation: None,
            backup: None,
            path,
        }
    }
}

/// Appends records to a run's `copylog.jsonl`.
#[derive(Debug)]
pub struct CopyLog {
    out: BufWriter<File>,
    path: PathBuf,
}

impl CopyLog {
    pub fn create(run: &Run) -> Result<Self, JobError> {
        let path = run.dir.join("copylog.jsonl");
        let file = File::create(&path).map_err(|e| run_report_error(run, &path, &e, true))?;
        Ok(CopyLog {
            out: BufWriter::with_capacity(256 * 1024, file),
            path,
        })
    }

    pub fn write(&mut self, run: &Run, record: &CopyRecord) -> Result<(), JobError> {
        serde_json::to_writer(&mut self.out, record)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|e| run_report_error(run, &self.path, &e, false))
    }

    /// Hands what is buffered to the operating system, so a process killed after this keeps
    /// it: called before each index commit, so every file the index holds as written by this
    /// run has its record in the run's copy log.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Opens a run's copy log to add records after the copy (a true-up's deletions).
    pub fn append(run: &Run) -> Result<Self, JobError> {
        let path = run.dir.join("copylog.jsonl");
        let file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| run_report_error(run, &path, &e, false))?;
        Ok(CopyLog {
            out: BufWriter::with_capacity(64 * 1024, file),
            path,
        })
    }

    pub fn finish(mut self, run: &Run) -> Result<(), JobError> {
        self.out
            .flush()
            .map_err(|e| run_report_error(run, &self.path, &e, false))
    }
}

fn run_report_error(run: &Run, path: &Path, e: &std::io::Error, create: bool) -> JobError {
    let code = if create {
        Code::CREATE_MIGRATION_REPORT_ERROR
    } else {
        Code::UPDATE_MIGRATION_REPORT_ERROR
    };
    let path = path.display().to_string();
    JobError::new(
        code,
        &[("job_id", &run.id), ("path", &path), ("reason", &reason(e))],
    )
}

/// A code with its name, as it appears in JSON outputs.
#[derive(Debug, Clone, Serialize)]
pub struct CodeRef {
    pub code: Code,
    pub name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl CodeRef {
    pub fn new(code: Code, message: Option<String>) -> Self {
        CodeRef {
            code,
            name: code.name(),
            message,
        }
    }
}

/// What a verification found, in the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyTally {
    /// Files the same on both sides (AZSM2045).
    pub same: u64,
    /// Files at both sides that differ (AZSM2074).
    pub differ: u64,
    /// Source files missing at the target (AZSM2075).
    pub missing: u64,
    /// Target files the source does not have (AZSM2076).
    pub extra: u64,
    /// Files and folders that could not be read on one side (AZSM2077).
    pub unreadable: u64,
    /// Links, devices and other entries that are not files: not compared.
    pub not_files: u64,
    /// Contents were hashed on both sides (`--checksum`).
    pub checksum: bool,
    /// The source side came from the migration's index (`--use-index`).
    pub from_index: bool,
    /// The list of differences (`differences.jsonl` in the run folder).
    pub report: String,
}

impl VerifyTally {
    /// Files that are not the same at the target, or could not be told.
    pub fn differences(&self) -> u64 {
        self.differ + self.missing + self.extra + self.unreadable
    }
}

/// One leg of a speed test: files of one size written or read back.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpeedLeg {
    pub files: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub bytes_per_second: f64,
    pub files_per_second: f64,
    /// Milliseconds a file took, from the start of its request to its end.
    pub latency_ms: Latency,
}

/// Percentiles of a leg's latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// What a speed test measured, each way, and how long a copy of the scanned source would take.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpeedReport {
    pub write_small: SpeedLeg,
    pub write_large: SpeedLeg,
    pub read_small: SpeedLeg,
    pub read_large: SpeedLeg,
    /// Where the test files were, under the target.
    pub prefix: String,
    /// The test files were all deleted, and a listing of the prefix found nothing left.
    pub cleaned_up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<SpeedEstimate>,
}

/// A copy of the source the last scan saw, at the speeds measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SpeedEstimate {
    pub files: u64,
    pub bytes: u64,
    /// The longer of: every file at the small files' rate, every byte at the large files'.
    pub seconds: f64,
}

/// Files and bytes a dry run would have copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WouldCopy {
    pub files: u64,
    pub bytes: u64,
}

/// `summary.json`: how a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub run_id: String,
    pub migration_id: String,
    pub command: godwit_spec::CommandKind,
    /// How the run ended: SUCCEEDED, FAILED, STOPPED or PAUSED (`status` is its code).
    #[serde(with = "godwit_spec::command::state_serde")]
    pub state: State,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub status: CodeRef,
    pub job_error: Option<CodeRef>,
    /// Files per final status code.
    pub counts: BTreeMap<Code, u64>,
    pub files: u64,
    pub bytes: u64,
    pub bytes_copied: u64,
    pub started: String,
    pub ended: String,
    pub seconds: f64,
    pub bytes_per_second: f64,
    pub run_dir: String,
    /// A true-up's deletions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub true_up: Option<TrueUp>,
    /// The folder where this run kept what it deleted or replaced at the target
    /// (`--backup-dir`), or, for an undo, the folder it put them back from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// What a validation found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<crate::validate::Validation>,
    /// What finalizing the migration removed and kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finalized: Option<crate::state::Finalized>,
    /// What a simulated scan found and the jobs it proposes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<crate::plan::PlanReport>,
    /// What a permissions run set (or, simulated, would set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<crate::perms::PermsTally>,
    /// `--metadata`: what the target could not hold of the files' permissions, with how many
    /// files had it (`godwit permissions --simulate` lists each path).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata_not_carried: BTreeMap<String, u64>,
    /// What a verification found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyTally>,
    /// What a speed test measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_test: Option<SpeedReport>,
    /// Nothing was written: what would have been copied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<WouldCopy>,
    /// Empty folders made at the target.
    #[serde(skip_serializing_if = "is_zero")]
    pub empty_dirs_made: u64,
    /// Multipart uploads that killed runs of this migration left open at an S3 target,
    /// aborted when this run started.
    #[serde(skip_serializing_if = "is_zero")]
    pub uploads_aborted: u64,
    /// Other multipart uploads open under the target's prefix (not godwit's to abort).
    #[serde(skip_serializing_if = "is_zero")]
    pub uploads_open: u64,
    #[serde(skip)]
    started_at: Option<SystemTime>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The one place that decides how a run of `command` ended, as the catalog's status of that
/// command: PAUSED when paused for review, FAILED with a job error, STOPPED when stopped,
/// SUCCEEDED otherwise.
pub fn end_state(failed: bool, stopped: bool, paused: bool) -> State {
    if paused {
        State::Paused
    } else if failed {
        State::Failed
    } else if stopped {
        State::Stopped
    } else {
        State::Succeeded
    }
}

/// The catalog's status of `command` in `state`.
pub fn status_of(command: Command, state: State) -> Code {
    Code::command_status(command, state).unwrap_or(Code::HTTP_INTERNAL_SERVER_ERROR)
}

impl Summary {
    /// The summary of `run` of `command` as it starts: nothing counted yet.
    pub fn start(
        command: godwit_spec::CommandKind,
        migration_id: &str,
        run: &Run,
        source: String,
        target: Option<String>,
    ) -> Summary {
        Summary {
            run_id: run.id.clone(),
            migration_id: migration_id.to_string(),
            command,
            state: State::Running,
            source,
            target,
            status: CodeRef::new(status_of(command.catalog(), State::Running), None),
            job_error: None,
            counts: BTreeMap::new(),
            files: 0,
            bytes: 0,
            bytes_copied: 0,
            started: timestamp(run.started),
            ended: String::new(),
            seconds: 0.0,
            bytes_per_second: 0.0,
            run_dir: run.dir.display().to_string(),
            true_up: None,
            backup: None,
            metadata_not_carried: BTreeMap::new(),
            plan: None,
            finalized: None,
            validation: None,
            permissions: None,
            verify: None,
            speed_test: None,
            dry_run: None,
            empty_dirs_made: 0,
            uploads_aborted: 0,
            uploads_open: 0,
            started_at: Some(run.started),
        }
    }

    /// Ends the summary: its state and status from [`end_state`], the job error, the time. A
    /// run that went through but could not copy some files is FAILED with AZSM1046, never a
    /// success (the command line still exits 3 for it, as for any partial failure).
    pub fn end(&mut self, job_error: Option<&JobError>, stopped: bool, paused: bool) {
        let not_copied = self.files_not_copied();
        let partial = (job_error.is_none() && !stopped && !paused && not_copied > 0).then(|| {
            JobError::new(
                Code::AZSM1046,
                &[
                    ("failed", &not_copied.to_string()),
                    ("files", &self.files.to_string()),
                ],
            )
        });
        let job_error = job_error.or(partial.as_ref());
        self.state = end_state(job_error.is_some() && !paused, stopped, paused);
        self.status = CodeRef::new(status_of(self.command.catalog(), self.state), None);
        self.job_error = job_error.map(|e| CodeRef::new(e.code, Some(e.message.clone())));
        let now = SystemTime::now();
        self.ended = timestamp(now);
        self.seconds = self
            .started_at
            .and_then(|t| now.duration_since(t).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        self.bytes_per_second = if self.seconds > 0.0 {
            self.bytes_copied as f64 / self.seconds
        } else {
            0.0
        };
    }

    /// Adds `n` files with `code`.
    pub fn count(&mut self, code: Code, n: u64) {
        if n > 0 {
            *self.counts.entry(code).or_default() += n;
            self.files += n;
        }
    }

    /// Files that could not be copied: their final code is a transfer failure (AZSM2061 to
    /// AZSM2080), not a file left out on purpose or one the target cannot hold.
    pub fn files_not_copied(&self) -> u64 {
        self.counts
            .iter()
            .filter(|(c, _)| is_transfer_failure(**c))
            .map(|(_, n)| n)
            .sum()
    }

    /// Files whose final code is an error.
    pub fn files_failed(&self) -> u64 {
        self.counts
            .iter()
            .filter(|(c, _)| c.info().kind == godwit_codes::Kind::Error)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn write(&self, run: &Run) -> Result<(), JobError> {
        let path = run.dir.join("summary.json");
        let tmp = run.dir.join("summary.json.tmp");
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        fs::write(&tmp, text + "\n")
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|e| run_report_error(run, &path, &e, false))
    }
}

/// `n` bytes as a person reads them: `512 B`, `3.2 MiB`, `1.5 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Whether `code` is a per-file failure to copy (seed 001's range AZSM2061 to AZSM2080).
pub fn is_transfer_failure(code: Code) -> bool {
    code.id()
        .strip_prefix("AZSM")
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| (2061..=2080).contains(&n))
}

/// `t` as RFC 3339 in UTC, to the millisecond.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

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

pub use godwit_spec::paths::{decode_bytes, decode_line, encode_line};

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
}

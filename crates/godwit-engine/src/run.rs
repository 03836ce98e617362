//! The state directory, a migration's folder and lock, and a run's outputs: `copylog.jsonl`
//! (one record per file) and `summary.json`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use godwit_codes::Code;
use serde::Serialize;

use crate::error::{JobError, reason};
use crate::location::Location;

/// godwit's state directory: `--state-dir`, else `$XDG_DATA_HOME/godwit`, else
/// `~/.local/share/godwit`.
pub fn default_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("godwit");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/godwit")
}

/// One migration's folder under the state directory, locked for as long as this value lives.
#[derive(Debug)]
pub struct Migration {
    /// Derived from the source and target, so the same command finds the same migration.
    pub id: String,
    pub dir: PathBuf,
    _lock: File,
}

impl Migration {
    /// Opens (creating if needed) the migration of `source` to `target` and takes its lock.
    pub fn open(
        state_dir: &Path,
        source: &Location,
        target: Option<&Location>,
    ) -> Result<Self, JobError> {
        let key = format!(
            "{source}\0{}",
            target.map(|t| t.to_string()).unwrap_or_default()
        );
        let id = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes()));
        let dir = state_dir.join("migrations").join(&id);
        let path = dir.display().to_string();
        fs::create_dir_all(&dir).map_err(|e| {
            JobError::new(
                Code::MIGRATION_CREATE_ERROR,
                &[("path", &path), ("reason", &reason(&e))],
            )
        })?;
        let lock_path = dir.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                JobError::new(
                    Code::MIGRATION_CREATE_ERROR,
                    &[("path", &path), ("reason", &reason(&e))],
                )
            })?;
        if lock.try_lock().is_err() {
            let pid = fs::read_to_string(&lock_path).unwrap_or_default();
            return Err(JobError::new(
                Code::MIGRATION_LOCK_ERROR,
                &[("migration_id", &id), ("pid", pid.trim())],
            ));
        }
        // The lock is held; record who holds it for the message another process shows.
        let _ = lock.set_len(0);
        let _ = (&lock).write_all(std::process::id().to_string().as_bytes());
        Ok(Migration {
            id,
            dir,
            _lock: lock,
        })
    }

    /// A new run folder for `command`.
    pub fn new_run(&self, command: &'static str) -> Result<Run, JobError> {
        let started = SystemTime::now();
        let stamp = humantime::format_rfc3339_seconds(started)
            .to_string()
            .replace([':', '-'], "");
        let id = format!("{stamp}-{:04x}", std::process::id() & 0xffff);
        let dir = self.dir.join("runs").join(&id);
        fs::create_dir_all(&dir).map_err(|e| {
            let path = dir.display().to_string();
            JobError::new(
                Code::CREATE_MIGRATION_REPORT_ERROR,
                &[("job_id", &id), ("path", &path), ("reason", &reason(&e))],
            )
        })?;
        Ok(Run {
            id,
            dir,
            command,
            started,
        })
    }
}

/// One run of a command: its folder and when it began.
#[derive(Debug)]
pub struct Run {
    pub id: String,
    pub dir: PathBuf,
    pub command: &'static str,
    pub started: SystemTime,
}

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

/// `summary.json`: how a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub run_id: String,
    pub migration_id: String,
    pub command: &'static str,
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
    pub true_up: Option<crate::sync::TrueUp>,
}

impl Summary {
    pub fn write(&self, run: &Run) -> Result<(), JobError> {
        let path = run.dir.join("summary.json");
        let tmp = run.dir.join("summary.json.tmp");
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        fs::write(&tmp, text + "\n")
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|e| run_report_error(run, &path, &e, false))
    }
}

/// `t` as RFC 3339 in UTC, to the millisecond.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

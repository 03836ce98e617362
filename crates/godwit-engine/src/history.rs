//! The runs a state directory holds: what `godwit runs` lists and `godwit report` shows. Read
//! from each run folder's `summary.json`; a folder without one is a run still going on (its
//! migration is locked) or one that was killed before it could end.

use std::fs;
use std::path::{Path, PathBuf};

use godwit_codes::Code;
use serde::Serialize;

use crate::error::JobError;

/// One run, as its folder tells it.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub run_id: String,
    pub migration_id: String,
    /// The command, from the summary or the folder's `job.json`; empty when neither says.
    pub command: String,
    /// SUCCEEDED, FAILED, STOPPED, PAUSED; RUNNING while its migration is locked; None when it
    /// ended without a summary (killed, or its machine went down).
    pub state: Option<String>,
    /// The run's status code and its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<(String, String)>,
    /// The job error's code, when the run failed or paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_error: Option<String>,
    pub files: u64,
    pub bytes: u64,
    pub bytes_copied: u64,
    /// Files whose final code is a failure (AZSM2061 to AZSM2080).
    pub files_failed: u64,
    pub started: String,
    pub seconds: f64,
    pub source: String,
    pub target: String,
    pub run_dir: String,
}

/// Every run under `state_dir` (or only migration `only`'s), newest first.
pub fn runs(state_dir: &Path, only: Option<&str>) -> Vec<RunInfo> {
    let mut found = Vec::new();
    let Ok(migrations) = fs::read_dir(state_dir.join("migrations")) else {
        return found;
    };
    for m in migrations.flatten() {
        let id = m.file_name().to_string_lossy().into_owned();
        if only.is_some_and(|o| o != id) {
            continue;
        }
        let locked = is_locked(&m.path());
        let Ok(runs) = fs::read_dir(m.path().join("runs")) else {
            continue;
        };
        for r in runs.flatten() {
            if r.path().is_dir() {
                found.push(read_run(&id, &r.path(), locked));
            }
        }
    }
    // Run ids begin with their start time, to the second, then a tag: newest first.
    found.sort_by(|a, b| b.run_id.cmp(&a.run_id));
    found
}

/// The folder of run `run_id` under any migration of `state_dir`.
pub fn find_run(state_dir: &Path, run_id: &str) -> Result<PathBuf, JobError> {
    let not_found = || {
        JobError::new(
            Code::DB_ERR_GET_DOC_NOT_FOUND,
            &[("kind", "run in this state directory"), ("id", run_id)],
        )
    };
    if run_id.is_empty() || run_id.contains(['/', '\\']) || run_id.starts_with('.') {
        return Err(not_found());
    }
    let migrations = fs::read_dir(state_dir.join("migrations")).map_err(|_| not_found())?;
    migrations
        .flatten()
        .map(|m| m.path().join("runs").join(run_id))
        .find(|dir| dir.is_dir())
        .ok_or_else(not_found)
}

/// The run in folder `dir`.
pub fn run_info(dir: &Path) -> RunInfo {
    let migration = dir
        .parent()
        .and_then(Path::parent)
        .map(|m| {
            (
                m.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                is_locked(m),
            )
        })
        .unwrap_or_default();
    read_run(&migration.0, dir, migration.1)
}

fn read_run(migration_id: &str, dir: &Path, locked: bool) -> RunInfo {
    let run_id = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let summary: Option<serde_json::Value> = fs::read(dir.join("summary.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let sides: Option<serde_json::Value> = fs::read(dir.join(crate::state::JOB_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let s = summary.unwrap_or(serde_json::Value::Null);
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let number = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let sides = sides.unwrap_or(serde_json::Value::Null);
    let files_failed = s["counts"]
        .as_object()
        .map(|counts| {
            counts
                .iter()
                .filter(|(code, _)| {
                    Code::lookup(code).is_ok_and(crate::record::is_transfer_failure)
                })
                .map(|(_, n)| number(n))
                .sum()
        })
        .unwrap_or(0);
    let state = match s["state"].as_str() {
        Some(state) => Some(state.to_string()),
        None if locked => Some("RUNNING".to_string()),
        None => None,
    };
    RunInfo {
        migration_id: migration_id.to_string(),
        command: text(&s["command"]),
        state,
        status: s["status"]["code"]
            .as_str()
            .map(|c| (c.to_string(), text(&s["status"]["name"]))),
        job_error: s["job_error"]["code"].as_str().map(str::to_string),
        files: number(&s["files"]),
        bytes: number(&s["bytes"]),
        bytes_copied: number(&s["bytes_copied"]),
        files_failed,
        started: match s["started"].as_str() {
            Some(t) => t.to_string(),
            None => started_of(&run_id),
        },
        seconds: s["seconds"].as_f64().unwrap_or(0.0),
        source: s["source"]
            .as_str()
            .map_or_else(|| text(&sides["source"]), str::to_string),
        target: s["target"]
            .as_str()
            .map_or_else(|| text(&sides["target"]), str::to_string),
        run_dir: dir.display().to_string(),
        run_id,
    }
}

/// The start time a run id begins with (`20261202T182442Z-1afe`), as RFC 3339.
fn started_of(run_id: &str) -> String {
    let t = run_id.split('-').next().unwrap_or_default();
    if t.len() != 16 {
        return String::new();
    }
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &t[0..4],
        &t[4..6],
        &t[6..8],
        &t[9..11],
        &t[11..13],
        &t[13..15]
    )
}

/// Whether a godwit process holds the migration's lock (a run of it is going on): the lock
/// file names the last holder's process, which must still be a godwit. Looked up rather than
/// tried, so that listing runs never keeps a starting run from taking the lock.
fn is_locked(migration_dir: &Path) -> bool {
    let Ok(pid) = fs::read_to_string(migration_dir.join("lock")) else {
        return false;
    };
    let Ok(pid) = pid.trim().parse::<u32>() else {
        return false;
    };
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("godwit"))
        && holds_lock(pid, &migration_dir.join("lock"))
}

/// Whether process `pid` has `lock` open (a process that ended, or a new one with the same
/// number, does not).
fn holds_lock(pid: u32, lock: &Path) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        // Not ours to look into: take the name for it.
        return true;
    };
    let lock = lock.canonicalize().unwrap_or_else(|_| lock.to_path_buf());
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == lock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_id_gives_its_start_time() {
        assert_eq!(started_of("20261202T182442Z-1afe"), "2026-12-02T18:24:42Z");
        assert_eq!(
            started_of("20261202T182442Z-1afe-2"),
            "2026-12-02T18:24:42Z"
        );
        assert_eq!(started_of("odd"), "");
    }

    #[test]
    fn runs_are_listed_newest_first_and_a_killed_run_has_no_state() {
        let dir = tempfile::tempdir().unwrap();
        let src = crate::location::Location::Local("/src".into());
        let m = crate::state::Migration::open(dir.path(), &src, None, &[]).unwrap();
        let first = m.new_run("copy").unwrap();
        std::fs::write(
            first.dir.join("summary.json"),
            r#"{"command":"copy","state":"SUCCEEDED","status":{"code":"922","name":"MIGRATE_DATA : SUCCEEDED"},"files":3,"counts":{"AZSM0000":2,"AZSM2063":1}}"#,
        )
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let second = m.new_run("copy").unwrap();
        // While the migration is open here, the run without a summary is running.
        let listed = runs(dir.path(), None);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].run_id, second.id);
        assert_eq!(listed[0].state.as_deref(), Some("RUNNING"));
        assert_eq!(listed[1].state.as_deref(), Some("SUCCEEDED"));
        assert_eq!(listed[1].files_failed, 1);
        drop(m);
        let listed = runs(
            dir.path(),
            Some(&crate::state::migration_id(&src, None, &[])),
        );
        assert_eq!(listed[0].state, None, "ended without a summary");
        assert!(runs(dir.path(), Some("other")).is_empty());
        assert_eq!(find_run(dir.path(), &first.id).unwrap(), first.dir);
        assert_eq!(
            find_run(dir.path(), "../x").unwrap_err().code,
            Code::DB_ERR_GET_DOC_NOT_FOUND
        );
    }
}

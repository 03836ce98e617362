//! The state directory, a migration's folder and its lock, run folders and their markers.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use godwit_codes::Code;

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

/// Makes `dir` and the folders above it that are missing, readable by this user only (0700):
/// a state directory holds the index, copy logs and summaries of a company's files.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The id of the migration of `source` to `target`: derived from the two, so the same command
/// finds the same migration. `include`: the include rules that cut a job out of a larger
/// source (a plan's jobs share their source and target): each such job is a migration of its
/// own, with its own index, lock and runs. Their order does not matter; without any, the id
/// is the one godwit always gave.
pub fn migration_id(source: &Location, target: Option<&Location>, include: &[String]) -> String {
    let mut key = format!(
        "{source}\0{}",
        target.map(|t| t.to_string()).unwrap_or_default()
    );
    let scope = godwit_spec::filter::scope_of(include);
    if !scope.is_empty() {
        key.push('\0');
        key.push_str(&scope);
    }
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes()))
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
    /// Opens (creating if needed) the migration of `source` to `target` and takes its lock;
    /// AZSM1048 for a migration that was finalized.
    pub fn open(
        state_dir: &Path,
        source: &Location,
        target: Option<&Location>,
        include: &[String],
    ) -> Result<Self, JobError> {
        let m = Self::open_even_finalized(state_dir, source, target, include)?;
        if let Some(run) = m.finalized_by() {
            return Err(JobError::new(
                Code::GODWIT_JLSTATUS_MIGRATION_FINALIZED,
                &[("migration_id", &m.id), ("run_id", &run)],
            ));
        }
        Ok(m)
    }

    /// The run that finalized this migration, if one did.
    pub fn finalized_by(&self) -> Option<String> {
        let text = fs::read_to_string(self.dir.join(FINALIZED_FILE)).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        Some(v["run_id"].as_str().unwrap_or("?").to_string())
    }

    /// Closes the migration (`finalize`): removes its index and every working file of its
    /// runs, keeping each run's summary, copy log and reports, and records that it is
    /// finalized. Safe to run again after a failure part way.
    pub fn finalize(&self, run: &Run) -> Result<Finalized, JobError> {
        let mut done = Finalized::default();
        let fail = |path: &Path, e: &std::io::Error| {
            JobError::new(
                Code::MIGRATION_FINALIZE_ERROR,
                &[
                    ("migration_id", &self.id),
                    ("reason", &format!("{}: {}", path.display(), reason(e))),
                ],
            )
        };
        let remove = |path: &Path, done: &mut Finalized| -> Result<(), JobError> {
            let m = fs::symlink_metadata(path).map_err(|e| fail(path, &e))?;
            let r = if m.is_dir() {
                fs::remove_dir_all(path)
            } else {
                fs::remove_file(path)
            };
            r.map_err(|e| fail(path, &e))?;
            done.removed_files += 1;
            done.removed_bytes += m.len();
            Ok(())
        };
        let entries = |dir: &Path| -> Result<Vec<fs::DirEntry>, JobError> {
            fs::read_dir(dir)
                .map_err(|e| fail(dir, &e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(dir, &e))
        };
        for e in entries(&self.dir)? {
            let name = e.file_name();
            if name == "lock" || name == "runs" || name == FINALIZED_FILE {
                continue;
            }
            remove(&e.path(), &mut done)?;
        }
        for r in entries(&self.dir.join("runs"))? {
            if r.path() == run.dir {
                continue;
            }
            done.runs_kept += 1;
            for e in entries(&r.path())? {
                let keep = e.file_name().to_str().is_some_and(|n| KEPT.contains(&n));
                if !keep {
                    remove(&e.path(), &mut done)?;
                }
            }
        }
        if self.finalized_by().is_some() {
            // Finalized before: it stays as that run left it.
            return Ok(done);
        }
        let marker = serde_json::json!({
            "run_id": run.id,
            "finalized": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        });
        let path = self.dir.join(FINALIZED_FILE);
        fs::write(&path, marker.to_string() + "\n").map_err(|e| fail(&path, &e))?;
        Ok(done)
    }

    /// Opens the migration as [`open`](Self::open) does, a finalized one too (to finalize it
    /// again, which changes nothing).
    pub fn open_even_finalized(
        state_dir: &Path,
        source: &Location,
        target: Option<&Location>,
        include: &[String],
    ) -> Result<Self, JobError> {
        let id = migration_id(source, target, include);
        let dir = state_dir.join("migrations").join(&id);
        let path = dir.display().to_string();
        private_dir(&dir).map_err(|e| {
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
        let base = format!("{stamp}-{:04x}", std::process::id() & 0xffff);
        let runs = self.dir.join("runs");
        let error = |id: &str, dir: &Path, e: &std::io::Error| {
            let path = dir.display().to_string();
            JobError::new(
                Code::CREATE_MIGRATION_REPORT_ERROR,
                &[("job_id", id), ("path", &path), ("reason", &reason(e))],
            )
        };
        private_dir(&runs).map_err(|e| error(&base, &runs, &e))?;
        // One process (an agent) can start several runs in the same second: each gets a folder
        // of its own, never an earlier run's.
        let mut n = 1;
        let (id, dir) = loop {
            let id = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            let dir = runs.join(&id);
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => break (id, dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 10_000 => n += 1,
                Err(e) => return Err(error(&id, &dir, &e)),
            }
        };
        // The job's span (job::run) carries the ids from here on.
        tracing::Span::current()
            .record("run", id.as_str())
            .record("migration", self.id.as_str());
        Ok(Run {
            id,
            dir,
            command,
            started,
        })
    }
}

/// Where a finalized migration records the run that closed it.
pub const FINALIZED_FILE: &str = "finalized.json";

/// What a run folder keeps when its migration is finalized: its summary, copy log, sides, and
/// the reports a person reads; the rest (inventories, lists, trees, markers) goes.
const KEPT: &[&str] = &[
    "summary.json",
    "copylog.jsonl",
    JOB_FILE,
    "scan.json",
    crate::perms::REPORT_FILE,
    crate::sanitize::REPORT_FILE,
    crate::verify::DIFFERENCES_FILE,
    crate::backup::BACKUP_FILE,
];

/// What finalizing removed and kept.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Finalized {
    pub removed_files: u64,
    pub removed_bytes: u64,
    /// Runs whose summaries and copy logs stay.
    pub runs_kept: u64,
}

/// One run of a command: its folder and when it began.
#[derive(Debug)]
pub struct Run {
    pub id: String,
    pub dir: PathBuf,
    pub command: &'static str,
    pub started: SystemTime,
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
    /// `--backup-dir`: where the run keeps what it deletes or replaces (a confirmation of its
    /// deletions keeps them there too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_dir: Option<String>,
    /// The include rules that cut the job out of its source: part of its migration's id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
}

/// The folder of run `run_id` under any migration of `state_dir`, if it paused for review;
/// `run_id` may also be that folder's own path.
pub fn find_paused_run(state_dir: &Path, run_id: &str) -> Result<PathBuf, JobError> {
    let not_found = || {
        JobError::new(
            Code::DB_ERR_GET_DOC_NOT_FOUND,
            &[("kind", "true-up run paused for review"), ("id", run_id)],
        )
    };
    let migrations_dir = state_dir.join("migrations");
    let given = Path::new(run_id);
    if given.is_absolute() {
        // A run's folder (an agent runs several migrations' runs at once, and their ids may
        // be the same): it must be a paused run of this state directory.
        let ok = given.parent().and_then(Path::parent).and_then(Path::parent)
            == Some(migrations_dir.as_path())
            && given.parent().and_then(Path::file_name) == Some(std::ffi::OsStr::new("runs"))
            && given.join(PAUSED_FILE).exists();
        return if ok {
            Ok(given.to_path_buf())
        } else {
            Err(not_found())
        };
    }
    if run_id.is_empty() || run_id.contains(['/', '\\']) || run_id.starts_with('.') {
        return Err(not_found());
    }
    let migrations = fs::read_dir(&migrations_dir).map_err(|_| not_found())?;
    for m in migrations.flatten() {
        let dir = m.path().join("runs").join(run_id);
        if dir.join(PAUSED_FILE).exists() {
            return Ok(dir);
        }
    }
    Err(not_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_a_paused_run_is_found_by_its_folder_when_two_migrations_share_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let open = |include: &str| {
            Migration::open(
                dir.path(),
                &Location::Local("/src".into()),
                None,
                &[include.to_string()],
            )
            .unwrap()
        };
        let (a, b) = (open("a/**"), open("b/**"));
        let (ra, rb) = (a.new_run("sync").unwrap(), b.new_run("sync").unwrap());
        for r in [&ra, &rb] {
            fs::write(r.dir.join(PAUSED_FILE), "9080").unwrap();
        }
        let shown = |p: &Path| p.display().to_string();
        assert_eq!(
            find_paused_run(dir.path(), &shown(&rb.dir)).unwrap(),
            rb.dir
        );
        assert_eq!(
            find_paused_run(dir.path(), &shown(&ra.dir)).unwrap(),
            ra.dir
        );
        // Only a paused run's folder of this state directory.
        let elsewhere = tempfile::tempdir().unwrap();
        assert!(find_paused_run(dir.path(), &shown(elsewhere.path())).is_err());
        fs::remove_file(rb.dir.join(PAUSED_FILE)).unwrap();
        assert!(find_paused_run(dir.path(), &shown(&rb.dir)).is_err());
    }

    #[test]
    fn regression_runs_started_in_the_same_second_get_folders_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let m = Migration::open(dir.path(), &Location::Local("/src".into()), None, &[]).unwrap();
        let runs: Vec<Run> = (0..3).map(|_| m.new_run("copy").unwrap()).collect();
        assert_ne!(runs[0].id, runs[1].id);
        assert_ne!(runs[1].id, runs[2].id);
        assert!(runs.iter().all(|r| r.dir.is_dir()));
    }
}

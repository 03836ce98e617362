//! The one entry point: run any command from its spec and a control handle, and return the
//! run's report. The command line and the agent both call [`run`]; neither opens an index, a
//! copy log or a run folder itself. Every run that got a folder ends with its `summary.json`
//! and `copylog.jsonl` written here, and its end status decided by [`Summary::end`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use godwit_codes::{Code, State};
use godwit_spec::{CommandKind, JobOptions, Location, MaxDelete, SanitizeMode, StoreKind};

use crate::backend::Side;
use crate::backup::{BACKUP_FILE, Backup};
use crate::ctx::{CopyOptions, CopyOutcome, Progress};
use crate::error::{JobError, reason};
use crate::index::Index;
use crate::profile::TargetProfile;
use crate::record::{CopyLog, DELETES_FILE, Summary, TrueUp, WouldCopy};
use crate::scan::{ScanOptions, ScanReport};
use crate::state::{CONFIRMED_FILE, JOB_FILE, JobSides, Migration, PAUSED_FILE, Run};
use crate::sync::{DeleteOutcome, apply_deletes, guard};

/// The commands this engine runs. An agent reports them to its control plane, which refuses
/// the others before queueing them. Every one of them has its arm in [`run`].
pub const SUPPORTED: &[CommandKind] = CommandKind::RUNNABLE;

/// What to run.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub command: CommandKind,
    pub source: Location,
    /// Every command but scan and sanitize writes to a target.
    pub target: Option<Location>,
    pub options: JobOptions,
    /// A true-up's paused run whose reviewed deletions are carried out: the run to confirm
    /// (`confirm`), or the list a `sync` carries out instead of pausing (`--confirm-deletes`).
    pub reviewed_run: Option<String>,
    /// godwit's state directory: migrations, their indexes and run folders.
    pub state_dir: PathBuf,
}

impl JobSpec {
    /// Carrying out the reviewed deletions of the paused true-up `run_id`: its source and
    /// target come from that run's own record (`job.json`), not from the caller.
    pub fn confirm(state_dir: PathBuf, run_id: &str) -> JobSpec {
        JobSpec {
            command: CommandKind::Confirm,
            source: Location::Local(PathBuf::new()),
            target: None,
            options: JobOptions::default(),
            reviewed_run: Some(run_id.to_string()),
            state_dir,
        }
    }
}

/// How a caller steers a run and watches it.
#[derive(Debug, Default)]
pub struct Control {
    stop: AtomicBool,
    /// Live counters, updated as files are found and finished.
    pub progress: Progress,
    /// The run's folder, once it has one: a caller that must find the run again after a crash
    /// (the agent, for its copy log) notes it as soon as it is set.
    started: std::sync::OnceLock<PathBuf>,
}

impl Control {
    /// Asks the run to stop: files in flight finish, nothing new starts, and the run resumes
    /// where it stopped when started again.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The run's folder, once the run has one.
    pub fn run_dir(&self) -> Option<&Path> {
        self.started.get().map(PathBuf::as_path)
    }

    fn started(&self, run: &Run) {
        let _ = self.started.set(run.dir.clone());
    }

    /// The flag itself, for a signal handler.
    pub fn stop_flag(&self) -> &AtomicBool {
        &self.stop
    }
}

/// How a run went: its summary (also in the run folder's `summary.json`) and, for a scan, the
/// full report (also in `scan.json`).
#[derive(Debug, Clone)]
pub struct JobReport {
    pub summary: Summary,
    pub scan: Option<ScanReport>,
}

impl JobReport {
    pub fn state(&self) -> State {
        self.summary.state
    }

    /// The run's folder.
    pub fn run_dir(&self) -> &Path {
        Path::new(&self.summary.run_dir)
    }
}

/// Runs `spec`. An error here means the run could not start (a bad location, a migration
/// locked by another process, no room for a run folder); once a run has a folder, what goes
/// wrong is in its report.
pub fn run(spec: &JobSpec, control: &Control) -> Result<JobReport, JobError> {
    // `run` and `migration` are filled in when the run has its folder (Migration::new_run).
    let span = tracing::info_span!(
        "job",
        command = spec.command.as_str(),
        run = tracing::field::Empty,
        migration = tracing::field::Empty
    );
    let _span = span.enter();
    tracing::info!(
        command = spec.command.as_str(),
        source = %spec.source,
        target = %spec.target.as_ref().map(ToString::to_string).unwrap_or_default(),
        "job starting"
    );
    let result = run_command(spec, control);
    match &result {
        Ok(r) => tracing::info!(
            command = spec.command.as_str(),
            state = ?r.state(),
            status = r.summary.status.code.id(),
            run_dir = %r.summary.run_dir,
            "job ended"
        ),
        Err(e) => tracing::warn!(
            command = spec.command.as_str(),
            code = e.code.id(),
            "job refused: {}",
            e.message
        ),
    }
    result
}

fn run_command(spec: &JobSpec, control: &Control) -> Result<JobReport, JobError> {
    match spec.command {
        CommandKind::Scan => scan_job(spec, control),
        CommandKind::Copy | CommandKind::Sync | CommandKind::EmptyFolders => {
            transfer_job(spec, control)
        }
        CommandKind::Confirm => confirm_job(spec, control),
        CommandKind::Sanitize => sanitize_job(spec, control),
        CommandKind::Verify => verify_job(spec, control),
        CommandKind::Undo => undo_job(spec, control),
        CommandKind::SpeedTest => speed_test_job(spec, control),
        CommandKind::Permissions | CommandKind::SimulatePermissions => {
            permissions_job(spec, control)
        }
        CommandKind::SimulateScan => simulate_scan_job(spec, control),
        CommandKind::Finalize => finalize_job(spec, control),
        CommandKind::Validate => validate_job(spec, control),
    }
}

/// `validate`: what would stop the migration, each finding with its code (see
/// `validate.rs`); any finding ends it FAILED with 9140.
fn validate_job(spec: &JobSpec, control: &Control) -> Result<JobReport, JobError> {
    let o = &spec.options;
    let target_location = target_of(spec)?;
    let source = Side::open(&spec.source, "source")?;
    let target = Side::open(target_location, "target")?;
    let scan = scan_options(o, target.kind())?;
    let limits = job_limits(o);
    let migration = open_migration(spec, Some(target_location))?;
    let run = migration.new_run(spec.command.as_str())?;
    control.started(&run);
    write_sides(&run, &spec.source, target_location, o);
    let mut summary = Summary::start(
        spec.command,
        &migration.id,
        &run,
        spec.source.to_string(),
        Some(target_location.to_string()),
    );
    let v = crate::validate::validate(
        &source,
        &target,
        &scan,
        limits,
        &run.id,
        control.stop_flag(),
        &control.progress.files_seen,
    );
    summary.files = v.files;
    summary.bytes = v.bytes;
    let error = (!v.findings.is_empty()).then(|| {
        let codes: Vec<&str> = v.findings.iter().map(|f| f.code.as_str()).collect();
        JobError::new(
            Code::VALIDATE_COMMAND_ERROR,
            &[(
                "reason",
                &format!(
                    "{} findings ({}); the summary's validation lists each with what to do",
                    v.findings.len(),
                    codes.join(", ")
                ),
            )],
        )
    });
    summary.validation = Some(v);
    summary.end(error.as_ref(), control.is_stopped(), false);
    finish(summary, &run, None)
}

/// `finalize`: the migration is closed after its cut-over; its index and the working files of
/// its runs go (summaries, copy logs and reports stay), and later commands on it are refused
/// (AZSM1048). Finalizing again finds it finalized and changes nothing more.
fn finalize_job(spec: &JobSpec, control: &Control) -> Result<JobReport, JobError> {
    let target_location = target_of(spec)?;
    let migration = Migration::open_even_finalized(
        &spec.state_dir,
        &spec.source,
        Some(target_location),
        &spec.options.filters.include,
    )?;
    let run = migration.new_run(spec.command.as_str())?;
    control.started(&run);
    write_sides(&run, &spec.source, target_location, &spec.options);
    let mut summary = Summary::start(
        spec.command,
        &migration.id,
        &run,
        spec.source.to_string(),
        Some(target_location.to_string()),
    );
    let error = match migration.finalize(&run) {
        Ok(done) => {
            summary.finalized = Some(done);
            None
        }
        Err(e) => Some(e),
    };
    summary.end(error.as_ref(), false, false);
    finish(summary, &run, None)
}

/// `simulate-scan`: one walk of the source into a folder tree, and the jobs it proposes under
/// the job limits (see `plan.rs`). A folder too large to split ends it with 9130; a stop ends
/// it FAILED with AZSM1045 (the seed has no stopped status for it), to be run again.
fn simulate_scan_job(spec: &JobSpec, control: &Control) -> Result<JobReport, JobError> {
    let o = &spec.options;
    let source = Side::open(&spec.source, "source")?;
    let options = crate::plan::PlanOptions {
        limits: job_limits(o),
        filter: crate::filter::Filter::new(&o.filters)?,
        follow_links: o.links == godwit_spec::Links::Follow,
    };
    if options.limits.files == 0 || options.limits.bytes == 0 {
        return Err(JobError::config(
            "the job limits must be at least 1 file and 1 byte",
        ));
    }
    let migration = open_migration(spec, None)?;
    let run = migration.new_run(spec.command.as_str())?;
    control.started(&run);
    let mut summary = Summary::start(
        spec.command,
        &migration.id,
        &run,
        spec.source.to_string(),
        None,
    );
    let result = crate::plan::simulate_scan(
        &source,
        &options,
        &run.dir,
        control.stop_flag(),
        &control.progress.files_done,
    );
    let error = match result {
        _ if control.is_stopped() => Some(JobError::new(Code::AZSM1045, &[("job_id", &run.id)])),
        Ok((report, too_large)) => {
            summary.files = report.files;
            summary.bytes = report.bytes;
            summary.plan = Some(report);
            too_large
        }
        Err(e) => Some(e),
    };
    summary.end(error.as_ref(), false, false);
    finish(summary, &run, None)
}

/// The migration `spec` runs on: its source, `target`, and its include rules (a plan's job is a
/// migration of its own).
fn open_migration(spec: &JobSpec, target: Option<&Location>) -> Result<Migration, JobError> {
    Migration::open(
        &spec.state_dir,
        &spec.source,
        target,
        &spec.options.filters.include,
    )
}

/// `location` with a local path made absolute, since a migration is found by its locations
/// whatever folder the command runs in.
pub fn absolute(location: Location) -> Location {
    match location {
        Location::Local(p) => Location::Local(std::path::absolute(&p).unwrap_or(p)),
        other => other,
    }
}

fn target_of(spec: &JobSpec) -> Result<&Location, JobError> {
    spec.target.as_ref().ok_or_else(|| {
        JobError::new(
            Code::MIGRATION_INVALID_DESTINATION_PATH_ERROR,
            &[
                ("path", ""),
                ("reason", &format!("{} needs a target", spec.command)),
            ],
        )
    })
}

/// Records the sides of a run in its folder, for `godwit confirm`.
fn write_sides(run: &Run, source: &Location, target: &Location, o: &JobOptions) {
    let sides = JobSides {
        source: source.to_string(),
        target: target.to_string(),
        compare_target: o.compare == godwit_spec::Compare::Target,
        backup_dir: o.backup_dir.clone(),
        include: o.filters.include.clone(),
    };
    let _ = std::fs::write(
        run.dir.join(JOB_FILE),
        serde_json::to_string_pretty(&sides).unwrap_or_default(),
    );
}

/// The reviewed run `id` of `migration`: its folder, if it paused for review.
fn reviewed_dir(spec: &JobSpec, migration: &Migration, id: &str) -> Result<PathBuf, JobError> {
    let dir = crate::state::find_paused_run(&spec.state_dir, id)?;
    if !dir.starts_with(&migration.dir) {
        return Err(JobError::config(&format!(
            "run {id} belongs to another migration; confirm it with `godwit confirm {id}`"
        )));
    }
    Ok(dir)
}

/// copy, sync and empty-folders: the transfer pool, then for a true-up its deletions.
fn transfer_job(spec: &JobSpec, control: &Control) -> Result<JobReport, JobError> {
    let target_location = target_of(spec)?;
    let source = Side::open(&spec.source, "source")?;
    let target = Side::open(target_location, "target")?;
    let mut options = CopyOptions::plan(spec.command, &spec.options, target.kind())?;
    if options.metadata.is_some() {
        // Refused before the run starts: permissions are read from a local source, and set
        // where the target can hold them.
        if !matches!(source, Side::Local(_)) {
            return Err(JobError::config(
                "--metadata carries permissions read from a local or mounted folder; this \
                 source is a remote store",
            ));
        }
        crate::perms::PermsTarget::check(&target)?;
    }
    options.estimate =
        crate::precheck::last_scan(&spec.state_dir, &spec.source, &spec.options.filters.include);
    let migration = open_migration(spec, Some(target_location))?;
    let reviewed = match &spec.reviewed_run {
        Some(id) if spec.command == CommandKind::Sync => {
            Some((id.clone(), reviewed_dir(spec, &migration, id)?))
        }
        _ => None,
    };
    // Checked before the run starts: a backup folder the run could not use refuses it.
    let backup = match &spec.options.backup_dir {
        Some(dir) if !options.dry_run => Some(Backup::plan(target_location, dir)?),
        _ => None,
    };
    let run = migration.new_run(spec.command.as_str())?;
    control.started(&run);
    write_sides(&run, &spec.source, target_location, &spec.options);
    let stop = control.stop_flag();
    let mut summary = Summary::start(
        spec.command,
        &migration.id,
        &run,
        spec.source.to_string(),
        Some(target_location.to_string()),
    );
    if let Some(b) = backup {
        let b = std::sync::Arc::new(b.for_run(&run.id));
        note_backup(&run, &b, target_location, &spec.options)?;
        summary.backup = Some(b.shown.clone());
        options.backup = Some(b);
    }
    let mut outcome = crate::copy::copy(
        &source,
        &target,
        &migration,
        &run,
        &options,
        stop,
        &control.progress,
    )
    .unwrap_or_else(|e| CopyOutcome {
        job_error: Some(e),
        ..CopyOutcome::default()
    });
    if spec.command == CommandKind::EmptyFolders
        && let Some(e) = outcome.job_error.take()
    {
        // The walk failed: say so with the command's own code, keeping the cause.
        outcome.job_error = Some(JobError::new(
            Code::EMPTY_FOLDER_INVALID_SCAN_RESULT_ERROR,
            &[("reason", &format!("{} ({})", e.message, e.code.id()))],
        ));
    }
    absorb(&mut summary, &outcome, options.dry_run);
    let mut paused = None;
    if spec.command == CommandKind::Sync && outcome.job_error.is_none() && !outcome.stopped {
        let sides = (&source, &target, &migration, &run);
        let backup = options.backup.as_deref();
        let t = true_up(spec, sides, backup, &outcome, reviewed.as_ref(), stop);
        match t {
            Ok(TrueUpEnd::Paused(t, e)) => {
                summary.true_up = Some(t);
                paused = Some(e);
            }
            Ok(TrueUpEnd::Done(t, d)) => {
                d.count_into(&mut summary);
                outcome.stopped |= d.stopped;
                summary.true_up = Some(t);
            }
            Err(e) => outcome.job_error = Some(e),
        }
    }
    // Data copied, permissions not all set (`--metadata`): the run says so, after its
    // deletions (those files are not failures to copy).
    let count = |c: Code| summary.counts.get(&c).copied().unwrap_or(0);
    let permissions = permissions_error(
        count(Code::PERMISSION_TRANSLATION_ERROR),
        count(Code::PERMISSION_APPLY_FAILURE),
    );
    let error = paused
        .as_ref()
        .or(outcome.job_error.as_ref())
        .or(permissions.as_ref());
    summary.end(error, outcome.stopped, paused.is_some());
    finish(summary, &run, None)
}

/// Adds what the transfer pool did to the summary.
fn absorb(summary: &mut Summary, o: &CopyOutcome, dry_run: bool) {
    summary.counts = o.counts.clone();
    summary.files = o.files;
    summary.bytes = o.bytes;
    summary.bytes_copied = o.bytes_copied;
    summary.empty_dirs_made = o.empty_dirs;
    summary.uploads_aborted = o.uploads.aborted;
    summary.uploads_open = o.uploads.others;
    summary.metadata_not_carried = o.metadata_not_carried.clone();
    summary.dry_run = dry_run.then_some(WouldCopy {
        files: o.would_copy.0,
        bytes: o.would_copy.1,
    });
}

/// Writes the summary into the run folder and returns the report. The copy log exists for
/// every run, even one that records no file.
fn finish(summary: Summary, run: &Run, scan: Option<ScanReport>) -> Result<JobReport, JobError> {
    let log = run.dir.join("copylog.jsonl");
    if !log.exists() {
        CopyLog::create(run)?.finish(run)?;
    }
    summary.write(run)?;
    Ok(JobReport { summary, scan })
}

/// How a true-up's deletions ended.
enum TrueUpEnd {
    /// Paused before deleting anything, for review (9080/9090/9100).
    Paused(TrueUp, JobError),
    Done(TrueUp, DeleteOutcome),
}

/// What a true-up does after its copy: nothing more without deletes on; else pause when a
/// guard says so, or carry out the list (the reviewed run's, when one is given).
fn true_up(
    spec: &JobSpec,
    (source, target, migration, run): (&Side, &Side, &Migration, &Run),
    backup: Option<&Backup>,
    outcome: &CopyOutcome,
    reviewed: Option<&(String, PathBuf)>,
    stop: &AtomicBool,
) -> Result<TrueUpEnd, JobError> {
    let o = &spec.options;
    let max_delete = o.max_delete.unwrap_or(MaxDelete::Default);
    let mut t = TrueUp {
        gone_from_source: outcome.deletes_found,
        unreadable: outcome.unreadable,
        delete: o.sync_deletes,
        max_delete: max_delete.limit(outcome.index_files),
        ..TrueUp::default()
    };
    if !o.sync_deletes || o.dry_run {
        return Ok(TrueUpEnd::Done(t, DeleteOutcome::default()));
    }
    if reviewed.is_none()
        && let Some(e) = guard(t.gone_from_source, t.max_delete, t.unreadable)
    {
        let _ = std::fs::write(run.dir.join(PAUSED_FILE), &e.message);
        t.review = Some(run.dir.join(DELETES_FILE).display().to_string());
        return Ok(TrueUpEnd::Paused(t, e));
    }
    let list = match reviewed {
        Some((_, dir)) => dir.join(DELETES_FILE),
        None => run.dir.join(DELETES_FILE),
    };
    let compare_target = o.compare == godwit_spec::Compare::Target;
    let d = delete_listed(
        (source, target, backup),
        migration,
        run,
        &list,
        compare_target,
        stop,
    )?;
    t.deleted = d.deleted;
    t.kept = d.kept;
    t.delete_failed = d.failed;
    if let Some((id, dir)) = reviewed
        && !d.stopped
    {
        let _ = std::fs::write(dir.join(CONFIRMED_FILE), &run.id);
        t.confirmed_run = Some(id.clone());
    }
    Ok(TrueUpEnd::Done(t, d))
}

/// Carries out the list at `list` for this migration, recording into the run's copy log.
fn delete_listed(
    (source, target, backup): (&Side, &Side, Option<&Backup>),
    migration: &Migration,
    run: &Run,
    list: &Path,
    from_listing: bool,
    stop: &AtomicBool,
) -> Result<DeleteOutcome, JobError> {
    let index = Index::open(&migration.dir.join("index.redb"))?;
    let mut log = CopyLog::append(run)?;
    let outcome = apply_deletes(
        source,
        target,
        backup,
        &index,
        list,
        from_listing,
        run,
        &mut log,
        stop,
    );
    log.finish(run)?;
    outcome
}

/// `confirm`: the reviewed deletions of a paused true-up, exactly that list, each file checked
/// again at the source first.
fn confirm_job(spec: &JobSpec, control: &Control) -> Result<JobReport, JobError> {
    let id = spec.reviewed_run.as_deref().unwrap_or_default();
    let reviewed = crate::state::find_paused_run(&spec.state_dir, id)?;
    let sides: JobSides = std::fs::read(reviewed.join(JOB_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            JobError::new(
                Code::DB_ERR_GET_DOC_NOT_FOUND,
                &[
                    (
                        "kind",
                        "record of the paused run's source and target (job.json)",
                    ),
                    ("id", id),
                ],
            )
        })?;
    let (src_location, dst_location) = (
        Location::parse(&sides.source)?,
        Location::parse(&sides.target)?,
    );
    let source = Side::open(&src_location, "source")?;
    let target = Side::open(&dst_location, "target")?;
    let migration = Migration::open(
        &spec.state_dir,
        &src_location,
        Some(&dst_location),
        &sides.include,
    )?;
    // The paused run's backup folder, if it had one: its deletions are kept there too.
    let backup = sides
        .backup_dir
        .as_deref()
        .map(|dir| Backup::plan(&dst_location, dir))
        .transpose()?;
    let run = migration.new_run("confirm")?;
    control.started(&run);
    let mut options = JobOptions {
        backup_dir: sides.backup_dir.clone(),
        ..spec.options.clone()
    };
    options.filters.include = sides.include.clone();
    write_sides(&run, &src_location, &dst_location, &options);
    let mut summary = Summary::start(
        CommandKind::Confirm,
        &migration.id,
        &run,
        sides.source.clone(),
        Some(sides.target.clone()),
    );
    let backup = match backup {
        Some(b) => {
            let b = b.for_run(&run.id);
            note_backup(&run, &b, &dst_location, &options)?;
            summary.backup = Some(b.shown.clone());
            Some(b)
        }
        None => None,
    };
    let mut t = TrueUp {
        delete: true,
        confirmed_run: Some(id.to_string()),
        ..TrueUp::default()
    };
    let list = reviewed.join(DELETES_FILE);
    let stop = control.stop_flag();
    let result = delete_listed(
        (&source, &target, backup.as_ref()),
        &migration,
        &run,
        &list,
        sides.compare_target,
        stop,
    );
    let (error, stopped) = match result {
        Ok(d) => {
            (t.deleted, t.kept, t.delete_failed) = (d.deleted, d.kept, d.failed);
            d.count_into(&mut summary);
            if !d.stopped {
                let _ = std::fs::write(reviewed.join(CONFIRMED_FILE), &run.id);
            }
            (None, d.stopped)
        }
        Err(e) => (Some(e), false),
    };
    summary.true_up = Some(t);
    summary.end(error.as_ref(), stopped, false);
    finish(summary, &run, None)
}

/// Records in the run's folder where it keeps what it deletes or replaces, for `undo`.
fn note_backup(
    run: &Run,
    backup: &Backup,
    target: &Location,
    o: &JobOptions,
) -> Result<(), JobError> {
    let place = backup.place(o.backup_dir.as_deref().unwrap_or_default(), target);
    let path = run.dir.join(BACKUP_FILE);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&place).unwrap_or_default(),
    )
    .map_err(|e| {
        let shown = path.display().to_string();
        JobError::new(
            Code::SCAN_REPORT_FOLDER_ERROR,
            &[("path", &shown), ("reason", &reason(&e))],
        )
    })
}

/// `undo`: what the run `undo_run` deleted or replaced at the target with a backup folder,
/// moved back from that folder. Its source and target come from that run's own record; given
/// a target (an agent runs it for a migration), the run must be that migration's.
fn undo_job(spec: &JobSpec, control: &Control) -> Result<JobReport, JobError> {
    let id = spec.options.undo_run.as_deref().ok_or_else(|| {
        JobError::config("undo needs the run whose deletions and replacements to put back")
    })?;
    let undone = crate::history::find_run(&spec.state_dir, id)?;
    let read = |name: &str| std::fs::read(undone.join(name)).ok();
    let sides: Option<JobSides> = read(JOB_FILE).and_then(|b| serde_json::from_slice(&b).ok());
    let place: Option<crate::backup::BackupPlace> =
        read(BACKUP_FILE).and_then(|b| serde_json::from_slice(&b).ok());
    let (Some(sides), Some(place)) = (sides, place) else {
        return Err(JobError::config(&format!(
            "run {id} kept nothing to put back: only a copy or true-up run with --backup-dir \
             (or a confirmation of one) can be undone"
        )));
    };
    let (src_location, dst_location) = (
        Location::parse(&sides.source)?,
        Location::parse(&sides.target)?,
    );
    let migration = Migration::open(
        &spec.state_dir,
        &src_location,
        Some(&dst_location),
        &sides.include,
    )?;
    if spec.target.is_some() && spec.target.as_ref() != Some(&dst_location) {
        return Err(JobError::config(&format!(
            "run {id} belongs to another migration (to {dst_location})"
        )));
    }
    let backup = Backup::plan(&dst_location, &place.backup_dir)?.for_run(id);
    let target = Side::open(&dst_location, "target")?;
    let run = migration.new_run("undo")?;
    control.started(&run);
    let mut options = spec.options.clone();
    options.filters.include = sides.include.clone();
    write_sides(&run, &src_location, &dst_location, &options);
    let mut summary = Summary::start(
        CommandKind::Undo,
        &migration.id,
        &run,
        sides.source.clone(),
        Some(sides.target.clone()),
    );
    summary.backup = Some(backup.shown.clone());
    let index = Index::open(&migration.dir.join("index.redb"))?;
    let rt = match (&target, backup.remote()) {
        (Side::Local(_), false) => None,
        _ => Some(crate::store::runtime(&run.id)?),
    };
    let mut log = CopyLog::create(&run)?;
    let result = crate::undo::undo(
        &undone,
        &backup,
        &target,
        &index,
        rt.as_ref(),
        &run,
        &mut log,
        control.stop_flag(),
    );
    log.finish(&run)?;
    let (error, stopped) = match result {
        Ok(u) => {
            summary.count(Code::AZSM2047, u.restored);
            summary.count(Code::AZSM2079, u.failed);
            (None, u.stopped)
        }
        Err(e) => (Some(e), false),
    };
    summary.end(error.as_ref(), stopped, false);
    finish(summary, &run, None)
}

/// `permissions` and `simulate-permissions`: the owner, group, mode, ACLs, extended attributes
/// and times of every path of the source set on the same path at the target (simulated: only
/// reported), through the owner map, from a local or mounted source to any kind of target.
fn permissions_job(spec: &JobSpec, control: &Control) -> Result<JobReport, JobError> {
    let o = &spec.options;
    let target_location = target_of(spec)?;
    let Location::Local(src) = &spec.source else {
        return Err(JobError::config(
            "permissions are read from a local or mounted folder (and carried to a folder, an \
             SFTP server, S3 or Azure Blob)",
        ));
    };
    let target = Side::open(target_location, "target")?;
    let rt = match &target {
        Side::Remote(_) => Some(crate::store::runtime("permissions")?),
        Side::Local(_) => None,
    };
    let dst = crate::perms::PermsTarget::open(&target, rt.as_ref())?;
    let carried = crate::ctx::metadata_options(o)?;
    let mut options = crate::perms::PermsOptions {
        what: carried.what,
        map: carried.map,
        simulate: spec.command == CommandKind::SimulatePermissions,
        filter: crate::filter::Filter::new(&o.filters)?,
        simulation: None,
    };
    let migration = open_migration(spec, Some(target_location)).map_err(|e| {
        if e.code == Code::MIGRATION_LOCK_ERROR {
            let id = crate::state::migration_id(
                &spec.source,
                Some(target_location),
                &spec.options.filters.include,
            );
            JobError::new(
                Code::PERMISSION_MIGRATION_IN_PROGRESS,
                &[("migration_id", &id)],
            )
        } else {
            e
        }
    })?;
    let index = existing_index(&migration)?;
    options.simulation = Some(migration.dir.join(crate::perms::SIMULATION_FILE));
    let run = migration.new_run(spec.command.as_str())?;
    control.started(&run);
    write_sides(&run, &spec.source, target_location, o);
    let mut summary = Summary::start(
        spec.command,
        &migration.id,
        &run,
        spec.source.to_string(),
        Some(target_location.to_string()),
    );
    let mut log = CopyLog::create(&run)?;
    let result = crate::perms::carry(
        src,
        &dst,
        index.as_ref(),
        &options,
        &run,
        &mut log,
        control.stop_flag(),
        &control.progress.files_done,
    );
    log.finish(&run)?;
    let error = match result {
        Ok(t) => {
            summary.count(Code::AZSM0000, t.applied + t.folders_not_held);
            summary.count(Code::PERMISSION_TRANSLATION_ERROR, t.untranslatable);
            summary.count(Code::PERMISSION_APPLY_FAILURE, t.failed);
            summary.count(Code::AZSM2063, t.unreadable);
            let error = permissions_error(t.untranslatable, t.failed);
            summary.permissions = Some(t);
            error
        }
        Err(e) => Some(e),
    };
    summary.end(error.as_ref(), control.is_stopped(), false);
    finish(summary, &run, None)
}

/// The error a run ends with when permissions of some paths were not set: 7020 when the owner
/// map does not name a principal, else 7030 when the target refused.
fn permissions_error(untranslatable: u64, failed: u64) -> Option<JobError> {
    let paths = |n: u64| format!("{n} paths");
    if untranslatable > 0 {
        Some(JobError::new(
            Code::PERMISSION_TRANSLATION_ERROR,
            &[
                ("path", &paths(untranslatable)),
                (
                    "reason",
                    "their owners or groups are not in the owner map; the copy log lists each",
                ),
            ],
        ))
    } else if failed > 0 {
        Some(JobError::new(
            Code::PERMISSION_APPLY_FAILURE,
            &[
                ("path", &paths(failed)),
                ("reason", "the copy log lists each with the reason"),
            ],
        ))
    } else {
        None
    }
}

/// The migration's index, when it has one (a verification or a permissions run before any
/// copy has none, and makes none).
fn existing_index(migration: &Migration) -> Result<Option<Index>, JobError> {
    let path = migration.dir.join("index.redb");
    path.exists().then(|| Index::open(&path)).transpose()
}

/// `verify`: the whole target against the whole source, file by file, writing nothing to
/// either side. Differences end the run FAILED with AZSM1047 (the command line exits 3); a run
/// that found none SUCCEEDED.
fn verify_job(spec: &JobSpec, control: &Control) -> Result<JobReport, JobError> {
    let o = &spec.options;
    let target_location = target_of(spec)?;
    let source = Side::open(&spec.source, "source")?;
    let target = Side::open(target_location, "target")?;
    let migration = open_migration(spec, Some(target_location))?;
    let index = existing_index(&migration)?;
    if o.use_index && index.is_none() {
        return Err(JobError::config(
            "--use-index: godwit has copied nothing from this source to this target with this \
             state directory, so there is no index to trust; verify without --use-index",
        ));
    }
    let options = crate::verify::VerifyOptions {
        filter: crate::filter::Filter::new(&o.filters)?,
        checksum: o.checksum,
        use_index: o.use_index,
        follow_links: o.links == godwit_spec::Links::Follow,
        workers: o.transfers_for(target.kind()),
    };
    let run = migration.new_run("verify")?;
    control.started(&run);
    write_sides(&run, &spec.source, target_location, o);
    let mut summary = Summary::start(
        CommandKind::Verify,
        &migration.id,
        &run,
        spec.source.to_string(),
        Some(target_location.to_string()),
    );
    let rt = Side::runtime_for(&source, &target, false, &run.id)?;
    let result = crate::verify::verify(
        &source,
        &target,
        index.as_ref(),
        &run,
        &options,
        rt.as_ref(),
        control.stop_flag(),
        &control.progress,
    );
    let (error, stopped) = match result {
        Ok(v) => {
            summary.files = v.files;
            summary.bytes = v.bytes;
            let t = &v.tally;
            for (code, n) in [
                (Code::AZSM2045, t.same),
                (Code::AZSM2074, t.differ),
                (Code::AZSM2075, t.missing),
                (Code::AZSM2076, t.extra),
                (Code::AZSM2077, t.unreadable),
            ] {
                if n > 0 {
                    summary.counts.insert(code, n);
                }
            }
            let differences = t.differences();
            let error = (differences > 0 && !v.stopped).then(|| {
                JobError::new(
                    Code::AZSM1047,
                    &[
                        ("differences", &differences.to_string()),
                        ("files", &v.files.to_string()),
                    ],
                )
            });
            summary.verify = Some(v.tally);
            (error, v.stopped)
        }
        Err(e) => (Some(e), false),
    };
    summary.end(error.as_ref(), stopped, false);
    finish(summary, &run, None)
}

/// `speed-test`: files written to the target, read back and deleted, with the speeds of each,
/// and an estimate of the copy of the source's scan. Out of time (`max_time`) it cleans up and
/// fails with 6090, keeping what it measured.
fn speed_test_job(spec: &JobSpec, control: &Control) -> Result<JobReport, JobError> {
    let o = &spec.options;
    let target_location = target_of(spec)?;
    let target = Side::open(target_location, "target")?;
    let max_time = o
        .max_time
        .as_deref()
        .map(|t| {
            humantime::parse_duration(t)
                .map_err(|e| JobError::config(&format!("--max-time {t}: {e} (write 90s, 5m)")))
        })
        .transpose()?;
    let scanned = match &o.from_scan {
        Some(id) => {
            let dir = crate::history::find_run(&spec.state_dir, id)?;
            Some(crate::precheck::scan_in(&dir).ok_or_else(|| {
                JobError::config(&format!(
                    "--from-scan {id}: that run is not a scan that ended with its report"
                ))
            })?)
        }
        None => {
            crate::precheck::last_scan(&spec.state_dir, &spec.source, &spec.options.filters.include)
        }
    };
    let migration = open_migration(spec, Some(target_location))?;
    let run = migration.new_run("speed-test")?;
    control.started(&run);
    let mut summary = Summary::start(
        CommandKind::SpeedTest,
        &migration.id,
        &run,
        spec.source.to_string(),
        Some(target_location.to_string()),
    );
    let rt = match &target {
        Side::Local(_) => None,
        Side::Remote(_) => Some(crate::store::runtime(&run.id)?),
    };
    let options = crate::speedtest::SpeedOptions {
        workers: o.transfers_for(target.kind()),
        max_time,
        ..crate::speedtest::SpeedOptions::default()
    };
    let outcome =
        crate::speedtest::speed_test(&target, rt.as_ref(), &run.id, &options, control.stop_flag());
    let (error, stopped) = match outcome {
        Ok(mut out) => {
            let r = &mut out.report;
            r.estimate = scanned.map(|(files, bytes)| crate::record::SpeedEstimate {
                files,
                bytes,
                seconds: (files as f64 / r.write_small.files_per_second.max(1e-9))
                    .max(bytes as f64 / r.write_large.bytes_per_second.max(1e-9)),
            });
            summary.files = r.write_small.files + r.write_large.files;
            summary.bytes = r.write_small.bytes + r.write_large.bytes;
            summary.bytes_copied = summary.bytes;
            let error = out.timed_out.then(|| {
                JobError::new(
                    Code::SPEED_TEST_TIMEOUT_ERROR,
                    &[("limit", o.max_time.as_deref().unwrap_or_default())],
                )
            });
            summary.speed_test = Some(out.report);
            (error, out.stopped)
        }
        Err(e) => (Some(e), false),
    };
    summary.end(error.as_ref(), stopped, false);
    finish(summary, &run, None)
}

/// `scan`: one walk of the source, an inventory on disk, and a report of what the target will
/// make of it, with the job's filters and the target's profile.
fn scan_job(spec: &JobSpec, control: &Control) -> Result<JobReport, JobError> {
    let o = &spec.options;
    let source = Side::open(&spec.source, "source")?;
    let target_kind = spec
        .target
        .as_ref()
        .map_or(StoreKind::Local, Location::kind);
    let options = scan_options(o, target_kind)?;
    let migration = open_migration(spec, None)?;
    let run = migration.new_run("scan")?;
    control.started(&run);
    let mut summary = Summary::start(
        CommandKind::Scan,
        &migration.id,
        &run,
        spec.source.to_string(),
        None,
    );
    let report = scan_into(&source, &options, &run, control);
    let (report, error) = match report {
        Ok(r) => {
            let error = r.job_error.as_ref().map(|e| JobError {
                code: e.code,
                message: e.message.clone().unwrap_or_default(),
            });
            (Some(r), error)
        }
        Err(e) => (None, Some(e)),
    };
    if let Some(r) = &report {
        // What a copy of this source would move: the figures the job limits are judged by.
        summary.files = r.files_to_migrate;
        summary.bytes = r.bytes_to_migrate;
        for (code, p) in &r.problems {
            *summary.counts.entry(*code).or_default() += p.count;
        }
        if r.excluded > 0 {
            summary.counts.insert(Code::AZSM2001, r.excluded);
        }
        let text = serde_json::to_string_pretty(r).unwrap_or_default();
        let _ = std::fs::write(run.dir.join("scan.json"), text + "\n");
    }
    summary.end(error.as_ref(), control.is_stopped(), false);
    finish(summary, &run, report)
}

/// How a scan (or a validation's scan) reads the source: the target's profile, the filters,
/// links, the folder entry limit (50,000 by default).
fn scan_options(o: &godwit_spec::JobOptions, target: StoreKind) -> Result<ScanOptions, JobError> {
    Ok(ScanOptions {
        profile: TargetProfile::chosen(o.target_profile, target),
        filter: crate::filter::Filter::new(&o.filters)?,
        links: o.links,
        max_folder_entries: o
            .max_folder_entries
            .map_or(50_000, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        threads: 2,
    })
}

/// The job limits of a simulated scan or a validation: the options', else the defaults.
fn job_limits(o: &godwit_spec::JobOptions) -> godwit_spec::split::Limits {
    let d = godwit_spec::split::Limits::DEFAULT;
    godwit_spec::split::Limits {
        files: o.job_max_files.unwrap_or(d.files),
        bytes: o.job_max_bytes.unwrap_or(d.bytes),
    }
}

/// Scans `source` with the inventory written into the run folder.
fn scan_into(
    source: &Side,
    options: &ScanOptions,
    run: &Run,
    control: &Control,
) -> Result<ScanReport, JobError> {
    let path = run.dir.join("inventory.jsonl");
    let file = std::fs::File::create(&path).map_err(|e| {
        let shown = path.display().to_string();
        JobError::new(
            Code::SCAN_REPORT_FOLDER_ERROR,
            &[("path", &shown), ("reason", &reason(&e))],
        )
    })?;
    let mut inventory = std::io::BufWriter::with_capacity(1 << 20, file);
    crate::scan::scan(
        source,
        options,
        Some(&mut inventory),
        control.stop_flag(),
        &control.progress.files_seen,
    )
}

/// `sanitize`: names the target profile refuses, renamed on a local source in place when the
/// options say `in-place` (and it is no dry run); otherwise only listed in `sanitize.csv`.
fn sanitize_job(spec: &JobSpec, control: &Control) -> Result<JobReport, JobError> {
    let Location::Local(root) = &spec.source else {
        return Err(JobError::config(
            "sanitize renames on a local source only; to rename at a remote target \
             while copying, use `copy --sanitize on-the-fly`",
        ));
    };
    let o = &spec.options;
    let target_kind = spec
        .target
        .as_ref()
        .map_or(StoreKind::Local, Location::kind);
    let profile = TargetProfile::chosen(o.target_profile, target_kind);
    let apply = o.sanitize == SanitizeMode::InPlace && !o.dry_run;
    let migration = open_migration(spec, None)?;
    let run = migration.new_run("sanitize")?;
    control.started(&run);
    let mut summary = Summary::start(
        CommandKind::Sanitize,
        &migration.id,
        &run,
        spec.source.to_string(),
        None,
    );
    let stop = control.stop_flag();
    let result = crate::sanitize::sanitize_in_place(root, &profile, &migration, &run, apply, stop);
    let error = match result {
        Ok(outcome) => {
            summary.count(Code::AZSM0000, outcome.renamed);
            summary.count(Code::SANITIZE_RENAME_ERROR, outcome.failed);
            if outcome.unreadable > 0 {
                // Folders, not files: counted by their code only.
                summary
                    .counts
                    .insert(Code::SANITIZE_INVALID_SCAN_RESULT_ERROR, outcome.unreadable);
            }
            None
        }
        Err(e) => Some(e),
    };
    // A dry run says how many names it would rename (they are in sanitize.csv).
    summary.dry_run = (!apply).then(|| WouldCopy {
        files: summary.counts.get(&Code::AZSM0000).copied().unwrap_or(0),
        bytes: 0,
    });
    summary.end(error.as_ref(), control.is_stopped(), false);
    finish(summary, &run, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the control plane is told an agent runs is exactly what `run` has a runner for.
    #[test]
    fn every_supported_command_has_a_runner_and_no_other_does() {
        let dir = tempfile::tempdir().unwrap();
        for command in CommandKind::ALL {
            let spec = JobSpec {
                command: *command,
                source: Location::Local(dir.path().join("no such source")),
                target: Some(Location::Local(dir.path().join("target"))),
                options: JobOptions::default(),
                reviewed_run: None,
                state_dir: dir.path().join("state"),
            };
            let result = run(&spec, &Control::default());
            let refused = matches!(&result, Err(e) if e.code == Code::INVALID_COMMAND_ERROR);
            assert_eq!(
                refused,
                !SUPPORTED.contains(command),
                "{command}: {result:?}"
            );
        }
    }
}

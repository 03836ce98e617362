//! `godwit copy SOURCE TARGET`

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use godwit_codes::{Code, Command, Kind, State};
use godwit_engine::index::Index;
use godwit_engine::run::{CodeRef, CopyLog, timestamp};
use godwit_engine::sync::{self, MaxDelete, TrueUp};
use godwit_engine::{
    CopyOptions, CopyOutcome, JobError, Migration, Progress, Summary, Verify, copy,
};

use crate::cli::{CopyArgs, EmptyFoldersArgs, SyncArgs};
use crate::commands::print;
use crate::commands::shared::{self, bytes, report};
use crate::exit::ExitStatus;

pub fn run(args: &CopyArgs) -> anyhow::Result<ExitStatus> {
    match transfer_command(args, None) {
        Ok(status) => Ok(status),
        Err(e) => Ok(report(&e)),
    }
}

/// `godwit sync`: a copy that also finds, and with `--delete` removes, what is gone.
pub fn run_sync(args: &SyncArgs) -> anyhow::Result<ExitStatus> {
    match transfer_command(&args.copy, Some(args)) {
        Ok(status) => Ok(status),
        Err(e) => Ok(report(&e)),
    }
}

/// `godwit empty-folders SOURCE TARGET`: only the empty folders.
pub fn run_empty_folders(args: &EmptyFoldersArgs) -> anyhow::Result<ExitStatus> {
    match empty_folders(args) {
        Ok(status) => Ok(status),
        Err(e) => Ok(report(&e)),
    }
}

fn empty_folders(args: &EmptyFoldersArgs) -> Result<ExitStatus, JobError> {
    let (src_location, source) = shared::side(&args.source, "source")?;
    let (dst_location, target) = shared::side(&args.target, "target")?;
    let options = CopyOptions {
        transfers: 8,
        filter: shared::filter(&args.filters)?,
        links: shared::links(&args.filters),
        profile: shared::profile(&args.filters, target.kind()),
        empty_dirs: true,
        folders_only: true,
        ..CopyOptions::default()
    };
    let migration = Migration::open(
        &shared::state_dir(&args.state),
        &src_location,
        Some(&dst_location),
    )?;
    let run = migration.new_run("empty-folders")?;
    let stop = shared::stop_on_ctrl_c();
    let started = Instant::now();
    let mut outcome = copy(
        &source,
        &target,
        &migration,
        &run,
        &options,
        &stop,
        &Progress::default(),
    )?;
    if let Some(e) = outcome.job_error.take() {
        // The walk failed: say so with the command's own code, keeping the cause.
        outcome.job_error = Some(JobError::new(
            Code::EMPTY_FOLDER_INVALID_SCAN_RESULT_ERROR,
            &[("reason", &format!("{} ({})", e.message, e.code.id()))],
        ));
    }
    let summary = summarise(
        Command::CreateEmptyFolders,
        &migration,
        &run,
        &args.source,
        &args.target,
        &outcome,
        started,
    );
    let written = summary.write(&run);
    if args.json {
        let _ = print(&(serde_json::to_string(&summary).unwrap_or_default() + "\n"));
    } else {
        let _ = print(&human(&summary, &outcome));
    }
    written?;
    finish_status(&outcome)
}

/// The engine options a copy or sync command line asks for.
fn copy_options(args: &CopyArgs, target_kind: &str) -> Result<CopyOptions, JobError> {
    Ok(CopyOptions {
        transfers: usize::from(args.transfers.unwrap_or(if target_kind == "local" {
            8
        } else {
            16
        })),
        checksum: args.checksum,
        verify: match args.verify.as_str() {
            "none" => Verify::None,
            "full" => Verify::Full,
            _ => Verify::Size,
        },
        filter: shared::filter(&args.filters)?,
        links: shared::links(&args.filters),
        profile: shared::profile(&args.filters, target_kind),
        dry_run: args.dry_run,
        compare_target: args.compare == "target",
        bwlimit: args
            .bwlimit
            .as_deref()
            .map(godwit_engine::rate::parse_rate)
            .transpose()?,
        find_deletes: false,
        empty_dirs: args.create_empty_dirs,
        sanitize: args.sanitize == "on-the-fly",
        log_excluded: args.log_excluded,
        folders_only: false,
        moves: false,
    })
}

fn transfer_command(args: &CopyArgs, sync: Option<&SyncArgs>) -> Result<ExitStatus, JobError> {
    let (src_location, source) = shared::side(&args.source, "source")?;
    let (dst_location, target) = shared::side(&args.target, "target")?;
    let mut options = copy_options(args, target.kind())?;
    options.find_deletes = sync.is_some();
    // Moves are followed at the target only when the target is to mirror the source.
    options.moves = sync.is_some_and(|s| s.delete) && !options.compare_target;
    let max_delete = sync
        .and_then(|s| s.max_delete.as_deref())
        .map(MaxDelete::parse)
        .transpose()?
        .unwrap_or(MaxDelete::Default);
    let state_dir = shared::state_dir(&args.state);
    let migration = Migration::open(&state_dir, &src_location, Some(&dst_location))?;
    // The reviewed run must be a paused run of this very migration.
    let reviewed = match sync.and_then(|s| s.confirm_deletes.as_deref()) {
        Some(id) => {
            let dir = sync::find_paused_run(&state_dir, id)?;
            if !dir.starts_with(&migration.dir) {
                return Err(JobError::new(
                    Code::INCORRECT_MIGRATION_CONFIG,
                    &[(
                        "reason",
                        &format!(
                            "run {id} belongs to another migration; confirm it with `godwit confirm {id}`"
                        ),
                    )],
                ));
            }
            Some((id.to_string(), dir))
        }
        None => None,
    };
    let run = migration.new_run(if sync.is_some() { "sync" } else { "copy" })?;
    let sides = sync::JobSides {
        source: src_location.to_string(),
        target: dst_location.to_string(),
        compare_target: options.compare_target,
    };
    let _ = std::fs::write(
        run.dir.join(sync::JOB_FILE),
        serde_json::to_string_pretty(&sides).unwrap_or_default(),
    );
    let stop = shared::stop_on_ctrl_c();
    let progress = Progress::default();
    let started = Instant::now();

    let (done, finished) = std::sync::mpsc::channel::<()>();
    let mut outcome = std::thread::scope(|s| {
        let progress = &progress;
        let reporter = s.spawn(move || show_progress(args.json, progress, &finished, started));
        let result = copy(
            &source, &target, &migration, &run, &options, &stop, progress,
        );
        drop(done);
        let _ = reporter.join();
        result
    })?;

    let mut paused = None;
    let mut true_up = None;
    if let Some(s) = sync
        && outcome.job_error.is_none()
        && !outcome.stopped
    {
        let mut t = TrueUp {
            gone_from_source: outcome.deletes_found,
            unreadable: outcome.unreadable,
            delete: s.delete,
            max_delete: max_delete.limit(outcome.index_files),
            ..TrueUp::default()
        };
        if s.delete && !args.dry_run {
            let guard = sync::guard(t.gone_from_source, t.max_delete, t.unreadable);
            match (&reviewed, guard) {
                (None, Some(e)) => {
                    let _ = std::fs::write(run.dir.join(sync::PAUSED_FILE), &e.message);
                    t.review = Some(run.dir.join(sync::DELETES_FILE).display().to_string());
                    paused = Some(e);
                }
                (reviewed, _) => {
                    let list = match reviewed {
                        Some((_, dir)) => dir.join(sync::DELETES_FILE),
                        None => run.dir.join(sync::DELETES_FILE),
                    };
                    let d =
                        delete_listed(&source, &target, &migration, &run, &list, &options, &stop);
                    match d {
                        Ok(d) => {
                            t.deleted = d.deleted;
                            t.kept = d.kept;
                            t.delete_failed = d.failed;
                            count(&mut outcome, Code::AZSM2043, d.deleted);
                            count(&mut outcome, Code::AZSM2072, d.failed);
                            outcome.stopped |= d.stopped;
                            if let Some((id, dir)) = reviewed
                                && !d.stopped
                            {
                                let _ = std::fs::write(dir.join(sync::CONFIRMED_FILE), &run.id);
                                t.confirmed_run = Some(id.clone());
                            }
                        }
                        Err(e) => outcome.job_error = Some(e),
                    }
                }
            }
        }
        true_up = Some(t);
    }

    let command = if sync.is_some() {
        Command::TrueUp
    } else {
        Command::MigrateData
    };
    let mut summary = summarise(
        command,
        &migration,
        &run,
        &args.source,
        &args.target,
        &outcome,
        started,
    );
    if let Some(e) = &paused {
        summary.status = CodeRef::new(end_status(command, false, false, true), None);
        summary.job_error = Some(CodeRef::new(e.code, Some(e.message.clone())));
    }
    summary.true_up = true_up;
    let written = summary.write(&run);
    if args.json {
        // One JSON object a line: progress lines, then the summary as the last line.
        let _ = print(&(serde_json::to_string(&summary).unwrap_or_default() + "\n"));
    } else {
        let _ = print(&human(&summary, &outcome));
    }
    written?;
    if let Some(e) = &paused {
        eprintln!(
            "paused[{}]: {}\n  Nothing was deleted. Review the list: {}{}\n  \
             Then carry it out with `godwit confirm {}`, or run again with a higher --max-delete.\n  \
             (godwit explain {} tells more)",
            e.code.id(),
            e.message,
            run.dir.join(sync::DELETES_FILE).display(),
            if outcome.unreadable > 0 {
                format!(
                    "\n  Source paths that could not be read: {}",
                    run.dir.join(sync::UNREADABLE_FILE).display()
                )
            } else {
                String::new()
            },
            run.id,
            e.code.id()
        );
        return Ok(ExitStatus::PausedForReview);
    }
    finish_status(&outcome)
}

fn count(outcome: &mut CopyOutcome, code: Code, n: u64) {
    if n > 0 {
        *outcome.counts.entry(code).or_default() += n;
        outcome.files += n;
    }
}

/// Carries out the list at `list` for this migration, recording into the run's copy log.
pub fn delete_listed(
    source: &godwit_engine::Side,
    target: &godwit_engine::Side,
    migration: &Migration,
    run: &godwit_engine::Run,
    list: &std::path::Path,
    options: &CopyOptions,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<sync::DeleteOutcome, JobError> {
    let index = Index::open(&migration.dir.join("index.redb"))?;
    let mut log = CopyLog::append(run)?;
    let outcome = sync::apply_deletes(
        source,
        target,
        &index,
        list,
        options.compare_target,
        run,
        &mut log,
        stop,
    );
    log.finish(run)?;
    outcome
}

/// The exit status of a run that was not paused.
pub fn finish_status(outcome: &CopyOutcome) -> Result<ExitStatus, JobError> {
    if let Some(e) = &outcome.job_error {
        return Ok(report(e));
    }
    if outcome.stopped {
        return Ok(ExitStatus::JobFailed);
    }
    let failed = outcome
        .counts
        .iter()
        .any(|(c, n)| *n > 0 && c.info().kind == Kind::Error);
    Ok(if failed {
        ExitStatus::PartialFailure
    } else {
        ExitStatus::Success
    })
}

/// How a run of `command` ended, as the catalog's status of that command: FAILED with a job
/// error, STOPPED when stopped, PAUSED when paused for review, SUCCEEDED otherwise.
pub fn end_status(command: Command, failed: bool, stopped: bool, paused: bool) -> Code {
    let state = if paused {
        State::Paused
    } else if failed {
        State::Failed
    } else if stopped {
        State::Stopped
    } else {
        State::Succeeded
    };
    Code::command_status(command, state).unwrap_or(Code::HTTP_INTERNAL_SERVER_ERROR)
}

/// The summary of a run of `command` that ended with `o`.
pub fn summarise(
    command: Command,
    m: &Migration,
    run: &godwit_engine::Run,
    src: &str,
    dst: &str,
    o: &CopyOutcome,
    started: Instant,
) -> Summary {
    let status = end_status(command, o.job_error.is_some(), o.stopped, false);
    let seconds = started.elapsed().as_secs_f64();
    Summary {
        run_id: run.id.clone(),
        migration_id: m.id.clone(),
        command: run.command,
        source: src.to_string(),
        target: Some(dst.to_string()),
        status: CodeRef::new(status, None),
        job_error: o
            .job_error
            .as_ref()
            .map(|e| CodeRef::new(e.code, Some(e.message.clone()))),
        counts: o.counts.clone(),
        files: o.files,
        bytes: o.bytes,
        bytes_copied: o.bytes_copied,
        started: timestamp(run.started),
        ended: timestamp(SystemTime::now()),
        seconds,
        bytes_per_second: if seconds > 0.0 {
            o.bytes_copied as f64 / seconds
        } else {
            0.0
        },
        run_dir: run.dir.display().to_string(),
        true_up: None,
    }
}

fn human(s: &Summary, o: &CopyOutcome) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}: {} files, {} in {:.1} s",
        s.status.code,
        s.status.name,
        s.files,
        bytes(s.bytes),
        s.seconds
    );
    if o.would_copy.0 > 0 {
        let _ = writeln!(
            out,
            "  dry run: would copy {} files, {}",
            o.would_copy.0,
            bytes(o.would_copy.1)
        );
    }
    for (code, n) in &s.counts {
        let _ = writeln!(out, "  {:<9} {:<40} {n}", code.id(), code.name());
    }
    if o.empty_dirs > 0 {
        let _ = writeln!(out, "  empty folders made at the target: {}", o.empty_dirs);
    }
    if let Some(t) = &s.true_up {
        if t.gone_from_source > 0 {
            let verb = if t.delete {
                ""
            } else {
                " (add --delete to remove them at the target)"
            };
            let _ = writeln!(
                out,
                "  gone from the source: {} files, listed in deletes.txt{verb}",
                t.gone_from_source
            );
        }
        if t.deleted + t.kept + t.delete_failed > 0 {
            let _ = writeln!(
                out,
                "  deleted at the target: {}; kept (back at the source): {}; failed: {}",
                t.deleted, t.kept, t.delete_failed
            );
        }
        if let Some(id) = &t.confirmed_run {
            let _ = writeln!(out, "  carried out the reviewed list of run {id}");
        }
    }
    if s.bytes_copied > 0 {
        let _ = writeln!(
            out,
            "  copied {} at {}/s",
            bytes(s.bytes_copied),
            bytes(s.bytes_per_second as u64)
        );
    }
    if let Some(e) = &s.job_error {
        let _ = writeln!(out, "  job error {} {}", e.code, e.name);
    }
    if o.stopped {
        let _ = writeln!(
            out,
            "  stopped before the end: run the same command again to resume."
        );
    }
    if o.counts
        .iter()
        .any(|(c, n)| *n > 0 && c.info().kind == Kind::Error)
    {
        let _ = writeln!(
            out,
            "  some files were not copied: see copylog.jsonl; `godwit explain CODE` says what to do."
        );
    }
    let _ = writeln!(out, "  run folder: {}", s.run_dir);
    out
}

/// A bar on a terminal, JSON lines with --json, nothing otherwise; until `finished` hangs up.
fn show_progress(
    json: bool,
    p: &Progress,
    finished: &std::sync::mpsc::Receiver<()>,
    started: Instant,
) {
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let mut last_json = Instant::now();
    // Wakes every 100 ms to redraw, and at once when the copy is over.
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        finished.recv_timeout(Duration::from_millis(100))
    {
        let (files, total_files) = (
            p.files_done.load(Ordering::Relaxed),
            p.files_seen.load(Ordering::Relaxed),
        );
        let (done_bytes, seen_bytes) = (
            p.bytes_done.load(Ordering::Relaxed),
            p.bytes_seen.load(Ordering::Relaxed),
        );
        let copied = p.bytes_copied.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let rate = copied as f64 / secs;
        if let Some(bar) = &bar {
            let eta = if rate > 0.0 && seen_bytes > done_bytes {
                format!(
                    ", about {:.0} s left of what is found so far",
                    (seen_bytes - done_bytes) as f64 / rate
                )
            } else {
                String::new()
            };
            bar.set_message(format!(
                "{files}/{total_files} files, {}/{}, {}/s, {} failed{eta}",
                bytes(done_bytes),
                bytes(seen_bytes),
                bytes(rate as u64),
                p.failed.load(Ordering::Relaxed)
            ));
            bar.tick();
        } else if json && last_json.elapsed() >= Duration::from_secs(1) {
            last_json = Instant::now();
            let line = serde_json::json!({
                "progress": { "files_done": files, "files_found": total_files, "bytes_done": done_bytes,
                  "bytes_found": seen_bytes, "bytes_copied": copied, "bytes_per_second": rate as u64,
                  "failed": p.failed.load(Ordering::Relaxed), "seconds": secs }
            });
            let _ = print(&format!("{line}\n"));
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

//! `copy`: decide each file once, copy what is new or changed, verify it, record it.
//!
//! The local-to-local path: a parallel walk feeds a pool of transfer threads through a bounded
//! channel; one recorder thread writes the copy log and the index. Every file is written to a
//! temporary name in the run's own temporary folder at the target (`backend::temp_dir_name`)
//! and renamed into place only when complete, so nothing half-written is ever visible at its
//! final name.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};
use godwit_codes::Code;
use godwit_spec::{Links, Verify};

use crate::backend::Side;
use crate::ctx::*;
use crate::decide::{Decision, decide, no_copy};
use crate::error::{FILE_ATTEMPTS, JobError, reason};
use crate::filter::Filter;
use crate::index::{Index, IndexEntry};
use crate::march::{March, march};
use crate::record::{CopyLog, CopyRecord};
use crate::recorder::Recorder;
use crate::state::{Migration, Run};
use crate::walk::{Entry, EntryKind, Event};

/// What the recorder hears.
enum Msg {
    File(Done),
    /// Files the index holds and a folder's listing does not: gone from the source.
    Missing(Vec<Vec<u8>>),
    /// An empty folder made at the target (its record), or its failure.
    EmptyDir(CopyRecord),
    /// The run cannot go on.
    JobFailed(JobError),
    /// A folder whose permissions are carried after its files (`--metadata`).
    Folder(Vec<u8>),
    /// What a transfer thread made of one batch of the walk, in order.
    Batch(Vec<Msg>),
}

/// Copies the local folder `src` into the local folder `dst`.
pub fn copy_local(
    src: &Path,
    dst: &Path,
    migration: &Migration,
    run: &Run,
    options: &CopyOptions,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<CopyOutcome, JobError> {
    copy(
        &Side::Local(src.to_path_buf()),
        &Side::Local(dst.to_path_buf()),
        migration,
        run,
        options,
        stop,
        progress,
    )
}

/// What a copy has ready before its first file: the runtime, the index, and whether the last
/// run was interrupted.
struct Prepared {
    rt: Option<tokio::runtime::Runtime>,
    index: Index,
    /// A remote target is checked at the first write instead of up front.
    check_target_later: bool,
    resumed: bool,
    /// `copy-running`, there while a run goes on: the next run knows this one was interrupted.
    marker: std::path::PathBuf,
    temp: crate::transfer::Temp,
    uploads: crate::uploads::UploadCheck,
}

/// Copies `src` into `dst`: every file decided once, copied if new or changed, verified,
/// recorded in the run's copy log and the migration's index.
pub fn copy(
    src: &Side,
    dst: &Side,
    migration: &Migration,
    run: &Run,
    options: &CopyOptions,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<CopyOutcome, JobError> {
    let p = prepare(src, dst, migration, run, options, stop)?;
    // A run resuming one that did not finish lists the files it finds unchanged: they are
    // the ones the interrupted run copied, and the control plane counts them from this log.
    let resuming;
    let options = if p.resumed && !options.log_unchanged {
        resuming = CopyOptions {
            log_unchanged: true,
            ..options.clone()
        };
        &resuming
    } else {
        options
    };
    let mut ctx = Ctx::new(
        (src, dst),
        run,
        options,
        &p.index,
        (p.resumed, p.check_target_later),
        stop,
        p.rt,
    );
    ctx.temp = p.temp.clone();
    ctx.moving = Some(&progress.bytes_moving);
    if let (Some(m), Side::Local(root)) = (&options.metadata, src) {
        ctx.metadata = Some(crate::metadata::Carrier {
            target: crate::perms::PermsTarget::open(dst, ctx.rt.as_ref())?,
            src: root,
            options: m,
            not_carried: Default::default(),
        });
    }
    if let Side::Remote(r) = dst
        && r.s3.is_some()
        && !options.dry_run
    {
        ctx.uploads = Some(crate::uploads::UploadLog::new(&run.dir));
    }
    if !options.compare_target {
        ctx.spot = SpotCheck::new(options.spot_check, p.index.len()?, &run.id);
    }
    let mut log = CopyLog::create(run)?;
    let mut outcome = first_round(&ctx, run, &mut log, progress);
    if let Some(e) = ctx.take_failure() {
        outcome.job_error = Some(e);
    }
    let held_back = ctx.take_held_back();
    if !held_back.is_empty() {
        // Copied now, or moved at the target when they match a file gone from the source.
        ctx.second_round.store(true, Ordering::Relaxed);
        let candidates = std::mem::take(&mut outcome.move_candidates);
        let second = second_round(&ctx, run, &mut log, held_back, candidates, progress);
        let moved = second.counts.get(&Code::AZSM2044).copied().unwrap_or(0);
        outcome.deletes_found = outcome.deletes_found.saturating_sub(moved);
        outcome.absorb(second);
    }
    if let Some(c) = &ctx.metadata
        && outcome.job_error.is_none()
        && !stop.load(Ordering::Relaxed)
        && let Err(e) =
            crate::metadata::folders(c, &p.index, run, &mut log, options, &mut outcome, stop)
    {
        outcome.job_error = Some(e);
    }
    if let Some(c) = &ctx.metadata {
        outcome.metadata_not_carried = std::mem::take(
            &mut c
                .not_carried
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
    }
    if let Err(e) = log.finish(run) {
        outcome.job_error.get_or_insert(e);
    }
    if options.find_deletes {
        match p.index.len() {
            Ok(n) => outcome.index_files = n,
            Err(e) => {
                outcome.job_error.get_or_insert(e);
            }
        }
    }
    if outcome.job_error.is_none() {
        outcome.job_error = ctx.spot.verdict(&dst.shown());
    }
    outcome.stopped = stop.load(Ordering::Relaxed) && outcome.job_error.is_none();
    outcome.uploads = p.uploads;
    if let Some(log) = &ctx.uploads {
        // Every upload this run started was completed or aborted.
        log.finished();
    }
    if !options.dry_run {
        let none = |_: &str| false;
        let _ = crate::transfer::clear_temp(dst, ctx.rt.as_ref(), &p.temp, &none, false);
        if !outcome.stopped && outcome.job_error.is_none() {
            let _ = fs::remove_file(&p.marker);
        }
    }
    Ok(outcome)
}

/// Everything a copy checks and opens before its first file: the sides (6030 for a true-up
/// whose index is lost), the index, the target's listing with `--compare target`, the marker
/// of a run going on, and the target's temporary folder.
fn prepare(
    src: &Side,
    dst: &Side,
    migration: &Migration,
    run: &Run,
    options: &CopyOptions,
    stop: &AtomicBool,
) -> Result<Prepared, JobError> {
    // The async runtime drives remote stores and the streaming path (checksums, --bwlimit);
    // a plain local copy takes the kernel's path and needs none.
    let streaming = options.checksum
        || options.verify == Verify::Full
        || options
            .bwlimit
            .as_ref()
            .is_some_and(godwit_spec::Bandwidth::limits);
    let rt = Side::runtime_for(src, dst, streaming, &run.id)?;
    let index_path = migration.dir.join("index.redb");
    // A run with an index behind it checks a remote target when it first needs it, so that a
    // true-up with nothing to do sends no request at all; a first run checks it up front.
    let check_target_later =
        !dst.features().local && index_path.exists() && !options.compare_target;
    target_gone(dst, &index_path, options)?;
    check_roots(src, dst, rt.as_ref(), !check_target_later)?;
    pre_checks((src, dst), migration, &index_path, options)?;
    if options.find_deletes
        && !options.compare_target
        && !index_path.exists()
        && has_earlier_runs(migration, run)
    {
        // Without its index a true-up would send everything again and see no deletion; say so
        // rather than guess.
        let path = index_path.display().to_string();
        return Err(JobError::new(
            Code::DISK_HASH_PATH_ERROR,
            &[("migration_id", &migration.id), ("path", &path)],
        ));
    }
    let index = Index::open(&index_path)?;
    let temp = crate::transfer::choose_temp_dir(src, dst, rt.as_ref(), &migration.id, &run.id);
    if options.compare_target {
        let scope = options.filter.scope_only();
        list_target(dst, &index, rt.as_ref(), &temp.dir, &scope, stop)?;
    }
    let marker = migration.dir.join("copy-running");
    let resumed = marker.exists();
    let uploads = match (dst, rt.as_ref()) {
        (Side::Remote(r), Some(rt)) if !options.dry_run => match &r.s3 {
            Some(t) => rt.block_on(crate::uploads::clean_up(
                t,
                &migration.dir.join("runs"),
                &run.id,
            )),
            None => Default::default(),
        },
        _ => Default::default(),
    };
    if !options.dry_run {
        fs::write(&marker, &run.id).map_err(|e| update_error(run, &marker, &e))?;
        // Runs of this migration in this state directory: none is running (the lock is held).
        let runs = migration.dir.join("runs");
        let ours = |name: &str| !name.contains('/') && runs.join(name).is_dir();
        crate::transfer::clear_temp(dst, rt.as_ref(), &temp, &ours, true)?;
    }
    Ok(Prepared {
        rt,
        index,
        check_target_later,
        resumed,
        marker,
        temp,
        uploads,
    })
}

/// The walk of the source feeding the transfer workers, and the recorder, until the walk ends.
fn first_round(ctx: &Ctx<'_>, run: &Run, log: &mut CopyLog, progress: &Progress) -> CopyOutcome {
    let options = ctx.options;
    // Local to local, a file is quick and the threads are busy anyway: batches save a
    // hand-off a file. To a remote store, every file may be a slow upload the threads must
    // share, so they take files one by one. Either way at most 4,096 files wait in each
    // channel, so memory stays flat.
    let batch = ctx.rt.is_none();
    let waiting = if batch {
        4096 / crate::walk::BATCH_EVENTS
    } else {
        4096
    };
    let (event_tx, event_rx) = bounded::<Event>(waiting);
    let (done_tx, done_rx) = bounded::<Msg>(waiting);
    let how = March {
        filter: &options.filter,
        list_names: options.find_deletes,
        follow_links: options.links == Links::Follow,
        threads: 2,
        batch,
    };
    // A local target gets each folder as the walk finds it (a folder that holds only
    // unsupported files still exists at the target).
    let make_dir = |rel: &[u8]| {
        if let Side::Local(dst) = ctx.dst
            && !options.dry_run
            && !rel.is_empty()
        {
            let clean = options
                .sanitize
                .then(|| options.profile.sanitize_path(rel))
                .flatten();
            let rel = clean.as_deref().unwrap_or(rel);
            // Never through a link at the target: the files below then fail with AZSM2073.
            if let Ok(path) = crate::backend::inside_target(dst, rel) {
                let _ = fs::create_dir(path);
            }
        }
    };
    let mut outcome = CopyOutcome::default();
    let mut walk_error = None;
    std::thread::scope(|scope| {
        let walker = scope.spawn(|| {
            let result = match &options.files_from {
                Some(list) => {
                    crate::march::march_list(ctx.src, ctx.rt.as_ref(), list, &event_tx, ctx.stop)
                }
                None => march(
                    ctx.src,
                    ctx.rt.as_ref(),
                    how,
                    &make_dir,
                    &event_tx,
                    ctx.stop,
                ),
            };
            drop(event_tx);
            result
        });
        for _ in 0..options.transfers.max(1) {
            let (rx, tx) = (event_rx.clone(), done_tx.clone());
            // The run's span goes with the work into each transfer thread.
            let span = tracing::Span::current();
            scope.spawn(move || span.in_scope(|| transfer_worker(ctx, &rx, &tx, progress)));
        }
        drop(event_rx);
        drop(done_tx);
        outcome = record(run, ctx.index, log, &done_rx, progress, ctx.stop, options);
        walk_error = walker.join().ok().and_then(Result::err);
    });
    if let Some(e) = walk_error {
        outcome.job_error.get_or_insert(e);
    }
    outcome
}

/// Whether another run of this migration finished (wrote its summary) before `run`.
fn has_earlier_runs(migration: &Migration, run: &Run) -> bool {
    std::fs::read_dir(migration.dir.join("runs")).is_ok_and(|runs| {
        runs.flatten().any(|r| {
            r.file_name().as_encoded_bytes() != run.id.as_bytes()
                && r.path().join("summary.json").exists()
        })
    })
}

/// The files held back by the first round: each moved at the target when a file gone from the
/// source has its size, mtime and inode, else copied like any other.
fn second_round(
    ctx: &Ctx<'_>,
    run: &Run,
    log: &mut CopyLog,
    held_back: Vec<Entry>,
    mut candidates: std::collections::HashMap<MoveKey, Vec<u8>>,
    progress: &Progress,
) -> CopyOutcome {
    let (event_tx, event_rx) = bounded::<Event>(1024);
    let (done_tx, done_rx) = bounded::<Msg>(1024);
    let mut outcome = CopyOutcome::default();
    std::thread::scope(|scope| {
        let moved_tx = done_tx.clone();
        scope.spawn(move || {
            for entry in held_back {
                if ctx.stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Some(from) = candidates.remove(&(entry.size, entry.mtime_ns, entry.ino))
                    && let Some(done) = crate::transfer::move_at_target(ctx, &from, &entry)
                {
                    if moved_tx.send(Msg::File(done)).is_err() {
                        break;
                    }
                    continue;
                }
                if event_tx.send(Event::Entry(entry)).is_err() {
                    break;
                }
            }
        });
        for _ in 0..ctx.options.transfers.max(1) {
            let rx = event_rx.clone();
            let tx = done_tx.clone();
            let span = tracing::Span::current();
            scope.spawn(move || span.in_scope(|| transfer_worker(ctx, &rx, &tx, progress)));
        }
        drop(event_rx);
        drop(done_tx);
        outcome = record(
            run,
            ctx.index,
            log,
            &done_rx,
            progress,
            ctx.stop,
            ctx.options,
        );
    });
    outcome
}

/// Lists the target into the index's target table, streaming, so that `--compare target` looks
/// files up on disk whatever their number. Only the run's part of it (a pool's work
/// unit lists its own folders: `part`), and not the temporary folders of godwit's runs, this one's or
/// another's (a unit of the same copy on another agent writes beside it, and its temporary
/// folder may go while it is listed).
fn list_target(
    dst: &Side,
    index: &Index,
    rt: Option<&tokio::runtime::Runtime>,
    temp_dir: &str,
    part: &Filter,
    stop: &AtomicBool,
) -> Result<(), JobError> {
    index.clear_target_listing()?;
    let ours = |rel: &[u8]| {
        rel.starts_with(crate::backend::TEMP_PREFIX.as_bytes())
            || rel
                .strip_prefix(temp_dir.as_bytes())
                .is_some_and(|rest| rest.is_empty() || rest[0] == b'/')
    };
    let (tx, rx) = bounded::<Event>(4096 / crate::walk::BATCH_EVENTS);
    let mut failure = None;
    std::thread::scope(|scope| {
        let lister = scope.spawn(|| {
            let how = March {
                filter: part,
                list_names: false,
                follow_links: false,
                threads: 2,
                batch: true,
            };
            let result = march(dst, rt, how, &|_| {}, &tx, stop);
            drop(tx);
            result
        });
        let mut batch = Vec::new();
        for event in crate::walk::events(&rx) {
            match event {
                Event::Entry(e) if e.kind == EntryKind::File && !ours(&e.rel) => {
                    batch.push((
                        e.rel,
                        IndexEntry {
                            size: e.size,
                            mtime_ns: e.mtime_ns,
                            hash: 0,
                            ino: 0,
                        },
                    ));
                }
                Event::Error { rel, error } if failure.is_none() && !ours(&rel) => {
                    let path = crate::record::display_path(&rel);
                    failure = Some(JobError::new(
                        Code::PFFL_FETCH_ERROR,
                        &[("reason", &format!("{path}: {}", reason(&error)))],
                    ));
                }
                _ => {}
            }
            if batch.len() >= 4096 {
                if let Err(e) = index.insert_target_listing(&batch) {
                    failure.get_or_insert(e);
                }
                batch.clear();
            }
        }
        if let Err(e) = index.insert_target_listing(&batch) {
            failure.get_or_insert(e);
        }
        if let Ok(Err(e)) = lister.join() {
            failure.get_or_insert(e);
        }
    });
    failure.map_or(Ok(()), Err)
}

/// A local target folder that is gone while the index says godwit wrote files there: the run
/// stops with AZSM1028 rather than make it again and report every file in step.
fn target_gone(dst: &Side, index_path: &Path, options: &CopyOptions) -> Result<(), JobError> {
    let Side::Local(root) = dst else {
        return Ok(());
    };
    if options.compare_target || options.spot_check == 0 || !index_path.exists() || root.exists() {
        return Ok(());
    }
    let files = Index::open(index_path)?.len()?;
    if files == 0 {
        return Ok(());
    }
    let reason = format!("the folder is gone, and the index says godwit wrote {files} files there");
    Err(JobError::new(
        Code::AZSM1028,
        &[("target", &root.display().to_string()), ("reason", &reason)],
    ))
}

/// Before the first write: enough file handles (1040) and memory (6081) for the transfer
/// threads, and, when the source was scanned, room at a local target for what is not there yet
/// and in the state directory (6080).
fn pre_checks(
    (src, dst): (&Side, &Side),
    migration: &Migration,
    index_path: &Path,
    options: &CopyOptions,
) -> Result<(), JobError> {
    crate::precheck::file_handles(options.transfers)?;
    let remote = !src.features().local || !dst.features().local;
    crate::precheck::memory(options.transfers, remote)?;
    let Some((files, bytes)) = options.estimate.filter(|_| !options.dry_run) else {
        return Ok(());
    };
    crate::precheck::state_room(&migration.dir, files)?;
    if let Side::Local(root) = dst
        && crate::precheck::room(root, bytes).is_err()
    {
        // What an earlier run copied is there already: only the rest must fit.
        let mut written = 0u64;
        if index_path.exists() {
            Index::open(index_path)?.for_each_file(|_, e, _| {
                written += e.size;
                true
            })?;
        }
        crate::precheck::room(root, bytes.saturating_sub(written))?;
    }
    Ok(())
}

/// The source must be a folder that can be listed, the target must be reachable, and a local
/// target must not be inside a local source (or it would copy the copy).
fn check_roots(
    src: &Side,
    dst: &Side,
    rt: Option<&tokio::runtime::Runtime>,
    check_target: bool,
) -> Result<(), JobError> {
    if let Side::Local(src) = src {
        let shown = src.display().to_string();
        let meta = fs::metadata(src)
            .map_err(|_| JobError::new(Code::INVALID_SOURCE_PATH_ERROR, &[("path", &shown)]))?;
        if !meta.is_dir() {
            return Err(JobError::new(
                Code::INVALID_SOURCE_PATH_ERROR,
                &[("path", &shown)],
            ));
        }
    }
    match (dst, rt) {
        (Side::Local(d), _) => fs::create_dir_all(d).map_err(|e| target_error(d, &e))?,
        (Side::Remote(r), Some(rt)) if check_target => {
            // One request that fails fast on a missing bucket, bad credentials or an unreachable
            // host, before any file is considered.
            crate::store::reachable(r, rt, true)?;
        }
        (Side::Remote(_), _) => {}
    }
    if let (Side::Remote(r), Some(rt)) = (src, rt) {
        crate::store::reachable(r, rt, false)?;
    }
    let (Side::Local(src), Side::Local(dst)) = (src, dst) else {
        return Ok(());
    };
    let (Ok(s), Ok(d)) = (src.canonicalize(), dst.canonicalize()) else {
        return Ok(());
    };
    if d.starts_with(&s) {
        let path = dst.display().to_string();
        return Err(JobError::new(
            Code::MIGRATION_INVALID_DESTINATION_PATH_ERROR,
            &[
                ("path", &path),
                (
                    "reason",
                    "it is inside the source, which would copy the copy",
                ),
            ],
        ));
    }
    Ok(())
}

fn target_error(dst: &Path, e: &io::Error) -> JobError {
    let path = dst.display().to_string();
    let code = if e.kind() == io::ErrorKind::PermissionDenied {
        Code::AZSM1021
    } else {
        Code::AZSM1022
    };
    JobError::new(code, &[("path", &path), ("reason", &reason(e))])
}

fn update_error(run: &Run, path: &Path, e: &io::Error) -> JobError {
    let path = path.display().to_string();
    JobError::new(
        Code::UPDATE_MIGRATION_REPORT_ERROR,
        &[("job_id", &run.id), ("path", &path), ("reason", &reason(e))],
    )
}

/// The recorder: the only writer of the copy log and the index, until every sender hangs up.
fn record(
    run: &Run,
    index: &Index,
    log: &mut CopyLog,
    done_rx: &Receiver<Msg>,
    progress: &Progress,
    stop: &AtomicBool,
    options: &CopyOptions,
) -> CopyOutcome {
    let mut r = Recorder::new(run, index, log, progress, stop, options);
    fn take(r: &mut Recorder<'_>, msg: Msg) {
        match msg {
            Msg::File(done) => r.file(done),
            Msg::Missing(paths) => r.missing(paths),
            Msg::JobFailed(e) => r.fail(e),
            Msg::EmptyDir(record) => r.empty_dir(&record),
            Msg::Folder(rel) => r.folder(&rel),
            Msg::Batch(msgs) => {
                for m in msgs {
                    take(r, m);
                }
            }
        }
    }
    for msg in done_rx {
        take(&mut r, msg);
    }
    r.finish()
}

/// A transfer thread: takes the walk's events (a folder's entries come in batches) and sends
/// the recorder what became of them, a batch for a batch.
fn transfer_worker(ctx: &Ctx<'_>, rx: &Receiver<Event>, tx: &Sender<Msg>, progress: &Progress) {
    let send = |out: &mut Vec<Msg>| match out.len() {
        0 => true,
        1 => out.pop().is_none_or(|m| tx.send(m).is_ok()),
        _ => tx.send(Msg::Batch(std::mem::take(out))).is_ok(),
    };
    for received in rx {
        let mut out = Vec::new();
        let mut since = std::time::Instant::now();
        for event in received.into_events() {
            if ctx.stop.load(Ordering::Relaxed) {
                // Stopping: what is not started stays for the next run.
                let _ = send(&mut out);
                return;
            }
            handle(ctx, event, progress, &mut out);
            // What took time is recorded (and shown) as soon as it is done.
            if since.elapsed() > FLUSH_AFTER {
                if !send(&mut out) {
                    return;
                }
                since = std::time::Instant::now();
            }
        }
        if !send(&mut out) {
            return;
        }
    }
}

/// A transfer thread holds the records of a batch back at most this long.
const FLUSH_AFTER: std::time::Duration = std::time::Duration::from_millis(50);

/// What one event of the walk comes to, for the recorder.
fn handle(ctx: &Ctx<'_>, event: Event, progress: &Progress, out: &mut Vec<Msg>) {
    let done = match event {
        Event::Listed {
            rel,
            entries,
            names,
        } => {
            if let Some(names) = names {
                let known = if ctx.options.compare_target {
                    crate::index::Known::Listed
                } else {
                    crate::index::Known::Written
                };
                match ctx.index.missing_in(known, &rel, &names) {
                    Ok(missing) if missing.is_empty() => {}
                    Ok(missing) => out.push(Msg::Missing(missing)),
                    Err(e) => out.push(Msg::JobFailed(e)),
                }
            }
            if entries == 0 && ctx.options.empty_dirs && !ctx.options.dry_run && !rel.is_empty() {
                out.push(Msg::EmptyDir(crate::transfer::make_empty_dir(ctx, &rel)));
            }
            return;
        }
        Event::Entry(entry) => {
            let folders_held = ctx
                .metadata
                .as_ref()
                .is_some_and(|c| !c.target.no_folders());
            if entry.kind == EntryKind::Dir && folders_held && !entry.rel.is_empty() {
                // Its permissions are set once its files are in (see metadata.rs).
                out.push(Msg::Folder(entry.rel));
                return;
            }
            if entry.kind == EntryKind::Dir || ctx.options.folders_only {
                return;
            }
            if !ctx.second_round.load(Ordering::Relaxed) {
                progress.files_seen.fetch_add(1, Ordering::Relaxed);
                progress.bytes_seen.fetch_add(entry.size, Ordering::Relaxed);
            }
            match decide(ctx, entry) {
                Decision::Done(done) => *done,
                Decision::HeldBack => return,
                Decision::Transfer(entry, seen) => {
                    let _span = tracing::debug_span!(
                        "transfer",
                        path = %String::from_utf8_lossy(&entry.rel),
                        size = entry.size
                    )
                    .entered();
                    transfer_with_retries(ctx, entry, seen)
                }
                Decision::Link(entry, seen, first) => {
                    crate::transfer::link_at_target(ctx, entry, seen, &first)
                }
            }
        }
        Event::ExcludedDir { rel } => Done {
            record: CopyRecord::new(&rel, 0, Code::AZSM2001, &[]),
            rel,
            index: None,
            copied: 0,
            perms: None,
        },
        Event::Missing { rel, reason } => {
            progress.files_seen.fetch_add(1, Ordering::Relaxed);
            Done {
                record: CopyRecord::new(&rel, 0, Code::AZSM2078, &[("reason", &reason)]),
                rel,
                index: None,
                copied: 0,
                perms: None,
            }
        }
        Event::Error { rel, error } => Done {
            record: CopyRecord::new(&rel, 0, Code::AZSM2061, &[("reason", &reason(&error))]),
            rel,
            index: None,
            copied: 0,
            perms: None,
        },
        Event::Batch(events) => {
            for e in events {
                handle(ctx, e, progress, out);
            }
            return;
        }
    };
    out.push(Msg::File(done));
}

/// Sends one file, trying again (at most [`FILE_ATTEMPTS`], with backoff and jitter) when the
/// failure says a new attempt may work; returns its final record.
pub(crate) fn transfer_with_retries(ctx: &Ctx<'_>, entry: Entry, seen: IndexEntry) -> Done {
    // With `--backup-dir`, what the target holds at this place is kept before it is replaced;
    // a file that cannot be kept is not replaced.
    let kept = match &ctx.options.backup {
        Some(backup) => match backup.keep(ctx.rt.as_ref(), entry.target_rel()) {
            Ok(kept) => kept,
            Err(why) => {
                let shown = backup.shown_of(entry.target_rel());
                return no_copy(
                    &entry,
                    Code::AZSM2080,
                    &[("backup", &shown), ("reason", &why)],
                );
            }
        },
        None => None,
    };
    // With `--metadata`, the permissions it carries, read before its data (an object store
    // gets them with the upload).
    let wanted = ctx.metadata.as_ref().map(|c| c.wanted(&entry.rel));
    let upload_metadata = match (&ctx.metadata, &wanted) {
        (Some(c), Some(Ok(w))) => c.upload_metadata(w),
        _ => None,
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = if entry.kind == EntryKind::Symlink {
            crate::transfer::copy_link(ctx, &entry)
        } else {
            crate::transfer::copy_file(ctx, &entry, upload_metadata.as_deref())
        };
        let failure = match result {
            Ok((copied, hash)) => {
                metrics::counter!("godwit_transfer_files_total").increment(1);
                metrics::counter!("godwit_transfer_bytes_total").increment(copied);
                if let Some(key) = crate::decide::link_key(ctx, &entry) {
                    ctx.link_done(key, Some(entry.target_rel()));
                }
                let mut record = CopyRecord::new(&entry.rel, entry.size, Code::AZSM0000, &[]);
                record.target_path = entry.target.as_deref().map(crate::record::display_path);
                record.attempts = attempts;
                record.checksum = (hash != 0).then(|| format!("xxh3-128:{hash:032x}"));
                record.backup = kept.map(|k| k.shown);
                let index = IndexEntry { hash, ..seen };
                let done = Done {
                    record,
                    index: Some((entry.rel.clone(), index)),
                    rel: entry.rel.clone(),
                    copied,
                    perms: None,
                };
                return match (&ctx.metadata, &wanted) {
                    (Some(c), Some(w)) => crate::metadata::written(c, entry.target_rel(), w, done),
                    _ => done,
                };
            }
            Err(failure) => failure,
        };
        if failure.retryable && attempts < FILE_ATTEMPTS && !ctx.stop.load(Ordering::Relaxed) {
            tracing::debug!(
                attempt = attempts,
                code = failure.code.id(),
                "transfer failed, trying again: {}",
                failure.reason
            );
            metrics::counter!("godwit_transfer_retries_total", "code" => failure.code.id())
                .increment(1);
            // Exponential backoff with jitter: 200 ms, then 800 ms, give or take half.
            let base = 50u64 << (2 * attempts);
            let jitter =
                (ctx.seq.load(Ordering::Relaxed).wrapping_mul(2654435761) % base.max(1)) / 2;
            std::thread::sleep(Duration::from_millis(base / 2 + jitter));
            continue;
        }
        if failure.no_space {
            target_full(ctx, &entry);
        }
        if let (Some(backup), Some(k)) = (&ctx.options.backup, &kept)
            && k.moved
        {
            // Moved away to be replaced, and not replaced: back where it was.
            backup.put_back(ctx.rt.as_ref(), entry.target_rel());
        }
        if let Some(key) = crate::decide::link_key(ctx, &entry) {
            ctx.link_done(key, None);
        }
        let mut done = no_copy(&entry, failure.code, &[("reason", &failure.reason)]);
        done.record.attempts = attempts;
        done.record.operation = Some(failure.side.operation());
        return done;
    }
}

/// The local target's file system is full: no later file fits either, so the run stops with
/// 6080 (how much is free, how much this file needed) and resumes when there is room.
fn target_full(ctx: &Ctx<'_>, entry: &Entry) {
    let Side::Local(root) = ctx.dst else {
        return;
    };
    let free = crate::precheck::free_at(root).unwrap_or(0);
    let error = crate::precheck::no_room(root, free, entry.size);
    ctx.stop.store(true, Ordering::Relaxed);
    ctx.failure
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get_or_insert(error);
}

//! `copy`: decide each file once, copy what is new or changed, verify it, record it.
//!
//! The local-to-local path: a parallel walk feeds a pool of transfer threads through a bounded
//! channel; one recorder thread writes the copy log and the index. Every file is written to a
//! temporary name in the target's `.godwit-tmp` folder and renamed into place only when
//! complete, so nothing half-written is ever visible at its final name.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};
use godwit_codes::Code;
use godwit_spec::{Links, Verify};

use crate::backend::{Side, TEMP_DIR};
use crate::ctx::*;
use crate::error::{JobError, reason};
use crate::filter::Filter;
use crate::index::{Index, IndexEntry};
use crate::record::{CopyLog, CopyRecord, DELETES_FILE, PathList, UNREADABLE_FILE};
use crate::state::{Migration, Run};
use crate::walk::{Entry, EntryKind, Event, WalkOptions, walk};

/// What the recorder hears.
enum Msg {
    File(Done),
    /// Files the index holds and a folder's listing does not: gone from the source.
    Missing(Vec<Vec<u8>>),
    /// An empty folder made at the target (its record), or its failure.
    EmptyDir(CopyRecord),
    /// The run cannot go on.
    JobFailed(JobError),
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
    // The async runtime drives remote stores and the streaming path (checksums, --bwlimit);
    // a plain local copy takes the kernel's path and needs none.
    let streaming = options.checksum || options.verify == Verify::Full || options.bwlimit.is_some();
    let rt = match (src, dst) {
        (Side::Local(_), Side::Local(_)) if !streaming => None,
        _ => Some(crate::store::runtime(&run.id)?),
    };
    let index_path = migration.dir.join("index.redb");
    // A run with an index behind it checks a remote target when it first needs it, so that a
    // true-up with nothing to do sends no request at all; a first run checks it up front.
    let check_target_later =
        matches!(dst, Side::Remote(_)) && index_path.exists() && !options.compare_target;
    check_roots(src, dst, rt.as_ref(), !check_target_later)?;
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
    if options.compare_target {
        list_target(dst, &index, rt.as_ref(), stop)?;
    }
    let marker = migration.dir.join("copy-running");
    let resumed = marker.exists();
    if !options.dry_run {
        fs::write(&marker, &run.id).map_err(|e| update_error(run, &marker, &e))?;
        crate::transfer::clear_temp(dst, rt.as_ref(), true)?;
    }
    // One large file streams at a time (its parts upload in parallel): each holds several
    // parts in memory, so this is what keeps peak memory flat whatever the sizes.
    let slots = bounded::<()>(LARGE_FILES_IN_FLIGHT);
    for _ in 0..LARGE_FILES_IN_FLIGHT {
        let _ = slots.0.send(());
    }
    let ctx = Ctx {
        src,
        dst,
        run_id: &run.id,
        options,
        index: &index,
        resumed,
        seq: AtomicU64::new(0),
        stop,
        rt,
        large_slots: slots,
        rate: options.bwlimit.map(crate::rate::RateLimit::new),
        held_back: std::sync::Mutex::new(Vec::new()),
        second_round: AtomicBool::new(false),
        target_checked: !check_target_later,
        target_check: std::sync::OnceLock::new(),
        failure: std::sync::Mutex::new(None),
    };
    let mut log = CopyLog::create(run)?;

    let (event_tx, event_rx) = bounded::<Event>(4096);
    let (done_tx, done_rx) = bounded::<Msg>(4096);
    let walk_options = WalkOptions {
        follow_links: options.links == Links::Follow,
        threads: 2,
        list_names: options.find_deletes,
    };
    let make_dir = |rel: &[u8]| {
        if let Side::Local(dst) = dst
            && !options.dry_run
            && !rel.is_empty()
        {
            let clean = options
                .sanitize
                .then(|| options.profile.sanitize_path(rel))
                .flatten();
            let rel = clean.as_deref().unwrap_or(rel);
            let _ = fs::create_dir(dst.join(std::ffi::OsStr::from_bytes(rel)));
        }
    };

    let mut outcome = CopyOutcome::default();
    let mut walk_error = None;
    std::thread::scope(|scope| {
        let walker = scope.spawn(|| {
            let result = match (src, &ctx.rt) {
                (Side::Local(root), _) => {
                    walk(
                        root,
                        walk_options,
                        &options.filter,
                        &make_dir,
                        &event_tx,
                        stop,
                    );
                    Ok(())
                }
                (Side::Remote(remote), Some(rt)) => rt.block_on(crate::store::walk_remote(
                    remote,
                    &options.filter,
                    options.find_deletes,
                    &event_tx,
                    stop,
                )),
                (Side::Remote(_), None) => Ok(()),
            };
            drop(event_tx);
            result
        });
        for _ in 0..options.transfers.max(1) {
            let rx = event_rx.clone();
            let tx = done_tx.clone();
            let ctx = &ctx;
            scope.spawn(move || transfer_worker(ctx, &rx, &tx, progress));
        }
        drop(event_rx);
        drop(done_tx);
        outcome = record(run, &index, &mut log, &done_rx, progress, stop, options);
        walk_error = walker.join().ok().and_then(Result::err);
    });
    if let Some(e) = walk_error {
        outcome.job_error.get_or_insert(e);
    }
    if let Some(e) = ctx
        .failure
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    {
        outcome.job_error = Some(e);
    }
    let held_back = std::mem::take(
        &mut *ctx
            .held_back
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    if !held_back.is_empty() {
        // Copied now, or moved at the target when they match a file gone from the source.
        ctx.second_round.store(true, Ordering::Relaxed);
        let candidates = std::mem::take(&mut outcome.move_candidates);
        let second = second_round(&ctx, run, &mut log, held_back, candidates, progress);
        let moved = second.counts.get(&Code::AZSM2044).copied().unwrap_or(0);
        outcome.deletes_found = outcome.deletes_found.saturating_sub(moved);
        outcome.absorb(second);
    }
    if let Err(e) = log.finish(run) {
        outcome.job_error.get_or_insert(e);
    }
    if options.find_deletes {
        match index.len() {
            Ok(n) => outcome.index_files = n,
            Err(e) => {
                outcome.job_error.get_or_insert(e);
            }
        }
    }
    outcome.stopped = stop.load(Ordering::Relaxed) && outcome.job_error.is_none();
    if !options.dry_run {
        let _ = crate::transfer::clear_temp(dst, ctx.rt.as_ref(), false);
        if !outcome.stopped && outcome.job_error.is_none() {
            let _ = fs::remove_file(&marker);
        }
    }
    Ok(outcome)
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
            scope.spawn(move || transfer_worker(ctx, &rx, &tx, progress));
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
/// files up on disk whatever their number.
fn list_target(
    dst: &Side,
    index: &Index,
    rt: Option<&tokio::runtime::Runtime>,
    stop: &AtomicBool,
) -> Result<(), JobError> {
    index.clear_target_listing()?;
    let (tx, rx) = bounded::<Event>(4096);
    let mut failure = None;
    std::thread::scope(|scope| {
        let lister = scope.spawn(|| {
            let result = match (dst, rt) {
                (Side::Local(root), _) => {
                    let options = WalkOptions {
                        follow_links: false,
                        threads: 2,
                        list_names: false,
                    };
                    walk(root, options, &Filter::default(), &|_| {}, &tx, stop);
                    Ok(())
                }
                (Side::Remote(r), Some(rt)) => rt.block_on(crate::store::walk_remote(
                    r,
                    &Filter::default(),
                    false,
                    &tx,
                    stop,
                )),
                (Side::Remote(_), None) => Ok(()),
            };
            drop(tx);
            result
        });
        let mut batch = Vec::new();
        for event in rx {
            match event {
                Event::Entry(e)
                    if e.kind == EntryKind::File && !e.rel.starts_with(TEMP_DIR.as_bytes()) =>
                {
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
                Event::Error { rel, error } if failure.is_none() => {
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

/// The recorder: the only writer of the copy log and the index. Commits the index in batches,
/// so a crash loses at most the last batch, whose files are then found at the target.
fn record(
    run: &Run,
    index: &Index,
    log: &mut CopyLog,
    done_rx: &Receiver<Msg>,
    progress: &Progress,
    stop: &AtomicBool,
    options: &CopyOptions,
) -> CopyOutcome {
    let dry_run = options.dry_run;
    let mut outcome = CopyOutcome::default();
    let mut batch: Vec<(Vec<u8>, IndexEntry)> = Vec::new();
    let mut last_commit = std::time::Instant::now();
    let fail = |outcome: &mut CopyOutcome, e: JobError| {
        outcome.job_error.get_or_insert(e);
        stop.store(true, Ordering::Relaxed);
    };
    let mut deletes = PathList::new(&run.dir, DELETES_FILE);
    let mut unreadable = PathList::new(&run.dir, UNREADABLE_FILE);
    let list_error = |e: &io::Error, list: &str| {
        let path = run.dir.join(list).display().to_string();
        JobError::new(
            Code::UPDATE_MIGRATION_REPORT_ERROR,
            &[("job_id", &run.id), ("path", &path), ("reason", &reason(e))],
        )
    };
    for msg in done_rx {
        let done = match msg {
            Msg::File(done) => done,
            Msg::Missing(paths) => {
                if options.moves {
                    for p in &paths {
                        if outcome.move_candidates.len() >= MAX_MOVE_CANDIDATES {
                            break;
                        }
                        if let Ok(Some(e)) = index.get(p)
                            && e.ino != 0
                            && e.size >= MOVE_MIN_SIZE
                        {
                            outcome
                                .move_candidates
                                .insert((e.size, e.mtime_ns, e.ino), p.clone());
                        }
                    }
                }
                for p in paths {
                    if let Err(e) = deletes.add(&p) {
                        fail(&mut outcome, list_error(&e, DELETES_FILE));
                    }
                }
                continue;
            }
            Msg::JobFailed(e) => {
                fail(&mut outcome, e);
                continue;
            }
            Msg::EmptyDir(record) => {
                if record.code == Code::AZSM0000 {
                    outcome.empty_dirs += 1;
                } else {
                    *outcome.counts.entry(record.code).or_default() += 1;
                }
                if let Err(e) = log.write(run, &record) {
                    fail(&mut outcome, e);
                }
                continue;
            }
        };
        if done.record.code == Code::AZSM2061
            && let Err(e) = unreadable.add(&done.rel)
        {
            fail(&mut outcome, list_error(&e, UNREADABLE_FILE));
        }
        if dry_run && done.record.code == Code::AZSM0000 {
            outcome.would_copy.0 += 1;
            outcome.would_copy.1 += done.record.size;
            continue;
        }
        let code = done.record.code;
        *outcome.counts.entry(code).or_default() += 1;
        outcome.files += 1;
        outcome.bytes += done.record.size;
        outcome.bytes_copied += done.copied;
        progress.files_done.fetch_add(1, Ordering::Relaxed);
        progress
            .bytes_done
            .fetch_add(done.record.size, Ordering::Relaxed);
        progress
            .bytes_copied
            .fetch_add(done.copied, Ordering::Relaxed);
        if code.info().kind == godwit_codes::Kind::Error {
            progress.failed.fetch_add(1, Ordering::Relaxed);
        }
        // Excluded files are counted; listed one by one only when asked, so that excluding
        // millions of files does not bloat the log.
        let logged = code != Code::AZSM2001 || options.log_excluded;
        if logged && let Err(e) = log.write(run, &done.record) {
            fail(&mut outcome, e);
        }
        if let Some(entry) = done.index {
            batch.push(entry);
        }
        if batch.len() >= 4096
            || (!batch.is_empty() && last_commit.elapsed() > Duration::from_millis(500))
        {
            if let Err(e) = index.insert_batch(&batch) {
                fail(&mut outcome, e);
            }
            batch.clear();
            last_commit = std::time::Instant::now();
        }
    }
    if let Err(e) = index.insert_batch(&batch) {
        fail(&mut outcome, e);
    }
    for (list, name) in [
        (&mut deletes, DELETES_FILE),
        (&mut unreadable, UNREADABLE_FILE),
    ] {
        if let Err(e) = list.finish() {
            fail(&mut outcome, list_error(&e, name));
        }
    }
    outcome.deletes_found = deletes.count;
    outcome.unreadable = unreadable.count;
    outcome
}

fn transfer_worker(ctx: &Ctx<'_>, rx: &Receiver<Event>, tx: &Sender<Msg>, progress: &Progress) {
    for event in rx {
        if ctx.stop.load(Ordering::Relaxed) {
            // Stopping: what is not started stays for the next run.
            return;
        }
        let done = match event {
            Event::Listed {
                rel,
                entries,
                names,
            } => {
                let mut msgs = Vec::new();
                if let Some(names) = names {
                    let known = if ctx.options.compare_target {
                        crate::index::Known::Listed
                    } else {
                        crate::index::Known::Written
                    };
                    match ctx.index.missing_in(known, &rel, &names) {
                        Ok(missing) if missing.is_empty() => {}
                        Ok(missing) => msgs.push(Msg::Missing(missing)),
                        Err(e) => msgs.push(Msg::JobFailed(e)),
                    }
                }
                if entries == 0 && ctx.options.empty_dirs && !ctx.options.dry_run && !rel.is_empty()
                {
                    msgs.push(Msg::EmptyDir(crate::transfer::make_empty_dir(ctx, &rel)));
                }
                for msg in msgs {
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
                continue;
            }
            Event::Entry(entry) => {
                if entry.kind == EntryKind::Dir || ctx.options.folders_only {
                    continue;
                }
                if !ctx.second_round.load(Ordering::Relaxed) {
                    progress.files_seen.fetch_add(1, Ordering::Relaxed);
                    progress.bytes_seen.fetch_add(entry.size, Ordering::Relaxed);
                }
                match decide_and_copy(ctx, entry) {
                    Some(done) => done,
                    // Held back for the second round.
                    None => continue,
                }
            }
            Event::ExcludedDir { rel } => Done {
                record: CopyRecord::new(&rel, 0, Code::AZSM2001, &[]),
                rel,
                index: None,
                copied: 0,
            },
            Event::Error { rel, error } => Done {
                record: CopyRecord::new(&rel, 0, Code::AZSM2061, &[("reason", &reason(&error))]),
                rel,
                index: None,
                copied: 0,
            },
        };
        if tx.send(Msg::File(done)).is_err() {
            return;
        }
    }
}

/// The index cannot be read: the run stops (it could not tell what is already at the target),
/// and this file is recorded with the reason.
fn index_failure(ctx: &Ctx<'_>, entry: &Entry, e: &JobError) -> Done {
    ctx.stop.store(true, Ordering::Relaxed);
    no_copy(
        entry,
        Code::AZSM1060,
        &[("job_id", ctx.run_id), ("reason", &e.message)],
    )
}

fn no_copy(entry: &Entry, code: Code, params: &[(&str, &str)]) -> Done {
    let mut record = CopyRecord::new(&entry.rel, entry.size, code, params);
    if let Some(t) = &entry.target {
        record.target_path = Some(crate::record::display_path(t));
    }
    Done {
        record,
        rel: entry.rel.clone(),
        index: None,
        copied: 0,
    }
}

/// Whether a new file is held back until the walk ends, to be matched with a file gone from
/// the source.
fn hold_back(ctx: &Ctx<'_>, entry: &Entry) -> bool {
    ctx.options.moves
        && !ctx.options.dry_run
        && !ctx.second_round.load(Ordering::Relaxed)
        && entry.kind == EntryKind::File
        && entry.ino != 0
        && entry.size >= MOVE_MIN_SIZE
}

/// Decides what happens to one file, and does it; None when it is held back for later.
fn decide_and_copy(ctx: &Ctx<'_>, entry: Entry) -> Option<Done> {
    let o = ctx.options;
    let links_here =
        o.links == Links::Copy && matches!((ctx.src, ctx.dst), (Side::Local(_), Side::Local(_)));
    match entry.kind {
        EntryKind::Symlink if !links_here => {
            let kind = if o.links == Links::Copy {
                "symbolic link (only a local target holds links)"
            } else {
                "symbolic link"
            };
            return Some(no_copy(&entry, Code::AZSM2021, &[("file_type", kind)]));
        }
        EntryKind::Special(kind) => {
            return Some(no_copy(&entry, Code::AZSM2021, &[("file_type", kind)]));
        }
        EntryKind::File | EntryKind::Dir | EntryKind::Symlink => {}
    }
    if o.filter
        .excludes_file(&entry.rel, entry.size, entry.mtime_ns)
    {
        return Some(no_copy(&entry, Code::AZSM2001, &[]));
    }
    let mut entry = entry;
    if o.sanitize {
        match crate::transfer::sanitized_name(ctx, &entry) {
            Ok(target) => entry.target = target,
            Err(e) => return Some(index_failure(ctx, &entry, &e)),
        }
    }
    if let Some((code, problem)) = o
        .profile
        .check_path(entry.target_rel())
        .or_else(|| o.profile.check_size(entry.size))
    {
        let params = problem.params();
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        return Some(no_copy(&entry, code, &params));
    }
    let seen = IndexEntry {
        size: entry.size,
        mtime_ns: entry.mtime_ns,
        hash: 0,
        ino: entry.ino,
    };
    if o.compare_target {
        // The target, as listed, decides; a local target keeps the source's mtime, so it must
        // match too; object stores list upload times, so there the size decides.
        match ctx.index.target_listing(&entry.rel) {
            Ok(Some(there))
                if there.size == entry.size
                    && (!matches!(ctx.dst, Side::Local(_)) || there.mtime_ns == entry.mtime_ns) =>
            {
                let mut done = no_copy(&entry, Code::AZSM2042, &[]);
                done.index = Some((entry.rel.clone(), seen));
                return Some(done);
            }
            Ok(_) => {}
            Err(e) => return Some(index_failure(ctx, &entry, &e)),
        }
    } else {
        match ctx.index.get(&entry.rel) {
            Ok(Some(known)) if known.size == seen.size && known.mtime_ns == seen.mtime_ns => {
                return Some(no_copy(&entry, Code::AZSM2041, &[]));
            }
            Ok(None) if hold_back(ctx, &entry) => {
                let mut held = ctx
                    .held_back
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if held.len() < MAX_HELD_BACK {
                    held.push(entry);
                    return None;
                }
            }
            Ok(_) => {}
            Err(e) => return Some(index_failure(ctx, &entry, &e)),
        }
    }
    if ctx.resumed && crate::transfer::already_at_target(ctx, &entry) {
        // Written by the run that was interrupted, after its last index commit.
        let mut done = no_copy(&entry, Code::AZSM2041, &[]);
        done.index = Some((entry.rel.clone(), seen));
        return Some(done);
    }
    if o.dry_run {
        return Some(no_copy(&entry, Code::AZSM0000, &[]));
    }

    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = if entry.kind == EntryKind::Symlink {
            crate::transfer::copy_link(ctx, &entry)
        } else {
            crate::transfer::copy_file(ctx, &entry)
        };
        match result {
            Ok((copied, hash)) => {
                let mut record = CopyRecord::new(&entry.rel, entry.size, Code::AZSM0000, &[]);
                record.target_path = entry.target.as_deref().map(crate::record::display_path);
                record.attempts = attempts;
                record.checksum = (hash != 0).then(|| format!("xxh3-128:{hash:032x}"));
                let index = IndexEntry { hash, ..seen };
                return Some(Done {
                    record,
                    index: Some((entry.rel.clone(), index)),
                    rel: entry.rel,
                    copied,
                });
            }
            Err(failure) => {
                if failure.retry && attempts < 3 && !ctx.stop.load(Ordering::Relaxed) {
                    // Exponential backoff with jitter: 200 ms, then 800 ms, give or take half.
                    let base = 50u64 << (2 * attempts);
                    let jitter = (ctx.seq.load(Ordering::Relaxed).wrapping_mul(2654435761)
                        % base.max(1))
                        / 2;
                    std::thread::sleep(Duration::from_millis(base / 2 + jitter));
                    continue;
                }
                let mut record = CopyRecord::new(
                    &entry.rel,
                    entry.size,
                    failure.code,
                    &[("reason", &failure.reason)],
                );
                record.attempts = attempts;
                record.target_path = entry.target.as_deref().map(crate::record::display_path);
                return Some(Done {
                    record,
                    rel: entry.rel,
                    index: None,
                    copied: 0,
                });
            }
        }
    }
}

//! `copy`: decide each file once, copy what is new or changed, verify it, record it.
//!
//! The local-to-local path: a parallel walk feeds a pool of transfer threads through a bounded
//! channel; one recorder thread writes the copy log and the index. Every file is written to a
//! temporary name in the target's `.godwit-tmp` folder and renamed into place only when
//! complete, so nothing half-written is ever visible at its final name.

use std::collections::BTreeMap;
use std::fs::{self, File, FileTimes};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, bounded};
use godwit_codes::Code;

use crate::error::{JobError, reason};
use crate::filter::Filter;
use crate::index::{Index, IndexEntry};
use crate::profile::TargetProfile;
use crate::run::{CopyLog, CopyRecord, Migration, Run};
use crate::walk::{Entry, EntryKind, Event, WalkOptions, walk};

/// Name of the folder at the target root that holds files being written.
pub const TEMP_DIR: &str = ".godwit-tmp";

/// What to do with symbolic links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Leave them out, each recorded as AZSM2021 (the default: nothing silently changes).
    Skip,
    /// Copy what they point to.
    Follow,
}

/// How much to check after writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    None,
    /// The size written must be the source's (the default).
    Size,
    /// Re-read the target and compare its checksum with the source's.
    Full,
}

/// The options of a copy.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub transfers: usize,
    /// Compute a checksum of each file while reading it (and record it).
    pub checksum: bool,
    pub verify: Verify,
    pub filter: Filter,
    pub links: Links,
    pub profile: TargetProfile,
    pub dry_run: bool,
}

/// Live counters, read by the progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub files_seen: AtomicU64,
    pub bytes_seen: AtomicU64,
    pub files_done: AtomicU64,
    pub bytes_done: AtomicU64,
    pub bytes_copied: AtomicU64,
    pub failed: AtomicU64,
}

/// How a copy ended.
#[derive(Debug, Clone, Default)]
pub struct CopyOutcome {
    /// Files per final status code.
    pub counts: BTreeMap<Code, u64>,
    pub files: u64,
    pub bytes: u64,
    pub bytes_copied: u64,
    /// Files and bytes a dry run would have copied.
    pub would_copy: (u64, u64),
    /// What stopped the run as a whole, if anything.
    pub job_error: Option<JobError>,
    /// Whether the run was stopped before it finished (Ctrl-C).
    pub stopped: bool,
}

/// What a transfer thread tells the recorder about one file.
struct Done {
    record: CopyRecord,
    index: Option<(Vec<u8>, IndexEntry)>,
    copied: u64,
}

struct Ctx<'a> {
    src: &'a Path,
    dst: &'a Path,
    tmp_dir: PathBuf,
    run_id: &'a str,
    options: &'a CopyOptions,
    index: &'a Index,
    /// The last run did not finish: a file missing from the index may already be at the target.
    resumed: bool,
    seq: AtomicU64,
    stop: &'a AtomicBool,
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
    check_roots(src, dst)?;
    let index = Index::open(&migration.dir.join("index.redb"))?;
    let marker = migration.dir.join("copy-running");
    let resumed = marker.exists();
    let tmp_dir = dst.join(TEMP_DIR);
    if !options.dry_run {
        fs::write(&marker, &run.id).map_err(|e| update_error(run, &marker, &e))?;
        // Leftovers of a run that was killed are never at a final name; clear them.
        let _ = fs::remove_dir_all(&tmp_dir);
        fs::create_dir_all(&tmp_dir).map_err(|e| target_error(dst, &e))?;
    }
    let ctx = Ctx {
        src,
        dst,
        tmp_dir: tmp_dir.clone(),
        run_id: &run.id,
        options,
        index: &index,
        resumed,
        seq: AtomicU64::new(0),
        stop,
    };
    let mut log = CopyLog::create(run)?;

    let (event_tx, event_rx) = bounded::<Event>(4096);
    let (done_tx, done_rx) = bounded::<Done>(4096);
    let walk_options = WalkOptions {
        follow_links: options.links == Links::Follow,
        threads: 2,
    };
    let make_dir = |rel: &[u8]| {
        if !options.dry_run && !rel.is_empty() {
            let _ = fs::create_dir(dst.join(std::ffi::OsStr::from_bytes(rel)));
        }
    };

    let mut outcome = CopyOutcome::default();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            walk(
                src,
                walk_options,
                &options.filter,
                &make_dir,
                &event_tx,
                stop,
            );
            drop(event_tx);
        });
        for _ in 0..options.transfers.max(1) {
            let rx = event_rx.clone();
            let tx = done_tx.clone();
            let ctx = &ctx;
            scope.spawn(move || transfer_worker(ctx, &rx, &tx, progress));
        }
        drop(event_rx);
        drop(done_tx);
        outcome = record(
            run,
            &index,
            &mut log,
            &done_rx,
            progress,
            stop,
            options.dry_run,
        );
    });
    if let Err(e) = log.finish(run) {
        outcome.job_error.get_or_insert(e);
    }
    outcome.stopped = stop.load(Ordering::Relaxed) && outcome.job_error.is_none();
    if !options.dry_run {
        let _ = fs::remove_dir_all(&tmp_dir);
        if !outcome.stopped && outcome.job_error.is_none() {
            let _ = fs::remove_file(&marker);
        }
    }
    Ok(outcome)
}

/// The source must be a folder, and the target must not be inside it (or it would copy itself).
fn check_roots(src: &Path, dst: &Path) -> Result<(), JobError> {
    let shown = src.display().to_string();
    let meta = fs::metadata(src)
        .map_err(|_| JobError::new(Code::INVALID_SOURCE_PATH_ERROR, &[("path", &shown)]))?;
    if !meta.is_dir() {
        return Err(JobError::new(
            Code::INVALID_SOURCE_PATH_ERROR,
            &[("path", &shown)],
        ));
    }
    fs::create_dir_all(dst).map_err(|e| target_error(dst, &e))?;
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
    done_rx: &Receiver<Done>,
    progress: &Progress,
    stop: &AtomicBool,
    dry_run: bool,
) -> CopyOutcome {
    let mut outcome = CopyOutcome::default();
    let mut batch: Vec<(Vec<u8>, IndexEntry)> = Vec::new();
    let mut last_commit = std::time::Instant::now();
    let fail = |outcome: &mut CopyOutcome, e: JobError| {
        outcome.job_error.get_or_insert(e);
        stop.store(true, Ordering::Relaxed);
    };
    for done in done_rx {
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
        if let Err(e) = log.write(run, &done.record) {
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
    outcome
}

fn transfer_worker(ctx: &Ctx<'_>, rx: &Receiver<Event>, tx: &Sender<Done>, progress: &Progress) {
    for event in rx {
        if ctx.stop.load(Ordering::Relaxed) {
            // Stopping: what is not started stays for the next run.
            return;
        }
        let done = match event {
            Event::Entry(entry) => {
                if entry.kind == EntryKind::Dir {
                    continue;
                }
                progress.files_seen.fetch_add(1, Ordering::Relaxed);
                progress.bytes_seen.fetch_add(entry.size, Ordering::Relaxed);
                decide_and_copy(ctx, entry)
            }
            Event::ExcludedDir { rel } => Done {
                record: CopyRecord::new(&rel, 0, Code::AZSM2001, &[]),
                index: None,
                copied: 0,
            },
            Event::Error { rel, error } => Done {
                record: CopyRecord::new(&rel, 0, Code::AZSM2061, &[("reason", &reason(&error))]),
                index: None,
                copied: 0,
            },
            Event::Listed { .. } => continue,
        };
        if tx.send(done).is_err() {
            return;
        }
    }
}

fn no_copy(entry: &Entry, code: Code, params: &[(&str, &str)]) -> Done {
    Done {
        record: CopyRecord::new(&entry.rel, entry.size, code, params),
        index: None,
        copied: 0,
    }
}

/// Decides what happens to one file, and does it.
fn decide_and_copy(ctx: &Ctx<'_>, entry: Entry) -> Done {
    let o = ctx.options;
    match entry.kind {
        EntryKind::Symlink => {
            return no_copy(&entry, Code::AZSM2021, &[("file_type", "symbolic link")]);
        }
        EntryKind::Special(kind) => return no_copy(&entry, Code::AZSM2021, &[("file_type", kind)]),
        EntryKind::File | EntryKind::Dir => {}
    }
    if o.filter.excludes_file(&entry.rel, entry.size) {
        return no_copy(&entry, Code::AZSM2001, &[]);
    }
    if let Some((code, problem)) = o
        .profile
        .check_path(&entry.rel)
        .or_else(|| o.profile.check_size(entry.size))
    {
        let params = problem.params();
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        return no_copy(&entry, code, &params);
    }
    let seen = IndexEntry {
        size: entry.size,
        mtime_ns: entry.mtime_ns,
        hash: 0,
    };
    match ctx.index.get(&entry.rel) {
        Ok(Some(known)) if known.size == seen.size && known.mtime_ns == seen.mtime_ns => {
            return no_copy(&entry, Code::AZSM2041, &[]);
        }
        Ok(_) => {}
        Err(e) => {
            ctx.stop.store(true, Ordering::Relaxed);
            return no_copy(
                &entry,
                Code::AZSM1060,
                &[("job_id", ctx.run_id), ("reason", &e.message)],
            );
        }
    }
    let target = ctx.dst.join(std::ffi::OsStr::from_bytes(&entry.rel));
    if ctx.resumed
        && let Ok(m) = fs::symlink_metadata(&target)
        && m.is_file()
        && m.len() == entry.size
        && m.mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(m.mtime_nsec())
            == entry.mtime_ns
    {
        // Written by the run that was interrupted, after its last index commit.
        let mut done = no_copy(&entry, Code::AZSM2041, &[]);
        done.index = Some((entry.rel.clone(), seen));
        return done;
    }
    if o.dry_run {
        return no_copy(&entry, Code::AZSM0000, &[]);
    }

    let mut attempts = 0;
    loop {
        attempts += 1;
        match copy_file(ctx, &entry, &target) {
            Ok((copied, hash)) => {
                let mut record = CopyRecord::new(&entry.rel, entry.size, Code::AZSM0000, &[]);
                record.attempts = attempts;
                record.checksum = (hash != 0).then(|| format!("xxh3-128:{hash:032x}"));
                let index = IndexEntry { hash, ..seen };
                return Done {
                    record,
                    index: Some((entry.rel.clone(), index)),
                    copied,
                };
            }
            Err(failure) => {
                if failure.retry && attempts < 3 && !ctx.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50 << attempts));
                    continue;
                }
                let mut record = CopyRecord::new(
                    &entry.rel,
                    entry.size,
                    failure.code,
                    &[("reason", &failure.reason)],
                );
                record.attempts = attempts;
                return Done {
                    record,
                    index: None,
                    copied: 0,
                };
            }
        }
    }
}

struct Failure {
    code: Code,
    reason: String,
    retry: bool,
}

impl Failure {
    fn source(e: &io::Error) -> Self {
        let code = if e.kind() == io::ErrorKind::PermissionDenied {
            Code::AZSM2062
        } else {
            Code::AZSM2063
        };
        Failure {
            code,
            reason: reason(e),
            retry: code == Code::AZSM2063,
        }
    }

    fn target(e: &io::Error) -> Self {
        let code = if e.kind() == io::ErrorKind::PermissionDenied {
            Code::AZSM2069
        } else {
            Code::AZSM2066
        };
        let retry = !matches!(
            e.kind(),
            io::ErrorKind::PermissionDenied | io::ErrorKind::StorageFull
        );
        Failure {
            code,
            reason: reason(e),
            retry,
        }
    }
}

/// Copies one file to a temporary name, checks it, and renames it into place.
/// Returns the bytes written and the content hash (0 when none was computed).
fn copy_file(ctx: &Ctx<'_>, entry: &Entry, target: &Path) -> Result<(u64, u128), Failure> {
    let source = ctx.src.join(std::ffi::OsStr::from_bytes(&entry.rel));
    let mut input = File::open(&source).map_err(|e| Failure::source(&e))?;
    let before = input.metadata().map_err(|e| Failure::source(&e))?;
    let tmp = ctx.tmp_dir.join(format!(
        "{}-{}",
        ctx.run_id,
        ctx.seq.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_temp(ctx, &mut input, &before, &tmp).and_then(|(written, hash)| {
        fs::rename(&tmp, target).map_err(|e| Failure::target(&e))?;
        Ok((written, hash))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_temp(
    ctx: &Ctx<'_>,
    input: &mut File,
    before: &fs::Metadata,
    tmp: &Path,
) -> Result<(u64, u128), Failure> {
    let o = ctx.options;
    let mut output = File::create(tmp).map_err(|e| Failure::target(&e))?;
    let hashing = o.checksum || o.verify == Verify::Full;
    let (written, hash) = if hashing {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::source(&e)),
            };
            hasher.update(&buf[..n]);
            output
                .write_all(&buf[..n])
                .map_err(|e| Failure::target(&e))?;
            total += n as u64;
        }
        (total, hasher.digest128())
    } else {
        // copy_file_range (or sendfile) under the hood: the data never enters our memory.
        (
            io::copy(input, &mut output).map_err(|e| Failure::source(&e))?,
            0,
        )
    };
    let after = input.metadata().map_err(|e| Failure::source(&e))?;
    if written != before.len()
        || after.len() != before.len()
        || after.mtime_nsec() != before.mtime_nsec()
        || after.mtime() != before.mtime()
    {
        return Err(Failure {
            code: Code::AZSM2063,
            reason: "the file changed while it was being read".into(),
            retry: true,
        });
    }
    let mtime =
        UNIX_EPOCH + Duration::new(before.mtime().max(0) as u64, before.mtime_nsec() as u32);
    output
        .set_times(
            FileTimes::new()
                .set_modified(mtime)
                .set_accessed(SystemTime::now()),
        )
        .and_then(|()| output.set_permissions(fs::Permissions::from_mode(before.mode() & 0o7777)))
        .map_err(|e| Failure::target(&e))?;
    drop(output);
    if o.verify != Verify::None {
        let len = fs::metadata(tmp).map_err(|e| Failure::target(&e))?.len();
        if len != written {
            return Err(Failure {
                code: Code::AZSM2066,
                reason: format!("the target holds {len} bytes, {written} were written"),
                retry: true,
            });
        }
    }
    if o.verify == Verify::Full {
        let mut reread = File::open(tmp).map_err(|e| Failure::target(&e))?;
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match reread.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buf[..n]),
                Err(e) => return Err(Failure::target(&e)),
            }
        }
        if hasher.digest128() != hash {
            return Err(Failure {
                code: Code::AZSM2066,
                reason: "the checksum read back from the target differs from the source's".into(),
                retry: true,
            });
        }
    }
    Ok((written, hash))
}

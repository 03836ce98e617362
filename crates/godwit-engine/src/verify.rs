//! `verify`: the whole target compared with the whole source, file by file, at one point in
//! time, whatever earlier runs did or recorded. Both sides are listed into scratch tables on
//! disk (redb, in the run folder, removed at the end), so memory stays flat whatever the number
//! of files; the two tables, sorted by the name a file has at the target, are then read side by
//! side, and every file gets one record: the same (AZSM2045), differs (AZSM2074), missing at
//! the target (AZSM2075), extra at the target (AZSM2076), or unreadable on one side (AZSM2077).
//! Nothing is written to either side.
//!
//! By default a file is the same when its size and modification time are: the time as the
//! target keeps it (to the nanosecond on a local file system, to the second where the target
//! keeps seconds, SFTP's listing among them; on object stores the source's time godwit stores
//! with each object, one HEAD a file of the right size). With `--checksum` both sides are read
//! and hashed (xxh3-128, streamed), and size and content decide.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender, bounded};
use futures::TryStreamExt;
use godwit_codes::Code;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use xxhash_rust::xxh3::Xxh3;

use crate::backend::{Side, TEMP_PREFIX};
use crate::ctx::Progress;
use crate::error::{JobError, reason};
use crate::filter::Filter;
use crate::index::Index;
use crate::march::{March, march};
use crate::record::{CopyLog, CopyRecord, VerifyTally, display_path};
use crate::state::Run;
use crate::store::MTIME_KEY;
use crate::walk::{EntryKind, Event};

/// The run's list of differences: the copy-log records that are not AZSM2045, one JSON
/// object a line.
pub const DIFFERENCES_FILE: &str = "differences.jsonl";

const LISTING: TableDefinition<&[u8], &[u8]> = TableDefinition::new("listing");
/// Entries written to a scratch table in one transaction.
const BATCH: usize = 4096;

/// How to verify.
#[derive(Debug)]
pub struct VerifyOptions {
    pub filter: Filter,
    /// Hash both sides instead of comparing modification times.
    pub checksum: bool,
    /// The source side from the migration's index, not from the source.
    pub use_index: bool,
    pub follow_links: bool,
    /// Files compared at once when a comparison reads or asks the store.
    pub workers: usize,
}

/// How a verification ended.
#[derive(Debug, Default)]
pub struct VerifyOutcome {
    pub tally: VerifyTally,
    /// Files compared (source files and extra files) and the source's bytes.
    pub files: u64,
    pub bytes: u64,
    /// Bytes read to hash them (`--checksum`), both sides.
    pub bytes_read: u64,
    pub stopped: bool,
}

/// One file as a side lists it, keyed in the scratch table by its name at the target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    size: u64,
    mtime_ns: i64,
    /// xxh3-128 of the content, from the index (0: not known).
    hash: u128,
    /// The source path when it differs from the key (a name sanitized at the target).
    source_rel: Option<Vec<u8>>,
}

impl Listed {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(32 + self.source_rel.as_ref().map_or(0, Vec::len));
        b.extend_from_slice(&self.size.to_le_bytes());
        b.extend_from_slice(&self.mtime_ns.to_le_bytes());
        b.extend_from_slice(&self.hash.to_le_bytes());
        if let Some(rel) = &self.source_rel {
            b.extend_from_slice(rel);
        }
        b
    }

    fn decode(b: &[u8]) -> Option<Listed> {
        Some(Listed {
            size: u64::from_le_bytes(b.get(..8)?.try_into().ok()?),
            mtime_ns: i64::from_le_bytes(b.get(8..16)?.try_into().ok()?),
            hash: u128::from_le_bytes(b.get(16..32)?.try_into().ok()?),
            source_rel: (b.len() > 32).then(|| b[32..].to_vec()),
        })
    }
}

/// A side's listing on disk, for the length of the run.
struct Scratch {
    db: Database,
    path: PathBuf,
    job_id: String,
}

impl Scratch {
    fn create(run: &Run, name: &str) -> Result<Scratch, JobError> {
        let path = run.dir.join(name);
        let job_id = run.id.clone();
        let db = Database::builder()
            .set_cache_size(8 << 20)
            .create(&path)
            .map_err(|e| scratch_error(&job_id, &path, &e.to_string()))?;
        let scratch = Scratch { db, path, job_id };
        scratch.insert(&[])?;
        Ok(scratch)
    }

    /// Adds `entries` in one transaction. Nothing here must survive a crash (the run starts
    /// over), so commits are not synced to disk.
    fn insert(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<(), JobError> {
        let insert = || -> Result<(), redb::Error> {
            let mut txn = self.db.begin_write()?;
            txn.set_durability(Durability::None)?;
            {
                let mut table = txn.open_table(LISTING)?;
                for (k, v) in entries {
                    table.insert(k.as_slice(), v.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        };
        insert().map_err(|e| self.error(&e))
    }

    fn error(&self, e: &redb::Error) -> JobError {
        scratch_error(&self.job_id, &self.path, &e.to_string())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn scratch_error(job_id: &str, path: &Path, why: &str) -> JobError {
    JobError::new(
        Code::UPDATE_MIGRATION_REPORT_ERROR,
        &[
            ("job_id", job_id),
            ("path", &path.display().to_string()),
            ("reason", why),
        ],
    )
}

/// Which side a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Source,
    Target,
}

impl Role {
    fn word(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Target => "target",
        }
    }
}

/// What listing one side found besides its files.
#[derive(Debug, Default)]
struct SideListing {
    /// Folders that could not be listed, sorted, with why.
    unreadable: Vec<(Vec<u8>, String)>,
    not_files: u64,
}

impl SideListing {
    /// The unreadable folder `rel` lies in, if any.
    fn hides(&self, rel: &[u8]) -> Option<&[u8]> {
        // The candidates sort at or before `rel`; a folder above it is a prefix ending at `/`.
        let i = self
            .unreadable
            .partition_point(|(d, _)| d.as_slice() <= rel);
        self.unreadable[..i].iter().rev().find_map(|(d, _)| {
            let inside = d.is_empty()
                || rel
                    .strip_prefix(d.as_slice())
                    .is_some_and(|rest| rest.first() == Some(&b'/'));
            inside.then_some(d.as_slice())
        })
    }
}

/// Compares `src` with `dst`, recording each file into the run's copy log and each difference
/// into its `differences.jsonl`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn verify(
    src: &Side,
    dst: &Side,
    index: Option<&Index>,
    run: &Run,
    options: &VerifyOptions,
    rt: Option<&tokio::runtime::Runtime>,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<VerifyOutcome, JobError> {
    check_roots(src, dst, rt, options.use_index)?;
    let source = Scratch::create(run, "verify-source.redb")?;
    let target = Scratch::create(run, "verify-target.redb")?;
    // The names a migration gave files at the target (`--sanitize on-the-fly`).
    let names = index.filter(|i| i.has_target_names().unwrap_or(false));
    let (src_listing, dst_listing) = std::thread::scope(|s| {
        let from_source = s.spawn(|| match (options.use_index, index) {
            (true, Some(index)) => list_index(index, &options.filter, &source, progress, stop),
            (true, None) => Ok(SideListing::default()),
            _ => list_side(
                src,
                Role::Source,
                rt,
                options,
                names,
                &source,
                progress,
                stop,
            ),
        });
        let from_target = list_side(
            dst,
            Role::Target,
            rt,
            options,
            None,
            &target,
            progress,
            stop,
        );
        let from_source = from_source.join().unwrap_or_else(|_| {
            Err(JobError::config(
                "the source listing of the verification ended unexpectedly (a bug in godwit)",
            ))
        });
        (from_source, from_target)
    });
    let (src_listing, dst_listing) = (src_listing?, dst_listing?);
    let mut outcome = VerifyOutcome {
        tally: VerifyTally {
            checksum: options.checksum,
            from_index: options.use_index,
            report: run.dir.join(DIFFERENCES_FILE).display().to_string(),
            not_files: src_listing.not_files + dst_listing.not_files,
            ..VerifyTally::default()
        },
        ..VerifyOutcome::default()
    };
    if stop.load(Ordering::Relaxed) {
        outcome.stopped = true;
    }
    let mut log = Records::create(run)?;
    for (listing, role) in [(&src_listing, Role::Source), (&dst_listing, Role::Target)] {
        for (rel, why) in &listing.unreadable {
            let record = unreadable(rel, 0, role, why);
            log.write(run, &record, &mut outcome)?;
        }
    }
    if !outcome.stopped {
        compare(
            (src, dst, rt),
            (&source, &target),
            (&src_listing, &dst_listing),
            options,
            run,
            &mut log,
            &mut outcome,
            (stop, progress),
        )?;
    }
    log.finish(run)?;
    Ok(outcome)
}

/// The source must be a folder (or a store that answers); a local target that does not exist
/// is a target holding nothing, which the records then say file by file.
fn check_roots(
    src: &Side,
    dst: &Side,
    rt: Option<&tokio::runtime::Runtime>,
    use_index: bool,
) -> Result<(), JobError> {
    if !use_index {
        match (src, rt) {
            (Side::Local(root), _) => {
                if !std::fs::metadata(root).is_ok_and(|m| m.is_dir()) {
                    let shown = root.display().to_string();
                    return Err(JobError::new(
                        Code::INVALID_SOURCE_PATH_ERROR,
                        &[("path", &shown)],
                    ));
                }
            }
            (Side::Remote(r), Some(rt)) => crate::store::reachable(r, rt, false)?,
            (Side::Remote(r), None) => return Err(crate::store::no_runtime(r)),
        }
    }
    match (dst, rt) {
        (Side::Remote(r), Some(rt)) => crate::store::reachable(r, rt, true),
        (Side::Remote(r), None) => Err(crate::store::no_runtime(r)),
        (Side::Local(_), _) => Ok(()),
    }
}

/// Lists one side into `scratch`, keyed by each file's name at the target.
#[allow(clippy::too_many_arguments)]
fn list_side(
    side: &Side,
    role: Role,
    rt: Option<&tokio::runtime::Runtime>,
    options: &VerifyOptions,
    names: Option<&Index>,
    scratch: &Scratch,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<SideListing, JobError> {
    let mut found = SideListing::default();
    if let (Role::Target, Side::Local(root)) = (role, side)
        && !root.exists()
    {
        // Nothing there: every source file is missing, and each record says so.
        return Ok(found);
    }
    let (tx, rx) = bounded::<Event>(4096 / crate::walk::BATCH_EVENTS);
    let mut failure = None;
    std::thread::scope(|s| {
        let lister = s.spawn(|| {
            let how = March {
                filter: &options.filter,
                list_names: false,
                follow_links: options.follow_links,
                threads: 2,
                batch: true,
            };
            let result = march(side, rt, how, &|_| {}, &tx, stop);
            drop(tx);
            result
        });
        let mut batch = Vec::with_capacity(BATCH);
        for event in crate::walk::events(&rx) {
            match event {
                Event::Entry(e) if e.kind == EntryKind::File => {
                    if options.filter.excludes_file(&e.rel, e.size, e.mtime_ns) {
                        continue;
                    }
                    if role == Role::Source {
                        progress.files_seen.fetch_add(1, Ordering::Relaxed);
                        progress.bytes_seen.fetch_add(e.size, Ordering::Relaxed);
                    }
                    let renamed = match names.map(|n| n.target_name(&e.rel)) {
                        Some(Ok(Some(name))) if name != e.rel => Some(name),
                        Some(Err(err)) => {
                            failure.get_or_insert(err);
                            None
                        }
                        _ => None,
                    };
                    let listed = Listed {
                        size: e.size,
                        mtime_ns: e.mtime_ns,
                        hash: 0,
                        source_rel: renamed.as_ref().map(|_| e.rel.clone()),
                    };
                    batch.push((renamed.unwrap_or(e.rel), listed.encode()));
                }
                Event::Entry(e) if e.kind != EntryKind::Dir => found.not_files += 1,
                Event::Error { rel, error } => found.unreadable.push((rel, reason(&error))),
                _ => {}
            }
            if batch.len() >= BATCH {
                if let Err(e) = scratch.insert(&batch) {
                    failure.get_or_insert(e);
                }
                batch.clear();
            }
        }
        if let Err(e) = scratch.insert(&batch) {
            failure.get_or_insert(e);
        }
        if let Ok(Err(e)) = lister.join() {
            failure.get_or_insert(e);
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if role == Role::Source && found.unreadable.iter().any(|(rel, _)| rel.is_empty()) {
        let (_, why) = &found.unreadable[0];
        return Err(JobError::new(
            Code::AZSM1002,
            &[("path", &side.shown()), ("reason", why)],
        ));
    }
    found.unreadable.sort();
    Ok(found)
}

/// The source side from the migration's index: what godwit last copied, with its checksum
/// where one was computed.
fn list_index(
    index: &Index,
    filter: &Filter,
    scratch: &Scratch,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<SideListing, JobError> {
    let mut batch = Vec::with_capacity(BATCH);
    let mut failure = None;
    index.for_each_file(|rel, e, target_name| {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let excluded = rel
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .any(|(i, _)| filter.excludes_dir(&rel[..i]));
        if excluded || filter.excludes_file(rel, e.size, e.mtime_ns) {
            return true;
        }
        progress.files_seen.fetch_add(1, Ordering::Relaxed);
        progress.bytes_seen.fetch_add(e.size, Ordering::Relaxed);
        let renamed = target_name.filter(|n| *n != rel);
        let listed = Listed {
            size: e.size,
            mtime_ns: e.mtime_ns,
            hash: e.hash,
            source_rel: renamed.map(|_| rel.to_vec()),
        };
        batch.push((renamed.unwrap_or(rel).to_vec(), listed.encode()));
        if batch.len() >= BATCH {
            if let Err(err) = scratch.insert(&batch) {
                failure = Some(err);
                return false;
            }
            batch.clear();
        }
        true
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    scratch.insert(&batch)?;
    Ok(SideListing::default())
}

/// A file at both sides whose comparison needs the stores: a hash of both, or the time an
/// object store keeps with the object.
struct Work {
    key: Vec<u8>,
    src: Listed,
    dst: Listed,
}

/// Reads both tables side by side in key order and records every file.
#[allow(clippy::too_many_arguments)]
fn compare(
    (src, dst, rt): (&Side, &Side, Option<&tokio::runtime::Runtime>),
    (source, target): (&Scratch, &Scratch),
    (src_listing, dst_listing): (&SideListing, &SideListing),
    options: &VerifyOptions,
    run: &Run,
    log: &mut Records,
    outcome: &mut VerifyOutcome,
    (stop, progress): (&AtomicBool, &Progress),
) -> Result<(), JobError> {
    let src_txn = source
        .db
        .begin_read()
        .map_err(|e| source.error(&e.into()))?;
    let dst_txn = target
        .db
        .begin_read()
        .map_err(|e| target.error(&e.into()))?;
    let src_table = src_txn
        .open_table(LISTING)
        .map_err(|e| source.error(&e.into()))?;
    let dst_table = dst_txn
        .open_table(LISTING)
        .map_err(|e| target.error(&e.into()))?;
    let mut a = src_table.iter().map_err(|e| source.error(&e.into()))?;
    let mut b = dst_table.iter().map_err(|e| target.error(&e.into()))?;
    let needs_work = options.checksum || (!dst.features().local && dst.features().user_metadata);
    let (work_tx, work_rx) = bounded::<Work>(options.workers * 4);
    let (done_tx, done_rx) = bounded::<CopyRecord>(options.workers * 4);
    std::thread::scope(|s| -> Result<(), JobError> {
        for _ in 0..options.workers {
            let (work_rx, done_tx) = (work_rx.clone(), done_tx.clone());
            s.spawn(move || {
                work_loop(
                    src,
                    dst,
                    rt,
                    options.checksum,
                    (&work_rx, &done_tx),
                    (stop, progress),
                );
            });
        }
        drop((work_rx, done_tx));
        let mut sa = next(&mut a, source)?;
        let mut sb = next(&mut b, target)?;
        let mut sent = 0u64;
        let mut received = 0u64;
        let pending_done = |log: &mut Records,
                            outcome: &mut VerifyOutcome,
                            block: bool,
                            received: &mut u64|
         -> Result<(), JobError> {
            loop {
                let record = if block {
                    done_rx.recv().ok()
                } else {
                    done_rx.try_recv().ok()
                };
                let Some(record) = record else { break };
                *received += 1;
                progress.files_done.fetch_add(1, Ordering::Relaxed);
                log.write(run, &record, outcome)?;
                if block {
                    break;
                }
            }
            Ok(())
        };
        loop {
            if stop.load(Ordering::Relaxed) {
                outcome.stopped = true;
                break;
            }
            let record = match (sa.take(), sb.take()) {
                (None, None) => break,
                (Some((key, s_entry)), None) => {
                    sb = None;
                    let r = only_at_source(&key, &s_entry, dst_listing);
                    sa = next(&mut a, source)?;
                    outcome.bytes += s_entry.size;
                    r
                }
                (None, Some((key, d_entry))) => {
                    let r = only_at_target(&key, &d_entry, src_listing);
                    sb = next(&mut b, target)?;
                    r
                }
                (Some((ka, ea)), Some((kb, eb))) => match ka.cmp(&kb) {
                    std::cmp::Ordering::Less => {
                        let r = only_at_source(&ka, &ea, dst_listing);
                        outcome.bytes += ea.size;
                        sa = next(&mut a, source)?;
                        sb = Some((kb, eb));
                        r
                    }
                    std::cmp::Ordering::Greater => {
                        let r = only_at_target(&kb, &eb, src_listing);
                        sa = Some((ka, ea));
                        sb = next(&mut b, target)?;
                        r
                    }
                    std::cmp::Ordering::Equal => {
                        sa = next(&mut a, source)?;
                        sb = next(&mut b, target)?;
                        outcome.bytes += ea.size;
                        if ea.size != eb.size || !needs_work {
                            Some(decide(&ka, &ea, &eb, dst))
                        } else {
                            let work = Work {
                                key: ka,
                                src: ea,
                                dst: eb,
                            };
                            // Hand it over, writing finished records while the queue is full.
                            let mut work = Some(work);
                            while let Some(w) = work.take() {
                                match work_tx.try_send(w) {
                                    Ok(()) => sent += 1,
                                    Err(crossbeam_channel::TrySendError::Full(w)) => {
                                        work = Some(w);
                                        pending_done(log, outcome, true, &mut received)?;
                                    }
                                    Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                                        break;
                                    }
                                }
                            }
                            pending_done(log, outcome, false, &mut received)?;
                            None
                        }
                    }
                },
            };
            if let Some(record) = record {
                progress.files_done.fetch_add(1, Ordering::Relaxed);
                log.write(run, &record, outcome)?;
            }
        }
        drop(work_tx);
        while received < sent {
            let before = received;
            pending_done(log, outcome, true, &mut received)?;
            if received == before {
                break;
            }
        }
        Ok(())
    })?;
    outcome.bytes_read = progress.bytes_done.load(Ordering::Relaxed);
    Ok(())
}

/// The next entry of a scratch table.
fn next(
    it: &mut redb::Range<'_, &'static [u8], &'static [u8]>,
    scratch: &Scratch,
) -> Result<Option<(Vec<u8>, Listed)>, JobError> {
    match it.next() {
        None => Ok(None),
        Some(Err(e)) => Err(scratch.error(&e.into())),
        Some(Ok((k, v))) => {
            let listed = Listed::decode(v.value())
                .ok_or_else(|| scratch.error(&redb::Error::Corrupted("a short entry".into())))?;
            Ok(Some((k.value().to_vec(), listed)))
        }
    }
}

/// A source file with nothing at its name at the target.
fn only_at_source(key: &[u8], e: &Listed, dst: &SideListing) -> Option<CopyRecord> {
    let rel = e.source_rel.as_deref().unwrap_or(key);
    let mut record = match dst.hides(key) {
        Some(dir) => {
            let why = folder_unreadable(dir, dst);
            unreadable(rel, e.size, Role::Target, &why)
        }
        None => CopyRecord::new(rel, e.size, Code::AZSM2075, &[]),
    };
    record.target_path = e.source_rel.as_ref().map(|_| display_path(key));
    Some(record)
}

/// A target file the source does not have: extra, unless it sits in a folder the source could
/// not list, or in a temporary folder of godwit's own.
fn only_at_target(key: &[u8], e: &Listed, src: &SideListing) -> Option<CopyRecord> {
    let top = key.split(|b| *b == b'/').next().unwrap_or_default();
    if key.contains(&b'/') && top.starts_with(TEMP_PREFIX.as_bytes()) {
        return None;
    }
    Some(match src.hides(key) {
        Some(dir) => unreadable(key, e.size, Role::Source, &folder_unreadable(dir, src)),
        None => CopyRecord::new(key, e.size, Code::AZSM2076, &[]),
    })
}

fn folder_unreadable(dir: &[u8], listing: &SideListing) -> String {
    let why = listing
        .unreadable
        .iter()
        .find(|(d, _)| d.as_slice() == dir)
        .map_or("", |(_, w)| w.as_str());
    let shown = if dir.is_empty() {
        "the root".to_string()
    } else {
        format!("the folder {}", display_path(dir))
    };
    format!("{shown} could not be listed ({why})")
}

fn unreadable(rel: &[u8], size: u64, role: Role, why: &str) -> CopyRecord {
    let mut r = CopyRecord::new(
        rel,
        size,
        Code::AZSM2077,
        &[("side", role.word()), ("reason", why)],
    );
    r.operation = Some(match role {
        Role::Source => "read source",
        Role::Target => "read target",
    });
    r
}

/// The verdict on a file at both sides from the listings alone.
fn decide(key: &[u8], s: &Listed, d: &Listed, dst: &Side) -> CopyRecord {
    let rel = s.source_rel.as_deref().unwrap_or(key);
    let mut record = if s.size != d.size {
        let what = format!("size {} at the source, {} at the target", s.size, d.size);
        CopyRecord::new(rel, s.size, Code::AZSM2074, &[("what", &what)])
    } else if dst.features().user_metadata && !dst.features().local {
        // An object store lists upload times: without a HEAD only the size can be told.
        CopyRecord::new(rel, s.size, Code::AZSM2045, &[("how", "size")])
    } else if same_time(s.mtime_ns, d.mtime_ns, dst) {
        CopyRecord::new(
            rel,
            s.size,
            Code::AZSM2045,
            &[("how", "size and modification time")],
        )
    } else {
        let what = format!(
            "modification time {} at the source, {} at the target",
            shown_time(s.mtime_ns),
            shown_time(d.mtime_ns)
        );
        CopyRecord::new(rel, s.size, Code::AZSM2074, &[("what", &what)])
    };
    record.target_path = s.source_rel.as_ref().map(|_| display_path(key));
    record
}

/// Whether a target's time is the source's, as precisely as the target keeps times: to the
/// nanosecond, or to the second where it keeps seconds (SFTP, some file systems).
fn same_time(source_ns: i64, target_ns: i64, dst: &Side) -> bool {
    const NS: i64 = 1_000_000_000;
    if source_ns == target_ns {
        return true;
    }
    let seconds_only = !dst.features().local || target_ns.rem_euclid(NS) == 0;
    seconds_only && source_ns.div_euclid(NS) == target_ns.div_euclid(NS)
}

fn shown_time(ns: i64) -> String {
    let t = if ns >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns.unsigned_abs())
    } else {
        std::time::UNIX_EPOCH - std::time::Duration::from_nanos(ns.unsigned_abs())
    };
    humantime::format_rfc3339_nanos(t).to_string()
}

/// A worker: compares the files it is handed by reading the stores, until the queue closes.
fn work_loop(
    src: &Side,
    dst: &Side,
    rt: Option<&tokio::runtime::Runtime>,
    checksum: bool,
    (work, done): (&Receiver<Work>, &Sender<CopyRecord>),
    (stop, progress): (&AtomicBool, &Progress),
) {
    // One read buffer a worker, not one a file: a fresh 1 MiB buffer is an mmap and munmap of
    // its own (godwit pins glibc's mmap threshold at 1 MiB), which made hashing 100,000 small
    // files twice as slow.
    let mut buf = vec![0u8; 1 << 20];
    for w in work.iter() {
        if stop.load(Ordering::Relaxed) {
            // Drained without looking: the run says it stopped.
            continue;
        }
        let rel = w.src.source_rel.clone().unwrap_or_else(|| w.key.clone());
        let mut record = if checksum {
            let read = w.src.size * if w.src.hash != 0 { 1 } else { 2 };
            progress.bytes_done.fetch_add(read, Ordering::Relaxed);
            by_content(src, dst, rt, &rel, &w, &mut buf)
        } else {
            by_stored_time(dst, rt, &w)
        };
        record.target_path = w.src.source_rel.as_ref().map(|_| display_path(&w.key));
        if done.send(record).is_err() {
            return;
        }
    }
}

/// Hashes both sides (the source's from the index when it holds one).
fn by_content(
    src: &Side,
    dst: &Side,
    rt: Option<&tokio::runtime::Runtime>,
    rel: &[u8],
    w: &Work,
    buf: &mut [u8],
) -> CopyRecord {
    let size = w.src.size;
    let source = if w.src.hash != 0 {
        Ok(w.src.hash)
    } else {
        hash_of(src, rt, rel, buf)
    };
    let source = match source {
        Ok(h) => h,
        Err(why) => return unreadable(rel, size, Role::Source, &why),
    };
    let target = match hash_of(dst, rt, &w.key, buf) {
        Ok(h) => h,
        Err(why) => return unreadable(rel, size, Role::Target, &why),
    };
    if source == target {
        let mut r = CopyRecord::new(rel, size, Code::AZSM2045, &[("how", "size and content")]);
        r.checksum = Some(format!("xxh3-128:{source:032x}"));
        r
    } else {
        let what =
            format!("content: xxh3-128 {source:032x} at the source, {target:032x} at the target");
        CopyRecord::new(rel, size, Code::AZSM2074, &[("what", &what)])
    }
}

/// The source time an object store keeps with the object (one HEAD).
fn by_stored_time(dst: &Side, rt: Option<&tokio::runtime::Runtime>, w: &Work) -> CopyRecord {
    let rel = w.src.source_rel.as_deref().unwrap_or(&w.key);
    let size = w.src.size;
    let (Side::Remote(r), Some(rt)) = (dst, rt) else {
        return decide(&w.key, &w.src, &w.dst, dst);
    };
    let Ok(key) = std::str::from_utf8(&w.key) else {
        return unreadable(rel, size, Role::Target, "the name is not UTF-8");
    };
    let stored = match rt.block_on(r.op.stat(key)) {
        Ok(m) => m
            .user_metadata()
            .and_then(|u| u.get(MTIME_KEY))
            .and_then(|v| v.parse::<i64>().ok()),
        Err(e) => return unreadable(rel, size, Role::Target, &e.to_string()),
    };
    match stored {
        Some(t) if t == w.src.mtime_ns => CopyRecord::new(
            rel,
            size,
            Code::AZSM2045,
            &[("how", "size and modification time")],
        ),
        Some(t) => {
            let what = format!(
                "modification time {} at the source, {} at the target",
                shown_time(w.src.mtime_ns),
                shown_time(t)
            );
            CopyRecord::new(rel, size, Code::AZSM2074, &[("what", &what)])
        }
        None => {
            let what = format!(
                "modification time {} at the source; the object keeps none (it was not written by godwit)",
                shown_time(w.src.mtime_ns)
            );
            CopyRecord::new(rel, size, Code::AZSM2074, &[("what", &what)])
        }
    }
}

/// The xxh3-128 of the file at `rel` on `side`, read locally into `buf`, from a store in 8 MiB
/// chunks.
fn hash_of(
    side: &Side,
    rt: Option<&tokio::runtime::Runtime>,
    rel: &[u8],
    buf: &mut [u8],
) -> Result<u128, String> {
    match side {
        Side::Local(root) => {
            let mut f =
                File::open(root.join(std::ffi::OsStr::from_bytes(rel))).map_err(|e| reason(&e))?;
            crate::transfer::hash_all(&mut f, buf).map_err(|e| reason(&e))
        }
        Side::Remote(r) => {
            let rt = rt.ok_or("a remote store without a runtime (a bug in godwit)")?;
            let key = std::str::from_utf8(rel).map_err(|_| "the name is not UTF-8".to_string())?;
            let mut h = Xxh3::new();
            rt.block_on(async {
                let reader = r.op.reader_with(key).chunk(8 << 20).await?;
                let mut stream = reader.into_bytes_stream(..).await?;
                while let Some(chunk) = stream.try_next().await? {
                    h.update(&chunk);
                }
                Ok::<(), io::Error>(())
            })
            .map_err(|e| e.to_string())?;
            Ok(h.digest128())
        }
    }
}

/// The copy log and the list of differences, written together, and the tally.
struct Records {
    log: CopyLog,
    differences: BufWriter<File>,
    path: PathBuf,
}

impl Records {
    fn create(run: &Run) -> Result<Records, JobError> {
        let path = run.dir.join(DIFFERENCES_FILE);
        let file = File::create(&path).map_err(|e| scratch_error(&run.id, &path, &reason(&e)))?;
        Ok(Records {
            log: CopyLog::create(run)?,
            differences: BufWriter::with_capacity(64 * 1024, file),
            path,
        })
    }

    fn write(
        &mut self,
        run: &Run,
        record: &CopyRecord,
        outcome: &mut VerifyOutcome,
    ) -> Result<(), JobError> {
        let t = &mut outcome.tally;
        match record.code {
            Code::AZSM2045 => t.same += 1,
            Code::AZSM2074 => t.differ += 1,
            Code::AZSM2075 => t.missing += 1,
            Code::AZSM2076 => t.extra += 1,
            _ => t.unreadable += 1,
        }
        outcome.files += 1;
        self.log.write(run, record)?;
        if record.code != Code::AZSM2045 {
            serde_json::to_writer(&mut self.differences, record)
                .map_err(io::Error::from)
                .and_then(|()| self.differences.write_all(b"\n"))
                .map_err(|e| scratch_error(&run.id, &self.path, &reason(&e)))?;
        }
        Ok(())
    }

    fn finish(mut self, run: &Run) -> Result<(), JobError> {
        self.differences
            .flush()
            .map_err(|e| scratch_error(&run.id, &self.path, &reason(&e)))?;
        self.log.finish(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_file_survives_its_encoding() {
        for e in [
            Listed {
                size: 7,
                mtime_ns: -1,
                hash: u128::MAX,
                source_rel: None,
            },
            Listed {
                size: 0,
                mtime_ns: 1_700_000_000_123_456_789,
                hash: 0,
                source_rel: Some(b"a/b\xff".to_vec()),
            },
        ] {
            assert_eq!(Listed::decode(&e.encode()), Some(e));
        }
        assert_eq!(Listed::decode(b"short"), None);
    }

    #[test]
    fn an_unreadable_folder_hides_what_is_below_it_only() {
        let listing = SideListing {
            unreadable: vec![
                (b"a/b".to_vec(), "denied".into()),
                (b"c".to_vec(), "x".into()),
            ],
            not_files: 0,
        };
        assert_eq!(listing.hides(b"a/b/f"), Some(&b"a/b"[..]));
        assert_eq!(listing.hides(b"a/b/g/h"), Some(&b"a/b"[..]));
        assert_eq!(listing.hides(b"a/bc"), None);
        assert_eq!(listing.hides(b"a/a"), None);
        assert_eq!(listing.hides(b"c/d"), Some(&b"c"[..]));
        assert_eq!(listing.hides(b"b"), None);
        let root = SideListing {
            unreadable: vec![(Vec::new(), "gone".into())],
            not_files: 0,
        };
        assert_eq!(root.hides(b"x/y"), Some(&b""[..]));
    }

    #[test]
    fn times_match_as_precisely_as_the_target_keeps_them() {
        let local = Side::Local(PathBuf::from("/x"));
        let t = 1_700_000_000_123_456_789;
        assert!(same_time(t, t, &local));
        assert!(same_time(t, 1_700_000_000_000_000_000, &local));
        assert!(!same_time(t, t + 1, &local));
        assert!(!same_time(t, 1_700_000_001_000_000_000, &local));
        assert!(same_time(-1, -1_000_000_000, &local));
    }
}

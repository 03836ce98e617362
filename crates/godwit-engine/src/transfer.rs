//! Moving one file's bytes, and making sure they arrived.
//!
//! Local to local takes the kernel's path (copy_file_range) unless a checksum is wanted. Every
//! other pairing streams chunks through one loop that hashes what it reads. Nothing is visible
//! at its final name before it is complete: a local or SFTP target is written under a
//! temporary name in the run's temporary folder and renamed; an object store publishes an object (or
//! completes a multipart upload) only at the end, and an upload that fails is aborted.

use std::fs::{self, File, FileTimes};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;
use godwit_codes::Code;
use opendal::Buffer;
use xxhash_rust::xxh3::Xxh3;

use godwit_spec::Verify;

use crate::backend::Side;
use crate::ctx::{Ctx, Done};
use crate::error::Side::{Source, Target};
use crate::error::{FileError, JobError, Side as FileSide, reason};
use crate::record::CopyRecord;
use crate::store::{MTIME_KEY, Remote};
use crate::walk::Entry;

/// Size of the chunks read, and of the parts of a multipart upload (larger for very large files:
/// see `part_size`).
const CHUNK: usize = 8 << 20;
/// Parts of one large file uploaded at once.
const PARTS_IN_FLIGHT: usize = 3;
/// Object stores take at most 10,000 parts per upload; keep a margin.
const MAX_PARTS: u64 = 9_000;

/// The part size for a file of `size` bytes: 8 MiB, or more (in whole MiB) when 8 MiB parts
/// would be too many, so a 5 TiB object still fits in 9,000 parts.
fn part_size(size: u64) -> usize {
    let needed = size.div_ceil(MAX_PARTS).div_ceil(1 << 20) << 20;
    usize::try_from(needed.max(CHUNK as u64)).unwrap_or(usize::MAX)
}

/// Where a run writes its temporary files at the target: `dir` at the target root (the
/// migration's), `run` under it (this run's).
#[derive(Debug, Clone)]
pub(crate) struct Temp {
    pub(crate) dir: String,
    pub(crate) run: String,
}

/// The migration's temporary folder at the target: its name, or the next free one when the
/// source's root holds an entry of that name (which is copied like any other file or folder).
pub(crate) fn choose_temp_dir(
    src: &Side,
    dst: &Side,
    rt: Option<&tokio::runtime::Runtime>,
    migration_id: &str,
    run_id: &str,
) -> Temp {
    let base = crate::backend::temp_dir_name(migration_id);
    let needs_temp = dst.features().local || !dst.features().atomic_write;
    let mut dir = base.clone();
    for n in 2..100 {
        if !needs_temp || !exists_at(src, rt, dir.as_bytes()) {
            break;
        }
        dir = format!("{base}-{n}");
    }
    Temp {
        run: format!("{dir}/{run_id}"),
        dir,
    }
}

/// Removes what earlier runs of this migration left in its temporary folder at the target
/// (`ours` tells a run of this migration's state directory from any other: those are never
/// touched, since they may be running), and prepares this run's folder when `start`. At the
/// end (`start` false) this run's folder goes, and the migration's folder when it is empty.
/// Object stores that publish atomically need no temporary names.
pub(crate) fn clear_temp(
    dst: &Side,
    rt: Option<&tokio::runtime::Runtime>,
    temp: &Temp,
    ours: &dyn Fn(&str) -> bool,
    start: bool,
) -> Result<(), JobError> {
    match dst {
        Side::Local(root) => {
            let dir = root.join(&temp.dir);
            if start {
                for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                    if e.file_name().to_str().is_some_and(ours) {
                        let _ = fs::remove_dir_all(e.path());
                    }
                }
                fs::create_dir_all(root.join(&temp.run)).map_err(|e| {
                    let path = root.display().to_string();
                    let code = if e.kind() == io::ErrorKind::PermissionDenied {
                        Code::AZSM1021
                    } else {
                        Code::AZSM1022
                    };
                    JobError::new(code, &[("path", &path), ("reason", &reason(&e))])
                })?;
            } else {
                let _ = fs::remove_dir_all(root.join(&temp.run));
                let _ = fs::remove_dir(&dir);
            }
        }
        Side::Remote(r) if !r.features().atomic_write => {
            if let Some(rt) = rt {
                rt.block_on(async {
                    if start {
                        let listed = r.op.list(&format!("{}/", temp.dir)).await;
                        for e in listed.into_iter().flatten() {
                            let name = e.name().trim_end_matches('/');
                            if e.metadata().is_dir() && ours(name) {
                                let _ = r.op.delete_with(e.path()).recursive(true).await;
                            }
                        }
                        // Made once here: the writes to it do not make folders.
                        r.op.create_dir(&format!("{}/", temp.run))
                            .await
                            .map_err(|e| crate::store::job_failure(r, &e, true))
                    } else {
                        let run = format!("{}/", temp.run);
                        let _ = r.op.delete_with(&run).recursive(true).await;
                        let _ = r.op.delete(&format!("{}/", temp.dir)).await;
                        Ok(())
                    }
                })?;
            }
        }
        Side::Remote(_) => {}
    }
    Ok(())
}

/// The path at the target, as the string a store addresses it by.
fn target_rel(entry: &Entry) -> Result<&str, FileError> {
    utf8_rel(entry.target_rel())
}

fn utf8_rel(rel: &[u8]) -> Result<&str, FileError> {
    std::str::from_utf8(rel).map_err(|_| {
        FileError::for_good(
            Code::AZSM2022,
            FileSide::Target,
            "the name is not UTF-8, which this target cannot address".into(),
        )
    })
}

/// What the target holds where a file belongs, compared with the source file `entry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AtTarget {
    /// This very file: same size and modification time (kept as metadata on object stores
    /// that have it).
    Same,
    /// Something else: another size or time, a folder, a link, an object not written by
    /// godwit (without its time).
    Differs,
    Missing,
    /// It could not be told (the request failed).
    Unknown,
}

/// What the target holds at `entry`'s place: one stat (a HEAD on an object store).
pub(crate) fn at_target(ctx: &Ctx<'_>, entry: &Entry) -> AtTarget {
    holds(
        ctx.dst,
        ctx.rt.as_ref(),
        entry.target_rel(),
        (entry.size, entry.mtime_ns),
    )
}

/// What `dst` holds at `rel`, compared with a file of `(size, mtime_ns)`: one stat (a HEAD on
/// an object store). A local path through a link at the target differs.
pub(crate) fn holds(
    dst: &Side,
    rt: Option<&tokio::runtime::Runtime>,
    rel: &[u8],
    (size, mtime_ns): (u64, i64),
) -> AtTarget {
    let verdict = |same: bool| {
        if same {
            AtTarget::Same
        } else {
            AtTarget::Differs
        }
    };
    match dst {
        Side::Local(root) => {
            let Ok(path) = crate::backend::inside_target(root, rel) else {
                return AtTarget::Differs;
            };
            match fs::symlink_metadata(path) {
                Ok(m) => verdict(
                    m.is_file()
                        && m.len() == size
                        && m.mtime()
                            .saturating_mul(1_000_000_000)
                            .saturating_add(m.mtime_nsec())
                            == mtime_ns,
                ),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    AtTarget::Missing
                }
                Err(_) => AtTarget::Unknown,
            }
        }
        Side::Remote(r) => {
            let (Some(rt), Ok(rel)) = (rt, utf8_rel(rel)) else {
                return AtTarget::Unknown;
            };
            match rt.block_on(r.op.stat(rel)) {
                Ok(m) => verdict(
                    m.content_length() == size
                        && (!r.features().user_metadata
                            || m.user_metadata()
                                .and_then(|u| u.get(MTIME_KEY))
                                .and_then(|v| v.parse::<i64>().ok())
                                == Some(mtime_ns)),
                ),
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => AtTarget::Missing,
                Err(_) => AtTarget::Unknown,
            }
        }
    }
}

/// Whether the target already holds this very file (same size and modification time), as a
/// run killed between writing it and recording it leaves it.
pub(crate) fn already_at_target(ctx: &Ctx<'_>, entry: &Entry) -> bool {
    at_target(ctx, entry) == AtTarget::Same
}

/// Makes the empty source folder `rel` exist at the target (`--create-empty-dirs`): a folder
/// on file systems and SFTP, a zero-byte `rel/` marker on object stores. Returns its record.
pub(crate) fn make_empty_dir(ctx: &Ctx<'_>, rel: &[u8]) -> CopyRecord {
    let clean = ctx
        .options
        .sanitize
        .then(|| ctx.options.profile.sanitize_path(rel))
        .flatten();
    let target = clean.as_deref().unwrap_or(rel);
    let result: Result<(), String> = match (ctx.dst, &ctx.rt) {
        _ if ctx.target_ready().is_err() => Err("the target cannot be reached".into()),
        (Side::Local(root), _) => crate::backend::inside_target(root, target)
            .and_then(|path| fs::create_dir_all(path).map_err(|e| reason(&e))),
        (Side::Remote(r), Some(rt)) => match std::str::from_utf8(target) {
            Ok(t) => rt
                .block_on(r.op.create_dir(&format!("{t}/")))
                .map_err(|e| FileError::store(&e, Target).reason),
            Err(_) => Err("the name is not UTF-8, which this target cannot address".into()),
        },
        (Side::Remote(_), None) => Err("a remote store without a runtime (a bug in godwit)".into()),
    };
    let mut shown = rel.to_vec();
    shown.push(b'/');
    let mut record = match result {
        Ok(()) => CopyRecord::new(&shown, 0, Code::AZSM0000, &[]),
        Err(why) => CopyRecord::new(
            &shown,
            0,
            Code::EMPTY_FOLDER_CREATION_FAILURE_ERROR,
            &[("reason", &why)],
        ),
    };
    record.attempts = 1;
    if clean.is_some() {
        let mut t = target.to_vec();
        t.push(b'/');
        record.target_path = Some(crate::record::display_path(&t));
    }
    record
}

/// The name `entry` has at the target under `--sanitize on-the-fly`, or None when it keeps its
/// own. The mapping is kept in the index, so later runs use the same name. Two source names
/// that sanitize to one, or a sanitized name that a real source file already has, are told
/// apart by a tag from a hash of the original name (`a_b~3f2e1d.txt`): stable across runs.
pub(crate) fn sanitized_name(ctx: &Ctx<'_>, entry: &Entry) -> Result<Option<Vec<u8>>, JobError> {
    let index = ctx.index;
    if let Some(name) = index.target_name(&entry.rel)? {
        return Ok(Some(name));
    }
    let profile = &ctx.options.profile;
    let Some(clean) = profile.sanitize_path(&entry.rel) else {
        // Fine as it is, unless an earlier run gave this very name to a sanitized file.
        if index.name_taken_by_other(&entry.rel, &entry.rel)? {
            let tagged = tag_last(profile, &entry.rel, &entry.rel, 12);
            return index.claim_target_name(&entry.rel, &[tagged]);
        }
        return Ok(None);
    };
    let original = entry
        .rel
        .rsplit(|b| *b == b'/')
        .next()
        .unwrap_or(&entry.rel);
    let choices: Vec<Vec<u8>> = [
        clean.clone(),
        tag_last(profile, &clean, original, 6),
        tag_last(profile, &clean, &entry.rel, 12),
    ]
    .into_iter()
    .filter(|c| !exists_at_source(ctx, c))
    .collect();
    index.claim_target_name(&entry.rel, &choices)
}

/// `path` with its last name tagged by `hex` hex digits of a hash of `seed`.
fn tag_last(profile: &crate::TargetProfile, path: &[u8], seed: &[u8], hex: usize) -> Vec<u8> {
    let tag = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(seed));
    let (dir, name) = match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => (&path[..0], path),
    };
    [dir, &profile.with_tag(name, &tag[..hex])].concat()
}

/// Whether the source holds a file or folder at `rel` (a name a sanitized file must not take).
fn exists_at_source(ctx: &Ctx<'_>, rel: &[u8]) -> bool {
    exists_at(ctx.src, ctx.rt.as_ref(), rel)
}

/// Whether `side` holds a file or folder at `rel` (when it cannot be told: yes).
fn exists_at(side: &Side, rt: Option<&tokio::runtime::Runtime>, rel: &[u8]) -> bool {
    match (side, rt) {
        (Side::Local(root), _) => root
            .join(std::ffi::OsStr::from_bytes(rel))
            .symlink_metadata()
            .is_ok(),
        (Side::Remote(r), Some(rt)) => std::str::from_utf8(rel).is_ok_and(|rel| {
            let (file, dir) = (rel.to_string(), format!("{rel}/"));
            rt.block_on(async {
                r.op.exists(&file).await.unwrap_or(true) || r.op.exists(&dir).await.unwrap_or(true)
            })
        }),
        (Side::Remote(_), None) => true,
    }
}

/// Moves at the target the file godwit wrote for `from` (gone from the source) to where
/// `entry` (new at the source, same size, mtime and inode) belongs: a rename on a local or
/// SFTP target, a server-side copy and a delete on object stores. Returns its record, or None
/// when the target cannot do it or no longer holds that file (the entry is then copied).
pub(crate) fn move_at_target(ctx: &Ctx<'_>, from: &[u8], entry: &Entry) -> Option<Done> {
    let old = ctx.index.get(from).ok()??;
    let sanitized = ctx.index.target_name(from).ok()?;
    let old_target = sanitized.clone().unwrap_or_else(|| from.to_vec());
    let new_target = entry.target_rel();
    match (ctx.dst, &ctx.rt) {
        (Side::Local(root), _) => {
            let src = crate::backend::inside_target(root, &old_target).ok()?;
            let dst = crate::backend::inside_target(root, new_target).ok()?;
            // The target must still hold what godwit wrote there.
            let m = src.symlink_metadata().ok()?;
            if !m.is_file() || m.len() != entry.size {
                return None;
            }
            rename_into_place(&src, &dst).ok()?;
            crate::backend::prune_folders(root, ctx.src, from, &old_target);
        }
        (Side::Remote(r), Some(rt)) => {
            ctx.target_ready().ok()?;
            let old_s = std::str::from_utf8(&old_target).ok()?;
            let new_s = std::str::from_utf8(new_target).ok()?;
            let can = r.features();
            rt.block_on(async {
                let m = r.op.stat(old_s).await.ok()?;
                if m.content_length() != entry.size {
                    return None;
                }
                if can.rename {
                    r.op.rename(old_s, new_s).await.ok()
                } else if can.server_side_copy {
                    r.op.copy(old_s, new_s).await.ok()?;
                    // Left behind on failure, the old name is deleted by the true-up's deletes.
                    let _ = r.op.delete(old_s).await;
                    Some(())
                } else {
                    None
                }
            })?;
        }
        (Side::Remote(_), None) => return None,
    }
    // The old name is no longer at the target: out of the index, so no delete is attempted.
    let _ = ctx.index.remove_batch(&[from.to_vec()]);
    if sanitized.is_some() {
        let _ = ctx.index.forget_target_name(from);
    }
    let shown = crate::record::display_path(from);
    let mut record = CopyRecord::new(&entry.rel, entry.size, Code::AZSM2044, &[("from", &shown)]);
    record.attempts = 1;
    record.target_path = entry.target.as_deref().map(crate::record::display_path);
    Some(Done {
        record,
        rel: entry.rel.clone(),
        index: Some((
            entry.rel.clone(),
            crate::index::IndexEntry {
                size: entry.size,
                mtime_ns: entry.mtime_ns,
                hash: old.hash,
                ino: entry.ino,
            },
        )),
        copied: 0,
        perms: None,
    })
}

/// Makes `entry` another name at the local target of the file godwit copied to `first` in
/// this run (`--hard-links`): a hard link under a temporary name, renamed into place. Returns
/// its record; when the link cannot be made (the target's file system has no hard links, the
/// first name is gone), the file is copied instead.
pub(crate) fn link_at_target(
    ctx: &Ctx<'_>,
    entry: Entry,
    seen: crate::index::IndexEntry,
    first: &[u8],
) -> Done {
    let Side::Local(root) = ctx.dst else {
        unreachable!("links are kept at a local target only")
    };
    let tmp = root.join(temp_name(ctx));
    let linked = target_path(root, first).and_then(|from| {
        fs::hard_link(&from, &tmp).map_err(|e| FileError::write(&e))?;
        let placed =
            target_path(root, entry.target_rel()).and_then(|to| rename_into_place(&tmp, &to));
        if placed.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        placed
    });
    if linked.is_err() {
        return crate::copy::transfer_with_retries(ctx, entry, seen);
    }
    let mut record = CopyRecord::new(&entry.rel, entry.size, Code::AZSM0000, &[]);
    record.target_path = entry.target.as_deref().map(crate::record::display_path);
    record.attempts = 1;
    Done {
        record,
        index: Some((entry.rel.clone(), seen)),
        rel: entry.rel,
        copied: 0,
        perms: None,
    }
}

/// Copies one file, an object with `metadata` among its user metadata (permissions carried
/// with the data). Returns the bytes written and the content hash (0 when none was computed).
pub(crate) fn copy_file(
    ctx: &Ctx<'_>,
    entry: &Entry,
    metadata: Option<&[(String, String)]>,
) -> Result<(u64, u128), FileError> {
    match (ctx.src, ctx.dst, &ctx.rt) {
        // Without a runtime both sides are local and nothing needs the bytes: the kernel copies.
        (Side::Local(src), Side::Local(dst), None) => local_fast(ctx, entry, src, dst),
        (_, _, Some(rt)) => {
            ctx.target_ready()
                .map_err(|e| FileError::for_good(e.code, Target, e.message))?;
            // Large files hold upload buffers: only a few at once, so memory stays bounded.
            let large = entry.size > CHUNK as u64;
            let token = if large {
                ctx.large_slots.1.recv().ok()
            } else {
                None
            };
            let result = rt.block_on(streamed(ctx, entry, metadata));
            if token.is_some() {
                let _ = ctx.large_slots.0.send(());
            }
            result
        }
        (_, _, None) => Err(FileError::for_good(
            Code::AZSM1060,
            Target,
            "a remote store without a runtime to drive it (a bug in godwit)".into(),
        )),
    }
}

/// Recreates a symbolic link at a local target (`--links copy`): the same link text, made under
/// a temporary name and renamed into place.
pub(crate) fn copy_link(ctx: &Ctx<'_>, entry: &Entry) -> Result<(u64, u128), FileError> {
    let (Side::Local(src), Side::Local(dst)) = (ctx.src, ctx.dst) else {
        return Err(FileError::for_good(
            Code::AZSM2021,
            Target,
            "only a local target holds links".into(),
        ));
    };
    let rel = std::ffi::OsStr::from_bytes(&entry.rel);
    let points_to = fs::read_link(src.join(rel)).map_err(|e| FileError::read(&e))?;
    let tmp = dst.join(temp_name(ctx));
    std::os::unix::fs::symlink(&points_to, &tmp).map_err(|e| FileError::write(&e))?;
    let placed = target_path(dst, entry.target_rel()).and_then(|to| rename_into_place(&tmp, &to));
    if placed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    placed.map(|()| (0, 0))
}

/// A new temporary name in this run's folder at the target.
fn temp_name(ctx: &Ctx<'_>) -> String {
    format!(
        "{}/{}",
        ctx.temp.run,
        ctx.seq.fetch_add(1, Ordering::Relaxed)
    )
}

fn mtime_of(m: &fs::Metadata) -> SystemTime {
    UNIX_EPOCH + Duration::new(m.mtime().max(0) as u64, m.mtime_nsec() as u32)
}

/// Local to local without hashing: the data never enters our memory. The file is published
/// whole or not at all (see `publish.rs`).
fn local_fast(
    ctx: &Ctx<'_>,
    entry: &Entry,
    src: &Path,
    dst: &Path,
) -> Result<(u64, u128), FileError> {
    let input = crate::publish::open_source(src, &entry.rel).map_err(|e| FileError::read(&e))?;
    let before = input.metadata().map_err(|e| FileError::read(&e))?;
    let tmp = dst.join(temp_name(ctx));
    let rel = entry.target_rel();
    let mode = before.mode() & 0o7777;
    let pending = ctx.publish.create(dst, rel, &tmp, mode)?;
    let result = (|| {
        let output = &pending.file;
        let written = if is_sparse(&before) {
            copy_sparse(&input, output, before.len())
        } else {
            crate::publish::copy_all(&input, output)
        }
        .map_err(|e| FileError::copy(&e))?;
        let after = input.metadata().map_err(|e| FileError::read(&e))?;
        if written != before.len()
            || after.len() != before.len()
            || mtime_of(&after) != mtime_of(&before)
        {
            return Err(FileError::changed());
        }
        finish_local_file(output, &before, !pending.has_mode)?;
        if ctx.options.verify != Verify::None {
            let len = output.metadata().map_err(|e| FileError::write(&e))?.len();
            if len != written {
                return Err(FileError::mismatch(format!(
                    "the target holds {len} bytes, {written} were written"
                )));
            }
        }
        Ok(written)
    })();
    match result {
        Ok(written) => {
            ctx.publish.finish(pending, dst, rel, &tmp)?;
            Ok((written, 0))
        }
        Err(e) => {
            crate::publish::Publish::abandon(pending);
            Err(e)
        }
    }
}

use crate::publish::{rename_into_place, target_path};

/// Whether a file has holes: fewer bytes on disk than its length.
fn is_sparse(m: &fs::Metadata) -> bool {
    m.blocks().saturating_mul(512) < m.len()
}

/// Copies a sparse file's data ranges only (found with SEEK_DATA and SEEK_HOLE), so the copy
/// keeps its holes where the target's file system has them, and gives it the length `len`.
/// Returns `len`: every byte of the file is at the target, read back as zeros in the holes.
fn copy_sparse(input: &File, output: &File, len: u64) -> io::Result<u64> {
    use rustix::fs::SeekFrom;
    let mut pos = 0;
    while pos < len {
        let data = match rustix::fs::seek(input, SeekFrom::Data(pos)) {
            Ok(d) => d,
            // No data after `pos`: the rest is a hole.
            Err(rustix::io::Errno::NXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let hole = rustix::fs::seek(input, SeekFrom::Hole(data))?.min(len);
        let (mut from, mut to) = (data, data);
        while from < hole {
            let want = usize::try_from(hole - from)
                .unwrap_or(usize::MAX)
                .min(1 << 30);
            let n =
                rustix::fs::copy_file_range(input, Some(&mut from), output, Some(&mut to), want)?;
            if n == 0 {
                // The file got shorter meanwhile: the size check after the copy says so.
                return Ok(from);
            }
        }
        pos = hole;
    }
    output.set_len(len)?;
    Ok(len)
}

/// Modification time and (when `mode`) permission bits of the source, on a local target file.
fn finish_local_file(output: &File, source: &fs::Metadata, mode: bool) -> Result<(), FileError> {
    output
        .set_times(
            FileTimes::new()
                .set_modified(mtime_of(source))
                .set_accessed(SystemTime::now()),
        )
        .and_then(|()| {
            if mode {
                output.set_permissions(fs::Permissions::from_mode(source.mode() & 0o7777))
            } else {
                Ok(())
            }
        })
        .map_err(|e| FileError::write(&e))
}

/// Where bytes come from.
enum Input {
    Local(File),
    Remote(Box<opendal::FuturesBytesStream>),
}

impl Input {
    async fn open(
        ctx: &Ctx<'_>,
        entry: &Entry,
    ) -> Result<(Input, Option<fs::Metadata>), FileError> {
        match ctx.src {
            Side::Local(root) => {
                let f = File::open(root.join(std::ffi::OsStr::from_bytes(&entry.rel)))
                    .map_err(|e| FileError::read(&e))?;
                let m = f.metadata().map_err(|e| FileError::read(&e))?;
                Ok((Input::Local(f), Some(m)))
            }
            Side::Remote(r) => {
                let rel = utf8_rel(&entry.rel)?;
                let reader =
                    r.op.reader_with(rel)
                        .chunk(CHUNK)
                        .await
                        .map_err(|e| FileError::store(&e, Source))?;
                let stream = reader
                    .into_bytes_stream(..)
                    .await
                    .map_err(|e| FileError::store(&e, Source))?;
                Ok((Input::Remote(Box::new(stream)), None))
            }
        }
    }

    /// The next chunk of at most `want` bytes (a local read), or None at the end.
    async fn next(&mut self, want: usize) -> Result<Option<bytes::Bytes>, FileError> {
        match self {
            Input::Local(f) => {
                // Read straight into the buffer that is sent: a whole part at a time, so the
                // upload needs no copy to make its parts contiguous.
                let mut chunk = bytes::BytesMut::zeroed(want);
                let mut filled = 0;
                while filled < chunk.len() {
                    match f.read(&mut chunk[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(FileError::read(&e)),
                    }
                }
                if filled == 0 {
                    return Ok(None);
                }
                chunk.truncate(filled);
                Ok(Some(chunk.freeze()))
            }
            Input::Remote(s) => s.try_next().await.map_err(|e| FileError::read(&e)),
        }
    }
}

/// Where bytes go.
enum Output {
    Local {
        file: File,
        tmp: std::path::PathBuf,
    },
    Remote {
        writer: opendal::Writer,
        name: String,
    },
    /// A temporary name at an SFTP target, written over godwit's own session.
    Sftp {
        file: crate::sftp::SftpFile,
        name: String,
    },
}

/// Streams one file from the source to the target, hashing what it reads.
async fn streamed(
    ctx: &Ctx<'_>,
    entry: &Entry,
    metadata: Option<&[(String, String)]>,
) -> Result<(u64, u128), FileError> {
    let (mut input, before) = Input::open(ctx, entry).await?;
    let mut output = Output::open(ctx, entry, metadata).await?;
    let result = pump(ctx, entry, &mut input, &mut output, before.as_ref()).await;
    match (result, output) {
        (Ok((written, hash)), Output::Local { file, tmp }) => {
            let finished = finish_local(ctx, entry, file, &tmp, before.as_ref(), (written, hash));
            if finished.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            finished.map(|()| (written, hash))
        }
        (Ok((written, hash)), Output::Remote { writer, name }) => {
            finish_remote(ctx, entry, writer, &name, (written, hash)).await?;
            Ok((written, hash))
        }
        (Ok((written, hash)), Output::Sftp { file, name }) => {
            finish_sftp(ctx, entry, file, &name, (written, hash)).await?;
            Ok((written, hash))
        }
        (Err(f), Output::Local { file, tmp }) => {
            drop(file);
            let _ = fs::remove_file(&tmp);
            Err(f)
        }
        (Err(f), Output::Remote { mut writer, .. }) => {
            // Leaves no half-finished multipart upload behind.
            let _ = writer.abort().await;
            Err(f)
        }
        (Err(f), Output::Sftp { file, .. }) => {
            file.discard().await;
            Err(f)
        }
    }
}

impl Output {
    /// Where a streamed file is written: a temporary file at a local target, a writer at a
    /// remote one (its final name on a store that publishes atomically, else a temporary one).
    async fn open(
        ctx: &Ctx<'_>,
        entry: &Entry,
        metadata: Option<&[(String, String)]>,
    ) -> Result<Output, FileError> {
        match ctx.dst {
            Side::Local(root) => {
                let tmp = root.join(temp_name(ctx));
                Ok(Output::Local {
                    file: File::create(&tmp).map_err(|e| FileError::write(&e))?,
                    tmp,
                })
            }
            Side::Remote(r) if r.sftp.is_some() => {
                target_rel(entry)?;
                let name = temp_name(ctx);
                let sftp = r.sftp.as_ref().expect("checked above");
                Ok(Output::Sftp {
                    file: sftp
                        .create(&name)
                        .await
                        .map_err(|e| FileError::store(&e, Target))?,
                    name,
                })
            }
            Side::Remote(r) => {
                let rel = target_rel(entry)?;
                let name = if r.features().atomic_write {
                    rel.to_string()
                } else {
                    temp_name(ctx)
                };
                let parts = if entry.size > CHUNK as u64 {
                    PARTS_IN_FLIGHT
                } else {
                    1
                };
                if entry.size > CHUNK as u64
                    && let Some(log) = &ctx.uploads
                {
                    // A multipart upload: its key is on record before it starts.
                    log.starting(&name);
                }
                let mut w =
                    r.op.writer_with(&name)
                        .chunk(part_size(entry.size))
                        .concurrent(parts);
                if r.features().user_metadata {
                    let mut all = vec![(MTIME_KEY.to_string(), entry.mtime_ns.to_string())];
                    all.extend(metadata.unwrap_or_default().iter().cloned());
                    w = w.user_metadata(all);
                }
                Ok(Output::Remote {
                    writer: w.await.map_err(|e| FileError::store(&e, Target))?,
                    name,
                })
            }
        }
    }
}

/// A streamed file at a local target: its times and mode, verified, renamed into place.
fn finish_local(
    ctx: &Ctx<'_>,
    entry: &Entry,
    file: File,
    tmp: &Path,
    before: Option<&fs::Metadata>,
    (written, hash): (u64, u128),
) -> Result<(), FileError> {
    let Side::Local(root) = ctx.dst else {
        unreachable!("a local output has a local target")
    };
    match before {
        Some(m) => finish_local_file(&file, m, true)?,
        None => {
            let t = UNIX_EPOCH + Duration::from_nanos(entry.mtime_ns.max(0) as u64);
            file.set_modified(t).map_err(|e| FileError::write(&e))?;
        }
    }
    drop(file);
    verify_local(ctx, tmp, written, hash)?;
    rename_into_place(tmp, &target_path(root, entry.target_rel())?)
}

/// A streamed file at a remote target: the upload completed (or aborted), the size the store
/// reports checked, a temporary name renamed, and with `--verify full` the object read back.
async fn finish_remote(
    ctx: &Ctx<'_>,
    entry: &Entry,
    mut writer: opendal::Writer,
    name: &str,
    (written, hash): (u64, u128),
) -> Result<(), FileError> {
    let Side::Remote(r) = ctx.dst else {
        unreachable!("a remote output has a remote target")
    };
    let meta = match writer.close().await {
        Ok(m) => m,
        Err(e) => {
            let _ = writer.abort().await;
            return Err(FileError::store(&e, Target));
        }
    };
    if ctx.options.verify != Verify::None
        && meta.content_length() != 0
        && meta.content_length() != written
    {
        return Err(FileError::mismatch(format!(
            "the target reports {} bytes, {written} were sent",
            meta.content_length()
        )));
    }
    let rel = target_rel(entry)?;
    if name != rel {
        r.op.rename(name, rel)
            .await
            .map_err(|e| FileError::store(&e, Target))?;
    }
    if ctx.options.verify == Verify::Full {
        verify_remote(r, rel, written, hash).await?;
    }
    Ok(())
}

/// A file written to an SFTP target: every write answered, its modification time set, its
/// size checked (unless `--verify none`), renamed into place; with `--verify full` read back.
async fn finish_sftp(
    ctx: &Ctx<'_>,
    entry: &Entry,
    file: crate::sftp::SftpFile,
    name: &str,
    (written, hash): (u64, u128),
) -> Result<(), FileError> {
    let Side::Remote(r) = ctx.dst else {
        unreachable!("an sftp output has a remote target")
    };
    let sftp = r.sftp.as_ref().expect("an sftp output has an sftp target");
    let checking = ctx.options.verify != Verify::None;
    let held = file
        .finish(entry.mtime_ns, written, checking)
        .await
        .map_err(|e| FileError::store(&e, Target))?;
    if checking && held != Some(written) {
        let held = held.map_or("no size".to_string(), |n| format!("{n} bytes"));
        return Err(FileError::mismatch(format!(
            "the target reports {held}, {written} were sent"
        )));
    }
    let rel = target_rel(entry)?;
    sftp.publish(name, rel)
        .await
        .map_err(|e| FileError::store(&e, Target))?;
    if ctx.options.verify == Verify::Full {
        verify_remote(r, rel, written, hash).await?;
    }
    Ok(())
}

/// Moves every chunk from `input` to `output`; checks the source did not change meanwhile.
async fn pump(
    ctx: &Ctx<'_>,
    entry: &Entry,
    input: &mut Input,
    output: &mut Output,
    before: Option<&fs::Metadata>,
) -> Result<(u64, u128), FileError> {
    let hashing = ctx.options.checksum || ctx.options.verify == Verify::Full;
    let mut hasher = hashing.then(Xxh3::new);
    // A small file in one read (one byte more, to notice a file that grew); a large one a part
    // at a time.
    let part = part_size(entry.size);
    let want = usize::try_from(entry.size).map_or(part, |s| s.saturating_add(1).clamp(4096, part));
    let mut written = 0u64;
    while let Some(chunk) = input.next(want).await? {
        if ctx.stop.load(Ordering::Relaxed) {
            return Err(FileError::for_good(
                Code::AZSM1045,
                Target,
                "the run is stopping".into(),
            ));
        }
        if let Some(h) = hasher.as_mut() {
            h.update(&chunk);
        }
        written += chunk.len() as u64;
        // Under a bandwidth limit a chunk goes out in steps of a twentieth of a second's worth,
        // each when the limit allows it; otherwise whole.
        let step = ctx.rate.as_ref().map_or(chunk.len(), |r| r.step()).max(1);
        let mut at = 0;
        while at < chunk.len() {
            let end = chunk.len().min(at.saturating_add(step));
            if let Some(rate) = &ctx.rate {
                rate.take(end - at);
            }
            let piece = chunk.slice(at..end);
            match output {
                Output::Local { file, .. } => {
                    file.write_all(&piece).map_err(|e| FileError::write(&e))?
                }
                Output::Remote { writer, .. } => writer
                    .write(Buffer::from(piece))
                    .await
                    .map_err(|e| FileError::store(&e, Target))?,
                Output::Sftp { file, .. } => file
                    .write(&piece)
                    .await
                    .map_err(|e| FileError::store(&e, Target))?,
            }
            if let Some(moving) = ctx.moving {
                moving.fetch_add((end - at) as u64, Ordering::Relaxed);
            }
            at = end;
        }
    }
    let expected = before.map_or(entry.size, |m| m.len());
    if written != expected {
        return Err(FileError::changed());
    }
    if let (Input::Local(f), Some(b)) = (input, before) {
        let after = f.metadata().map_err(|e| FileError::read(&e))?;
        if after.len() != b.len() || mtime_of(&after) != mtime_of(b) {
            return Err(FileError::changed());
        }
    }
    Ok((written, hasher.map_or(0, |h| h.digest128())))
}

/// The xxh3-128 of everything `input` holds, read through `buf`.
pub(crate) fn hash_all(input: &mut impl Read, buf: &mut [u8]) -> io::Result<u128> {
    let mut h = Xxh3::new();
    loop {
        match input.read(buf) {
            Ok(0) => return Ok(h.digest128()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn verify_local(ctx: &Ctx<'_>, tmp: &Path, written: u64, hash: u128) -> Result<(), FileError> {
    if ctx.options.verify == Verify::None {
        return Ok(());
    }
    let len = fs::metadata(tmp).map_err(|e| FileError::write(&e))?.len();
    if len != written {
        return Err(FileError::mismatch(format!(
            "the target holds {len} bytes, {written} were written"
        )));
    }
    if ctx.options.verify == Verify::Full {
        let mut f = File::open(tmp).map_err(|e| FileError::write(&e))?;
        let read = hash_all(&mut f, &mut vec![0u8; 1 << 20]).map_err(|e| FileError::write(&e))?;
        if read != hash {
            return Err(FileError::mismatch(
                "the checksum read back from the target differs from the source's".into(),
            ));
        }
    }
    Ok(())
}

async fn verify_remote(r: &Remote, rel: &str, written: u64, hash: u128) -> Result<(), FileError> {
    let reader =
        r.op.reader_with(rel)
            .chunk(CHUNK)
            .await
            .map_err(|e| FileError::store(&e, Target))?;
    let mut stream = reader
        .into_bytes_stream(..)
        .await
        .map_err(|e| FileError::store(&e, Target))?;
    let mut h = Xxh3::new();
    let mut len = 0u64;
    while let Some(chunk) = stream.try_next().await.map_err(|e| FileError::write(&e))? {
        len += chunk.len() as u64;
        h.update(&chunk);
    }
    if len != written || h.digest128() != hash {
        return Err(FileError::mismatch(format!(
            "read back {len} bytes whose checksum differs from the {written} bytes sent"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_stay_under_the_stores_limit() {
        assert_eq!(part_size(1), CHUNK);
        assert_eq!(
            part_size(10 << 30),
            CHUNK,
            "a 10 GiB file in 8 MiB parts: 1,280 of them"
        );
        for size in [100u64 << 30, 1 << 40, 5 << 40] {
            let part = part_size(size) as u64;
            assert!(size.div_ceil(part) <= MAX_PARTS, "{size}: {part}");
            assert_eq!(part % (1 << 20), 0);
        }
    }
}

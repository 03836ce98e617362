//! Does this file need a transfer? One function decides, for every command that copies.

use std::sync::atomic::Ordering;

use godwit_codes::Code;
use godwit_spec::Links;

use crate::backend::Side;
use crate::ctx::{Ctx, Done, MAX_HELD_BACK, MOVE_MIN_SIZE};
use crate::error::JobError;
use crate::index::IndexEntry;
use crate::record::CopyRecord;
use crate::walk::{Entry, EntryKind};

/// What happens to one file.
pub(crate) enum Decision {
    /// No transfer: the file's final record (and the index entry it confirms, if any).
    Done(Box<Done>),
    /// Kept for the second round, to be matched with a file gone from the source (a move).
    HeldBack,
    /// Send it: new or changed. The entry carries the name it gets at the target.
    Transfer(Entry, IndexEntry),
    /// `--hard-links`: another name of a file already copied in this run, to be linked to
    /// that name at the target.
    Link(Entry, IndexEntry, Vec<u8>),
}

/// Decides what happens to `entry`. The rule, in this order:
///
/// 1. a symbolic link is AZSM2021 unless links are copied and both sides are local; a FIFO,
///    socket or device is AZSM2021;
/// 2. a file the filters leave out is AZSM2001;
/// 3. with on-the-fly sanitizing, the name the target can hold is chosen (and kept in the
///    index, so the same file keeps the same name);
/// 4. a path or size the target profile refuses is its AZSM2022-2026;
/// 5. with `--compare target`, a file the target lists with the same size (and the same
///    modification time: listed on a local target, from the object's metadata on an object
///    store) is AZSM2042; otherwise a file the index holds with the same size and modification
///    time is AZSM2041 (an unchanged file costs nothing at the target), except one of the
///    run's spot checks that the target does not hold as the index says: it is copied again;
/// 6. a new file that may have been moved at the source (a true-up with deletes; same size,
///    mtime and inode as a file gone) is held back for the second round;
/// 7. after an interrupted run, a file it already wrote in full at the target (and had not
///    recorded yet) is recorded now as AZSM0000, and not sent again;
/// 8. in a dry run, AZSM0000 is recorded and nothing sent; otherwise it is transferred.
///
/// With `--metadata`, a file found at the target in step 5 or 7 has its permissions set when
/// they changed (AZSM2048 when nothing else did).
///
/// An index that cannot be read stops the run (AZSM1060): without it nothing can be decided.
pub(crate) fn decide(ctx: &Ctx<'_>, entry: Entry) -> Decision {
    let o = ctx.options;
    if let Some(kind) = unsupported_type(ctx, &entry) {
        return skip(&entry, Code::AZSM2021, &[("file_type", kind)]);
    }
    if o.filter
        .excludes_file(&entry.rel, entry.size, entry.mtime_ns)
    {
        return skip(&entry, Code::AZSM2001, &[]);
    }
    let mut entry = entry;
    if o.sanitize {
        match crate::transfer::sanitized_name(ctx, &entry) {
            Ok(target) => entry.target = target,
            Err(e) => return index_failure(ctx, &entry, &e),
        }
    }
    if let Some((code, problem)) = o
        .profile
        .check_path(entry.target_rel())
        .or_else(|| o.profile.check_size(entry.size))
    {
        let params = problem.params();
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        return skip(&entry, code, &params);
    }
    let seen = IndexEntry {
        size: entry.size,
        mtime_ns: entry.mtime_ns,
        hash: 0,
        ino: entry.ino,
    };
    match already_there(ctx, &entry, &seen) {
        Ok(Some(decision)) => return with_metadata(ctx, &entry, decision),
        Ok(None) => {}
        Err(e) => return index_failure(ctx, &entry, &e),
    }
    if ctx.resumed && crate::transfer::already_at_target(ctx, &entry) {
        // Written by the run that was interrupted, after its last index commit: its copy is
        // this run's to record (no earlier run's record or count holds it), and it is not
        // sent again.
        return with_metadata(ctx, &entry, confirmed(&entry, Code::AZSM0000, seen));
    }
    if o.dry_run {
        return skip(&entry, Code::AZSM0000, &[]);
    }
    if let Some(key) = link_key(ctx, &entry) {
        use crate::ctx::LinkClaim;
        match ctx.claim_link(key) {
            LinkClaim::Copy => {}
            LinkClaim::To(first) => return Decision::Link(entry, seen, first),
            LinkClaim::Wait if !ctx.second_round.load(Ordering::Relaxed) => {
                let mut held = ctx
                    .held_back
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if held.len() < MAX_HELD_BACK {
                    held.push(entry);
                    return Decision::HeldBack;
                }
            }
            LinkClaim::Wait => {}
        }
    }
    Decision::Transfer(entry, seen)
}

/// The (device, inode) of a file with several names, when they are kept (`--hard-links`,
/// both sides local).
pub(crate) fn link_key(ctx: &Ctx<'_>, entry: &Entry) -> Option<(u64, u64)> {
    (ctx.options.hard_links && ctx.src.features().local && ctx.dst.features().local)
        .then_some(entry.link)
        .flatten()
}

/// Why the entry cannot be copied as what it is, if it cannot.
fn unsupported_type(ctx: &Ctx<'_>, entry: &Entry) -> Option<&'static str> {
    let links_here =
        ctx.options.links == Links::Copy && ctx.src.features().links && ctx.dst.features().links;
    match entry.kind {
        EntryKind::Symlink if !links_here => Some(if ctx.options.links == Links::Copy {
            "symbolic link (only a local target holds links)"
        } else {
            "symbolic link"
        }),
        EntryKind::Special(kind) => Some(kind),
        EntryKind::File | EntryKind::Dir | EntryKind::Symlink => None,
    }
}

/// With `--metadata`, a file the target holds already still carries a change of its
/// permissions (see `metadata::unchanged`).
fn with_metadata(ctx: &Ctx<'_>, entry: &Entry, decision: Decision) -> Decision {
    match (decision, &ctx.metadata) {
        (Decision::Done(done), Some(c)) => Decision::Done(Box::new(crate::metadata::unchanged(
            ctx,
            c,
            entry.target_rel(),
            *done,
        ))),
        (d, _) => d,
    }
}

/// Step 5 and 6 of the rule: the file is at the target already (by the target's listing or the
/// index), or held back as a possible move; None: it is new or changed.
fn already_there(
    ctx: &Ctx<'_>,
    entry: &Entry,
    seen: &IndexEntry,
) -> Result<Option<Decision>, JobError> {
    if ctx.options.compare_target {
        // The target, as listed, decides; a local target keeps the source's mtime, so it must
        // match too; object stores list upload times, so there the size decides.
        let listed = ctx.index.target_listing(&entry.rel)?.is_some_and(|there| {
            there.size == entry.size
                && (!matches!(ctx.dst, Side::Local(_)) || there.mtime_ns == entry.mtime_ns)
        });
        // An object store lists upload times, not the source's: a same-size object is the
        // file only when the source time godwit stored with it matches (one HEAD), so an
        // object rewritten with other bytes of the same size is copied again.
        let same = listed
            && (!ctx.dst.features().user_metadata
                || crate::transfer::at_target(ctx, entry) == crate::transfer::AtTarget::Same);
        return Ok(same.then(|| confirmed(entry, Code::AZSM2042, *seen)));
    }
    match ctx.index.get_reusing(&entry.rel)? {
        Some(known) if known.size == seen.size && known.mtime_ns == seen.mtime_ns => {
            if spot_check_failed(ctx, entry) {
                // Not at the target as the index says: copied again, and the run says so.
                return Ok(None);
            }
            if let Some(key) = link_key(ctx, entry) {
                // At the target under this name: a new name of the same file links to it.
                ctx.link_done(key, Some(entry.target_rel()));
            }
            Ok(Some(skip(entry, Code::AZSM2041, &[])))
        }
        None if hold_back(ctx, entry) => {
            let mut held = ctx
                .held_back
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if held.len() < MAX_HELD_BACK {
                held.push(entry.clone());
                return Ok(Some(Decision::HeldBack));
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Whether `entry`, unchanged by the index, is one of the run's spot checks and the target
/// turned out not to hold it (gone, or another size or time). A check that cannot be made (the
/// request failed) finds nothing: the copy then meets the same failure if the target is down.
fn spot_check_failed(ctx: &Ctx<'_>, entry: &Entry) -> bool {
    if entry.kind != EntryKind::File || !ctx.spot.picks(&entry.rel) {
        return false;
    }
    use crate::transfer::AtTarget;
    match crate::transfer::at_target(ctx, entry) {
        AtTarget::Same => {
            ctx.spot.found(&entry.rel, false);
            false
        }
        AtTarget::Differs | AtTarget::Missing => {
            ctx.spot.found(&entry.rel, true);
            true
        }
        AtTarget::Unknown => false,
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

/// The index cannot be read: the run stops (it could not tell what is already at the target),
/// and this file is recorded with the reason.
fn index_failure(ctx: &Ctx<'_>, entry: &Entry, e: &JobError) -> Decision {
    ctx.stop.store(true, Ordering::Relaxed);
    skip(
        entry,
        Code::AZSM1060,
        &[("job_id", ctx.run_id), ("reason", &e.message)],
    )
}

/// No transfer: the record of `entry` with `code`.
fn skip(entry: &Entry, code: Code, params: &[(&str, &str)]) -> Decision {
    Decision::Done(Box::new(no_copy(entry, code, params)))
}

/// No transfer, and the index learns (or confirms) the file as `seen`.
fn confirmed(entry: &Entry, code: Code, seen: IndexEntry) -> Decision {
    let mut done = no_copy(entry, code, &[]);
    done.index = Some((entry.rel.clone(), seen));
    Decision::Done(Box::new(done))
}

/// The final record of a file that is not sent.
pub(crate) fn no_copy(entry: &Entry, code: Code, params: &[(&str, &str)]) -> Done {
    let mut record = CopyRecord::new(&entry.rel, entry.size, code, params);
    if let Some(t) = &entry.target {
        record.target_path = Some(crate::record::display_path(t));
    }
    Done {
        record,
        rel: entry.rel.clone(),
        index: None,
        copied: 0,
        perms: None,
    }
}

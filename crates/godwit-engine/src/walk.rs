//! A parallel walk of a local folder tree, reading type, size, mtime and mode in one pass.
//!
//! Threads share a stack of folders to read (last in, first out, so the walk goes deep first
//! and the stack stays small) and send what they find into a bounded channel, so memory stays
//! flat whatever the tree's size. A folder that cannot be read is an event, never the end of
//! the walk.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crossbeam_channel::Sender;

use crate::filter::Filter;

/// How to walk.
#[derive(Debug, Clone, Copy)]
pub struct WalkOptions {
    /// Follow symbolic links to folders and files (loops are detected and reported).
    pub follow_links: bool,
    /// Threads reading folders.
    pub threads: usize,
    /// Send each folder's child names with its `Listed` event (a true-up compares them with
    /// the index to find what was deleted).
    pub list_names: bool,
    /// Send a folder's entries in batches ([`Event::Batch`]): for readers that do little with
    /// each. Not when each entry may become a slow transfer that other threads should share.
    pub batch: bool,
}

/// One name in a folder's listing, and whether it may be a folder (then the index's entries
/// below it belong to it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Child {
    pub name: Vec<u8>,
    pub maybe_dir: bool,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symbolic link that is not followed.
    Symlink,
    /// A FIFO, socket or device; the word names which.
    Special(&'static str),
}

/// One file, folder or other entry under the root.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The path below the root, `/`-separated, as the file system's bytes.
    pub rel: Vec<u8>,
    pub kind: EntryKind,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    pub mode: u32,
    /// 0 for an entry directly under the root.
    pub depth: usize,
    /// The path at the target when it differs from `rel` (a sanitized name).
    pub target: Option<Vec<u8>>,
    /// The inode on a local source (0 elsewhere): with size and mtime, how a move is told.
    pub ino: u64,
    /// (device, inode) of a local file with more than one name (hard links), else None.
    pub link: Option<(u64, u64)>,
}

impl Entry {
    /// The path this entry has at the target.
    pub fn target_rel(&self) -> &[u8] {
        self.target.as_deref().unwrap_or(&self.rel)
    }
}

/// What the walk reports.
#[derive(Debug)]
pub enum Event {
    Entry(Entry),
    /// A folder that was listed, with how many entries it holds and, when asked for and the
    /// listing was complete, their names sorted.
    Listed {
        rel: Vec<u8>,
        entries: usize,
        names: Option<Vec<Child>>,
    },
    /// A folder left out by a filter; it is not walked.
    ExcludedDir {
        rel: Vec<u8>,
    },
    /// A path of a `--files-from` list that the source does not hold as a file.
    Missing {
        rel: Vec<u8>,
        reason: String,
    },
    /// A folder that could not be listed, or a link that could not be followed.
    Error {
        rel: Vec<u8>,
        error: io::Error,
    },
    /// Several events of one folder, in order: the local walk sends a folder's entries in
    /// batches (see [`BATCH_EVENTS`]), so that a file costs no channel hand-off of its own.
    /// Readers take them apart with [`events`].
    Batch(Vec<Event>),
}

impl Event {
    /// The events this one stands for: itself, or a batch's, in order.
    pub fn into_events(self) -> Vec<Event> {
        match self {
            Event::Batch(events) => events,
            e => vec![e],
        }
    }
}

/// Every event `rx` receives, batches taken apart, in order.
pub fn events(rx: &crossbeam_channel::Receiver<Event>) -> impl Iterator<Item = Event> + '_ {
    rx.iter().flat_map(Event::into_events)
}

/// A batch holds at most this many events, and files of at most [`BATCH_BYTES`] in all, so
/// that large files still go to the transfer threads one by one. Measured on a no-change
/// true-up of 100,000 files: one hand-off a file cost two `sched_yield` and one futex call a
/// file, more kernel time than the `statx` of the walk.
pub const BATCH_EVENTS: usize = 64;
pub const BATCH_BYTES: u64 = 1 << 20;

struct Dir {
    abs: PathBuf,
    rel: Vec<u8>,
    depth: usize,
    /// (device, inode) of the folders above, kept only when following links.
    ancestors: Option<Arc<Vec<(u64, u64)>>>,
}

struct Shared {
    stack: Vec<Dir>,
    busy: usize,
}

/// Walks `root`, which must be a folder, sending events to `sink` until done or `stop` is set.
/// `on_dir` runs for each folder before its entries are sent (copy makes the target folder
/// there, so that every file's parent exists by the time the file is seen).
pub fn walk(
    root: &Path,
    options: WalkOptions,
    filter: &Filter,
    on_dir: &(dyn Fn(&[u8]) + Sync),
    sink: &Sender<Event>,
    stop: &AtomicBool,
) {
    let ancestors = options.follow_links.then(|| {
        let id = fs::metadata(root)
            .map(|m| (m.dev(), m.ino()))
            .unwrap_or_default();
        Arc::new(vec![id])
    });
    let state = Mutex::new(Shared {
        stack: vec![Dir {
            abs: root.to_path_buf(),
            rel: Vec::new(),
            depth: 0,
            ancestors,
        }],
        busy: 0,
    });
    let wake = Condvar::new();
    std::thread::scope(|scope| {
        for _ in 0..options.threads.max(1) {
            scope.spawn(|| worker(&state, &wake, options, filter, on_dir, sink, stop));
        }
    });
}

fn worker(
    state: &Mutex<Shared>,
    wake: &Condvar,
    options: WalkOptions,
    filter: &Filter,
    on_dir: &(dyn Fn(&[u8]) + Sync),
    sink: &Sender<Event>,
    stop: &AtomicBool,
) {
    loop {
        let dir = {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if stop.load(Ordering::Relaxed) {
                    wake.notify_all();
                    return;
                }
                if let Some(d) = s.stack.pop() {
                    s.busy += 1;
                    break d;
                }
                if s.busy == 0 {
                    wake.notify_all();
                    return;
                }
                s = wake.wait(s).unwrap_or_else(|p| p.into_inner());
            }
        };
        let found = read_dir(&dir, options, filter, on_dir, sink);
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.stack.extend(found);
        s.busy -= 1;
        wake.notify_all();
    }
}

fn join(parent: &[u8], name: &OsStr) -> Vec<u8> {
    let mut rel = Vec::with_capacity(parent.len() + name.len() + 1);
    if !parent.is_empty() {
        rel.extend_from_slice(parent);
        rel.push(b'/');
    }
    rel.extend_from_slice(name.as_bytes());
    rel
}

fn mtime_ns(m: &fs::Metadata) -> i64 {
    m.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.mtime_nsec())
}

pub(crate) fn entry(rel: Vec<u8>, kind: EntryKind, m: &fs::Metadata, depth: usize) -> Entry {
    let size = if kind == EntryKind::File { m.len() } else { 0 };
    Entry {
        rel,
        kind,
        size,
        mtime_ns: mtime_ns(m),
        mode: m.mode(),
        depth,
        target: None,
        ino: m.ino(),
        link: (kind == EntryKind::File && m.nlink() > 1).then(|| (m.dev(), m.ino())),
    }
}

fn special(t: fs::FileType) -> Option<&'static str> {
    if t.is_fifo() {
        Some("FIFO")
    } else if t.is_socket() {
        Some("socket")
    } else if t.is_block_device() {
        Some("block device")
    } else if t.is_char_device() {
        Some("character device")
    } else {
        None
    }
}

/// The metadata of a listed entry (of what a link points to, when links are followed), or None
/// when it is gone since the listing or cannot be read (then reported).
fn metadata(
    item: &fs::DirEntry,
    file_type: fs::FileType,
    follow_links: bool,
    rel: &[u8],
    send: &impl Fn(Event),
) -> Option<fs::Metadata> {
    let result = if file_type.is_symlink() && follow_links {
        fs::metadata(item.path())
    } else {
        // fstatat on the open folder: no walk of the whole path for every file.
        match item.metadata() {
            // Gone since the listing: nothing to report.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            other => other,
        }
    };
    match result {
        Ok(m) => Some(m),
        Err(error) => {
            send(Event::Error {
                rel: rel.to_vec(),
                error,
            });
            None
        }
    }
}

/// A subfolder found in `dir`: sent as an entry and returned to be walked, unless the filters
/// exclude it or it leads back to a folder above it (a symbolic link loop, reported).
fn subfolder(
    dir: &Dir,
    item: &fs::DirEntry,
    meta: &fs::Metadata,
    rel: Vec<u8>,
    filter: &Filter,
    send: &impl Fn(Event),
) -> Option<Dir> {
    if filter.out_of_scope_dir(&rel) {
        return None;
    }
    if filter.excludes_dir(&rel) {
        send(Event::ExcludedDir { rel });
        return None;
    }
    let ancestors = match &dir.ancestors {
        Some(a) => {
            let id = (meta.dev(), meta.ino());
            if a.contains(&id) {
                let error =
                    io::Error::other("symbolic link loop: it leads back to a folder above it");
                send(Event::Error { rel, error });
                return None;
            }
            let mut next = Vec::with_capacity(a.len() + 1);
            next.extend_from_slice(a);
            next.push(id);
            Some(Arc::new(next))
        }
        None => None,
    };
    send(Event::Entry(entry(
        rel.clone(),
        EntryKind::Dir,
        meta,
        dir.depth,
    )));
    Some(Dir {
        abs: item.path(),
        rel,
        depth: dir.depth + 1,
        ancestors,
    })
}

/// A listed name for the true-up's comparison with the index. Unknown types and links that may
/// be followed count as folders: what the index holds below them is then never taken for
/// deleted.
fn child(item: &fs::DirEntry, file_type: Option<&fs::FileType>, follow_links: bool) -> Child {
    let maybe_dir = file_type.is_none_or(|t| t.is_dir() || (t.is_symlink() && follow_links));
    Child {
        name: item.file_name().as_bytes().to_vec(),
        maybe_dir,
    }
}

/// Lists one folder; returns its subfolders to walk.
fn read_dir(
    dir: &Dir,
    options: WalkOptions,
    filter: &Filter,
    on_dir: &(dyn Fn(&[u8]) + Sync),
    sink: &Sender<Event>,
) -> Vec<Dir> {
    // The receiver hangs up only when the run is being torn down. Events go out in batches,
    // all of them before the folder's `Listed`.
    let batch = std::cell::RefCell::new((Vec::new(), 0u64));
    let flush = || {
        let events = std::mem::take(&mut batch.borrow_mut().0);
        batch.borrow_mut().1 = 0;
        match events.len() {
            0 => {}
            1 => {
                let _ = sink.send(
                    events
                        .into_iter()
                        .next()
                        .unwrap_or(Event::Batch(Vec::new())),
                );
            }
            _ => {
                let _ = sink.send(Event::Batch(events));
            }
        }
    };
    let send = |e: Event| {
        let full = {
            let mut b = batch.borrow_mut();
            if let Event::Entry(entry) = &e {
                b.1 += entry.size;
            }
            b.0.push(e);
            !options.batch || b.0.len() >= BATCH_EVENTS || b.1 >= BATCH_BYTES
        };
        if full {
            flush();
        }
    };
    let error = |error| Event::Error {
        rel: dir.rel.clone(),
        error,
    };
    let listing = match fs::read_dir(&dir.abs) {
        Ok(l) => l,
        Err(e) => {
            let _ = sink.send(error(e));
            return Vec::new();
        }
    };
    on_dir(&dir.rel);
    let mut subdirs = Vec::new();
    let mut count = 0;
    let mut names = options.list_names.then(Vec::new);
    for item in listing {
        let item = match item {
            Ok(i) => i,
            Err(e) => {
                send(error(e));
                // A listing cut short must not be compared with anything.
                names = None;
                break;
            }
        };
        count += 1;
        let rel = join(&dir.rel, &item.file_name());
        let file_type = item.file_type();
        if let Some(names) = &mut names {
            names.push(child(&item, file_type.as_ref().ok(), options.follow_links));
        }
        let file_type = match file_type {
            Ok(t) => t,
            Err(error) => {
                // Reported, never silently dropped: a copy must not lose a file unseen.
                send(Event::Error { rel, error });
                continue;
            }
        };
        // Outside the run's part of the source (a pool's unit): not even looked at.
        if !file_type.is_dir() && filter.out_of_scope_file(&rel) {
            continue;
        }
        let Some(meta) = metadata(&item, file_type, options.follow_links, &rel, &send) else {
            continue;
        };
        let t = meta.file_type();
        if t.is_dir() {
            if let Some(sub) = subfolder(dir, &item, &meta, rel, filter, &send) {
                subdirs.push(sub);
            }
            continue;
        }
        let kind = if t.is_file() {
            EntryKind::File
        } else if t.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Special(special(t).unwrap_or("special file"))
        };
        send(Event::Entry(entry(rel, kind, &meta, dir.depth)));
    }
    if let Some(names) = &mut names {
        names.sort_unstable();
    }
    flush();
    let _ = sink.send(Event::Listed {
        rel: dir.rel.clone(),
        entries: count,
        names,
    });
    subdirs
}

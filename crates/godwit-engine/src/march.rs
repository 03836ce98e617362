//! One walk of a side into the stream of events every command reads: the parallel local walker
//! for a local folder, a listing for a remote store. Every walk of the engine goes through here.

use std::sync::atomic::AtomicBool;

use crossbeam_channel::Sender;

use crate::backend::Side;
use crate::error::JobError;
use crate::filter::Filter;
use crate::walk::{EntryKind, Event, WalkOptions, walk};

/// How to walk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct March<'a> {
    pub(crate) filter: &'a Filter,
    /// Each folder's listing is sent with its names (a true-up compares them with the index).
    pub(crate) list_names: bool,
    pub(crate) follow_links: bool,
    /// Threads of the local walker.
    pub(crate) threads: usize,
    /// A local walk sends a folder's entries in batches (see `walk::Event::Batch`).
    pub(crate) batch: bool,
}

/// Walks `side` into `sink` until it ends or `stop` is set; `on_dir` is called for each local
/// folder as it is found (a local copy makes the folder at the target). A remote side needs
/// the runtime `rt`.
pub(crate) fn march(
    side: &Side,
    rt: Option<&tokio::runtime::Runtime>,
    how: March<'_>,
    on_dir: &(dyn Fn(&[u8]) + Sync),
    sink: &Sender<Event>,
    stop: &AtomicBool,
) -> Result<(), JobError> {
    match (side, rt) {
        (Side::Local(root), _) => {
            let options = WalkOptions {
                follow_links: how.follow_links,
                threads: how.threads,
                list_names: how.list_names,
                batch: how.batch,
            };
            walk(root, options, how.filter, on_dir, sink, stop);
            Ok(())
        }
        (Side::Remote(remote), Some(rt)) => rt.block_on(crate::store::walk_remote(
            remote,
            how.filter,
            how.list_names,
            sink,
            stop,
        )),
        (Side::Remote(remote), None) => Err(crate::store::no_runtime(remote)),
    }
}

/// The files of a `--files-from` list (one path a line, escaped as `deletes.txt` is; `-` read
/// by the caller into a file) as the walk's events, each looked up at the source: one stat (a
/// HEAD on an object store) a file, and no walk of anything else. A path the source does not
/// hold as a file is a [`Event::Missing`].
pub(crate) fn march_list(
    side: &Side,
    rt: Option<&tokio::runtime::Runtime>,
    list: &std::path::Path,
    sink: &Sender<Event>,
    stop: &AtomicBool,
) -> Result<(), JobError> {
    use std::io::BufRead;
    use std::sync::atomic::Ordering;
    let unreadable = |e: &std::io::Error| {
        JobError::config(&format!(
            "--files-from {}: {}",
            list.display(),
            crate::error::reason(e)
        ))
    };
    let file = std::fs::File::open(list).map_err(|e| unreadable(&e))?;
    for line in std::io::BufReader::new(file).split(b'\n') {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let line = line.map_err(|e| unreadable(&e))?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.is_empty() {
            continue;
        }
        let event = match crate::record::decode_bytes(line) {
            None => Event::Missing {
                rel: line.to_vec(),
                reason: "the line holds a \\ that is not an escape (write \\\\ for one)".into(),
            },
            Some(rel) => look_up(side, rt, rel),
        };
        if sink.send(event).is_err() {
            break;
        }
    }
    Ok(())
}

/// The file at `rel` on `side`, as an entry of the walk.
fn look_up(side: &Side, rt: Option<&tokio::runtime::Runtime>, rel: Vec<u8>) -> Event {
    let rel: Vec<u8> = {
        let parts: Vec<&[u8]> = rel
            .split(|b| *b == b'/')
            .filter(|p| !p.is_empty() && *p != b".")
            .collect();
        if parts.iter().any(|p| *p == b"..") {
            return Event::Missing {
                rel,
                reason: "a path with `..` in it could lead outside the source".into(),
            };
        }
        parts.join(&b'/')
    };
    let depth = rel.iter().filter(|b| **b == b'/').count();
    let missing = |rel: Vec<u8>, reason: &str| Event::Missing {
        rel,
        reason: reason.to_string(),
    };
    match (side, rt) {
        (Side::Local(root), _) => {
            use std::os::unix::ffi::OsStrExt;
            match std::fs::symlink_metadata(root.join(std::ffi::OsStr::from_bytes(&rel))) {
                Ok(m) if m.is_file() => {
                    Event::Entry(crate::walk::entry(rel, EntryKind::File, &m, depth))
                }
                Ok(m) if m.is_dir() => {
                    missing(rel, "it is a folder at the source (list its files)")
                }
                Ok(m) if m.file_type().is_symlink() => {
                    Event::Entry(crate::walk::entry(rel, EntryKind::Symlink, &m, depth))
                }
                Ok(_) => missing(rel, "it is not a regular file at the source"),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                    ) =>
                {
                    missing(rel, "the source has no such file")
                }
                Err(error) => Event::Error { rel, error },
            }
        }
        (Side::Remote(r), Some(rt)) => {
            let Ok(key) = std::str::from_utf8(&rel) else {
                return missing(rel, "an object store holds only UTF-8 names");
            };
            match rt.block_on(r.op.stat(key)) {
                Ok(m) if m.is_file() => Event::Entry(crate::store::remote_file(rel, &m, depth)),
                Ok(_) => missing(rel, "it is a folder at the source (list its files)"),
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => {
                    missing(rel, "the source has no such file")
                }
                Err(e) => Event::Error {
                    rel,
                    error: std::io::Error::other(e.to_string()),
                },
            }
        }
        (Side::Remote(_), None) => {
            missing(rel, "a remote store without a runtime (a bug in godwit)")
        }
    }
}

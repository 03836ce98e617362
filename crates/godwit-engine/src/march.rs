//! One walk of a side into the stream of events every command reads: the parallel local walker
//! for a local folder, a listing for a remote store. Every walk of the engine goes through here.

use std::sync::atomic::AtomicBool;

use crossbeam_channel::Sender;

use crate::backend::Side;
use crate::error::JobError;
use crate::filter::Filter;
use crate::walk::{Event, WalkOptions, walk};

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

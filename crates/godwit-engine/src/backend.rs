//! One side of a command, and what it can do. The rest of the engine asks a side's
//! [`Features`] instead of matching on the kind of store.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use godwit_spec::{Location, StoreKind};

use crate::error::JobError;
use crate::store::Remote;

/// Name of the folder at the target root that holds files being written.
pub const TEMP_DIR: &str = ".godwit-tmp";

/// One side of a command: a local folder, or a remote store rooted at its prefix.
#[derive(Debug, Clone)]
pub enum Side {
    Local(PathBuf),
    Remote(Remote),
}

pub use crate::features::Features;

impl Side {
    /// Connects to `location` (`role` is `source` or `target`).
    pub fn open(location: &Location, role: &str) -> Result<Side, JobError> {
        Side::open_with(location, role, &crate::store::StoreEnv::process())
    }

    /// [`Side::open`] with the store settings in `env`.
    pub fn open_with(
        location: &Location,
        role: &str,
        env: &crate::store::StoreEnv,
    ) -> Result<Side, JobError> {
        match location {
            Location::Local(p) => Ok(Side::Local(p.clone())),
            other => Ok(Side::Remote(crate::store::connect_with(other, role, env)?)),
        }
    }

    /// The kind of store.
    pub fn kind(&self) -> StoreKind {
        match self {
            Side::Local(_) => StoreKind::Local,
            Side::Remote(r) => r.kind,
        }
    }

    /// What this side's store can do.
    pub fn features(&self) -> Features {
        Features::of(self.kind())
    }

    /// The side as the user wrote it, for messages.
    pub fn shown(&self) -> String {
        match self {
            Side::Local(p) => p.display().to_string(),
            Side::Remote(r) => r.shown.clone(),
        }
    }

    /// The runtime that drives this pair of sides: none when both are local and nothing asks
    /// for the streamed path.
    pub fn runtime_for(
        a: &Side,
        b: &Side,
        streaming: bool,
        job_id: &str,
    ) -> Result<Option<tokio::runtime::Runtime>, JobError> {
        if a.features().local && b.features().local && !streaming {
            return Ok(None);
        }
        crate::store::runtime(job_id).map(Some)
    }
}

/// Removes the local target's folders above a deleted file that are gone at the source too
/// and now empty (removing a folder that holds anything fails, and is left).
pub(crate) fn prune_folders(root: &Path, src: &Side, rel: &[u8], target: &[u8]) {
    let Side::Local(src_root) = src else {
        return;
    };
    let src_parts: Vec<&[u8]> = rel.split(|b| *b == b'/').collect();
    let dst_parts: Vec<&[u8]> = target.split(|b| *b == b'/').collect();
    if src_parts.len() != dst_parts.len() {
        return;
    }
    for depth in (1..src_parts.len()).rev() {
        let src_dir = src_parts[..depth].join(&b'/');
        if src_root
            .join(std::ffi::OsStr::from_bytes(&src_dir))
            .symlink_metadata()
            .is_ok()
        {
            return;
        }
        let dst_dir = dst_parts[..depth].join(&b'/');
        if fs::remove_dir(root.join(std::ffi::OsStr::from_bytes(&dst_dir))).is_err() {
            return;
        }
    }
}

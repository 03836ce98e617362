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

/// What a kind of store can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// A write appears at its final name only when complete (object stores publish an object,
    /// or complete a multipart upload, at the end). Without it godwit writes a temporary name
    /// in [`TEMP_DIR`] and renames it.
    pub atomic_write: bool,
    /// A file can be renamed in place (a move at the source is a rename at the target).
    pub rename: bool,
    /// A file can be copied by the store itself, without sending its bytes again.
    pub server_side_copy: bool,
    /// Arbitrary user metadata is kept with a file (where godwit records modification times).
    pub user_metadata: bool,
    /// Modification times can be set, and are listed back as set.
    pub set_mtime: bool,
    /// Folders exist by themselves and can be listed one at a time.
    pub real_folders: bool,
    /// Symbolic links can be made.
    pub links: bool,
    /// Files are reached through the kernel (copy_file_range, fstatat), not an async client.
    pub local: bool,
}

impl Features {
    /// The features of a kind of store.
    pub fn of(kind: StoreKind) -> Features {
        let none = Features {
            atomic_write: false,
            rename: false,
            server_side_copy: false,
            user_metadata: false,
            set_mtime: false,
            real_folders: false,
            links: false,
            local: false,
        };
        match kind {
            StoreKind::Local => Features {
                rename: true,
                set_mtime: true,
                real_folders: true,
                links: true,
                local: true,
                ..none
            },
            StoreKind::Sftp => Features {
                rename: true,
                real_folders: true,
                ..none
            },
            StoreKind::S3 | StoreKind::AzureBlob => Features {
                atomic_write: true,
                server_side_copy: true,
                user_metadata: true,
                ..none
            },
            StoreKind::Memory => Features {
                atomic_write: true,
                server_side_copy: true,
                ..none
            },
        }
    }
}

impl Side {
    /// Connects to `location` (`role` is `source` or `target`).
    pub fn open(location: &Location, role: &str) -> Result<Side, JobError> {
        match location {
            Location::Local(p) => Ok(Side::Local(p.clone())),
            other => Ok(Side::Remote(crate::store::connect(other, role)?)),
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

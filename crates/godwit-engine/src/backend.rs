//! One side of a command, and what it can do. The rest of the engine asks a side's
//! [`Features`] instead of matching on the kind of store.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use godwit_spec::{Location, StoreKind};

use crate::error::JobError;
use crate::store::Remote;

/// What the name of godwit's temporary folder at a target root starts with.
pub const TEMP_PREFIX: &str = ".godwit-tmp-";

/// The temporary folder of the migration `migration_id` at its target's root: files being
/// written sit in a folder of their run under it (`.godwit-tmp-<migration>/<run>/`), so runs of
/// other migrations, or of this one from another state directory, never share or remove them.
/// A source entry that happens to have this name makes the copy pick the next free one (see
/// `transfer::choose_temp_dir`).
pub fn temp_dir_name(migration_id: &str) -> String {
    format!("{TEMP_PREFIX}{migration_id}")
}

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

/// The path of `rel` under the local target `root`, when no folder on the way there (below
/// the root) is a symbolic link: godwit never writes, renames or deletes through a link at the
/// target, which could lead outside it. A folder not there yet is fine (it is made as a real
/// folder). Otherwise the reason, naming the link and where it leads.
pub(crate) fn inside_target(root: &Path, rel: &[u8]) -> Result<PathBuf, String> {
    let mut path = root.to_path_buf();
    let mut parts = rel
        .split(|b| *b == b'/')
        .filter(|p| !p.is_empty())
        .peekable();
    while let Some(part) = parts.next() {
        path.push(std::ffi::OsStr::from_bytes(part));
        if parts.peek().is_none() {
            break;
        }
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                let shown = path.strip_prefix(root).unwrap_or(&path).display();
                return Err(format!(
                    "the target folder {shown} is a symbolic link (to {to})"
                ));
            }
            // Not there yet: nothing below it can be a link either.
            Err(_) => {
                for rest in parts {
                    path.push(std::ffi::OsStr::from_bytes(rest));
                }
                return Ok(path);
            }
            Ok(_) => {}
        }
    }
    Ok(path)
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
        let Ok(path) = inside_target(root, &dst_dir) else {
            return;
        };
        if fs::remove_dir(path).is_err() {
            return;
        }
    }
}

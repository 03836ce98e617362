//! Browsing a source: the folders directly under a location, one level, for choosing what a
//! migration copies (the dashboard's folder picker, through an agent). Nothing below that
//! level is read, so a browse costs one listing however large the source is.

use futures::TryStreamExt;
use godwit_codes::Code;
use godwit_spec::Location;

use crate::error::JobError;
use crate::store::Remote;

/// The folders under one location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folders {
    /// Their names, sorted.
    pub names: Vec<String>,
    /// Folders whose names are not UTF-8: a migration's path cannot name them, so they are
    /// counted, not offered.
    pub unnamed: u64,
}

/// The folders directly under `location`: 638 when there are more than `limit` (too many to
/// offer a choice of), 9050 when a local folder cannot be listed, the store's own codes
/// (1001, 1003, 1004, 1025) when a remote one cannot.
pub fn folders(location: &Location, limit: usize) -> Result<Folders, JobError> {
    let shown = location.to_string();
    let too_many = || JobError::new(Code::ERR_FALLBACK_FOLDER_PICKER, &[("path", &shown)]);
    let mut out = Folders::default();
    match location {
        Location::Local(dir) => {
            let cannot = |e: std::io::Error| {
                JobError::new(
                    Code::SCAN_SOURCE_INVALID_FOLDER_HIERARCHY,
                    &[("reason", &format!("{}: {e}", dir.display()))],
                )
            };
            for entry in std::fs::read_dir(dir).map_err(cannot)? {
                let entry = entry.map_err(cannot)?;
                // A link to a folder is not a folder of the source: copies do not follow it.
                if !entry.file_type().map_err(cannot)?.is_dir() {
                    continue;
                }
                match entry.file_name().into_string() {
                    Ok(name) => out.names.push(name),
                    Err(_) => out.unnamed += 1,
                }
                if out.names.len() as u64 + out.unnamed > limit as u64 {
                    return Err(too_many());
                }
            }
        }
        remote => {
            let remote = crate::store::connect(remote, "source")?;
            let rt = crate::store::runtime(&shown)?;
            out.names = rt
                .block_on(remote_folders(&remote, limit))?
                .ok_or_else(too_many)?;
        }
    }
    out.names.sort();
    Ok(out)
}

/// The folders at the root of `remote`; None past `limit`.
async fn remote_folders(remote: &Remote, limit: usize) -> Result<Option<Vec<String>>, JobError> {
    let failed = |e: opendal::Error| crate::store::job_failure(remote, &e, false);
    let mut lister = remote.op.lister("").await.map_err(failed)?;
    let mut names = Vec::new();
    while let Some(item) = lister.try_next().await.map_err(failed)? {
        let p = item.path().trim_start_matches('/');
        if p.is_empty() || !(item.metadata().is_dir() || p.ends_with('/')) {
            continue;
        }
        names.push(p.trim_end_matches('/').to_string());
        if names.len() > limit {
            return Ok(None);
        }
    }
    Ok(Some(names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_one_level_of_folders_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["b", "a/deeper", "c"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        let found = folders(&Location::Local(dir.path().to_path_buf()), 10).unwrap();
        assert_eq!(found.names, ["a", "b", "c"]);
        assert_eq!(found.unnamed, 0);
    }

    #[test]
    fn too_many_folders_is_638_and_a_missing_one_9050() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["a", "b", "c"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let e = folders(&Location::Local(dir.path().to_path_buf()), 2).unwrap_err();
        assert_eq!(e.code, Code::ERR_FALLBACK_FOLDER_PICKER);
        let e = folders(&Location::Local(dir.path().join("gone")), 2).unwrap_err();
        assert_eq!(e.code, Code::SCAN_SOURCE_INVALID_FOLDER_HIERARCHY);
        assert!(e.message.contains("gone"), "{}", e.message);
    }

    #[test]
    fn a_name_that_is_not_utf8_is_counted_not_offered() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xff"))).unwrap();
        std::fs::create_dir(dir.path().join("good")).unwrap();
        let found = folders(&Location::Local(dir.path().to_path_buf()), 10).unwrap();
        assert_eq!((found.names, found.unnamed), (vec!["good".to_string()], 1));
    }
}

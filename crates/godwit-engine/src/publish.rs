//! Writing a file into a local target so that it appears there whole or not at all.
//!
//! The preferred way is an unnamed file (`O_TMPFILE`) made in the target folder itself and
//! linked to its name once it is complete: no temporary name ever exists, a crash leaves
//! nothing behind, and each file takes its folder's lock once, as `cp` does. Profiled on
//! 100,000 small files, the other way (a temporary name in the run's temporary folder, renamed
//! into place) spent a sixth of the copy's CPU in the rename and in threads waiting on the one
//! temporary folder's lock. That other way is still used where the target's file system has no
//! unnamed files (NFS, SMB, FAT) or `/proc` is not mounted, and to replace a file that is
//! already there (a link cannot replace a name; a rename can, atomically).
//!
//! Each transfer thread keeps the folder it last wrote into open, checked once that no folder on
//! the way is a symbolic link (AZSM2073), so that files of one folder are written relative to
//! it without looking the path up again.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use godwit_codes::Code;
use rustix::fs::{AtFlags, Mode, OFlags};

use crate::error::FileError;
use crate::error::Side::Target;

/// How a run publishes files at a local target: whether unnamed files still work there.
#[derive(Debug)]
pub(crate) struct Publish {
    unnamed: AtomicBool,
    /// The process's umask, when /proc says it: a file created with a mode it keeps needs no
    /// `fchmod` afterwards.
    umask: Option<u32>,
}

impl Default for Publish {
    fn default() -> Self {
        // An unnamed file is linked by its /proc/self/fd name (linking it by its descriptor
        // needs a privilege); without /proc, temporary names.
        Publish {
            unnamed: AtomicBool::new(Path::new("/proc/self/fd").is_dir()),
            umask: umask(),
        }
    }
}

/// The umask, from /proc/self/status (Linux 4.7 and later), without changing it.
fn umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Umask:"))?;
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
}

/// A file being written, and how it will get its name.
pub(crate) struct Pending {
    pub(crate) file: File,
    how: How,
    /// The file already has the mode it was asked for.
    pub(crate) has_mode: bool,
}

enum How {
    /// Unnamed, in `dir`: linked as `name` when complete.
    Unnamed { dir: Arc<OwnedFd>, name: Vec<u8> },
    /// Under the temporary path `tmp`: renamed into place when complete.
    Named { tmp: PathBuf },
}

/// Folders a thread keeps open, most recent first. The walk reads several folders at once, so
/// a thread's files come from a few folders in turn.
const FOLDERS_KEPT: usize = 8;

/// (root, folder below it) and the folder, open.
type Folders = Vec<(PathBuf, Vec<u8>, Arc<OwnedFd>)>;

thread_local! {
    /// The target folders this thread wrote into last.
    static TARGET_FOLDERS: RefCell<Folders> = const { RefCell::new(Vec::new()) };
    /// The source folders this thread read from last.
    static SOURCE_FOLDERS: RefCell<Folders> = const { RefCell::new(Vec::new()) };
}

fn cached(
    cache: &'static std::thread::LocalKey<RefCell<Folders>>,
    root: &Path,
    parent: &[u8],
) -> Option<Arc<OwnedFd>> {
    cache.with_borrow_mut(|list| {
        let i = list
            .iter()
            .position(|(r, p, _)| r.as_path() == root && p.as_slice() == parent)?;
        let hit = list.remove(i);
        let fd = hit.2.clone();
        list.insert(0, hit);
        Some(fd)
    })
}

fn keep(
    cache: &'static std::thread::LocalKey<RefCell<Folders>>,
    root: &Path,
    parent: &[u8],
    fd: &Arc<OwnedFd>,
) {
    cache.with_borrow_mut(|list| {
        list.truncate(FOLDERS_KEPT - 1);
        list.insert(0, (root.to_path_buf(), parent.to_vec(), fd.clone()));
    });
}

/// Forgets the folders this thread keeps open.
fn forget_folders() {
    TARGET_FOLDERS.with_borrow_mut(Vec::clear);
    SOURCE_FOLDERS.with_borrow_mut(Vec::clear);
}

/// Opens the source file `rel` under `root` relative to its folder, kept open by this thread.
pub(crate) fn open_source(root: &Path, rel: &[u8]) -> io::Result<File> {
    let (parent, name) = split(rel);
    let dir = match cached(&SOURCE_FOLDERS, root, parent) {
        Some(fd) => fd,
        None => {
            let path = root.join(std::ffi::OsStr::from_bytes(parent));
            let fd = Arc::new(rustix::fs::open(
                &path,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?);
            keep(&SOURCE_FOLDERS, root, parent, &fd);
            fd
        }
    };
    match rustix::fs::openat(
        &*dir,
        std::ffi::OsStr::from_bytes(name),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(File::from(fd)),
        Err(e) => {
            // The folder may have been replaced since: the next try opens it again.
            forget_folders();
            Err(e.into())
        }
    }
}

/// The open folder `parent` (a path below `root`, empty for the root), checked for links on
/// the way and made when missing.
fn folder(root: &Path, parent: &[u8]) -> Result<Arc<OwnedFd>, FileError> {
    if let Some(fd) = cached(&TARGET_FOLDERS, root, parent) {
        return Ok(fd);
    }
    // The same check as every other write at a local target: no folder on the way is a link.
    let mut probe = parent.to_vec();
    probe.extend_from_slice(b"/x");
    let path = crate::backend::inside_target(root, &probe)
        .map_err(|why| FileError::for_good(Code::AZSM2073, Target, why))?;
    let dir_path = path.parent().unwrap_or(root).to_path_buf();
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(&dir_path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => {
            std::fs::create_dir_all(&dir_path).map_err(|e| FileError::write(&e))?;
            rustix::fs::open(&dir_path, flags, Mode::empty())
                .map_err(|e| FileError::write(&e.into()))?
        }
        Err(e) => return Err(FileError::write(&e.into())),
    };
    let fd = Arc::new(fd);
    keep(&TARGET_FOLDERS, root, parent, &fd);
    Ok(fd)
}

fn split(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|b| *b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&[], rel),
    }
}

impl Publish {
    /// A new file for `rel` under `root`: unnamed in its folder when the file system allows,
    /// else under the temporary path `tmp`.
    /// `mode`: the permission bits the file should end with; `has_mode` says whether it was
    /// created with them (else the caller sets them).
    pub(crate) fn create(
        &self,
        root: &Path,
        rel: &[u8],
        tmp: &Path,
        mode: u32,
    ) -> Result<Pending, FileError> {
        if self.unnamed.load(Ordering::Relaxed) {
            let (parent, name) = split(rel);
            let dir = folder(root, parent)?;
            let flags = OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC;
            // Created with its final mode when the umask keeps it (setuid and the like are
            // set afterwards); the file is open for writing whatever its mode says.
            let has_mode = self
                .umask
                .is_some_and(|u| mode & 0o7000 == 0 && mode & u == 0);
            let create_mode = if has_mode { mode } else { 0o600 };
            match rustix::fs::openat(&*dir, ".", flags, Mode::from_raw_mode(create_mode)) {
                Ok(fd) => {
                    return Ok(Pending {
                        file: File::from(fd),
                        how: How::Unnamed {
                            dir,
                            name: name.to_vec(),
                        },
                        has_mode,
                    });
                }
                // This file system has no unnamed files: temporary names from now on.
                Err(
                    rustix::io::Errno::OPNOTSUPP
                    | rustix::io::Errno::ISDIR
                    | rustix::io::Errno::INVAL
                    | rustix::io::Errno::NOSYS,
                ) => self.unnamed.store(false, Ordering::Relaxed),
                Err(e) => {
                    forget_folders();
                    return Err(FileError::write(&e.into()));
                }
            }
        }
        let file = File::create(tmp).map_err(|e| FileError::write(&e))?;
        Ok(Pending {
            file,
            how: How::Named {
                tmp: tmp.to_path_buf(),
            },
            has_mode: false,
        })
    }

    /// Gives the complete file its name `rel` under `root`; `tmp` is the temporary path to use
    /// if a name is needed after all (a file of that name is there already).
    pub(crate) fn finish(
        &self,
        pending: Pending,
        root: &Path,
        rel: &[u8],
        tmp: &Path,
    ) -> Result<(), FileError> {
        let Pending { file, how, .. } = pending;
        match how {
            How::Named { tmp } => {
                drop(file);
                let placed = target_path(root, rel).and_then(|to| rename_into_place(&tmp, &to));
                if placed.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                placed
            }
            How::Unnamed { dir, name } => {
                let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
                let linked = rustix::fs::linkat(
                    rustix::fs::CWD,
                    proc_path.as_str(),
                    &*dir,
                    std::ffi::OsStr::from_bytes(&name),
                    AtFlags::SYMLINK_FOLLOW,
                );
                match linked {
                    Ok(()) => Ok(()),
                    // A file of that name is there (a changed file copied again): named in the
                    // temporary folder, then renamed over it, which replaces it atomically.
                    Err(rustix::io::Errno::EXIST) => {
                        rustix::fs::linkat(
                            rustix::fs::CWD,
                            proc_path.as_str(),
                            rustix::fs::CWD,
                            tmp,
                            AtFlags::SYMLINK_FOLLOW,
                        )
                        .map_err(|e| FileError::write(&e.into()))?;
                        let placed =
                            target_path(root, rel).and_then(|to| rename_into_place(tmp, &to));
                        if placed.is_err() {
                            let _ = std::fs::remove_file(tmp);
                        }
                        placed
                    }
                    Err(e) => {
                        // The folder may have gone or been replaced: the next try opens it again.
                        forget_folders();
                        Err(FileError::write(&e.into()))
                    }
                }
            }
        }
    }

    /// Drops a file that will not be published: an unnamed one vanishes by itself.
    pub(crate) fn abandon(pending: Pending) {
        if let How::Named { tmp } = pending.how {
            drop(pending.file);
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Where `rel` goes under the local target `root`, or AZSM2073 when a folder on the way is a
/// symbolic link (see `backend::inside_target`).
pub(crate) fn target_path(root: &Path, rel: &[u8]) -> Result<PathBuf, FileError> {
    crate::backend::inside_target(root, rel)
        .map_err(|why| FileError::for_good(Code::AZSM2073, Target, why))
}

/// Renames a finished temporary file to its final name, making the folders above it when they
/// do not exist yet (a remote source is not walked folder by folder).
pub(crate) fn rename_into_place(tmp: &Path, target: &Path) -> Result<(), FileError> {
    match std::fs::rename(tmp, target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && tmp.exists() => {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| FileError::write(&e))?;
            }
            std::fs::rename(tmp, target).map_err(|e| FileError::write(&e))
        }
        other => other.map_err(|e| FileError::write(&e)),
    }
}

/// Copies all of `input` into `output` in the kernel (`copy_file_range`), or through a buffer
/// where the kernel cannot (another file system on old kernels, special files). Returns the
/// bytes copied. Unlike `io::copy`, it asks nothing about the files first.
pub(crate) fn copy_all(input: &File, output: &File) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        match rustix::fs::copy_file_range(input, None, output, None, 1 << 30) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(
                rustix::io::Errno::XDEV
                | rustix::io::Errno::INVAL
                | rustix::io::Errno::NOSYS
                | rustix::io::Errno::OPNOTSUPP,
            ) if total == 0 => {
                let (mut i, mut o) = (input, output);
                return io::copy(&mut i, &mut o);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn publish(p: &Publish, root: &Path, rel: &str, data: &[u8], mode: u32) {
        let tmp = root.join(".tmp").join(format!("t-{rel}").replace('/', "_"));
        let pending = p.create(root, rel.as_bytes(), &tmp, mode).unwrap();
        use std::io::Write;
        (&pending.file).write_all(data).unwrap();
        if !pending.has_mode {
            pending
                .file
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .unwrap();
        }
        p.finish(pending, root, rel.as_bytes(), &tmp).unwrap();
    }

    #[test]
    fn a_file_appears_whole_under_its_name_both_ways() {
        for unnamed in [true, false] {
            let root = tempfile::tempdir().unwrap();
            std::fs::create_dir(root.path().join(".tmp")).unwrap();
            let p = Publish::default();
            if !unnamed {
                p.unnamed.store(false, Ordering::Relaxed);
            }
            publish(&p, root.path(), "a/b/c.txt", b"hello", 0o640);
            publish(&p, root.path(), "top.txt", b"top", 0o600);
            let got = root.path().join("a/b/c.txt");
            assert_eq!(std::fs::read(&got).unwrap(), b"hello");
            assert_eq!(
                std::fs::metadata(&got).unwrap().permissions().mode() & 0o7777,
                0o640
            );
            assert_eq!(std::fs::read(root.path().join("top.txt")).unwrap(), b"top");
            // Nothing left under a temporary name.
            assert!(names(&root.path().join(".tmp")).is_empty(), "{unnamed}");
            assert_eq!(names(&root.path().join("a/b")), ["c.txt"]);
        }
    }

    #[test]
    fn a_file_already_there_is_replaced_and_an_abandoned_one_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(".tmp")).unwrap();
        let p = Publish::default();
        publish(&p, root.path(), "f", b"old", 0o644);
        publish(&p, root.path(), "f", b"new contents", 0o644);
        assert_eq!(
            std::fs::read(root.path().join("f")).unwrap(),
            b"new contents"
        );
        let tmp = root.path().join(".tmp/abandoned");
        let pending = p.create(root.path(), b"g", &tmp, 0o644).unwrap();
        Publish::abandon(pending);
        assert_eq!(names(root.path()), [".tmp", "f"]);
        assert!(names(&root.path().join(".tmp")).is_empty());
    }

    #[test]
    fn a_link_on_the_way_is_refused_with_2073() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.path().join("sub")).unwrap();
        let p = Publish::default();
        let e = p
            .create(root.path(), b"sub/f", &root.path().join("t"), 0o644)
            .err()
            .unwrap();
        assert_eq!(e.code, Code::AZSM2073);
        assert!(names(elsewhere.path()).is_empty());
    }

    #[test]
    fn copy_all_copies_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("in"), &data).unwrap();
        let input = File::open(dir.path().join("in")).unwrap();
        let output = File::create(dir.path().join("out")).unwrap();
        assert_eq!(copy_all(&input, &output).unwrap(), data.len() as u64);
        assert_eq!(std::fs::read(dir.path().join("out")).unwrap(), data);
    }
}

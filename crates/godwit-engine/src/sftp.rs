//! Files written to an SFTP target over one shared ssh session.
//!
//! OpenDAL's SFTP service (still used for listing, stat, reads, folders and deletes) takes a
//! session from a pool for every call, checks it with a stat each time, and makes every
//! folder of a path again before each write and each rename: about a dozen round trips and,
//! with 16 transfers, 16 ssh sessions (two `ssh` processes each, every one of them a key
//! exchange). A written file here costs one session for the whole run and six requests,
//! pipelined with the other transfers' on the same channel: open the temporary name, the
//! data, the modification time, a stat to check the size that arrived, close, and a rename
//! onto the final name (folders are made only when the rename says the parent is missing).

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use opendal::ErrorKind;
use openssh_sftp_client::error::SftpErrorKind;
use openssh_sftp_client::file::TokioCompatFile;
use openssh_sftp_client::metadata::MetaDataBuilder;
use openssh_sftp_client::openssh::{ControlPersist, KnownHosts, SessionBuilder};
use openssh_sftp_client::{Error as SftpError, Sftp, SftpOptions, UnixTimeStamp};
use tokio::io::AsyncWriteExt;

/// How an SFTP target is reached, and the session its writes share once the first one opened
/// it (again after the connection under it broke).
#[derive(Debug)]
pub struct SftpTarget {
    endpoint: String,
    user: Option<String>,
    key: Option<String>,
    root: PathBuf,
    /// How long one request may go unanswered (`GODWIT_REQUEST_TIMEOUT`).
    timeout: Duration,
    session: tokio::sync::Mutex<Option<Arc<Sftp>>>,
}

/// A file being written under its temporary name.
pub(crate) struct SftpFile {
    file: Pin<Box<TokioCompatFile>>,
    session: Arc<Sftp>,
    target: Arc<SftpTarget>,
    path: PathBuf,
}

impl SftpTarget {
    pub(crate) fn new(
        endpoint: String,
        user: Option<String>,
        key: Option<String>,
        root: &str,
        timeout: Duration,
    ) -> Self {
        SftpTarget {
            endpoint,
            user,
            key,
            root: PathBuf::from(root),
            timeout,
            session: tokio::sync::Mutex::new(None),
        }
    }

    /// `work`, abandoned after the request timeout with an error that reads as a timeout.
    async fn timed<T>(
        &self,
        what: &'static str,
        work: impl Future<Output = Result<T, opendal::Error>>,
    ) -> Result<T, opendal::Error> {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(done) => done,
            Err(_) => Err(opendal::Error::new(
                ErrorKind::Unexpected,
                format!("sftp {what}: timeout reached"),
            )
            .set_temporary()),
        }
    }

    /// The shared session, opened on first use.
    async fn session(&self) -> Result<Arc<Sftp>, opendal::Error> {
        let mut held = self.session.lock().await;
        if let Some(s) = held.as_ref() {
            return Ok(s.clone());
        }
        let mut b = SessionBuilder::default();
        if let Some(u) = &self.user {
            b.user(u.clone());
        }
        if let Some(k) = &self.key {
            b.keyfile(k);
        }
        b.known_hosts_check(KnownHosts::Strict);
        b.server_alive_interval(Duration::from_secs(15));
        // The ssh master runs in the background: once idle for a minute it goes, so one left
        // by a godwit that was killed (kill -9, a crash) does not stay for good.
        b.control_persist(ControlPersist::IdleFor(
            std::num::NonZeroUsize::new(60).unwrap_or(std::num::NonZeroUsize::MIN),
        ));
        let ssh = b.connect(&self.endpoint).await.map_err(|e| {
            opendal::Error::new(ErrorKind::Unexpected, "ssh error")
                .set_source(e)
                .set_temporary()
        })?;
        let sftp = Sftp::from_session(ssh, SftpOptions::new())
            .await
            .map_err(|e| error(e, "open the sftp channel"))?;
        let s = Arc::new(sftp);
        *held = Some(s.clone());
        tracing::debug!(endpoint = %self.endpoint, "sftp session opened for writes");
        Ok(s)
    }

    /// Forgets `s` after an error that says the connection under it broke, so that the next
    /// file opens a new session.
    async fn check(&self, s: &Arc<Sftp>, e: &SftpError) {
        if broken(e) {
            self.forget(s, e).await;
        }
    }

    /// [`SftpTarget::check`] for an error that came through the async writer.
    async fn check_io(&self, s: &Arc<Sftp>, e: &std::io::Error) {
        let gone = match e.get_ref().and_then(|i| i.downcast_ref::<SftpError>()) {
            Some(inner) => broken(inner),
            None => dropped(e),
        };
        if gone {
            self.forget(s, e).await;
        }
    }

    async fn forget(&self, s: &Arc<Sftp>, e: &dyn std::fmt::Display) {
        let mut held = self.session.lock().await;
        if held.as_ref().is_some_and(|h| Arc::ptr_eq(h, s)) {
            tracing::debug!(error = %e, "sftp session lost; the next write opens another");
            *held = None;
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The owner, group, mode (`0o7777`) and access and modification times (whole seconds) of
    /// `rel`, relative to the target's root, without following a link.
    pub(crate) async fn attributes(
        &self,
        rel: &str,
    ) -> Result<(u32, u32, u32, i64, i64), opendal::Error> {
        self.timed("stat", async {
            let session = self.session().await?;
            let mut fs = session.fs();
            match fs.symlink_metadata(self.path(rel)).await {
                Ok(m) => {
                    let secs = |t: Option<UnixTimeStamp>| {
                        t.map_or(0, |t| i64::try_from(t.as_duration().as_secs()).unwrap_or(0))
                    };
                    Ok((
                        m.uid().unwrap_or(0),
                        m.gid().unwrap_or(0),
                        m.permissions().map_or(0, |p| p.as_raw().bits() & 0o7777),
                        secs(m.accessed()),
                        secs(m.modified()),
                    ))
                }
                Err(e) => {
                    self.check(&session, &e).await;
                    Err(error(e, "stat"))
                }
            }
        })
        .await
    }

    /// Sets on `rel` the owner and group, the mode and the times (whole seconds) given.
    pub(crate) async fn set_attributes(
        &self,
        rel: &str,
        id: Option<(u32, u32)>,
        mode: Option<u32>,
        times: Option<(i64, i64)>,
    ) -> Result<(), opendal::Error> {
        use openssh_sftp_client::metadata::{Permissions, RawPermissions};
        self.timed("setstat", async {
            let session = self.session().await?;
            let mut fs = session.fs();
            let mut b = MetaDataBuilder::new();
            if let Some(id) = id {
                b.id(id);
            }
            if let Some(mode) = mode {
                b.permissions(Permissions::from_raw(RawPermissions::from_bits_truncate(
                    mode,
                )));
            }
            if let Some((atime, mtime)) = times {
                let ts = |s: i64| UnixTimeStamp::from_raw(u32::try_from(s.max(0)).unwrap_or(0));
                if let (Some(a), Some(m)) = (ts(atime), ts(mtime)) {
                    b.time(a, m);
                }
            }
            match fs.set_metadata(self.path(rel), b.create()).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    self.check(&session, &e).await;
                    Err(error(e, "setstat"))
                }
            }
        })
        .await
    }

    /// Creates (or truncates) `name`, relative to the target's root, for writing.
    pub(crate) async fn create(self: &Arc<Self>, name: &str) -> Result<SftpFile, opendal::Error> {
        self.timed("open", async {
            let session = self.session().await?;
            let path = self.path(name);
            let opened = session
                .options()
                // Read too, for the stat of the handle that checks the size at the end.
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .await;
            match opened {
                Ok(f) => Ok(SftpFile {
                    file: Box::pin(TokioCompatFile::new(f)),
                    session,
                    target: self.clone(),
                    path,
                }),
                Err(e) => {
                    self.check(&session, &e).await;
                    Err(error(e, "open"))
                }
            }
        })
        .await
    }

    /// Renames the temporary `from` onto `to` (both relative to the root), replacing what is
    /// there, and makes `to`'s folders when the server says they are missing.
    pub(crate) async fn publish(&self, from: &str, to: &str) -> Result<(), opendal::Error> {
        self.timed("rename", self.publish_now(from, to)).await
    }

    async fn publish_now(&self, from: &str, to: &str) -> Result<(), opendal::Error> {
        let session = self.session().await?;
        let (from, to_path) = (self.path(from), self.path(to));
        let mut fs = session.fs();
        let mut renamed = rename(&session, &mut fs, &from, &to_path).await;
        if let Err(SftpError::SftpError(SftpErrorKind::NoSuchFile, _)) = &renamed
            && let Some(parent) = Path::new(to).parent()
        {
            let mut dir = self.root.clone();
            for part in parent.components() {
                dir.push(part);
                // An error here is a folder that exists already; the rename tells the rest.
                let _ = fs.create_dir(&dir).await;
            }
            renamed = rename(&session, &mut fs, &from, &to_path).await;
        }
        if let Err(e) = renamed {
            self.check(&session, &e).await;
            return Err(error(e, "rename"));
        }
        Ok(())
    }
}

/// A rename that replaces: the server's posix-rename where it has one, else a remove of the
/// old file first (plain SFTP renames refuse an existing name).
async fn rename(
    session: &Sftp,
    fs: &mut openssh_sftp_client::fs::Fs,
    from: &Path,
    to: &Path,
) -> Result<(), SftpError> {
    if !session.support_posix_rename() {
        match fs.remove_file(to).await {
            Ok(()) | Err(SftpError::SftpError(SftpErrorKind::NoSuchFile, _)) => {}
            Err(e) => return Err(e),
        }
    }
    fs.rename(from, to).await
}

impl SftpFile {
    /// Sends `chunk` (pipelined: the server's answers are awaited in `finish`).
    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<(), opendal::Error> {
        let target = self.target.clone();
        let written = target.timed("write", async {
            match self.file.write_all(chunk).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    target.check_io(&self.session, &e).await;
                    Err(io_error(e, "write"))
                }
            }
        });
        written.await
    }

    /// Removes the file, as a failed write leaves it; errors are ignored, since the run's
    /// temporary folder goes at its end anyway.
    pub(crate) async fn discard(self) {
        let SftpFile {
            file,
            session,
            target,
            path,
        } = self;
        drop(file);
        let _ = target
            .timed("remove", async {
                let _ = session.fs().remove_file(&path).await;
                Ok(())
            })
            .await;
    }

    /// Waits for every write, sets the modification time (SFTP keeps whole seconds), and
    /// closes the file. Returns the size the server holds when `check_size` asks for a stat,
    /// else `written`.
    pub(crate) async fn finish(
        self,
        mtime_ns: i64,
        written: u64,
        check_size: bool,
    ) -> Result<Option<u64>, opendal::Error> {
        let target = self.target.clone();
        target
            .clone()
            .timed(
                "finish",
                self.finish_now(target, mtime_ns, written, check_size),
            )
            .await
    }

    async fn finish_now(
        mut self,
        target: Arc<SftpTarget>,
        mtime_ns: i64,
        written: u64,
        check_size: bool,
    ) -> Result<Option<u64>, opendal::Error> {
        if let Err(e) = self.file.flush().await {
            target.check_io(&self.session, &e).await;
            return Err(io_error(e, "write"));
        }
        // The file's handle is closed when its last copy goes: this one, once the writer
        // (pinned, so it cannot give its file back) is gone, so that the close is awaited.
        let mut file = self.file.as_mut().as_mut_file().clone();
        let SftpFile {
            file: writer,
            session,
            ..
        } = self;
        drop(writer);
        let done: Result<Option<u64>, SftpError> = async {
            let secs = u32::try_from(mtime_ns.max(0) / 1_000_000_000).unwrap_or(u32::MAX);
            if let Some(t) = UnixTimeStamp::from_raw(secs) {
                file.set_metadata(MetaDataBuilder::new().time(t, t).create())
                    .await?;
            }
            let size = if check_size {
                file.metadata().await?.len()
            } else {
                Some(written)
            };
            file.close().await?;
            Ok(size)
        }
        .await;
        match done {
            Ok(size) => Ok(size),
            Err(e) => {
                target.check(&session, &e).await;
                Err(error(e, "finish"))
            }
        }
    }
}

/// Whether `e` says the session is gone (its connection, its `ssh` process or its
/// background task), rather than a refusal of one request.
fn broken(e: &SftpError) -> bool {
    match e {
        SftpError::IOError(io) => dropped(io),
        SftpError::AwaitableError(_)
        | SftpError::TaskJoinError(_)
        | SftpError::RecursiveErrors(_)
        | SftpError::RecursiveErrors3(_)
        | SftpError::BackgroundTaskFailure(_)
        | SftpError::SftpServerFailure(_)
        | SftpError::RemoteChildSpawnError(_) => true,
        _ => false,
    }
}

fn dropped(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::BrokenPipe
            | K::UnexpectedEof
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
    )
}

/// The store error for an SFTP failure, with the kinds OpenDAL's SFTP service gives the same
/// answers, so that per-file codes and retries are the same as through it.
fn error(e: SftpError, what: &'static str) -> opendal::Error {
    let kind = match &e {
        SftpError::SftpError(SftpErrorKind::NoSuchFile, _) => ErrorKind::NotFound,
        SftpError::SftpError(SftpErrorKind::PermDenied, _) => ErrorKind::PermissionDenied,
        SftpError::SftpError(SftpErrorKind::OpUnsupported, _) => ErrorKind::Unsupported,
        _ => ErrorKind::Unexpected,
    };
    let err = match e {
        // The connection broke: the io error stays the source, so it reads as dropped.
        SftpError::IOError(io) => opendal::Error::new(kind, format!("sftp {what}")).set_source(io),
        other => opendal::Error::new(kind, format!("sftp {what}")).set_source(other),
    };
    if kind == ErrorKind::Unexpected {
        err.set_temporary()
    } else {
        err
    }
}

fn io_error(e: std::io::Error, what: &'static str) -> opendal::Error {
    match e.downcast::<SftpError>() {
        Ok(sftp) => error(sftp, what),
        Err(io) => opendal::Error::new(ErrorKind::Unexpected, format!("sftp {what}"))
            .set_source(io)
            .set_temporary(),
    }
}

//! The engine's errors. A job's failure is the spec's [`JobError`] (a catalog code and its
//! message), shared with the agent and the control plane. A file's failure is a [`FileError`]:
//! it becomes that file's record in the copy log, and the run goes on.
//!
//! Whether a failure is worth another attempt is decided here, from typed errors: the I/O
//! error's kind, OpenDAL's error kind and temporary/persistent flags, and the I/O error at the
//! root of a store error's causes (a reset connection, a timeout). Never from an error's text.

use std::io;

use godwit_codes::Code;
pub use godwit_spec::JobError;
pub(crate) use godwit_spec::error::reason;

/// Which side of a transfer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Reading the source.
    Source,
    /// Writing (or reading back) the target.
    Target,
}

impl Side {
    /// The operation, as the copy log names it.
    pub(crate) fn operation(self) -> &'static str {
        match self {
            Side::Source => "read source",
            Side::Target => "write target",
        }
    }
}

/// Why one file failed: its per-file code, what was being done, the reason in words, and
/// whether a new attempt at the whole file may work.
#[derive(Debug)]
pub(crate) struct FileError {
    pub(crate) code: Code,
    pub(crate) side: Side,
    pub(crate) reason: String,
    pub(crate) retryable: bool,
    /// The target's file system is full: no later file fits either, so the run stops (6080).
    pub(crate) no_space: bool,
}

/// The one retry policy, in two steps. A request to a remote store is tried up to
/// [`crate::store::REQUEST_TRIES`] times by the store layer when its error is temporary
/// (timeouts, 5xx, 429, resets), with backoff and jitter; a whole file is attempted at most
/// [`FILE_ATTEMPTS`] times when its [`FileError`] is retryable, so a request is sent at most
/// 12 times. Whole-file attempts stay for errors the store layer gave up on: a body damaged on
/// the way and refused (BadDigest) is not sent again by a request retry, and without them the
/// fault suite's damaged uploads failed (tried: tests/faults.rs).
pub(crate) const FILE_ATTEMPTS: u32 = 3;

impl FileError {
    /// The source could not be read: a local file, or a remote one whose store error arrives
    /// wrapped in an I/O error by the reader (then it is that store error's).
    pub(crate) fn read(e: &io::Error) -> Self {
        if let Some(store) = e.get_ref().and_then(|i| i.downcast_ref::<opendal::Error>()) {
            return FileError::store(store, Side::Source);
        }
        let denied = e.kind() == io::ErrorKind::PermissionDenied;
        FileError {
            code: if denied {
                Code::AZSM2062
            } else {
                Code::AZSM2063
            },
            side: Side::Source,
            reason: reason(e),
            retryable: !denied && !matches!(e.kind(), io::ErrorKind::NotFound),
            no_space: false,
        }
    }

    /// A local target could not be written. A full disk, a quota, a read-only file system or a
    /// refusal will not pass by itself.
    pub(crate) fn write(e: &io::Error) -> Self {
        use io::ErrorKind as K;
        let refused = matches!(e.kind(), K::PermissionDenied | K::ReadOnlyFilesystem);
        FileError {
            code: if refused {
                Code::AZSM2069
            } else {
                Code::AZSM2066
            },
            side: Side::Target,
            reason: reason(e),
            retryable: !refused && !is_target_full(e),
            no_space: e.kind() == K::StorageFull,
        }
    }

    /// A local copy failed where either side may be at fault (the kernel copies from one file
    /// into the other): errors only a target gives are the target's, the rest the source's.
    pub(crate) fn copy(e: &io::Error) -> Self {
        use io::ErrorKind as K;
        if is_target_full(e) || matches!(e.kind(), K::ReadOnlyFilesystem) {
            FileError::write(e)
        } else {
            FileError::read(e)
        }
    }

    /// An error from a remote store, while writing the target or reading the source: a refusal
    /// (AZSM2062/2069), a timeout (AZSM2064/2067), a connection that failed (AZSM2065), or
    /// another failure (AZSM2063/2066).
    pub(crate) fn store(e: &opendal::Error, side: Side) -> Self {
        use opendal::ErrorKind as K;
        let timed_out = is_timeout(e);
        let dropped = !timed_out && is_dropped_connection(e);
        let target = side == Side::Target;
        let code = match (e.kind(), target) {
            (K::PermissionDenied, true) => Code::AZSM2069,
            (K::PermissionDenied, false) => Code::AZSM2062,
            (_, true) if timed_out => Code::AZSM2067,
            (_, false) if timed_out => Code::AZSM2064,
            (_, true) if dropped => Code::AZSM2065,
            (_, true) => Code::AZSM2066,
            (_, false) => Code::AZSM2063,
        };
        // Temporary errors were retried request by request; one that is still temporary, or
        // that the store layer gave up on (persistent), may pass on a new attempt at the file.
        // So may an answer the store did not explain (a damaged body refused with BadDigest
        // comes back as Unexpected). A refusal (denied, not found, invalid) will not.
        let retryable = e.is_temporary()
            || e.is_persistent()
            || timed_out
            || dropped
            || matches!(e.kind(), K::RateLimited | K::Unexpected);
        FileError {
            code,
            side,
            reason: e.to_string(),
            retryable,
            no_space: false,
        }
    }

    /// The source changed while it was being read: the next attempt reads it again.
    pub(crate) fn changed() -> Self {
        FileError {
            code: Code::AZSM2063,
            side: Side::Source,
            reason: "the file changed while it was being read".into(),
            retryable: true,
            no_space: false,
        }
    }

    /// What the target holds is not what was sent (AZSM2071): sent again.
    pub(crate) fn mismatch(what: String) -> Self {
        FileError {
            code: Code::AZSM2071,
            side: Side::Target,
            reason: what,
            retryable: true,
            no_space: false,
        }
    }

    /// A failure no new attempt can change (a name the target cannot address, a target that
    /// turned out unreachable for the whole run).
    pub(crate) fn for_good(code: Code, side: Side, reason: String) -> Self {
        FileError {
            code,
            side,
            reason,
            retryable: false,
            no_space: false,
        }
    }
}

/// A full file system, a quota or a file too large for the target: what only a target says.
fn is_target_full(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    matches!(
        e.kind(),
        K::StorageFull | K::QuotaExceeded | K::FileTooLarge
    )
}

/// The I/O error at the root of `e`'s causes, if there is one (the connection's own error under
/// the HTTP client's).
fn root_io(e: &opendal::Error) -> Option<io::ErrorKind> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        cause = c.source();
    }
    None
}

/// A request or a stream that stalled past its time: the timeout layer's error (it has no
/// cause; its message names it), or a connection that timed out.
fn is_timeout(e: &opendal::Error) -> bool {
    e.message().ends_with("timeout reached") || root_io(e) == Some(io::ErrorKind::TimedOut)
}

/// A request that got no answer: the HTTP client could not send it, or the connection under
/// it was reset, refused or closed.
fn is_dropped_connection(e: &opendal::Error) -> bool {
    use io::ErrorKind as K;
    e.message() == "send http request"
        || matches!(
            root_io(e),
            Some(
                K::ConnectionReset
                    | K::ConnectionAborted
                    | K::ConnectionRefused
                    | K::NotConnected
                    | K::BrokenPipe
                    | K::UnexpectedEof
            )
        )
}

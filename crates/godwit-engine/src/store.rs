//! Remote stores (S3, Azure Blob, SFTP, memory) through Apache OpenDAL: connecting with the
//! ecosystem's usual environment variables, listing into the walker's events, and turning a
//! store's errors into per-file codes.

use std::time::Duration;

use crossbeam_channel::Sender;
use futures::TryStreamExt;
use godwit_codes::Code;
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{ErrorKind, Operator, services};

use crate::error::JobError;
use crate::filter::Filter;
use crate::location::Location;
use crate::walk::{Entry, EntryKind, Event};

/// User metadata key under which godwit keeps a file's modification time (nanoseconds since
/// the epoch) on stores that have no settable mtime.
pub const MTIME_KEY: &str = "godwitmtime";

/// A connected remote store, rooted at the location's prefix.
#[derive(Debug, Clone)]
pub struct Remote {
    pub op: Operator,
    /// `s3`, `azure-blob`, `sftp` or `memory`.
    pub kind: &'static str,
    /// The location as the user wrote it, for messages.
    pub shown: String,
}

impl Remote {
    /// Whether a write appears at its final name only when complete. Object stores publish an
    /// object (or complete a multipart upload) atomically; on SFTP godwit writes a temporary
    /// name and renames it.
    pub fn writes_atomically(&self) -> bool {
        self.kind != "sftp"
    }

    /// Whether the store keeps arbitrary user metadata (where godwit records mtimes).
    pub fn has_user_metadata(&self) -> bool {
        matches!(self.kind, "s3" | "azure-blob")
    }
}

/// A duration in seconds from the environment: how long a request may take in all
/// (`GODWIT_REQUEST_TIMEOUT`, default 120) and how long a read or write may stall
/// (`GODWIT_IO_TIMEOUT`, default 20) before it is abandoned and retried.
fn seconds_from_env(name: &str, default: f64) -> Duration {
    let secs = env(name)
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(default);
    Duration::from_secs_f64(secs)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Connects to `location`, which must not be local. Credentials and endpoints come from the
/// environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`; `AZURE_STORAGE_CONNECTION_STRING` or `AZURE_STORAGE_ACCOUNT` +
/// `AZURE_STORAGE_KEY` (+ `AZURE_STORAGE_ENDPOINT`); for SFTP the ssh agent, `~/.ssh/config`
/// and `GODWIT_SFTP_KEY`. `role` is `source` or `target`, for the error code.
pub fn connect(location: &Location, role: &str) -> Result<Remote, JobError> {
    let invalid = |reason: String| {
        let code = if role == "source" {
            Code::MIGRATION_INVALID_SOURCE_PATH_ERROR
        } else {
            Code::MIGRATION_INVALID_DESTINATION_PATH_ERROR
        };
        JobError::new(
            code,
            &[("path", &location.to_string()), ("reason", &reason)],
        )
    };
    let built = match location {
        Location::Local(_) => return Err(invalid("a local path is not a remote store".into())),
        Location::S3 { bucket, prefix } => {
            // Every PUT and part carries its CRC32C; a store that checks it refuses a body damaged
            // on the way (BadDigest), and the write is tried again.
            let mut b = services::S3::default()
                .checksum_algorithm("crc32c")
                .bucket(bucket)
                .root(&format!("/{prefix}"))
                .region(
                    &env("AWS_REGION")
                        .or_else(|| env("AWS_DEFAULT_REGION"))
                        .unwrap_or_else(|| "us-east-1".into()),
                );
            if let Some(e) = env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")) {
                b = b.endpoint(&e);
            }
            if let (Some(k), Some(s)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                b = b.access_key_id(&k).secret_access_key(&s);
            }
            if let Some(t) = env("AWS_SESSION_TOKEN") {
                b = b.session_token(&t);
            }
            Operator::new(b)
        }
        Location::Azure { container, prefix } => {
            let b = match env("AZURE_STORAGE_CONNECTION_STRING") {
                Some(conn) => services::Azblob::from_connection_string(&conn)
                    .map_err(|e| invalid(e.to_string()))?,
                None => {
                    let (Some(account), Some(key)) =
                        (env("AZURE_STORAGE_ACCOUNT"), env("AZURE_STORAGE_KEY"))
                    else {
                        return Err(invalid(
                            "set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY".into(),
                        ));
                    };
                    let endpoint = env("AZURE_STORAGE_ENDPOINT")
                        .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
                    services::Azblob::default()
                        .account_name(&account)
                        .account_key(&key)
                        .endpoint(&endpoint)
                }
            };
            Operator::new(b.container(container).root(&format!("/{prefix}")))
        }
        Location::Sftp {
            user,
            host,
            port,
            path,
        } => {
            let user_part = user.as_deref().map(|u| format!("{u}@")).unwrap_or_default();
            let mut b = services::Sftp::default()
                .endpoint(&format!("ssh://{user_part}{host}:{port}"))
                .root(path)
                .known_hosts_strategy("strict");
            if let Some(u) = user {
                b = b.user(u);
            }
            if let Some(k) = env("GODWIT_SFTP_KEY") {
                b = b.key(&k);
            }
            Operator::new(b)
        }
        Location::Memory { prefix } => {
            Operator::new(services::Memory::default().root(&format!("/{prefix}")))
        }
    };
    let op = built.map_err(|e| invalid(e.to_string()))?;
    let op = op
        .layer(
            TimeoutLayer::new()
                .with_timeout(seconds_from_env("GODWIT_REQUEST_TIMEOUT", 120.0))
                .with_io_timeout(seconds_from_env("GODWIT_IO_TIMEOUT", 20.0)),
        )
        .layer(
            RetryLayer::new()
                .with_jitter()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(4),
        );
    Ok(Remote {
        op,
        kind: location.kind(),
        shown: location.to_string(),
    })
}

/// A per-file failure at a remote store: its code, the reason, and whether to try again.
#[derive(Debug)]
pub struct StoreFailure {
    pub code: Code,
    pub reason: String,
    pub retry: bool,
}

/// The code of an error from the store, seen while writing (`target`) or reading.
pub fn failure(e: &opendal::Error, target: bool) -> StoreFailure {
    let reason = e.to_string();
    let lower = reason.to_ascii_lowercase();
    // What the timeout layer says when a request or a stream stalls.
    let timed_out = lower.contains("timeout reached");
    // The request never got an answer: the connection failed, was reset or closed.
    let transport = [
        "error sending request",
        "connection reset",
        "connection closed",
        "broken pipe",
    ]
    .iter()
    .any(|m| lower.contains(m));
    let code = match (e.kind(), target) {
        (ErrorKind::PermissionDenied, true) => Code::AZSM2069,
        (ErrorKind::PermissionDenied, false) => Code::AZSM2062,
        (_, true) if timed_out => Code::AZSM2067,
        (_, false) if timed_out => Code::AZSM2064,
        (_, true) if transport => Code::AZSM2065,
        (_, true) => Code::AZSM2066,
        (_, false) => Code::AZSM2063,
    };
    // OpenDAL has already retried temporary errors, and marks them persistent when it gives up;
    // a whole new attempt at the file may still get through, so unexpected failures get the
    // file's attempts too. Refusals (permission, not found, invalid) do not.
    let retry = e.is_temporary()
        || timed_out
        || transport
        || matches!(e.kind(), ErrorKind::RateLimited | ErrorKind::Unexpected);
    StoreFailure {
        code,
        reason,
        retry,
    }
}

/// The job error for a store that cannot be reached or listed at all.
pub fn job_failure(remote: &Remote, e: &opendal::Error, target: bool) -> JobError {
    let code = match (e.kind(), target) {
        (ErrorKind::PermissionDenied, true) => Code::AZSM1021,
        (ErrorKind::PermissionDenied, false) => Code::AZSM1003,
        // A missing bucket or container comes back as NotFound or as ConfigInvalid.
        (ErrorKind::NotFound | ErrorKind::ConfigInvalid, true) => Code::AZSM1022,
        (ErrorKind::NotFound | ErrorKind::ConfigInvalid, false) => Code::AZSM1004,
        (_, true) => Code::AZSM1040,
        (_, false) => Code::AZSM1001,
    };
    JobError::new(code, &[("path", &remote.shown), ("reason", &e.to_string())])
}

/// The runtime that drives store calls for one run: two workers, as many as the machine's
/// cores on the machines godwit is sized for; the transfer threads block on it.
pub fn runtime(job_id: &str) -> Result<tokio::runtime::Runtime, JobError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            JobError::new(
                Code::COMMAND_START_ERROR,
                &[("job_id", job_id), ("reason", &e.to_string())],
            )
        })
}

/// One request that fails fast on a missing bucket, bad credentials or an unreachable host:
/// the first page (of one entry) of a listing.
pub fn reachable(
    remote: &Remote,
    rt: &tokio::runtime::Runtime,
    target: bool,
) -> Result<(), JobError> {
    rt.block_on(async {
        let mut lister = remote.op.lister_with("").limit(1).await?;
        lister.try_next().await.map(|_| ())
    })
    .map_err(|e| job_failure(remote, &e, target))
}

/// Lists `remote` recursively into the same events the local walker sends. Object stores list
/// files only; folders are derived from the paths.
pub async fn walk_remote(
    remote: &Remote,
    filter: &Filter,
    sink: &Sender<Event>,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<(), JobError> {
    let mut lister = remote
        .op
        .lister_with("")
        .recursive(true)
        .await
        .map_err(|e| job_failure(remote, &e, false))?;
    while let Some(item) = lister
        .try_next()
        .await
        .map_err(|e| job_failure(remote, &e, false))?
    {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let path = item.path().trim_start_matches('/');
        if path.is_empty() {
            continue;
        }
        let meta = item.metadata();
        let rel = path.trim_end_matches('/').as_bytes().to_vec();
        let depth = rel.iter().filter(|b| **b == b'/').count();
        if filter_hides_parent(filter, &rel) {
            continue;
        }
        let mtime_ns = meta
            .last_modified()
            .map(|t| {
                t.into_inner()
                    .as_nanosecond()
                    .clamp(i64::MIN as i128, i64::MAX as i128) as i64
            })
            .unwrap_or(0);
        let kind = if meta.is_dir() || path.ends_with('/') {
            EntryKind::Dir
        } else {
            EntryKind::File
        };
        if kind == EntryKind::Dir {
            if filter.excludes_dir(&rel) {
                let _ = sink.send(Event::ExcludedDir { rel });
            }
            continue;
        }
        let entry = Entry {
            rel,
            kind,
            size: meta.content_length(),
            mtime_ns,
            mode: 0o644,
            depth,
        };
        if sink.send(Event::Entry(entry)).is_err() {
            break;
        }
    }
    Ok(())
}

/// Whether a folder above `rel` is excluded: a flat listing cannot prune, so it filters.
fn filter_hides_parent(filter: &Filter, rel: &[u8]) -> bool {
    rel.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .any(|(i, _)| filter.excludes_dir(&rel[..i]))
}

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
use crate::walk::{Entry, EntryKind, Event};
use godwit_spec::{Filter, Location};

/// User metadata key under which godwit keeps a file's modification time (nanoseconds since
/// the epoch) on stores that have no settable mtime.
pub const MTIME_KEY: &str = "godwitmtime";

/// A connected remote store, rooted at the location's prefix.
#[derive(Debug, Clone)]
pub struct Remote {
    pub op: Operator,
    pub kind: godwit_spec::StoreKind,
    /// The location as the user wrote it, for messages.
    pub shown: String,
    /// An S3 target's coordinates, for the requests OpenDAL does not make (open uploads).
    pub s3: Option<Box<crate::uploads::S3Target>>,
    /// An SFTP store's own session for the files written to it (see `sftp`).
    pub sftp: Option<std::sync::Arc<crate::sftp::SftpTarget>>,
    /// An Azure Blob target's coordinates and key, for the request OpenDAL does not make.
    pub azure: Option<std::sync::Arc<crate::azure::AzureTarget>>,
}

impl Remote {
    /// What this store can do.
    pub fn features(&self) -> crate::features::Features {
        crate::features::Features::of(self.kind)
    }
}

/// The settings a store is reached with: credentials and endpoints, by the ecosystem's usual
/// environment variable names. Taken from the process's environment; a test or a caller that
/// holds them elsewhere gives them explicitly.
#[derive(Debug, Clone, Default)]
pub struct StoreEnv {
    vars: std::collections::BTreeMap<String, String>,
    from_process: bool,
}

impl StoreEnv {
    /// The process's environment.
    pub fn process() -> Self {
        StoreEnv {
            vars: Default::default(),
            from_process: true,
        }
    }

    /// Only what is set with [`StoreEnv::set`].
    pub fn empty() -> Self {
        StoreEnv::default()
    }

    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }

    pub(crate) fn get(&self, name: &str) -> Option<String> {
        let v = match self.vars.get(name) {
            Some(v) => Some(v.clone()),
            None if self.from_process => std::env::var(name).ok(),
            None => None,
        };
        v.filter(|v| !v.is_empty())
    }
}

/// Connects to `location`, which must not be local. Credentials and endpoints come from the
/// environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`; `AZURE_STORAGE_CONNECTION_STRING` or `AZURE_STORAGE_ACCOUNT` +
/// `AZURE_STORAGE_KEY` (+ `AZURE_STORAGE_ENDPOINT`); for SFTP the ssh agent, `~/.ssh/config`
/// and `GODWIT_SFTP_KEY`. `role` is `source` or `target`, for the error code.
pub fn connect(location: &Location, role: &str) -> Result<Remote, JobError> {
    connect_with(location, role, &StoreEnv::process())
}

/// [`connect`] with the settings in `env`.
pub fn connect_with(location: &Location, role: &str, env: &StoreEnv) -> Result<Remote, JobError> {
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
        Location::S3 { bucket, prefix } => Operator::new(s3(env, bucket, prefix)),
        Location::Azure { container, prefix } => {
            Operator::new(azure(env, container, prefix).map_err(invalid)?)
        }
        Location::Sftp {
            user,
            host,
            port,
            path,
        } => Operator::new(sftp(env, user.as_deref(), host, *port, path)),
        Location::Memory { prefix } => {
            Operator::new(services::Memory::default().root(&format!("/{prefix}")))
        }
    };
    let op = built.map_err(|e| invalid(e.to_string()))?;
    // How long a request may take in all, and how long a read or write may stall, before it
    // is abandoned and retried.
    let request_timeout = godwit_spec::env::seconds("GODWIT_REQUEST_TIMEOUT", 120.0)?;
    let io_timeout = godwit_spec::env::seconds("GODWIT_IO_TIMEOUT", 20.0)?;
    let op = op
        // Every operation at debug, failures at warn, when GODWIT_LOG asks (see godwit's
        // logging.rs); innermost, so that each try of a retried request is seen.
        .layer(opendal::layers::LoggingLayer::default())
        .layer(
            TimeoutLayer::new()
                .with_timeout(request_timeout)
                .with_io_timeout(io_timeout),
        )
        .layer(
            RetryLayer::new()
                .with_jitter()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(REQUEST_TRIES),
        );
    let s3 = match location {
        Location::S3 { bucket, prefix } => Some(Box::new(s3_target(env, bucket, prefix))),
        _ => None,
    };
    let sftp = match location {
        Location::Sftp {
            user,
            host,
            port,
            path,
        } => Some(std::sync::Arc::new(crate::sftp::SftpTarget::new(
            sftp_endpoint(user.as_deref(), host, *port),
            user.clone(),
            env.get("GODWIT_SFTP_KEY"),
            path,
            request_timeout,
        ))),
        _ => None,
    };
    let azure = match location {
        Location::Azure { container, prefix } => {
            crate::azure::AzureTarget::new(env, container, prefix).map(std::sync::Arc::new)
        }
        _ => None,
    };
    Ok(Remote {
        op,
        kind: location.kind(),
        shown: location.to_string(),
        s3,
        sftp,
        azure,
    })
}

/// Sends a request OpenDAL does not make (see `uploads.rs`, `azure.rs`), signed by `signer`:
/// its status and body, or why it could not be sent.
pub(crate) async fn send_signed<K: reqsign_core::SigningCredential>(
    http: &reqwest::Client,
    signer: &reqsign_core::Signer<K>,
    request: http::request::Builder,
) -> Result<(http::StatusCode, String), String> {
    let (mut parts, ()) = request.body(()).map_err(|e| e.to_string())?.into_parts();
    signer
        .sign(&mut parts, None)
        .await
        .map_err(|e| e.to_string())?;
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, text))
}

/// Tries of one request to a store (timeouts, 5xx, 429, resets), inside one attempt at a file.
pub const REQUEST_TRIES: usize = 4;

/// An S3 or S3-compatible bucket. Every PUT and part carries its CRC32C; a store that checks
/// it refuses a body damaged on the way (BadDigest), and the write is tried again.
fn s3(env: &StoreEnv, bucket: &str, prefix: &str) -> services::S3 {
    let mut b = services::S3::default()
        .checksum_algorithm("crc32c")
        .bucket(bucket)
        .root(&format!("/{prefix}"))
        .region(&s3_region(env));
    if let Some(e) = env
        .get("AWS_ENDPOINT_URL_S3")
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
    {
        b = b.endpoint(&e);
    }
    if let (Some(k), Some(s)) = (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        b = b.access_key_id(&k).secret_access_key(&s);
    }
    if let Some(t) = env.get("AWS_SESSION_TOKEN") {
        b = b.session_token(&t);
    }
    b
}

fn s3_region(env: &StoreEnv) -> String {
    env.get("AWS_REGION")
        .or_else(|| env.get("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".into())
}

/// Where the bucket is, as [`s3`] reaches it (path-style at the endpoint).
fn s3_target(env: &StoreEnv, bucket: &str, prefix: &str) -> crate::uploads::S3Target {
    let region = s3_region(env);
    let endpoint = env
        .get("AWS_ENDPOINT_URL_S3")
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    let prefix = prefix.trim_matches('/');
    crate::uploads::S3Target {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        bucket: bucket.to_string(),
        prefix: if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        },
        region,
        keys: env
            .get("AWS_ACCESS_KEY_ID")
            .zip(env.get("AWS_SECRET_ACCESS_KEY"))
            .map(|(k, s)| (k, s, env.get("AWS_SESSION_TOKEN"))),
    }
}

/// An Azure Blob container, with a connection string or an account and key.
fn azure(env: &StoreEnv, container: &str, prefix: &str) -> Result<services::Azblob, String> {
    let b = match env.get("AZURE_STORAGE_CONNECTION_STRING") {
        Some(conn) => services::Azblob::from_connection_string(&conn).map_err(|e| e.to_string())?,
        None => {
            let (Some(account), Some(key)) = (
                env.get("AZURE_STORAGE_ACCOUNT"),
                env.get("AZURE_STORAGE_KEY"),
            ) else {
                return Err(
                    "set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY"
                        .into(),
                );
            };
            let endpoint = env
                .get("AZURE_STORAGE_ENDPOINT")
                .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
            services::Azblob::default()
                .account_name(&account)
                .account_key(&key)
                .endpoint(&endpoint)
        }
    };
    Ok(b.container(container).root(&format!("/{prefix}")))
}

/// A folder on an SFTP server; host keys are checked strictly against known_hosts.
fn sftp(env: &StoreEnv, user: Option<&str>, host: &str, port: u16, path: &str) -> services::Sftp {
    let mut b = services::Sftp::default()
        .endpoint(&sftp_endpoint(user, host, port))
        .root(path)
        .known_hosts_strategy("strict");
    if let Some(u) = user {
        b = b.user(u);
    }
    if let Some(k) = env.get("GODWIT_SFTP_KEY") {
        b = b.key(&k);
    }
    b
}

fn sftp_endpoint(user: Option<&str>, host: &str, port: u16) -> String {
    let user_part = user.map(|u| format!("{u}@")).unwrap_or_default();
    format!("ssh://{user_part}{host}:{port}")
}

/// The job error for a store that cannot be reached or listed at all.
pub fn job_failure(remote: &Remote, e: &opendal::Error, target: bool) -> JobError {
    let reason = short_reason(e);
    let code = match (e.kind(), target) {
        // Credentials the store does not know or cannot verify, rather than too few rights.
        (ErrorKind::PermissionDenied, true) if refused_credentials(&reason) => Code::AZSM1025,
        (ErrorKind::PermissionDenied, true) => Code::AZSM1021,
        (ErrorKind::PermissionDenied, false) => Code::AZSM1003,
        // A missing bucket or container comes back as NotFound or as ConfigInvalid.
        (ErrorKind::NotFound | ErrorKind::ConfigInvalid, true) => Code::AZSM1022,
        (ErrorKind::NotFound | ErrorKind::ConfigInvalid, false) => Code::AZSM1004,
        (_, true) => Code::AZSM1040,
        (_, false) => Code::AZSM1001,
    };
    // The whole error (the request, every header of the answer) is for GODWIT_LOG; the
    // message says what the store said.
    tracing::warn!(store = %remote.shown, "{e}");
    JobError::new(code, &[("path", &remote.shown), ("reason", &reason)])
}

/// Whether a store's refusal is of the credentials themselves (an unknown key, a signature
/// made with the wrong secret, an expired token), by the store's own error code.
fn refused_credentials(reason: &str) -> bool {
    [
        "InvalidAccessKeyId",
        "NotSignedUp",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "AuthenticationFailed",
        "InvalidAuthenticationInfo",
    ]
    .iter()
    .any(|c| reason.starts_with(c))
        // Azure's words for a signature it cannot check, whatever code comes with them (the
        // Azurite emulator says AuthorizationFailure).
        || reason.contains("failed to authenticate the request")
}

/// What a store's error says, in a line: the store's own code and message where it gave
/// them (`NoSuchBucket: The specified bucket does not exist`), else OpenDAL's message and its
/// innermost cause (`connection refused`), with the kind of error.
pub fn short_reason(e: &opendal::Error) -> String {
    let msg = e.message();
    let quoted = |key: &str| {
        let start = msg.find(&format!("{key}: \""))? + key.len() + 3;
        let len = msg[start..].find('"')?;
        Some(&msg[start..start + len]).filter(|v| !v.is_empty())
    };
    let text = match (quoted("code"), quoted("message")) {
        (Some(code), Some(message)) => {
            // Azure adds the request's id and time to its message: they are in the log.
            let message = message.split("RequestId:").next().unwrap_or(message);
            format!("{code}: {}", message.trim_end_matches("\\n").trim())
        }
        // A store that names its error but says nothing more (SignatureDoesNotMatch).
        (Some(code), None) if code.chars().all(|c| c.is_ascii_alphanumeric()) => code.to_string(),
        _ => {
            let mut cause = std::error::Error::source(e);
            let mut innermost = None;
            while let Some(c) = cause {
                innermost = Some(c.to_string());
                cause = c.source();
            }
            match innermost {
                Some(c) if !msg.is_empty() && !c.contains(msg) => format!("{msg}: {c}"),
                Some(c) => c,
                None => msg.to_string(),
            }
        }
    };
    let mut text: String = text.chars().take(300).collect();
    text.push_str(&format!(" ({})", e.kind()));
    text
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

/// The error for a remote store reached without the runtime that drives it (a bug in godwit,
/// said rather than hidden).
pub fn no_runtime(remote: &Remote) -> JobError {
    JobError::new(
        Code::COMMAND_START_ERROR,
        &[
            ("job_id", &remote.shown),
            (
                "reason",
                "a remote store without a runtime (a bug in godwit)",
            ),
        ],
    )
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
    list_names: bool,
    sink: &Sender<Event>,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<(), JobError> {
    if remote.features().real_folders {
        // OpenDAL lists SFTP recursively by walking it, and silently leaves out a folder it
        // cannot read: a true-up would take that folder for deleted. Walk folder by folder,
        // so that such a folder is an error event like on a local source.
        return walk_by_folder(remote, filter, list_names, sink, stop).await;
    }
    let mut lister = remote
        .op
        .lister_with("")
        .recursive(true)
        .await
        .map_err(|e| job_failure(remote, &e, false))?;
    // A recursive listing gives every folder's whole subtree in one stretch (object stores
    // list in key order, others depth first): the folders open around the current path are a
    // stack, and each one's listing is complete when the listing leaves it.
    let mut open = vec![OpenFolder::new(Vec::new(), list_names)];
    while let Some(item) = lister
        .try_next()
        .await
        .map_err(|e| job_failure(remote, &e, false))?
    {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        let path = item.path().trim_start_matches('/');
        if path.is_empty() {
            continue;
        }
        let meta = item.metadata();
        let rel = path.trim_end_matches('/').as_bytes().to_vec();
        let is_dir = meta.is_dir() || path.ends_with('/');
        while open.len() > 1 && !is_below(&rel, &open[open.len() - 1].rel) {
            close_folder(&mut open, sink);
        }
        if open_parents(&mut open, &rel, filter, list_names, sink) {
            // Below an excluded folder.
            continue;
        }
        let name_start = rel.iter().rposition(|b| *b == b'/').map_or(0, |i| i + 1);
        let new = open_child(&mut open, rel[name_start..].to_vec(), is_dir);
        let depth = rel.iter().filter(|b| **b == b'/').count();
        if is_dir {
            if filter.excludes_dir(&rel) {
                if new {
                    let _ = sink.send(Event::ExcludedDir { rel });
                }
            } else if new {
                // A folder listed after its contents (depth-first listings name a folder last)
                // was opened and closed with them already.
                open.push(OpenFolder::new(rel, list_names));
            }
            continue;
        }
        // Outside the run's part of the source (a pool's unit).
        if filter.out_of_scope_file(&rel) {
            continue;
        }
        if sink
            .send(Event::Entry(remote_file(rel, meta, depth)))
            .is_err()
        {
            return Ok(());
        }
    }
    while !open.is_empty() {
        close_folder(&mut open, sink);
    }
    Ok(())
}

/// Opens the folders between the innermost open one and `rel`; true when one of them is
/// excluded (`rel` is then left out, the folder reported once).
fn open_parents(
    open: &mut Vec<OpenFolder>,
    rel: &[u8],
    filter: &Filter,
    list_names: bool,
    sink: &Sender<Event>,
) -> bool {
    loop {
        let top = &open[open.len() - 1].rel;
        let start = if top.is_empty() { 0 } else { top.len() + 1 };
        let Some(slash) = rel[start..].iter().position(|b| *b == b'/') else {
            return false;
        };
        let dir = rel[..start + slash].to_vec();
        let name = dir[start..].to_vec();
        let new = open_child(open, name, true);
        if filter.excludes_dir(&dir) {
            if new {
                let _ = sink.send(Event::ExcludedDir { rel: dir });
            }
            return true;
        }
        open.push(OpenFolder::new(dir, list_names));
    }
}

/// Lists a remote store one folder at a time (for stores without a listing of their own of a
/// whole tree), sending the same events as the local walk.
async fn walk_by_folder(
    remote: &Remote,
    filter: &Filter,
    list_names: bool,
    sink: &Sender<Event>,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<(), JobError> {
    let mut stack: Vec<String> = vec![String::new()];
    while let Some(dir) = stack.pop() {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        let path = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let lister = match remote.op.lister(&path).await {
            Ok(l) => l,
            Err(e) if dir.is_empty() => return Err(job_failure(remote, &e, false)),
            Err(e) => {
                let _ = sink.send(Event::Error {
                    rel: dir.into_bytes(),
                    error: listing_error(&e),
                });
                continue;
            }
        };
        let folder = Folder {
            dir,
            path,
            list_names,
        };
        if !list_folder(lister, folder, filter, sink, &mut stack).await {
            return Ok(());
        }
    }
    Ok(())
}

/// A remote folder being listed.
struct Folder {
    dir: String,
    /// `dir/`, as the store names it (empty for the root).
    path: String,
    list_names: bool,
}

/// A store's listing error as the walk's I/O error of that folder.
fn listing_error(e: &opendal::Error) -> std::io::Error {
    let f = crate::error::FileError::store(e, crate::error::Side::Source);
    let kind = if e.kind() == opendal::ErrorKind::PermissionDenied {
        std::io::ErrorKind::PermissionDenied
    } else {
        std::io::ErrorKind::Other
    };
    std::io::Error::new(kind, f.reason)
}

/// Sends the entries of one folder and its listing, and pushes its subfolders; false when the
/// receiver has hung up.
async fn list_folder(
    mut lister: opendal::Lister,
    f: Folder,
    filter: &Filter,
    sink: &Sender<Event>,
    stack: &mut Vec<String>,
) -> bool {
    let mut names = f.list_names.then(Vec::new);
    let mut entries = 0;
    let depth = if f.dir.is_empty() {
        0
    } else {
        f.dir.matches('/').count() + 1
    };
    loop {
        let item = match lister.try_next().await {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(e) => {
                let rel = f.dir.clone().into_bytes();
                let _ = sink.send(Event::Error {
                    rel,
                    error: listing_error(&e),
                });
                // A listing cut short is never compared with the index.
                names = None;
                break;
            }
        };
        let p = item.path().trim_start_matches('/');
        if p.is_empty() || p == f.path {
            continue;
        }
        let meta = item.metadata();
        let is_dir = meta.is_dir() || p.ends_with('/');
        let rel = p.trim_end_matches('/').to_string();
        entries += 1;
        if let Some(names) = &mut names {
            let name = rel.rsplit('/').next().unwrap_or(&rel).as_bytes().to_vec();
            names.push(crate::walk::Child {
                name,
                maybe_dir: is_dir,
            });
        }
        if !is_dir {
            // Outside the run's part of the source (a pool's unit).
            if filter.out_of_scope_file(rel.as_bytes()) {
                continue;
            }
            let file = remote_file(rel.into_bytes(), meta, depth);
            if sink.send(Event::Entry(file)).is_err() {
                return false;
            }
        } else if filter.out_of_scope_dir(rel.as_bytes()) {
            // Nothing of the run's below it: not listed.
        } else if filter.excludes_dir(rel.as_bytes()) {
            let _ = sink.send(Event::ExcludedDir {
                rel: rel.into_bytes(),
            });
        } else {
            stack.push(rel);
        }
    }
    if let Some(names) = &mut names {
        names.sort_unstable();
    }
    let _ = sink.send(Event::Listed {
        rel: f.dir.into_bytes(),
        entries,
        names,
    });
    true
}

/// A file as a store lists it.
pub(crate) fn remote_file(rel: Vec<u8>, meta: &opendal::Metadata, depth: usize) -> Entry {
    Entry {
        rel,
        kind: EntryKind::File,
        size: meta.content_length(),
        mtime_ns: mtime_ns_of(meta),
        mode: 0o644,
        depth,
        target: None,
        ino: 0,
        link: None,
    }
}

/// The modification time a store lists, in nanoseconds since the epoch (0 when it lists none).
pub(crate) fn mtime_ns_of(meta: &opendal::Metadata) -> i64 {
    meta.last_modified()
        .map(|t| {
            t.into_inner()
                .as_nanosecond()
                .clamp(i64::MIN as i128, i64::MAX as i128) as i64
        })
        .unwrap_or(0)
}

/// A folder of a remote listing whose subtree is being listed.
struct OpenFolder {
    rel: Vec<u8>,
    entries: usize,
    names: Option<Vec<crate::walk::Child>>,
    /// The last folder counted in it: every key below an excluded folder names it again.
    last_dir: Vec<u8>,
}

impl OpenFolder {
    fn new(rel: Vec<u8>, list_names: bool) -> Self {
        OpenFolder {
            rel,
            entries: 0,
            names: list_names.then(Vec::new),
            last_dir: Vec::new(),
        }
    }
}

fn is_below(rel: &[u8], dir: &[u8]) -> bool {
    dir.is_empty() || (rel.starts_with(dir) && rel.get(dir.len()) == Some(&b'/'))
}

/// Counts `name` in the innermost open folder, once (a folder's entries arrive together);
/// returns whether it was new.
fn open_child(open: &mut [OpenFolder], name: Vec<u8>, maybe_dir: bool) -> bool {
    let Some(top) = open.last_mut() else {
        return false;
    };
    if maybe_dir {
        if top.last_dir == name {
            return false;
        }
        top.last_dir.clone_from(&name);
    }
    if let Some(names) = &mut top.names {
        names.push(crate::walk::Child { name, maybe_dir });
    }
    top.entries += 1;
    true
}

fn close_folder(open: &mut Vec<OpenFolder>, sink: &Sender<Event>) {
    if let Some(mut folder) = open.pop() {
        if let Some(names) = &mut folder.names {
            names.sort_unstable();
        }
        let _ = sink.send(Event::Listed {
            rel: folder.rel,
            entries: folder.entries,
            names: folder.names,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_error_is_said_in_a_line() {
        let e = opendal::Error::new(
            ErrorKind::NotFound,
            "S3Error { code: \"NoSuchBucket\", message: \"The specified bucket does not exist\", resource: \"\" }",
        )
        .with_context("uri", "http://127.0.0.1:1/b?list-type=2")
        .with_context("response", "Parts { status: 404, headers: {\"server\": \"x\"} }");
        let short = short_reason(&e);
        assert_eq!(
            short,
            "NoSuchBucket: The specified bucket does not exist (NotFound)"
        );
        let e = opendal::Error::new(
            ErrorKind::NotFound,
            "AzblobError { code: \"ContainerNotFound\", message: \"The specified container does not exist.\\nRequestId:e0e7 Time:2026-12-03T05:51:21Z\" }",
        );
        assert_eq!(
            short_reason(&e),
            "ContainerNotFound: The specified container does not exist. (NotFound)"
        );
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e = opendal::Error::new(ErrorKind::Unexpected, "send http request").set_source(refused);
        assert_eq!(
            short_reason(&e),
            "send http request: Connection refused (Unexpected)"
        );
    }
}

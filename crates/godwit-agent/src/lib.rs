//! `godwit agent`: runs next to the data, connected to a control plane over a WebSocket. It
//! registers with its agent id (from its token), name and version, sends heartbeats, runs the
//! commands it is sent with the same engine as the command line, and reports progress (at most
//! every second), copy logs (in pages) and results.
//!
//! Nothing is lost on a cut: every report waits in the outbox until the control plane
//! acknowledges it, and is sent again after a reconnect (with backoff and jitter). Jobs go on
//! while the connection is down. Killed and started again, the agent gets the runs it had from
//! the control plane and resumes them where the engine's index says they stopped.

mod job;
pub mod tls;
mod upgrade;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use godwit_spec::protocol::{ToAgent, ToServer};
use godwit_spec::{Claims, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tracing::Instrument as _;

/// How to run.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The control plane: `http://host:port`.
    pub server: String,
    pub token: String,
    pub name: Option<String>,
    pub state_dir: PathBuf,
    /// The version this agent reports (the build's).
    pub version: String,
    /// The public half of the release key: releases are installed only when they verify with
    /// it. None: this agent cannot be upgraded through the control plane.
    pub release_key: Option<godwit_spec::release::PublicKey>,
    /// The binary an upgrade replaces, and the arguments it is run with again; None: this
    /// process's own.
    pub exe: Option<PathBuf>,
    pub args: Vec<std::ffi::OsString>,
    /// How long a new binary has to register before it rolls back.
    pub upgrade_window: Duration,
    /// The CA certificates the control plane's certificate must chain to; None: the system's.
    pub ca_file: Option<PathBuf>,
    /// Plain HTTP to a control plane that is not on loopback.
    pub allow_plain_http: bool,
}

impl AgentOptions {
    /// Options with the defaults: this crate's version, no release key, this process's
    /// binary and arguments, a 60 s upgrade window.
    pub fn new(server: &str, token: &str, state_dir: PathBuf) -> AgentOptions {
        AgentOptions {
            server: server.to_string(),
            token: token.to_string(),
            name: None,
            state_dir,
            version: env!("CARGO_PKG_VERSION").to_string(),
            release_key: None,
            exe: None,
            args: std::env::args_os().skip(1).collect(),
            upgrade_window: Duration::from_secs(60),
            ca_file: None,
            allow_plain_http: false,
        }
    }
}

/// Why the agent stopped.
#[derive(Debug)]
pub enum Exit {
    /// Asked to (Ctrl-C, SIGTERM).
    Shutdown,
    /// The control plane refused it for good; the code says why.
    Refused {
        code: String,
        message: String,
        remediation: String,
    },
    /// The options cannot work (a token without an agent id, a bad URL).
    Usage(String),
    /// Retired by the control plane: its runs stopped, its state directory removed.
    Retired,
}

/// Reports waiting for the control plane's acknowledgement.
#[derive(Debug, Default)]
struct Outbox {
    next_seq: u64,
    pending: BTreeMap<u64, ToServer>,
}

/// What the connection and the jobs share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    outbox: Mutex<Outbox>,
    /// Wakes job threads waiting for room in the outbox.
    room: Condvar,
    /// Runs in progress here: their control handle and why they stop (stop or pause).
    jobs: Mutex<HashMap<String, JobHandle>>,
    /// The last connection was registered: its loss starts the backoff afresh.
    connected: std::sync::atomic::AtomicBool,
    /// A new binary after an upgrade: its registration confirms the upgrade.
    confirming: std::sync::atomic::AtomicBool,
    /// The sequence number of the report that the agent retired: once acknowledged, it leaves.
    retired: Mutex<Option<u64>>,
    leave: std::sync::atomic::AtomicBool,
}

/// A job's control handle, and why it is asked to stop (`stop` or `pause`).
pub(crate) type JobHandle = (Arc<godwit_engine::job::Control>, Arc<Mutex<Option<String>>>);

/// Past this many reports waiting, job threads wait: memory stays bounded while disconnected.
const OUTBOX_ROOM: usize = 64;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Queues a report (built with its sequence number); a progress report replaces the one
    /// of the same run still waiting. Waits while the outbox is full, unless `wait` is false.
    pub(crate) fn push(&self, wait: bool, make: impl FnOnce(u64) -> ToServer) {
        let mut out = lock(&self.outbox);
        while wait && out.pending.len() >= OUTBOX_ROOM {
            out = self
                .room
                .wait_timeout(out, Duration::from_millis(200))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        let seq = out.next_seq;
        out.next_seq += 1;
        let message = make(seq);
        if let ToServer::Progress { run_id, .. } = &message {
            let stale: Vec<u64> = out
                .pending
                .iter()
                .filter(|(_, m)| matches!(m, ToServer::Progress { run_id: r, .. } if r == run_id))
                .map(|(s, _)| *s)
                .collect();
            for s in stale {
                out.pending.remove(&s);
            }
        }
        out.pending.insert(seq, message);
    }

    /// Whether run `run_id` has ended for good here (succeeded or failed) and its result still
    /// waits for the control plane: a command for it now is the same one sent again after a
    /// reconnect, not a new attempt.
    pub(crate) fn has_ended(&self, run_id: &str) -> bool {
        lock(&self.outbox).pending.values().any(|m| {
            matches!(m, ToServer::Result { run_id: r, state, .. }
                if r == run_id
                    && matches!(state, godwit_codes::State::Succeeded | godwit_codes::State::Failed))
        })
    }

    fn acknowledged(&self, seq: u64) {
        lock(&self.outbox).pending.remove(&seq);
        self.room.notify_all();
        if *lock(&self.retired) == Some(seq) {
            self.leave.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn waiting_after(&self, seq: Option<u64>) -> Vec<(u64, ToServer)> {
        let out = lock(&self.outbox);
        out.pending
            .iter()
            .filter(|(s, _)| seq.is_none_or(|last| **s > last))
            .map(|(s, m)| (*s, m.clone()))
            .collect()
    }
}

/// Lists the folders under `location` for the control plane's `browse_id`, with the engine's
/// one-level listing.
fn browse(shared: &Shared, browse_id: String, location: &str, limit: u64) {
    tracing::info!(location, "browsing a source");
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let found = godwit_engine::Location::parse(location)
        .and_then(|l| godwit_engine::browse::folders(&l, limit));
    let (folders, unnamed, error) = match found {
        Ok(f) => (f.names, f.unnamed, None),
        Err(e) => {
            tracing::warn!(code = e.code.id(), "browsing failed: {}", e.message);
            let wire = godwit_spec::protocol::WireError {
                code: e.code.id().to_string(),
                message: e.message,
            };
            (Vec::new(), 0, Some(wire))
        }
    };
    shared.push(false, |seq| ToServer::Browsed {
        seq,
        browse_id,
        folders,
        unnamed,
        error,
    });
}

/// Runs the agent until `shutdown` resolves or the control plane refuses it for good.
pub async fn run(options: AgentOptions, shutdown: impl std::future::Future<Output = ()>) -> Exit {
    let Some(claims) = Claims::read_unverified(&options.token) else {
        return Exit::Usage("the token cannot be read; use one from `POST /v1/agents`".into());
    };
    let Some(agent_id) = claims.agent_id.filter(|_| claims.role == Role::Agent) else {
        return Exit::Usage(
            "this is not an agent token: register the agent (POST /v1/agents) and use the token it returns".into(),
        );
    };
    let mut urls = Vec::new();
    for server in servers(&options.server) {
        match ws_url(&server) {
            Ok(u) => urls.push((server.clone(), u)),
            Err(e) => return Exit::Usage(e),
        }
        if let Err(e) = tls::check_plain(&server, options.allow_plain_http) {
            return Exit::Usage(e);
        }
    }
    if urls.is_empty() {
        return Exit::Usage("--server: give the control plane's URL, http://HOST:PORT".into());
    }
    tls::install_provider();
    if let Err(e) = tls::ws_connector(options.ca_file.as_deref()) {
        return Exit::Usage(e);
    }
    // Every line the agent logs, and every command's span, carries its id.
    let span = tracing::info_span!("agent", agent_id = %agent_id);
    serve_control_plane(options, agent_id, urls, shutdown)
        .instrument(span)
        .await
}

async fn serve_control_plane(
    options: AgentOptions,
    agent_id: String,
    urls: Vec<(String, String)>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Exit {
    let shared = Arc::new(Shared::default());
    let ctx = Arc::new(upgrade::Context {
        state_dir: options.state_dir.clone(),
        exe: match options.exe.clone().map_or_else(std::env::current_exe, Ok) {
            Ok(p) => p,
            Err(e) => return Exit::Usage(format!("the agent's own binary cannot be found: {e}")),
        },
        args: options.args.clone(),
        version: options.version.clone(),
        server: Arc::new(Mutex::new(urls[0].0.clone())),
        token: options.token.clone(),
        release_key: options.release_key,
        window: options.upgrade_window,
        ca_file: options.ca_file.clone(),
        hold: std::env::var("GODWIT_TEST_UPGRADE_HOLD").ok(),
    });
    // An upgrade the last run of the agent was in is finished or undone first.
    let confirm_by = match upgrade::on_start(&ctx, &shared) {
        upgrade::Startup::Confirm(window) => {
            shared
                .confirming
                .store(true, std::sync::atomic::Ordering::Relaxed);
            Some(tokio::time::Instant::now() + window)
        }
        upgrade::Startup::Nothing => None,
    };
    let confirm_deadline = async move {
        match confirm_by {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(confirm_deadline);
    let mut backoff = Duration::from_millis(500);
    let mut jitter_seed = u64::from(std::process::id());
    tokio::pin!(shutdown);
    // Several replicas: the next one is tried whenever a connection fails or ends.
    let mut next = 0;
    loop {
        let (server, url) = &urls[next % urls.len()];
        next += 1;
        *lock(&ctx.server) = server.clone();
        let session = connect_once(&options, &agent_id, url, &shared, &ctx);
        tokio::select! {
            () = &mut shutdown => {
                stop_all(&shared);
                return Exit::Shutdown;
            }
            () = &mut confirm_deadline, if shared.confirming.load(std::sync::atomic::Ordering::Relaxed) => {
                let why = format!("it did not register with the control plane within {} s", options.upgrade_window.as_secs());
                upgrade::roll_back_now(&ctx, &shared, &why);
                shared.confirming.store(false, std::sync::atomic::Ordering::Relaxed);
                continue;
            }
            result = session => match result {
                Ok(Some(Exit::Refused { code, message, .. }))
                    if shared.confirming.load(std::sync::atomic::Ordering::Relaxed) =>
                {
                    // A new binary the control plane refuses is rolled back, not left to exit.
                    upgrade::roll_back_now(&ctx, &shared, &format!("the control plane refused it: [{code}] {message}"));
                    shared.confirming.store(false, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(Some(exit)) => {
                    stop_all(&shared);
                    return exit;
                }
                Ok(None) => backoff = Duration::from_millis(500),
                Err(why) => tracing::warn!(url = %url, "connection failed: {why}; trying again"),
            }
        }
        metrics::gauge!("godwit_agent_connected").set(0.0);
        // A connection that was up and then lost (the control plane restarted) is tried again
        // soon, not after the backoff of earlier outages.
        if shared
            .connected
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            backoff = Duration::from_millis(500);
        }
        // Backoff with jitter: between half and all of the delay, doubling up to 15 s.
        jitter_seed = jitter_seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let fraction = 0.5 + (jitter_seed >> 33) as f64 / (1u64 << 31) as f64 * 0.5;
        let wait = backoff.mul_f64(fraction.min(1.0));
        tokio::select! {
            () = &mut shutdown => {
                stop_all(&shared);
                return Exit::Shutdown;
            }
            () = tokio::time::sleep(wait) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(15));
    }
}

fn stop_all(shared: &Shared) {
    for (control, _) in lock(&shared.jobs).values() {
        control.stop();
    }
}

/// The control planes `list` names: one URL, or several replicas' separated by commas.
pub fn servers(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn ws_url(server: &str) -> Result<String, String> {
    let base = server.trim_end_matches('/');
    let rest = if let Some(r) = base.strip_prefix("http://") {
        format!("ws://{r}")
    } else if let Some(r) = base.strip_prefix("https://") {
        format!("wss://{r}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_string()
    } else {
        return Err(format!("{server}: the server is http://HOST:PORT"));
    };
    Ok(format!("{rest}/v1/agent/connect"))
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the WebSocket with the agent's token and says hello with what it runs; returns the
/// heartbeat period the control plane asks for, or how it refused (Ok(Err): for good).
async fn register(
    options: &AgentOptions,
    agent_id: &str,
    url: &str,
) -> Result<Result<(Socket, u64), Exit>, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    let bearer = format!("Bearer {}", options.token)
        .parse()
        .map_err(|_| "the token has characters a header cannot hold".to_string())?;
    request.headers_mut().insert("authorization", bearer);
    let connector = tls::ws_connector(options.ca_file.as_deref())?;
    let connected =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector).await;
    let mut socket = match connected {
        Ok((socket, _)) => socket,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            return match refusal_of(response.status().as_u16(), response.body().as_deref()) {
                Some(exit) => Ok(Err(exit)),
                None => Err(format!("the control plane answered {}", response.status())),
            };
        }
        Err(e) => return Err(e.to_string()),
    };
    let hello = ToServer::Hello {
        agent_id: Some(agent_id.to_string()),
        name: options.name.clone(),
        version: Some(options.version.clone()),
        platform: Some(godwit_spec::release::platform()),
        features: Some(
            godwit_spec::protocol::AGENT_FEATURES
                .iter()
                .map(|f| f.to_string())
                .collect(),
        ),
        commands: Some(
            godwit_engine::job::SUPPORTED
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
        ),
    };
    socket
        .send(Message::Text(
            serde_json::to_string(&hello).unwrap_or_default().into(),
        ))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(t))) => match ToAgent::decode(&t) {
                Ok(ToAgent::Welcome { heartbeat_secs, .. }) => {
                    return Ok(Ok((socket, heartbeat_secs.max(1))));
                }
                Ok(ToAgent::Refused {
                    code,
                    message,
                    remediation,
                    retry,
                    ..
                }) => {
                    if retry {
                        return Err(format!("refused with {code}: {message}"));
                    }
                    return Ok(Err(Exit::Refused {
                        code,
                        message,
                        remediation,
                    }));
                }
                _ => return Err("the control plane did not answer the hello".into()),
            },
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the connection closed during registration".into()),
        }
    }
}

/// A refusal for good of the connection itself: 401 (the token is expired, revoked or not
/// one the control plane issued) or 403 (the agent is deactivated or deleted), with the code
/// of the control plane's answer. Anything else (429, 5xx) is worth trying again.
fn refusal_of(status: u16, body: Option<&[u8]>) -> Option<Exit> {
    if status != 401 && status != 403 {
        return None;
    }
    let v: serde_json::Value = body
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default();
    let text = |k: &str| v.get(k).and_then(|t| t.as_str()).unwrap_or("").to_string();
    let code = match text("error_code") {
        c if c.is_empty() => format!("HTTP{status}"),
        c => c,
    };
    // `details` is a list of {error_code, error_msg} (seed 003); its first entry's advice.
    let advice = v
        .get("details")
        .and_then(|d| d.get(0))
        .and_then(|d| d.get("error_msg"))
        .and_then(|t| t.as_str())
        .unwrap_or("")
        .to_string();
    let remediation = match advice {
        d if d.is_empty() => godwit_codes::Code::lookup(&code)
            .map(|c| c.info().remediation.to_string())
            .unwrap_or_default(),
        d => d,
    };
    Some(Exit::Refused {
        code,
        message: match text("error_msg") {
            m if m.is_empty() => format!("the control plane answered {status}"),
            m => m,
        },
        remediation,
    })
}

/// One connection: registers, then serves until it drops. Ok(Some) ends the agent; Ok(None)
/// and Err reconnect.
async fn connect_once(
    options: &AgentOptions,
    agent_id: &str,
    url: &str,
    shared: &Arc<Shared>,
    ctx: &Arc<upgrade::Context>,
) -> Result<Option<Exit>, String> {
    let (mut socket, heartbeat) = match register(options, agent_id, url).await? {
        Ok(registered) => registered,
        Err(exit) => return Ok(Some(exit)),
    };
    if shared
        .confirming
        .swap(false, std::sync::atomic::Ordering::Relaxed)
    {
        upgrade::confirmed(ctx, shared);
    }
    tracing::info!(url, heartbeat, "connected to {url}");
    metrics::gauge!("godwit_agent_connected").set(1.0);
    shared
        .connected
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut beat = tokio::time::interval(Duration::from_secs(heartbeat));
    let mut flush = tokio::time::interval(Duration::from_millis(200));
    // Reports sent on this connection; everything still waiting is sent again on the next.
    let mut sent_upto: Option<u64> = None;
    loop {
        tokio::select! {
            _ = beat.tick() => {
                let text = serde_json::to_string(&ToServer::Heartbeat).unwrap_or_default();
                socket.send(Message::Text(text.into())).await.map_err(|e| e.to_string())?;
            }
            _ = flush.tick() => {
                for (seq, message) in shared.waiting_after(sent_upto) {
                    let text = serde_json::to_string(&message).unwrap_or_default();
                    socket.send(Message::Text(text.into())).await.map_err(|e| e.to_string())?;
                    sent_upto = Some(seq);
                }
            }
            incoming = socket.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Close(_))) | None => return Ok(None),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e.to_string()),
                };
                let decoded = ToAgent::decode(&text);
                // Refused while connected (its token revoked, the agent deactivated or
                // deleted): for good.
                if let Ok(ToAgent::Refused { code, message, remediation, retry: false, .. }) =
                    decoded
                {
                    return Ok(Some(Exit::Refused { code, message, remediation }));
                }
                on_message(&text, decoded, shared, options, ctx);
                if shared.leave.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = socket.send(Message::Close(None)).await;
                    return Ok(Some(Exit::Retired));
                }
            }
        }
    }
}

/// What the agent does with one message of the control plane.
fn on_message(
    text: &str,
    decoded: Result<ToAgent, godwit_spec::protocol::Undecodable>,
    shared: &Arc<Shared>,
    options: &AgentOptions,
    ctx: &Arc<upgrade::Context>,
) {
    match &decoded {
        Ok(ToAgent::Command(job)) => tracing::info!(
            run_id = %job.run_id,
            command = job.command.as_str(),
            "command received"
        ),
        Ok(ToAgent::Control { run_id, action }) => {
            tracing::info!(run_id = %run_id, action = ?action, "control received");
        }
        Ok(_) => tracing::trace!("message received"),
        Err(_) => tracing::debug!("a message that cannot be read"),
    }
    match decoded {
        Ok(ToAgent::Ack { seq }) => shared.acknowledged(seq),
        Ok(ToAgent::Command(job)) => {
            let from = job::IndexFrom {
                ctx: ctx.clone(),
                rt: tokio::runtime::Handle::current(),
            };
            job::start(shared.clone(), options.state_dir.clone(), *job, from);
        }
        Ok(ToAgent::Control { run_id, action }) => {
            if let Some((control, why)) = lock(&shared.jobs).get(&run_id) {
                *lock(why) = Some(action);
                control.stop();
            }
        }
        Ok(ToAgent::Upgrade(order)) => {
            tokio::spawn(upgrade::perform(ctx.clone(), shared.clone(), *order));
        }
        Ok(ToAgent::Retire) => {
            tokio::spawn(retire(shared.clone(), options.state_dir.clone()));
        }
        Ok(ToAgent::Browse {
            browse_id,
            location,
            limit,
        }) => {
            let shared = shared.clone();
            std::thread::spawn(move || browse(&shared, browse_id, &location, limit));
        }
        Ok(ToAgent::Error { code, message }) => {
            tracing::warn!(code = %code, "the control plane could not use a message: {message}");
        }
        Ok(other) => tracing::warn!("unexpected message: {other:?}"),
        Err(godwit_spec::protocol::Undecodable {
            run_id: Some(run_id),
            error,
        }) => {
            // A command this agent cannot run as sent: its run fails with the code.
            job::refuse(shared, &run_id, &error);
        }
        Err(godwit_spec::protocol::Undecodable {
            run_id: None,
            error: e,
        }) => {
            // Logged; the connection is kept: 1050 for an unknown op, else 1131.
            let op = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("op")?.as_str().map(str::to_string));
            let (code, text) = match op {
                Some(op)
                    if ![
                        "welcome", "refused", "command", "control", "ack", "error", "upgrade",
                    ]
                    .contains(&op.as_str()) =>
                {
                    let c = godwit_codes::Code::INVALID_COMMAND_ERROR;
                    (c, c.render(&[("opcode", &op)]))
                }
                _ => (e.code, e.message),
            };
            tracing::error!(code = code.id(), "{text}");
        }
    }
}

/// What `godwit doctor --server` finds: the control plane reached (over TLS verified as the
/// agent verifies it) and the agent's token accepted, as the agent's registration would be.
/// Err: the code and message of what is wrong.
pub async fn reach_control_plane(
    server: &str,
    token: &str,
    ca_file: Option<&std::path::Path>,
    allow_plain_http: bool,
) -> Result<String, (String, String)> {
    use godwit_codes::Code;
    let unreachable = |reason: &str| {
        let c = Code::AZSM1054;
        (
            c.id().to_string(),
            c.render(&[("url", server), ("reason", reason)]),
        )
    };
    tls::check_plain(server, allow_plain_http)
        .map_err(|e| (Code::INCORRECT_MIGRATION_CONFIG.id().to_string(), e))?;
    let Some(agent_id) = Claims::read_unverified(token)
        .filter(|c| c.role == Role::Agent)
        .and_then(|c| c.agent_id)
    else {
        // What the control plane answers such a token at the agents' door.
        let c = Code::HTTP_FORBIDDEN;
        return Err((
            c.id().to_string(),
            "this is not an agent token: use the one POST /v1/agents returned".to_string(),
        ));
    };
    tls::install_provider();
    let client = tls::http_client(ca_file).map_err(|e| unreachable(&e))?;
    let url = format!("{}/v1/agents/{agent_id}", server.trim_end_matches('/'));
    let response = client
        .get(&url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .map_err(|e| {
            // The innermost cause says it: connection refused, a certificate that does not verify.
            let mut cause: &dyn std::error::Error = &e;
            while let Some(inner) = cause.source() {
                cause = inner;
            }
            unreachable(&format!("{e}: {cause}"))
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(format!("reached; agent {agent_id}'s token accepted"));
    }
    let bytes = response.bytes().await.unwrap_or_default();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let code = body["error_code"]
        .as_str()
        .map_or_else(|| format!("HTTP{}", status.as_u16()), str::to_string);
    let message = body["error_msg"].as_str().map_or_else(
        || format!("the control plane answered {status}"),
        str::to_string,
    );
    Err((code, message))
}

/// `godwit agent --post-check`: what a new binary passes before it replaces the running one
/// (see `upgrade`). Prints `{"version": ...}` when it passes.
pub async fn post_check(options: &AgentOptions) -> Result<(), String> {
    upgrade::post_check(
        &servers(&options.server),
        &options.token,
        options.ca_file.as_deref(),
        &options.state_dir,
    )
    .await?;
    println!("{}", serde_json::json!({ "version": options.version }));
    Ok(())
}

/// Retires this agent: stops its runs (their results still go out), waits for them to end,
/// removes the state directory, and says so; the agent leaves once that is acknowledged.
async fn retire(shared: Arc<Shared>, state_dir: PathBuf) {
    tracing::info!(
        state_dir = %state_dir.display(),
        "retiring: stopping runs and removing the state directory"
    );
    for (control, why) in lock(&shared.jobs).values() {
        *lock(why) = Some("stop".to_string());
        control.stop();
    }
    let started = std::time::Instant::now();
    while !lock(&shared.jobs).is_empty() && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Err(e) = std::fs::remove_dir_all(&state_dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::error!(
            state_dir = %state_dir.display(),
            "retiring: the state directory could not be removed: {e}"
        );
        return;
    }
    // Noted under the outbox's lock, before the report can be sent and acknowledged.
    shared.push(false, |seq| {
        *lock(&shared.retired) = Some(seq);
        ToServer::Retired { seq }
    });
}

//! Agents connected to this control plane: the WebSocket at `/v1/agent/connect`, registration
//! (seed 000's 850-868), heartbeats, delivering commands, and what agents report back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use godwit_codes::{Code, State as RunState};
use godwit_spec::CommandKind;
use tokio::sync::mpsc;

use crate::AppState;
use crate::auth::{Caller, Role};
use crate::error::{ApiError, DomainError};
use crate::protocol::{Job, ToAgent, ToServer};
use crate::records::Delivery;

/// The agents connected now, each with the channel its connection sends from.
#[derive(Debug)]
pub struct Hub {
    agents: Mutex<HashMap<String, (u64, mpsc::UnboundedSender<ToAgent>)>>,
    next: AtomicU64,
    /// An agent silent for this long is inactive (900).
    pub heartbeat_window: Duration,
    /// A retirement not over within this is 196.
    pub retire_timeout: Duration,
    /// A running command whose agent reports nothing on it this long is 697.
    pub report_window: Duration,
    /// A running command that does nothing this long (its reports show no activity) is 641.
    pub hung_window: Duration,
    /// A browse of a source waits this long for its agent's answer (697 past it).
    pub browse_wait: Duration,
    /// A browse finding more folders than this offers none (638).
    pub browse_max_folders: u64,
    /// The browse each agent is answering now (one at a time: 696), by agent.
    browses: Mutex<HashMap<String, Browsing>>,
    /// The other control planes on the same PostgreSQL database, once serving on one.
    cluster: std::sync::OnceLock<std::sync::Arc<crate::cluster::Cluster>>,
}

/// A browse sent to an agent and not answered yet.
#[derive(Debug)]
struct Browsing {
    browse_id: String,
    answer: tokio::sync::oneshot::Sender<Browsed>,
}

/// An agent's answer to a browse (relayed as it is between replicas).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Browsed {
    pub folders: Vec<String>,
    pub unnamed: u64,
    pub error: Option<crate::protocol::WireError>,
}

/// Why a browse got no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum NoAnswer {
    /// The agent is answering another browse (696).
    Busy,
    /// It is not connected, or its connection closed before it answered (695).
    Gone,
    /// Nothing came within the wait (697).
    Late,
}

impl Hub {
    pub fn new(heartbeat_window: Duration) -> Self {
        Hub {
            agents: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            heartbeat_window,
            retire_timeout: Duration::from_secs(300),
            report_window: Duration::from_secs(300),
            hung_window: Duration::from_secs(1800),
            browse_wait: Duration::from_secs(30),
            browse_max_folders: 10_000,
            browses: Mutex::new(HashMap::new()),
            cluster: std::sync::OnceLock::new(),
        }
    }

    /// Messages for agents connected to other replicas go through `cluster` from now on.
    pub fn set_cluster(&self, cluster: std::sync::Arc<crate::cluster::Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    pub fn cluster(&self) -> Option<&crate::cluster::Cluster> {
        self.cluster.get().map(|c| &**c)
    }

    /// Asks agent `agent_id` for the folders under `location` and waits for its answer.
    pub async fn browse(&self, agent_id: &str, location: &str) -> Result<Browsed, NoAnswer> {
        let browse_id = crate::store::new_id();
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let mut browses = self.browsing();
            if browses.contains_key(agent_id) {
                return Err(NoAnswer::Busy);
            }
            let pending = Browsing {
                browse_id: browse_id.clone(),
                answer: tx,
            };
            browses.insert(agent_id.to_string(), pending);
        }
        let message = ToAgent::Browse {
            browse_id: browse_id.clone(),
            location: location.to_string(),
            limit: self.browse_max_folders,
        };
        let answer = if self.send(agent_id, message).await {
            match tokio::time::timeout(self.browse_wait, rx).await {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(_)) => Err(NoAnswer::Gone),
                Err(_) => Err(NoAnswer::Late),
            }
        } else {
            Err(NoAnswer::Gone)
        };
        // Whatever came of it, the agent may be asked again (a late answer finds nobody).
        self.take_browse(agent_id, &browse_id);
        answer
    }

    fn browsing(&self) -> std::sync::MutexGuard<'_, HashMap<String, Browsing>> {
        self.browses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The browse `browse_id` of agent `agent_id`, if it still waits; it waits no more.
    fn take_browse(&self, agent_id: &str, browse_id: &str) -> Option<Browsing> {
        let mut browses = self.browsing();
        if browses.get(agent_id)?.browse_id != browse_id {
            return None;
        }
        browses.remove(agent_id)
    }

    /// Hands an agent's answer to the browse waiting for it here, if one still is; false
    /// when none is.
    pub(crate) fn browsed_here(&self, agent_id: &str, browse_id: &str, answer: Browsed) -> bool {
        match self.take_browse(agent_id, browse_id) {
            Some(b) => {
                let _ = b.answer.send(answer);
                true
            }
            None => false,
        }
    }

    /// Hands an agent's answer to the browse waiting for it, here or on another replica.
    async fn browsed(&self, agent_id: &str, browse_id: &str, answer: Browsed) {
        if let Some(b) = self.take_browse(agent_id, browse_id) {
            let _ = b.answer.send(answer);
        } else if let Some(cluster) = self.cluster() {
            cluster.browsed(agent_id, browse_id, answer).await;
        }
    }

    /// `GODWIT_HEARTBEAT_WINDOW` seconds (default 30), `GODWIT_RETIRE_TIMEOUT` (default 300).
    pub fn from_env() -> Result<Self, godwit_spec::JobError> {
        let mut hub = godwit_spec::env::seconds("GODWIT_HEARTBEAT_WINDOW", 30.0).map(Hub::new)?;
        hub.retire_timeout = godwit_spec::env::seconds("GODWIT_RETIRE_TIMEOUT", 300.0)?;
        hub.report_window = godwit_spec::env::seconds("GODWIT_RUN_REPORT_WINDOW", 300.0)?;
        hub.hung_window = godwit_spec::env::seconds("GODWIT_RUN_HUNG_WINDOW", 1800.0)?;
        hub.browse_wait = godwit_spec::env::seconds("GODWIT_BROWSE_WAIT", 30.0)?;
        hub.browse_max_folders = u64::try_from(godwit_spec::env::count(
            "GODWIT_BROWSE_MAX_FOLDERS",
            10_000,
        )?)
        .unwrap_or(10_000);
        Ok(hub)
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (u64, mpsc::UnboundedSender<ToAgent>)>> {
        self.agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends to an agent connected to this replica; false when it is not.
    pub(crate) fn send_here(&self, agent_id: &str, message: ToAgent) -> bool {
        self.lock()
            .get(agent_id)
            .is_some_and(|(_, tx)| tx.send(message).is_ok())
    }

    /// Sends to a connected agent, whichever replica its connection is on; false when it is
    /// not connected.
    pub async fn send(&self, agent_id: &str, message: ToAgent) -> bool {
        let message = {
            let agents = self.lock();
            match agents.get(agent_id) {
                Some((_, tx)) => return tx.send(message).is_ok(),
                None => message,
            }
        };
        match self.cluster() {
            Some(cluster) => cluster.send(agent_id, message).await,
            None => false,
        }
    }

    /// Whether the agent is connected, to this replica or another.
    pub async fn is_connected(&self, agent_id: &str) -> bool {
        if self.lock().contains_key(agent_id) {
            return true;
        }
        match self.cluster() {
            Some(cluster) => cluster.is_connected(agent_id).await,
            None => false,
        }
    }

    /// The agents connected to this replica.
    pub fn here(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Closes this replica's connection from `agent_id` (it connected to another one).
    pub(crate) fn drop_here(&self, agent_id: &str) {
        self.lock().remove(agent_id);
        self.browsing().remove(agent_id);
    }

    fn join(&self, agent_id: &str) -> Option<(u64, mpsc::UnboundedReceiver<ToAgent>)> {
        let mut agents = self.lock();
        if agents.contains_key(agent_id) {
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        agents.insert(agent_id.to_string(), (id, tx));
        Some((id, rx))
    }

    /// Connection `connection` of `agent_id` ended (unless a newer one took its place).
    async fn leave(&self, agent_id: &str, connection: u64) {
        let left = {
            let mut agents = self.lock();
            let ours = agents
                .get(agent_id)
                .is_some_and(|(id, _)| *id == connection);
            if ours {
                agents.remove(agent_id);
                // A browse it was answering gets no answer now (695).
                self.browsing().remove(agent_id);
            }
            ours
        };
        if left && let Some(cluster) = self.cluster() {
            cluster.unlinked(agent_id).await;
        }
    }

    /// Marks agents silent past the window inactive, and suspends what they ran; returns them.
    pub async fn sweep(&self, store: &crate::Store) -> Result<Vec<String>, DomainError> {
        let window = i64::try_from(self.heartbeat_window.as_millis()).unwrap_or(i64::MAX);
        let mut connected = self.here();
        if let Some(cluster) = self.cluster() {
            connected.extend(cluster.connected().await);
        }
        store.sweep_silent_agents(window, &connected).await
    }
}

/// The message that runs `d` on its agent.
pub fn command_message(d: &Delivery) -> ToAgent {
    ToAgent::Command(Box::new(Job {
        run_id: d.run.id.clone(),
        migration_id: d.migration.id.clone(),
        command: d.run.command,
        source: d.source_uri.clone(),
        target: d.target_uri.clone(),
        options: d
            .run
            .options
            .clone()
            .unwrap_or_else(|| d.migration.options.clone()),
        unit: false,
    }))
}

fn refusal(code: Code, params: &[(&str, &str)]) -> ToAgent {
    let info = code.info();
    ToAgent::Refused {
        code: code.id().to_string(),
        name: code.name().to_string(),
        message: code.render(params),
        remediation: info.remediation.to_string(),
        retry: info.retryable,
    }
}

/// The semantic version's major number, if `v` is one.
fn major(v: &str) -> Option<u64> {
    let core = v.split(['-', '+']).next()?;
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    parts[0].parse().ok()
}

/// `GET /v1/agent/connect`: an agent token opens the agent's connection.
pub async fn connect(
    State(state): State<AppState>,
    caller: Caller,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    if caller.claims.role != Role::Agent {
        return Err(ApiError::new(Code::HTTP_FORBIDDEN, &[])
            .details("Only an agent token opens an agent connection."));
    }
    let ws = ws.map_err(|e| {
        ApiError::new(Code::HTTP_BAD_REQUEST, &[])
            .details(format!("This is the agents' WebSocket: {e}."))
    })?;
    let claims = caller.claims;
    Ok(ws
        .max_message_size(4 << 20)
        .on_upgrade(move |socket| serve_agent(state, claims, socket)))
}

async fn send(socket: &mut WebSocket, message: &ToAgent) -> bool {
    let text = serde_json::to_string(message).unwrap_or_default();
    socket.send(Message::Text(text.into())).await.is_ok()
}

/// Checks the agent's `hello`: the catalog code that refuses it, or its id and version.
async fn register(
    state: &AppState,
    bound: &str,
    first: Option<Message>,
) -> Result<Registered, ToAgent> {
    let text = match first {
        Some(Message::Text(t)) => t.to_string(),
        _ => {
            return Err(refusal(
                Code::WEBSOCKET_CONNECTION_ERR_REGISTRATION_FAILED,
                &[
                    ("agent_id", bound),
                    ("reason", "the first message must be a hello"),
                ],
            ));
        }
    };
    let (agent_id, version, commands, platform, features) =
        match serde_json::from_str::<ToServer>(&text) {
            Ok(ToServer::Hello {
                agent_id,
                version,
                commands,
                platform,
                features,
                ..
            }) => (agent_id, version, runs(commands), platform, features),
            Ok(_) => {
                return Err(refusal(
                    Code::WEBSOCKET_CONNECTION_ERR_REGISTRATION_FAILED,
                    &[
                        ("agent_id", bound),
                        ("reason", "the first message must be a hello"),
                    ],
                ));
            }
            Err(e) => {
                return Err(refusal(
                    Code::MESSAGE_DECODE_ERROR,
                    &[("reason", &e.to_string())],
                ));
            }
        };
    let agent_id = match agent_id.filter(|a| !a.is_empty()) {
        Some(a) => a,
        None => return Err(refusal(Code::WEBSOCKET_REQUEST_ERR_MISSING_AGENT_ID, &[])),
    };
    if agent_id != bound {
        return Err(refusal(
            Code::WEBSOCKET_REQUEST_ERR_INCORRECT_AGENT_ID,
            &[("agent_id", &agent_id)],
        ));
    }
    let agent = match state.store.get_agent(&agent_id).await {
        Ok(a) => a,
        Err(e) if e.code == Code::DB_ERR_GET_DOC_NOT_FOUND => {
            return Err(refusal(
                Code::WEBSOCKET_REQUEST_ERR_INCORRECT_AGENT_ID,
                &[("agent_id", &agent_id)],
            ));
        }
        Err(e) => {
            return Err(refusal(
                Code::WEBSOCKET_REQUEST_ERR_INTERNAL_ERROR,
                &[("agent_id", &agent_id), ("reason", &e.message())],
            ));
        }
    };
    if agent.state.code == "902" {
        return Err(refusal(
            Code::WEBSOCKET_REQUEST_ERR_AGENT_STATUS_DEACTIVATED,
            &[("agent_id", &agent_id)],
        ));
    }
    let version = match version.filter(|v| !v.is_empty()) {
        Some(v) => v,
        None => {
            return Err(refusal(
                Code::WEBSOCKET_REQUEST_ERR_MISSING_AGENT_VERSION,
                &[],
            ));
        }
    };
    let ours = env!("CARGO_PKG_VERSION");
    match (major(&version), major(ours)) {
        (None, _) => {
            return Err(refusal(
                Code::WEBSOCKET_REQUEST_ERR_WRONG_AGENT_VERSION,
                &[("version", &version)],
            ));
        }
        (Some(a), Some(b)) if a != b => {
            return Err(refusal(
                Code::WEBSOCKET_REQUEST_ERR_UNSUPPORTED_AGENT_VERSION,
                &[("version", &version), ("supported", &format!("{b}.x"))],
            ));
        }
        _ => {}
    }
    if let Some(min) = &state.min_agent_version
        && godwit_spec::release::compare(&version, min) == Some(std::cmp::Ordering::Less)
    {
        return Err(refusal(
            Code::WEBSOCKET_REQUEST_ERR_UNSUPPORTED_AGENT_VERSION,
            &[
                ("version", &version),
                ("supported", &format!("{min} or newer")),
            ],
        ));
    }
    Ok(Registered {
        agent_id,
        version,
        commands,
        platform: platform.filter(|p| !p.is_empty() && p.len() <= 64),
        // Those godwit knows of (a newer agent may say more).
        features: features
            .unwrap_or_default()
            .into_iter()
            .filter(|f| godwit_spec::protocol::AGENT_FEATURES.contains(&f.as_str()))
            .collect(),
    })
}

/// What an agent said in its `hello`, accepted.
#[derive(Debug)]
struct Registered {
    agent_id: String,
    version: String,
    commands: Vec<CommandKind>,
    platform: Option<String>,
    features: Vec<String>,
}

/// The commands an agent says it runs: those godwit knows of (a newer agent may name more);
/// an agent that does not say runs what the first agents ran.
fn runs(commands: Option<Vec<String>>) -> Vec<CommandKind> {
    match commands {
        Some(words) => words.iter().filter_map(|w| CommandKind::parse(w)).collect(),
        None => godwit_spec::protocol::FIRST_AGENT_COMMANDS.to_vec(),
    }
}

/// One agent connection, from `hello` to its end.
async fn serve_agent(state: AppState, claims: crate::auth::Claims, mut socket: WebSocket) {
    let bound = claims.agent_id.clone().unwrap_or_default();
    let first = tokio::time::timeout(Duration::from_secs(10), socket.recv())
        .await
        .ok()
        .flatten()
        .and_then(Result::ok);
    let Registered {
        agent_id,
        version,
        commands,
        platform,
        features,
    } = match register(&state, &bound, first).await {
        Ok(v) => v,
        Err(refused) => {
            tracing::info!(agent_id = %bound, refusal = ?refused, "agent refused");
            let _ = send(&mut socket, &refused).await;
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
    };
    tracing::info!(agent_id = %agent_id, version = %version, "agent registered");
    let Some((connection, mut outgoing)) = state.hub.join(&agent_id) else {
        let _ = send(
            &mut socket,
            &refusal(
                Code::WEBSOCKET_REQUEST_ERR_AGENT_STATUS_ACTIVE,
                &[("agent_id", &agent_id)],
            ),
        )
        .await;
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    let linked = match state.hub.cluster() {
        Some(cluster) => cluster.linked(&agent_id).await,
        None => Ok(()),
    };
    if linked.is_err()
        || state
            .store
            .agent_seen(
                &agent_id,
                Some(&crate::store::Registration {
                    version: &version,
                    commands: &commands,
                    platform: platform.as_deref(),
                    features: &features,
                }),
            )
            .await
            .is_err()
    {
        state.hub.leave(&agent_id, connection).await;
        let _ = send(
            &mut socket,
            &refusal(
                Code::WEBSOCKET_REQUEST_ERR_INTERNAL_ERROR,
                &[("agent_id", &agent_id)],
            ),
        )
        .await;
        return;
    }
    let beat = (state.hub.heartbeat_window.as_secs_f64() / 3.0).max(0.2);
    let welcome = ToAgent::Welcome {
        agent_id: agent_id.clone(),
        heartbeat_secs: beat.ceil() as u64,
    };
    if !send(&mut socket, &welcome).await {
        state.hub.leave(&agent_id, connection).await;
        return;
    }
    // What the agent should be running: queued commands, and runs it had when it went away.
    if let Ok(deliveries) = state.store.runs_for_agent(&agent_id).await {
        for d in &deliveries {
            if !send(&mut socket, &command_message(d)).await {
                state.hub.leave(&agent_id, connection).await;
                return;
            }
        }
    }
    // The work units of pools it holds.
    for message in crate::pools::held(&state, &agent_id).await {
        if !send(&mut socket, &message).await {
            state.hub.leave(&agent_id, connection).await;
            return;
        }
    }
    if let Ok(runs) = state.store.project_runs_for_agent(&agent_id).await {
        for run in &runs {
            if !send(&mut socket, &crate::projects::command_message(run)).await {
                state.hub.leave(&agent_id, connection).await;
                return;
            }
        }
    }
    // A connection silent for a whole heartbeat window is dead (a cut network may never close
    // it): dropped, so the agent can connect again and is not refused as already connected.
    let window = state.hub.heartbeat_window;
    let mut deadline = tokio::time::Instant::now() + window;
    // The token is checked again at every heartbeat: revoked, or the agent deactivated or
    // deleted, the connection is refused with the code and closed.
    let mut recheck = tokio::time::interval(Duration::from_secs_f64(beat));
    recheck.tick().await;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => break,
            _ = recheck.tick() => {
                if let Err(e) = crate::auth::still_valid(&state, &claims).await
                    && e.status().is_client_error()
                {
                    tracing::info!(agent_id = %agent_id, code = e.code.id(), "agent refused while connected");
                    let params: Vec<(&str, &str)> =
                        e.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    let _ = send(&mut socket, &refusal(e.code, &params)).await;
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                }
            }
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { break };
                deadline = tokio::time::Instant::now() + window;
                let text = match message {
                    Message::Text(t) => t.to_string(),
                    Message::Close(_) => break,
                    Message::Binary(_) => {
                        let e = ToAgent::Error { code: Code::INVALID_MESSAGE.id().into(), message: Code::INVALID_MESSAGE.render(&[("reason", "binary frames are not used")]) };
                        if !send(&mut socket, &e).await { break }
                        continue;
                    }
                    _ => continue,
                };
                let reply = match serde_json::from_str::<ToServer>(&text) {
                    Ok(m) => handle(&state, &agent_id, m).await,
                    Err(e) => Some(undecodable(&text, &e)),
                };
                if let Some(r) = reply
                    && !send(&mut socket, &r).await
                {
                    break;
                }
            }
            out = outgoing.recv() => {
                let Some(m) = out else { break };
                if !send(&mut socket, &m).await { break }
            }
        }
    }
    state.hub.leave(&agent_id, connection).await;
}

/// The answer to a message that is not one of ours: 1050 for an unknown `op`, 1131 for one
/// that cannot be read.
fn undecodable(text: &str, e: &serde_json::Error) -> ToAgent {
    const KNOWN: &[&str] = &[
        "hello",
        "heartbeat",
        "taken",
        "progress",
        "result",
        "copylog",
        "review",
        "browsed",
        "upgrade",
        "retired",
    ];
    let op = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("op")?.as_str().map(str::to_string));
    match op {
        Some(op) if !KNOWN.contains(&op.as_str()) => ToAgent::Error {
            code: Code::INVALID_COMMAND_ERROR.id().into(),
            message: Code::INVALID_COMMAND_ERROR.render(&[("opcode", &op)]),
        },
        _ => ToAgent::Error {
            code: Code::MESSAGE_DECODE_ERROR.id().into(),
            message: Code::MESSAGE_DECODE_ERROR.render(&[("reason", &e.to_string())]),
        },
    }
}

/// One message of a registered agent; the reply, if any.
async fn handle(state: &AppState, agent_id: &str, message: ToServer) -> Option<ToAgent> {
    let store = &state.store;
    match message {
        ToServer::Hello { .. } => invalid("hello was sent already"),
        ToServer::Heartbeat => {
            let _ = store.agent_seen(agent_id, None).await;
            // The work units it holds stay its own for another window.
            let _ = store
                .renew_leases(
                    agent_id,
                    crate::store::now_ms() + crate::pools::lease_ms(state),
                )
                .await;
            None
        }
        ToServer::Taken { seq, run_id } => {
            let run = match owned(store, agent_id, &run_id).await {
                Ok(Owned::Job(run)) => *run,
                Ok(Owned::Unit(unit)) => {
                    // A unit it no longer holds (its lease ended) is acknowledged all the same.
                    if store.unit_taken(&unit.id, agent_id).await.ok()?
                        && let Ok(run) = store.get_run(&unit.run_id).await
                        && run.state == RunState::Queued
                    {
                        store.run_taken(&run.id).await.ok()?;
                    }
                    return Some(ToAgent::Ack { seq });
                }
                Ok(Owned::Project(run)) => {
                    if run.state == RunState::Queued {
                        store
                            .set_project_run(&run.id, RunState::Running, None, None, None)
                            .await
                            .ok()?;
                    }
                    return Some(ToAgent::Ack { seq });
                }
                Err(refusal) => return refusal,
            };
            store.run_taken(&run.id).await.ok()?;
            Some(ToAgent::Ack { seq })
        }
        ToServer::Progress {
            seq,
            run_id,
            counters,
        } => {
            let run = match owned(store, agent_id, &run_id).await {
                Ok(Owned::Job(run)) => *run,
                // Carrying out a unit's reviewed deletions: what it copied stays its count
                // until the deletions end (`pools::unit_ended` adds them up).
                Ok(Owned::Unit(unit)) if crate::pools::paused_for_review(unit.report.as_ref()) => {
                    return Some(ToAgent::Ack { seq });
                }
                Ok(Owned::Unit(unit)) => {
                    let counts = serde_json::to_value(&counters.counts).unwrap_or_default();
                    let totals = (counters.files, counters.bytes, counters.files_failed);
                    let ours = store
                        .unit_progress(
                            &unit.id,
                            agent_id,
                            totals,
                            counters.bytes_per_second,
                            &counts,
                        )
                        .await
                        .unwrap_or(false);
                    let run = store.get_run(&unit.run_id).await.ok()?;
                    match unit.kind.as_str() {
                        // A command run whole: its progress is the run's.
                        "whole" if ours => run,
                        "copy" if ours => {
                            crate::pools::progress(state, &run).await;
                            return Some(ToAgent::Ack { seq });
                        }
                        _ => return Some(ToAgent::Ack { seq }),
                    }
                }
                Ok(Owned::Project(run)) => {
                    let totals = (counters.files, counters.bytes);
                    let _ = store
                        .set_project_run(&run.id, run.state, None, Some(totals), None)
                        .await;
                    return Some(ToAgent::Ack { seq });
                }
                Err(refusal) => return refusal,
            };
            metrics::gauge!(crate::telemetry::RATE, "migration_id" => run.migration_id.clone())
                .set(counters.bytes_per_second);
            let counts = serde_json::to_value(&counters.counts).unwrap_or_default();
            let totals = (counters.files, counters.bytes, counters.files_failed);
            let _ = store
                .run_progress(
                    &run.id,
                    totals,
                    (counters.files_found, counters.bytes_found),
                    counters.bytes_per_second,
                    &counts,
                    counters.activity,
                )
                .await;
            let sample =
                crate::store::sample_now(counters.files, counters.bytes, counters.bytes_per_second);
            let started = run.started_ms.unwrap_or(run.created_ms);
            let _ = store.add_sample(&run.id, started, sample, false).await;
            Some(ToAgent::Ack { seq })
        }
        ToServer::Result {
            seq,
            run_id,
            state: end,
            counters,
            error,
            report,
        } => {
            let run = match owned(store, agent_id, &run_id).await {
                Ok(Owned::Job(run)) => *run,
                Ok(Owned::Unit(unit)) => {
                    return crate::pools::unit_ended(
                        state, agent_id, &unit, end, &counters, error, report,
                    )
                    .await
                    .ok()
                    .map(|()| ToAgent::Ack { seq });
                }
                Ok(Owned::Project(run)) => {
                    return project_ended(store, &run, seq, end, &counters, error, report).await;
                }
                Err(refusal) => return refusal,
            };
            let ending = Ending {
                end,
                counters,
                error,
                report,
            };
            ended(store, &run, seq, ending).await
        }
        ToServer::Upgrade {
            seq,
            upgrade_id,
            version,
            steps,
            done,
        } => {
            match crate::upgrades::reported(state, agent_id, &upgrade_id, &version, &steps, done)
                .await
            {
                Ok(()) => Some(ToAgent::Ack { seq }),
                // An upgrade this control plane does not know (its record deleted with the
                // store, or another control plane's): nothing to keep; the agent may forget it.
                Err(e) if e.is_not_found() => Some(ToAgent::Ack { seq }),
                Err(_) => None,
            }
        }
        ToServer::Retired { seq } => {
            tracing::info!(
                agent_id,
                "agent retired: its state is removed and it leaves"
            );
            store
                .set_retire(agent_id, Code::AGENT_RETIRE_RUNNING, true)
                .await
                .ok()
                .map(|()| ToAgent::Ack { seq })
        }
        ToServer::Browsed {
            seq,
            browse_id,
            folders,
            unnamed,
            error,
        } => {
            let answer = Browsed {
                folders,
                unnamed,
                error,
            };
            state.hub.browsed(agent_id, &browse_id, answer).await;
            Some(ToAgent::Ack { seq })
        }
        ToServer::Review {
            seq,
            run_id,
            attempt,
            list,
            first,
            paths,
        } => {
            if !crate::store::REVIEW_LISTS.contains(&list.as_str()) {
                return invalid(&format!("{list} is not a list of a review"));
            }
            // A unit's lists are its own (`unit:ID:ATTEMPT`) until its run gathers them.
            let (key, attempt) = match owned(store, agent_id, &run_id).await {
                Ok(Owned::Job(run)) => (run.id, attempt),
                Ok(Owned::Unit(unit)) => (
                    unit.run_id.clone(),
                    crate::store::unit_attempt(&unit.id, &attempt),
                ),
                Ok(Owned::Project(_)) => return invalid("a project run has nothing to review"),
                Err(refusal) => return refusal,
            };
            store
                .add_review(&key, &attempt, &list, first, &paths)
                .await
                .ok()?;
            Some(ToAgent::Ack { seq })
        }
        ToServer::Index {
            seq,
            run_id,
            first,
            rows,
        } => {
            let unit = match owned(store, agent_id, &run_id).await {
                Ok(Owned::Unit(unit)) => *unit,
                Ok(_) => return invalid(&format!("run {run_id} is not a work unit of a pool")),
                Err(refusal) => return refusal,
            };
            // Only from the unit's holder: an agent whose lease ended may have missed what
            // the unit's new holder wrote.
            if unit.holder.as_deref() == Some(agent_id)
                && matches!(unit.state.as_str(), "LEASED" | "RUNNING")
            {
                crate::pools::index_page(state, &unit, first, &rows)
                    .await
                    .ok()?;
            }
            Some(ToAgent::Ack { seq })
        }
        ToServer::Copylog {
            seq,
            run_id,
            attempt,
            records,
        } => {
            let (run, attempt) = match owned(store, agent_id, &run_id).await {
                Ok(Owned::Job(run)) => (*run, attempt),
                // A unit's records are its run's (units are disjoint: one record a path); a
                // unit it no longer holds copied them all the same. Its attempts are named
                // with it: an agent's runs of two units may have the same id. (A run of one
                // whole unit keeps its attempts' own names, as a run of one agent does.)
                Ok(Owned::Unit(unit)) => {
                    let attempt = if unit.kind == "whole" {
                        attempt
                    } else {
                        crate::store::unit_attempt(&unit.id, &attempt)
                    };
                    (store.get_run(&unit.run_id).await.ok()?, attempt)
                }
                // A project run keeps no copy log (a simulated scan's pages, if any, are the
                // agent's to keep).
                Ok(Owned::Project(_)) => return Some(ToAgent::Ack { seq }),
                Err(refusal) => return refusal,
            };
            let added = store.add_copylog(&run.id, &attempt, &records).await.ok()?;
            count_files(&run.migration_id, &added);
            Some(ToAgent::Ack { seq })
        }
    }
}

/// The files and bytes of copy-log records new to the store, by migration and code; failed
/// files also as errors by code.
fn count_files(migration_id: &str, added: &std::collections::BTreeMap<String, (u64, u64)>) {
    use crate::telemetry;
    for (code, (files, bytes)) in added {
        let labels = [
            ("migration_id", migration_id.to_string()),
            ("code", code.clone()),
        ];
        metrics::counter!(telemetry::FILES, &labels).increment(*files);
        metrics::counter!(telemetry::BYTES, &labels).increment(*bytes);
        if Code::lookup(code).is_ok_and(|k| k.info().kind == godwit_codes::Kind::Error) {
            metrics::counter!(telemetry::ERRORS, "code" => code.clone()).increment(*files);
        }
    }
}

/// A message of the agent that cannot be used (1150); the connection stays.
fn invalid(reason: &str) -> Option<ToAgent> {
    Some(ToAgent::Error {
        code: Code::INVALID_MESSAGE.id().into(),
        message: Code::INVALID_MESSAGE.render(&[("reason", reason)]),
    })
}

/// A run an agent reports on: a migration's job run, a work unit of a pool's, or a project
/// run.
enum Owned {
    Job(Box<crate::records::JobRun>),
    Unit(Box<crate::store::WorkUnit>),
    Project(Box<crate::records::ProjectRun>),
}

/// The run `run_id`, if it is of one of the agent's migrations or one of its project runs;
/// else the answer that says not.
async fn owned(
    store: &crate::Store,
    agent_id: &str,
    run_id: &str,
) -> Result<Owned, Option<ToAgent>> {
    let not_ours = || invalid(&format!("run {run_id} is not one of this agent's"));
    if let Ok(run) = store.get_run(run_id).await {
        let m = store.get_migration(&run.migration_id).await.ok();
        return match m {
            Some(m) if m.agent_id.as_deref() == Some(agent_id) => Ok(Owned::Job(Box::new(run))),
            _ => Err(not_ours()),
        };
    }
    if let Ok(unit) = store.get_unit(run_id).await {
        let run = store.get_run(&unit.run_id).await.ok();
        let m = match run {
            Some(r) => store.get_migration(&r.migration_id).await.ok(),
            None => None,
        };
        return match m {
            Some(m) if m.pool.iter().any(|a| a == agent_id) => Ok(Owned::Unit(Box::new(unit))),
            _ => Err(not_ours()),
        };
    }
    match store.get_project_run(run_id).await {
        Ok(run) if run.agent_id.as_deref() == Some(agent_id) => Ok(Owned::Project(Box::new(run))),
        _ => Err(not_ours()),
    }
}

/// Stores how a project run ended: its state, error and counters, and what it found (the
/// simulated scan's proposal, the summary's `plan`). A run that ended already (its time limit
/// passed first) keeps its time-out; the report is acknowledged all the same.
async fn project_ended(
    store: &crate::Store,
    run: &crate::records::ProjectRun,
    seq: u64,
    end: RunState,
    counters: &crate::protocol::Counters,
    error: Option<crate::protocol::WireError>,
    report: Option<serde_json::Value>,
) -> Option<ToAgent> {
    // A stopped or paused simulated scan is a failed one (the seed has no such status for it).
    let end = match end {
        RunState::Succeeded => RunState::Succeeded,
        _ => RunState::Failed,
    };
    let error = error.and_then(|w| {
        let code = Code::lookup(&w.code).ok()?;
        Some((code, serde_json::json!({ "message": w.message })))
    });
    let found = report.map(|r| {
        serde_json::json!({
            "format": crate::projects::REPORT_FORMAT,
            "run_id": r["run_id"],
            "plan": r["plan"],
        })
    });
    store
        .set_project_run(
            &run.id,
            end,
            error.as_ref().map(|(c, p)| (*c, p)),
            Some((counters.files, counters.bytes)),
            found.as_ref(),
        )
        .await
        .ok()
        .map(|_| ToAgent::Ack { seq })
}

/// How an attempt of a run ended, as the agent reported it.
pub(crate) struct Ending {
    pub end: RunState,
    pub counters: crate::protocol::Counters,
    pub error: Option<crate::protocol::WireError>,
    pub report: Option<serde_json::Value>,
}

/// Stores how `run` ended; acknowledged only once stored, otherwise the agent sends it again.
pub(crate) async fn ended(
    store: &crate::Store,
    run: &crate::records::JobRun,
    seq: u64,
    e: Ending,
) -> Option<ToAgent> {
    if !matches!(
        e.end,
        RunState::Succeeded | RunState::Failed | RunState::Stopped | RunState::Paused
    ) {
        let word = godwit_spec::command::state_text(e.end);
        return invalid(&format!("{word} is not a state a run ends in"));
    }
    // A pause or stop that ended an attempt the user has resumed since (the run is QUEUED
    // again) changes nothing but the counters: the next attempt follows.
    let to =
        if matches!(e.end, RunState::Paused | RunState::Stopped) && run.state == RunState::Queued {
            RunState::Queued
        } else {
            e.end
        };
    let error = e.error.and_then(|w| {
        let code = Code::lookup(&w.code).ok()?;
        Some((code, serde_json::json!({ "message": w.message })))
    });
    let (mut counters, mut report) = (e.counters, e.report);
    // The counts are the run's, not only its last attempt's.
    let last = report
        .as_ref()
        .and_then(|r| r["run_id"].as_str())
        .map(str::to_string);
    if let Some(last) = last {
        let earlier = store.earlier_attempts(&run.id, &last).await.ok()?;
        with_earlier_attempts(&mut counters, report.as_mut(), &earlier);
    }
    let c = &counters;
    // A scan keeps what it found to migrate: the next copy's progress is measured against it.
    if let Some(scan) = report.as_ref().and_then(|r| r.get("scan")) {
        let (files, bytes) = (
            scan["files_to_migrate"].as_i64().unwrap_or(0),
            scan["bytes_to_migrate"].as_i64().unwrap_or(0),
        );
        store.set_run_found(&run.id, files, bytes).await.ok()?;
    }
    // The counts and the report first: whoever sees the run ended sees what it did.
    let counts = serde_json::to_value(&c.counts).unwrap_or_default();
    store
        .set_run_details(&run.id, c.bytes_per_second, &counts, report.as_ref())
        .await
        .ok()?;
    store
        .set_run_state(
            &run.id,
            to,
            error.as_ref().map(|(code, p)| (*code, p)),
            Some((c.files, c.bytes, c.files_failed)),
        )
        .await
        .ok()?;
    if to != RunState::Queued {
        let sample = crate::store::sample_now(c.files, c.bytes, c.bytes_per_second);
        let started = run.started_ms.unwrap_or(run.created_ms);
        let _ = store.add_sample(&run.id, started, sample, true).await;
    }
    // Counted once: a result sent again finds the run ended already.
    if to != RunState::Queued && !is_over(run.state) {
        count_run(run, to, error.as_ref().map(|(code, _)| *code));
    }
    Some(ToAgent::Ack { seq })
}

fn is_over(state: RunState) -> bool {
    matches!(
        state,
        RunState::Succeeded | RunState::Failed | RunState::Stopped
    )
}

/// A run that ended: by command and state, its duration, its error by code; the migration's
/// rate is 0 again.
fn count_run(run: &crate::records::JobRun, end: RunState, error: Option<Code>) {
    use crate::telemetry;
    let command = run.command.as_str();
    let state = godwit_spec::command::state_text(end);
    metrics::counter!(telemetry::RUNS, "command" => command, "state" => state).increment(1);
    if let Some(started) = run.started_ms {
        let secs = (crate::store::now_ms() - started).max(0) as f64 / 1000.0;
        metrics::histogram!(telemetry::RUN_SECONDS, "command" => command).record(secs);
    }
    if let Some(code) = error {
        metrics::counter!(telemetry::ERRORS, "code" => code.id()).increment(1);
    }
    metrics::gauge!(telemetry::RATE, "migration_id" => run.migration_id.clone()).set(0.0);
}

/// Corrects the counters and the report of a run's last attempt with what its earlier
/// attempts did (see `Store::earlier_attempts`): a file copied before the agent or the
/// control plane was restarted counts as copied in this run, not as unchanged.
fn with_earlier_attempts(
    c: &mut crate::protocol::Counters,
    report: Option<&mut serde_json::Value>,
    earlier: &[(String, String)],
) {
    if earlier.is_empty() {
        return;
    }
    for (chosen, last) in earlier {
        *c.counts.entry(chosen.clone()).or_default() += 1;
        if let Some(n) = c.counts.get_mut(last) {
            *n = n.saturating_sub(1);
        }
    }
    c.counts.retain(|_, n| *n > 0);
    c.files_failed = c
        .counts
        .iter()
        .filter(|(code, _)| {
            Code::lookup(code).is_ok_and(|k| k.info().kind == godwit_codes::Kind::Error)
        })
        .map(|(_, n)| *n as i64)
        .sum();
    if let Some(r) = report {
        r["counts"] = serde_json::to_value(&c.counts).unwrap_or_default();
    }
}

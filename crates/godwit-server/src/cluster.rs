//! Several `godwit serve` processes (replicas) on one PostgreSQL database.
//!
//! Each replica writes its row in `replicas` every sweep (half a second) and records in
//! `agent_links` which agents are connected to it. A message for an agent connected to another
//! replica (a command made here, a stop, a browse) is relayed through PostgreSQL: `NOTIFY` on
//! one channel that every replica `LISTEN`s to, the replica holding the agent's connection
//! sending it on. Messages longer than a notification may carry wait in the `relay` table.
//!
//! The work that must happen once (the heartbeat sweep, schedules, settling projects,
//! upgrades and retirements, giving up on silent runs) is done by one replica, the one that
//! holds a PostgreSQL advisory lock on its own connection: when it dies its connection closes,
//! the lock goes with it, and another replica takes it within a sweep.
//!
//! Nothing is lost when a notification is: a replica sends its agents, every few seconds, the
//! commands still waiting for them, and an agent gets all of its runs when it connects.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnection, PgListener};

use crate::Store;
use crate::hub::{Browsed, Hub};
use crate::protocol::ToAgent;

/// The channel replicas notify each other on.
const CHANNEL: &str = "godwit_relay";
/// A notification's payload is at most 8000 bytes; longer messages go by the `relay` table.
const NOTIFY_MAX: usize = 7000;
/// The advisory lock the replica doing the once-only work holds ("godwit" in ASCII).
const LEAD_LOCK: i64 = 0x676f_6477_6974;
/// A replica not seen this long is gone: its agents are no longer connected through it.
pub const REPLICA_WINDOW: Duration = Duration::from_secs(10);
/// Commands waiting this long for an agent connected here are sent to it again.
const RESEND_AFTER: Duration = Duration::from_secs(5);

/// What one replica tells the others.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Relay {
    /// Send `message` to agent `agent_id`, if it is connected to you.
    Send { agent_id: String, message: ToAgent },
    /// Agent `agent_id` answered browse `browse_id`: the replica waiting for it takes it.
    Browsed {
        agent_id: String,
        browse_id: String,
        answer: Browsed,
    },
    /// Agent `agent_id` connected to another replica: `replica_id` drops the connection it
    /// still has from it (a cut network may have left it open).
    Moved {
        agent_id: String,
        replica_id: String,
    },
}

/// This replica among the others.
#[derive(Debug)]
pub struct Cluster {
    pub replica_id: String,
    started_ms: i64,
    secret_check: String,
    url: String,
    store: Store,
    /// The connection holding the lead lock, once this replica has it; or one trying.
    lead: tokio::sync::Mutex<Lead>,
}

#[derive(Debug, Default)]
struct Lead {
    conn: Option<PgConnection>,
    held: bool,
    /// When queued commands were last sent again to the agents connected here.
    resent_ms: i64,
}

impl Cluster {
    /// Joins the replicas on the database at `url`: this replica's row, and its listener
    /// relaying messages to the agents connected here (running until the process ends).
    /// A replica whose token secret is not the one the replicas alive sign with is refused
    /// (1057): an agent moving to it would be refused as not known.
    pub async fn start(
        url: &str,
        store: Store,
        hub: Arc<Hub>,
        secret: &crate::Secret,
    ) -> Result<Arc<Cluster>, String> {
        let secret_check = secret.replica_check();
        let others = store
            .replicas_with_another_secret(Self::alive_since(), &secret_check)
            .await
            .map_err(|e| e.message())?;
        if let Some(other) = others.first() {
            let code = godwit_codes::Code::GODWIT_REPLICA_SECRET_DIFFERS;
            return Err(format!(
                "[{}] {}",
                code.id(),
                code.render(&[("replica_id", other)])
            ));
        }
        let cluster = Arc::new(Cluster {
            replica_id: crate::store::new_id(),
            started_ms: crate::store::now_ms(),
            secret_check,
            url: url.to_string(),
            store,
            lead: tokio::sync::Mutex::new(Lead::default()),
        });
        cluster.seen().await;
        let mut listener = PgListener::connect(url)
            .await
            .map_err(|e| format!("listening on the database: {e}"))?;
        listener
            .listen(CHANNEL)
            .await
            .map_err(|e| format!("listening on the database: {e}"))?;
        let me = cluster.clone();
        tokio::spawn(async move {
            loop {
                // `recv` connects again by itself when the connection is lost; what was
                // notified meanwhile is made good by the resend (see `tick`).
                match listener.recv().await {
                    Ok(n) => me.received(&hub, n.payload()).await,
                    Err(e) => {
                        tracing::warn!("listening for other replicas: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        tracing::debug!(replica_id = %cluster.replica_id, "control plane replica started");
        Ok(cluster)
    }

    /// The time before which a replica not seen since is gone.
    fn alive_since() -> i64 {
        crate::store::now_ms() - REPLICA_WINDOW.as_millis() as i64
    }

    async fn seen(&self) {
        if let Err(e) = self
            .store
            .replica_seen(&self.replica_id, self.started_ms, &self.secret_check)
            .await
        {
            tracing::warn!("this replica's row: {}", e.message());
        }
    }

    /// Sends `relay` to the other replicas; false when it could not be.
    async fn notify(&self, relay: &Relay) -> bool {
        let Ok(mut payload) = serde_json::to_string(relay) else {
            return false;
        };
        if payload.len() > NOTIFY_MAX {
            let id = crate::store::new_id();
            if self.store.put_relay(&id, &payload).await.is_err() {
                return false;
            }
            payload = format!("@{id}");
        }
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&payload)
            .execute(&self.store.pool)
            .await;
        if let Err(e) = &sent {
            tracing::warn!("notifying the other replicas: {e}");
        }
        sent.is_ok()
    }

    async fn received(&self, hub: &Hub, payload: &str) {
        let text = match payload.strip_prefix('@') {
            Some(id) => match self.store.get_relay(id).await {
                Ok(Some(t)) => t,
                _ => return,
            },
            None => payload.to_string(),
        };
        let relay = match serde_json::from_str::<Relay>(&text) {
            Ok(r) => r,
            Err(e) => {
                // A newer replica's message: not ours to carry.
                tracing::debug!("a relayed message this replica cannot read: {e}");
                return;
            }
        };
        match relay {
            Relay::Send { agent_id, message } => {
                hub.send_here(&agent_id, message);
            }
            Relay::Browsed {
                agent_id,
                browse_id,
                answer,
            } => {
                hub.browsed_here(&agent_id, &browse_id, answer);
            }
            Relay::Moved {
                agent_id,
                replica_id,
            } if replica_id == self.replica_id => {
                tracing::info!(agent_id = %agent_id, "agent connected to another replica: its connection here is closed");
                hub.drop_here(&agent_id);
            }
            Relay::Moved { .. } => {}
        }
    }

    /// Sends `message` to agent `agent_id` through the replica its connection is on; false
    /// when it is not connected to any.
    pub async fn send(&self, agent_id: &str, message: ToAgent) -> bool {
        if !self.is_connected(agent_id).await {
            return false;
        }
        let relay = Relay::Send {
            agent_id: agent_id.to_string(),
            message,
        };
        self.notify(&relay).await
    }

    /// Whether agent `agent_id` is connected to a replica that is alive.
    pub async fn is_connected(&self, agent_id: &str) -> bool {
        matches!(
            self.store
                .agent_replica(agent_id, Self::alive_since())
                .await,
            Ok(Some(_))
        )
    }

    /// The agents connected to any replica that is alive.
    pub async fn connected(&self) -> Vec<String> {
        self.store
            .linked_agents(Self::alive_since())
            .await
            .unwrap_or_default()
    }

    /// Agent `agent_id` connected here: its link is this replica's, and a replica that still
    /// has a connection from it is told to drop it.
    pub async fn linked(&self, agent_id: &str) -> Result<(), String> {
        let before = self
            .store
            .link_agent(agent_id, &self.replica_id)
            .await
            .map_err(|e| e.message())?;
        if let Some(replica_id) = before {
            let moved = Relay::Moved {
                agent_id: agent_id.to_string(),
                replica_id,
            };
            self.notify(&moved).await;
        }
        Ok(())
    }

    /// Agent `agent_id`'s connection here ended.
    pub async fn unlinked(&self, agent_id: &str) {
        let _ = self.store.unlink_agent(agent_id, &self.replica_id).await;
    }

    /// An agent's answer to a browse asked on another replica.
    pub async fn browsed(&self, agent_id: &str, browse_id: &str, answer: Browsed) {
        let relay = Relay::Browsed {
            agent_id: agent_id.to_string(),
            browse_id: browse_id.to_string(),
            answer,
        };
        self.notify(&relay).await;
    }

    /// Every sweep: this replica is alive, commands waiting for its agents are sent again
    /// now and then; whether this replica does the once-only work (it holds the lead lock).
    pub async fn tick(&self, hub: &Hub) -> bool {
        self.seen().await;
        let mut guard = self.lead.lock().await;
        let lead = &mut *guard;
        let now = crate::store::now_ms();
        if now - lead.resent_ms >= RESEND_AFTER.as_millis() as i64 {
            lead.resent_ms = now;
            self.resend(hub, now).await;
        }
        if lead.conn.is_none() {
            // No connection yet, or the last one failed.
            lead.conn = PgConnection::connect(&self.url).await.ok();
            lead.held = false;
        }
        if let Some(conn) = lead.conn.as_mut() {
            // Held as long as its connection answers; else tried again every sweep.
            let answer = if lead.held {
                sqlx::query("SELECT 1")
                    .execute(&mut *conn)
                    .await
                    .map(|_| true)
            } else {
                sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                    .bind(LEAD_LOCK)
                    .fetch_one(&mut *conn)
                    .await
            };
            match answer {
                Ok(held) => {
                    if held && !lead.held {
                        tracing::info!(replica_id = %self.replica_id, "this replica does the control plane's sweeps now");
                    }
                    lead.held = held;
                }
                Err(e) => {
                    tracing::warn!("the lead lock's connection: {e}");
                    lead.conn = None;
                    lead.held = false;
                }
            }
        }
        if lead.held {
            let _ = self
                .store
                .prune_replicas(now - 60_000, now - 3_600_000)
                .await;
        }
        lead.held
    }

    /// Sends the agents connected here the commands that wait for them (QUEUED) since
    /// `RESEND_AFTER`: a notification lost with a replica or a listener's connection delays a
    /// command by seconds, not until the agent connects again. An agent takes a command it
    /// runs already as taken.
    async fn resend(&self, hub: &Hub, now: i64) {
        for agent_id in hub.here() {
            let Ok(deliveries) = self.store.runs_for_agent(&agent_id).await else {
                continue;
            };
            for d in deliveries.iter().filter(|d| {
                d.run.state == godwit_codes::State::Queued
                    && now - d.run.created_ms >= RESEND_AFTER.as_millis() as i64
            }) {
                hub.send_here(&agent_id, crate::hub::command_message(d));
            }
        }
    }
}

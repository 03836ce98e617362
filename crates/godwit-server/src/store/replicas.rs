//! Control-plane replicas on one database: which are alive, which holds each agent's
//! connection, and relayed messages too long for a notification (see `cluster.rs`).

use godwit_codes::Code;
use sqlx::Row;

use super::{DomainError, Store, failed, now_ms};

impl Store {
    /// Replica `id` is alive now (its row made on its first call).
    pub async fn replica_seen(
        &self,
        id: &str,
        started_ms: i64,
        secret_check: &str,
    ) -> Result<(), DomainError> {
        sqlx::query(
            "INSERT INTO replicas (id, started_ms, seen_ms, secret_check) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET seen_ms = excluded.seen_ms",
        )
        .bind(id)
        .bind(started_ms)
        .bind(now_ms())
        .bind(secret_check)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "replica", id, &e.to_string()))?;
        Ok(())
    }

    /// The replicas seen since `alive_ms` that sign tokens with another secret than the one
    /// `secret_check` stands for.
    pub async fn replicas_with_another_secret(
        &self,
        alive_ms: i64,
        secret_check: &str,
    ) -> Result<Vec<String>, DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "replicas", "", &e.to_string());
        sqlx::query(
            "SELECT id FROM replicas WHERE seen_ms >= $1 AND secret_check <> $2 ORDER BY id",
        )
        .bind(alive_ms)
        .bind(secret_check)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()
        .map_err(fail)
    }

    /// Agent `agent_id`'s connection is on replica `replica_id` now; the replica that held it
    /// before, if another.
    pub async fn link_agent(
        &self,
        agent_id: &str,
        replica_id: &str,
    ) -> Result<Option<String>, DomainError> {
        let fail = |e: sqlx::Error| {
            failed(
                Code::DB_ERR_UPDATE_DOC,
                "agent link",
                agent_id,
                &e.to_string(),
            )
        };
        let mut tx = self.pool.begin().await.map_err(fail)?;
        let before: Option<String> =
            sqlx::query("SELECT replica_id FROM agent_links WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(fail)?
                .map(|r| r.try_get("replica_id"))
                .transpose()
                .map_err(fail)?;
        sqlx::query(
            "INSERT INTO agent_links (agent_id, replica_id, since_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (agent_id) DO UPDATE SET replica_id = excluded.replica_id, \
             since_ms = excluded.since_ms",
        )
        .bind(agent_id)
        .bind(replica_id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(before.filter(|b| b != replica_id))
    }

    /// Agent `agent_id`'s connection on replica `replica_id` ended (a newer one elsewhere
    /// keeps its link).
    pub async fn unlink_agent(&self, agent_id: &str, replica_id: &str) -> Result<(), DomainError> {
        sqlx::query("DELETE FROM agent_links WHERE agent_id = $1 AND replica_id = $2")
            .bind(agent_id)
            .bind(replica_id)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                failed(
                    Code::DB_ERR_DELETE_DOC,
                    "agent link",
                    agent_id,
                    &e.to_string(),
                )
            })?;
        Ok(())
    }

    /// The replica holding agent `agent_id`'s connection, if one seen since `alive_ms` does.
    pub async fn agent_replica(
        &self,
        agent_id: &str,
        alive_ms: i64,
    ) -> Result<Option<String>, DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_GET_DOC, "agent link", agent_id, &e.to_string());
        sqlx::query(
            "SELECT l.replica_id FROM agent_links l JOIN replicas r ON r.id = l.replica_id \
             WHERE l.agent_id = $1 AND r.seen_ms >= $2",
        )
        .bind(agent_id)
        .bind(alive_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)?
        .map(|r| r.try_get("replica_id"))
        .transpose()
        .map_err(fail)
    }

    /// The agents connected to a replica seen since `alive_ms`.
    pub async fn linked_agents(&self, alive_ms: i64) -> Result<Vec<String>, DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "agent links", "", &e.to_string());
        sqlx::query(
            "SELECT l.agent_id FROM agent_links l JOIN replicas r ON r.id = l.replica_id \
             WHERE r.seen_ms >= $1 ORDER BY l.agent_id",
        )
        .bind(alive_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?
        .iter()
        .map(|r| r.try_get("agent_id"))
        .collect::<Result<_, _>>()
        .map_err(fail)
    }

    /// Keeps a relayed message under `id` until it is taken.
    pub async fn put_relay(&self, id: &str, payload: &str) -> Result<(), DomainError> {
        sqlx::query("INSERT INTO relay (id, payload, created_ms) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(payload)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_CREATE_DOC, "relay", id, &e.to_string()))?;
        Ok(())
    }

    /// The relayed message `id`, if it is still kept.
    pub async fn get_relay(&self, id: &str) -> Result<Option<String>, DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOC, "relay", id, &e.to_string());
        sqlx::query("SELECT payload FROM relay WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(fail)?
            .map(|r| r.try_get("payload"))
            .transpose()
            .map_err(fail)
    }

    /// Removes relayed messages made before `before_ms`, and replicas (with their agents'
    /// links) not seen since `gone_ms`.
    pub async fn prune_replicas(&self, before_ms: i64, gone_ms: i64) -> Result<(), DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_DELETE_DOC, "relay", "", &e.to_string());
        sqlx::query("DELETE FROM relay WHERE created_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        sqlx::query(
            "DELETE FROM agent_links WHERE replica_id IN \
             (SELECT id FROM replicas WHERE seen_ms < $1)",
        )
        .bind(gone_ms)
        .execute(&self.pool)
        .await
        .map_err(fail)?;
        sqlx::query("DELETE FROM replicas WHERE seen_ms < $1")
            .bind(gone_ms)
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }
}

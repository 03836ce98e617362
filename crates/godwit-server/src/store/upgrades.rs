//! Agent upgrades: requested, sent to the agent, reported on step by step, ended (994-996).

use godwit_codes::Code;
use godwit_spec::protocol::UpgradeStep;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DomainError, Store, failed, new_id, now_ms, plausible_id};
use crate::records::{CodeName, RunError, Upgrade};

fn upgrade_of(r: &AnyRow) -> Result<Upgrade, sqlx::Error> {
    let status: String = r.try_get("status_code")?;
    let error = r
        .try_get::<Option<String>, _>("error_code")?
        .map(|code| {
            let message: Option<String> = r.try_get("error_message")?;
            Ok::<_, sqlx::Error>(RunError {
                name: Code::lookup(&code)
                    .map(|c| c.name().to_string())
                    .unwrap_or_default(),
                code,
                params: serde_json::json!({ "message": message.unwrap_or_default() }),
            })
        })
        .transpose()?;
    Ok(Upgrade {
        id: r.try_get("id")?,
        agent_id: r.try_get("agent_id")?,
        release_id: r.try_get("release_id")?,
        from_version: r.try_get("from_version")?,
        to_version: r.try_get("to_version")?,
        state: r.try_get("state")?,
        status: CodeName::of(Code::lookup(&status).unwrap_or(Code::AGENT_UPGRADE_RUNNING)),
        error,
        steps: serde_json::from_str(&r.try_get::<String, _>("steps")?).unwrap_or_default(),
        drain: r.try_get::<i64, _>("drain")? != 0,
        allow_downgrade: r.try_get::<i64, _>("allow_downgrade")? != 0,
        time_limit_ms: r.try_get("time_limit_ms")?,
        start_ms: r.try_get("start_ms")?,
        created_ms: r.try_get("created_ms")?,
        sent_ms: r.try_get("sent_ms")?,
        ended_ms: r.try_get("ended_ms")?,
    })
}

/// How an upgrade is asked for.
#[derive(Debug, Clone)]
pub struct UpgradeRequest<'a> {
    pub agent_id: &'a str,
    pub release: &'a crate::records::Release,
    pub from_version: &'a str,
    pub drain: bool,
    pub allow_downgrade: bool,
    pub time_limit_ms: i64,
    /// Not before this time (a scheduled upgrade); None: as soon as it can.
    pub start_ms: Option<i64>,
}

impl Store {
    /// A new upgrade, QUEUED until it is sent.
    pub async fn create_upgrade(&self, req: &UpgradeRequest<'_>) -> Result<Upgrade, DomainError> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO upgrades (id, agent_id, release_id, from_version, to_version, state, \
             status_code, steps, drain, allow_downgrade, time_limit_ms, start_ms, created_ms) \
             VALUES ($1, $2, $3, $4, $5, 'QUEUED', '993', '[]', $6, $7, $8, $9, $10)",
        )
        .bind(&id)
        .bind(req.agent_id)
        .bind(&req.release.id)
        .bind(req.from_version)
        .bind(&req.release.version)
        .bind(i64::from(req.drain))
        .bind(i64::from(req.allow_downgrade))
        .bind(req.time_limit_ms)
        .bind(req.start_ms)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_CREATE_DOC, "upgrade", &id, &e.to_string()))?;
        self.get_upgrade(&id).await
    }

    pub async fn get_upgrade(&self, id: &str) -> Result<Upgrade, DomainError> {
        if !plausible_id(id) {
            return Err(DomainError::not_found("upgrade", id));
        }
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOC, "upgrade", id, &e.to_string());
        let row = sqlx::query("SELECT * FROM upgrades WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(fail)?;
        match row {
            Some(r) => upgrade_of(&r).map_err(fail),
            None => Err(DomainError::not_found("upgrade", id)),
        }
    }

    /// An agent's upgrades, newest first.
    pub async fn list_upgrades(
        &self,
        agent_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Upgrade>), DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "upgrades", agent_id, &e.to_string());
        let count = sqlx::query("SELECT COUNT(*) FROM upgrades WHERE agent_id = $1")
            .bind(agent_id)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| super::count_of(&r))
            .map_err(fail)?;
        let rows = sqlx::query(
            "SELECT * FROM upgrades WHERE agent_id = $1 ORDER BY created_ms DESC, id DESC \
             LIMIT $2 OFFSET $3",
        )
        .bind(agent_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        let items = rows
            .iter()
            .map(upgrade_of)
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        Ok((count, items))
    }

    /// The agent's upgrade that has not ended, if any.
    pub async fn active_upgrade(&self, agent_id: &str) -> Result<Option<Upgrade>, DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "upgrades", agent_id, &e.to_string());
        let row = sqlx::query(
            "SELECT * FROM upgrades WHERE agent_id = $1 AND state IN ('QUEUED', 'RUNNING') \
             ORDER BY created_ms DESC LIMIT 1",
        )
        .bind(agent_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)?;
        row.map(|r| upgrade_of(&r)).transpose().map_err(fail)
    }

    /// Upgrades that have not ended, oldest first.
    pub async fn open_upgrades(&self) -> Result<Vec<Upgrade>, DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "upgrades", "", &e.to_string());
        let rows = sqlx::query(
            "SELECT * FROM upgrades WHERE state IN ('QUEUED', 'RUNNING') ORDER BY created_ms",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        rows.iter()
            .map(upgrade_of)
            .collect::<Result<_, _>>()
            .map_err(fail)
    }

    /// Removes an upgrade that has not been sent (a cancelled schedule). False when it was
    /// sent already.
    pub async fn cancel_upgrade(&self, id: &str) -> Result<bool, DomainError> {
        let done = sqlx::query("DELETE FROM upgrades WHERE id = $1 AND state = 'QUEUED'")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_DELETE_DOC, "upgrade", id, &e.to_string()))?;
        Ok(done.rows_affected() == 1)
    }

    /// The agent was told: RUNNING from now (its time limit counts from here). False when it
    /// was not QUEUED any more.
    pub async fn upgrade_sent(&self, id: &str) -> Result<bool, DomainError> {
        let done = sqlx::query(
            "UPDATE upgrades SET state = 'RUNNING', sent_ms = $1 WHERE id = $2 AND state = 'QUEUED'",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "upgrade", id, &e.to_string()))?;
        Ok(done.rows_affected() == 1)
    }

    /// The steps the agent reported, while the upgrade goes on.
    pub async fn upgrade_steps(&self, id: &str, steps: &[UpgradeStep]) -> Result<(), DomainError> {
        sqlx::query(
            "UPDATE upgrades SET steps = $1 WHERE id = $2 AND state IN ('QUEUED', 'RUNNING')",
        )
        .bind(serde_json::to_string(steps).unwrap_or_else(|_| "[]".into()))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "upgrade", id, &e.to_string()))?;
        Ok(())
    }

    /// Ends an upgrade that has not ended: SUCCEEDED with 994, or FAILED with 995 or 996 and
    /// the error's code and words. False when it had ended already.
    pub async fn end_upgrade(
        &self,
        id: &str,
        status: Code,
        error: Option<(&str, &str)>,
    ) -> Result<bool, DomainError> {
        let state = if status == Code::AGENT_UPGRADE_SUCCEEDED {
            "SUCCEEDED"
        } else {
            "FAILED"
        };
        let done = sqlx::query(
            "UPDATE upgrades SET state = $1, status_code = $2, error_code = $3, \
             error_message = $4, ended_ms = $5 WHERE id = $6 AND state IN ('QUEUED', 'RUNNING')",
        )
        .bind(state)
        .bind(status.id())
        .bind(error.map(|e| e.0))
        .bind(error.map(|e| e.1))
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "upgrade", id, &e.to_string()))?;
        Ok(done.rows_affected() == 1)
    }
}

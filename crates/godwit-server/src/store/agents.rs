//! Agents: registered, seen, deactivated, deleted; silent ones made inactive.

use godwit_codes::{Code, State};
use godwit_spec::CommandKind;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::runs::status_code;
use super::{DomainError, Store, StoreFailure, count_of, failed, new_id, now_ms, plausible_id};
use crate::records::*;

fn agent_of(r: &AnyRow) -> Result<Agent, sqlx::Error> {
    let state: i64 = r.try_get("state")?;
    let code = Code::lookup(&state.to_string()).unwrap_or(Code::AGENT_STATE_INACTIVE);
    Ok(Agent {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        state: CodeName::of(code),
        scheduling: r.try_get::<i64, _>("scheduling")? != 0,
        last_seen_ms: r.try_get("last_seen_ms")?,
        created_ms: r.try_get("created_ms")?,
        commands: r
            .try_get::<Option<String>, _>("commands")?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| godwit_spec::protocol::FIRST_AGENT_COMMANDS.to_vec()),
        platform: r.try_get("platform")?,
        features: r
            .try_get::<Option<String>, _>("features")?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
        retire: match r.try_get::<Option<String>, _>("retire_code")? {
            Some(code) => Some(Retirement {
                status: CodeName::of(Code::lookup(&code).unwrap_or(Code::AGENT_RETIRE_RUNNING)),
                since_ms: r.try_get::<Option<i64>, _>("retire_ms")?.unwrap_or(0),
                left_ms: r.try_get("retire_left_ms")?,
            }),
            None => None,
        },
    })
}

/// What an agent says of itself when it connects.
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    pub version: &'a str,
    pub commands: &'a [CommandKind],
    pub platform: Option<&'a str>,
    pub features: &'a [String],
}

impl Store {
    pub async fn create_agent(&self, name: &str, version: &str) -> Result<Agent, DomainError> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO agents (id, name, version, state, scheduling, last_seen_ms, created_ms) \
             VALUES ($1, $2, $3, 900, 1, NULL, $4)",
        )
        .bind(&id)
        .bind(name)
        .bind(version)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| match StoreFailure::from(e) {
            StoreFailure::Duplicate => {
                DomainError::new(Code::ERR_AGENT_NAME_ALREADY_USED, &[("name", name)])
            }
            StoreFailure::Failed(r) => failed(Code::DB_ERR_CREATE_DOC, "agent", "", &r),
        })?;
        self.get_agent(&id).await
    }

    pub async fn list_agents(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Agent>), DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "agents", "", &e.to_string());
        let count = sqlx::query("SELECT COUNT(*) FROM agents WHERE state <> 903")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| count_of(&r))
            .map_err(fail)?;
        let rows = sqlx::query(
            "SELECT * FROM agents WHERE state <> 903 ORDER BY created_ms, id LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        let items = rows
            .iter()
            .map(agent_of)
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        Ok((count, items))
    }

    pub async fn get_agent(&self, id: &str) -> Result<Agent, DomainError> {
        if !plausible_id(id) {
            return Err(DomainError::not_found("agent", id));
        }
        let row = sqlx::query("SELECT * FROM agents WHERE id = $1 AND state <> 903")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_GET_DOC, "agent", id, &e.to_string()))?;
        match row {
            Some(r) => {
                agent_of(&r).map_err(|e| failed(Code::DB_ERR_GET_DOC, "agent", id, &e.to_string()))
            }
            None => Err(DomainError::not_found("agent", id)),
        }
    }

    /// Sets an agent's state (900-903), and when it was last heard of.
    pub async fn set_agent_state(
        &self,
        id: &str,
        state: Code,
        seen: bool,
    ) -> Result<Agent, DomainError> {
        self.get_agent(id).await?;
        let number = i64::from(state.info().number);
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_UPDATE_DOC, "agent", id, &e.to_string());
        if seen {
            sqlx::query("UPDATE agents SET state = $1, last_seen_ms = $2 WHERE id = $3")
                .bind(number)
                .bind(now_ms())
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(fail)?;
        } else {
            sqlx::query("UPDATE agents SET state = $1 WHERE id = $2")
                .bind(number)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(fail)?;
        }
        self.get_agent(id).await
    }

    /// Sets an agent's retirement status (193-196); 193 starts it afresh. With `left`, the
    /// agent said it is leaving.
    pub async fn set_retire(&self, id: &str, code: Code, left: bool) -> Result<(), DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_UPDATE_DOC, "agent", id, &e.to_string());
        let q = if code == Code::AGENT_RETIRE_RUNNING && !left {
            "UPDATE agents SET retire_code = $1, retire_ms = $2, retire_left_ms = NULL WHERE id = $3"
        } else if left {
            "UPDATE agents SET retire_code = $1, retire_left_ms = $2 WHERE id = $3"
        } else {
            "UPDATE agents SET retire_code = $1, retire_ms = COALESCE(retire_ms, $2) WHERE id = $3"
        };
        sqlx::query(q)
            .bind(code.id())
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }

    /// Agents whose retirement goes on (193).
    pub async fn retiring_agents(&self) -> Result<Vec<Agent>, DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "agents", "", &e.to_string());
        let rows = sqlx::query("SELECT * FROM agents WHERE retire_code = '193' AND state <> 903")
            .fetch_all(&self.pool)
            .await
            .map_err(fail)?;
        rows.iter()
            .map(agent_of)
            .collect::<Result<_, _>>()
            .map_err(fail)
    }

    /// Whether the agent takes scheduled jobs.
    pub async fn set_agent_scheduling(&self, id: &str, on: bool) -> Result<Agent, DomainError> {
        self.get_agent(id).await?;
        sqlx::query("UPDATE agents SET scheduling = $1 WHERE id = $2")
            .bind(i64::from(on))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "agent", id, &e.to_string()))?;
        self.get_agent(id).await
    }

    /// Deletes an agent that has no migration (625 when it has).
    pub async fn delete_agent(&self, id: &str) -> Result<(), DomainError> {
        self.get_agent(id).await?;
        let count = sqlx::query("SELECT COUNT(*) FROM migrations WHERE agent_id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| count_of(&r))
            .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "migrations", id, &e.to_string()))?;
        if count > 0 {
            return Err(DomainError::new(
                Code::ERR_AGENT_CONTAINS_MIGRATION,
                &[("agent_id", id), ("count", &count.to_string())],
            ));
        }
        sqlx::query("DELETE FROM agents WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_DELETE_DOC, "agent", id, &e.to_string()))?;
        Ok(())
    }

    /// Records that the agent is connected now, with its version.
    /// The agent was heard from: active (901), and when it registers its version and the
    /// commands it runs.
    pub async fn agent_seen(
        &self,
        id: &str,
        registered: Option<&Registration<'_>>,
    ) -> Result<(), DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_UPDATE_DOC, "agent", id, &e.to_string());
        match registered {
            Some(Registration {
                version: v,
                commands,
                platform,
                features,
            }) => sqlx::query(
                "UPDATE agents SET state = 901, last_seen_ms = $1, version = $2, commands = $3, \
                 platform = COALESCE($4, platform), features = $6 WHERE id = $5",
            )
            .bind(now_ms())
            .bind(v)
            .bind(serde_json::to_string(commands).unwrap_or_default())
            .bind(platform)
            .bind(id)
            .bind(serde_json::to_string(features).unwrap_or_default())
            .execute(&self.pool)
            .await
            .map_err(fail)?,
            None => sqlx::query("UPDATE agents SET state = 901, last_seen_ms = $1 WHERE id = $2")
                .bind(now_ms())
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(fail)?,
        };
        Ok(())
    }

    /// Agents marked active whose last heartbeat is older than `window_ms`: marked inactive
    /// (900), and what they were running SUSPENDED. Returns their ids.
    pub async fn sweep_silent_agents(
        &self,
        window_ms: i64,
        connected: &[String],
    ) -> Result<Vec<String>, DomainError> {
        let rows = sqlx::query("SELECT id FROM agents WHERE state = 901 AND (last_seen_ms IS NULL OR last_seen_ms < $1)")
            .bind(now_ms() - window_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "agents", "", &e.to_string()))?;
        let mut swept = Vec::new();
        for r in &rows {
            let id: String = r
                .try_get("id")
                .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "agents", "", &e.to_string()))?;
            if connected.contains(&id) {
                continue;
            }
            self.set_agent_state(&id, Code::AGENT_STATE_INACTIVE, false)
                .await?;
            let running = sqlx::query(
                "SELECT r.id FROM job_runs r JOIN migrations m ON m.id = r.migration_id \
                 WHERE m.agent_id = $1 AND m.pool IS NULL AND r.state IN ('RUNNING', 'STOPPING')",
            )
            .bind(&id)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "job runs", &id, &e.to_string()))?;
            for run in &running {
                let run_id: String = run
                    .try_get("id")
                    .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "job runs", &id, &e.to_string()))?;
                let command = self.get_run(&run_id).await?.command;
                // A command without a SUSPENDED status (a scan) waits QUEUED and starts over.
                let to = if status_code(command, State::Suspended).is_ok() {
                    State::Suspended
                } else {
                    State::Queued
                };
                self.set_run_state(&run_id, to, None, None).await?;
            }
            swept.push(id);
        }
        Ok(swept)
    }
}

//! Agents, migrations, job runs and schedules in the store.

use godwit_codes::{Code, State};
use godwit_spec::CommandKind;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::Store;
use crate::error::ApiError;
use crate::store::{StoreFailure, failed, new_id, now_ms, plausible_id};

/// An agent: the process next to the data that runs commands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub version: String,
    /// 900 inactive, 901 active, 902 deactivated, 903 deleted.
    pub state: CodeName,
    /// Whether it takes scheduled jobs.
    pub scheduling: bool,
    pub last_seen_ms: Option<i64>,
    pub created_ms: i64,
    /// The commands it runs, as it said when it last connected; until then, those every agent
    /// runs. A command it does not run is refused when started (9150).
    pub commands: Vec<CommandKind>,
}

/// A code with its name, as the API shows statuses.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CodeName {
    pub code: String,
    pub name: String,
}

impl CodeName {
    pub fn of(code: Code) -> Self {
        CodeName {
            code: code.id().to_string(),
            name: code.name().to_string(),
        }
    }
}

/// A migration's options: the job options every command of it runs with.
pub type MigrationOptions = godwit_spec::JobOptions;

/// A migration: a source path to a target path, run by an agent, in a project.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Migration {
    pub id: String,
    pub project_id: String,
    pub agent_id: Option<String>,
    pub source_endpoint: String,
    pub source_path: String,
    pub target_endpoint: String,
    pub target_path: String,
    pub options: MigrationOptions,
    pub created_ms: i64,
}

/// One run of a command on a migration.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobRun {
    pub id: String,
    pub migration_id: String,
    pub command: CommandKind,
    /// QUEUED, RUNNING, STOPPING, STOPPED, PAUSED, SUSPENDED, SUCCEEDED, FAILED
    #[serde(with = "godwit_spec::command::state_serde")]
    #[schema(value_type = String)]
    pub state: State,
    /// The status code of the command in that state (937 SCAN : QUEUED ...).
    pub status: CodeName,
    /// What made it fail or pause, with its parameters.
    pub error: Option<RunError>,
    pub files: i64,
    pub bytes: i64,
    pub files_failed: i64,
    /// The transfer rate the agent last reported.
    pub bytes_per_second: f64,
    /// Files per status code, as the agent last reported them.
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub updated_ms: i64,
}

/// A job run's error.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunError {
    pub code: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
}

/// A schedule: a command started at a time, repeated.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Schedule {
    pub id: String,
    pub migration_id: String,
    pub command: CommandKind,
    pub frequency: String,
    pub repeat: i64,
    pub start_ms: i64,
    pub created_ms: i64,
}

pub use godwit_spec::command::{state_of, state_text};

/// Whether a run in `state` still holds its migration (one command at a time).
pub fn is_active(state: State) -> bool {
    matches!(
        state,
        State::Queued | State::Running | State::Stopping | State::Paused | State::Suspended
    )
}

/// The status code of `command` in `state`; a combination the catalog lacks is a bug (500).
pub fn status_code(command: CommandKind, state: State) -> Result<Code, ApiError> {
    if command == CommandKind::Copy && state == State::Suspended {
        // The copy (migrate data) has no SUSPENDED status of its own; seed 000 gives it to the
        // data upload, which is the copy's transfer.
        return Ok(Code::DATA_UPLOAD_SUSPENDED);
    }
    Code::command_status(command.catalog(), state).ok_or_else(|| {
        ApiError::new(Code::HTTP_INTERNAL_SERVER_ERROR, &[]).details(format!(
            "The catalog has no status for {command} in state {}.",
            state_text(state)
        ))
    })
}

const RUN_COLUMNS: &str = "id, migration_id, command, state, status_code, error_code, error_params, \
     files, bytes, files_failed, created_ms, started_ms, ended_ms, updated_ms, bytes_per_second, counts";
const MIGRATION_COLUMNS: &str = "id, project_id, agent_id, source_endpoint, source_path, \
     target_endpoint, target_path, options, created_ms";

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
    })
}

fn migration_of(r: &AnyRow) -> Result<Migration, sqlx::Error> {
    let options: String = r.try_get("options")?;
    Ok(Migration {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        agent_id: r.try_get("agent_id")?,
        source_endpoint: r.try_get("source_endpoint")?,
        source_path: r.try_get("source_path")?,
        target_endpoint: r.try_get("target_endpoint")?,
        target_path: r.try_get("target_path")?,
        options: serde_json::from_str(&options).unwrap_or_default(),
        created_ms: r.try_get("created_ms")?,
    })
}

/// A row's `command`, which only godwit writes.
fn command_column(r: &AnyRow) -> Result<CommandKind, sqlx::Error> {
    let text: String = r.try_get("command")?;
    CommandKind::parse(&text)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown command {text}").into()))
}

fn run_of(r: &AnyRow) -> Result<JobRun, sqlx::Error> {
    let status: String = r.try_get("status_code")?;
    let status = Code::lookup(&status).unwrap_or(Code::HTTP_INTERNAL_SERVER_ERROR);
    let error_code: Option<String> = r.try_get("error_code")?;
    let error_params: Option<String> = r.try_get("error_params")?;
    let error = error_code
        .and_then(|c| Code::lookup(&c).ok())
        .map(|c| RunError {
            code: c.id().to_string(),
            name: c.name().to_string(),
            params: error_params
                .and_then(|p| serde_json::from_str(&p).ok())
                .unwrap_or(serde_json::Value::Object(Default::default())),
        });
    Ok(JobRun {
        id: r.try_get("id")?,
        migration_id: r.try_get("migration_id")?,
        command: command_column(r)?,
        state: state_of(&r.try_get::<String, _>("state")?).unwrap_or(State::Failed),
        status: CodeName::of(status),
        error,
        files: r.try_get("files")?,
        bytes: r.try_get("bytes")?,
        files_failed: r.try_get("files_failed")?,
        bytes_per_second: r
            .try_get::<Option<f64>, _>("bytes_per_second")?
            .unwrap_or(0.0),
        counts: r
            .try_get::<Option<String>, _>("counts")?
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or(serde_json::Value::Object(Default::default())),
        created_ms: r.try_get("created_ms")?,
        started_ms: r.try_get("started_ms")?,
        ended_ms: r.try_get("ended_ms")?,
        updated_ms: r.try_get("updated_ms")?,
    })
}

fn count_of(r: &AnyRow) -> Result<i64, sqlx::Error> {
    r.try_get(0)
}

impl Store {
    // Agents.

    pub async fn create_agent(&self, name: &str, version: &str) -> Result<Agent, ApiError> {
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
                ApiError::new(Code::ERR_AGENT_NAME_ALREADY_USED, &[("name", name)])
            }
            StoreFailure::Failed(r) => failed(Code::DB_ERR_CREATE_DOC, "agent", "", &r),
        })?;
        self.get_agent(&id).await
    }

    pub async fn list_agents(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Agent>), ApiError> {
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

    pub async fn get_agent(&self, id: &str) -> Result<Agent, ApiError> {
        if !plausible_id(id) {
            return Err(ApiError::not_found("agent", id));
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
            None => Err(ApiError::not_found("agent", id)),
        }
    }

    /// Sets an agent's state (900-903), and when it was last heard of.
    pub async fn set_agent_state(
        &self,
        id: &str,
        state: Code,
        seen: bool,
    ) -> Result<Agent, ApiError> {
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

    /// Whether the agent takes scheduled jobs.
    pub async fn set_agent_scheduling(&self, id: &str, on: bool) -> Result<Agent, ApiError> {
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
    pub async fn delete_agent(&self, id: &str) -> Result<(), ApiError> {
        self.get_agent(id).await?;
        let count = sqlx::query("SELECT COUNT(*) FROM migrations WHERE agent_id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| count_of(&r))
            .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "migrations", id, &e.to_string()))?;
        if count > 0 {
            return Err(ApiError::new(
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

    // Migrations.

    #[allow(clippy::too_many_arguments)]
    pub async fn create_migration(
        &self,
        project_id: &str,
        agent_id: Option<&str>,
        source: (&str, &str),
        target: (&str, &str),
        options: &MigrationOptions,
    ) -> Result<Migration, ApiError> {
        let id = new_id();
        let options_text = serde_json::to_string(options).unwrap_or_else(|_| "{}".into());
        sqlx::query(&format!(
            "INSERT INTO migrations ({MIGRATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&id)
        .bind(project_id)
        .bind(agent_id)
        .bind(source.0)
        .bind(source.1)
        .bind(target.0)
        .bind(target.1)
        .bind(&options_text)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| match StoreFailure::from(e) {
            StoreFailure::Duplicate => ApiError::new(
                Code::ERR_DUPLICATE_MIGRATION_ID,
                &[("migration_id", &format!("{}:{} -> {}:{}", source.0, source.1, target.0, target.1))],
            )
            .details("A migration of this source path to this target path exists already."),
            StoreFailure::Failed(r) => failed(Code::DB_ERR_CREATE_DOC, "migration", "", &r),
        })?;
        self.get_migration(&id).await
    }

    /// Migrations, all of them or those of one agent.
    pub async fn list_migrations(
        &self,
        agent: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Migration>), ApiError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "migrations", "", &e.to_string());
        let (count, rows) = match agent {
            Some(a) => {
                let count = sqlx::query("SELECT COUNT(*) FROM migrations WHERE agent_id = $1")
                    .bind(a)
                    .fetch_one(&self.pool)
                    .await
                    .and_then(|r| count_of(&r))
                    .map_err(fail)?;
                let rows = sqlx::query(&format!(
                    "SELECT {MIGRATION_COLUMNS} FROM migrations WHERE agent_id = $1 \
                     ORDER BY created_ms, id LIMIT $2 OFFSET $3"
                ))
                .bind(a)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await
                .map_err(fail)?;
                (count, rows)
            }
            None => {
                let count = sqlx::query("SELECT COUNT(*) FROM migrations")
                    .fetch_one(&self.pool)
                    .await
                    .and_then(|r| count_of(&r))
                    .map_err(fail)?;
                let rows = sqlx::query(&format!(
                    "SELECT {MIGRATION_COLUMNS} FROM migrations \
                     ORDER BY created_ms, id LIMIT $1 OFFSET $2"
                ))
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await
                .map_err(fail)?;
                (count, rows)
            }
        };
        let items = rows
            .iter()
            .map(migration_of)
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        Ok((count, items))
    }

    pub async fn get_migration(&self, id: &str) -> Result<Migration, ApiError> {
        if !plausible_id(id) {
            return Err(ApiError::not_found("migration", id));
        }
        let row = sqlx::query(&format!(
            "SELECT {MIGRATION_COLUMNS} FROM migrations WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_GET_DOC, "migration", id, &e.to_string()))?;
        match row {
            Some(r) => migration_of(&r)
                .map_err(|e| failed(Code::DB_ERR_GET_DOC, "migration", id, &e.to_string())),
            None => Err(ApiError::not_found("migration", id)),
        }
    }

    /// Deletes a migration, its runs and schedules.
    pub async fn delete_migration(&self, id: &str) -> Result<(), ApiError> {
        self.get_migration(id).await?;
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_DELETE_DOC, "migration", id, &e.to_string());
        let mut tx = self.pool.begin().await.map_err(fail)?;
        for q in [
            "DELETE FROM schedules WHERE migration_id = $1",
            "DELETE FROM job_runs WHERE migration_id = $1",
            "DELETE FROM migrations WHERE id = $1",
        ] {
            sqlx::query(q)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
        Ok(())
    }

    /// How many migrations reference the endpoint.
    pub async fn endpoint_uses(&self, id: &str) -> Result<i64, ApiError> {
        sqlx::query(
            "SELECT COUNT(*) FROM migrations WHERE source_endpoint = $1 OR target_endpoint = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| count_of(&r))
        .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "migrations", id, &e.to_string()))
    }

    /// How many migrations of the project have a run that is not over.
    pub async fn active_migrations_in_project(&self, project_id: &str) -> Result<i64, ApiError> {
        sqlx::query(
            "SELECT COUNT(DISTINCT m.id) FROM migrations m JOIN job_runs r ON r.migration_id = m.id \
             WHERE m.project_id = $1 AND r.state IN ('QUEUED','RUNNING','STOPPING','PAUSED','SUSPENDED')",
        )
        .bind(project_id)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| count_of(&r))
        .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "migrations", project_id, &e.to_string()))
    }

    /// How many migrations of the project there are at all.
    pub async fn migrations_in_project(&self, project_id: &str) -> Result<i64, ApiError> {
        sqlx::query("SELECT COUNT(*) FROM migrations WHERE project_id = $1")
            .bind(project_id)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| count_of(&r))
            .map_err(|e| {
                failed(
                    Code::DB_ERR_GET_DOCS,
                    "migrations",
                    project_id,
                    &e.to_string(),
                )
            })
    }

    /// How many migrations have a run that is not over, in all.
    pub async fn active_migrations(&self) -> Result<i64, ApiError> {
        sqlx::query(
            "SELECT COUNT(DISTINCT migration_id) FROM job_runs \
             WHERE state IN ('QUEUED','RUNNING','STOPPING','PAUSED','SUSPENDED')",
        )
        .fetch_one(&self.pool)
        .await
        .and_then(|r| count_of(&r))
        .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "job runs", "", &e.to_string()))
    }

    // Job runs.

    pub async fn create_run(
        &self,
        migration_id: &str,
        command: CommandKind,
    ) -> Result<JobRun, ApiError> {
        let id = new_id();
        let status = status_code(command, State::Queued)?;
        let now = now_ms();
        sqlx::query(&format!(
            "INSERT INTO job_runs ({RUN_COLUMNS}) VALUES \
             ($1, $2, $3, 'QUEUED', $4, NULL, NULL, 0, 0, 0, $5, NULL, NULL, $5, NULL, NULL)"
        ))
        .bind(&id)
        .bind(migration_id)
        .bind(command.as_str())
        .bind(status.id())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_CREATE_DOC, "job run", "", &e.to_string()))?;
        self.get_run(&id).await
    }

    pub async fn get_run(&self, id: &str) -> Result<JobRun, ApiError> {
        if !plausible_id(id) {
            return Err(ApiError::not_found("job run", id));
        }
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM job_runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_GET_DOC, "job run", id, &e.to_string()))?;
        match row {
            Some(r) => {
                run_of(&r).map_err(|e| failed(Code::DB_ERR_GET_DOC, "job run", id, &e.to_string()))
            }
            None => Err(ApiError::not_found("job run", id)),
        }
    }

    /// The runs of a migration, newest first.
    pub async fn list_runs(
        &self,
        migration_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<JobRun>), ApiError> {
        let fail = |e: sqlx::Error| {
            failed(
                Code::DB_ERR_GET_DOCS,
                "job runs",
                migration_id,
                &e.to_string(),
            )
        };
        let count = sqlx::query("SELECT COUNT(*) FROM job_runs WHERE migration_id = $1")
            .bind(migration_id)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| count_of(&r))
            .map_err(fail)?;
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM job_runs WHERE migration_id = $1 \
             ORDER BY created_ms DESC, id LIMIT $2 OFFSET $3"
        ))
        .bind(migration_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        let items = rows
            .iter()
            .map(run_of)
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        Ok((count, items))
    }

    /// The runs of a migration that are not over.
    pub async fn active_runs(&self, migration_id: &str) -> Result<Vec<JobRun>, ApiError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM job_runs WHERE migration_id = $1 \
             AND state IN ('QUEUED','RUNNING','STOPPING','PAUSED','SUSPENDED') ORDER BY created_ms"
        ))
        .bind(migration_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| {
            failed(
                Code::DB_ERR_GET_DOCS,
                "job runs",
                migration_id,
                &e.to_string(),
            )
        })?;
        rows.iter()
            .map(run_of)
            .collect::<Result<_, _>>()
            .map_err(|e| {
                failed(
                    Code::DB_ERR_GET_DOCS,
                    "job runs",
                    migration_id,
                    &e.to_string(),
                )
            })
    }

    /// The newest run of `command` on the migration that succeeded.
    pub async fn last_success(
        &self,
        migration_id: &str,
        command: CommandKind,
    ) -> Result<Option<JobRun>, ApiError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM job_runs WHERE migration_id = $1 AND command = $2 \
             AND state = 'SUCCEEDED' ORDER BY created_ms DESC LIMIT 1"
        ))
        .bind(migration_id)
        .bind(command.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| {
            failed(
                Code::DB_ERR_GET_DOCS,
                "job runs",
                migration_id,
                &e.to_string(),
            )
        })?;
        row.map(|r| run_of(&r)).transpose().map_err(|e| {
            failed(
                Code::DB_ERR_GET_DOCS,
                "job runs",
                migration_id,
                &e.to_string(),
            )
        })
    }

    /// Moves a run to `state` with its status code; an end state stamps the end time. With an
    /// error, records its code and parameters.
    pub async fn set_run_state(
        &self,
        id: &str,
        state: State,
        error: Option<(Code, &serde_json::Value)>,
        counters: Option<(i64, i64, i64)>,
    ) -> Result<JobRun, ApiError> {
        let run = self.get_run(id).await?;
        let status = status_code(run.command, state)?;
        let now = now_ms();
        let ended =
            matches!(state, State::Succeeded | State::Failed | State::Stopped).then_some(now);
        let started = if state == State::Running {
            run.started_ms.or(Some(now))
        } else {
            run.started_ms
        };
        let (files, bytes, failed_files) =
            counters.unwrap_or((run.files, run.bytes, run.files_failed));
        sqlx::query(
            "UPDATE job_runs SET state = $1, status_code = $2, error_code = $3, error_params = $4, \
             files = $5, bytes = $6, files_failed = $7, started_ms = $8, ended_ms = $9, updated_ms = $10 \
             WHERE id = $11",
        )
        .bind(state_text(state))
        .bind(status.id())
        .bind(error.map(|(c, _)| c.id().to_string()))
        .bind(error.map(|(_, p)| p.to_string()))
        .bind(files)
        .bind(bytes)
        .bind(failed_files)
        .bind(started)
        .bind(ended)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "job run", id, &e.to_string()))?;
        self.get_run(id).await
    }

    /// Records what an agent said of a run besides its state: the rate and the files per status
    /// code, and, when it has ended, its report.
    pub async fn set_run_details(
        &self,
        id: &str,
        bytes_per_second: f64,
        counts: &serde_json::Value,
        report: Option<&serde_json::Value>,
    ) -> Result<(), ApiError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_UPDATE_DOC, "job run", id, &e.to_string());
        match report {
            Some(r) => sqlx::query(
                "UPDATE job_runs SET bytes_per_second = $1, counts = $2, report = $3 WHERE id = $4",
            )
            .bind(bytes_per_second)
            .bind(counts.to_string())
            .bind(r.to_string())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(fail)?,
            None => {
                sqlx::query("UPDATE job_runs SET bytes_per_second = $1, counts = $2 WHERE id = $3")
                    .bind(bytes_per_second)
                    .bind(counts.to_string())
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(fail)?
            }
        };
        Ok(())
    }

    /// The report an agent sent when the run ended.
    pub async fn run_report(&self, id: &str) -> Result<Option<serde_json::Value>, ApiError> {
        let row = sqlx::query("SELECT report FROM job_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_GET_DOC, "job run", id, &e.to_string()))?;
        Ok(row
            .and_then(|r| r.try_get::<Option<String>, _>("report").ok().flatten())
            .and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Runs that ended with an error, newest first (`GET /v1/errors`).
    pub async fn failed_runs(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<JobRun>), ApiError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "job runs", "", &e.to_string());
        let count = sqlx::query("SELECT COUNT(*) FROM job_runs WHERE error_code IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| count_of(&r))
            .map_err(fail)?;
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM job_runs WHERE error_code IS NOT NULL \
             ORDER BY updated_ms DESC, id LIMIT $1 OFFSET $2"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        let items = rows
            .iter()
            .map(run_of)
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        Ok((count, items))
    }

    // Schedules.

    pub async fn create_schedule(
        &self,
        migration_id: &str,
        command: CommandKind,
        frequency: &str,
        repeat: i64,
        start_ms: i64,
    ) -> Result<Schedule, ApiError> {
        let s = Schedule {
            id: new_id(),
            migration_id: migration_id.to_string(),
            command,
            frequency: frequency.to_string(),
            repeat,
            start_ms,
            created_ms: now_ms(),
        };
        sqlx::query(
            "INSERT INTO schedules (id, migration_id, command, frequency, repeat_count, start_ms, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&s.id)
        .bind(&s.migration_id)
        .bind(s.command.as_str())
        .bind(&s.frequency)
        .bind(s.repeat)
        .bind(s.start_ms)
        .bind(s.created_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            ApiError::new(
                Code::ERR_MIGRATION_CONFIG_CREATE_SCHEDULER,
                &[("migration_id", migration_id), ("reason", &e.to_string())],
            )
        })?;
        Ok(s)
    }

    pub async fn list_schedules(&self, migration_id: &str) -> Result<Vec<Schedule>, ApiError> {
        let rows = sqlx::query(
            "SELECT id, migration_id, command, frequency, repeat_count, start_ms, created_ms \
             FROM schedules WHERE migration_id = $1 ORDER BY start_ms, id",
        )
        .bind(migration_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| {
            failed(
                Code::DB_ERR_GET_DOCS,
                "schedules",
                migration_id,
                &e.to_string(),
            )
        })?;
        rows.iter()
            .map(|r| -> Result<Schedule, sqlx::Error> {
                Ok(Schedule {
                    id: r.try_get("id")?,
                    migration_id: r.try_get("migration_id")?,
                    command: command_column(r)?,
                    frequency: r.try_get("frequency")?,
                    repeat: r.try_get("repeat_count")?,
                    start_ms: r.try_get("start_ms")?,
                    created_ms: r.try_get("created_ms")?,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| {
                failed(
                    Code::DB_ERR_GET_DOCS,
                    "schedules",
                    migration_id,
                    &e.to_string(),
                )
            })
    }
}

/// What the control plane tells an agent about a run it should run.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub run: JobRun,
    pub migration: Migration,
    pub source_uri: String,
    pub target_uri: String,
}

impl Store {
    /// Runs for the agent's migrations that it should be running: QUEUED ones it has not taken,
    /// and RUNNING or SUSPENDED ones it was running when it went away (it resumes them).
    pub async fn runs_for_agent(&self, agent_id: &str) -> Result<Vec<Delivery>, ApiError> {
        let rows = sqlx::query(&format!(
            "SELECT r.{} FROM job_runs r JOIN migrations m ON m.id = r.migration_id \
             WHERE m.agent_id = $1 AND r.state IN ('QUEUED', 'RUNNING', 'SUSPENDED') \
             ORDER BY r.created_ms",
            RUN_COLUMNS.replace(", ", ", r.")
        ))
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "job runs", agent_id, &e.to_string()))?;
        let mut out = Vec::new();
        for r in &rows {
            let run = run_of(r)
                .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "job runs", agent_id, &e.to_string()))?;
            out.push(self.delivery(run).await?);
        }
        Ok(out)
    }

    /// A run with what its agent needs to run it.
    pub async fn delivery(&self, run: JobRun) -> Result<Delivery, ApiError> {
        let migration = self.get_migration(&run.migration_id).await?;
        let src = self.get_endpoint(&migration.source_endpoint).await?;
        let dst = self.get_endpoint(&migration.target_endpoint).await?;
        Ok(Delivery {
            source_uri: crate::protocol::join_location(&src.uri, &migration.source_path),
            target_uri: crate::protocol::join_location(&dst.uri, &migration.target_path),
            run,
            migration,
        })
    }

    /// Records that the agent is connected now, with its version.
    /// The agent was heard from: active (901), and when it registers its version and the
    /// commands it runs.
    pub async fn agent_seen(
        &self,
        id: &str,
        registered: Option<(&str, &[CommandKind])>,
    ) -> Result<(), ApiError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_UPDATE_DOC, "agent", id, &e.to_string());
        match registered {
            Some((v, commands)) => sqlx::query(
                "UPDATE agents SET state = 901, last_seen_ms = $1, version = $2, commands = $3 \
                 WHERE id = $4",
            )
            .bind(now_ms())
            .bind(v)
            .bind(serde_json::to_string(commands).unwrap_or_default())
            .bind(id)
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
    ) -> Result<Vec<String>, ApiError> {
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
                 WHERE m.agent_id = $1 AND r.state IN ('RUNNING', 'STOPPING')",
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

    /// Stores a page of a run's copy log; a record stored before is left as it is.
    pub async fn add_copylog(
        &self,
        run_id: &str,
        attempt: &str,
        records: &[crate::protocol::WireRecord],
    ) -> Result<(), ApiError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_CREATE_DOC, "copy log", run_id, &e.to_string());
        let mut tx = self.pool.begin().await.map_err(fail)?;
        for r in records {
            sqlx::query(
                "INSERT INTO copylog (run_id, attempt, line, path, code, message, size) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(run_id)
            .bind(attempt)
            .bind(r.line)
            .bind(&r.path)
            .bind(&r.code)
            .bind(&r.message)
            .bind(r.size)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
        Ok(())
    }

    /// A page of a run's copy log, optionally of one code.
    pub async fn copylog(
        &self,
        run_id: &str,
        code: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<crate::protocol::WireRecord>), ApiError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "copy log", run_id, &e.to_string());
        let code = code.unwrap_or("");
        let count = sqlx::query(
            "SELECT COUNT(*) FROM copylog WHERE run_id = $1 AND ($2 = '' OR code = $2)",
        )
        .bind(run_id)
        .bind(code)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| count_of(&r))
        .map_err(fail)?;
        let rows = sqlx::query(
            "SELECT line, path, code, message, size FROM copylog \
             WHERE run_id = $1 AND ($2 = '' OR code = $2) ORDER BY attempt, line LIMIT $3 OFFSET $4",
        )
        .bind(run_id)
        .bind(code)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        let items = rows
            .iter()
            .map(|r| -> Result<crate::protocol::WireRecord, sqlx::Error> {
                Ok(crate::protocol::WireRecord {
                    line: r.try_get("line")?,
                    path: r.try_get("path")?,
                    code: r.try_get("code")?,
                    message: r.try_get("message")?,
                    size: r.try_get("size")?,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        Ok((count, items))
    }
}

impl Store {
    /// Schedules whose next start has come.
    pub async fn due_schedules(&self, now_ms: i64) -> Result<Vec<Schedule>, ApiError> {
        let rows = sqlx::query(
            "SELECT id, migration_id, command, frequency, repeat_count, start_ms, created_ms \
             FROM schedules WHERE start_ms <= $1 AND repeat_count > 0 ORDER BY start_ms, id",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "schedules", "", &e.to_string()))?;
        rows.iter()
            .map(|r| -> Result<Schedule, sqlx::Error> {
                Ok(Schedule {
                    id: r.try_get("id")?,
                    migration_id: r.try_get("migration_id")?,
                    command: command_column(r)?,
                    frequency: r.try_get("frequency")?,
                    repeat: r.try_get("repeat_count")?,
                    start_ms: r.try_get("start_ms")?,
                    created_ms: r.try_get("created_ms")?,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "schedules", "", &e.to_string()))
    }

    /// Moves a schedule to its next start with one run fewer left.
    pub async fn advance_schedule(
        &self,
        id: &str,
        next_ms: i64,
        left: i64,
    ) -> Result<(), ApiError> {
        sqlx::query("UPDATE schedules SET start_ms = $1, repeat_count = $2 WHERE id = $3")
            .bind(next_ms)
            .bind(left)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "schedule", id, &e.to_string()))?;
        Ok(())
    }

    /// A run that never started because the rules refused it when its schedule came: kept
    /// FAILED with the refusal's code, so it shows in `GET /v1/errors`.
    pub async fn refused_run(
        &self,
        migration_id: &str,
        command: CommandKind,
        error: &ApiError,
    ) -> Result<JobRun, ApiError> {
        let run = self.create_run(migration_id, command).await?;
        let params = serde_json::Value::Object(
            error
                .params
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        );
        self.set_run_state(&run.id, State::Failed, Some((error.code, &params)), None)
            .await
    }
}

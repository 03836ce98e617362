//! Project runs: a command of a project as a whole (the simulated scan), run by one agent, with
//! its state, counters and what it found.

use godwit_codes::{Code, State};
use godwit_spec::CommandKind;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::runs::{command_column, status_code};
use super::{DomainError, Store, count_of, failed, new_id, now_ms, plausible_id};
use crate::records::*;

const COLUMNS: &str = "id, project_id, agent_id, command, request, state, status_code, \
     error_code, error_params, files, bytes, report, format, deadline_ms, created_ms, \
     started_ms, ended_ms, updated_ms";

/// The states in which a project run is going on.
const ACTIVE: &str = "('QUEUED','RUNNING')";

fn project_run_of(r: &AnyRow) -> Result<ProjectRun, sqlx::Error> {
    let status: String = r.try_get("status_code")?;
    let status = Code::lookup(&status).unwrap_or(Code::HTTP_INTERNAL_SERVER_ERROR);
    let error_code: Option<String> = r.try_get("error_code")?;
    let error_params: Option<String> = r.try_get("error_params")?;
    let json = |col: &str| -> Result<Option<serde_json::Value>, sqlx::Error> {
        Ok(r.try_get::<Option<String>, _>(col)?
            .and_then(|t| serde_json::from_str(&t).ok()))
    };
    Ok(ProjectRun {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        agent_id: r.try_get("agent_id")?,
        command: command_column(r)?,
        request: json("request")?.unwrap_or_default(),
        state: state_of(&r.try_get::<String, _>("state")?).unwrap_or(State::Failed),
        status: CodeName::of(status),
        error: error_code
            .and_then(|c| Code::lookup(&c).ok())
            .map(|c| RunError {
                code: c.id().to_string(),
                name: c.name().to_string(),
                params: error_params
                    .and_then(|p| serde_json::from_str(&p).ok())
                    .unwrap_or(serde_json::Value::Object(Default::default())),
            }),
        files: r.try_get("files")?,
        bytes: r.try_get("bytes")?,
        report: json("report")?,
        format: r.try_get("format")?,
        deadline_ms: r.try_get("deadline_ms")?,
        created_ms: r.try_get("created_ms")?,
        started_ms: r.try_get("started_ms")?,
        ended_ms: r.try_get("ended_ms")?,
        updated_ms: r.try_get("updated_ms")?,
    })
}

impl Store {
    /// A new QUEUED run of `command` for the project on `agent_id`, only if the project has no
    /// run of that command going on (None then). The check and the insert are one statement
    /// after a write that orders concurrent starts, as for a migration's runs.
    pub async fn create_project_run(
        &self,
        project_id: &str,
        agent_id: Option<&str>,
        command: CommandKind,
        request: &serde_json::Value,
        deadline_ms: i64,
    ) -> Result<Option<ProjectRun>, DomainError> {
        let id = new_id();
        let status = status_code(command, State::Queued)?;
        let now = now_ms();
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_CREATE_DOC, "project run", "", &e.to_string());
        let mut tx = self.pool.begin().await.map_err(fail)?;
        sqlx::query("UPDATE projects SET updated_ms = updated_ms WHERE id = $1")
            .bind(project_id)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        let done = sqlx::query(&format!(
            "INSERT INTO project_runs ({COLUMNS}) SELECT \
             $1, $2, $3, $4, $5, 'QUEUED', $6, CAST(NULL AS TEXT), CAST(NULL AS TEXT), 0, 0, \
             CAST(NULL AS TEXT), $7, $8, $9, CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), $9 \
             WHERE NOT EXISTS (SELECT 1 FROM project_runs WHERE project_id = $2 \
             AND command = $4 AND state IN {ACTIVE})"
        ))
        .bind(&id)
        .bind(project_id)
        .bind(agent_id)
        .bind(command.as_str())
        .bind(request.to_string())
        .bind(status.id())
        .bind(crate::projects::REPORT_FORMAT)
        .bind(deadline_ms)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.get_project_run(&id).await.map(Some)
    }

    pub async fn get_project_run(&self, id: &str) -> Result<ProjectRun, DomainError> {
        if !plausible_id(id) {
            return Err(DomainError::not_found("project run", id));
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM project_runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_GET_DOC, "project run", id, &e.to_string()))?;
        match row {
            Some(r) => project_run_of(&r)
                .map_err(|e| failed(Code::DB_ERR_GET_DOC, "project run", id, &e.to_string())),
            None => Err(DomainError::not_found("project run", id)),
        }
    }

    /// A project's runs, newest first.
    pub async fn list_project_runs(
        &self,
        project_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<ProjectRun>), DomainError> {
        let fail = |e: sqlx::Error| {
            failed(
                Code::DB_ERR_GET_DOCS,
                "project runs",
                project_id,
                &e.to_string(),
            )
        };
        let count = sqlx::query("SELECT COUNT(*) FROM project_runs WHERE project_id = $1")
            .bind(project_id)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| count_of(&r))
            .map_err(fail)?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM project_runs WHERE project_id = $1 \
             ORDER BY created_ms DESC, id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(project_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        let items = rows
            .iter()
            .map(project_run_of)
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        Ok((count, items))
    }

    /// The project's newest run of `command`, if any.
    pub async fn last_project_run(
        &self,
        project_id: &str,
        command: CommandKind,
    ) -> Result<Option<ProjectRun>, DomainError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM project_runs WHERE project_id = $1 AND command = $2 \
             ORDER BY created_ms DESC, id DESC LIMIT 1"
        ))
        .bind(project_id)
        .bind(command.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| {
            failed(
                Code::DB_ERR_GET_DOCS,
                "project runs",
                project_id,
                &e.to_string(),
            )
        })?;
        row.map(|r| project_run_of(&r)).transpose().map_err(|e| {
            failed(
                Code::DB_ERR_GET_DOCS,
                "project runs",
                project_id,
                &e.to_string(),
            )
        })
    }

    /// Moves a project run that is still going on to `state`: RUNNING stamps the start, an end
    /// state the end, with the error, the counters and the report when given. A run that has
    /// ended already (its time limit passed first) is left as it is: false then.
    pub async fn set_project_run(
        &self,
        id: &str,
        state: State,
        error: Option<(Code, &serde_json::Value)>,
        counters: Option<(i64, i64)>,
        report: Option<&serde_json::Value>,
    ) -> Result<bool, DomainError> {
        let run = self.get_project_run(id).await?;
        let status = status_code(run.command, state)?;
        let now = now_ms();
        let ended =
            matches!(state, State::Succeeded | State::Failed | State::Stopped).then_some(now);
        let started = run.started_ms.or((state != State::Queued).then_some(now));
        let (files, bytes) = counters.unwrap_or((run.files, run.bytes));
        let done = sqlx::query(&format!(
            "UPDATE project_runs SET state = $1, status_code = $2, error_code = $3, \
             error_params = $4, files = $5, bytes = $6, started_ms = $7, ended_ms = $8, \
             updated_ms = $9, report = COALESCE($10, report) WHERE id = $11 AND state IN {ACTIVE}"
        ))
        .bind(state_text(state))
        .bind(status.id())
        .bind(error.map(|(c, _)| c.id().to_string()))
        .bind(error.map(|(_, p)| p.to_string()))
        .bind(files)
        .bind(bytes)
        .bind(started)
        .bind(ended)
        .bind(now)
        .bind(report.map(|r| r.to_string()))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "project run", id, &e.to_string()))?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces what the run was asked (a validation adds its migrations' runs once queued).
    pub async fn set_project_run_request(
        &self,
        id: &str,
        request: &serde_json::Value,
    ) -> Result<(), DomainError> {
        sqlx::query("UPDATE project_runs SET request = $1 WHERE id = $2")
            .bind(request.to_string())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "project run", id, &e.to_string()))?;
        Ok(())
    }

    /// The project runs of `command` going on, oldest first.
    pub async fn active_project_runs(
        &self,
        command: CommandKind,
    ) -> Result<Vec<ProjectRun>, DomainError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM project_runs WHERE command = $1 AND state IN {ACTIVE} \
             ORDER BY created_ms, id"
        );
        self.fetch_runs(sqlx::query(&sql).bind(command.as_str()), "")
            .await
    }

    /// The project runs `agent_id` should be running: QUEUED or RUNNING, oldest first.
    pub async fn project_runs_for_agent(
        &self,
        agent_id: &str,
    ) -> Result<Vec<ProjectRun>, DomainError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM project_runs WHERE agent_id = $1 AND state IN {ACTIVE} \
             ORDER BY created_ms, id"
        );
        self.fetch_runs(sqlx::query(&sql).bind(agent_id), agent_id)
            .await
    }

    /// The project runs still going on past their time limit at `now`.
    pub async fn overdue_project_runs(&self, now: i64) -> Result<Vec<ProjectRun>, DomainError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM project_runs WHERE state IN {ACTIVE} AND deadline_ms <= $1"
        );
        self.fetch_runs(sqlx::query(&sql).bind(now), "").await
    }

    /// The project runs a query selects (`id`: what the query is about, for its error).
    async fn fetch_runs<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        id: &str,
    ) -> Result<Vec<ProjectRun>, DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "project runs", id, &e.to_string());
        let rows = query.fetch_all(&self.pool).await.map_err(fail)?;
        rows.iter()
            .map(project_run_of)
            .collect::<Result<_, _>>()
            .map_err(fail)
    }
}

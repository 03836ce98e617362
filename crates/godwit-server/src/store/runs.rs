//! Job runs: one run of a command on a migration, its state, counters and report, and what an
//! agent is sent to run.

use godwit_codes::{Code, State};
use godwit_spec::CommandKind;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DomainError, Store, count_of, failed, new_id, now_ms, plausible_id};
use crate::records::*;

/// A new copy starts knowing what there is to do from its migration's last scan (which kept
/// the files and bytes it found to migrate as its own `files_found`, `bytes_found`); other
/// commands find out as they go. `$2` is the migration, `$3` the command.
const FOUND_BY_SCAN: &str = "\
     (SELECT s.files_found FROM job_runs s WHERE s.migration_id = $2 AND $3 = 'copy' \
      AND s.command = 'scan' AND s.state = 'SUCCEEDED' ORDER BY s.created_ms DESC LIMIT 1), \
     (SELECT s.bytes_found FROM job_runs s WHERE s.migration_id = $2 AND $3 = 'copy' \
      AND s.command = 'scan' AND s.state = 'SUCCEEDED' ORDER BY s.created_ms DESC LIMIT 1)";

const RUN_COLUMNS: &str = "id, migration_id, command, state, status_code, error_code, error_params, \
     files, bytes, files_failed, created_ms, started_ms, ended_ms, updated_ms, bytes_per_second, counts, \
     options, files_found, bytes_found";
/// A row's `command`, which only godwit writes.
pub(super) fn command_column(r: &AnyRow) -> Result<CommandKind, sqlx::Error> {
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
        files_found: r.try_get::<Option<i64>, _>("files_found")?.unwrap_or(0),
        bytes_found: r.try_get::<Option<i64>, _>("bytes_found")?.unwrap_or(0),
        bytes_per_second: r
            .try_get::<Option<f64>, _>("bytes_per_second")?
            .unwrap_or(0.0),
        counts: r
            .try_get::<Option<String>, _>("counts")?
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or(serde_json::Value::Object(Default::default())),
        options: r
            .try_get::<Option<String>, _>("options")?
            .and_then(|o| serde_json::from_str(&o).ok()),
        created_ms: r.try_get("created_ms")?,
        started_ms: r.try_get("started_ms")?,
        ended_ms: r.try_get("ended_ms")?,
        updated_ms: r.try_get("updated_ms")?,
    })
}

/// The status code of `command` in `state`; a combination the catalog lacks is a bug (500).
pub fn status_code(command: CommandKind, state: State) -> Result<Code, DomainError> {
    if command == CommandKind::Copy && state == State::Suspended {
        // The copy (migrate data) has no SUSPENDED status of its own; seed 000 gives it to the
        // data upload, which is the copy's transfer.
        return Ok(Code::DATA_UPLOAD_SUSPENDED);
    }
    if state == State::Queued
        && Code::command_status(command.catalog(), state).is_none()
        && let Some(running) = Code::command_status(command.catalog(), State::Running)
    {
        // The seed gives the simulated scan and the validation no QUEUED status: waiting for
        // its agent, such a run shows its RUNNING status, and its state says QUEUED.
        return Ok(running);
    }
    Code::command_status(command.catalog(), state).ok_or_else(|| {
        DomainError::new(Code::HTTP_INTERNAL_SERVER_ERROR, &[]).details(format!(
            "The catalog has no status for {command} in state {}.",
            state_text(state)
        ))
    })
}

impl Store {
    /// A new QUEUED run of `command`; `options`: the whole set it runs with, when it is not
    /// the migration's own.
    pub async fn create_run(
        &self,
        migration_id: &str,
        command: CommandKind,
        options: Option<&MigrationOptions>,
    ) -> Result<JobRun, DomainError> {
        self.insert_run(migration_id, command, options, false)
            .await?
            .ok_or_else(|| DomainError::not_found("job run", migration_id))
    }

    /// A new QUEUED run, only if the migration has no run going on (QUEUED, RUNNING,
    /// STOPPING, PAUSED, SUSPENDED): the check and the insert are one statement, so two
    /// starts at the same moment (two requests, a request and a schedule) cannot both get one.
    /// None when one is going on.
    pub async fn create_run_if_idle(
        &self,
        migration_id: &str,
        command: CommandKind,
        options: Option<&MigrationOptions>,
    ) -> Result<Option<JobRun>, DomainError> {
        self.insert_run(migration_id, command, options, true).await
    }

    async fn insert_run(
        &self,
        migration_id: &str,
        command: CommandKind,
        options: Option<&MigrationOptions>,
        if_idle: bool,
    ) -> Result<Option<JobRun>, DomainError> {
        let id = new_id();
        let status = status_code(command, State::Queued)?;
        let now = now_ms();
        let options = options.map(|o| serde_json::to_string(o).unwrap_or_default());
        let guard = if if_idle {
            " WHERE NOT EXISTS (SELECT 1 FROM job_runs WHERE migration_id = $2 \
             AND state IN ('QUEUED','RUNNING','STOPPING','PAUSED','SUSPENDED'))"
        } else {
            ""
        };
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_CREATE_DOC, "job run", "", &e.to_string());
        let mut tx = self.pool.begin().await.map_err(fail)?;
        if if_idle {
            // Starts of one migration one after the other: this write locks the migration's
            // row (PostgreSQL) or the database (SQLite) until the commit, and the check below
            // then sees a run another start has just made.
            sqlx::query("UPDATE migrations SET created_ms = created_ms WHERE id = $1")
                .bind(migration_id)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        let done = sqlx::query(&format!(
            // Typed NULLs: in an INSERT ... SELECT, PostgreSQL would read a bare NULL as text.
            "INSERT INTO job_runs ({RUN_COLUMNS}) SELECT \
             $1, $2, $3, 'QUEUED', $4, CAST(NULL AS TEXT), CAST(NULL AS TEXT), 0, 0, 0, $5, \
             CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), $5, CAST(NULL AS DOUBLE PRECISION), \
             CAST(NULL AS TEXT), $6, {FOUND_BY_SCAN}{guard}"
        ))
        .bind(&id)
        .bind(migration_id)
        .bind(command.as_str())
        .bind(status.id())
        .bind(now)
        .bind(options)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.get_run(&id).await.map(Some)
    }

    pub async fn get_run(&self, id: &str) -> Result<JobRun, DomainError> {
        if !plausible_id(id) {
            return Err(DomainError::not_found("job run", id));
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
            None => Err(DomainError::not_found("job run", id)),
        }
    }

    /// The runs of a migration, newest first.
    /// The newest run of each of `migrations` that has one, in one query (the dashboard's
    /// overview shows each migration's last run).
    pub async fn last_runs(
        &self,
        migrations: &[String],
    ) -> Result<std::collections::HashMap<String, JobRun>, DomainError> {
        if migrations.is_empty() {
            return Ok(Default::default());
        }
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "job runs", "", &e.to_string());
        let marks: Vec<String> = (1..=migrations.len()).map(|i| format!("${i}")).collect();
        // The newest run's id of each migration first (an index search each), then only those
        // rows: a third of the time of ranking every run of the migrations (measured on
        // SQLite with five runs a migration).
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM job_runs WHERE id IN (SELECT (SELECT j.id FROM job_runs j \
             WHERE j.migration_id = m.id ORDER BY j.created_ms DESC, j.id DESC LIMIT 1) \
             FROM migrations m WHERE m.id IN ({}))",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for m in migrations {
            q = q.bind(m);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(fail)?;
        rows.iter()
            .map(|r| run_of(r).map(|run| (run.migration_id.clone(), run)))
            .collect::<Result<_, _>>()
            .map_err(fail)
    }

    pub async fn list_runs(
        &self,
        migration_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<JobRun>), DomainError> {
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
    pub async fn active_runs(&self, migration_id: &str) -> Result<Vec<JobRun>, DomainError> {
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
    ) -> Result<Option<JobRun>, DomainError> {
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
    ) -> Result<JobRun, DomainError> {
        self.set_run_state_from(id, None, state, error, counters)
            .await?;
        self.get_run(id).await
    }

    /// [`Store::set_run_state`] only if the run is QUEUED or RUNNING now (`from` Some), the
    /// check and the write one statement: whether it moved. Of two control planes deciding a
    /// run's next state at once, one does.
    pub async fn move_active_run(
        &self,
        id: &str,
        state: State,
        error: Option<(Code, &serde_json::Value)>,
        counters: Option<(i64, i64, i64)>,
    ) -> Result<bool, DomainError> {
        self.set_run_state_from(
            id,
            Some(&[State::Queued, State::Running]),
            state,
            error,
            counters,
        )
        .await
    }

    async fn set_run_state_from(
        &self,
        id: &str,
        from: Option<&[State]>,
        state: State,
        error: Option<(Code, &serde_json::Value)>,
        counters: Option<(i64, i64, i64)>,
    ) -> Result<bool, DomainError> {
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
        let only = match from {
            Some(states) => {
                let texts: Vec<String> = states
                    .iter()
                    .map(|s| format!("'{}'", state_text(*s)))
                    .collect();
                format!(" AND state IN ({})", texts.join(", "))
            }
            None => String::new(),
        };
        let moved = sqlx::query(&format!(
            "UPDATE job_runs SET state = $1, status_code = $2, error_code = $3, error_params = $4, \
             files = $5, bytes = $6, files_failed = $7, started_ms = $8, ended_ms = $9, updated_ms = $10 \
             WHERE id = $11{only}"
        ))
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
        Ok(moved.rows_affected() == 1)
    }

    /// The agent took the run: RUNNING, only if it is QUEUED or SUSPENDED now (a run that ended
    /// or is stopping meanwhile keeps its state; the check and the write are one statement).
    pub async fn run_taken(&self, id: &str) -> Result<(), DomainError> {
        let run = self.get_run(id).await?;
        let status = status_code(run.command, State::Running)?;
        let now = now_ms();
        sqlx::query(
            "UPDATE job_runs SET state = 'RUNNING', status_code = $1, \
             started_ms = COALESCE(started_ms, $2), updated_ms = $2, active_ms = $2 \
             WHERE id = $3 AND state IN ('QUEUED','SUSPENDED')",
        )
        .bind(status.id())
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "job run", id, &e.to_string()))?;
        Ok(())
    }

    /// An agent's progress report: counters, rate and files per status code, for a run that is
    /// still going on. Its state is left alone (a stop asked for meanwhile, or its end, stays).
    pub async fn run_progress(
        &self,
        id: &str,
        totals: (i64, i64, i64),
        found: (i64, i64),
        bytes_per_second: f64,
        counts: &serde_json::Value,
        activity: u64,
    ) -> Result<(), DomainError> {
        sqlx::query(
            "UPDATE job_runs SET files = $1, bytes = $2, files_failed = $3, \
             bytes_per_second = $4, counts = $5, updated_ms = $6, \
             files_found = CASE WHEN files_found IS NULL OR files_found < $9 THEN $9 \
             ELSE files_found END, \
             bytes_found = CASE WHEN bytes_found IS NULL OR bytes_found < $10 THEN $10 \
             ELSE bytes_found END, \
             active_ms = CASE WHEN activity IS NULL OR activity <> $8 OR active_ms IS NULL \
             THEN $6 ELSE active_ms END, activity = $8 \
             WHERE id = $7 AND state IN ('QUEUED','RUNNING','STOPPING','PAUSED','SUSPENDED')",
        )
        .bind(totals.0)
        .bind(totals.1)
        .bind(totals.2)
        .bind(bytes_per_second)
        .bind(counts.to_string())
        .bind(now_ms())
        .bind(id)
        .bind(i64::try_from(activity).unwrap_or(i64::MAX))
        .bind(found.0)
        .bind(found.1)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "job run", id, &e.to_string()))?;
        Ok(())
    }

    /// Sets what run `id` found to do: a scan's files and bytes to migrate, which a copy of
    /// its migration starts from.
    pub async fn set_run_found(&self, id: &str, files: i64, bytes: i64) -> Result<(), DomainError> {
        sqlx::query("UPDATE job_runs SET files_found = $1, bytes_found = $2 WHERE id = $3")
            .bind(files)
            .bind(bytes)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "job run", id, &e.to_string()))?;
        Ok(())
    }

    /// Records what an agent said of a run besides its state: the rate and the files per status
    /// code, and, when it has ended, its report.
    pub async fn set_run_details(
        &self,
        id: &str,
        bytes_per_second: f64,
        counts: &serde_json::Value,
        report: Option<&serde_json::Value>,
    ) -> Result<(), DomainError> {
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
    pub async fn run_report(&self, id: &str) -> Result<Option<serde_json::Value>, DomainError> {
        let row = sqlx::query("SELECT report FROM job_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_GET_DOC, "job run", id, &e.to_string()))?;
        Ok(row
            .and_then(|r| r.try_get::<Option<String>, _>("report").ok().flatten())
            .and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Runs that failed, newest first (`GET /v1/errors`): a run paused for review carries its
    /// reason's code, but it is waiting for a person, not an error.
    pub async fn failed_runs(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<JobRun>), DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "job runs", "", &e.to_string());
        let count = sqlx::query(
            "SELECT COUNT(*) FROM job_runs WHERE error_code IS NOT NULL AND state = 'FAILED'",
        )
        .fetch_one(&self.pool)
        .await
        .and_then(|r| count_of(&r))
        .map_err(fail)?;
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM job_runs WHERE error_code IS NOT NULL AND state = 'FAILED' \
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

    /// Runs for the agent's migrations that it should be running: QUEUED ones it has not taken,
    /// and RUNNING or SUSPENDED ones it was running when it went away (it resumes them).
    pub async fn runs_for_agent(&self, agent_id: &str) -> Result<Vec<Delivery>, DomainError> {
        let rows = sqlx::query(&format!(
            "SELECT r.{} FROM job_runs r JOIN migrations m ON m.id = r.migration_id \
             WHERE m.agent_id = $1 AND m.pool IS NULL \
             AND r.state IN ('QUEUED', 'RUNNING', 'SUSPENDED') \
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
    pub async fn delivery(&self, run: JobRun) -> Result<Delivery, DomainError> {
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

    /// A run that never started because the rules refused it when its schedule came: kept
    /// FAILED with the refusal's code, so it shows in `GET /v1/errors`.
    pub async fn refused_run(
        &self,
        migration_id: &str,
        command: CommandKind,
        error: &DomainError,
    ) -> Result<JobRun, DomainError> {
        let run = self.create_run(migration_id, command, None).await?;
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

impl Store {
    /// Whether the agent runs a command now: a job run or a project run not over.
    pub async fn agent_busy(&self, agent_id: &str) -> Result<bool, DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "job runs", agent_id, &e.to_string());
        let jobs = sqlx::query(
            "SELECT COUNT(*) FROM job_runs r JOIN migrations m ON m.id = r.migration_id \
             WHERE m.agent_id = $1 AND r.state IN ('QUEUED', 'RUNNING', 'STOPPING')",
        )
        .bind(agent_id)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| super::count_of(&r))
        .map_err(fail)?;
        let projects = sqlx::query(
            "SELECT COUNT(*) FROM project_runs WHERE agent_id = $1 AND state IN ('QUEUED', 'RUNNING')",
        )
        .bind(agent_id)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| super::count_of(&r))
        .map_err(fail)?;
        Ok(jobs + projects > 0)
    }
}

/// A running command that has gone quiet or stuck, and on which agent.
#[derive(Debug, Clone)]
pub struct Stale {
    pub run_id: String,
    pub migration_id: String,
    pub agent_id: String,
    /// Nothing reported on it since `reported_before` (697); else nothing done (641).
    pub silent: bool,
}

impl Store {
    /// Running commands with no report since `reported_before`, or no activity since
    /// `active_before` (times in ms).
    /// Job runs not over (QUEUED, RUNNING, STOPPING, PAUSED, SUSPENDED), and those that ended
    /// at `ended_since` (ms) or later, newest first, at most `limit`: what the dashboard's
    /// overview follows.
    pub async fn all_active_runs(
        &self,
        ended_since: i64,
        limit: i64,
    ) -> Result<Vec<JobRun>, DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "job runs", "", &e.to_string());
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM job_runs \
             WHERE state IN ('QUEUED','RUNNING','STOPPING','PAUSED','SUSPENDED') \
             UNION SELECT {RUN_COLUMNS} FROM job_runs WHERE ended_ms >= $2 \
             ORDER BY created_ms DESC, id LIMIT $1"
        ))
        .bind(limit)
        .bind(ended_since)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        rows.iter()
            .map(run_of)
            .collect::<Result<_, _>>()
            .map_err(fail)
    }

    pub async fn stale_runs(
        &self,
        reported_before: i64,
        active_before: i64,
    ) -> Result<Vec<Stale>, DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "job runs", "", &e.to_string());
        let rows = sqlx::query(
            "SELECT r.id, r.migration_id, m.agent_id, r.updated_ms FROM job_runs r \
             JOIN migrations m ON m.id = r.migration_id \
             WHERE r.state = 'RUNNING' AND m.agent_id IS NOT NULL AND m.pool IS NULL \
             AND (r.updated_ms < $1 OR COALESCE(r.active_ms, r.updated_ms) < $2)",
        )
        .bind(reported_before)
        .bind(active_before)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        rows.iter()
            .map(|r| {
                Ok(Stale {
                    run_id: r.try_get("id")?,
                    migration_id: r.try_get("migration_id")?,
                    agent_id: r.try_get("agent_id")?,
                    silent: r.try_get::<i64, _>("updated_ms")? < reported_before,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(fail)
    }
}

//! Schedules: a command started at a time, repeated.

use godwit_codes::Code;
use godwit_spec::CommandKind;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::runs::command_column;
use super::{DomainError, Store, failed, new_id, now_ms};
use crate::records::*;

const SCHEDULE_COLUMNS: &str =
    "id, migration_id, command, frequency, repeat_count, start_ms, created_ms";

fn schedule_of(r: &AnyRow) -> Result<Schedule, sqlx::Error> {
    Ok(Schedule {
        id: r.try_get("id")?,
        migration_id: r.try_get("migration_id")?,
        command: command_column(r)?,
        frequency: r.try_get("frequency")?,
        repeat: r.try_get("repeat_count")?,
        start_ms: r.try_get("start_ms")?,
        created_ms: r.try_get("created_ms")?,
    })
}

impl Store {
    pub async fn create_schedule(
        &self,
        migration_id: &str,
        command: CommandKind,
        frequency: &str,
        repeat: i64,
        start_ms: i64,
    ) -> Result<Schedule, DomainError> {
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
            DomainError::new(
                Code::ERR_MIGRATION_CONFIG_CREATE_SCHEDULER,
                &[("migration_id", migration_id), ("reason", &e.to_string())],
            )
        })?;
        Ok(s)
    }

    pub async fn list_schedules(&self, migration_id: &str) -> Result<Vec<Schedule>, DomainError> {
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE migration_id = $1 ORDER BY start_ms, id"
        ))
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
            .map(schedule_of)
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

    /// Schedules whose next start has come.
    pub async fn due_schedules(&self, now_ms: i64) -> Result<Vec<Schedule>, DomainError> {
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules \
             WHERE start_ms <= $1 AND repeat_count > 0 ORDER BY start_ms, id"
        ))
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "schedules", "", &e.to_string()))?;
        rows.iter()
            .map(schedule_of)
            .collect::<Result<_, _>>()
            .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "schedules", "", &e.to_string()))
    }

    /// Moves a schedule from the start `due` to its next start with one run fewer left, if no
    /// one did first: true when this call did, and so owns this start. Control planes sharing
    /// a database all see the schedule due; one of them wins its start.
    pub async fn advance_schedule(
        &self,
        id: &str,
        due: (i64, i64),
        next_ms: i64,
        left: i64,
    ) -> Result<bool, DomainError> {
        let done = sqlx::query(
            "UPDATE schedules SET start_ms = $1, repeat_count = $2 \
             WHERE id = $3 AND start_ms = $4 AND repeat_count = $5",
        )
        .bind(next_ms)
        .bind(left)
        .bind(id)
        .bind(due.0)
        .bind(due.1)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "schedule", id, &e.to_string()))?;
        Ok(done.rows_affected() == 1)
    }
}

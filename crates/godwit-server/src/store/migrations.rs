//! Migrations: a source path to a target path, run by an agent, in a project.

use godwit_codes::Code;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DomainError, Store, StoreFailure, count_of, failed, new_id, now_ms, plausible_id};
use crate::records::*;

const MIGRATION_COLUMNS: &str = "id, project_id, agent_id, source_endpoint, source_path, \
     target_endpoint, target_path, options, created_ms";
/// The columns read back (`m`: the migration, `p`: its project): the written ones, the options
/// as given, and the project's settings, which fill in what the migration does not give.
const MIGRATION_READ: &str = "m.id, m.project_id, m.agent_id, m.source_endpoint, \
     m.source_path, m.target_endpoint, m.target_path, m.options, m.created_ms, m.given_options, \
     m.pool, p.settings AS project_settings FROM migrations m LEFT JOIN projects p ON p.id = m.project_id";

fn migration_of(r: &AnyRow) -> Result<Migration, sqlx::Error> {
    let options: String = r.try_get("options")?;
    let json =
        |col: &str| -> Result<Option<serde_json::Map<String, serde_json::Value>>, sqlx::Error> {
            Ok(r.try_get::<Option<String>, _>(col)?
                .and_then(|t| serde_json::from_str(&t).ok()))
        };
    let given_options = json("given_options")?;
    let own: MigrationOptions = serde_json::from_str(&options).unwrap_or_default();
    // What the migration does not give, its project's settings decide.
    let options = match (&given_options, json("project_settings")?) {
        (Some(given), Some(settings)) if !settings.is_empty() => {
            let mut merged = settings;
            merged.extend(given.clone());
            serde_json::from_value(serde_json::Value::Object(merged)).unwrap_or(own)
        }
        _ => own,
    };
    Ok(Migration {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        agent_id: r.try_get("agent_id")?,
        source_endpoint: r.try_get("source_endpoint")?,
        source_path: r.try_get("source_path")?,
        target_endpoint: r.try_get("target_endpoint")?,
        target_path: r.try_get("target_path")?,
        options,
        created_ms: r.try_get("created_ms")?,
        given_options,
        pool: r
            .try_get::<Option<String>, _>("pool")?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
    })
}

impl Store {
    /// A new migration whose options are all its own (see [`Store::create_migration_given`]).
    pub async fn create_migration(
        &self,
        project_id: &str,
        agent_id: Option<&str>,
        source: (&str, &str),
        target: (&str, &str),
        options: &MigrationOptions,
    ) -> Result<Migration, DomainError> {
        self.create_migration_given(project_id, agent_id, source, target, options, None)
            .await
    }

    /// A new migration. `given`: its options as given, when what it does not give comes from
    /// its project's settings. Its include rules are its scope: the same source path to the
    /// same target path with the same rules (in any order) is a duplicate (505); a plan's jobs
    /// differ in their rules.
    pub async fn create_migration_given(
        &self,
        project_id: &str,
        agent_id: Option<&str>,
        source: (&str, &str),
        target: (&str, &str),
        options: &MigrationOptions,
        given: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Migration, DomainError> {
        let id = new_id();
        let options_text = serde_json::to_string(options).unwrap_or_else(|_| "{}".into());
        let given = given.map(|g| serde_json::to_string(g).unwrap_or_else(|_| "{}".into()));
        let scope = godwit_spec::filter::scope_of(&options.filters.include);
        sqlx::query(&format!(
            "INSERT INTO migrations ({MIGRATION_COLUMNS}, given_options, scope) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
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
        .bind(given)
        .bind(&scope)
        .execute(&self.pool)
        .await
        .map_err(|e| match StoreFailure::from(e) {
            StoreFailure::Duplicate => DomainError::new(
                Code::ERR_DUPLICATE_MIGRATION_ID,
                &[(
                    "migration_id",
                    &format!("{}:{} -> {}:{}", source.0, source.1, target.0, target.1),
                )],
            )
            .details(if scope.is_empty() {
                "A migration of this source path to this target path exists already.".to_string()
            } else {
                "A migration of this source path to this target path with these include rules \
                 exists already."
                    .to_string()
            }),
            StoreFailure::Failed(r) => failed(Code::DB_ERR_CREATE_DOC, "migration", "", &r),
        })?;
        self.get_migration(&id).await
    }

    /// Replaces a migration's options (`given`: as given; its project's settings fill in the
    /// rest). 509 when the store cannot save them; 505 when its new include rules make it the
    /// same as another migration.
    pub async fn update_migration_options(
        &self,
        id: &str,
        options: &MigrationOptions,
        given: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Migration, DomainError> {
        let scope = godwit_spec::filter::scope_of(&options.filters.include);
        sqlx::query(
            "UPDATE migrations SET options = $1, given_options = $2, scope = $3 WHERE id = $4",
        )
        .bind(serde_json::to_string(options).unwrap_or_else(|_| "{}".into()))
        .bind(serde_json::to_string(given).unwrap_or_else(|_| "{}".into()))
        .bind(&scope)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| match StoreFailure::from(e) {
            StoreFailure::Duplicate => {
                DomainError::new(Code::ERR_DUPLICATE_MIGRATION_ID, &[("migration_id", id)])
                    .details("Another migration has the same source, target and include rules.")
            }
            StoreFailure::Failed(r) => DomainError::new(
                Code::ERR_MIGRATION_CONFIG_UPDATE,
                &[("migration_id", id), ("reason", &r)],
            ),
        })?;
        self.get_migration(id).await
    }

    /// The migration of `source` to `target` with the include rules `scope`, if there is one.
    pub async fn find_migration(
        &self,
        source: (&str, &str),
        target: (&str, &str),
        scope: &str,
    ) -> Result<Option<Migration>, DomainError> {
        let row = sqlx::query(&format!(
            "SELECT {MIGRATION_READ} WHERE m.source_endpoint = $1 AND m.source_path = $2 \
             AND m.target_endpoint = $3 AND m.target_path = $4 AND m.scope = $5"
        ))
        .bind(source.0)
        .bind(source.1)
        .bind(target.0)
        .bind(target.1)
        .bind(scope)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "migrations", "", &e.to_string()))?;
        row.map(|r| migration_of(&r))
            .transpose()
            .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "migrations", "", &e.to_string()))
    }

    /// Migrations, all of them or those of one agent.
    pub async fn list_migrations(
        &self,
        agent: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Migration>), DomainError> {
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
                    "SELECT {MIGRATION_READ} WHERE m.agent_id = $1 \
                     ORDER BY m.created_ms, m.id LIMIT $2 OFFSET $3"
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
                    "SELECT {MIGRATION_READ} \
                     ORDER BY m.created_ms, m.id LIMIT $1 OFFSET $2"
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

    pub async fn get_migration(&self, id: &str) -> Result<Migration, DomainError> {
        if !plausible_id(id) {
            return Err(DomainError::not_found("migration", id));
        }
        let row = sqlx::query(&format!("SELECT {MIGRATION_READ} WHERE m.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_GET_DOC, "migration", id, &e.to_string()))?;
        match row {
            Some(r) => migration_of(&r)
                .map_err(|e| failed(Code::DB_ERR_GET_DOC, "migration", id, &e.to_string())),
            None => Err(DomainError::not_found("migration", id)),
        }
    }

    /// Deletes a migration, its runs and schedules (and a pool's index).
    pub async fn delete_migration(&self, id: &str) -> Result<(), DomainError> {
        self.get_migration(id).await?;
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_DELETE_DOC, "migration", id, &e.to_string());
        let mut tx = self.pool.begin().await.map_err(fail)?;
        for q in [
            "DELETE FROM schedules WHERE migration_id = $1",
            "DELETE FROM copylog WHERE run_id IN (SELECT id FROM job_runs WHERE migration_id = $1)",
            "DELETE FROM review_paths WHERE run_id IN \
             (SELECT id FROM job_runs WHERE migration_id = $1)",
            "DELETE FROM pool_index WHERE migration_id = $1",
            "DELETE FROM run_samples WHERE run_id IN \
             (SELECT id FROM job_runs WHERE migration_id = $1)",
            "DELETE FROM work_units WHERE run_id IN \
             (SELECT id FROM job_runs WHERE migration_id = $1)",
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
    pub async fn endpoint_uses(&self, id: &str) -> Result<i64, DomainError> {
        sqlx::query(
            "SELECT COUNT(*) FROM migrations WHERE source_endpoint = $1 OR target_endpoint = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| count_of(&r))
        .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "migrations", id, &e.to_string()))
    }

    /// Every migration of the project, oldest first.
    pub async fn project_migrations(
        &self,
        project_id: &str,
    ) -> Result<Vec<Migration>, DomainError> {
        let fail = |e: sqlx::Error| {
            failed(
                Code::DB_ERR_GET_DOCS,
                "migrations",
                project_id,
                &e.to_string(),
            )
        };
        let rows = sqlx::query(&format!(
            "SELECT {MIGRATION_READ} WHERE m.project_id = $1 ORDER BY m.created_ms, m.id"
        ))
        .bind(project_id)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        rows.iter()
            .map(migration_of)
            .collect::<Result<_, _>>()
            .map_err(fail)
    }

    /// How many migrations of the project have a run that is not over.
    pub async fn active_migrations_in_project(&self, project_id: &str) -> Result<i64, DomainError> {
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
    pub async fn migrations_in_project(&self, project_id: &str) -> Result<i64, DomainError> {
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
    pub async fn active_migrations(&self) -> Result<i64, DomainError> {
        sqlx::query(
            "SELECT COUNT(DISTINCT migration_id) FROM job_runs \
             WHERE state IN ('QUEUED','RUNNING','STOPPING','PAUSED','SUSPENDED')",
        )
        .fetch_one(&self.pool)
        .await
        .and_then(|r| count_of(&r))
        .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "job runs", "", &e.to_string()))
    }
}

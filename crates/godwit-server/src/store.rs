//! The control plane's store: one layer over SQLite (the default, a file in the state
//! directory) and PostgreSQL, through sqlx's `Any` driver. The SQL is written once, portable to
//! both; the schema is versioned in `migrations/` and brought up to date at start.
//!
//! Store failures become the catalog's 800-822 codes (not found 404, the rest 503), never a
//! panic.

use godwit_codes::Code;
use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::error::ApiError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connected, migrated store.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub backend: Backend,
}

/// A project: a group of migrations.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A source or target storage: its kind, where it is, and the name of its credentials.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Endpoint {
    pub id: String,
    pub name: String,
    /// `local`, `s3`, `azure-blob`, `sftp` or `memory`.
    pub kind: String,
    /// `/mnt/share`, `s3://bucket/prefix`, `az://container/prefix`, `sftp://user@host:22/path`.
    pub uri: String,
    /// The name of the credentials the agent uses for it (never the secret itself).
    pub credential_ref: Option<String>,
    pub created_ms: i64,
}

/// What went wrong in the store, before it becomes an API error with the operation's code.
#[derive(Debug)]
pub enum StoreFailure {
    /// A unique constraint refused the write (a duplicate).
    Duplicate,
    /// The database could not do it; the reason is for the message.
    Failed(String),
}

impl From<sqlx::Error> for StoreFailure {
    fn from(e: sqlx::Error) -> Self {
        if e.as_database_error()
            .is_some_and(|d| d.is_unique_violation())
        {
            return StoreFailure::Duplicate;
        }
        StoreFailure::Failed(e.to_string())
    }
}

/// The error for a failed store operation with `code` (801, 803, 810, 816, 821) on `kind`.
pub(crate) fn failed(code: Code, kind: &str, id: &str, reason: &str) -> ApiError {
    ApiError::new(code, &[("kind", kind), ("id", id), ("reason", reason)])
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Whether `id` could name anything: ids are short printable text. Others (a NUL byte, which
/// PostgreSQL refuses in text) are simply not found, without asking the database.
pub(crate) fn plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && !id.chars().any(char::is_control)
}

/// A new id: a UUID version 7, as text. They sort in the order they were made (the time, then
/// a counter within the millisecond), so lists ordered by id are stable.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://...`) and applies the migrations the
    /// database has not seen yet.
    pub async fn open(url: &str) -> Result<Store, String> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(format!(
                "{url}: the database must be sqlite://PATH or postgres://USER@HOST/DB"
            ));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 10 })
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| format!("{}: {e}", redact(url)))?;
        if backend == Backend::Sqlite {
            // Writers wait for each other instead of failing at once, and foreign keys hold.
            for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA foreign_keys = ON"] {
                sqlx::query(pragma)
                    .execute(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| format!("applying the schema migrations: {e}"))?;
        Ok(Store { pool, backend })
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ready(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes the pool, waiting for connections in use (graceful shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // Projects.

    pub async fn create_project(&self, name: &str, description: &str) -> Result<Project, ApiError> {
        let now = now_ms();
        let p = Project {
            id: new_id(),
            name: name.to_string(),
            description: description.to_string(),
            created_ms: now,
            updated_ms: now,
        };
        sqlx::query(
            "INSERT INTO projects (id, name, description, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.created_ms)
        .bind(p.updated_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| match StoreFailure::from(e) {
            StoreFailure::Duplicate => {
                ApiError::new(Code::ERR_PROJECT_NAME_ALREADY_USED, &[("name", name)])
            }
            StoreFailure::Failed(r) => failed(Code::DB_ERR_CREATE_DOC, "project", "", &r),
        })?;
        Ok(p)
    }

    pub async fn list_projects(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Project>), ApiError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "projects", "", &e.to_string());
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM projects")
            .fetch_one(&self.pool)
            .await
            .map_err(fail)?
            .try_get(0)
            .map_err(fail)?;
        let rows = sqlx::query(
            "SELECT id, name, description, created_ms, updated_ms FROM projects \
             ORDER BY created_ms, id LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        let projects = rows
            .iter()
            .map(project_of)
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        Ok((count, projects))
    }

    pub async fn get_project(&self, id: &str) -> Result<Project, ApiError> {
        if !plausible_id(id) {
            return Err(ApiError::not_found("project", id));
        }
        let row = sqlx::query(
            "SELECT id, name, description, created_ms, updated_ms FROM projects WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_GET_DOC, "project", id, &e.to_string()))?;
        match row {
            Some(r) => project_of(&r)
                .map_err(|e| failed(Code::DB_ERR_GET_DOC, "project", id, &e.to_string())),
            None => Err(ApiError::not_found("project", id)),
        }
    }

    pub async fn update_project(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Project, ApiError> {
        let mut p = self.get_project(id).await?;
        if let Some(n) = name {
            p.name = n.to_string();
        }
        if let Some(d) = description {
            p.description = d.to_string();
        }
        p.updated_ms = now_ms();
        sqlx::query(
            "UPDATE projects SET name = $1, description = $2, updated_ms = $3 WHERE id = $4",
        )
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.updated_ms)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| match StoreFailure::from(e) {
            StoreFailure::Duplicate => {
                ApiError::new(Code::ERR_PROJECT_NAME_ALREADY_USED, &[("name", &p.name)])
            }
            StoreFailure::Failed(r) => failed(Code::DB_ERR_UPDATE_DOC, "project", id, &r),
        })?;
        Ok(p)
    }

    pub async fn delete_project(&self, id: &str) -> Result<(), ApiError> {
        if !plausible_id(id) {
            return Err(ApiError::not_found("project", id));
        }
        let done = sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_DELETE_DOC, "project", id, &e.to_string()))?;
        if done.rows_affected() == 0 {
            return Err(ApiError::not_found("project", id));
        }
        Ok(())
    }

    // Endpoints.

    pub async fn create_endpoint(
        &self,
        name: &str,
        kind: &str,
        uri: &str,
        credential_ref: Option<&str>,
    ) -> Result<Endpoint, ApiError> {
        let e = Endpoint {
            id: new_id(),
            name: name.to_string(),
            kind: kind.to_string(),
            uri: uri.to_string(),
            credential_ref: credential_ref.map(str::to_string),
            created_ms: now_ms(),
        };
        sqlx::query(
            "INSERT INTO endpoints (id, name, kind, uri, credential_ref, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&e.id)
        .bind(&e.name)
        .bind(&e.kind)
        .bind(&e.uri)
        .bind(&e.credential_ref)
        .bind(e.created_ms)
        .execute(&self.pool)
        .await
        .map_err(|err| match StoreFailure::from(err) {
            StoreFailure::Duplicate => ApiError::new(Code::HTTP_CONFLICT, &[])
                .details(format!("An endpoint named {name} already exists.")),
            StoreFailure::Failed(r) => failed(Code::DB_ERR_CREATE_DOC, "endpoint", "", &r),
        })?;
        Ok(e)
    }

    pub async fn list_endpoints(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Endpoint>), ApiError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "endpoints", "", &e.to_string());
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM endpoints")
            .fetch_one(&self.pool)
            .await
            .map_err(fail)?
            .try_get(0)
            .map_err(fail)?;
        let rows = sqlx::query(
            "SELECT id, name, kind, uri, credential_ref, created_ms FROM endpoints \
             ORDER BY created_ms, id LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        let list = rows
            .iter()
            .map(endpoint_of)
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        Ok((count, list))
    }

    pub async fn get_endpoint(&self, id: &str) -> Result<Endpoint, ApiError> {
        if !plausible_id(id) {
            return Err(ApiError::not_found("endpoint", id));
        }
        let row = sqlx::query(
            "SELECT id, name, kind, uri, credential_ref, created_ms FROM endpoints WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_GET_DOC, "endpoint", id, &e.to_string()))?;
        match row {
            Some(r) => endpoint_of(&r)
                .map_err(|e| failed(Code::DB_ERR_GET_DOC, "endpoint", id, &e.to_string())),
            None => Err(ApiError::not_found("endpoint", id)),
        }
    }

    pub async fn delete_endpoint(&self, id: &str) -> Result<(), ApiError> {
        if !plausible_id(id) {
            return Err(ApiError::not_found("endpoint", id));
        }
        let done = sqlx::query("DELETE FROM endpoints WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_DELETE_DOC, "endpoint", id, &e.to_string()))?;
        if done.rows_affected() == 0 {
            return Err(ApiError::not_found("endpoint", id));
        }
        Ok(())
    }
}

fn project_of(r: &AnyRow) -> Result<Project, sqlx::Error> {
    Ok(Project {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        created_ms: r.try_get("created_ms")?,
        updated_ms: r.try_get("updated_ms")?,
    })
}

fn endpoint_of(r: &AnyRow) -> Result<Endpoint, sqlx::Error> {
    Ok(Endpoint {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        uri: r.try_get("uri")?,
        credential_ref: r.try_get("credential_ref")?,
        created_ms: r.try_get("created_ms")?,
    })
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

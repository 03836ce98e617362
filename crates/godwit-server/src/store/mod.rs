//! The control plane's store: one layer over SQLite (the default, a file in the state
//! directory) and PostgreSQL, through sqlx's `Any` driver. The SQL is written once, portable to
//! both; the schema is versioned in `migrations/` and brought up to date at start.
//!
//! Store failures become the catalog's 800-822 codes (not found 404, the rest 503), never a
//! panic.

use godwit_codes::Code;
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

pub use crate::error::DomainError;

mod agents;
mod copylog;
mod endpoints;
mod migrations;
mod pool_index;
mod project_runs;
mod projects;
mod releases;
mod replicas;
mod review;
mod runs;
mod schedules;
mod tokens;
mod units;
mod upgrades;

pub use agents::Registration;
pub use endpoints::Endpoint;
pub use pool_index::IndexCursor;
pub use projects::Project;
pub use releases::CHUNK;
pub use review::{REVIEW_LISTS, ReviewPage, Sample, sample_now, unit_attempt};
pub use runs::Stale;
pub use tokens::{AuditEntry, TokenRecord};
pub use units::{NewUnit, UnitEnd, WorkUnit};
pub use upgrades::UpgradeRequest;

/// The schema's versions, the same SQL on both databases ...
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
/// ... but for the few a database needs its own SQL for (version 10: SQLite cannot drop a
/// UNIQUE constraint, PostgreSQL can).
static SQLITE_ONLY: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-sqlite");
static POSTGRES_ONLY: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-postgres");

/// The migrations of `backend`, in version order.
#[derive(Debug)]
struct Schema(Vec<sqlx::migrate::Migration>);

impl Schema {
    fn of(backend: Backend) -> Schema {
        let own = match backend {
            Backend::Sqlite => &SQLITE_ONLY,
            Backend::Postgres => &POSTGRES_ONLY,
        };
        let mut all: Vec<_> = MIGRATOR.iter().chain(own.iter()).cloned().collect();
        all.sort_by_key(|m| m.version);
        Schema(all)
    }
}

impl sqlx::migrate::MigrationSource<'static> for Schema {
    fn resolve(
        self,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>,
                > + Send,
        >,
    > {
        Box::pin(async move { Ok(self.0) })
    }
}

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
pub(crate) fn failed(code: Code, kind: &str, id: &str, reason: &str) -> DomainError {
    DomainError::new(code, &[("kind", kind), ("id", id), ("reason", reason)])
}

/// The count a `SELECT COUNT(*)` row holds.
pub(crate) fn count_of(r: &AnyRow) -> Result<i64, sqlx::Error> {
    r.try_get(0)
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
        migrate(&pool, backend)
            .await
            .map_err(|e| format!("applying the schema migrations: {e}"))?;
        Ok(Store { pool, backend })
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ready(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// For the metrics page: agents by state number (900-902), and job runs waiting for their
    /// agent and running.
    pub async fn gauges(&self) -> Result<(Vec<(i64, i64)>, i64, i64), sqlx::Error> {
        use sqlx::Row as _;
        let agents = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM agents WHERE state <> 903 GROUP BY state",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<i64, _>("state")?, r.try_get::<i64, _>("n")?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let runs = sqlx::query(
            "SELECT \
               SUM(CASE WHEN state = 'QUEUED' THEN 1 ELSE 0 END) AS queued, \
               SUM(CASE WHEN state = 'RUNNING' THEN 1 ELSE 0 END) AS running \
             FROM job_runs WHERE state IN ('QUEUED', 'RUNNING')",
        )
        .fetch_one(&self.pool)
        .await?;
        let n = |name: &str| {
            runs.try_get::<Option<i64>, _>(name)
                .map(Option::unwrap_or_default)
        };
        Ok((agents, n("queued")?, n("running")?))
    }

    /// Closes the pool, waiting for connections in use (graceful shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Brings the schema up to date. On SQLite on one connection with foreign keys off, as SQLite
/// documents for making a table again (a table's constraints cannot be changed in place), and
/// the foreign keys checked before they are on again: a dangling reference stops the start.
async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), String> {
    let migrator = sqlx::migrate::Migrator::new(Schema::of(backend))
        .await
        .map_err(|e| e.to_string())?;
    if backend == Backend::Postgres {
        return migrator.run(pool).await.map_err(|e| e.to_string());
    }
    let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    let ran = migrator
        .run_direct(&mut *conn)
        .await
        .map_err(|e| e.to_string());
    let dangling = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| e.to_string())?
        .len();
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    ran?;
    if dangling > 0 {
        return Err(format!(
            "{dangling} rows refer to rows that do not exist (PRAGMA foreign_key_check)"
        ));
    }
    Ok(())
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

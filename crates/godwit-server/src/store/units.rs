//! Agent pools: a migration's agents, and the work units its copies are split into, each
//! leased to one agent at a time (see `pools.rs`).

use godwit_codes::Code;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, DomainError, Store, failed, new_id, now_ms};

/// One part of a pool migration's run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkUnit {
    pub id: String,
    pub run_id: String,
    /// Its place in the run: 0 is the walk that splits the source (`kind` split), the others
    /// copy or true up a part of it (`kind` copy or sync); a scan is one unit (`whole`).
    pub seq: i64,
    pub kind: String,
    /// The include rules that select its part of the source.
    pub include: Vec<String>,
    /// What the split found in it.
    pub planned_files: i64,
    pub planned_bytes: i64,
    /// QUEUED, LEASED (sent to its agent), RUNNING, SUCCEEDED, FAILED; REVIEW: a true-up's
    /// unit that found files to delete and waits for its run to judge them all together.
    pub state: String,
    /// The agent holding its lease, and since when.
    pub holder: Option<String>,
    pub leased_ms: Option<i64>,
    /// The lease ends then unless its agent's heartbeats renew it.
    pub lease_expires_ms: Option<i64>,
    /// Times it was leased.
    pub attempts: i64,
    pub files: i64,
    pub bytes: i64,
    pub files_failed: i64,
    pub bytes_per_second: f64,
    /// Its files by code.
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    pub error: Option<serde_json::Value>,
    #[serde(skip)]
    pub report: Option<serde_json::Value>,
    /// A true-up's unit: the files it found gone from the source, to delete at the target
    /// (its list waits for review while it is REVIEW).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletes_found: Option<i64>,
    pub updated_ms: i64,
    pub ended_ms: Option<i64>,
}

const UNIT_COLUMNS: &str = "id, run_id, seq, kind, include_rules, planned_files, planned_bytes, \
     state, holder, leased_ms, lease_expires_ms, attempts, files, bytes, files_failed, \
     bytes_per_second, counts, error, report, updated_ms, ended_ms";

fn unit_of(r: &AnyRow) -> Result<WorkUnit, sqlx::Error> {
    let json = |col: &str| -> Result<Option<serde_json::Value>, sqlx::Error> {
        Ok(r.try_get::<Option<String>, _>(col)?
            .and_then(|t| serde_json::from_str(&t).ok()))
    };
    Ok(WorkUnit {
        id: r.try_get("id")?,
        run_id: r.try_get("run_id")?,
        seq: r.try_get("seq")?,
        kind: r.try_get("kind")?,
        include: json("include_rules")?
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default(),
        planned_files: r.try_get("planned_files")?,
        planned_bytes: r.try_get("planned_bytes")?,
        state: r.try_get("state")?,
        holder: r.try_get("holder")?,
        leased_ms: r.try_get("leased_ms")?,
        lease_expires_ms: r.try_get("lease_expires_ms")?,
        attempts: r.try_get("attempts")?,
        files: r.try_get("files")?,
        bytes: r.try_get("bytes")?,
        files_failed: r.try_get("files_failed")?,
        bytes_per_second: r.try_get("bytes_per_second")?,
        counts: json("counts")?.unwrap_or_else(|| serde_json::json!({})),
        error: json("error")?,
        deletes_found: json("report")?.and_then(|r| r["true_up"]["gone_from_source"].as_i64()),
        report: json("report")?,
        updated_ms: r.try_get("updated_ms")?,
        ended_ms: r.try_get("ended_ms")?,
    })
}

/// The advisory lock's key for run `run_id` (FNV-1a of its id).
fn lock_key(run_id: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in run_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// How an attempt at a unit ended: its state (SUCCEEDED, FAILED), files, bytes and failures,
/// files by code, error and report.
#[derive(Debug, Clone, Copy)]
pub struct UnitEnd<'a> {
    pub state: &'a str,
    pub totals: (i64, i64, i64),
    pub counts: &'a serde_json::Value,
    pub error: Option<&'a serde_json::Value>,
    pub report: Option<&'a serde_json::Value>,
}

/// A unit to add to a run: its kind, include rules, planned files and bytes.
#[derive(Debug)]
pub struct NewUnit {
    pub kind: &'static str,
    pub include: Vec<String>,
    pub files: i64,
    pub bytes: i64,
}

/// Inserts `units` of run `run_id`, numbered from `first_seq`, QUEUED.
async fn insert_units(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    run_id: &str,
    first_seq: i64,
    units: &[NewUnit],
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    for (i, u) in units.iter().enumerate() {
        sqlx::query(
            "INSERT INTO work_units (id, run_id, seq, kind, include_rules, planned_files, \
             planned_bytes, state, attempts, files, bytes, files_failed, bytes_per_second, \
             counts, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'QUEUED', 0, 0, 0, 0, 0, '{}', $8)",
        )
        .bind(new_id())
        .bind(run_id)
        .bind(first_seq + i as i64)
        .bind(u.kind)
        .bind(serde_json::json!(u.include).to_string())
        .bind(u.files)
        .bind(u.bytes)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Sets the agents of migration `id`'s pool (none: it has no pool).
    pub async fn set_migration_pool(&self, id: &str, pool: &[String]) -> Result<(), DomainError> {
        let text = (!pool.is_empty()).then(|| serde_json::json!(pool).to_string());
        sqlx::query("UPDATE migrations SET pool = $1 WHERE id = $2")
            .bind(text)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "migration", id, &e.to_string()))?;
        Ok(())
    }

    /// Adds `units` to run `run_id`, numbered from `first_seq`.
    pub async fn add_units(
        &self,
        run_id: &str,
        first_seq: i64,
        units: &[NewUnit],
    ) -> Result<(), DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_CREATE_DOC, "work unit", run_id, &e.to_string());
        let mut tx = self.pool.begin().await.map_err(fail)?;
        insert_units(&mut tx, run_id, first_seq, units)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(())
    }

    pub async fn get_unit(&self, id: &str) -> Result<WorkUnit, DomainError> {
        if !super::plausible_id(id) {
            return Err(DomainError::not_found("work unit", id));
        }
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOC, "work unit", id, &e.to_string());
        let row = sqlx::query(&format!(
            "SELECT {UNIT_COLUMNS} FROM work_units WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)?;
        match row {
            Some(r) => unit_of(&r).map_err(fail),
            None => Err(DomainError::not_found("work unit", id)),
        }
    }

    /// The units of run `run_id`, in order.
    pub async fn run_units(&self, run_id: &str) -> Result<Vec<WorkUnit>, DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "work units", run_id, &e.to_string());
        sqlx::query(&format!(
            "SELECT {UNIT_COLUMNS} FROM work_units WHERE run_id = $1 ORDER BY seq"
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?
        .iter()
        .map(unit_of)
        .collect::<Result<_, _>>()
        .map_err(fail)
    }

    /// The runs of pool migrations that may have units to hand out or to finish.
    pub async fn pool_runs(&self) -> Result<Vec<String>, DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "job runs", "", &e.to_string());
        sqlx::query(
            "SELECT r.id FROM job_runs r JOIN migrations m ON m.id = r.migration_id \
             WHERE m.pool IS NOT NULL AND r.state IN ('QUEUED', 'RUNNING', 'STOPPING', 'PAUSING') \
             ORDER BY r.created_ms",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()
        .map_err(fail)
    }

    /// Leases the next unit of run `run_id` that is free (never leased, given back, or whose
    /// lease ended) to `agent_id` until `expires_ms`: the unit, and the agent that held it
    /// before if its lease ended. None when none is free, or when the agent holds a unit of
    /// the run already (one at a time). Leases of one run are taken one after the other: in
    /// this process by a lock, across control planes on PostgreSQL by an advisory lock on the
    /// run for the transaction (and the unit's row `FOR UPDATE SKIP LOCKED`).
    pub async fn lease_unit(
        &self,
        run_id: &str,
        agent_id: &str,
        expires_ms: i64,
    ) -> Result<Option<(WorkUnit, Option<String>)>, DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_UPDATE_DOC, "work unit", run_id, &e.to_string());
        static LEASING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one_at_a_time = LEASING.lock().await;
        let now = now_ms();
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut tx = self.pool.begin().await.map_err(fail)?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(lock_key(run_id))
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        let holds = sqlx::query(
            "SELECT COUNT(*) FROM work_units WHERE run_id = $1 AND holder = $2 \
             AND state IN ('LEASED', 'RUNNING') AND lease_expires_ms >= $3",
        )
        .bind(run_id)
        .bind(agent_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .and_then(|r| super::count_of(&r))
        .map_err(fail)?;
        if holds > 0 {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT id, holder, state FROM work_units WHERE run_id = $1 AND (state = 'QUEUED' \
             OR (state IN ('LEASED', 'RUNNING') AND lease_expires_ms < $2)) \
             ORDER BY seq LIMIT 1{lock}"
        ))
        .bind(run_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: String = row.try_get("id").map_err(fail)?;
        let state: String = row.try_get("state").map_err(fail)?;
        let before: Option<String> = row.try_get("holder").map_err(fail)?;
        sqlx::query(
            "UPDATE work_units SET state = 'LEASED', holder = $1, leased_ms = $2, \
             lease_expires_ms = $3, attempts = attempts + 1, updated_ms = $2 WHERE id = $4",
        )
        .bind(agent_id)
        .bind(now)
        .bind(expires_ms)
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        let expired = before.filter(|b| state != "QUEUED" && b != agent_id);
        Ok(Some((self.get_unit(&id).await?, expired)))
    }

    /// The units of run `run_id` that paused for review, leased again to the agents holding
    /// them until `expires_ms` to carry out their lists: those units.
    pub async fn confirm_units(
        &self,
        run_id: &str,
        expires_ms: i64,
    ) -> Result<Vec<WorkUnit>, DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_UPDATE_DOC, "work unit", run_id, &e.to_string());
        let waiting: Vec<WorkUnit> = self
            .run_units(run_id)
            .await?
            .into_iter()
            .filter(|u| u.state == "REVIEW")
            .collect();
        let mut out = Vec::new();
        for u in waiting {
            let now = now_ms();
            let done = sqlx::query(
                "UPDATE work_units SET state = 'LEASED', leased_ms = $1, lease_expires_ms = $2, \
                 attempts = attempts + 1, updated_ms = $1 WHERE id = $3 AND state = 'REVIEW'",
            )
            .bind(now)
            .bind(expires_ms)
            .bind(&u.id)
            .execute(&self.pool)
            .await
            .map_err(fail)?;
            if done.rows_affected() == 1 {
                out.push(self.get_unit(&u.id).await?);
            }
        }
        Ok(out)
    }

    /// Gives unit `id` back to the queue if `agent_id` holds it (it could not be sent, or it
    /// stopped or paused before its end).
    pub async fn release_unit(&self, id: &str, agent_id: &str) -> Result<(), DomainError> {
        sqlx::query(
            "UPDATE work_units SET state = 'QUEUED', holder = NULL, lease_expires_ms = NULL, \
             bytes_per_second = 0, updated_ms = $1 \
             WHERE id = $2 AND holder = $3 AND state IN ('LEASED', 'RUNNING')",
        )
        .bind(now_ms())
        .bind(id)
        .bind(agent_id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "work unit", id, &e.to_string()))?;
        Ok(())
    }

    /// Agent `agent_id` took unit `id`; false when it does not hold it (any more).
    pub async fn unit_taken(&self, id: &str, agent_id: &str) -> Result<bool, DomainError> {
        let done = sqlx::query(
            "UPDATE work_units SET state = 'RUNNING', updated_ms = $1 \
             WHERE id = $2 AND holder = $3 AND state IN ('LEASED', 'RUNNING')",
        )
        .bind(now_ms())
        .bind(id)
        .bind(agent_id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "work unit", id, &e.to_string()))?;
        Ok(done.rows_affected() == 1)
    }

    /// What unit `id` has done so far, as its holder `agent_id` reports it; false when that
    /// agent does not hold it.
    pub async fn unit_progress(
        &self,
        id: &str,
        agent_id: &str,
        totals: (i64, i64, i64),
        bytes_per_second: f64,
        counts: &serde_json::Value,
    ) -> Result<bool, DomainError> {
        let done = sqlx::query(
            "UPDATE work_units SET files = $1, bytes = $2, files_failed = $3, \
             bytes_per_second = $4, counts = $5, updated_ms = $6 \
             WHERE id = $7 AND holder = $8 AND state IN ('LEASED', 'RUNNING')",
        )
        .bind(totals.0)
        .bind(totals.1)
        .bind(totals.2)
        .bind(bytes_per_second)
        .bind(counts.to_string())
        .bind(now_ms())
        .bind(id)
        .bind(agent_id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "work unit", id, &e.to_string()))?;
        Ok(done.rows_affected() == 1)
    }

    /// Unit `id` ended (SUCCEEDED or FAILED) as its holder `agent_id` reports; false when
    /// that agent does not hold it.
    pub async fn unit_ended(
        &self,
        id: &str,
        agent_id: &str,
        end: &UnitEnd<'_>,
    ) -> Result<bool, DomainError> {
        self.unit_ended_adding(id, agent_id, end, ("", &[])).await
    }

    /// [`Store::unit_ended`], adding `units` to run `run_id` (numbered from 1) in the same
    /// transaction: a split that ended is never seen without the units it found, so its run
    /// cannot look over before they are handed out.
    pub async fn unit_ended_adding(
        &self,
        id: &str,
        agent_id: &str,
        end: &UnitEnd<'_>,
        (run_id, units): (&str, &[NewUnit]),
    ) -> Result<bool, DomainError> {
        let UnitEnd {
            state,
            totals,
            counts,
            error,
            report,
        } = *end;
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_UPDATE_DOC, "work unit", id, &e.to_string());
        let now = now_ms();
        let mut tx = self.pool.begin().await.map_err(fail)?;
        let done = sqlx::query(
            "UPDATE work_units SET state = $1, files = $2, bytes = $3, files_failed = $4, \
             bytes_per_second = 0, counts = $5, error = $6, report = $7, updated_ms = $8, \
             ended_ms = $8, lease_expires_ms = NULL \
             WHERE id = $9 AND holder = $10 AND state IN ('LEASED', 'RUNNING')",
        )
        .bind(state)
        .bind(totals.0)
        .bind(totals.1)
        .bind(totals.2)
        .bind(counts.to_string())
        .bind(error.map(serde_json::Value::to_string))
        .bind(report.map(serde_json::Value::to_string))
        .bind(now)
        .bind(id)
        .bind(agent_id)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        insert_units(&mut tx, run_id, 1, units)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(true)
    }

    /// Agent `agent_id` is alive: the leases it holds run until `expires_ms` (one that ended
    /// and that no other agent took is its own again).
    pub async fn renew_leases(&self, agent_id: &str, expires_ms: i64) -> Result<(), DomainError> {
        sqlx::query(
            "UPDATE work_units SET lease_expires_ms = $1 \
             WHERE holder = $2 AND state IN ('LEASED', 'RUNNING')",
        )
        .bind(expires_ms)
        .bind(agent_id)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            failed(
                Code::DB_ERR_UPDATE_DOC,
                "work units",
                agent_id,
                &e.to_string(),
            )
        })?;
        Ok(())
    }

    /// The units agent `agent_id` holds (sent again when it connects; a lease that ended and
    /// was not taken by another agent is still its own).
    pub async fn units_held(&self, agent_id: &str) -> Result<Vec<WorkUnit>, DomainError> {
        let fail = |e: sqlx::Error| {
            failed(
                Code::DB_ERR_GET_DOCS,
                "work units",
                agent_id,
                &e.to_string(),
            )
        };
        sqlx::query(&format!(
            "SELECT {UNIT_COLUMNS} FROM work_units WHERE holder = $1 \
             AND state IN ('LEASED', 'RUNNING') ORDER BY run_id, seq"
        ))
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?
        .iter()
        .map(unit_of)
        .collect::<Result<_, _>>()
        .map_err(fail)
    }
}

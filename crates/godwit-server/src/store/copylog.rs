//! Copy logs: the records agents upload for a run, a page at a time.

use godwit_codes::Code;
use sqlx::Row;

use super::{DomainError, Store, count_of, failed};

impl Store {
    /// Stores a page of a run's copy log; a record stored before is left as it is.
    pub async fn add_copylog(
        &self,
        run_id: &str,
        attempt: &str,
        records: &[crate::protocol::WireRecord],
    ) -> Result<std::collections::BTreeMap<String, (u64, u64)>, DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_CREATE_DOC, "copy log", run_id, &e.to_string());
        // Files and bytes by code of the records new here (a page sent again after a lost
        // acknowledgement adds nothing): what the metrics count.
        let mut added = std::collections::BTreeMap::<String, (u64, u64)>::new();
        let mut tx = self.pool.begin().await.map_err(fail)?;
        for r in records {
            let done = sqlx::query(
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
            if done.rows_affected() > 0 {
                let e = added.entry(r.code.clone()).or_default();
                e.0 += 1;
                e.1 += u64::try_from(r.size).unwrap_or(0);
            }
        }
        tx.commit().await.map_err(fail)?;
        Ok(added)
    }

    /// A page of a run's copy log, optionally of one code: one record a path. A run that took
    /// several attempts (its agent restarted, the control plane restarted, a stop and a start)
    /// has a record of each path from each attempt; the one shown is the latest attempt's,
    /// unless that says the file needed no copy (AZSM2041) because an earlier attempt of the
    /// same run copied it: then the earlier record, which says what this run did.
    /// `path`: only records whose path holds it (case counts).
    pub async fn copylog(
        &self,
        run_id: &str,
        code: Option<&str>,
        path: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<crate::protocol::WireRecord>), DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "copy log", run_id, &e.to_string());
        let code = code.unwrap_or("");
        let path = path.unwrap_or("");
        // Where one string holds another, on each database (LIKE ignores case on SQLite only).
        let holds = match self.backend {
            super::Backend::Sqlite => "instr(path, $3) > 0",
            super::Backend::Postgres => "strpos(path, $3) > 0",
        };
        let count = sqlx::query(&format!(
            "WITH {CHOSEN} SELECT COUNT(*) FROM chosen WHERE rn = 1 AND ($2 = '' OR code = $2) \
             AND ($3 = '' OR {holds})"
        ))
        .bind(run_id)
        .bind(code)
        .bind(path)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| count_of(&r))
        .map_err(fail)?;
        let rows = sqlx::query(&format!(
            "WITH {CHOSEN} SELECT line, path, code, message, size FROM chosen \
             WHERE rn = 1 AND ($2 = '' OR code = $2) AND ($3 = '' OR {holds}) \
             ORDER BY attempt, line LIMIT $4 OFFSET $5"
        ))
        .bind(run_id)
        .bind(code)
        .bind(path)
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

    /// What earlier attempts of a run change in the counts of its last attempt `last`: for
    /// each path of the last attempt whose record in the run's copy log (see
    /// [`Store::copylog`]) is an earlier attempt's, its code there and its code in the last
    /// attempt (a file copied before the agent was killed and found unchanged after: AZSM0000,
    /// AZSM2041).
    pub async fn earlier_attempts(
        &self,
        run_id: &str,
        last: &str,
    ) -> Result<Vec<(String, String)>, DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "copy log", run_id, &e.to_string());
        let rows = sqlx::query(&format!(
            "WITH {CHOSEN} SELECT c.code AS chosen, l.code AS last FROM chosen c \
             JOIN copylog l ON l.run_id = $1 AND l.attempt = $2 AND l.path = c.path \
             WHERE c.rn = 1 AND c.attempt <> $2"
        ))
        .bind(run_id)
        .bind(last)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        rows.iter()
            .map(|r| Ok((r.try_get("chosen")?, r.try_get("last")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(fail)
    }
}

/// The records of run `$1` ranked per path: `rn = 1` is the one that stands for the path.
const CHOSEN: &str = "chosen AS (SELECT line, path, code, message, size, attempt, \
     ROW_NUMBER() OVER (PARTITION BY path ORDER BY \
     CASE WHEN code = 'AZSM2041' THEN 1 ELSE 0 END, attempt DESC) AS rn \
     FROM copylog WHERE run_id = $1)";

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
    ) -> Result<(), DomainError> {
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
    ) -> Result<(i64, Vec<crate::protocol::WireRecord>), DomainError> {
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

//! What a run leaves for people to look at besides its copy log: the lists a true-up that
//! paused for review sent (the files it would delete, the folders it could not read), and its
//! progress over time for the throughput chart.

use godwit_codes::Code;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{DomainError, Store, count_of, failed, now_ms};

/// The two lists of a review, by the names the agent sends them under.
pub const REVIEW_LISTS: [&str; 2] = ["deletes", "unreadable"];

/// One sample of a run's progress.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at_ms: i64,
    pub files: i64,
    pub bytes: i64,
    pub bytes_per_second: f64,
}

/// A page of one of a paused true-up's lists.
#[derive(Debug, Clone)]
pub struct ReviewPage {
    /// The agent's run (attempt) that paused and whose list this is; None when none arrived.
    pub attempt: Option<String>,
    /// Paths in the whole list.
    pub count: i64,
    pub paths: Vec<String>,
}

/// What a pool run's unit `unit`'s lists of its attempt `attempt` are stored as, under the run.
pub fn unit_attempt(unit: &str, attempt: &str) -> String {
    format!("unit:{unit}:{attempt}")
}

impl Store {
    /// Stores a page of list `list` of the attempt `attempt` of run `run_id`, its first path
    /// being line `first`; a line stored before is left as it is.
    pub async fn add_review(
        &self,
        run_id: &str,
        attempt: &str,
        list: &str,
        first: i64,
        paths: &[String],
    ) -> Result<(), DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_CREATE_DOC, "review", run_id, &e.to_string());
        let mut tx = self.pool.begin().await.map_err(fail)?;
        for (i, path) in paths.iter().enumerate() {
            sqlx::query(
                "INSERT INTO review_paths (run_id, attempt, list, line, path) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(run_id)
            .bind(attempt)
            .bind(list)
            .bind(first + i as i64)
            .bind(path)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }

    /// The attempt of run `run_id` whose review lists are the latest (the agent's run ids sort
    /// by their start; a pool run's gathered lists are `pool-` and the time), if any arrived.
    /// A pool run's units' own lists are not the run's.
    async fn review_attempt(&self, run_id: &str) -> Result<Option<String>, DomainError> {
        sqlx::query(
            "SELECT MAX(attempt) FROM review_paths WHERE run_id = $1 AND attempt NOT LIKE 'unit:%'",
        )
        .bind(run_id)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| r.try_get::<Option<String>, _>(0))
        .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "review", run_id, &e.to_string()))
    }

    /// Gathers the latest review lists of `units` (a pool run's units that paused for review),
    /// in their order, into one review of their run `run_id`: a new attempt of it, so what a
    /// person reviews and confirms is exactly these lists as they are now.
    pub async fn gather_review(&self, run_id: &str, units: &[String]) -> Result<(), DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_CREATE_DOC, "review", run_id, &e.to_string());
        let attempt = format!("pool-{:013}", now_ms());
        let mut latest = Vec::new();
        for unit in units {
            let from = sqlx::query(
                "SELECT MAX(attempt) FROM review_paths WHERE run_id = $1 AND attempt LIKE $2",
            )
            .bind(run_id)
            .bind(unit_attempt(unit, "%"))
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get::<Option<String>, _>(0))
            .map_err(fail)?;
            if let Some(from) = from {
                latest.push(from);
            }
        }
        let mut tx = self.pool.begin().await.map_err(fail)?;
        for list in REVIEW_LISTS {
            let mut offset = 0i64;
            for from in &latest {
                let added = sqlx::query(
                    "INSERT INTO review_paths (run_id, attempt, list, line, path) \
                     SELECT $1, $2, list, line + $3, path FROM review_paths \
                     WHERE run_id = $4 AND attempt = $5 AND list = $6",
                )
                .bind(run_id)
                .bind(&attempt)
                .bind(offset)
                .bind(run_id)
                .bind(from)
                .bind(list)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
                offset += added.rows_affected() as i64;
            }
        }
        tx.commit().await.map_err(fail)
    }

    /// A page of list `list` of the latest review of run `run_id`, in the list's order.
    pub async fn review(
        &self,
        run_id: &str,
        list: &str,
        limit: i64,
        offset: i64,
    ) -> Result<ReviewPage, DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "review", run_id, &e.to_string());
        let Some(attempt) = self.review_attempt(run_id).await? else {
            return Ok(ReviewPage {
                attempt: None,
                count: 0,
                paths: Vec::new(),
            });
        };
        let count = sqlx::query(
            "SELECT COUNT(*) FROM review_paths WHERE run_id = $1 AND attempt = $2 AND list = $3",
        )
        .bind(run_id)
        .bind(&attempt)
        .bind(list)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| count_of(&r))
        .map_err(fail)?;
        let paths = sqlx::query(
            "SELECT path FROM review_paths WHERE run_id = $1 AND attempt = $2 AND list = $3 \
             ORDER BY line LIMIT $4 OFFSET $5",
        )
        .bind(run_id)
        .bind(&attempt)
        .bind(list)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()
        .map_err(fail)?;
        Ok(ReviewPage {
            attempt: Some(attempt),
            count,
            paths,
        })
    }

    /// What names the latest review of run `run_id` exactly: SHA-256 over its attempt and
    /// every line of its list of deletions, in order, read a thousand at a time. A person
    /// confirms the list with this, so what is carried out is the list they were shown.
    pub async fn review_digest(&self, run_id: &str) -> Result<Option<String>, DomainError> {
        let Some(attempt) = self.review_attempt(run_id).await? else {
            return Ok(None);
        };
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "review", run_id, &e.to_string());
        let mut hash = Sha256::new();
        hash.update(attempt.as_bytes());
        hash.update(b"\n");
        let mut after = -1i64;
        loop {
            let rows = sqlx::query(
                "SELECT line, path FROM review_paths WHERE run_id = $1 AND attempt = $2 \
                 AND list = 'deletes' AND line > $3 ORDER BY line LIMIT 1000",
            )
            .bind(run_id)
            .bind(&attempt)
            .bind(after)
            .fetch_all(&self.pool)
            .await
            .map_err(fail)?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                after = r.try_get("line").map_err(fail)?;
                let path: String = r.try_get("path").map_err(fail)?;
                hash.update(path.as_bytes());
                hash.update(b"\n");
            }
        }
        Ok(Some(godwit_spec::release::hex(&hash.finalize())))
    }

    /// Keeps a sample of run `run_id`'s progress for its chart, unless one was kept lately:
    /// samples are at least 5 s apart, and further apart as the run goes on (a five-hundredth
    /// of its time so far), so a run of weeks keeps a few thousand. The `last` sample, taken
    /// as the run ends, is always kept.
    pub async fn add_sample(
        &self,
        run_id: &str,
        started_ms: i64,
        sample: Sample,
        last: bool,
    ) -> Result<(), DomainError> {
        let gap = if last {
            0
        } else {
            ((sample.at_ms - started_ms) / 500).max(5_000)
        };
        sqlx::query(
            "INSERT INTO run_samples (run_id, at_ms, files, bytes, bytes_per_second) \
             SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS \
             (SELECT 1 FROM run_samples WHERE run_id = $1 AND at_ms > $6) \
             ON CONFLICT DO NOTHING",
        )
        .bind(run_id)
        .bind(sample.at_ms)
        .bind(sample.files)
        .bind(sample.bytes)
        .bind(sample.bytes_per_second)
        .bind(sample.at_ms - gap)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_CREATE_DOC, "progress", run_id, &e.to_string()))?;
        Ok(())
    }

    /// The progress samples of run `run_id`, oldest first.
    pub async fn samples(&self, run_id: &str) -> Result<Vec<Sample>, DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "progress", run_id, &e.to_string());
        sqlx::query(
            "SELECT at_ms, files, bytes, bytes_per_second FROM run_samples WHERE run_id = $1 \
             ORDER BY at_ms",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?
        .iter()
        .map(|r| {
            Ok(Sample {
                at_ms: r.try_get("at_ms")?,
                files: r.try_get("files")?,
                bytes: r.try_get("bytes")?,
                bytes_per_second: r.try_get("bytes_per_second")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(fail)
    }
}

/// The time now, for a sample taken as a progress message arrives.
pub fn sample_now(files: i64, bytes: i64, bytes_per_second: f64) -> Sample {
    Sample {
        at_ms: now_ms(),
        files,
        bytes,
        bytes_per_second,
    }
}

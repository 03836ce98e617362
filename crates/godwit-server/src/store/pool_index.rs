//! A pool migration's index, kept for its agents: each work unit reads its part before it runs
//! and sends it back as it left it (see `pools.rs`). A part is the rows whose paths its
//! include rules select; they are found by ranges of paths below the folders the rules reach
//! (`Filter::scope_prefixes`), then judged by the rules themselves.

use godwit_codes::Code;
use godwit_spec::Filter;
use godwit_spec::paths::{decode_line, encode_line};
use godwit_spec::protocol::IndexRow;
use sqlx::Row;

use super::{DomainError, Store, count_of, failed};

/// Rows read at a time.
const PAGE: i64 = 1000;

/// Rows written or deleted by one statement (each row is 7 parameters; both databases take
/// far more than 700).
const ROWS_A_STATEMENT: usize = 100;

/// Where the next rows of a part of an index start (see `Store::index_part`).
#[derive(Debug, Clone, Default)]
pub struct IndexCursor {
    range: usize,
    after: Option<Vec<u8>>,
}

/// The paths below `prefix` (ending in `/`, or empty for all): from it to the same with its
/// last byte one higher.
fn range(prefix: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (last, head) = prefix.split_last()?;
    let mut hi = head.to_vec();
    hi.push(last + 1);
    Some((prefix.to_vec(), hi))
}

/// Where a part's rows are: one range for each folder its rules reach, or everything.
fn ranges(part: &Filter) -> Vec<Option<(Vec<u8>, Vec<u8>)>> {
    match part.scope_prefixes() {
        Some(prefixes) if !prefixes.iter().any(Vec::is_empty) => {
            let mut all: Vec<_> = prefixes.iter().map(|p| range(p)).collect();
            all.sort();
            all.dedup();
            all
        }
        _ => vec![None],
    }
}

impl Store {
    /// A page of the rows of migration `migration_id`'s index in `part` (a unit's scoped
    /// include rules) in range `at` after path `after`: the rows, and where the next page
    /// starts (None at the end of the range).
    async fn index_range_page(
        &self,
        migration_id: &str,
        at: Option<&(Vec<u8>, Vec<u8>)>,
        after: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, IndexRow)>, DomainError> {
        let fail =
            |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "index", migration_id, &e.to_string());
        let (lo, hi) = match at {
            Some((lo, hi)) => (lo.clone(), Some(hi.clone())),
            None => (Vec::new(), None),
        };
        let rows = sqlx::query(
            "SELECT path, size, mtime_ns, hash, ino, target FROM pool_index \
             WHERE migration_id = $1 AND path >= $2 AND ($3 IS NULL OR path < $3) \
             AND ($4 IS NULL OR path > $4) ORDER BY path LIMIT $5",
        )
        .bind(migration_id)
        .bind(lo)
        .bind(hi)
        .bind(after.map(<[u8]>::to_vec))
        .bind(PAGE)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        rows.iter()
            .map(|r| {
                let path: Vec<u8> = r.try_get("path")?;
                let row = IndexRow {
                    path: encode_line(&path),
                    size: r.try_get::<i64, _>("size")? as u64,
                    mtime_ns: r.try_get("mtime_ns")?,
                    hash: r.try_get("hash")?,
                    ino: r.try_get::<i64, _>("ino")? as u64,
                    target: r.try_get("target")?,
                };
                Ok((path, row))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(fail)
    }

    /// The next rows of migration `migration_id`'s index that `part` selects, from `at` (None
    /// to start): the rows (possibly none) and where the next ones start, None once all
    /// were read. Rows come in path order within each folder the part reaches.
    pub async fn index_part(
        &self,
        migration_id: &str,
        part: &Filter,
        at: Option<IndexCursor>,
    ) -> Result<(Vec<IndexRow>, Option<IndexCursor>), DomainError> {
        let all = ranges(part);
        let at = at.unwrap_or_default();
        let Some(range) = all.get(at.range) else {
            return Ok((Vec::new(), None));
        };
        let rows = self
            .index_range_page(migration_id, range.as_ref(), at.after.as_deref())
            .await?;
        let next = match rows.last() {
            Some((last, _)) if rows.len() as i64 == PAGE => Some(IndexCursor {
                range: at.range,
                after: Some(last.clone()),
            }),
            _ => (at.range + 1 < all.len()).then(|| IndexCursor {
                range: at.range + 1,
                after: None,
            }),
        };
        let ours = rows
            .into_iter()
            .filter(|(path, _)| !part.out_of_scope_file(path))
            .map(|(_, row)| row)
            .collect();
        Ok((ours, next))
    }

    /// Forgets the rows of migration `migration_id`'s index that `part` selects (a unit about
    /// to send its part afresh).
    pub async fn clear_index_part(
        &self,
        migration_id: &str,
        part: &Filter,
    ) -> Result<u64, DomainError> {
        let fail = |e: sqlx::Error| {
            failed(
                Code::DB_ERR_DELETE_DOC,
                "index",
                migration_id,
                &e.to_string(),
            )
        };
        let mut removed = 0u64;
        for at in ranges(part) {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let rows = self
                    .index_range_page(migration_id, at.as_ref(), after.as_deref())
                    .await?;
                let Some((last, _)) = rows.last() else {
                    break;
                };
                after = Some(last.clone());
                let full = rows.len() as i64 == PAGE;
                let gone: Vec<&Vec<u8>> = rows
                    .iter()
                    .map(|(p, _)| p)
                    .filter(|p| !part.out_of_scope_file(p))
                    .collect();
                let mut tx = self.pool.begin().await.map_err(fail)?;
                for chunk in gone.chunks(ROWS_A_STATEMENT) {
                    let list: Vec<String> =
                        (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
                    let sql = format!(
                        "DELETE FROM pool_index WHERE migration_id = $1 AND path IN ({})",
                        list.join(", ")
                    );
                    let mut q = sqlx::query(&sql).bind(migration_id);
                    for path in chunk {
                        q = q.bind((*path).clone());
                    }
                    q.execute(&mut *tx).await.map_err(fail)?;
                }
                tx.commit().await.map_err(fail)?;
                removed += gone.len() as u64;
                if !full {
                    break;
                }
            }
        }
        Ok(removed)
    }

    /// Adds `rows` to migration `migration_id`'s index (a row of a path it holds replaces
    /// it); rows `part` does not select, or whose path is not a line `encode_line` writes,
    /// are left out. How many were added.
    pub async fn add_index_rows(
        &self,
        migration_id: &str,
        part: &Filter,
        rows: &[IndexRow],
    ) -> Result<u64, DomainError> {
        let fail = |e: sqlx::Error| {
            failed(
                Code::DB_ERR_CREATE_DOC,
                "index",
                migration_id,
                &e.to_string(),
            )
        };
        // One row a path (the last sent), in statements of `ROWS_A_STATEMENT` rows.
        let mut ours = std::collections::BTreeMap::new();
        for row in rows {
            if let Some(path) = decode_line(&row.path).filter(|p| !part.out_of_scope_file(p)) {
                ours.insert(path, row);
            }
        }
        let ours: Vec<(Vec<u8>, &IndexRow)> = ours.into_iter().collect();
        let mut tx = self.pool.begin().await.map_err(fail)?;
        for chunk in ours.chunks(ROWS_A_STATEMENT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let n = i * 7;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        n + 1,
                        n + 2,
                        n + 3,
                        n + 4,
                        n + 5,
                        n + 6,
                        n + 7
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO pool_index (migration_id, path, size, mtime_ns, hash, ino, target) \
                 VALUES {} ON CONFLICT (migration_id, path) DO UPDATE \
                 SET size = excluded.size, mtime_ns = excluded.mtime_ns, hash = excluded.hash, \
                 ino = excluded.ino, target = excluded.target",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (path, row) in chunk {
                q = q
                    .bind(migration_id)
                    .bind(path.clone())
                    .bind(row.size as i64)
                    .bind(row.mtime_ns)
                    .bind(&row.hash)
                    .bind(row.ino as i64)
                    .bind(row.target.clone());
            }
            q.execute(&mut *tx).await.map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
        Ok(ours.len() as u64)
    }

    /// The files in migration `migration_id`'s index: what a pool true-up's share limit on
    /// deletions (`maxDelete` as a percentage, or the default) is a share of.
    pub async fn index_files(&self, migration_id: &str) -> Result<i64, DomainError> {
        sqlx::query("SELECT COUNT(*) FROM pool_index WHERE migration_id = $1")
            .bind(migration_id)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| count_of(&r))
            .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "index", migration_id, &e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_s_rows_are_one_range() {
        assert_eq!(range(b"a/b/"), Some((b"a/b/".to_vec(), b"a/b0".to_vec())));
        assert_eq!(range(b""), None);
    }
}

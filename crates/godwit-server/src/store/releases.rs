//! Agent releases: their metadata and their binary, in pieces of at most `CHUNK` bytes, so that
//! an upload and a download stream through the store without holding a binary in memory.

use godwit_codes::Code;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DomainError, Store, StoreFailure, failed, new_id, now_ms, plausible_id};
use crate::records::Release;

/// The size of a stored piece of a release.
pub const CHUNK: usize = 1 << 20;

fn release_of(r: &AnyRow) -> Result<Release, sqlx::Error> {
    Ok(Release {
        id: r.try_get("id")?,
        version: r.try_get("version")?,
        platform: r.try_get("platform")?,
        sha256: r.try_get("sha256")?,
        size: r.try_get("size")?,
        signature: r.try_get("signature")?,
        created_ms: r.try_get("created_ms")?,
    })
}

impl Store {
    /// A release being uploaded (not listed until `finish_release`). An earlier upload of the
    /// same version and platform that never finished is replaced; a finished one is AZSM1052.
    pub async fn begin_release(
        &self,
        m: &godwit_spec::release::Manifest,
    ) -> Result<String, DomainError> {
        let fail = |r: &str| failed(Code::DB_ERR_CREATE_DOC, "release", &m.version, r);
        let stale = sqlx::query(
            "SELECT id FROM releases WHERE version = $1 AND platform = $2 AND ready = 0",
        )
        .bind(&m.version)
        .bind(&m.platform)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| fail(&e.to_string()))?;
        if let Some(r) = stale {
            let id: String = r.try_get("id").map_err(|e| fail(&e.to_string()))?;
            self.drop_release(&id).await?;
        }
        let id = new_id();
        sqlx::query(
            "INSERT INTO releases (id, version, platform, sha256, size, signature, ready, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
        )
        .bind(&id)
        .bind(&m.version)
        .bind(&m.platform)
        .bind(&m.sha256)
        .bind(i64::try_from(m.size).unwrap_or(i64::MAX))
        .bind(&m.signature)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| match StoreFailure::from(e) {
            StoreFailure::Duplicate => DomainError::new(
                Code::GODWIT_RELEASE_EXISTS,
                &[("version", &m.version), ("platform", &m.platform)],
            ),
            StoreFailure::Failed(r) => fail(&r),
        })?;
        Ok(id)
    }

    /// Stores piece `seq` of release `id`.
    pub async fn add_release_chunk(
        &self,
        id: &str,
        seq: i64,
        data: &[u8],
    ) -> Result<(), DomainError> {
        sqlx::query("INSERT INTO release_chunks (release_id, seq, data) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(seq)
            .bind(data.to_vec())
            .execute(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_CREATE_DOC, "release", id, &e.to_string()))?;
        Ok(())
    }

    /// The upload of release `id` is whole and verified: it is listed and handed out.
    pub async fn finish_release(&self, id: &str) -> Result<Release, DomainError> {
        sqlx::query("UPDATE releases SET ready = 1 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "release", id, &e.to_string()))?;
        self.get_release(id).await
    }

    /// Removes release `id` and its pieces (a failed upload, or one an admin deletes).
    pub async fn drop_release(&self, id: &str) -> Result<(), DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_DELETE_DOC, "release", id, &e.to_string());
        sqlx::query("DELETE FROM release_chunks WHERE release_id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        sqlx::query("DELETE FROM releases WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }

    pub async fn list_releases(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Release>), DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "releases", "", &e.to_string());
        let count = sqlx::query("SELECT COUNT(*) FROM releases WHERE ready = 1")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| super::count_of(&r))
            .map_err(fail)?;
        let rows = sqlx::query(
            "SELECT * FROM releases WHERE ready = 1 ORDER BY created_ms DESC, id DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        let items = rows
            .iter()
            .map(release_of)
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        Ok((count, items))
    }

    pub async fn get_release(&self, id: &str) -> Result<Release, DomainError> {
        if !plausible_id(id) {
            return Err(DomainError::not_found("release", id));
        }
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOC, "release", id, &e.to_string());
        let row = sqlx::query("SELECT * FROM releases WHERE id = $1 AND ready = 1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(fail)?;
        match row {
            Some(r) => release_of(&r).map_err(fail),
            None => Err(DomainError::not_found("release", id)),
        }
    }

    /// The release of `version` for `platform`.
    pub async fn find_release(
        &self,
        version: &str,
        platform: &str,
    ) -> Result<Release, DomainError> {
        let what = format!("{version} for {platform}");
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOC, "release", &what, &e.to_string());
        let row = sqlx::query(
            "SELECT * FROM releases WHERE version = $1 AND platform = $2 AND ready = 1",
        )
        .bind(version)
        .bind(platform)
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)?;
        match row {
            Some(r) => release_of(&r).map_err(fail),
            None => Err(DomainError::not_found("release", &what)),
        }
    }

    /// Piece `seq` of release `id`; None past its end.
    pub async fn release_chunk(&self, id: &str, seq: i64) -> Result<Option<Vec<u8>>, DomainError> {
        let row = sqlx::query("SELECT data FROM release_chunks WHERE release_id = $1 AND seq = $2")
            .bind(id)
            .bind(seq)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_GET_DOC, "release", id, &e.to_string()))?;
        row.map(|r| r.try_get::<Vec<u8>, _>("data"))
            .transpose()
            .map_err(|e| failed(Code::DB_ERR_GET_DOC, "release", id, &e.to_string()))
    }
}

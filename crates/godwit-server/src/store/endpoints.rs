//! Endpoints: the storages migrations read and write, named by their URI.

use godwit_codes::Code;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DomainError, Store, StoreFailure, failed, new_id, now_ms, plausible_id};

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

impl Store {
    pub async fn create_endpoint(
        &self,
        name: &str,
        kind: &str,
        uri: &str,
        credential_ref: Option<&str>,
    ) -> Result<Endpoint, DomainError> {
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
            StoreFailure::Duplicate => DomainError::new(Code::HTTP_CONFLICT, &[])
                .details(format!("An endpoint named {name} already exists.")),
            StoreFailure::Failed(r) => failed(Code::DB_ERR_CREATE_DOC, "endpoint", "", &r),
        })?;
        Ok(e)
    }

    /// A page of endpoints; with `agent`, only those its migrations read or write.
    pub async fn list_endpoints(
        &self,
        agent: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Endpoint>), DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "endpoints", "", &e.to_string());
        // $1 NULL: every endpoint; else those of the agent's migrations.
        const OF_AGENT: &str = "(CAST($1 AS TEXT) IS NULL OR id IN (SELECT source_endpoint FROM migrations \
             WHERE agent_id = $1 UNION SELECT target_endpoint FROM migrations WHERE agent_id = $1))";
        let count: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM endpoints WHERE {OF_AGENT}"))
            .bind(agent)
            .fetch_one(&self.pool)
            .await
            .map_err(fail)?
            .try_get(0)
            .map_err(fail)?;
        let rows = sqlx::query(&format!(
            "SELECT id, name, kind, uri, credential_ref, created_ms FROM endpoints \
             WHERE {OF_AGENT} ORDER BY created_ms, id LIMIT $2 OFFSET $3"
        ))
        .bind(agent)
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

    /// Whether a migration of `agent` reads or writes the endpoint `id`.
    pub async fn endpoint_used_by(&self, id: &str, agent: &str) -> Result<bool, DomainError> {
        let n = sqlx::query(
            "SELECT COUNT(*) FROM migrations WHERE agent_id = $1 \
             AND (source_endpoint = $2 OR target_endpoint = $2)",
        )
        .bind(agent)
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .map_err(|e| failed(Code::DB_ERR_GET_DOCS, "migrations", id, &e.to_string()))?;
        Ok(n > 0)
    }

    pub async fn get_endpoint(&self, id: &str) -> Result<Endpoint, DomainError> {
        if !plausible_id(id) {
            return Err(DomainError::not_found("endpoint", id));
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
            None => Err(DomainError::not_found("endpoint", id)),
        }
    }

    pub async fn delete_endpoint(&self, id: &str) -> Result<(), DomainError> {
        if !plausible_id(id) {
            return Err(DomainError::not_found("endpoint", id));
        }
        let done = sqlx::query("DELETE FROM endpoints WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_DELETE_DOC, "endpoint", id, &e.to_string()))?;
        if done.rows_affected() == 0 {
            return Err(DomainError::not_found("endpoint", id));
        }
        Ok(())
    }
}

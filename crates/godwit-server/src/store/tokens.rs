//! Tokens the control plane issued, and the audit log. A token is kept by its id (the `jti`
//! claim), never by its text: the list shows who holds what, and revoking one refuses it on
//! every request from then on. The audit log is appended to and read, never changed.

use godwit_codes::Code;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DomainError, Store, count_of, failed, new_id, now_ms, plausible_id};

/// An issued token, without its secret text.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenRecord {
    /// The token's id (its `jti` claim).
    pub id: String,
    /// Who it is for.
    pub subject: String,
    /// admin, operator, viewer or agent.
    pub role: String,
    /// The agent an agent token is bound to.
    pub agent_id: Option<String>,
    pub issued_ms: i64,
    pub expires_ms: i64,
    /// When it was revoked; None while it is valid.
    pub revoked_ms: Option<i64>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

fn token_of(r: &AnyRow) -> Result<TokenRecord, sqlx::Error> {
    Ok(TokenRecord {
        id: r.try_get("id")?,
        subject: r.try_get("subject")?,
        role: r.try_get("role")?,
        agent_id: r.try_get("agent_id")?,
        issued_ms: r.try_get("issued_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        revoked_ms: r.try_get("revoked_ms")?,
        revoked_by: r.try_get("revoked_by")?,
    })
}

/// One line of the audit log: who did what to what, when, and how it ended.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub at_ms: i64,
    /// The token's subject (or `cli:USER` for what the command line did on this host).
    pub subject: String,
    /// The token's role.
    pub role: String,
    /// What was asked: `command.start`, `agent.register`, `token.revoke`, `report.download`...
    pub action: String,
    /// What it was asked of: the request's path, or the id the command line named.
    pub target: String,
    /// The outcome's code: an activity (13), a success (HTTP201) or the refusal (HTTP403, 662).
    pub outcome: String,
    /// The HTTP status of the answer; 0 for what the command line did.
    pub status: i64,
}

fn audit_of(r: &AnyRow) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        id: r.try_get("id")?,
        at_ms: r.try_get("at_ms")?,
        subject: r.try_get("subject")?,
        role: r.try_get("role")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        outcome: r.try_get("outcome")?,
        status: r.try_get("status")?,
    })
}

impl Store {
    pub async fn record_token(&self, t: &TokenRecord) -> Result<(), DomainError> {
        sqlx::query(
            "INSERT INTO tokens (id, subject, role, agent_id, issued_ms, expires_ms, revoked_ms, revoked_by) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)",
        )
        .bind(&t.id)
        .bind(&t.subject)
        .bind(&t.role)
        .bind(&t.agent_id)
        .bind(t.issued_ms)
        .bind(t.expires_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_CREATE_DOC, "token", &t.id, &e.to_string()))?;
        Ok(())
    }

    /// The token with id `id`, if the control plane issued it.
    pub async fn token(&self, id: &str) -> Result<Option<TokenRecord>, DomainError> {
        if !plausible_id(id) {
            return Ok(None);
        }
        let row = sqlx::query("SELECT * FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| failed(Code::DB_ERR_GET_DOC, "token", id, &e.to_string()))?;
        row.as_ref()
            .map(token_of)
            .transpose()
            .map_err(|e| failed(Code::DB_ERR_GET_DOC, "token", id, &e.to_string()))
    }

    /// Issued tokens, newest first.
    pub async fn list_tokens(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<TokenRecord>), DomainError> {
        self.page("tokens", "issued_ms DESC, id DESC", limit, offset, token_of)
            .await
    }

    /// A page of the whole `table` in `order`, each row read with `of` (803 when it fails).
    async fn page<T>(
        &self,
        table: &str,
        order: &str,
        limit: i64,
        offset: i64,
        of: fn(&AnyRow) -> Result<T, sqlx::Error>,
    ) -> Result<(i64, Vec<T>), DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, table, "", &e.to_string());
        let count = sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .and_then(|r| count_of(&r))
            .map_err(fail)?;
        let rows = sqlx::query(&format!(
            "SELECT * FROM {table} ORDER BY {order} LIMIT $1 OFFSET $2"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        let items = rows
            .iter()
            .map(of)
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        Ok((count, items))
    }

    /// Revokes the token `id` (800 if there is none); revoking it again keeps the first time.
    pub async fn revoke_token(&self, id: &str, by: &str) -> Result<TokenRecord, DomainError> {
        if self.token(id).await?.is_none() {
            return Err(DomainError::not_found("token", id));
        }
        sqlx::query(
            "UPDATE tokens SET revoked_ms = $1, revoked_by = $2 WHERE id = $3 AND revoked_ms IS NULL",
        )
        .bind(now_ms())
        .bind(by)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_UPDATE_DOC, "token", id, &e.to_string()))?;
        self.token(id)
            .await?
            .ok_or_else(|| DomainError::not_found("token", id))
    }

    /// Appends a line to the audit log.
    pub async fn audit(
        &self,
        subject: &str,
        role: &str,
        action: &str,
        target: &str,
        outcome: &str,
        status: u16,
    ) -> Result<(), DomainError> {
        sqlx::query(
            "INSERT INTO audit (id, at_ms, subject, role, action, target, outcome, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_id())
        .bind(now_ms())
        .bind(subject)
        .bind(role)
        .bind(action)
        .bind(target)
        .bind(outcome)
        .bind(i64::from(status))
        .execute(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_CREATE_DOC, "audit entry", "", &e.to_string()))?;
        Ok(())
    }

    /// The audit log, newest first.
    pub async fn list_audit(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<AuditEntry>), DomainError> {
        self.page("audit", "id DESC", limit, offset, audit_of).await
    }
}

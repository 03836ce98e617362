//! `/v1/tokens`: the tokens the control plane issued, listed without their text, made and
//! revoked by an admin. `godwit token create|list|revoke` does the same on the control plane's
//! host, in the same store.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiQuery, Listing, Page};
use crate::AppState;
use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::store::TokenRecord;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// admin, operator or viewer (an agent's token comes with its registration).
    #[schema(pattern = "^(admin|operator|viewer)$")]
    pub role: String,
    /// Who the token is for, as the audit log names them.
    #[schema(min_length = 1, max_length = 200)]
    pub subject: String,
    /// How long it is valid: 1h, 30d, 1y (default 30d).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 40)]
    pub ttl: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    /// The token: shown this once, kept nowhere.
    pub token: String,
    pub record: TokenRecord,
}

/// The longest a token may be valid.
const MAX_TTL: std::time::Duration = std::time::Duration::from_secs(5 * 366 * 86400);

/// How long `text` says, 1 s to 5 years; 605 otherwise.
pub fn parse_ttl(text: &str) -> Result<std::time::Duration, String> {
    let ttl = humantime::parse_duration(text)
        .map_err(|e| format!("{text}: {e} (write it as 1h, 30d or 1y)"))?;
    if ttl.as_secs() == 0 || ttl > MAX_TTL {
        return Err(format!("{text}: a token is valid for 1 s to 5 years"));
    }
    Ok(ttl)
}

#[utoipa::path(get, path = "/v1/tokens", params(Page), security(("bearer" = [])), responses(
    (status = 200, description = "A page of tokens, newest first, without their text", body = Listing<TokenRecord>),
    (status = 400, description = "limit or offset out of range", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Only an admin", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Listing<TokenRecord>>, ApiError> {
    caller.require_admin()?;
    let (limit, offset) = page.bounds()?;
    let (count, items) = state.store.list_tokens(limit, offset).await?;
    Ok(Json(Listing { count, items }))
}

#[utoipa::path(post, path = "/v1/tokens", request_body = NewToken, security(("bearer" = [])), responses(
    (status = 201, description = "The token, shown this once, and its record", body = IssuedToken),
    (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Only an admin", body = crate::error::ErrorBody),
    (status = 413, description = "Body too large", body = crate::error::ErrorBody),
    (status = 422, description = "Invalid content (605)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    caller.require_admin()?;
    let role = match Role::parse(&req.role) {
        Some(r @ (Role::Admin | Role::Operator | Role::Viewer)) => r,
        _ => {
            return Err(ApiError::invalid(
                "role: admin, operator or viewer (an agent's token comes from POST /v1/agents)",
            ));
        }
    };
    let subject = req.subject.trim();
    if subject.is_empty() || subject.chars().count() > 200 || subject.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(
            "subject: 1 to 200 characters, no control characters",
        ));
    }
    let ttl = parse_ttl(req.ttl.as_deref().unwrap_or("30d"))
        .map_err(|e| ApiError::invalid(format!("ttl: {e}")))?;
    let (token, record) =
        crate::auth::issue(&state.store, &state.secret, subject, role, None, ttl).await?;
    Ok((StatusCode::CREATED, Json(IssuedToken { token, record })))
}

#[utoipa::path(post, path = "/v1/tokens/{id}/revoke", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "Revoked: refused from now on", body = TokenRecord),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Only an admin", body = crate::error::ErrorBody),
    (status = 404, description = "No such token (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenRecord>, ApiError> {
    caller.require_admin()?;
    Ok(Json(
        state.store.revoke_token(&id, &caller.claims.sub).await?,
    ))
}

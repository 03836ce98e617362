//! `/v1/endpoints`: the storages migrations read from and write to.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use godwit_spec::Location;
use serde::Deserialize;

use super::{ApiJson, ApiQuery, Listing, Page};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::Endpoint;

/// A new endpoint.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// Unique among endpoints.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// `local`, `s3`, `azure-blob`, `sftp` or `memory`; it must match the URI.
    #[schema(pattern = "^(local|s3|azure-blob|sftp|memory)$")]
    pub kind: String,
    /// `/mnt/share`, `s3://bucket/prefix`, `az://container/prefix`, `sftp://user@host:22/path`.
    #[schema(min_length = 1, max_length = 4096)]
    pub uri: String,
    /// The name of the credentials the agent uses (never the secret itself).
    #[schema(min_length = 1, max_length = 200)]
    pub credential_ref: Option<String>,
}

const KINDS: &[&str] = &["local", "s3", "azure-blob", "sftp", "memory"];

/// Checks an endpoint: a known kind, a URI godwit can parse, of that kind, and for a local
/// path an absolute one (the agent's working folder is no reference point).
fn validate(req: &NewEndpoint) -> Result<(), ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name: 1 to 200 characters, no control characters",
        ));
    }
    if !KINDS.contains(&req.kind.as_str()) {
        return Err(ApiError::invalid(format!(
            "kind: {} is not one of {}",
            req.kind,
            KINDS.join(", ")
        )));
    }
    if req.uri.trim().is_empty() || req.uri.chars().any(char::is_control) {
        return Err(ApiError::invalid("uri: empty or with control characters"));
    }
    if let Some(what) = godwit_spec::location::credential_in(&req.uri) {
        // Said without the secret: the answer, the logs and the database never hold it.
        return Err(ApiError::new(
            godwit_codes::Code::ENDPOINT_CREDENTIAL_IN_URI,
            &[("what", what)],
        ));
    }
    let location =
        Location::parse(&req.uri).map_err(|e| ApiError::invalid(format!("uri: {}", e.message)))?;
    let kind = location.kind().as_str();
    if kind != req.kind {
        return Err(ApiError::invalid(format!(
            "kind: {} does not match the URI, which is {kind}",
            req.kind
        )));
    }
    if let Location::Local(p) = &location
        && !p.is_absolute()
    {
        return Err(ApiError::invalid("uri: a local path must be absolute"));
    }
    if let Some(c) = &req.credential_ref
        && (c.is_empty() || c.len() > 200 || c.chars().any(char::is_control))
    {
        return Err(ApiError::invalid(
            "credential_ref: 1 to 200 characters, no control characters",
        ));
    }
    Ok(())
}

/// What credential the URI `uri` holds, if it holds one: a password in the user part of an
/// SFTP URI, user information in an object store's, or a key, signature or token in the
/// query. Looked at before the URI is parsed, so that no message ever repeats it.
#[utoipa::path(get, path = "/v1/endpoints", params(Page), security(("bearer" = [])), responses(
    (status = 200, description = "A page of endpoints", body = Listing<Endpoint>),
    (status = 400, description = "limit or offset out of range", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Listing<Endpoint>>, ApiError> {
    let (limit, offset) = page.bounds()?;
    let (count, items) = state
        .store
        .list_endpoints(caller.agent(), limit, offset)
        .await?;
    Ok(Json(Listing { count, items }))
}

/// Creates an endpoint, validated first: 422 with the reason when it is not usable.
#[utoipa::path(post, path = "/v1/endpoints", request_body = NewEndpoint, security(("bearer" = [])), responses(
    (status = 201, description = "Created", body = Endpoint),
    (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "The token may not change anything", body = crate::error::ErrorBody),
    (status = 409, description = "The name is taken", body = crate::error::ErrorBody),
    (status = 413, description = "Body too large", body = crate::error::ErrorBody),
    (status = 422, description = "Invalid content (605) with the reason", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn create_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewEndpoint>,
) -> Result<(StatusCode, Json<Endpoint>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(create(&state, &caller, req).await?),
    ))
}

/// Creates an endpoint (operator): the API's and the dashboard's.
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    req: NewEndpoint,
) -> Result<Endpoint, ApiError> {
    caller.require_operator()?;
    validate(&req)?;
    let e = state
        .store
        .create_endpoint(
            req.name.trim(),
            &req.kind,
            req.uri.trim(),
            req.credential_ref.as_deref(),
        )
        .await?;
    Ok(e)
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/endpoints/{id}", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "The endpoint", body = Endpoint),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "An agent token, for an endpoint none of its migrations uses", body = crate::error::ErrorBody),
    (status = 404, description = "No such endpoint (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn get_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Endpoint>, ApiError> {
    let endpoint = state.store.get_endpoint(&id).await?;
    if let Some(agent) = caller.agent()
        && !state.store.endpoint_used_by(&id, agent).await?
    {
        return Err(ApiError::new(godwit_codes::Code::HTTP_FORBIDDEN, &[])
            .details("No migration of this agent reads or writes this endpoint."));
    }
    Ok(Json(endpoint))
}

/// Deletes an endpoint.
#[utoipa::path(delete, path = "/v1/endpoints/{id}", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "The token may not change anything", body = crate::error::ErrorBody),
    (status = 404, description = "No such endpoint (800)", body = crate::error::ErrorBody),
    (status = 409, description = "Migrations use it", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_operator()?;
    state.store.get_endpoint(&id).await?;
    let uses = state.store.endpoint_uses(&id).await?;
    if uses > 0 {
        return Err(
            ApiError::new(godwit_codes::Code::HTTP_CONFLICT, &[]).details(format!(
                "{uses} migration(s) use this endpoint; delete them first."
            )),
        );
    }
    state.store.delete_endpoint(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

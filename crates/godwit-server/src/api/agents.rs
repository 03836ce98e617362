//! `/v1/agents`: the processes next to the data. An admin registers one and gets its token;
//! the agent itself connects with it (the agent issue adds the connection).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use godwit_codes::Code;
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiQuery, Listing, Page};
use crate::AppState;
use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::records::Agent;

/// A new agent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    /// Unique among agents.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The agent's semantic version, when known (`0.1.0`).
    #[serde(default)]
    #[schema(pattern = "^[0-9]+[.][0-9]+[.][0-9]+([-+].*)?$")]
    pub version: Option<String>,
}

/// A registered agent and the token it connects with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegisteredAgent {
    pub agent: Agent,
    /// An agent token bound to this agent, valid for a year.
    pub token: String,
}

fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Registers an agent (admin).
#[utoipa::path(post, path = "/v1/agents", request_body = NewAgent, security(("bearer" = [])), responses(
    (status = 201, description = "Registered", body = RegisteredAgent),
    (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Only an admin registers agents", body = crate::error::ErrorBody),
    (status = 409, description = "The name is taken (626)", body = crate::error::ErrorBody),
    (status = 413, description = "Body too large", body = crate::error::ErrorBody),
    (status = 422, description = "Invalid content (605, 624)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn create_agent(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewAgent>,
) -> Result<(StatusCode, Json<RegisteredAgent>), ApiError> {
    let registered = register(&state, &caller, &req.name, req.version).await?;
    Ok((StatusCode::CREATED, Json(registered)))
}

/// Registers an agent (admin): its record, and the token it connects with (a year). The API's
/// and the dashboard's.
pub(crate) async fn register(
    state: &AppState,
    caller: &Caller,
    name: &str,
    version: Option<String>,
) -> Result<RegisteredAgent, ApiError> {
    caller.require_admin()?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name: 1 to 200 characters, no control characters",
        ));
    }
    let version = version.unwrap_or_else(|| "0.0.0".into());
    if !is_semver(&version) {
        return Err(ApiError::new(
            Code::ERR_SEMVER_PARSE,
            &[("version", &version)],
        ));
    }
    let agent = state.store.create_agent(name, &version).await?;
    let (token, _) = crate::auth::issue(
        &state.store,
        &state.secret,
        &agent.name,
        Role::Agent,
        Some(&agent.id),
        std::time::Duration::from_secs(365 * 86400),
    )
    .await?;
    Ok(RegisteredAgent { agent, token })
}

/// The agents, a page at a time.
#[utoipa::path(get, path = "/v1/agents", params(Page), security(("bearer" = [])), responses(
    (status = 200, description = "A page of agents", body = Listing<Agent>),
    (status = 400, description = "limit or offset out of range", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Agent tokens see only their agent", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn list_agents(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Listing<Agent>>, ApiError> {
    caller.require_person()?;
    let (limit, offset) = page.bounds()?;
    let (count, items) = state.store.list_agents(limit, offset).await?;
    Ok(Json(Listing { count, items }))
}

/// One agent.
#[utoipa::path(get, path = "/v1/agents/{id}", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "The agent", body = Agent),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Another agent's token", body = crate::error::ErrorBody),
    (status = 404, description = "No such agent (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn get_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Agent>, ApiError> {
    caller.may_act_for_agent(Some(&id))?;
    Ok(Json(state.store.get_agent(&id).await?))
}

/// Deactivates an agent (902): it takes no more commands until reactivated.
#[utoipa::path(post, path = "/v1/agents/{id}/deactivate", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "Deactivated", body = Agent),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Only an admin", body = crate::error::ErrorBody),
    (status = 404, description = "No such agent (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn deactivate_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(deactivate(&state, &caller, &id).await?))
}

/// Deactivates an agent (admin): it is refused from then on (862, 902).
pub(crate) async fn deactivate(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Agent, ApiError> {
    caller.require_admin()?;
    Ok(state
        .store
        .set_agent_state(id, Code::AGENT_STATE_DEACTIVATED, false)
        .await?)
}

/// Deletes an agent (903). One that still has migrations is 409 with 625.
#[utoipa::path(delete, path = "/v1/agents/{id}", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Only an admin", body = crate::error::ErrorBody),
    (status = 404, description = "No such agent (800)", body = crate::error::ErrorBody),
    (status = 409, description = "It has migrations (625)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn delete_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes an agent (admin; 625 while it has migrations).
pub(crate) async fn delete(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    caller.require_admin()?;
    state.store.delete_agent(id).await?;
    Ok(())
}

/// Retires an agent (admin): it stops its runs, removes its state directory, says so and leaves
/// for good (193, then 194 once it has stayed away; 195 if it comes back, 196 if it does not
/// finish in time). It must be connected (693); not while it upgrades (680).
#[utoipa::path(post, path = "/v1/agents/{id}/retire", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 202, description = "Told to retire (193)", body = Agent),
    (status = 404, description = "No such agent (800)", body = crate::error::ErrorBody),
    (status = 409, description = "Not connected (693), or upgrading (680, 681)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn retire_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    caller.require_admin()?;
    let agent = crate::retire::request(&state, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(agent)))
}

/// What to browse: a folder of an endpoint, as a migration's source names one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BrowseRequest {
    pub endpoint_id: String,
    /// The folder under the endpoint's URI; `/` for its root.
    #[schema(pattern = "^/", max_length = 4096)]
    pub path: String,
}

/// One folder found by a browse.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Folder {
    pub name: String,
    /// Its path under the endpoint, as a migration's source takes it.
    pub path: String,
}

/// The folders directly under a browsed folder.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Browse {
    pub agent_id: String,
    pub endpoint_id: String,
    pub path: String,
    /// 232 (SCAN_SOURCE : SUCCEEDED).
    pub status: crate::records::CodeName,
    /// Sorted by name.
    pub folders: Vec<Folder>,
    /// Folders whose names are not UTF-8: a path cannot name them, so they are not offered.
    pub unnamed: u64,
}

/// Lists the folders directly under a folder of an endpoint, as the agent sees it: one level,
/// for choosing a migration's source (the dashboard's folder picker). The agent must be
/// active (695) and not browsing already (696), and answer within GODWIT_BROWSE_WAIT (697); a
/// folder it cannot list is 9050 (or the store's code), one with too many folders 638.
#[utoipa::path(post, path = "/v1/agents/{id}/browse", params(("id" = String, Path)), request_body = BrowseRequest,
    security(("bearer" = [])), responses(
    (status = 200, description = "The folders (232)", body = Browse),
    (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
    (status = 403, description = "The token may not change anything", body = crate::error::ErrorBody),
    (status = 404, description = "No such agent or endpoint (800)", body = crate::error::ErrorBody),
    (status = 409, description = "The agent is inactive (695), browsing already (696), silent (697), or too old to browse (9150)", body = crate::error::ErrorBody),
    (status = 413, description = "Body too large", body = crate::error::ErrorBody),
    (status = 422, description = "A bad path, a folder the agent cannot list (9050, 1001-1004, 1025), or too many folders to offer (638)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn browse_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<BrowseRequest>,
) -> Result<Json<Browse>, ApiError> {
    Ok(Json(browse(&state, &caller, &id, req).await?))
}

/// Browses a folder through agent `id` (operator): the API's and the dashboard's.
pub(crate) async fn browse(
    state: &AppState,
    caller: &Caller,
    id: &str,
    req: BrowseRequest,
) -> Result<Browse, ApiError> {
    caller.require_operator()?;
    super::migrations::check_path("path", &req.path)?;
    let agent = state.store.get_agent(id).await?;
    let endpoint = state.store.get_endpoint(&req.endpoint_id).await?;
    let inactive = || ApiError::new(Code::SCAN_SOURCE_AGENT_INACTIVE_ERR, &[("agent_id", id)]);
    if agent.state.code != Code::AGENT_STATE_ACTIVE.id() || !state.hub.is_connected(id).await {
        return Err(inactive());
    }
    crate::upgrades::can(&agent, "browse", "browsing a source")?;
    let location = godwit_spec::protocol::join_location(&endpoint.uri, &req.path);
    let answer = state
        .hub
        .browse(id, &location)
        .await
        .map_err(|why| match why {
            crate::hub::NoAnswer::Busy => {
                ApiError::new(Code::SCAN_SOURCE_INPROGRESS_ERR, &[("agent_id", id)])
            }
            crate::hub::NoAnswer::Gone => inactive(),
            crate::hub::NoAnswer::Late => ApiError::new(
                Code::SCAN_SOURCE_TIMEOUT_ERR,
                &[("agent_id", id), ("what", &format!("browsing {location}"))],
            ),
        })?;
    if let Some(e) = answer.error {
        let code = Code::lookup(&e.code).unwrap_or(Code::SCAN_SOURCE_INVALID_FOLDER_HIERARCHY);
        let mut error = ApiError::new(code, &[]);
        error.message = Some(e.message);
        if code.info().http_status.is_none() {
            error.status = Some(StatusCode::UNPROCESSABLE_ENTITY);
        }
        return Err(error);
    }
    let base = req.path.trim_end_matches('/');
    let folders = answer
        .folders
        .into_iter()
        .map(|name| Folder {
            path: format!("{base}/{name}"),
            name,
        })
        .collect();
    Ok(Browse {
        agent_id: id.to_string(),
        endpoint_id: req.endpoint_id,
        path: req.path,
        status: crate::records::CodeName::of(Code::SCAN_SOURCE_SUCCEEDED),
        folders,
        unnamed: answer.unnamed,
    })
}

//! `/v1/releases` and agent upgrades: an admin uploads a signed godwit binary, agents download
//! it (resuming with `Range`), and `POST /v1/agents/{id}/upgrade` asks an agent to move to it.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use godwit_codes::Code;
use godwit_spec::release::Manifest;
use serde::Deserialize;

use super::{ApiJson, ApiQuery, Listing, Page};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::records::{Release, Upgrade};

/// The largest binary a release may have: 1 GiB.
pub const MAX_RELEASE_BYTES: u64 = 1 << 30;

fn refused(m: &Manifest, reason: &str) -> ApiError {
    ApiError::new(
        Code::GODWIT_RELEASE_UNVERIFIED,
        &[
            ("version", &m.version),
            ("platform", &m.platform),
            ("reason", reason),
        ],
    )
}

/// Uploads a release (admin): the binary is the body, its manifest (from `godwit release
/// sign`) the query. Kept only when the binary has the signed size and SHA-256 and the
/// signature verifies with the control plane's release key (AZSM1050; AZSM1051 without a
/// key); nothing is kept of a refused upload.
#[utoipa::path(post, path = "/v1/releases", params(
        ("version" = String, Query, description = "The version the binary reports"),
        ("platform" = String, Query, description = "linux-x86_64, linux-aarch64, ..."),
        ("sha256" = String, Query, description = "The binary's SHA-256, hex"),
        ("size" = u64, Query, description = "The binary's size in bytes"),
        ("signature" = String, Query, description = "The Ed25519 signature, base64"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    security(("bearer" = [])), responses(
    (status = 201, description = "Kept", body = Release),
    (status = 400, description = "A query parameter missing or unreadable", body = crate::error::ErrorBody),
    (status = 409, description = "No release key (AZSM1051), or the version exists for the platform (AZSM1052)", body = crate::error::ErrorBody),
    (status = 413, description = "Larger than 1 GiB", body = crate::error::ErrorBody),
    (status = 422, description = "Not a semantic version (624), or the binary or signature does not verify (AZSM1050)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn upload_release(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<ApiQuery<Manifest>, ApiError>,
    body: Body,
) -> Result<(StatusCode, Json<Release>), ApiError> {
    caller.require_admin()?;
    let ApiQuery(m) = query?;
    let Some(key) = state.release_key else {
        return Err(ApiError::new(Code::GODWIT_RELEASE_KEY_MISSING, &[]));
    };
    if !godwit_spec::release::is_version(&m.version) {
        return Err(ApiError::new(
            Code::ERR_SEMVER_PARSE,
            &[("version", &m.version)],
        ));
    }
    if m.size > MAX_RELEASE_BYTES {
        return Err(ApiError::new(
            Code::HTTP_PAYLOAD_TOO_LARGE,
            &[("limit", &MAX_RELEASE_BYTES.to_string())],
        ));
    }
    if m.platform.is_empty() || m.platform.len() > 64 || m.platform.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "platform: 1 to 64 characters, such as linux-x86_64",
        ));
    }
    // The signature first: nothing is stored of a release its key did not sign.
    godwit_spec::release::verify(&key, &m).map_err(|why| refused(&m, &why))?;
    let id = state.store.begin_release(&m).await?;
    match receive(&state, &id, &m, body).await {
        Ok(()) => {
            let release = state.store.finish_release(&id).await?;
            caller.note(format!("release.upload {}", release.version));
            Ok((StatusCode::CREATED, Json(release)))
        }
        Err(e) => {
            let _ = state.store.drop_release(&id).await;
            Err(e)
        }
    }
}

/// Stores the body in pieces, checking its size and digest against the manifest.
async fn receive(state: &AppState, id: &str, m: &Manifest, body: Body) -> Result<(), ApiError> {
    let mut stream = body.into_data_stream();
    let mut hasher = godwit_spec::release::Hasher::default();
    let mut piece: Vec<u8> = Vec::with_capacity(crate::store::CHUNK);
    let (mut seq, mut total) = (0i64, 0u64);
    while let Some(next) = stream.next().await {
        let bytes = next.map_err(|e| {
            ApiError::new(Code::HTTP_BAD_REQUEST, &[])
                .details(format!("The upload broke off: {e}."))
        })?;
        total += bytes.len() as u64;
        if total > m.size {
            return Err(refused(
                m,
                &format!("the body is longer than the signed {} bytes", m.size),
            ));
        }
        hasher.update(&bytes);
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let take = (crate::store::CHUNK - piece.len()).min(rest.len());
            piece.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if piece.len() == crate::store::CHUNK {
                state.store.add_release_chunk(id, seq, &piece).await?;
                seq += 1;
                piece.clear();
            }
        }
    }
    if !piece.is_empty() {
        state.store.add_release_chunk(id, seq, &piece).await?;
    }
    if total != m.size {
        return Err(refused(
            m,
            &format!("the body has {total} bytes, the signed size is {}", m.size),
        ));
    }
    let digest = hasher.hex();
    if digest != m.sha256.to_ascii_lowercase() {
        return Err(refused(
            m,
            &format!(
                "the body's SHA-256 is {digest}, not the signed {}",
                m.sha256
            ),
        ));
    }
    Ok(())
}

/// The releases, newest first.
#[utoipa::path(get, path = "/v1/releases", params(Page), security(("bearer" = [])), responses(
    (status = 200, description = "A page of releases", body = Listing<Release>),
    (status = 400, description = "limit or offset out of range", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn list_releases(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Listing<Release>>, ApiError> {
    caller.require_person()?;
    let (limit, offset) = page.bounds()?;
    let (count, items) = state.store.list_releases(limit, offset).await?;
    Ok(Json(Listing { count, items }))
}

/// One release.
#[utoipa::path(get, path = "/v1/releases/{id}", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "The release", body = Release),
    (status = 404, description = "No such release (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn get_release(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Release>, ApiError> {
    caller.require_person()?;
    Ok(Json(state.store.get_release(&id).await?))
}

/// Deletes a release (admin); upgrades to it that have not started fail to find it.
#[utoipa::path(delete, path = "/v1/releases/{id}", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such release (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn delete_release(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state.store.get_release(&id).await?;
    state.store.drop_release(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The `Range: bytes=N-` a download resumes from (other forms: the whole binary).
fn resume_from(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let start = v.strip_prefix("bytes=")?.strip_suffix('-')?;
    start.parse().ok()
}

/// A release's binary, for agents (and people) to download; `Range: bytes=N-` resumes a broken
/// download (206).
#[utoipa::path(get, path = "/v1/releases/{id}/binary", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "The binary", content_type = "application/octet-stream", body = Vec<u8>),
    (status = 206, description = "The rest of the binary from the Range's start", content_type = "application/octet-stream", body = Vec<u8>),
    (status = 400, description = "The Range starts past the end", body = crate::error::ErrorBody),
    (status = 404, description = "No such release (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn download_release(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let release = state.store.get_release(&id).await?;
    let size = u64::try_from(release.size).unwrap_or(0);
    let from = resume_from(&headers).unwrap_or(0);
    if from > 0 && from >= size {
        return Err(ApiError::new(Code::HTTP_BAD_REQUEST, &[]).details(format!(
            "The release has {size} bytes; the Range starts at {from}."
        )));
    }
    let chunk = crate::store::CHUNK as u64;
    let first = i64::try_from(from / chunk).unwrap_or(0);
    let skip = usize::try_from(from % chunk).unwrap_or(0);
    let store = state.store.clone();
    let stream = futures::stream::unfold((first, skip), move |(seq, skip)| {
        let (store, id) = (store.clone(), id.clone());
        async move {
            match store.release_chunk(&id, seq).await {
                Ok(Some(mut data)) => {
                    if skip > 0 {
                        data.drain(..skip.min(data.len()));
                    }
                    Some((
                        Ok::<_, std::io::Error>(axum::body::Bytes::from(data)),
                        (seq + 1, 0),
                    ))
                }
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e.message())), (i64::MAX, 0))),
            }
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::ACCEPT_RANGES,
        header::HeaderValue::from_static("bytes"),
    );
    if let Ok(v) = header::HeaderValue::from_str(&(size - from).to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if from > 0 {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = header::HeaderValue::from_str(&format!("bytes {from}-{}/{size}", size - 1)) {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

/// An upgrade request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpgradeAsk {
    /// The version to move to; a release of it for the agent's platform must exist.
    #[schema(pattern = "^[0-9]+[.][0-9]+[.][0-9]+([-+].*)?$")]
    pub version: String,
    /// Wait for the agent's commands to end instead of refusing with 680.
    #[serde(default)]
    pub drain: bool,
    /// Allow a version that is not newer than the agent's (a rollback by hand).
    #[serde(default)]
    pub allow_downgrade: bool,
    /// The whole upgrade's limit, 10 to 3600 seconds (default 300); past it, 996.
    #[serde(default)]
    #[schema(minimum = 10, maximum = 3600)]
    pub time_limit_secs: Option<u64>,
    /// Not before this time, RFC 3339 (`2026-12-24T02:00:00Z`): a scheduled upgrade. Until it
    /// has run, commands for the agent are refused with 681.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub start_at: Option<String>,
}

/// An upgrade of several agents, at once or at a time.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FleetUpgrade {
    /// The agents, 1 to 100.
    pub agent_ids: Vec<String>,
    #[schema(pattern = "^[0-9]+[.][0-9]+[.][0-9]+([-+].*)?$")]
    pub version: String,
    #[serde(default)]
    pub drain: bool,
    #[serde(default)]
    pub allow_downgrade: bool,
    #[serde(default)]
    #[schema(minimum = 10, maximum = 3600)]
    pub time_limit_secs: Option<u64>,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub start_at: Option<String>,
}

/// The checked form of an upgrade request.
fn ask_of(ask: &UpgradeAsk) -> Result<crate::upgrades::Ask, ApiError> {
    if !godwit_spec::release::is_version(&ask.version) {
        return Err(ApiError::new(
            Code::ERR_SEMVER_PARSE,
            &[("version", &ask.version)],
        ));
    }
    let secs = ask
        .time_limit_secs
        .unwrap_or(crate::upgrades::DEFAULT_TIME_LIMIT_SECS);
    if !(10..=3600).contains(&secs) {
        return Err(ApiError::invalid("timeLimitSecs: 10 to 3600"));
    }
    let start_ms = match &ask.start_at {
        None => None,
        Some(text) => {
            let at = humantime::parse_rfc3339_weak(text).map_err(|e| {
                ApiError::invalid(format!("startAt: {e} (write it as 2026-12-24T02:00:00Z)"))
            })?;
            let ms = at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            if ms < crate::store::now_ms() {
                return Err(ApiError::invalid("startAt: the time is in the past"));
            }
            Some(ms)
        }
    };
    Ok(crate::upgrades::Ask {
        version: ask.version.clone(),
        drain: ask.drain,
        allow_downgrade: ask.allow_downgrade,
        time_limit_ms: i64::try_from(secs * 1000).unwrap_or(i64::MAX),
        start_ms,
    })
}

/// Asks an agent to upgrade (admin): 202 with the upgrade's record, RUNNING (993) once sent,
/// QUEUED while it waits for the agent's commands to end (`drain`).
#[utoipa::path(post, path = "/v1/agents/{id}/upgrade", params(("id" = String, Path)), request_body = UpgradeAsk, security(("bearer" = [])), responses(
    (status = 202, description = "Asked", body = Upgrade),
    (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
    (status = 404, description = "No such agent, or no release of the version for its platform (800)", body = crate::error::ErrorBody),
    (status = 409, description = "Already on that version (1011), upgrading or running a command (680), not connected (693), no release key (AZSM1051)", body = crate::error::ErrorBody),
    (status = 413, description = "Body too large", body = crate::error::ErrorBody),
    (status = 422, description = "Invalid content (605, 624), or below the minimum agent version (1010)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn upgrade_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(ask): ApiJson<UpgradeAsk>,
) -> Result<(StatusCode, Json<Upgrade>), ApiError> {
    caller.require_admin()?;
    let checked = ask_of(&ask)?;
    let up = crate::upgrades::request(&state, &id, &checked).await?;
    caller.note(format!("agent.upgrade {}", ask.version));
    Ok((StatusCode::ACCEPTED, Json(up)))
}

/// An agent's upgrades, newest first.
#[utoipa::path(get, path = "/v1/agents/{id}/upgrades", params(("id" = String, Path), Page), security(("bearer" = [])), responses(
    (status = 200, description = "A page of upgrades", body = Listing<Upgrade>),
    (status = 400, description = "limit or offset out of range", body = crate::error::ErrorBody),
    (status = 404, description = "No such agent (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn list_upgrades(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Listing<Upgrade>>, ApiError> {
    caller.may_act_for_agent(Some(&id))?;
    let (limit, offset) = page.bounds()?;
    state.store.get_agent(&id).await?;
    let (count, items) = state.store.list_upgrades(&id, limit, offset).await?;
    Ok(Json(Listing { count, items }))
}

/// One upgrade, with its steps.
#[utoipa::path(get, path = "/v1/upgrades/{id}", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "The upgrade", body = Upgrade),
    (status = 404, description = "No such upgrade (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn get_upgrade(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Upgrade>, ApiError> {
    let up = state.store.get_upgrade(&id).await?;
    caller.may_act_for_agent(Some(&up.agent_id))?;
    Ok(Json(up))
}

/// Upgrades several agents (admin): every agent is checked first, and nothing is asked of any
/// when one is refused (its code, naming it). With `startAt`, at that time.
#[utoipa::path(post, path = "/v1/upgrades", request_body = FleetUpgrade, security(("bearer" = [])), responses(
    (status = 202, description = "Asked", body = Listing<Upgrade>),
    (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
    (status = 404, description = "No such agent, or no release of the version for its platform (800)", body = crate::error::ErrorBody),
    (status = 409, description = "An agent already on that version (1011), upgrading or running a command (680), or not connected (693); no release key (AZSM1051)", body = crate::error::ErrorBody),
    (status = 413, description = "Body too large", body = crate::error::ErrorBody),
    (status = 422, description = "Invalid content (605, 624), or below the minimum agent version (1010)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn upgrade_fleet(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<FleetUpgrade>,
) -> Result<(StatusCode, Json<Listing<Upgrade>>), ApiError> {
    caller.require_admin()?;
    if req.agent_ids.is_empty() || req.agent_ids.len() > 100 {
        return Err(ApiError::invalid("agentIds: 1 to 100 agents"));
    }
    let mut ids = req.agent_ids.clone();
    ids.sort();
    ids.dedup();
    let ask = UpgradeAsk {
        version: req.version.clone(),
        drain: req.drain,
        allow_downgrade: req.allow_downgrade,
        time_limit_secs: req.time_limit_secs,
        start_at: req.start_at.clone(),
    };
    let checked = ask_of(&ask)?;
    for id in &ids {
        if let Err(e) = crate::upgrades::check(&state, id, &checked).await {
            let words = format!("Agent {id}: {}", e.message());
            return Err(ApiError::from(e).details(words));
        }
    }
    let mut items = Vec::new();
    for id in &ids {
        items.push(crate::upgrades::request(&state, id, &checked).await?);
    }
    caller.note(format!("agent.upgrade {} x{}", req.version, items.len()));
    let count = i64::try_from(items.len()).unwrap_or(0);
    Ok((StatusCode::ACCEPTED, Json(Listing { count, items })))
}

/// Cancels an upgrade that has not been sent yet (a schedule, or one waiting for commands to
/// end); 409 with 680 once the agent has it.
#[utoipa::path(delete, path = "/v1/upgrades/{id}", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 204, description = "Cancelled"),
    (status = 404, description = "No such upgrade (800)", body = crate::error::ErrorBody),
    (status = 409, description = "The agent has it already (680)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn cancel_upgrade(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let up = state.store.get_upgrade(&id).await?;
    if !state.store.cancel_upgrade(&id).await? {
        return Err(ApiError::new(
            Code::AGENT_UPDATE_INPROGRESS_ERR,
            &[("agent_id", &up.agent_id)],
        )
        .details("The agent has this upgrade already; it ends by itself (994, 995 or 996)."));
    }
    Ok(StatusCode::NO_CONTENT)
}

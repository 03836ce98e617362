//! `/v1/projects`: groups of migrations.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::{ApiJson, ApiQuery, Listing, Page};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::Project;

/// A new project.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    /// Unique among projects; 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub description: String,
    /// Job options every migration of the project takes unless it gives its own; see
    /// [`SETTINGS`].
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// Changes to a project; what is left out stays as it is.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectChange {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 4000)]
    pub description: Option<String>,
    /// The project's settings, replaced whole.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The job options a project's settings may hold.
pub const SETTINGS: &[&str] = &[
    "targetProfile",
    "filters",
    "sanitize",
    "syncDeletes",
    "maxDelete",
    "bwlimit",
];

/// Refuses settings godwit would not take: an option that is not a project setting, or a value
/// a migration would refuse (605), filter rules that do not compile (644).
fn check_settings(
    id: &str,
    settings: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ApiError> {
    if let Some(k) = settings.keys().find(|k| !SETTINGS.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!(
            "settings.{k}: a project's settings are {}",
            SETTINGS.join(", ")
        )));
    }
    let options: crate::records::MigrationOptions =
        serde_json::from_value(serde_json::Value::Object(settings.clone()))
            .map_err(|e| ApiError::invalid(format!("settings: {e}")))?;
    godwit_spec::Filter::new(&options.filters).map_err(|e| {
        ApiError::new(
            godwit_codes::Code::ERR_FILTER_PATTERN_PROJECT,
            &[("reason", e.message.trim_end_matches('.'))],
        )
        .details(format!(
            "Project {id}: each rule of settings.filters must compile as a migration's would."
        ))
    })?;
    Ok(())
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 || n.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name: 1 to 200 characters, no control characters",
        ));
    }
    Ok(())
}

fn check_description(d: &str) -> Result<(), ApiError> {
    // Line breaks and tabs are text; other control characters (NUL, which PostgreSQL refuses
    // in text) are not.
    if d.chars().count() > 4000
        || d.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::invalid(
            "description: at most 4,000 characters, no control characters but line breaks and tabs",
        ));
    }
    Ok(())
}

/// The projects, a page at a time.
#[utoipa::path(get, path = "/v1/projects", params(Page), security(("bearer" = [])), responses(
    (status = 200, description = "A page of projects", body = Listing<Project>),
    (status = 400, description = "limit or offset out of range", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn list_projects(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Listing<Project>>, ApiError> {
    caller.require_person()?;
    let (limit, offset) = page.bounds()?;
    let (count, items) = state.store.list_projects(limit, offset).await?;
    Ok(Json(Listing { count, items }))
}

/// Creates a project. A name already used is 409 with code 642.
#[utoipa::path(post, path = "/v1/projects", request_body = NewProject, security(("bearer" = [])), responses(
    (status = 201, description = "Created", body = Project),
    (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "The token may not change anything", body = crate::error::ErrorBody),
    (status = 409, description = "The name is taken (642)", body = crate::error::ErrorBody),
    (status = 413, description = "Body too large", body = crate::error::ErrorBody),
    (status = 422, description = "Invalid content", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn create_project(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewProject>,
) -> Result<(StatusCode, Json<Project>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(create(&state, &caller, req).await?),
    ))
}

/// Creates a project (operator): the API's and the dashboard's.
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    req: NewProject,
) -> Result<Project, ApiError> {
    caller.require_operator()?;
    check_name(&req.name)?;
    check_description(&req.description)?;
    check_settings("(new)", &req.settings)?;
    let mut p = state
        .store
        .create_project(req.name.trim(), &req.description)
        .await?;
    if !req.settings.is_empty() {
        p = state
            .store
            .update_project(&p.id, None, None, Some(&req.settings))
            .await?;
    }
    Ok(p)
}

/// One project.
#[utoipa::path(get, path = "/v1/projects/{id}", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "The project", body = Project),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 404, description = "No such project (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn get_project(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Project>, ApiError> {
    caller.require_person()?;
    Ok(Json(state.store.get_project(&id).await?))
}

/// Renames a project, changes its description, or replaces its settings (which its
/// migrations take where they give nothing of their own): 730 while one of its migrations
/// runs, 727 to turn off on-the-fly sanitizing once chosen, 644 for filter rules that do not
/// compile.
#[utoipa::path(patch, path = "/v1/projects/{id}", params(("id" = String, Path)), request_body = ProjectChange,
    security(("bearer" = [])), responses(
    (status = 200, description = "The project as changed", body = Project),
    (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "The token may not change anything", body = crate::error::ErrorBody),
    (status = 404, description = "No such project (800)", body = crate::error::ErrorBody),
    (status = 409, description = "The name is taken (642), a migration runs (730), on-the-fly sanitizing is locked (727)", body = crate::error::ErrorBody),
    (status = 413, description = "Body too large", body = crate::error::ErrorBody),
    (status = 422, description = "Invalid content", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn update_project(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ProjectChange>,
) -> Result<Json<Project>, ApiError> {
    caller.require_operator()?;
    let before = state.store.get_project(&id).await?;
    if state.store.active_migrations_in_project(&id).await? > 0 {
        return Err(ApiError::new(
            godwit_codes::Code::PROJECT_MIGRATION_RUNNING_CONFIG_UPDATE_ERROR,
            &[("project_id", &id)],
        ));
    }
    if let Some(n) = &req.name {
        check_name(n)?;
    }
    if let Some(d) = &req.description {
        check_description(d)?;
    }
    if let Some(settings) = &req.settings {
        check_settings(&id, settings)?;
        // Once its migrations sanitize on the fly, their targets hold the sanitized names.
        let on_the_fly = |s: &serde_json::Map<String, serde_json::Value>| {
            s.get("sanitize").and_then(|v| v.as_str()) == Some("on-the-fly")
        };
        if on_the_fly(&before.settings) && !on_the_fly(settings) {
            return Err(ApiError::new(
                godwit_codes::Code::PROJECT_CONFIG_SANITIZE_UPDATE_ERROR,
                &[("project_id", &id)],
            ));
        }
    }
    let p = state
        .store
        .update_project(
            &id,
            req.name.as_deref().map(str::trim),
            req.description.as_deref(),
            req.settings.as_ref(),
        )
        .await?;
    Ok(Json(p))
}

/// Deletes a project that holds no migration (699 otherwise).
#[utoipa::path(delete, path = "/v1/projects/{id}", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "The token may not change anything", body = crate::error::ErrorBody),
    (status = 404, description = "No such project (800)", body = crate::error::ErrorBody),
    (status = 409, description = "It has migrations (699)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn delete_project(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_operator()?;
    state.store.get_project(&id).await?;
    // Its migrations go first, explicitly: deleting a project never deletes migration history.
    let count = state.store.migrations_in_project(&id).await?;
    if count > 0 {
        return Err(ApiError::new(
            godwit_codes::Code::PROJECT_DELETION_FAILURE_MIGRATION_EXISTS,
            &[("project_id", &id), ("count", &count.to_string())],
        )
        .details("Delete the project's migrations first (stopping any that runs)."));
    }
    state.store.delete_project(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

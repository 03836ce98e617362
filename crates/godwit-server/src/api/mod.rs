//! The routes, the extractors that turn every malformed request into a coded 4xx, and the
//! OpenAPI document generated from the handlers.

pub mod agents;
pub mod audit;
pub mod codes;
pub mod config;
pub mod endpoints;
pub mod migrations;
pub mod plans;
pub mod projects;
pub mod releases;
pub mod system;
pub mod tokens;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use godwit_codes::Code;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

/// Request bodies larger than this are refused with 413 (HTTP413).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The API description, generated from the handlers' annotations.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "godwit control plane",
        description = "Agents, endpoints, projects, migrations, commands, job runs and reports. \
                       Every error answer carries a catalog code: see GET /v1/codes."
    ),
    paths(
        system::healthz,
        system::readyz,
        system::metrics,
        codes::list_codes,
        codes::get_code,
        projects::list_projects,
        projects::create_project,
        projects::get_project,
        projects::update_project,
        projects::delete_project,
        plans::simulate_scan,
        plans::list_project_runs,
        plans::get_project_run,
        plans::get_recommendation,
        plans::apply_recommendation,
        plans::validate_project,
        plans::project_run_report,
        plans::stop_project_run,
        endpoints::list_endpoints,
        endpoints::create_endpoint,
        endpoints::get_endpoint,
        endpoints::delete_endpoint,
        agents::create_agent,
        agents::list_agents,
        agents::get_agent,
        agents::deactivate_agent,
        agents::delete_agent,
        agents::retire_agent,
        agents::browse_agent,
        config::upload_config,
        releases::upload_release,
        releases::list_releases,
        releases::get_release,
        releases::delete_release,
        releases::download_release,
        releases::upgrade_agent,
        releases::list_upgrades,
        releases::get_upgrade,
        releases::upgrade_fleet,
        releases::cancel_upgrade,
        migrations::create_migration,
        migrations::list_migrations,
        migrations::get_migration,
        migrations::delete_migration,
        migrations::command,
        migrations::list_runs,
        migrations::get_run,
        migrations::copylog,
        migrations::review,
        migrations::unit_index,
        migrations::units,
        migrations::set_pool,
        migrations::report,
        migrations::create_schedule,
        migrations::list_schedules,
        migrations::errors,
        tokens::list_tokens,
        tokens::create_token,
        tokens::revoke_token,
        audit::list_audit,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        // What any route that takes a token may answer, said once here: a missing or refused
        // token (401), a role that may not (403, also 862 and 903 for a deactivated or deleted
        // agent's token), too many requests (429).
        use utoipa::openapi::{Content, Ref, ResponseBuilder};
        let common = [
            (
                "401",
                "No token, or one that is malformed, badly signed, expired, revoked or unknown (622, 704-707)",
            ),
            (
                "403",
                "The token's role may not do this, or it is a deactivated (862) or deleted (903) agent's",
            ),
            (
                "429",
                "Too many requests for this token, or too many bad tokens from this address; see Retry-After",
            ),
        ];
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                if op.security.as_ref().is_none_or(Vec::is_empty) {
                    continue;
                }
                for (status, description) in common {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(description)
                                .content(
                                    "application/json",
                                    Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                                )
                                .build()
                                .into()
                        });
                }
            }
        }
    }
}

/// Every route of the control plane.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/codes", get(codes::list_codes))
        .route("/codes/{code}", get(codes::get_code))
        .route(
            "/projects",
            get(projects::list_projects).post(projects::create_project),
        )
        .route(
            "/projects/{id}",
            get(projects::get_project)
                .patch(projects::update_project)
                .delete(projects::delete_project),
        )
        .route("/projects/{id}/simulate-scan", post(plans::simulate_scan))
        .route("/projects/{id}/runs", get(plans::list_project_runs))
        .route("/projects/{id}/runs/{run_id}", get(plans::get_project_run))
        .route(
            "/projects/{id}/runs/{run_id}/report",
            get(plans::project_run_report),
        )
        .route(
            "/projects/{id}/runs/{run_id}/stop",
            post(plans::stop_project_run),
        )
        .route("/projects/{id}/validate", post(plans::validate_project))
        .route(
            "/projects/{id}/recommendation",
            get(plans::get_recommendation),
        )
        .route(
            "/projects/{id}/recommendation/apply",
            post(plans::apply_recommendation),
        )
        .route(
            "/endpoints",
            get(endpoints::list_endpoints).post(endpoints::create_endpoint),
        )
        .route(
            "/endpoints/{id}",
            get(endpoints::get_endpoint).delete(endpoints::delete_endpoint),
        )
        .route(
            "/agents",
            get(agents::list_agents).post(agents::create_agent),
        )
        .route(
            "/agents/{id}",
            get(agents::get_agent).delete(agents::delete_agent),
        )
        .route("/agents/{id}/deactivate", post(agents::deactivate_agent))
        .route("/agents/{id}/browse", post(agents::browse_agent))
        .route("/agents/{id}/retire", post(agents::retire_agent))
        .route("/agents/{id}/config", post(config::upload_config))
        .route("/agents/{id}/upgrade", post(releases::upgrade_agent))
        .route("/agents/{id}/upgrades", get(releases::list_upgrades))
        .route("/upgrades", post(releases::upgrade_fleet))
        .route(
            "/upgrades/{id}",
            get(releases::get_upgrade).delete(releases::cancel_upgrade),
        )
        .route(
            "/releases",
            get(releases::list_releases).post(releases::upload_release),
        )
        .route(
            "/releases/{id}",
            get(releases::get_release).delete(releases::delete_release),
        )
        .route("/releases/{id}/binary", get(releases::download_release))
        .route(
            "/migrations",
            get(migrations::list_migrations).post(migrations::create_migration),
        )
        .route(
            "/migrations/{id}",
            get(migrations::get_migration).delete(migrations::delete_migration),
        )
        .route("/migrations/{id}/commands", post(migrations::command))
        .route("/migrations/{id}/runs", get(migrations::list_runs))
        .route(
            "/migrations/{id}/schedules",
            get(migrations::list_schedules).post(migrations::create_schedule),
        )
        .route("/runs/{id}", get(migrations::get_run))
        .route("/runs/{id}/copylog", get(migrations::copylog))
        .route("/runs/{id}/review", get(migrations::review))
        .route("/runs/{id}/units", get(migrations::units))
        .route("/units/{id}/index", get(migrations::unit_index))
        .route(
            "/migrations/{id}/pool",
            axum::routing::put(migrations::set_pool),
        )
        .route("/runs/{id}/report", get(migrations::report))
        .route("/errors", get(migrations::errors))
        .route(
            "/tokens",
            get(tokens::list_tokens).post(tokens::create_token),
        )
        .route("/tokens/{id}/revoke", post(tokens::revoke_token))
        .route("/audit", get(audit::list_audit))
        .route("/agent/connect", get(crate::hub::connect));
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi))
        .nest("/v1", v1)
        .merge(crate::web::routes())
        .fallback(|| async { ApiError::new(Code::HTTP_NOT_FOUND, &[]) })
        .method_not_allowed_fallback(|| async { ApiError::new(Code::HTTP_METHOD_NOT_ALLOWED, &[]) })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ))
        .layer(axum::middleware::from_fn(system::observe_requests))
        .layer(axum::middleware::from_fn(system::security_headers))
        .with_state(state)
}

/// A JSON body; a malformed one is 400 (600), one of the wrong shape 422 (605), one too large
/// 413.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    let reason = std::error::Error::source(rejection)
        .map_or_else(|| rejection.body_text(), |s| s.to_string());
    match rejection {
        JsonRejection::JsonDataError(_) => {
            ApiError::new(Code::ERR_JSON_MARSHAL_UNMARSHAL, &[("reason", &reason)])
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            Code::ERR_JSON_DECODING,
            &[("reason", "the Content-Type must be application/json")],
        ),
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            Code::HTTP_PAYLOAD_TOO_LARGE,
            &[("limit", &BODY_LIMIT.to_string())],
        ),
        _ => ApiError::new(Code::ERR_JSON_DECODING, &[("reason", &reason)]),
    }
}

/// Query parameters; ones that cannot be read are 400.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(ApiQuery(q.0)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> ApiError {
    ApiError::new(Code::HTTP_BAD_REQUEST, &[]).details(rejection.body_text())
}

/// `limit` and `offset` of a list, as seed 003 bounds them: limit 0-100 (default 50), offset
/// 0-65535 (default 0); out of range is 400.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// How many items, 0-100 (default 50).
    #[param(minimum = 0, maximum = 100)]
    pub limit: Option<i64>,
    /// How many to skip, 0-65535 (default 0).
    #[param(minimum = 0, maximum = 65535)]
    pub offset: Option<i64>,
}

impl Page {
    pub fn bounds(self) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(50);
        let offset = self.offset.unwrap_or(0);
        if !(0..=100).contains(&limit) {
            return Err(ApiError::new(Code::HTTP_BAD_REQUEST, &[])
                .details(format!("limit must be 0 to 100, not {limit}")));
        }
        if !(0..=65535).contains(&offset) {
            return Err(ApiError::new(Code::HTTP_BAD_REQUEST, &[])
                .details(format!("offset must be 0 to 65535, not {offset}")));
        }
        Ok((limit, offset))
    }
}

/// A page of a collection: how many there are in all, and the items asked for.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Listing<T> {
    pub count: i64,
    pub items: Vec<T>,
}

//! `POST /v1/agents/{id}/config`: advanced mode. An operator uploads a migration
//! configuration file for an agent (the format `godwit copy --config FILE` reads, see
//! `godwit_spec::config`): each entry with an `id` changes that migration's options, each
//! without makes a migration. The whole file is checked before anything is written.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use godwit_codes::Code;
use godwit_spec::config::{ConfigSide, EndpointSide};
use serde::Serialize;

use super::migrations::{check_options, check_path};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::records::{Migration, MigrationOptions};

/// What a configuration file did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConfigApplied {
    /// Migrations made.
    pub created: usize,
    /// Migrations whose options changed.
    pub updated: usize,
    /// Every migration of the file, in its order, as it is now.
    pub migrations: Vec<Migration>,
}

/// What one entry of the file will do, once the whole file has been checked.
enum Step {
    Update {
        id: String,
        options: MigrationOptions,
        given: serde_json::Map<String, serde_json::Value>,
    },
    Create {
        project_id: String,
        source: EndpointSide,
        target: EndpointSide,
        options: MigrationOptions,
        given: serde_json::Map<String, serde_json::Value>,
    },
}

fn field(i: usize, name: &str, why: &str) -> ApiError {
    ApiError::new(
        Code::ERR_CONFIG_VALIDATION,
        &[("reason", &format!("migrations[{i}].{name}: {why}"))],
    )
}

/// Uploads a migration configuration file for the agent: its entries' migrations are made
/// (with this agent) or changed. 500 an empty body, 501 not JSON, 503 a field of the wrong
/// shape (named), 504 an entry with neither an id nor a source and a target, 508 no migrations,
/// 502 the file names another agent, 506 an id that names no migration, 510 filter rules that
/// do not compile, 518 turning off on-the-fly sanitizing, 661 a migration that is busy, 505 a
/// duplicate, 509 the store could not save.
#[utoipa::path(post, path = "/v1/agents/{id}/config", params(("id" = String, Path)),
    request_body(content = Object, description = "The configuration file (JSON): {\"agentId\"?, \"migrations\": [{\"id\"?, \"projectId\"?, \"source\"?, \"target\"?, \"options\"?}]}", content_type = "application/json"),
    security(("bearer" = [])), responses(
    (status = 200, description = "Only changes", body = ConfigApplied),
    (status = 201, description = "Migrations made", body = ConfigApplied),
    (status = 400, description = "An empty body (500), not JSON (501)", body = crate::error::ErrorBody),
    (status = 404, description = "No such agent (800), or an id that names no migration (506)", body = crate::error::ErrorBody),
    (status = 409, description = "A duplicate (505), a busy migration (661), on-the-fly sanitizing locked (518)", body = crate::error::ErrorBody),
    (status = 413, description = "Body too large", body = crate::error::ErrorBody),
    (status = 422, description = "The file names another agent (502), a field of the wrong shape (503), an entry with nothing to go on (504), no migrations (508), filter rules that do not compile (510)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed (509)", body = crate::error::ErrorBody)
))]
pub async fn upload_config(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent_id): Path<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<ConfigApplied>), ApiError> {
    caller.require_operator()?;
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                Code::HTTP_PAYLOAD_TOO_LARGE,
                &[("limit", &super::BODY_LIMIT.to_string())],
            )
        } else {
            ApiError::new(
                Code::ERR_POST_CONFIG_FILE_GET,
                &[(
                    "reason",
                    &format!("its body could not be read: {}", r.body_text()),
                )],
            )
        }
    })?;
    let agent = state.store.get_agent(&agent_id).await?;
    let file = godwit_spec::config::parse(&body)?;
    if let Some(named) = &file.agent_id
        && *named != agent.id
    {
        return Err(ApiError::new(
            Code::ERR_INCORRECT_AGENT_ID,
            &[("agent_id", named)],
        ));
    }
    let mut steps = Vec::with_capacity(file.migrations.len());
    for (i, entry) in file.migrations.iter().enumerate() {
        let options = entry.job_options(i)?;
        let name = entry
            .id
            .clone()
            .unwrap_or_else(|| format!("migrations[{i}]"));
        if let Err(e) = godwit_spec::Filter::new(&options.filters) {
            return Err(ApiError::new(
                Code::ERR_MIGRATION_EXCLUSION_RULES_UPDATE,
                &[
                    ("migration_id", &name),
                    ("reason", e.message.trim_end_matches('.')),
                ],
            ));
        }
        check_options(&options)?;
        let endpoint_side = |what: &str, side: &Option<ConfigSide>| match side {
            Some(ConfigSide::Endpoint(s)) => {
                check_path(&format!("migrations[{i}].{what}.path"), &s.path)?;
                Ok(s.clone())
            }
            _ => Err(field(
                i,
                what,
                "the control plane takes an endpoint and a path ({\"endpointId\": ..., \
                 \"path\": \"/...\"})",
            )),
        };
        match &entry.id {
            Some(id) => {
                let m = state.store.get_migration(id).await.map_err(|e| {
                    if e.is_not_found() {
                        ApiError::new(
                            Code::ERR_MIGRATION_NOT_FOUND_ADVANCE,
                            &[("migration_id", id)],
                        )
                    } else {
                        e.into()
                    }
                })?;
                if m.agent_id.as_deref() != Some(agent.id.as_str()) {
                    return Err(field(
                        i,
                        "id",
                        &format!("migration {id} is not run by agent {}", agent.id),
                    ));
                }
                for (what, side, now) in [
                    (
                        "source",
                        &entry.source,
                        (&m.source_endpoint, &m.source_path),
                    ),
                    (
                        "target",
                        &entry.target,
                        (&m.target_endpoint, &m.target_path),
                    ),
                ] {
                    if side.is_some() {
                        let s = endpoint_side(what, side)?;
                        if (&s.endpoint_id, &s.path) != now {
                            return Err(field(
                                i,
                                what,
                                "a migration's sides do not change; make a new migration",
                            ));
                        }
                    }
                }
                if entry
                    .project_id
                    .as_ref()
                    .is_some_and(|p| *p != m.project_id)
                {
                    return Err(field(i, "projectId", "a migration stays in its project"));
                }
                if m.options.sanitize == godwit_spec::SanitizeMode::OnTheFly
                    && options.sanitize != godwit_spec::SanitizeMode::OnTheFly
                    && entry.options.contains_key("sanitize")
                {
                    return Err(ApiError::new(
                        Code::ERR_MIGRATION_CONFIG_UPDATE_SANITIZE_ONFLY,
                        &[("migration_id", id)],
                    ));
                }
                if let Some(busy) = state.store.active_runs(id).await?.first() {
                    return Err(crate::rules::busy(id, busy.command).into());
                }
                steps.push(Step::Update {
                    id: id.clone(),
                    options,
                    given: entry.options.clone(),
                });
            }
            None => {
                let Some(project_id) = &entry.project_id else {
                    return Err(field(i, "projectId", "a new migration needs its project"));
                };
                if let Err(e) = state.store.get_project(project_id).await {
                    return Err(if e.is_not_found() {
                        field(i, "projectId", "no such project")
                    } else {
                        e.into()
                    });
                }
                let source = endpoint_side("source", &entry.source)?;
                let target = endpoint_side("target", &entry.target)?;
                for (what, side) in [("source", &source), ("target", &target)] {
                    if let Err(e) = state.store.get_endpoint(&side.endpoint_id).await {
                        return Err(if e.is_not_found() {
                            field(i, &format!("{what}.endpointId"), "no such endpoint")
                        } else {
                            e.into()
                        });
                    }
                }
                if source == target {
                    return Err(field(i, "target", "the same place as the source"));
                }
                steps.push(Step::Create {
                    project_id: project_id.clone(),
                    source,
                    target,
                    options,
                    given: entry.options.clone(),
                });
            }
        }
    }
    let (mut created, mut updated) = (0, 0);
    let mut migrations = Vec::with_capacity(steps.len());
    for step in steps {
        let m = match step {
            Step::Update { id, options, given } => {
                updated += 1;
                state
                    .store
                    .update_migration_options(&id, &options, &given)
                    .await?
            }
            Step::Create {
                project_id,
                source,
                target,
                options,
                given,
            } => {
                created += 1;
                state
                    .store
                    .create_migration_given(
                        &project_id,
                        Some(&agent.id),
                        (&source.endpoint_id, &source.path),
                        (&target.endpoint_id, &target.path),
                        &options,
                        Some(&given),
                    )
                    .await?
            }
        };
        migrations.push(m);
    }
    let status = if created > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(ConfigApplied {
            created,
            updated,
            migrations,
        }),
    ))
}

//! `/v1/migrations`, their commands, job runs and schedules, and `/v1/errors`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use godwit_codes::Code;
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiQuery, Listing, Page};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::records::{JobRun, Migration, MigrationOptions, Schedule, is_active, state_text};
use crate::rules::{Action, Situation, decide};
use godwit_spec::CommandKind;

/// One side of a migration.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Side {
    pub endpoint_id: String,
    /// The folder under the endpoint's URI; `/` for its root.
    #[schema(pattern = "^/", max_length = 4096)]
    pub path: String,
}

/// A new migration.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewMigration {
    pub project_id: String,
    /// The agent that runs it; may be given later.
    pub agent_id: Option<String>,
    /// Agents to spread its copies over (2 or more, each with the source mounted at the same
    /// path and the same credentials), instead of one agent. See docs/scale-out.md.
    #[serde(default)]
    pub pool: Option<Vec<String>>,
    pub source: Side,
    pub target: Side,
    /// Its job options; what it leaves out, its project's settings decide.
    #[serde(default)]
    #[schema(value_type = Option<MigrationOptions>)]
    pub options: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A command for a migration.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// scan, copy, sync, sanitize, empty-folders, permissions, simulate-permissions, speed-test,
    /// verify, undo
    #[schema(
        pattern = "^(scan|copy|sync|sanitize|empty-folders|permissions|simulate-permissions|speed-test|verify|undo|finalize)$"
    )]
    pub command: String,
    /// start, stop, pause, resume
    #[schema(pattern = "^(start|stop|pause|resume)$")]
    pub action: String,
    /// For a start: options this run takes instead of the migration's (`{"checksum": true}`
    /// for a verification that hashes both sides); the others stay the migration's.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub options: Option<serde_json::Value>,
    /// For resuming a true-up paused for review: the `digest` of the review that was read
    /// (`GET /v1/runs/{id}/review`). The resume is refused (1055) unless the run's list of
    /// deletions is that one, whole; without it, a resume carries out the run's list as it is.
    #[serde(default)]
    #[schema(max_length = 64)]
    pub reviewed: Option<String>,
}

/// A new schedule.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchedule {
    #[schema(
        pattern = "^(scan|copy|sync|sanitize|empty-folders|permissions|simulate-permissions|speed-test|verify)$"
    )]
    pub command: String,
    /// once, hourly, daily or weekly
    #[schema(pattern = "^(once|hourly|daily|weekly)$")]
    pub frequency: String,
    /// How many times, 1 to 20.
    #[schema(minimum = 1, maximum = 20)]
    pub repeat: i64,
    /// When the first run starts, RFC 3339 (`2026-12-01T02:00:00Z`); not in the past.
    #[schema(format = DateTime)]
    pub start: String,
}

pub(crate) fn check_path(field: &str, p: &str) -> Result<(), ApiError> {
    if p.is_empty() || p.len() > 4096 || p.chars().any(char::is_control) || !p.starts_with('/') {
        return Err(ApiError::invalid(format!(
            "{field}: a path starting with /, at most 4,096 bytes, no control characters"
        )));
    }
    if p.split('/').any(|c| c == "..") {
        return Err(ApiError::invalid(format!(
            "{field}: .. is not allowed in a path"
        )));
    }
    Ok(())
}

pub(crate) fn check_options(o: &MigrationOptions) -> Result<(), ApiError> {
    // Sizes, ages, rates and delete limits are checked as they are read; patterns are compiled
    // here with the compiler the agent uses: an invalid one is 634/635/636 with the reason.
    godwit_spec::Filter::new(&o.filters).map_err(ApiError::from)?;
    // A permissions run's list and owner map, read as the agent reads them.
    if let Some(what) = &o.what {
        godwit_spec::permissions::What::parse(what).map_err(|e| {
            ApiError::invalid(format!("options.what: {}", e.message.trim_end_matches('.')))
        })?;
    }
    if let Some(map) = &o.owner_map {
        godwit_spec::permissions::OwnerRules::parse(map).map_err(|e| {
            ApiError::invalid(format!(
                "options.ownerMap: {}",
                e.message.trim_end_matches('.')
            ))
        })?;
    }
    if let Some(dir) = &o.backup_dir {
        // Where it is checked against the target (same store, outside it) is the agent's
        // run, which refuses one it cannot use before writing anything (724).
        godwit_spec::Location::parse(dir).map_err(|e| {
            let why = e.message.trim_end_matches('.').to_string();
            ApiError::invalid(format!("options.backupDir: {why}"))
        })?;
    }
    Ok(())
}

/// Creates a migration: its project, endpoints and agent must exist, its paths and filters be
/// valid. The same source path to the same target path twice is 409 with 505.
#[utoipa::path(post, path = "/v1/migrations", request_body = NewMigration, security(("bearer" = [])), responses(
    (status = 201, description = "Created", body = Migration),
    (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "The token may not change anything", body = crate::error::ErrorBody),
    (status = 409, description = "A duplicate (505)", body = crate::error::ErrorBody),
    (status = 413, description = "Body too large", body = crate::error::ErrorBody),
    (status = 422, description = "Invalid content (605, 634-636)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn create_migration(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewMigration>,
) -> Result<(StatusCode, Json<Migration>), ApiError> {
    let m = create(&state, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(m)))
}

/// Creates a migration (operator): the API's and the dashboard's.
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    req: NewMigration,
) -> Result<Migration, ApiError> {
    caller.require_operator()?;
    check_path("source.path", &req.source.path)?;
    check_path("target.path", &req.target.path)?;
    let given = req.options.unwrap_or_default();
    let options: MigrationOptions =
        serde_json::from_value(serde_json::Value::Object(given.clone()))
            .map_err(|e| ApiError::invalid(format!("options: {e}")))?;
    check_options(&options)?;
    let exists = |what: &'static str| {
        move |e: crate::error::DomainError| {
            if e.is_not_found() {
                ApiError::invalid(format!("{what}: no such id"))
            } else {
                e.into()
            }
        }
    };
    state
        .store
        .get_project(&req.project_id)
        .await
        .map_err(exists("projectId"))?;
    let source = state
        .store
        .get_endpoint(&req.source.endpoint_id)
        .await
        .map_err(exists("source.endpointId"))?;
    if options.metadata && source.kind != "local" {
        // No agent could run its copies: permissions are read from a local source.
        return Err(ApiError::invalid(format!(
            "options.metadata: permissions are carried from a local or mounted folder, and \
             this source is {}",
            source.kind
        )));
    }
    state
        .store
        .get_endpoint(&req.target.endpoint_id)
        .await
        .map_err(exists("target.endpointId"))?;
    if let Some(a) = &req.agent_id {
        state.store.get_agent(a).await.map_err(exists("agentId"))?;
    }
    if req.source.endpoint_id == req.target.endpoint_id && req.source.path == req.target.path {
        return Err(ApiError::invalid("target: the same place as the source"));
    }
    let pool = req.pool.unwrap_or_default();
    let mut agent_id = req.agent_id.clone();
    if !pool.is_empty() {
        check_pool(state, &pool, &options).await?;
        match &agent_id {
            Some(a) if !pool.contains(a) => {
                return Err(ApiError::invalid(
                    "agentId: give the pool's agents in pool, or one agent in agentId",
                ));
            }
            Some(_) => {}
            None => agent_id = pool.first().cloned(),
        }
    }
    // What it gives is its own; the rest comes from its project's settings.
    let m = state
        .store
        .create_migration_given(
            &req.project_id,
            agent_id.as_deref(),
            (&req.source.endpoint_id, &req.source.path),
            (&req.target.endpoint_id, &req.target.path),
            &options,
            Some(&given),
        )
        .await?;
    if pool.is_empty() {
        return Ok(m);
    }
    state.store.set_migration_pool(&m.id, &pool).await?;
    Ok(state.store.get_migration(&m.id).await?)
}

/// Refuses a pool that cannot run a migration with `options`: 2 to 64 agents, each known
/// once; and no include rules of the migration's own (its units are made of include rules).
async fn check_pool(
    state: &AppState,
    pool: &[String],
    options: &MigrationOptions,
) -> Result<(), ApiError> {
    if !(2..=crate::pools::MAX_POOL).contains(&pool.len()) {
        return Err(ApiError::invalid(format!(
            "pool: 2 to {} agents (one agent: give it in agentId)",
            crate::pools::MAX_POOL
        )));
    }
    for (i, a) in pool.iter().enumerate() {
        if pool[..i].contains(a) {
            return Err(ApiError::invalid(format!("pool: {a} is named twice")));
        }
        state.store.get_agent(a).await.map_err(|e| {
            if e.is_not_found() {
                ApiError::invalid(format!("pool: {a}: no such agent"))
            } else {
                e.into()
            }
        })?;
    }
    if !options.filters.include.is_empty() {
        return Err(ApiError::invalid(
            "options.filters.include: a pool's copies are split into parts by include rules of \
             their own; leave out files with exclude rules instead",
        ));
    }
    Ok(())
}

/// A new set of agents for a pool migration.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PoolRequest {
    /// The agents of the pool from now on (2 or more): an agent added takes units of a copy
    /// going on at its next sweep; one removed gets no more (its unit in hand ends as it does).
    pub agent_ids: Vec<String>,
}

/// Sets the agents a pool migration's copies are spread over: agents join or leave it, also
/// while a copy goes on (operator).
#[utoipa::path(put, path = "/v1/migrations/{id}/pool", params(("id" = String, Path)), request_body = PoolRequest, security(("bearer" = [])), responses(
    (status = 200, description = "The migration with its new pool", body = Migration),
    (status = 400, description = "A body that cannot be read", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Not an operator", body = crate::error::ErrorBody),
    (status = 404, description = "No such migration (800)", body = crate::error::ErrorBody),
    (status = 422, description = "A pool it cannot have, or a migration of one agent", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn set_pool(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PoolRequest>,
) -> Result<Json<Migration>, ApiError> {
    caller.require_operator()?;
    let m = state.store.get_migration(&id).await?;
    if m.pool.is_empty() {
        return Err(ApiError::invalid(
            "this migration is run by one agent: make a migration with a pool to spread its copies",
        ));
    }
    check_pool(&state, &req.agent_ids, &m.options).await?;
    state.store.set_migration_pool(&id, &req.agent_ids).await?;
    Ok(Json(state.store.get_migration(&id).await?))
}

/// A pool run's work units.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Units {
    pub count: usize,
    pub items: Vec<crate::store::WorkUnit>,
}

/// The work units a pool migration's run is split into: what each holds, which agent holds
/// its lease and since when, what it did. Empty for a run of one agent.
#[utoipa::path(get, path = "/v1/runs/{id}/units", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "The run's units, in order", body = Units),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "An agent's token", body = crate::error::ErrorBody),
    (status = 404, description = "No such job run (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn units(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Units>, ApiError> {
    let run = readable_run(&state, &caller, &id).await?;
    let items = state.store.run_units(&run.id).await?;
    Ok(Json(Units {
        count: items.len(),
        items,
    }))
}

/// A pool work unit's part of its migration's index, as JSON lines (one file each: its path
/// as a line, size, time, hash, inode and name at the target): what the agent running the unit
/// starts from, whichever agent wrote it. An agent reads only a unit it holds.
#[utoipa::path(get, path = "/v1/units/{id}/index", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "The unit's part of the index, one JSON object a line", content_type = "application/x-ndjson", body = String),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "An agent's token, for a unit it does not hold", body = crate::error::ErrorBody),
    (status = 404, description = "No such work unit (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn unit_index(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let unit = state.store.get_unit(&id).await?;
    caller.may_act_for_agent(unit.holder.as_deref())?;
    let run = state.store.get_run(&unit.run_id).await?;
    let part = crate::pools::part_of(&unit)?;
    let migration = run.migration_id;
    // Streamed a page at a time: memory holds one page, whatever the part's size.
    let pages = futures::stream::unfold(Some(None), move |at| {
        let (state, part, migration) = (state.clone(), part.clone(), migration.clone());
        async move {
            let at = at?;
            match state.store.index_part(&migration, &part, at).await {
                Ok((rows, next)) => {
                    let mut text = String::new();
                    for row in rows {
                        text.push_str(&serde_json::to_string(&row).unwrap_or_default());
                        text.push('\n');
                    }
                    Some((Ok::<_, std::io::Error>(text), next.map(Some)))
                }
                // Cut short: the agent sees a broken body and tries again.
                Err(e) => Some((Err(std::io::Error::other(e.message())), None)),
            }
        }
    });
    let ndjson = [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")];
    Ok(axum::response::IntoResponse::into_response((
        ndjson,
        axum::body::Body::from_stream(pages),
    )))
}

/// The migrations, a page at a time (an agent token sees its own).
#[utoipa::path(get, path = "/v1/migrations", params(Page), security(("bearer" = [])), responses(
    (status = 200, description = "A page of migrations", body = Listing<Migration>),
    (status = 400, description = "limit or offset out of range", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn list_migrations(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Listing<Migration>>, ApiError> {
    let (limit, offset) = page.bounds()?;
    let (count, items) = state
        .store
        .list_migrations(caller.agent(), limit, offset)
        .await?;
    Ok(Json(Listing { count, items }))
}

/// The migration `id`, if the caller may see it.
async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<Migration, ApiError> {
    let m = state.store.get_migration(id).await?;
    caller.may_act_for_agent(m.agent_id.as_deref())?;
    Ok(m)
}

/// One migration.
#[utoipa::path(get, path = "/v1/migrations/{id}", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "The migration", body = Migration),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Another agent's migration", body = crate::error::ErrorBody),
    (status = 404, description = "No such migration (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn get_migration(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Migration>, ApiError> {
    Ok(Json(visible(&state, &caller, &id).await?))
}

/// Deletes a migration that runs nothing (otherwise 409: stop the running command first).
#[utoipa::path(delete, path = "/v1/migrations/{id}", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "The token may not change anything", body = crate::error::ErrorBody),
    (status = 404, description = "No such migration (800)", body = crate::error::ErrorBody),
    (status = 409, description = "A command is running (668-672, 685, 661)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn delete_migration(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_operator()?;
    state.store.get_migration(&id).await?;
    if let Some(run) = state.store.active_runs(&id).await?.first() {
        // Deleting is refused like starting another command would be.
        let s = Situation {
            migration_id: &id,
            active: std::slice::from_ref(run),
            agent: None,
            scanned: true,
        };
        let other = if run.command == CommandKind::Scan {
            CommandKind::Copy
        } else {
            CommandKind::Scan
        };
        decide(other, Action::Start, &s)?;
    }
    state.store.delete_migration(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts, stops, pauses or resumes a command: 202 with its job run, or 409 with the
/// state-validation code that refuses it. Until an agent takes it, a started command is QUEUED.
#[utoipa::path(post, path = "/v1/migrations/{id}/commands", params(("id" = String, Path)), request_body = CommandRequest,
    security(("bearer" = [])), responses(
    (status = 202, description = "Accepted: the job run", body = JobRun),
    (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "A viewer, or another agent's migration", body = crate::error::ErrorBody),
    (status = 404, description = "No such migration (800)", body = crate::error::ErrorBody),
    (status = 409, description = "Refused by the state rules (650-698, 628), or by the agent, which does not run the command (9150)", body = crate::error::ErrorBody),
    (status = 413, description = "Body too large", body = crate::error::ErrorBody),
    (status = 422, description = "Unknown command or action (605), a scan over the job limits (629, 640)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn command(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CommandRequest>,
) -> Result<(StatusCode, Json<JobRun>), ApiError> {
    let run = carry_out(&state, &caller, &id, req).await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// Carries out a command request on migration `id` (operator): the API's and the dashboard's.
pub(crate) async fn carry_out(
    state: &AppState,
    caller: &Caller,
    id: &str,
    req: CommandRequest,
) -> Result<JobRun, ApiError> {
    let (state, id) = (state.clone(), id.to_string());
    caller.note(format!("command.{} {}", req.action, req.command));
    caller.require_operator()?;
    let m = state.store.get_migration(&id).await?;
    let reviewing = req.command == "sync" && req.action == "resume";
    match (&req.reviewed, reviewing) {
        (Some(_), false) => {
            return Err(ApiError::invalid(
                "reviewed: only a resume of a true-up paused for review takes it",
            ));
        }
        (Some(digest), true) => {
            let Some(run) = paused_for_review(&state, &id).await? else {
                return Err(ApiError::invalid(
                    "reviewed: the migration has no true-up paused for review",
                ));
            };
            check_reviewed(&state, &run, digest).await?;
        }
        (None, _) => {}
    }
    if reviewing && paused_for_review(&state, &id).await?.is_some() {
        // Resuming a true-up that paused for review carries out its reviewed deletions.
        caller.note("deletions.confirm");
    }
    let command = api_command(&req.command)?;
    let action = Action::parse(&req.action)
        .ok_or_else(|| ApiError::invalid("action: start, stop, pause or resume"))?;
    let options = match req.options {
        None => None,
        Some(_) if action != Action::Start => {
            return Err(ApiError::invalid("options: only a start takes options"));
        }
        Some(changes) => Some(run_options(&m.options, changes)?),
    };
    let options = match (command, action) {
        (CommandKind::Undo, Action::Start) => {
            let o = options.unwrap_or_else(|| m.options.clone());
            Some(undo_options(&state, &m.id, o).await?)
        }
        _ => options,
    };
    Ok(crate::commands::apply(&state, &m, command, action, options.as_ref()).await?)
}

/// An undo's options: `undoRun` names a job run of this migration that ended with its agent's
/// report; the agent is given its own id of that run (the report's `run_id`), where the run's
/// folder and backups are.
async fn undo_options(
    state: &AppState,
    migration: &str,
    mut o: MigrationOptions,
) -> Result<MigrationOptions, ApiError> {
    let id = o.undo_run.clone().ok_or_else(|| {
        ApiError::invalid(
            "options.undoRun: the job run whose deletions and replacements to put back",
        )
    })?;
    let run = state.store.get_run(&id).await?;
    if run.migration_id != migration {
        return Err(ApiError::invalid(format!(
            "options.undoRun: {id} is a run of another migration"
        )));
    }
    let report = state.store.run_report(&id).await?;
    let engine_run = report
        .as_ref()
        .and_then(|r| r.get("run_id"))
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "options.undoRun: {id} has not ended with its agent's report, so there is \
                 nothing to undo yet"
            ))
        })?;
    o.undo_run = Some(engine_run.to_string());
    Ok(o)
}

/// The migration's options with `changes` (a JSON object of options) laid over them, checked
/// as a migration's are.
fn run_options(
    base: &MigrationOptions,
    changes: serde_json::Value,
) -> Result<MigrationOptions, ApiError> {
    let serde_json::Value::Object(changes) = changes else {
        return Err(ApiError::invalid("options: an object of job options"));
    };
    let mut merged = serde_json::to_value(base).map_err(|e| ApiError::invalid(e.to_string()))?;
    if let Some(o) = merged.as_object_mut() {
        o.extend(changes);
    }
    let options: MigrationOptions =
        serde_json::from_value(merged).map_err(|e| ApiError::invalid(format!("options: {e}")))?;
    check_options(&options)?;
    Ok(options)
}

/// Whether `run` is a true-up paused for a review of its deletions (9080, 9090, 9100).
pub(crate) fn awaits_review(run: &JobRun) -> bool {
    let review = [
        Code::FILE_SYNCHRONISE_REVIEW_TRUE_UP_ERROR,
        Code::INACCESSIBLE_PATH_TRUE_UP_ERROR,
        Code::SYNC_DELETES_TRUE_UP_ERROR,
    ];
    run.command == CommandKind::Sync
        && run.state == godwit_codes::State::Paused
        && run
            .error
            .as_ref()
            .is_some_and(|e| review.iter().any(|c| c.id() == e.code))
}

/// The migration's true-up paused for a review of its deletions, if it has one.
async fn paused_for_review(state: &AppState, migration: &str) -> Result<Option<JobRun>, ApiError> {
    Ok(state
        .store
        .active_runs(migration)
        .await?
        .into_iter()
        .find(awaits_review))
}

/// A review as the API and the dashboard show it: the run's list whole, and its digest.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Review {
    /// The agent's run that paused and wrote the lists.
    pub attempt: Option<String>,
    /// `deletes` or `unreadable`.
    pub list: String,
    /// Paths in the list as it arrived.
    pub count: i64,
    /// Paths the run said its list holds (its report's `true_up`); until `count` reaches it,
    /// the list is still arriving and cannot be confirmed.
    pub expected: Option<i64>,
    /// What a confirmation names the reviewed list of deletions by (`reviewed` of a resume).
    pub digest: Option<String>,
    /// The page of paths, each as the agent's list holds it (one line; `\`, `\n`, `\r`
    /// and `\xNN` escape what would not fit).
    pub items: Vec<String>,
}

/// The paging of a review.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// `deletes` (the default): the files the true-up would delete; `unreadable`: the source
    /// folders it could not read.
    #[param(pattern = "^(deletes|unreadable)$")]
    pub list: Option<String>,
    /// How many paths, 0-100 (default 50).
    #[param(minimum = 0, maximum = 100)]
    pub limit: Option<i64>,
    /// How many to skip, 0-65535 (default 0).
    #[param(minimum = 0, maximum = 65535)]
    pub offset: Option<i64>,
}

/// A page of run `run`'s review list `list`.
pub(crate) async fn review_of(
    state: &AppState,
    run: &JobRun,
    list: &str,
    limit: i64,
    offset: i64,
) -> Result<Review, ApiError> {
    let page = state.store.review(&run.id, list, limit, offset).await?;
    let report = state.store.run_report(&run.id).await?;
    let field = if list == "deletes" {
        "gone_from_source"
    } else {
        "unreadable"
    };
    let expected = report
        .as_ref()
        .and_then(|r| r["true_up"][field].as_i64())
        .filter(|_| page.attempt.is_some());
    Ok(Review {
        digest: state.store.review_digest(&run.id).await?,
        attempt: page.attempt,
        list: list.to_string(),
        count: page.count,
        expected,
        items: page.paths,
    })
}

/// Refuses (1055) a confirmation of `run` unless `digest` names its list of deletions, all
/// of which has arrived.
async fn check_reviewed(state: &AppState, run: &JobRun, digest: &str) -> Result<(), ApiError> {
    let review = review_of(state, run, "deletes", 0, 0).await?;
    let reason = if review.digest.as_deref() != Some(digest) {
        "the run's list now is another one"
    } else if review.expected != Some(review.count) {
        "its list had not all arrived when it was read"
    } else {
        return Ok(());
    };
    Err(ApiError::new(
        Code::GODWIT_REVIEW_CHANGED,
        &[("job_id", &run.id), ("reason", reason)],
    ))
}

/// What a true-up that paused for review would delete (`list=deletes`) or could not read
/// (`list=unreadable`), a page at a time, as its agent sent the lists; and the digest a
/// resume names the reviewed list by. Empty for a run that has not paused for review.
#[utoipa::path(get, path = "/v1/runs/{id}/review", params(("id" = String, Path), ReviewQuery), security(("bearer" = [])), responses(
    (status = 200, description = "A page of the list", body = Review),
    (status = 400, description = "Paging out of range, or an unknown list", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "An agent's token", body = crate::error::ErrorBody),
    (status = 404, description = "No such job run (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn review(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ReviewQuery>,
) -> Result<Json<Review>, ApiError> {
    let (limit, offset) = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .bounds()?;
    let list = q.list.as_deref().unwrap_or("deletes");
    if !crate::store::REVIEW_LISTS.contains(&list) {
        return Err(ApiError::new(Code::HTTP_BAD_REQUEST, &[])
            .details(format!("list: {list} is not deletes or unreadable")));
    }
    let run = readable_run(&state, &caller, &id).await?;
    Ok(Json(review_of(&state, &run, list, limit, offset).await?))
}

/// The command `text` names, if the API takes it; 422 otherwise.
fn api_command(text: &str) -> Result<CommandKind, ApiError> {
    CommandKind::parse(text)
        .filter(|c| CommandKind::API.contains(c))
        .ok_or_else(|| {
            let known: Vec<&str> = CommandKind::API.iter().map(|c| c.as_str()).collect();
            ApiError::invalid(format!(
                "command: {text} is not one of {}",
                known.join(", ")
            ))
        })
}

/// The job runs of a migration, newest first.
#[utoipa::path(get, path = "/v1/migrations/{id}/runs", params(("id" = String, Path), Page), security(("bearer" = [])), responses(
    (status = 200, description = "A page of job runs", body = Listing<JobRun>),
    (status = 400, description = "limit or offset out of range", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Another agent's migration", body = crate::error::ErrorBody),
    (status = 404, description = "No such migration (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Listing<JobRun>>, ApiError> {
    caller.require_person()?;
    let (limit, offset) = page.bounds()?;
    state.store.get_migration(&id).await?;
    let (count, items) = state.store.list_runs(&id, limit, offset).await?;
    Ok(Json(Listing { count, items }))
}

/// The job run `id`, for a person's token (an agent reports its runs, it does not read them).
async fn readable_run(state: &AppState, caller: &Caller, id: &str) -> Result<JobRun, ApiError> {
    caller.require_person()?;
    Ok(state.store.get_run(id).await?)
}

/// One job run: its status code and name, counters and times.
#[utoipa::path(get, path = "/v1/runs/{id}", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "The job run", body = JobRun),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Another agent's migration", body = crate::error::ErrorBody),
    (status = 404, description = "No such job run (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn get_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobRun>, ApiError> {
    Ok(Json(readable_run(&state, &caller, &id).await?))
}

/// The paging and filter of a copy log.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CopylogQuery {
    /// Only records with this code (AZSM2062).
    pub status: Option<String>,
    /// Only records whose path holds this text (case counts).
    pub path: Option<String>,
    /// How many records, 0-100 (default 50).
    #[param(minimum = 0, maximum = 100)]
    pub limit: Option<i64>,
    /// How many to skip, 0-65535 (default 0).
    #[param(minimum = 0, maximum = 65535)]
    pub offset: Option<i64>,
}

/// One copy-log record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CopylogRecord {
    pub path: String,
    pub code: String,
    pub status: String,
    pub message: String,
    pub size: i64,
}

/// A job run's copy log, a page at a time, optionally of one status. Agents upload it in pages
/// as they go (the agent issue); until then it is empty.
#[utoipa::path(get, path = "/v1/runs/{id}/copylog", params(("id" = String, Path), CopylogQuery), security(("bearer" = [])), responses(
    (status = 200, description = "A page of records", body = Listing<CopylogRecord>),
    (status = 400, description = "Paging out of range, or an unknown status code", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Another agent's migration", body = crate::error::ErrorBody),
    (status = 404, description = "No such job run (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn copylog(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<CopylogQuery>,
) -> Result<Json<Listing<CopylogRecord>>, ApiError> {
    let (limit, offset) = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .bounds()?;
    if let Some(s) = &q.status
        && godwit_codes::Code::lookup(s).is_err()
    {
        return Err(ApiError::new(Code::HTTP_BAD_REQUEST, &[])
            .details(format!("status: {s} is not a code of the catalog")));
    }
    readable_run(&state, &caller, &id).await?;
    let (count, records) = state
        .store
        .copylog(&id, q.status.as_deref(), q.path.as_deref(), limit, offset)
        .await?;
    let items = records
        .into_iter()
        .map(|r| CopylogRecord {
            status: godwit_codes::Code::lookup(&r.code)
                .map(|c| c.name().to_string())
                .unwrap_or_default(),
            path: r.path,
            code: r.code,
            message: r.message,
            size: r.size,
        })
        .collect();
    Ok(Json(Listing { count, items }))
}

/// A job run and the report its agent sent when it ended.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunReport {
    pub run: JobRun,
    /// What the run did: files, bytes, files per status code, deletions, time.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

/// A finished job run's report: 404 with 645 until the run has ended.
#[utoipa::path(get, path = "/v1/runs/{id}/report", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "The report", body = RunReport),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Another agent's migration", body = crate::error::ErrorBody),
    (status = 404, description = "No such run (800), or not ended yet (645)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RunReport>, ApiError> {
    let run = readable_run(&state, &caller, &id).await?;
    if is_active(run.state) {
        return Err(ApiError::new(
            Code::JOB_RUN_REPORT_NOT_AVAILABLE,
            &[
                ("job_id", &run.id),
                ("state", &state_text(run.state).to_lowercase()),
            ],
        ));
    }
    let report = state
        .store
        .run_report(&run.id)
        .await?
        .unwrap_or(serde_json::Value::Null);
    Ok(Json(RunReport { run, report }))
}

/// Schedules a command: 1 to 20 repeats (513), a known frequency (514), a start not in the past
/// (515), on an agent that takes scheduled jobs (516).
#[utoipa::path(post, path = "/v1/migrations/{id}/schedules", params(("id" = String, Path)), request_body = NewSchedule,
    security(("bearer" = [])), responses(
    (status = 201, description = "Created", body = Schedule),
    (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "The token may not change anything", body = crate::error::ErrorBody),
    (status = 404, description = "No such migration (800)", body = crate::error::ErrorBody),
    (status = 409, description = "The agent takes no scheduled jobs (516), or does not run the command (9150)", body = crate::error::ErrorBody),
    (status = 413, description = "Body too large", body = crate::error::ErrorBody),
    (status = 422, description = "Invalid schedule (513, 514, 515, 605)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn create_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NewSchedule>,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    caller.require_operator()?;
    let m = state.store.get_migration(&id).await?;
    let command = api_command(&req.command)?;
    if command == CommandKind::Undo {
        // An undo names the run it puts back; a timetable cannot.
        return Err(ApiError::invalid(
            "command: an undo is started for one run (options.undoRun), not on a schedule",
        ));
    }
    let agent = match &m.agent_id {
        Some(a) => Some(state.store.get_agent(a).await?),
        None => None,
    };
    crate::commands::runnable(command, agent.as_ref())?;
    crate::commands::pooled(&m, command)?;
    crate::commands::runnable_between(&state, &m, command, &m.options).await?;
    if !(1..=20).contains(&req.repeat) {
        return Err(ApiError::new(
            Code::ERR_MIGRATION_CONFIG_SCHEDULER_TIMES,
            &[("max", "20"), ("given", &req.repeat.to_string())],
        ));
    }
    if !["once", "hourly", "daily", "weekly"].contains(&req.frequency.as_str()) {
        return Err(ApiError::new(
            Code::ERR_MIGRATION_CONFIG_SCHEDULER_FREQUENCY,
            &[("given", &req.frequency)],
        )
        .details("The frequency is once, hourly, daily or weekly."));
    }
    let start = humantime::parse_rfc3339_weak(&req.start)
        .map_err(|e| ApiError::invalid(format!("start: {e} (write it as 2026-12-01T02:00:00Z)")))?;
    let start_ms = start
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    if start_ms < crate::store::now_ms() {
        return Err(ApiError::new(
            Code::ERR_MIGRATION_CONFIG_SCHEDULER_TIME_IN_PAST,
            &[("start", &req.start)],
        ));
    }
    if let Some(a) = &m.agent_id
        && !state.store.get_agent(a).await?.scheduling
    {
        return Err(ApiError::new(
            Code::ERR_MIGRATION_CONFIG_SCHEDULER_ENABLED,
            &[("agent_id", a)],
        ));
    }
    let s = state
        .store
        .create_schedule(&id, command, &req.frequency, req.repeat, start_ms)
        .await?;
    Ok((StatusCode::CREATED, Json(s)))
}

/// The schedules of a migration.
#[utoipa::path(get, path = "/v1/migrations/{id}/schedules", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "The schedules", body = Vec<Schedule>),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Another agent's migration", body = crate::error::ErrorBody),
    (status = 404, description = "No such migration (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn list_schedules(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<Schedule>>, ApiError> {
    caller.require_person()?;
    state.store.get_migration(&id).await?;
    Ok(Json(state.store.list_schedules(&id).await?))
}

/// One failed job run, as seed 003 lists failed migrations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MigrationError {
    /// `{"error_code": ..., "error_param": [...], "error_params": {...}}` as a JSON string:
    /// the parameters in the message's order (seed 004), and by name.
    pub error_json: String,
    pub migration_id: String,
    pub job_run_id: String,
    pub command: String,
    pub name: String,
}

/// The failed job runs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorList {
    pub count: i64,
    pub migration_errors: Vec<MigrationError>,
}

/// A run's error as `GET /v1/errors` gives it.
fn error_json(e: &crate::records::RunError) -> String {
    let named: Vec<(String, String)> = e
        .params
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    let template = godwit_codes::Code::lookup(&e.code).map_or("", |c| c.info().message);
    serde_json::json!({
        "error_code": e.code,
        "error_param": crate::error::in_message_order(template, &named),
        "error_params": e.params,
    })
    .to_string()
}

/// Job runs that failed, newest first (a run paused for review is not listed: it waits for a
/// person): limit 0-100 (default 50), offset 0-65535.
#[utoipa::path(get, path = "/v1/errors", params(Page), security(("bearer" = [])), responses(
    (status = 200, description = "The failed runs", body = ErrorList),
    (status = 400, description = "limit or offset out of range", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn errors(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<ErrorList>, ApiError> {
    caller.require_person()?;
    let (limit, offset) = page.bounds()?;
    let (count, runs) = state.store.failed_runs(limit, offset).await?;
    let migration_errors = runs
        .into_iter()
        .filter_map(|r| {
            let e = r.error?;
            Some(MigrationError {
                error_json: error_json(&e),
                name: e.name,
                migration_id: r.migration_id,
                job_run_id: r.id,
                command: r.command.to_string(),
            })
        })
        .collect();
    Ok(Json(ErrorList {
        count,
        migration_errors,
    }))
}

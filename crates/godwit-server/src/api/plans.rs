//! Planning a project: its simulated scan, run by an agent (`POST
//! /v1/projects/{id}/simulate-scan`), the project's runs, the recommendation the last scan
//! makes (`GET /v1/projects/{id}/recommendation`) and the migrations made of it in one call
//! (`POST /v1/projects/{id}/recommendation/apply`).

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use godwit_codes::{Code, State as RunState};
use godwit_spec::CommandKind;
use serde::{Deserialize, Serialize};

use super::migrations::{Side, check_options, check_path};
use super::{ApiJson, ApiQuery, Listing, Page};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::records::{Migration, MigrationOptions, ProjectRun};
use crate::rules::Action;

/// A simulated scan of a source for a project.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SimulateScanRequest {
    /// The agent that walks the source: one that sees it (has it mounted, holds its
    /// credentials).
    pub agent_id: String,
    /// The source to cut into jobs.
    pub source: Side,
    /// The most files one proposed job may hold (default: the control plane's job limit, 629).
    #[schema(minimum = 1)]
    pub job_max_files: Option<u64>,
    /// The most bytes one proposed job may hold (default: the control plane's, 640).
    #[schema(minimum = 1)]
    pub job_max_bytes: Option<u64>,
    /// Still going on after this many seconds, the scan fails with 720 (default 86,400: a day;
    /// at most 30 days).
    #[schema(minimum = 1, maximum = 2592000)]
    pub time_limit_secs: Option<u64>,
}

/// How long a request waits for what it started.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Wait {
    /// Wait up to this many seconds (0-600, default 0) for the run to end: 200 with the run
    /// if it ended, 504 with its time-out code if its time limit passed, else 202.
    #[param(minimum = 0, maximum = 600)]
    pub wait: Option<u64>,
}

/// The default and the longest time limit of a simulated scan.
const SCAN_TIME_LIMIT: u64 = 86_400;
const SCAN_TIME_LIMIT_MAX: u64 = 30 * 86_400;

/// Starts a simulated scan of a source for the project on an agent: the agent walks the source
/// once into a folder tree kept on its disk and proposes jobs that each stay under the job
/// limits; the control plane keeps the proposal (`GET /v1/projects/{id}/recommendation`). The
/// project's filters apply. One at a time per project.
#[utoipa::path(post, path = "/v1/projects/{id}/simulate-scan", params(("id" = String, Path), Wait),
    request_body = SimulateScanRequest, security(("bearer" = [])), responses(
    (status = 200, description = "It ended within the wait: the run", body = ProjectRun),
    (status = 202, description = "Started: the run, QUEUED until its agent takes it", body = ProjectRun),
    (status = 400, description = "Malformed JSON or query", body = crate::error::ErrorBody),
    (status = 404, description = "No such project (800)", body = crate::error::ErrorBody),
    (status = 409, description = "The agent is not active (721) or does not run simulated scans (9150); a simulated scan of the project is going on (AZSM1049); the agent upgrades (680, 681)", body = crate::error::ErrorBody),
    (status = 413, description = "Body too large", body = crate::error::ErrorBody),
    (status = 422, description = "Invalid content (605)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody),
    (status = 504, description = "Its time limit passed while the request waited (720)", body = crate::error::ErrorBody)
))]
pub async fn simulate_scan(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(wait): ApiQuery<Wait>,
    ApiJson(req): ApiJson<SimulateScanRequest>,
) -> Result<(StatusCode, Json<ProjectRun>), ApiError> {
    caller.require_operator()?;
    let wait = wait_of(wait)?;
    let project = state.store.get_project(&id).await?;
    check_path("source.path", &req.source.path)?;
    if req.job_max_files == Some(0) || req.job_max_bytes == Some(0) {
        return Err(ApiError::invalid(
            "jobMaxFiles, jobMaxBytes: a job holds at least 1 file and 1 byte",
        ));
    }
    let limit = req.time_limit_secs.unwrap_or(SCAN_TIME_LIMIT);
    if !(1..=SCAN_TIME_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::invalid(
            "timeLimitSecs: 1 to 2,592,000 seconds (30 days)",
        ));
    }
    let source = state
        .store
        .get_endpoint(&req.source.endpoint_id)
        .await
        .map_err(no_such("source.endpointId"))?;
    let agent = state
        .store
        .get_agent(&req.agent_id)
        .await
        .map_err(no_such("agentId"))?;
    if agent.state.code != Code::AGENT_STATE_ACTIVE.id() || !state.hub.is_connected(&agent.id).await
    {
        // Commands are kept only for agents that are there to take them.
        return Err(ApiError::new(
            Code::SIMULATE_SCAN_AGENT_INACTIVE_ERR,
            &[("agent_id", &agent.id)],
        )
        .details(format!(
            "Agent {} is {} ({}); start or reconnect it, then send the scan again.",
            agent.id, agent.state.code, agent.state.name
        )));
    }
    // What it runs, it said when it connected.
    crate::commands::runnable(CommandKind::SimulateScan, Some(&agent))?;
    crate::upgrades::not_upgrading(&state, &agent).await?;
    // The project's filters apply, as they will to its migrations; the limits are the
    // request's, else the control plane's own.
    let mut options: MigrationOptions =
        serde_json::from_value(serde_json::Value::Object(project.settings.clone()))
            .unwrap_or_default();
    options.job_max_files = Some(
        req.job_max_files
            .unwrap_or(state.limits.job_max_files.max(1) as u64),
    );
    options.job_max_bytes = Some(
        req.job_max_bytes
            .unwrap_or(state.limits.job_max_bytes.max(1) as u64),
    );
    let request = serde_json::json!({
        "source": godwit_spec::protocol::join_location(&source.uri, &req.source.path),
        "sourceEndpoint": source.id,
        "sourcePath": req.source.path,
        "options": options,
    });
    let run = start_project_run(
        &state,
        &id,
        Some(&agent.id),
        CommandKind::SimulateScan,
        &request,
        limit,
    )
    .await?;
    state
        .hub
        .send(&agent.id, crate::projects::command_message(&run))
        .await;
    finish_or_wait(&state, run, wait).await
}

/// A new project run of `command` that its time limit (`limit` seconds) ends; AZSM1049 naming
/// the one going on, when there is one.
async fn start_project_run(
    state: &AppState,
    project_id: &str,
    agent_id: Option<&str>,
    command: CommandKind,
    request: &serde_json::Value,
    limit: u64,
) -> Result<ProjectRun, ApiError> {
    let deadline = crate::store::now_ms().saturating_add(
        i64::try_from(limit)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000),
    );
    if let Some(run) = state
        .store
        .create_project_run(project_id, agent_id, command, request, deadline)
        .await?
    {
        return Ok(run);
    }
    let going = state
        .store
        .last_project_run(project_id, command)
        .await?
        .map(|r| r.id)
        .unwrap_or_default();
    let what = match command {
        CommandKind::Validate => "validation",
        _ => "simulated scan",
    };
    Err(ApiError::new(
        Code::GODWIT_PROJECT_RUN_INPROGRESS,
        &[
            ("project_id", project_id),
            ("command", what),
            ("run_id", &going),
        ],
    ))
}

/// The `wait` asked for, within its bounds.
fn wait_of(wait: Wait) -> Result<Duration, ApiError> {
    match wait.wait.unwrap_or(0) {
        w @ 0..=600 => Ok(Duration::from_secs(w)),
        w => Err(ApiError::new(Code::HTTP_BAD_REQUEST, &[])
            .details(format!("wait must be 0 to 600 seconds, not {w}"))),
    }
}

/// Waits up to `wait` for `run` to end: 200 with it when it did, 202 when it is still going
/// on. A run that failed with a code the API answers with (720 and 725: 504, 728: 422) is
/// answered with that code; one that failed with a job's code (9110, 9140, ...) is a result, 200.
async fn finish_or_wait(
    state: &AppState,
    mut run: ProjectRun,
    wait: Duration,
) -> Result<(StatusCode, Json<ProjectRun>), ApiError> {
    let until = tokio::time::Instant::now() + wait;
    while matches!(run.state, RunState::Queued | RunState::Running) {
        let now = tokio::time::Instant::now();
        if now >= until {
            return Ok((StatusCode::ACCEPTED, Json(run)));
        }
        // Settled now rather than at the next sweep (a validation that gathers ends there).
        let settled = if crate::store::now_ms() >= run.deadline_ms {
            crate::projects::settle(state).await;
            true
        } else {
            run.command == CommandKind::Validate && crate::projects::gather(state, &run).await?
        };
        if !settled {
            tokio::time::sleep((until - now).min(Duration::from_millis(200))).await;
        }
        run = state.store.get_project_run(&run.id).await?;
    }
    if let Some(e) = &run.error
        && let Ok(code) = Code::lookup(&e.code)
        && code.info().http_status.is_some()
        && code.info().scope == godwit_codes::Scope::Api
    {
        let params = crate::projects::params_of(&e.params);
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        return Err(ApiError::new(code, &params).details(format!(
            "Run {} of project {} ended FAILED with it; GET /v1/projects/{}/runs/{} shows it.",
            run.id, run.project_id, run.project_id, run.id
        )));
    }
    Ok((StatusCode::OK, Json(run)))
}

fn no_such(field: &'static str) -> impl Fn(crate::error::DomainError) -> ApiError {
    move |e| {
        if e.is_not_found() {
            ApiError::invalid(format!("{field}: no such id"))
        } else {
            e.into()
        }
    }
}

/// The project's runs (its simulated scans), newest first.
#[utoipa::path(get, path = "/v1/projects/{id}/runs", params(("id" = String, Path), Page), security(("bearer" = [])), responses(
    (status = 200, description = "A page of the project's runs", body = Listing<ProjectRun>),
    (status = 400, description = "limit or offset out of range", body = crate::error::ErrorBody),
    (status = 404, description = "No such project (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn list_project_runs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Listing<ProjectRun>>, ApiError> {
    caller.require_person()?;
    let (limit, offset) = page.bounds()?;
    state.store.get_project(&id).await?;
    let (count, items) = state.store.list_project_runs(&id, limit, offset).await?;
    Ok(Json(Listing { count, items }))
}

/// One of the project's runs.
#[utoipa::path(get, path = "/v1/projects/{id}/runs/{run_id}", params(("id" = String, Path), ("run_id" = String, Path)),
    security(("bearer" = [])), responses(
    (status = 200, description = "The run", body = ProjectRun),
    (status = 404, description = "No such project or run (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn get_project_run(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, run_id)): Path<(String, String)>,
) -> Result<Json<ProjectRun>, ApiError> {
    caller.require_person()?;
    let run = state.store.get_project_run(&run_id).await?;
    if run.project_id != id {
        return Err(ApiError::not_found("project run", &run_id));
    }
    Ok(Json(run))
}

/// One proposed job: the include rules that select its files, and what they hold.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProposedJob {
    /// From 1, in the order of the source's folders.
    pub number: usize,
    pub include: Vec<String>,
    pub files: u64,
    pub bytes: u64,
}

/// A folder whose own files exceed a job limit: it cannot be cut on folder boundaries.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OversizedFolder {
    pub path: String,
    pub files: u64,
    pub bytes: u64,
}

/// The job limits a proposal keeps.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobLimits {
    pub files: u64,
    pub bytes: u64,
}

/// How the project's last simulated scan proposes to cut its source into jobs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub project_id: String,
    /// The simulated scan it comes from.
    pub run_id: String,
    pub agent_id: String,
    pub source_endpoint: String,
    pub source_path: String,
    /// When the scan ended.
    pub ended_ms: Option<i64>,
    pub limits: JobLimits,
    pub folders: u64,
    pub files: u64,
    pub bytes: u64,
    /// Paths the scan could not read: their files are in no job.
    pub unreadable: u64,
    pub jobs: Vec<ProposedJob>,
    /// Folders too large to cut; each is a job alone over the limits, and the proposal cannot
    /// be applied while there are any (9130).
    pub oversized: Vec<OversizedFolder>,
}

/// The scan's report, as the agent sends it in its summary's `plan`.
#[derive(Debug, Deserialize)]
struct Plan {
    folders: u64,
    files: u64,
    bytes: u64,
    #[serde(default)]
    unreadable: u64,
    limits: JobLimits,
    jobs: Vec<PlannedJob>,
    #[serde(default)]
    oversized: Vec<OversizedFolder>,
}

#[derive(Debug, Deserialize)]
struct PlannedJob {
    include: Vec<String>,
    files: u64,
    bytes: u64,
}

/// The project's current recommendation: from its newest simulated scan that has ended, if
/// that one has a proposal (723 if not, or if the project's filters changed since it ran; 729
/// if an older godwit made it).
async fn recommendation_of(state: &AppState, project_id: &str) -> Result<Recommendation, ApiError> {
    let project = state.store.get_project(project_id).await?;
    let none = |why: String| {
        ApiError::new(Code::SPLIT_JOBS_NOT_FOUND, &[("project_id", project_id)]).details(why)
    };
    let Some(run) = state
        .store
        .last_project_run(project_id, CommandKind::SimulateScan)
        .await?
    else {
        return Err(none(format!(
            "Project {project_id} has had no simulated scan: POST \
             /v1/projects/{project_id}/simulate-scan makes one."
        )));
    };
    if matches!(run.state, RunState::Queued | RunState::Running) {
        return Err(none(format!(
            "The simulated scan {} is still going on ({} files so far); ask again when it has \
             ended.",
            run.id, run.files
        )));
    }
    let Some(report) = run.report.as_ref().filter(|r| !r["plan"].is_null()) else {
        let why = run
            .error
            .as_ref()
            .map(|e| format!("it failed with {} {}", e.code, e.name))
            .unwrap_or_else(|| "it found nothing to propose".into());
        return Err(none(format!(
            "The last simulated scan ({}) proposed no jobs: {why}. Fix that and run it again.",
            run.id
        )));
    };
    let format = report["format"].as_i64().unwrap_or(0);
    if format < crate::projects::REPORT_FORMAT || run.format < crate::projects::REPORT_FORMAT {
        return Err(ApiError::new(
            Code::CONFIG_INVALID_OLD_PROJECT_ERROR,
            &[("project_id", project_id)],
        )
        .details(format!(
            "The simulated scan {} is of format {format}; this control plane reads {}.",
            run.id,
            crate::projects::REPORT_FORMAT
        )));
    }
    // The scan walked with the project's filters of the time: other filters now would select
    // other files than its jobs count.
    let then = &run.request["options"]["filters"];
    let now = serde_json::from_value::<MigrationOptions>(serde_json::Value::Object(
        project.settings.clone(),
    ))
    .map(|o| serde_json::to_value(o.filters).unwrap_or_default())
    .unwrap_or_default();
    if *then != now {
        return Err(none(format!(
            "The project's filters changed since the simulated scan {} ran, so its proposal is \
             stale: run the simulated scan again.",
            run.id
        )));
    }
    let plan: Plan = serde_json::from_value(report["plan"].clone()).map_err(|e| {
        ApiError::new(
            Code::CONFIG_INVALID_OLD_PROJECT_ERROR,
            &[("project_id", project_id)],
        )
        .details(format!(
            "The simulated scan {} cannot be read: {e}.",
            run.id
        ))
    })?;
    Ok(Recommendation {
        project_id: project_id.to_string(),
        run_id: run.id.clone(),
        agent_id: run.agent_id.clone().unwrap_or_default(),
        source_endpoint: run.request["sourceEndpoint"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        source_path: run.request["sourcePath"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        ended_ms: run.ended_ms,
        limits: plan.limits,
        folders: plan.folders,
        files: plan.files,
        bytes: plan.bytes,
        unreadable: plan.unreadable,
        jobs: plan
            .jobs
            .into_iter()
            .enumerate()
            .map(|(i, j)| ProposedJob {
                number: i + 1,
                include: j.include,
                files: j.files,
                bytes: j.bytes,
            })
            .collect(),
        oversized: plan.oversized,
    })
}

/// How the project's last simulated scan proposes to cut its source into jobs, each under the
/// job limits, cut on folder boundaries: every file of the source (but those the filters leave
/// out or that could not be read) is in exactly one job.
#[utoipa::path(get, path = "/v1/projects/{id}/recommendation", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "The proposal", body = Recommendation),
    (status = 404, description = "No such project (800), or no current proposal (723)", body = crate::error::ErrorBody),
    (status = 409, description = "The scan is from an older godwit (729)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn get_recommendation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Recommendation>, ApiError> {
    caller.require_person()?;
    Ok(Json(recommendation_of(&state, &id).await?))
}

/// Where the proposed jobs go.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApplyRequest {
    /// The target of every job (each job copies its part of the source there, in place).
    pub target: Side,
    /// The agent that runs the jobs (default: the one that made the scan).
    pub agent_id: Option<String>,
    /// Options every job's migration takes; its include rules are the job's own.
    #[serde(default)]
    #[schema(value_type = Option<MigrationOptions>)]
    pub options: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The migrations a proposal made (or had made before).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Applied {
    /// How many this call created (0 when every job had its migration already).
    pub created: usize,
    /// One a job, in the proposal's order.
    pub migrations: Vec<Migration>,
}

/// Makes a migration of each job of the project's recommendation, in one call: the scan's
/// source to `target`, with the job's include rules and the project's filters of the scan.
/// Applying again makes nothing new (a job's migration is found by its source, target and
/// rules). A proposal with a folder too large to cut is not applied (9130).
#[utoipa::path(post, path = "/v1/projects/{id}/recommendation/apply", params(("id" = String, Path)),
    request_body = ApplyRequest, security(("bearer" = [])), responses(
    (status = 200, description = "Every job had its migration already", body = Applied),
    (status = 201, description = "Migrations made", body = Applied),
    (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
    (status = 404, description = "No such project (800), or no current proposal (723)", body = crate::error::ErrorBody),
    (status = 409, description = "The scan is from an older godwit (729)", body = crate::error::ErrorBody),
    (status = 413, description = "Body too large", body = crate::error::ErrorBody),
    (status = 422, description = "Invalid content (605, 634-636), or a folder too large to cut (9130)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn apply_recommendation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ApplyRequest>,
) -> Result<(StatusCode, Json<Applied>), ApiError> {
    caller.require_operator()?;
    let rec = recommendation_of(&state, &id).await?;
    if let Some(big) = rec.oversized.first() {
        return Err(ApiError::new(
            Code::SPLIT_JOBS_ERROR,
            &[(
                "reason",
                &format!(
                    "the folder {} holds {} files and {} bytes directly, over the job limits \
                     of {} files and {} bytes",
                    if big.path.is_empty() { "." } else { &big.path },
                    big.files,
                    big.bytes,
                    rec.limits.files,
                    rec.limits.bytes
                ),
            )],
        )
        .details(
            "Raise the limits and run the simulated scan again, or split that folder at the \
             source.",
        ));
    }
    check_path("target.path", &req.target.path)?;
    state
        .store
        .get_endpoint(&req.target.endpoint_id)
        .await
        .map_err(no_such("target.endpointId"))?;
    let agent_id = req.agent_id.clone().unwrap_or(rec.agent_id.clone());
    state
        .store
        .get_agent(&agent_id)
        .await
        .map_err(no_such("agentId"))?;
    if req.target.endpoint_id == rec.source_endpoint && req.target.path == rec.source_path {
        return Err(ApiError::invalid("target: the same place as the source"));
    }
    let given = req.options.clone().unwrap_or_default();
    if given
        .get("filters")
        .is_some_and(|f| f.get("include").is_some())
    {
        return Err(ApiError::invalid(
            "options.filters.include: each job's include rules are its own",
        ));
    }
    // The filters the scan walked with (the project's, unless the request gives its own),
    // and each job's rules.
    let project = state.store.get_project(&id).await?;
    let mut filters = given
        .get("filters")
        .or_else(|| project.settings.get("filters"))
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    let mut made = Vec::with_capacity(rec.jobs.len());
    let mut created = 0;
    for job in &rec.jobs {
        filters["include"] = serde_json::json!(job.include);
        let mut own = given.clone();
        own.insert("filters".into(), filters.clone());
        let options: MigrationOptions =
            serde_json::from_value(serde_json::Value::Object(own.clone()))
                .map_err(|e| ApiError::invalid(format!("options: {e}")))?;
        check_options(&options)?;
        let source = (rec.source_endpoint.as_str(), rec.source_path.as_str());
        let target = (req.target.endpoint_id.as_str(), req.target.path.as_str());
        let scope = godwit_spec::filter::scope_of(&job.include);
        if let Some(m) = state.store.find_migration(source, target, &scope).await? {
            made.push(m);
            continue;
        }
        let m = state
            .store
            .create_migration_given(&id, Some(&agent_id), source, target, &options, Some(&own))
            .await?;
        created += 1;
        made.push(m);
    }
    let status = if created > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(Applied {
            created,
            migrations: made,
        }),
    ))
}

/// A validation of the project.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValidateRequest {
    /// Still going on after this many seconds, the validation fails with 725 and its
    /// migrations' runs are stopped (default 3,600; at most 30 days).
    #[schema(minimum = 1, maximum = 2592000)]
    pub time_limit_secs: Option<u64>,
}

/// The default time limit of a validation.
const VALIDATE_TIME_LIMIT: u64 = 3_600;

/// Validates every migration of the project (but those finalized), each on its own agent: the
/// source readable, the target writable (a probe written and removed), names and sizes the
/// target profile holds, the job limits. One `validate` run a migration (listed with its runs);
/// the project run gathers them: 162 when nothing was found, else 161 with every finding and
/// its code in its report (`GET /v1/projects/{id}/runs/{run_id}/report`), its error 9140, or
/// 728 when the findings are names the targets cannot hold and the project does not sanitize
/// on the fly.
#[utoipa::path(post, path = "/v1/projects/{id}/validate", params(("id" = String, Path), Wait),
    request_body = ValidateRequest, security(("bearer" = [])), responses(
    (status = 200, description = "It ended within the wait: the run (162, or 161 with 9140)", body = ProjectRun),
    (status = 202, description = "Started: the run, RUNNING while its migrations' runs go on", body = ProjectRun),
    (status = 400, description = "Malformed JSON or query", body = crate::error::ErrorBody),
    (status = 404, description = "No such project (800)", body = crate::error::ErrorBody),
    (status = 409, description = "An agent is not active (726) or has no validation (9150), a migration is busy (661 and the like), a validation of the project is going on (AZSM1049), or an agent upgrades (680, 681)", body = crate::error::ErrorBody),
    (status = 413, description = "Body too large", body = crate::error::ErrorBody),
    (status = 422, description = "Invalid content (605); the project has nothing to validate, or it ended with 728", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody),
    (status = 504, description = "Its time limit passed while the request waited (725)", body = crate::error::ErrorBody)
))]
pub async fn validate_project(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(wait): ApiQuery<Wait>,
    ApiJson(req): ApiJson<ValidateRequest>,
) -> Result<(StatusCode, Json<ProjectRun>), ApiError> {
    caller.require_operator()?;
    let wait = wait_of(wait)?;
    state.store.get_project(&id).await?;
    let limit = req.time_limit_secs.unwrap_or(VALIDATE_TIME_LIMIT);
    if !(1..=SCAN_TIME_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::invalid(
            "timeLimitSecs: 1 to 2,592,000 seconds (30 days)",
        ));
    }
    // Its migrations that can still run something; a finalized one is over.
    let mut migrations = Vec::new();
    for m in state.store.project_migrations(&id).await? {
        if state
            .store
            .last_success(&m.id, CommandKind::Finalize)
            .await?
            .is_none()
        {
            migrations.push(m);
        }
    }
    if migrations.is_empty() {
        return Err(ApiError::new(
            Code::VALIDATION_INVALID_CONFIG_ERROR,
            &[
                ("project_id", &id),
                (
                    "reason",
                    "it has no migration to validate (finalized ones are over)",
                ),
            ],
        ));
    }
    // Every agent there and able, and every migration idle, before anything is queued.
    for m in &migrations {
        let Some(agent_id) = &m.agent_id else {
            return Err(ApiError::new(
                Code::VALIDATION_INVALID_CONFIG_ERROR,
                &[
                    ("project_id", &id),
                    (
                        "reason",
                        &format!("migration {} has no agent to run it", m.id),
                    ),
                ],
            ));
        };
        let agent = state.store.get_agent(agent_id).await?;
        if agent.state.code != Code::AGENT_STATE_ACTIVE.id()
            || !state.hub.is_connected(&agent.id).await
        {
            return Err(ApiError::new(
                Code::VALIDATE_PROJECT_AGENT_INACTIVE_ERR,
                &[("agent_id", &agent.id)],
            )
            .details(format!(
                "Agent {} of migration {} is {} ({}); start or reconnect it, then validate \
                 again. Nothing was queued.",
                agent.id, m.id, agent.state.code, agent.state.name
            )));
        }
        crate::commands::runnable(CommandKind::Validate, Some(&agent))?;
        crate::upgrades::not_upgrading(&state, &agent).await?;
        if let Some(busy) = state.store.active_runs(&m.id).await?.first() {
            return Err(crate::rules::busy(&m.id, busy.command).into());
        }
    }
    let request = serde_json::json!({
        "migrations": migrations.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
    });
    let run = start_project_run(&state, &id, None, CommandKind::Validate, &request, limit).await?;
    // One validate run a migration, on its agent. A migration that got busy in between is
    // recorded with the code that refused it, as a finding of its own.
    let mut runs = serde_json::Map::new();
    for m in &migrations {
        match crate::commands::apply(&state, m, CommandKind::Validate, Action::Start, None).await {
            Ok(r) => {
                runs.insert(m.id.clone(), serde_json::Value::String(r.id));
            }
            Err(e) => {
                let r = state
                    .store
                    .refused_run(&m.id, CommandKind::Validate, &e)
                    .await?;
                runs.insert(m.id.clone(), serde_json::Value::String(r.id));
            }
        }
    }
    let mut request = request;
    request["runs"] = serde_json::Value::Object(runs);
    state
        .store
        .set_project_run_request(&run.id, &request)
        .await?;
    state
        .store
        .set_project_run(&run.id, RunState::Running, None, None, None)
        .await?;
    let run = state.store.get_project_run(&run.id).await?;
    finish_or_wait(&state, run, wait).await
}

/// Stops one of the project's runs: a validation ends STOPPED (165) and its migrations' runs
/// are stopped; a simulated scan ends FAILED with AZSM1045 (the seed has no stopped status for
/// it) and its agent is told to stop. A run that has ended is answered as it is.
#[utoipa::path(post, path = "/v1/projects/{id}/runs/{run_id}/stop", params(("id" = String, Path), ("run_id" = String, Path)),
    security(("bearer" = [])), responses(
    (status = 200, description = "The run, ended", body = ProjectRun),
    (status = 404, description = "No such project or run (800)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn stop_project_run(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, run_id)): Path<(String, String)>,
) -> Result<Json<ProjectRun>, ApiError> {
    caller.require_operator()?;
    let run = state.store.get_project_run(&run_id).await?;
    if run.project_id != id {
        return Err(ApiError::not_found("project run", &run_id));
    }
    Ok(Json(crate::projects::stop(&state, &run).await?))
}

/// A project run with what it found: a simulated scan's totals and proposal, a validation's
/// findings by migration.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectRunReport {
    pub run: ProjectRun,
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

/// What a project run found, once it has ended (645 before).
#[utoipa::path(get, path = "/v1/projects/{id}/runs/{run_id}/report", params(("id" = String, Path), ("run_id" = String, Path)),
    security(("bearer" = [])), responses(
    (status = 200, description = "The run and its report", body = ProjectRunReport),
    (status = 404, description = "No such project or run (800), or no report yet (645)", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn project_run_report(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, run_id)): Path<(String, String)>,
) -> Result<Json<ProjectRunReport>, ApiError> {
    caller.require_person()?;
    let mut run = state.store.get_project_run(&run_id).await?;
    if run.project_id != id {
        return Err(ApiError::not_found("project run", &run_id));
    }
    let Some(report) = run.report.take() else {
        return Err(ApiError::new(
            Code::JOB_RUN_REPORT_NOT_AVAILABLE,
            &[
                ("job_id", &run_id),
                (
                    "state",
                    &crate::records::state_text(run.state).to_lowercase(),
                ),
            ],
        ));
    };
    Ok(Json(ProjectRunReport { run, report }))
}

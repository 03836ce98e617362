//! A project's own commands, as project runs:
//!
//! - the simulated scan, run by one agent, which walks a source once into a folder tree on the
//!   agent and proposes how to cut it into jobs under the job limits; the control plane keeps
//!   the proposal (the run's report), shows it as the project's recommendation and makes
//!   migrations of it;
//! - the validation, a `validate` job run on each migration of the project (on its own agent,
//!   listed with the migration's runs), gathered here into one result with every finding.
//!
//! The sweeper settles both every half second: a run past its time limit fails with its
//! time-out code (720, 725) and what still runs for it is told to stop; a validation whose
//! migrations' runs have all ended gets its result.

use godwit_codes::{Code, State};
use godwit_spec::{CommandKind, JobOptions};

use crate::AppState;
use crate::protocol::{Job, ToAgent};
use crate::records::{ProjectRun, is_active};
use crate::rules::Action;

/// The format of a simulated scan's report this version reads. A report of an older format is
/// refused with 729 (run the scan again) rather than read wrongly.
pub const REPORT_FORMAT: i64 = 1;

/// The per-file codes of names, lengths, depths, sizes and types a target cannot hold, as a
/// validation finds them: with a project that does not sanitize on the fly, its settings are
/// what must change (728).
const NAME_FINDINGS: &[&str] = &[
    "AZSM2021", "AZSM2022", "AZSM2023", "AZSM2024", "AZSM2025", "AZSM2026",
];

/// The message that runs a simulated scan on its agent: the source and the options the run
/// was made with; it has no target.
pub fn command_message(run: &ProjectRun) -> ToAgent {
    let options: JobOptions =
        serde_json::from_value(run.request["options"].clone()).unwrap_or_default();
    ToAgent::Command(Box::new(Job {
        run_id: run.id.clone(),
        migration_id: run.project_id.clone(),
        command: run.command,
        source: run.request["source"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        target: String::new(),
        options,
        unit: false,
    }))
}

/// The time-out code of a project run of `command`.
fn timeout_code(command: CommandKind) -> Code {
    match command {
        CommandKind::Validate => Code::VALIDATE_PROJECT_TIMEOUT_ERR,
        _ => Code::SIMULATE_SCAN_TIMEOUT_ERR,
    }
}

/// The job runs of a validation, by migration: `(migration_id, run_id)`.
pub fn validation_runs(run: &ProjectRun) -> Vec<(String, String)> {
    run.request["runs"]
        .as_object()
        .map(|runs| {
            runs.iter()
                .filter_map(|(m, r)| Some((m.clone(), r.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Settles every project run going on (see the module's documentation); returns how many
/// ended.
pub async fn settle(state: &AppState) -> usize {
    let mut n = 0;
    let now = crate::store::now_ms();
    if let Ok(overdue) = state.store.overdue_project_runs(now).await {
        for run in overdue {
            n += usize::from(time_out(state, &run).await);
        }
    }
    if let Ok(going) = state.store.active_project_runs(CommandKind::Validate).await {
        for run in going {
            n += usize::from(gather(state, &run).await.unwrap_or(false));
        }
    }
    n
}

/// Fails `run` with its time-out code and stops what still runs for it; false if it had ended
/// meanwhile.
async fn time_out(state: &AppState, run: &ProjectRun) -> bool {
    let params = serde_json::json!({ "project_id": run.project_id });
    let code = timeout_code(run.command);
    let ended = end_early(state, run, State::Failed, (code, &params)).await;
    if ended {
        tracing::info!(run_id = %run.id, project_id = %run.project_id, code = code.id(), "project run timed out");
    }
    ended
}

/// Stops `run` on request: a validation ends STOPPED (165), a simulated scan, which has no
/// such status, FAILED with AZSM1045; what still runs for it is told to stop. A run that has
/// ended already stays as it is (stopping is idempotent).
pub async fn stop(
    state: &AppState,
    run: &ProjectRun,
) -> Result<ProjectRun, crate::error::DomainError> {
    let params = serde_json::json!({ "job_id": run.id });
    let end = match run.command {
        CommandKind::Validate => State::Stopped,
        _ => State::Failed,
    };
    end_early(state, run, end, (Code::AZSM1045, &params)).await;
    state.store.get_project_run(&run.id).await
}

/// Ends `run` before its time in `end` with `error`, and stops what still runs for it: the
/// agent's simulated scan, a validation's migrations' runs. False if it had ended meanwhile.
async fn end_early(
    state: &AppState,
    run: &ProjectRun,
    end: State,
    error: (Code, &serde_json::Value),
) -> bool {
    let ended = state
        .store
        .set_project_run(&run.id, end, Some(error), None, None)
        .await
        .unwrap_or(false);
    if !ended {
        return false;
    }
    if let Some(agent) = &run.agent_id {
        state
            .hub
            .send(
                agent,
                ToAgent::Control {
                    run_id: run.id.clone(),
                    action: "stop".into(),
                },
            )
            .await;
    }
    for (migration_id, run_id) in validation_runs(run) {
        let still = state
            .store
            .get_run(&run_id)
            .await
            .is_ok_and(|r| is_active(r.state));
        if still && let Ok(m) = state.store.get_migration(&migration_id).await {
            let _ =
                crate::commands::apply(state, &m, CommandKind::Validate, Action::Stop, None).await;
        }
    }
    true
}

/// A run error's message: as the agent wrote it, or the code's own with its parameters (a
/// run the control plane refused).
fn error_message(e: &crate::records::RunError) -> String {
    if let Some(m) = e.params["message"].as_str() {
        return m.to_string();
    }
    let params = params_of(&e.params);
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Code::lookup(&e.code).map_or_else(|_| e.name.clone(), |c| c.render(&params))
}

/// A stored error's parameters (a JSON object of texts) as pairs, to render its message.
pub fn params_of(params: &serde_json::Value) -> Vec<(String, String)> {
    params
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Ends validation `run` once the job runs of its migrations have all ended: SUCCEEDED when
/// none found anything; else FAILED with 728 when what they found are names and sizes the
/// targets cannot hold and the project does not sanitize on the fly (its settings must change),
/// or 9140. Its report lists every migration's findings. True when it ended now.
pub async fn gather(state: &AppState, run: &ProjectRun) -> Result<bool, crate::error::DomainError> {
    // Made QUEUED, it is RUNNING once its migrations' runs are queued and recorded: until then
    // there is nothing to gather (an empty list is not a validation that found nothing).
    if run.state != State::Running || run.request.get("runs").is_none() {
        return Ok(false);
    }
    let runs = validation_runs(run);
    let mut results = Vec::with_capacity(runs.len());
    let mut failed = 0;
    let mut names = 0;
    for (migration_id, run_id) in &runs {
        let job = state.store.get_run(run_id).await?;
        if is_active(job.state) {
            return Ok(false);
        }
        let report = state.store.run_report(run_id).await?.unwrap_or_default();
        let mut findings: Vec<serde_json::Value> = report["validation"]["findings"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if findings.is_empty()
            && let Some(e) = &job.error
        {
            // It could not check at all: its error is its finding.
            findings.push(serde_json::json!({
                "code": e.code, "name": e.name, "message": error_message(e),
            }));
        }
        if job.state != State::Succeeded || !findings.is_empty() {
            failed += 1;
        }
        names += findings
            .iter()
            .filter(|f| NAME_FINDINGS.contains(&f["code"].as_str().unwrap_or_default()))
            .count();
        results.push(serde_json::json!({
            "migrationId": migration_id,
            "runId": run_id,
            "status": job.status,
            "files": report["validation"]["files"],
            "bytes": report["validation"]["bytes"],
            "targetWritable": report["validation"]["target_writable"],
            "findings": findings,
        }));
    }
    let report = serde_json::json!({ "migrations": results });
    let project = state.store.get_project(&run.project_id).await?;
    let on_the_fly =
        project.settings.get("sanitize").and_then(|v| v.as_str()) == Some("on-the-fly");
    let error = match (failed, names > 0 && !on_the_fly) {
        (0, _) => None,
        (_, true) => Some((
            Code::VALIDATION_INVALID_CONFIG_ERROR,
            serde_json::json!({
                "project_id": run.project_id,
                "reason": format!(
                    "{names} findings are names, lengths, depths, sizes or types the targets \
                     cannot hold, and the project does not sanitize on the fly"
                ),
            }),
        )),
        (n, false) => Some((
            Code::VALIDATE_COMMAND_ERROR,
            serde_json::json!({
                "reason": format!("{n} of {} migrations have findings", runs.len()),
            }),
        )),
    };
    let end = if error.is_some() {
        State::Failed
    } else {
        State::Succeeded
    };
    state
        .store
        .set_project_run(
            &run.id,
            end,
            error.as_ref().map(|(c, p)| (*c, p)),
            None,
            Some(&report),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sweeper must not take a validation for one that found nothing in the moment between
    /// its creation and the recording of its migrations' runs (seen in CI: 162 at once).
    #[tokio::test]
    async fn a_validation_is_not_settled_before_its_runs_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("cp.db").display());
        let store = crate::Store::open(&url).await.unwrap();
        let state = crate::state_with(
            store.clone(),
            crate::Secret::from_bytes(b"a test secret that is long enough for HS256 signing"),
            crate::Settings::defaults(),
        );
        let p = store.create_project("p", "").await.unwrap();
        let request = serde_json::json!({"migrations": ["m1"]});
        let far = crate::store::now_ms() + 3_600_000;
        let run = store
            .create_project_run(&p.id, None, CommandKind::Validate, &request, far)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(settle(&state).await, 0);
        assert_eq!(
            store.get_project_run(&run.id).await.unwrap().state,
            State::Queued
        );
        store
            .set_project_run(&run.id, State::Running, None, None, None)
            .await
            .unwrap();
        assert_eq!(settle(&state).await, 0);
        assert_eq!(
            store.get_project_run(&run.id).await.unwrap().state,
            State::Running
        );
        // With its runs recorded (none of them there: the store lost them), it is gathered.
        let request = serde_json::json!({"migrations": [], "runs": {}});
        store
            .set_project_run_request(&run.id, &request)
            .await
            .unwrap();
        assert_eq!(settle(&state).await, 1);
        assert_eq!(
            store.get_project_run(&run.id).await.unwrap().state,
            State::Succeeded
        );
    }
}

//! A project's own commands, each run by one agent as a project run: the simulated scan, which
//! walks a source once into a folder tree on the agent and proposes how to cut it into jobs
//! under the job limits. The control plane keeps the proposal (the run's report), shows it as
//! the project's recommendation and makes migrations of it.

use godwit_codes::{Code, State};
use godwit_spec::JobOptions;

use crate::AppState;
use crate::protocol::{Job, ToAgent};
use crate::records::ProjectRun;

/// The format of a simulated scan's report this version reads. A report of an older format is
/// refused with 729 (run the scan again) rather than read wrongly.
pub const REPORT_FORMAT: i64 = 1;

/// The message that runs `run` on its agent: the source and the options the run was made
/// with; a project run has no target.
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
    }))
}

/// Fails the project runs still going on past their time limit with their time-out code (720
/// for the simulated scan), and tells their agents to stop them. Returns how many.
pub async fn expire_overdue(state: &AppState) -> usize {
    let Ok(overdue) = state
        .store
        .overdue_project_runs(crate::store::now_ms())
        .await
    else {
        return 0;
    };
    let mut n = 0;
    for run in overdue {
        let params = serde_json::json!({ "project_id": run.project_id });
        let timed_out = state
            .store
            .set_project_run(
                &run.id,
                State::Failed,
                Some((Code::SIMULATE_SCAN_TIMEOUT_ERR, &params)),
                None,
                None,
            )
            .await
            .unwrap_or(false);
        if timed_out {
            n += 1;
            tracing::info!(run_id = %run.id, project_id = %run.project_id, "project run timed out");
            state.hub.send(
                &run.agent_id,
                ToAgent::Control {
                    run_id: run.id.clone(),
                    action: "stop".into(),
                },
            );
        }
    }
    n
}

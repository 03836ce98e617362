//! Commands on a migration: `start`, `stop`, `pause` and `resume` carried out through the state
//! rules, the limits and the agent's commands, and told to the agent. The API's command
//! requests and the scheduler both come here.

use godwit_codes::{Code, State};
use godwit_spec::CommandKind;

use crate::AppState;
use crate::error::DomainError;
use crate::protocol::ToAgent;
use crate::records::{Agent, JobRun, Migration};
use crate::rules::{Action, Situation, Transition, decide};

/// Carries out `action` on `command` of migration `m`: a new run, QUEUED until its agent takes
/// it, or a run moved to another state; or the code that refuses it.
/// `options`: for a start, the whole set of options the run takes instead of the migration's.
pub async fn apply(
    state: &AppState,
    m: &Migration,
    command: CommandKind,
    action: Action,
    options: Option<&crate::records::MigrationOptions>,
) -> Result<JobRun, DomainError> {
    let active = state.store.active_runs(&m.id).await?;
    let agent = match &m.agent_id {
        Some(a) => Some(state.store.get_agent(a).await?),
        None => None,
    };
    // A pool's runs need one of its agents active: the first that is stands for the pool.
    let mut agent = agent;
    for id in &m.pool {
        if agent
            .as_ref()
            .is_some_and(|a| a.state.code == Code::AGENT_STATE_ACTIVE.id())
        {
            break;
        }
        if let Ok(a) = state.store.get_agent(id).await {
            agent = Some(a);
        }
    }
    if action == Action::Start {
        pooled(m, command)?;
        if let Some(run) = state
            .store
            .last_success(&m.id, CommandKind::Finalize)
            .await?
        {
            // Closed after its cut-over: its agent has no index for it any more.
            return Err(DomainError::new(
                Code::GODWIT_JLSTATUS_MIGRATION_FINALIZED,
                &[("migration_id", &m.id), ("run_id", &run.id)],
            ));
        }
        runnable(command, agent.as_ref())?;
        if let Some(a) = &agent {
            crate::upgrades::not_upgrading(state, a).await?;
        }
        runnable_between(state, m, command, options.unwrap_or(&m.options)).await?;
    }
    let scan = state.store.last_success(&m.id, CommandKind::Scan).await?;
    let s = Situation {
        migration_id: &m.id,
        active: &active,
        agent: agent
            .as_ref()
            .map(|a| (a.id.as_str(), a.state.code == Code::AGENT_STATE_ACTIVE.id())),
        scanned: scan.is_some(),
    };
    match decide(command, action, &s)? {
        Transition::NewRun => {
            within_limits(state, command, scan.as_ref()).await?;
            let Some(run) = state
                .store
                .create_run_if_idle(&m.id, command, options)
                .await?
            else {
                // Another start got in first (a request, a schedule): refused as the state
                // rules refuse a start while that run goes on.
                let active = state.store.active_runs(&m.id).await?;
                let s = Situation {
                    active: &active,
                    ..s
                };
                decide(command, action, &s)?;
                return Err(crate::rules::busy(&m.id, command));
            };
            // Delivered now if the agent is connected; else when it connects (the run is
            // stored QUEUED either way). A pool's run is handed out in units.
            if m.pool.is_empty() {
                deliver(state, m, &run).await;
            } else {
                crate::pools::begin(state, m, &run).await?;
            }
            Ok(run)
        }
        Transition::Move { id, to } => {
            let before = state.store.get_run(&id).await?;
            let run = state.store.set_run_state(&id, to, None, None).await?;
            if !m.pool.is_empty() {
                match to {
                    State::Queued => {
                        if crate::api::migrations::awaits_review(&before) {
                            // Resumed after review: its units carry out their lists.
                            crate::pools::confirm(state, &run).await?;
                        }
                        crate::pools::settle_run(state, &run.id).await;
                    }
                    _ => crate::pools::control(state, &run, action.as_str()).await,
                }
                return Ok(run);
            }
            match (&m.agent_id, to) {
                (_, State::Queued) => deliver(state, m, &run).await,
                // Never started: the agent has nothing to stop.
                (_, State::Stopped) | (None, _) => {}
                (Some(agent), _) => {
                    let message = ToAgent::Control {
                        run_id: run.id.clone(),
                        action: action.as_str().to_string(),
                    };
                    state.hub.send(agent, message).await;
                }
            }
            Ok(run)
        }
    }
}

/// Refuses a command a pool migration does not run (422): its copies are spread over the
/// pool and its scans run on any one of its agents; the others need one agent's own state
/// (an index, a run to undo).
pub fn pooled(m: &Migration, command: CommandKind) -> Result<(), DomainError> {
    if m.pool.is_empty()
        || matches!(
            command,
            CommandKind::Copy | CommandKind::Sync | CommandKind::Scan
        )
    {
        return Ok(());
    }
    Err(DomainError::invalid(&format!(
        "command: a migration run by a pool of agents runs scan, copy and sync in godwit {}; run \
         {command} on a migration of one agent",
        env!("CARGO_PKG_VERSION")
    )))
}

/// Refuses a command no agent can run between the migration's endpoints (605, 422): this
/// version carries permissions (a permissions run, or a copy or true-up with `metadata` in
/// `options`, the options the run takes) from a local source only.
pub async fn runnable_between(
    state: &AppState,
    m: &Migration,
    command: CommandKind,
    options: &crate::records::MigrationOptions,
) -> Result<(), DomainError> {
    let carries = match command {
        CommandKind::Permissions | CommandKind::SimulatePermissions => true,
        CommandKind::Copy | CommandKind::Sync => options.metadata,
        _ => false,
    };
    if !carries {
        return Ok(());
    }
    for (side, id, kinds) in [
        ("source", &m.source_endpoint, &["local"][..]),
        (
            "target",
            &m.target_endpoint,
            &["local", "sftp", "s3", "azure-blob"][..],
        ),
    ] {
        let endpoint = state.store.get_endpoint(id).await?;
        if !kinds.contains(&endpoint.kind.as_str()) {
            let field = match command {
                CommandKind::Copy | CommandKind::Sync => "options.metadata",
                _ => "command",
            };
            return Err(DomainError::invalid(&format!(
                "{field}: godwit {} carries permissions from a local or mounted folder (to a \
                 folder, an SFTP server, S3 or Azure Blob), and this migration's {side} is {}",
                env!("CARGO_PKG_VERSION"),
                endpoint.kind
            )));
        }
    }
    Ok(())
}

/// Refuses a command no agent can run: 605 (422) for one this version of godwit has no runner
/// for, 9150 for one the migration's agent does not run (it said so when it connected).
pub fn runnable(command: CommandKind, agent: Option<&Agent>) -> Result<(), DomainError> {
    if !CommandKind::RUNNABLE.contains(&command) {
        return Err(DomainError::invalid(&format!(
            "command: godwit {} has no runner for {command} yet, so no agent can run it",
            env!("CARGO_PKG_VERSION")
        )));
    }
    match agent {
        Some(a) if !a.commands.contains(&command) => Err(DomainError::new(
            Code::NON_COMPATIBLE_AGENT_VERSION_FOR_FEATURE,
            &[
                ("agent_id", &a.id),
                ("version", &a.version),
                ("feature", &format!("the {command} command")),
            ],
        )),
        _ => Ok(()),
    }
}

/// The limits a new run must keep: active migrations (628), and for a copy or a true-up the
/// files and bytes of the last scan (629, 640).
async fn within_limits(
    state: &AppState,
    command: CommandKind,
    scan: Option<&JobRun>,
) -> Result<(), DomainError> {
    let limits = &state.limits;
    let active_now = state.store.active_migrations().await?;
    if active_now >= limits.max_active_migrations {
        return Err(DomainError::new(
            Code::ERR_ACTIVE_MIGRATIONS_LIMIT,
            &[
                ("count", &active_now.to_string()),
                ("limit", &limits.max_active_migrations.to_string()),
            ],
        ));
    }
    let Some(scan) = scan.filter(|_| [CommandKind::Copy, CommandKind::Sync].contains(&command))
    else {
        return Ok(());
    };
    if scan.files > limits.job_max_files {
        return Err(DomainError::new(
            Code::JOB_LIMIT_FILE_COUNT_EXCEEDED_SCANNED,
            &[
                ("count", &scan.files.to_string()),
                ("limit", &limits.job_max_files.to_string()),
            ],
        ));
    }
    if scan.bytes > limits.job_max_bytes {
        return Err(DomainError::new(
            Code::JOB_LIMIT_SIZE_EXCEEDED_SCANNED,
            &[
                ("bytes", &scan.bytes.to_string()),
                ("limit", &limits.job_max_bytes.to_string()),
            ],
        ));
    }
    Ok(())
}

/// Sends `run` to the migration's agent, if it has one and it is connected.
async fn deliver(state: &AppState, m: &Migration, run: &JobRun) {
    if let Some(agent) = &m.agent_id
        && let Ok(d) = state.store.delivery(run.clone()).await
    {
        state.hub.send(agent, crate::hub::command_message(&d)).await;
    }
}

/// Running commands that their agent, connected and sending heartbeats, no longer reports on
/// (697 after `GODWIT_RUN_REPORT_WINDOW`) or that do nothing (641 after
/// `GODWIT_RUN_HUNG_WINDOW`): failed with the code instead of RUNNING forever, and the agent
/// told to stop them. A command whose agent is away is suspended instead (the heartbeat sweep)
/// and resumes when it is back.
pub async fn watch(state: &AppState) {
    let now = crate::store::now_ms();
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let Ok(stale) = state
        .store
        .stale_runs(
            now - ms(state.hub.report_window),
            now - ms(state.hub.hung_window),
        )
        .await
    else {
        return;
    };
    for s in stale {
        if !state.hub.is_connected(&s.agent_id).await
            || !matches!(state.store.get_run(&s.run_id).await, Ok(r) if r.state == State::Running)
        {
            continue;
        }
        let (code, params, window) = if s.silent {
            let what = format!("run {}", s.run_id);
            (
                Code::SCAN_SOURCE_TIMEOUT_ERR,
                serde_json::json!({ "agent_id": s.agent_id, "what": what }),
                state.hub.report_window,
            )
        } else {
            (
                Code::ERR_MIGRATION_COMMAND_HUNG,
                serde_json::json!({ "migration_id": s.migration_id }),
                state.hub.hung_window,
            )
        };
        let failed = state
            .store
            .set_run_state(&s.run_id, State::Failed, Some((code, &params)), None)
            .await;
        if failed.is_ok() {
            tracing::warn!(run_id = %s.run_id, agent_id = %s.agent_id, code = code.id(), window = ?window, "running command given up");
            state
                .hub
                .send(
                    &s.agent_id,
                    ToAgent::Control {
                        run_id: s.run_id.clone(),
                        action: "stop".into(),
                    },
                )
                .await;
        }
    }
}

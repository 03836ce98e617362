//! Agent pools: one migration's copy spread over several agents.
//!
//! A copy of a pool migration is a job run like any other, but no single agent runs it: it is
//! split into work units on folder boundaries, and each agent of the pool takes one unit at a
//! time under a lease.
//!
//! 1. Its first unit (seq 0, `split`) is the engine's simulated scan of the source, with job
//!    limits of about a `UNITS_PER_AGENT`th of an agent's share of the last scan's files and
//!    bytes: the split-job recommendation's rules, so units end on folder boundaries and cover
//!    the source exactly once. Its plan's jobs become the copy units (seq 1...).
//! 2. Each copy unit is sent to an agent as a copy of the migration limited to the unit's
//!    include rules (the engine keeps an index per set of include rules) that compares with
//!    the target (`compare: target`): whichever agent runs it, and however often, a file the
//!    target holds already is not sent again.
//! 3. A lease lasts a heartbeat window and is renewed by its agent's heartbeats. An agent that
//!    stops sending them loses its units when the window passes; another agent of the pool
//!    takes them (the first one, if it comes back, is told to stop). Agents join a running
//!    copy by being added to the pool, and leave it by being removed.
//! 4. The run's progress, counts and copy log are the sum of its units'; it ends once every
//!    unit has: succeeded when all did, failed with the first failed unit's error otherwise.
//!    Stopping or pausing it stops its units' agents; their units go back to the queue.
//!
//! Its other commands (a scan) are one unit (`whole`): run by whichever agent of the pool is
//! free, and by another if that one stops renewing its lease; the run ends as that unit does.
//!
//! The hand-out runs in the sweep (on the replica holding the sweeps), and when a unit ends.

use godwit_codes::{Code, State};
use godwit_spec::CommandKind;

use crate::AppState;
use crate::error::DomainError;
use crate::protocol::{Job, ToAgent};
use crate::records::{JobRun, Migration};
use crate::store::{NewUnit, UnitEnd, WorkUnit};

/// About this many units for each agent of a pool: enough that the last ones to end do not
/// leave the others idle for long.
pub const UNITS_PER_AGENT: i64 = 4;
/// The most agents in a pool.
pub const MAX_POOL: usize = 64;
/// A unit with no scan to size it by holds at most this many files (and `DEFAULT_UNIT_BYTES`).
const DEFAULT_UNIT_FILES: i64 = 100_000;
const DEFAULT_UNIT_BYTES: i64 = 100 << 30;

fn is_active(unit: &WorkUnit) -> bool {
    unit.state == "LEASED" || unit.state == "RUNNING"
}

/// Starts `run` of pool migration `m`: its first unit, the split, handed out at once.
pub async fn begin(state: &AppState, m: &Migration, run: &JobRun) -> Result<(), DomainError> {
    let first = NewUnit {
        kind: if run.command == CommandKind::Copy {
            "split"
        } else {
            "whole"
        },
        include: Vec::new(),
        files: run.files_found,
        bytes: run.bytes_found,
    };
    state.store.add_units(&run.id, 0, &[first]).await?;
    tracing::info!(run_id = %run.id, migration_id = %m.id, agents = m.pool.len(), "pool copy begun");
    settle_run(state, &run.id).await;
    Ok(())
}

/// What the sweep does for pools: free units handed out, runs whose units all ended ended.
pub async fn settle(state: &AppState) {
    let Ok(runs) = state.store.pool_runs().await else {
        return;
    };
    for run_id in runs {
        settle_run(state, &run_id).await;
    }
}

/// Hands out run `run_id`'s free units to the pool's idle agents, and ends the run once its
/// units have.
pub async fn settle_run(state: &AppState, run_id: &str) {
    let store = &state.store;
    let Ok(run) = store.get_run(run_id).await else {
        return;
    };
    let Ok(m) = store.get_migration(&run.migration_id).await else {
        return;
    };
    let Ok(units) = store.run_units(run_id).await else {
        return;
    };
    if units.is_empty() {
        return;
    }
    if matches!(run.state, State::Queued | State::Running) {
        hand_out(state, &run, &m, &units).await;
    }
    let Ok(units) = store.run_units(run_id).await else {
        return;
    };
    if let Err(e) = finish_if_over(state, &run, &units).await {
        tracing::warn!(run_id, "ending a pool run: {}", e.message());
    }
}

/// The lease a unit is given, and renewed by: its agent's heartbeat window.
pub(crate) fn lease_ms(state: &AppState) -> i64 {
    i64::try_from(state.hub.heartbeat_window.as_millis()).unwrap_or(30_000)
}

async fn hand_out(state: &AppState, run: &JobRun, m: &Migration, units: &[WorkUnit]) {
    let now = crate::store::now_ms();
    let busy: Vec<&str> = units
        .iter()
        .filter(|u| is_active(u) && u.lease_expires_ms.is_some_and(|t| t >= now))
        .filter_map(|u| u.holder.as_deref())
        .collect();
    for agent_id in &m.pool {
        if busy.contains(&agent_id.as_str()) {
            continue;
        }
        let Ok(agent) = state.store.get_agent(agent_id).await else {
            continue;
        };
        if agent.state.code != Code::AGENT_STATE_ACTIVE.id()
            || !agent.commands.contains(&run.command)
            || !state.hub.is_connected(agent_id).await
        {
            continue;
        }
        let expires = crate::store::now_ms() + lease_ms(state);
        let leased = match state.store.lease_unit(&run.id, agent_id, expires).await {
            Ok(Some(l)) => l,
            // None free, or this agent took one meanwhile (another hand-out).
            Ok(None) => continue,
            Err(_) => break,
        };
        let (unit, expired) = leased;
        if let Some(old) = expired {
            // It stopped renewing: if it is still at it, it stops (what it copied stays, and
            // the new holder finds it at the target).
            tracing::info!(unit_id = %unit.id, from = %old, to = %agent_id, "work unit's lease ended: handed to another agent");
            let stop = ToAgent::Control {
                run_id: unit.id.clone(),
                action: "stop".into(),
            };
            state.hub.send(&old, stop).await;
        }
        let sent = match unit_message(state, run, m, &unit).await {
            Some(message) => state.hub.send(agent_id, message).await,
            None => false,
        };
        if !sent {
            let _ = state.store.release_unit(&unit.id, agent_id).await;
        }
    }
}

/// The job that runs `unit` on an agent.
async fn unit_message(
    state: &AppState,
    run: &JobRun,
    m: &Migration,
    unit: &WorkUnit,
) -> Option<ToAgent> {
    let d = state.store.delivery(run.clone()).await.ok()?;
    let mut options = run.options.clone().unwrap_or_else(|| m.options.clone());
    let command = if unit.kind == "split" {
        let agents = m.pool.len().max(1) as i64;
        let share = |total: i64, default: i64| {
            if total > 0 {
                (total + agents * UNITS_PER_AGENT - 1) / (agents * UNITS_PER_AGENT)
            } else {
                default
            }
        };
        options.job_max_files = Some(
            share(unit.planned_files, DEFAULT_UNIT_FILES).clamp(1, state.limits.job_max_files)
                as u64,
        );
        options.job_max_bytes = Some(
            share(unit.planned_bytes, DEFAULT_UNIT_BYTES).clamp(1, state.limits.job_max_bytes)
                as u64,
        );
        CommandKind::SimulateScan
    } else if unit.kind == "whole" {
        run.command
    } else {
        options.filters.include = unit.include.clone();
        options.filters.scoped = true;
        options.compare = godwit_spec::options::Compare::Target;
        run.command
    };
    Some(ToAgent::Command(Box::new(Job {
        run_id: unit.id.clone(),
        migration_id: m.id.clone(),
        command,
        source: d.source_uri,
        target: d.target_uri,
        options,
    })))
}

/// Tells the agents running `run`'s units to `action` (stop or pause) them.
pub async fn control(state: &AppState, run: &JobRun, action: &str) {
    if let Ok(units) = state.store.run_units(&run.id).await {
        for u in units.iter().filter(|u| is_active(u)) {
            if let Some(holder) = &u.holder {
                let message = ToAgent::Control {
                    run_id: u.id.clone(),
                    action: action.to_string(),
                };
                state.hub.send(holder, message).await;
            }
        }
    }
    settle_run(state, &run.id).await;
}

/// The units agent `agent_id` holds, to send again when it connects.
pub async fn held(state: &AppState, agent_id: &str) -> Vec<ToAgent> {
    let mut out = Vec::new();
    let Ok(units) = state.store.units_held(agent_id).await else {
        return out;
    };
    for u in units {
        let Ok(run) = state.store.get_run(&u.run_id).await else {
            continue;
        };
        let Ok(m) = state.store.get_migration(&run.migration_id).await else {
            continue;
        };
        if let Some(message) = unit_message(state, &run, &m, &u).await {
            out.push(message);
        }
    }
    out
}

/// Sums the units' files, bytes, failures, rates and counts.
fn sums(units: &[WorkUnit]) -> (i64, i64, i64, f64, serde_json::Value) {
    let (mut files, mut bytes, mut failed, mut rate) = (0, 0, 0, 0.0);
    let mut counts = std::collections::BTreeMap::<String, i64>::new();
    for u in units.iter().filter(|u| u.kind != "split") {
        files += u.files;
        bytes += u.bytes;
        failed += u.files_failed;
        if is_active(u) {
            rate += u.bytes_per_second;
        }
        if let Some(c) = u.counts.as_object() {
            for (code, n) in c {
                *counts.entry(code.clone()).or_default() += n.as_i64().unwrap_or(0);
            }
        }
    }
    (files, bytes, failed, rate, serde_json::json!(counts))
}

/// Run `run`'s progress: the sum of its units'.
pub async fn progress(state: &AppState, run: &JobRun) {
    let Ok(units) = state.store.run_units(&run.id).await else {
        return;
    };
    let (files, bytes, failed, rate, counts) = sums(&units);
    let planned = units
        .iter()
        .filter(|u| u.kind != "split")
        .fold((0, 0), |(f, b), u| {
            (f + u.planned_files, b + u.planned_bytes)
        });
    let activity = u64::try_from(files + bytes).unwrap_or(0);
    let _ = state
        .store
        .run_progress(
            &run.id,
            (files, bytes, failed),
            planned,
            rate,
            &counts,
            activity,
        )
        .await;
}

/// How an attempt at `unit` ended, as its agent `agent_id` reports it.
pub async fn unit_ended(
    state: &AppState,
    agent_id: &str,
    unit: &WorkUnit,
    end: State,
    counters: &crate::protocol::Counters,
    error: Option<crate::protocol::WireError>,
    report: Option<serde_json::Value>,
) -> Result<(), DomainError> {
    let store = &state.store;
    let plan = report
        .as_ref()
        .and_then(|r| r.get("plan"))
        .filter(|p| p["jobs"].is_array());
    if unit.kind == "split"
        && let Some(plan) = plan
    {
        // The walk ended and found the units (a folder too large for a unit is a unit of its
        // own: the walk reports it, and it is not an error here).
        let units: Vec<NewUnit> = plan["jobs"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|j| NewUnit {
                kind: "copy",
                include: serde_json::from_value(j["include"].clone()).unwrap_or_default(),
                files: j["files"].as_i64().unwrap_or(0),
                bytes: j["bytes"].as_i64().unwrap_or(0),
            })
            .collect();
        let summary = serde_json::json!({ "units": units.len() });
        let done = UnitEnd {
            state: "SUCCEEDED",
            totals: (counters.files, counters.bytes, 0),
            counts: &serde_json::json!({}),
            error: None,
            report: Some(&summary),
        };
        if store.unit_ended(&unit.id, agent_id, &done).await? {
            tracing::info!(run_id = %unit.run_id, units = units.len(), "pool copy split into work units");
            store.add_units(&unit.run_id, 1, &units).await?;
        }
    } else {
        // A command run whole keeps its report in its run (below), a copy unit its own.
        let own_report = if unit.kind == "whole" {
            None
        } else {
            report.as_ref()
        };
        let ours = store_end(
            store,
            unit,
            agent_id,
            end,
            counters,
            error.as_ref(),
            own_report,
        )
        .await?;
        if ours && unit.kind == "whole" {
            // The run ends as its one unit does.
            let run = store.get_run(&unit.run_id).await?;
            let ending = crate::hub::Ending {
                end,
                counters: counters.clone(),
                error,
                report,
            };
            crate::hub::ended(store, &run, 0, ending).await;
        }
    }
    settle_run(state, &unit.run_id).await;
    Ok(())
}

/// Stores how an attempt at `unit` ended: SUCCEEDED or FAILED with what it did; stopped or
/// paused, the unit goes back to the queue (a stopped run hands out nothing more). Whether
/// `agent_id` held it.
async fn store_end(
    store: &crate::Store,
    unit: &WorkUnit,
    agent_id: &str,
    end: State,
    counters: &crate::protocol::Counters,
    error: Option<&crate::protocol::WireError>,
    report: Option<&serde_json::Value>,
) -> Result<bool, DomainError> {
    let word = match end {
        State::Succeeded => "SUCCEEDED",
        State::Failed => "FAILED",
        _ => {
            let held = store.get_unit(&unit.id).await?.holder;
            store.release_unit(&unit.id, agent_id).await?;
            return Ok(held.as_deref() == Some(agent_id));
        }
    };
    let error = error.map(|w| serde_json::json!({ "code": w.code, "message": w.message }));
    let counts = serde_json::to_value(&counters.counts).unwrap_or_default();
    let done = UnitEnd {
        state: word,
        totals: (counters.files, counters.bytes, counters.files_failed),
        counts: &counts,
        error: error.as_ref(),
        report,
    };
    store.unit_ended(&unit.id, agent_id, &done).await
}

/// Ends `run` once none of its units is running: stopped when it was stopping, else when
/// every unit has ended, succeeded or failed as they did.
async fn finish_if_over(
    state: &AppState,
    run: &JobRun,
    units: &[WorkUnit],
) -> Result<(), DomainError> {
    let store = &state.store;
    // A run of one whole unit ends as that unit does (`unit_ended`).
    if units.iter().any(is_active) || !units.iter().any(|u| u.kind == "split") {
        return Ok(());
    }
    let (files, bytes, failed, _, counts) = sums(units);
    let totals = Some((files, bytes, failed));
    if run.state == State::Stopping {
        store
            .set_run_state(&run.id, State::Stopped, None, totals)
            .await?;
        return Ok(());
    }
    let split_done = units
        .iter()
        .any(|u| u.kind == "split" && u.state != "QUEUED");
    if !matches!(run.state, State::Queued | State::Running)
        || !split_done
        || units.iter().any(|u| u.state == "QUEUED")
    {
        return Ok(());
    }
    let first_failed = units.iter().find(|u| u.state == "FAILED");
    let end = if first_failed.is_some() {
        State::Failed
    } else {
        State::Succeeded
    };
    let error = first_failed.and_then(|u| {
        let e = u.error.as_ref()?;
        let code = Code::lookup(e["code"].as_str()?).ok()?;
        Some((code, serde_json::json!({ "message": e["message"] })))
    });
    let report = serde_json::json!({
        "command": run.command.as_str(),
        "counts": counts,
        "files": files,
        "bytes": bytes,
        "files_failed": failed,
        "units": units.iter().filter(|u| u.kind != "split").map(|u| serde_json::json!({
            "id": u.id,
            "include": u.include,
            "holder": u.holder,
            "attempts": u.attempts,
            "state": u.state,
            "files": u.files,
            "bytes": u.bytes,
            "counts": u.counts,
        })).collect::<Vec<_>>(),
    });
    store
        .set_run_details(&run.id, 0.0, &counts, Some(&report))
        .await?;
    store
        .set_run_state(&run.id, end, error.as_ref().map(|(c, p)| (*c, p)), totals)
        .await?;
    let sample = crate::store::sample_now(files, bytes, 0.0);
    let started = run.started_ms.unwrap_or(run.created_ms);
    let _ = store.add_sample(&run.id, started, sample, true).await;
    tracing::info!(run_id = %run.id, state = ?end, files, "pool copy ended");
    Ok(())
}

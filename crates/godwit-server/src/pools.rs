//! Agent pools: one migration's copies and true-ups spread over several agents.
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
//! A true-up (sync) is split the same way. Each copy or sync unit reads its part of the
//! migration's index from the control plane before it runs and sends it back after (the
//! engine's index lives with the agent that ran the part; `pool_index` holds it for all of
//! them), so whichever agent runs a part knows what godwit wrote there. A sync unit that finds
//! deletions pauses for review (REVIEW, keeping its agent and its list); once all units have
//! ended, the delete guards judge the run's deletions together against the whole index
//! (`judge_deletions`): within the limits the units carry out their lists, else the run pauses
//! with one review of all the lists, and resuming it carries them out (`confirm`).
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

/// Whether `command` of a pool migration is split into units (else it runs whole on one
/// agent of the pool).
fn splits(command: CommandKind) -> bool {
    matches!(command, CommandKind::Copy | CommandKind::Sync)
}

/// A unit that paused for a review of its deletions: it keeps its holder (whose state
/// directory holds the list) until its run's deletions are judged together.
const REVIEW: &str = "REVIEW";

/// The part of the source (and of the index) that `unit` covers: its include rules, scoped.
pub fn part_of(unit: &WorkUnit) -> Result<godwit_spec::Filter, DomainError> {
    godwit_spec::Filter::new(&godwit_spec::FilterRules {
        include: unit.include.clone(),
        scoped: true,
        ..Default::default()
    })
    .map_err(|e| DomainError::invalid(&e.message))
}

/// A page of `unit`'s part of its migration's index, as its holder sent it after an attempt:
/// the first page replaces what was kept of the part.
pub async fn index_page(
    state: &AppState,
    unit: &WorkUnit,
    first: bool,
    rows: &[godwit_spec::protocol::IndexRow],
) -> Result<(), DomainError> {
    let run = state.store.get_run(&unit.run_id).await?;
    let part = part_of(unit)?;
    if first {
        state
            .store
            .clear_index_part(&run.migration_id, &part)
            .await?;
    }
    state
        .store
        .add_index_rows(&run.migration_id, &part, rows)
        .await?;
    Ok(())
}

/// Starts `run` of pool migration `m`: its first unit, the split, handed out at once.
pub async fn begin(state: &AppState, m: &Migration, run: &JobRun) -> Result<(), DomainError> {
    // A copy knows the last scan's totals; a true-up is sized by them too.
    let (mut files, mut bytes) = (run.files_found, run.bytes_found);
    if files == 0
        && let Some(scan) = state.store.last_success(&m.id, CommandKind::Scan).await?
    {
        (files, bytes) = (scan.files_found, scan.bytes_found);
    }
    let first = NewUnit {
        kind: if splits(run.command) {
            "split"
        } else {
            "whole"
        },
        include: Vec::new(),
        files,
        bytes,
    };
    state.store.add_units(&run.id, 0, &[first]).await?;
    tracing::info!(run_id = %run.id, migration_id = %m.id, agents = m.pool.len(), "pool run begun");
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
        if run.command == CommandKind::Sync && options.sync_deletes {
            // Any deletion pauses the unit for review: the limits are judged on the whole
            // run's deletions, once every unit has found its own.
            options.max_delete = Some(godwit_spec::MaxDelete::Count(0));
        }
        run.command
    };
    let unit_of_transfer = matches!(unit.kind.as_str(), "copy" | "sync");
    Some(ToAgent::Command(Box::new(Job {
        run_id: unit.id.clone(),
        migration_id: m.id.clone(),
        command,
        source: d.source_uri,
        target: d.target_uri,
        options,
        unit: unit_of_transfer,
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
        let kind = store.get_run(&unit.run_id).await?.command.as_str();
        let units: Vec<NewUnit> = plan["jobs"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|j| NewUnit {
                kind,
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
        if store
            .unit_ended_adding(&unit.id, agent_id, &done, (&unit.run_id, &units))
            .await?
        {
            tracing::info!(run_id = %unit.run_id, units = units.len(), "pool run split into work units");
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
    let review = end == State::Paused && paused_for_review(report);
    let word = match end {
        State::Succeeded => "SUCCEEDED",
        State::Failed => "FAILED",
        // Its deletions wait for the run's judgement; the error (over a limit of none) is
        // the unit's way of pausing, not something to show.
        State::Paused if review => REVIEW,
        _ => {
            let held = store.get_unit(&unit.id).await?.holder;
            store.release_unit(&unit.id, agent_id).await?;
            return Ok(held.as_deref() == Some(agent_id));
        }
    };
    let error = error
        .filter(|_| !review)
        .map(|w| serde_json::json!({ "code": w.code, "message": w.message }));
    let mut counts = serde_json::to_value(&counters.counts).unwrap_or_default();
    let mut totals = (counters.files, counters.bytes, counters.files_failed);
    let confirming = carried_out_review(report);
    if confirming && paused_for_review(unit.report.as_ref()) {
        // Carrying out the reviewed deletions: what the attempt that paused copied counts too.
        totals = (
            totals.0 + unit.files,
            totals.1 + unit.bytes,
            totals.2 + unit.files_failed,
        );
        if let (Some(now), Some(before)) = (counts.as_object_mut(), unit.counts.as_object()) {
            for (code, n) in before {
                let sum = now
                    .get(code)
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(0)
                    + n.as_i64().unwrap_or(0);
                now.insert(code.clone(), sum.into());
            }
        }
    }
    let done = UnitEnd {
        state: word,
        totals,
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
    if units.iter().any(|u| u.state == REVIEW) {
        return judge_deletions(state, run, units).await;
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
    let count = |code: Code| counts[code.id()].as_i64().unwrap_or(0);
    let true_up = (run.command == CommandKind::Sync).then(|| {
        serde_json::json!({
            // Found by units that deleted nothing (deletions off, or none found).
            "gone_from_source": units
                .iter()
                .filter(|u| !confirmed(u))
                .map(|u| true_up_count(u, "gone_from_source"))
                .sum::<u64>(),
            "deleted": count(Code::AZSM2043) + count(Code::AZSM2046),
            "delete_failed": count(Code::AZSM2072) + count(Code::AZSM2080),
            "confirmed": units.iter().filter(|u| confirmed(u)).count(),
        })
    });
    let report = serde_json::json!({
        "command": run.command.as_str(),
        "true_up": true_up,
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
    tracing::info!(run_id = %run.id, state = ?end, files, "pool run ended");
    Ok(())
}

/// Whether `unit` carried out reviewed deletions (its last attempt confirmed a review).
fn confirmed(unit: &WorkUnit) -> bool {
    carried_out_review(unit.report.as_ref())
}

/// Whether an attempt's `report` says it paused for a review of its deletions.
pub(crate) fn paused_for_review(report: Option<&serde_json::Value>) -> bool {
    report.is_some_and(|r| r["true_up"]["review"].is_string())
}

/// Whether an attempt's `report` says it carried out a reviewed list of deletions.
fn carried_out_review(report: Option<&serde_json::Value>) -> bool {
    report.is_some_and(|r| r["true_up"]["confirmed_run"].is_string())
}

/// What a unit's report says of its true-up's `field` (a count).
fn true_up_count(unit: &WorkUnit, field: &str) -> u64 {
    unit.report
        .as_ref()
        .and_then(|r| r["true_up"][field].as_u64())
        .unwrap_or(0)
}

/// Every unit of true-up `run` has ended and some paused with deletions to carry out: the
/// delete guards judge them all together, against the whole migration's index (its files
/// as the units sent them back). Over a limit, the run pauses for review (9080, 9090, 9100)
/// with the units' lists gathered into one; else the units carry out their lists.
async fn judge_deletions(
    state: &AppState,
    run: &JobRun,
    units: &[WorkUnit],
) -> Result<(), DomainError> {
    let store = &state.store;
    let m = store.get_migration(&run.migration_id).await?;
    let options = run.options.clone().unwrap_or_else(|| m.options.clone());
    let waiting: Vec<&WorkUnit> = units.iter().filter(|u| u.state == REVIEW).collect();
    let deletes: u64 = waiting
        .iter()
        .map(|u| true_up_count(u, "gone_from_source"))
        .sum();
    let unreadable: u64 = units
        .iter()
        .filter(|u| u.kind != "split" && !confirmed(u))
        .map(|u| true_up_count(u, "unreadable"))
        .sum();
    let files = u64::try_from(store.index_files(&m.id).await?).unwrap_or(0);
    let limit = options
        .max_delete
        .unwrap_or(godwit_spec::MaxDelete::Default)
        .limit(files);
    let Some(e) = godwit_spec::options::delete_guard(deletes, limit, unreadable) else {
        tracing::info!(run_id = %run.id, deletes, limit, "pool true-up's deletions within the limits: carried out");
        return confirm(state, run).await;
    };
    let ids: Vec<String> = waiting.iter().map(|u| u.id.clone()).collect();
    let (files_done, bytes, failed, _, counts) = sums(units);
    let params = serde_json::json!({
        "count": deletes.to_string(),
        "limit": limit.to_string(),
        "unreadable": unreadable.to_string(),
        "message": e.message,
    });
    // Paused by one control plane only (another may be judging the same units now); the
    // review is complete once its report says how many paths to expect.
    let paused = store
        .move_active_run(
            &run.id,
            State::Paused,
            Some((e.code, &params)),
            Some((files_done, bytes, failed)),
        )
        .await?;
    if !paused {
        return Ok(());
    }
    store.gather_review(&run.id, &ids).await?;
    let report = serde_json::json!({
        "command": run.command.as_str(),
        "counts": counts,
        "files": files_done,
        "bytes": bytes,
        "files_failed": failed,
        "true_up": {
            "gone_from_source": deletes,
            "unreadable": unreadable,
            "delete": true,
            "max_delete": limit,
            "index_files": files,
            "review": format!("/v1/runs/{}/review", run.id),
            "units": ids,
        },
    });
    store
        .set_run_details(&run.id, 0.0, &counts, Some(&report))
        .await?;
    tracing::info!(run_id = %run.id, code = e.code.id(), deletes, limit, unreadable, "pool true-up paused for review");
    Ok(())
}

/// The units of true-up `run` that paused for review carry out their lists: each is sent
/// again to the agent holding it (whose state directory holds the list it reviewed), which
/// deletes exactly that list. A unit whose agent does not take it within a lease goes to
/// another agent, which runs its part afresh (and pauses again if it finds deletions).
pub async fn confirm(state: &AppState, run: &JobRun) -> Result<(), DomainError> {
    let expires = crate::store::now_ms() + lease_ms(state);
    let units = state.store.confirm_units(&run.id, expires).await?;
    let Ok(m) = state.store.get_migration(&run.migration_id).await else {
        return Ok(());
    };
    for unit in units {
        let (Some(holder), Some(message)) = (
            unit.holder.clone(),
            unit_message(state, run, &m, &unit).await,
        ) else {
            continue;
        };
        state.hub.send(&holder, message).await;
    }
    Ok(())
}

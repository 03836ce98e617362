//! One command run by the agent: the engine's job runner in a thread of its own, with its
//! progress forwarded every second, the copy log in pages, and the report. What the command
//! does is the engine's, exactly as `godwit` runs it on the command line.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use godwit_codes::State;
use godwit_engine::job::{self, Control, JobReport, JobSpec};
use godwit_engine::record::{DELETES_FILE, UNREADABLE_FILE};
use godwit_engine::state::{CONFIRMED_FILE, find_paused_run};
use godwit_engine::{JobError, Location, Progress};
use godwit_spec::CommandKind;
use godwit_spec::protocol::{Counters, Job, ToServer, WireError, WireRecord};

use crate::{Shared, lock};

/// Records a copy-log page holds.
const PAGE: usize = 500;

/// Starts `job`. A command sent again for a run going on here (after a reconnect) is taken
/// again and nothing more; one for a run still winding down (resumed right after a pause)
/// starts once that attempt has reported how it ended.
pub(crate) fn start(shared: Arc<Shared>, state_dir: PathBuf, job: Job, from: IndexFrom) {
    if shared.has_ended(&job.run_id) {
        // Its result goes out on this connection; running it again would copy nothing new
        // and report a second attempt.
        return;
    }
    let control = Arc::new(Control::default());
    let why = Arc::new(Mutex::new(None));
    {
        let mut jobs = lock(&shared.jobs);
        if let Some((running, _)) = jobs.get(&job.run_id) {
            if running.is_stopped() {
                let (shared, state_dir) = (shared.clone(), state_dir.clone());
                std::thread::spawn(move || {
                    while lock(&shared.jobs).contains_key(&job.run_id) {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    start(shared, state_dir, job, from);
                });
            } else {
                let run_id = job.run_id.clone();
                shared.push(false, |seq| ToServer::Taken { seq, run_id });
            }
            return;
        }
        jobs.insert(job.run_id.clone(), (control.clone(), why.clone()));
    }
    let run_id = job.run_id.clone();
    shared.push(false, |seq| ToServer::Taken { seq, run_id });
    // The command's span, under the agent's (which carries its id), goes with the thread.
    let span = tracing::info_span!(
        "command",
        run_id = %job.run_id,
        migration_id = %job.migration_id,
        command = %job.command
    );
    std::thread::spawn(move || {
        let _span = span.enter();
        tracing::info!(source = %job.source, target = %job.target, "command started");
        metrics::gauge!("godwit_agent_commands_running").increment(1.0);
        let ended = if job.unit {
            unit(&shared, &state_dir, &job, &control, &from)
        } else {
            run(&shared, &state_dir, &job, &control)
        };
        metrics::gauge!("godwit_agent_commands_running").decrement(1.0);
        let paused_by_user = lock(&why).as_deref() == Some("pause");
        // What attempts killed before this one copied: the run's copy log and counts hold it.
        earlier_attempts(&shared, &state_dir, &job.run_id, control.run_dir());
        let over = matches!(&ended, Ok(r) if matches!(r.state(), State::Succeeded | State::Failed));
        report(&shared, &job.run_id, ended, paused_by_user);
        if over {
            let _ = std::fs::remove_file(attempts_file(&state_dir, &job.run_id));
        }
        lock(&shared.jobs).remove(&job.run_id);
    });
}

/// Fails run `run_id` with `error` without running anything: a command this agent could not
/// read (1050 for a command it does not have, 1030 for options it does not know).
pub(crate) fn refuse(shared: &Shared, run_id: &str, error: &JobError) {
    tracing::warn!(
        run_id,
        code = error.code.id(),
        "command refused: {}",
        error.message
    );
    let id = run_id.to_string();
    shared.push(false, |seq| ToServer::Taken { seq, run_id: id });
    report(shared, run_id, Err(error.clone()), false);
}

/// Sends how the run ended: its copy log in pages, then the result with the summary as its
/// report. A run stopped because the user paused it is PAUSED.
fn report(shared: &Shared, run_id: &str, ended: Result<JobReport, JobError>, paused: bool) {
    let (state, counters, error, report) = match &ended {
        Ok(r) => {
            let s = &r.summary;
            upload_copylog(shared, run_id, &r.run_dir().join("copylog.jsonl"));
            if s.true_up.as_ref().is_some_and(|t| t.review.is_some()) {
                // Paused for review: what a person reviews on the control plane, before the
                // result that says so.
                for (list, file) in [("deletes", DELETES_FILE), ("unreadable", UNREADABLE_FILE)] {
                    upload_list(shared, run_id, list, &r.run_dir().join(file));
                }
            }
            let state = match s.state {
                State::Stopped if paused => State::Paused,
                other => other,
            };
            let error = s.job_error.as_ref().map(|e| WireError {
                code: e.code.id().to_string(),
                message: e.message.clone().unwrap_or_default(),
            });
            // The report: the summary, and a scan's findings (its scan.json) with it.
            let mut report = serde_json::to_value(s).ok();
            if let (Some(serde_json::Value::Object(o)), Some(scan)) = (report.as_mut(), &r.scan)
                && let Ok(scan) = serde_json::to_value(scan)
            {
                o.insert("scan".into(), scan);
            }
            (state, counters_of(s), error, report)
        }
        Err(e) => (State::Failed, Counters::default(), Some(wire(e)), None),
    };
    metrics::counter!("godwit_agent_commands_total", "state" => godwit_spec::command::state_text(state))
        .increment(1);
    tracing::info!(
        state = godwit_spec::command::state_text(state),
        files = counters.files,
        bytes = counters.bytes,
        code = error.as_ref().map(|e| e.code.as_str()),
        "command ended"
    );
    let run_id = run_id.to_string();
    shared.push(true, |seq| ToServer::Result {
        seq,
        run_id,
        state,
        counters,
        error,
        report,
    });
}

/// Where a pool work unit's part of the index comes from: the control plane the agent is
/// connected to now.
pub(crate) struct IndexFrom {
    pub ctx: Arc<crate::upgrade::Context>,
    pub rt: tokio::runtime::Handle,
}

/// Runs a pool work unit: its part of the migration's index read in from the control plane
/// first (what godwit wrote there, whichever agent wrote it), then the command, then the
/// part as it left it sent back (before the result). A unit carrying out its reviewed
/// deletions already has the part here, as it paused with it.
fn unit(
    shared: &Arc<Shared>,
    state_dir: &Path,
    job: &Job,
    control: &Control,
    from: &IndexFrom,
) -> Result<JobReport, JobError> {
    let sides = (Location::parse(&job.source)?, Location::parse(&job.target)?);
    let include = &job.options.filters.include;
    if reviewed_run(state_dir, &job.run_id).is_none() {
        let file = fetch_index(from, state_dir, &job.run_id)?;
        let mut lines = std::io::BufReader::new(
            std::fs::File::open(&file).map_err(|e| index_error(&job.run_id, &e.to_string()))?,
        )
        .lines();
        let imported =
            godwit_engine::unit_index::import(state_dir, (&sides.0, &sides.1), include, || {
                let mut page = Vec::with_capacity(godwit_engine::unit_index::PAGE);
                for line in lines.by_ref() {
                    let line = line.map_err(|e| index_error(&job.run_id, &e.to_string()))?;
                    let row = serde_json::from_str(&line)
                        .map_err(|e| index_error(&job.run_id, &e.to_string()))?;
                    page.push(row);
                    if page.len() == godwit_engine::unit_index::PAGE {
                        break;
                    }
                }
                Ok((!page.is_empty()).then_some(page))
            });
        let _ = std::fs::remove_file(&file);
        let (rows, left_out) = imported?;
        tracing::info!(rows, left_out, "work unit's part of the index read in");
    }
    let ended = run(shared, state_dir, job, control);
    let sent = godwit_engine::unit_index::export(
        state_dir,
        (&sides.0, &sides.1),
        include,
        |first, rows| {
            let run_id = job.run_id.clone();
            shared.push(true, |seq| ToServer::Index {
                seq,
                run_id,
                first,
                rows,
            });
        },
    );
    match sent {
        Ok(rows) => tracing::info!(rows, "work unit's part of the index sent"),
        // Its part stays as it was on the control plane: files this attempt wrote are then
        // unknown there, so a later true-up keeps them rather than deleting them.
        Err(e) => tracing::warn!(
            code = e.code.id(),
            "work unit's part of the index not sent: {}",
            e.message
        ),
    }
    ended
}

fn index_error(unit: &str, why: &str) -> JobError {
    JobError::new(
        godwit_codes::Code::DISK_HASH_LOAD_ERROR,
        &[
            (
                "path",
                &format!("the control plane's part of the index for work unit {unit}"),
            ),
            ("reason", why),
        ],
    )
}

/// Fetches work unit `unit`'s part of the index from the control plane into a file of the
/// state directory (rows as JSON lines), trying again for about half a minute (the agent may
/// be moving to another replica meanwhile).
fn fetch_index(from: &IndexFrom, state_dir: &Path, unit: &str) -> Result<PathBuf, JobError> {
    use std::io::Write;
    let dir = state_dir.join("agent").join("unit-index");
    std::fs::create_dir_all(&dir).map_err(|e| index_error(unit, &e.to_string()))?;
    let file = dir.join(safe_name(unit));
    let client =
        crate::tls::http_client(from.ctx.ca_file.as_deref()).map_err(|e| index_error(unit, &e))?;
    let once = || async {
        let server = lock(&from.ctx.server).clone();
        let url = format!("{}/v1/units/{unit}/index", server.trim_end_matches('/'));
        let mut response = client
            .get(&url)
            .bearer_auth(&from.ctx.token)
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            return Err(format!("{url} answered {status}: {body}"));
        }
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&file).map_err(|e| format!("{}: {e}", file.display()))?,
        );
        while let Some(bytes) = response.chunk().await.map_err(|e| e.to_string())? {
            out.write_all(&bytes).map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())
    };
    let mut wait = Duration::from_millis(500);
    let mut last = String::new();
    for _ in 0..6 {
        match from.rt.block_on(once()) {
            Ok(()) => return Ok(file),
            Err(e) => last = e,
        }
        tracing::warn!("work unit's part of the index: {last}; trying again");
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(8));
    }
    Err(index_error(unit, &last))
}

/// Runs `job` with the engine, forwarding progress about every second.
fn run(
    shared: &Arc<Shared>,
    state_dir: &Path,
    job: &Job,
    control: &Control,
) -> Result<JobReport, JobError> {
    let spec = spec_of(state_dir, job)?;
    let started = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        s.spawn(|| {
            let mut last = Instant::now();
            let mut noted = false;
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if !noted && let Some(dir) = control.run_dir() {
                    note_attempt(state_dir, &job.run_id, dir);
                    noted = true;
                }
                if last.elapsed() >= Duration::from_secs(1) {
                    last = Instant::now();
                    let counters = counters_of_progress(&control.progress, started);
                    let run_id = job.run_id.clone();
                    shared.push(false, |seq| ToServer::Progress {
                        seq,
                        run_id,
                        counters,
                    });
                }
            }
        });
        let r = job::run(&spec, control);
        done.store(true, Ordering::Relaxed);
        r
    })?;
    remember_pause(state_dir, job, &spec, &report);
    Ok(report)
}

/// The engine's spec of `job`. A true-up resumed after it paused for review carries out the
/// reviewed list, exactly (what `godwit confirm` does on the command line).
fn spec_of(state_dir: &Path, job: &Job) -> Result<JobSpec, JobError> {
    if job.command == CommandKind::Sync
        && let Some(engine_run) = reviewed_run(state_dir, &job.run_id)
    {
        return Ok(JobSpec::confirm(state_dir.to_path_buf(), &engine_run));
    }
    Ok(JobSpec {
        command: job.command,
        source: Location::parse(&job.source)?,
        // A project's simulated scan has no target.
        target: if job.target.is_empty() && !job.command.needs_target() {
            None
        } else {
            Some(Location::parse(&job.target)?)
        },
        options: job.options.clone(),
        reviewed_run: None,
        state_dir: state_dir.to_path_buf(),
    })
}

/// Where the agent notes the engine runs (attempts) of a control-plane run, one folder a line.
fn attempts_file(state_dir: &Path, run_id: &str) -> PathBuf {
    state_dir
        .join("agent")
        .join("attempts")
        .join(safe_name(run_id))
}

/// Notes the folder of an attempt of `run_id` as soon as it exists, so that if the agent is
/// killed its next attempt still finds this one's copy log.
fn note_attempt(state_dir: &Path, run_id: &str, dir: &Path) {
    use std::io::Write;
    let file = attempts_file(state_dir, run_id);
    if let Some(parent) = file.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
    {
        let _ = writeln!(f, "{}", dir.display()).and_then(|()| f.sync_data());
    }
}

/// Sends the copy logs of the attempts of `run_id` that were killed before they could (they
/// have no summary), before the report of the attempt `current`: the control plane counts
/// what they copied as copied in this run. A run that has ended forgets its attempts.
fn earlier_attempts(shared: &Shared, state_dir: &Path, run_id: &str, current: Option<&Path>) {
    let file = attempts_file(state_dir, run_id);
    let Ok(text) = std::fs::read_to_string(&file) else {
        return;
    };
    for dir in text.lines().map(Path::new) {
        if Some(dir) == current
            || dir.join("summary.json").exists()
            || dir.join(UPLOADED_FILE).exists()
        {
            continue;
        }
        upload_copylog(shared, run_id, &dir.join("copylog.jsonl"));
        let _ = std::fs::write(dir.join(UPLOADED_FILE), run_id);
    }
}

/// In the folder of a killed attempt: its copy log was sent with a later attempt's report.
const UPLOADED_FILE: &str = "copylog-sent";

/// A control-plane run id as a file name.
fn safe_name(run_id: &str) -> String {
    run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

/// Where the agent notes which engine run a control-plane run paused for review in.
fn paused_marker(state_dir: &Path, run_id: &str) -> PathBuf {
    state_dir
        .join("agent")
        .join("paused")
        .join(safe_name(run_id))
}

/// Notes the engine run a true-up paused in (its folder), so resuming the job run confirms it;
/// forgets it once confirmed.
fn remember_pause(state_dir: &Path, job: &Job, spec: &JobSpec, report: &JobReport) {
    let marker = paused_marker(state_dir, &job.run_id);
    if spec.command == CommandKind::Confirm && report.state() == State::Succeeded {
        let _ = std::fs::remove_file(&marker);
    } else if report.state() == State::Paused {
        if let Some(parent) = marker.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        // The run's folder, not its id: runs of several migrations here (a pool's units)
        // may have the same id.
        let _ = std::fs::write(&marker, &report.summary.run_dir);
    }
}

/// The engine run the control-plane run `run_id` paused for review in, if it did and its
/// list is not carried out yet.
fn reviewed_run(state_dir: &Path, run_id: &str) -> Option<String> {
    let id = std::fs::read_to_string(paused_marker(state_dir, run_id)).ok()?;
    let dir = find_paused_run(state_dir, id.trim()).ok()?;
    (!dir.join(CONFIRMED_FILE).exists()).then(|| id.trim().to_string())
}

fn wire(e: &JobError) -> WireError {
    WireError {
        code: e.code.id().to_string(),
        message: e.message.clone(),
    }
}

fn counters_of_progress(p: &Progress, started: Instant) -> Counters {
    let copied = p.bytes_copied.load(Ordering::Relaxed);
    Counters {
        files: p.files_done.load(Ordering::Relaxed) as i64,
        bytes: p.bytes_done.load(Ordering::Relaxed) as i64,
        files_failed: p.failed.load(Ordering::Relaxed) as i64,
        bytes_per_second: copied as f64 / started.elapsed().as_secs_f64().max(0.001),
        counts: Default::default(),
        files_found: p.files_seen.load(Ordering::Relaxed) as i64,
        bytes_found: p.bytes_seen.load(Ordering::Relaxed) as i64,
        activity: [
            &p.files_seen,
            &p.bytes_seen,
            &p.files_done,
            &p.bytes_done,
            &p.bytes_copied,
            &p.failed,
            &p.bytes_moving,
        ]
        .iter()
        .fold(0u64, |n, a| n.wrapping_add(a.load(Ordering::Relaxed))),
    }
}

fn counters_of(s: &godwit_engine::Summary) -> Counters {
    Counters {
        files: s.files as i64,
        bytes: s.bytes as i64,
        files_failed: s.files_failed() as i64,
        bytes_per_second: s.bytes_per_second,
        counts: s
            .counts
            .iter()
            .map(|(c, n)| (c.id().to_string(), *n))
            .collect(),
        files_found: s.files as i64,
        bytes_found: s.bytes as i64,
        activity: 0,
    }
}

/// Sends the path list `file` (`deletes.txt`, `unreadable.txt`) of a paused true-up as the
/// review list `list`, a page at a time; a list not written (nothing in it) sends nothing.
fn upload_list(shared: &Shared, run_id: &str, list: &str, file: &Path) {
    let Ok(f) = std::fs::File::open(file) else {
        return;
    };
    let attempt = attempt_of(file);
    let mut first = 0i64;
    let mut page = Vec::with_capacity(PAGE);
    let send = |first: i64, paths: Vec<String>| {
        let (run_id, attempt, list) = (run_id.to_string(), attempt.clone(), list.to_string());
        shared.push(true, |seq| ToServer::Review {
            seq,
            run_id,
            attempt,
            list,
            first,
            paths,
        });
    };
    for line in std::io::BufReader::new(f).lines() {
        let Ok(line) = line else { break };
        page.push(line);
        if page.len() == PAGE {
            send(
                first,
                std::mem::replace(&mut page, Vec::with_capacity(PAGE)),
            );
            first += PAGE as i64;
        }
    }
    if !page.is_empty() {
        send(first, page);
    }
}

/// The attempt (engine run id) whose run folder holds `file`.
fn attempt_of(file: &Path) -> String {
    file.parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Sends the run's copy log in pages, each waiting for room in the outbox. The attempt is
/// named by the engine run's folder, which holds the log.
fn upload_copylog(shared: &Shared, run_id: &str, log: &Path) {
    let Ok(file) = std::fs::File::open(log) else {
        return;
    };
    let attempt = attempt_of(log);
    let mut page = Vec::with_capacity(PAGE);
    let send = |page: Vec<WireRecord>| {
        let (run_id, attempt) = (run_id.to_string(), attempt.clone());
        shared.push(true, |seq| ToServer::Copylog {
            seq,
            run_id,
            attempt,
            records: page,
        });
    };
    for (line, text) in std::io::BufReader::new(file).lines().enumerate() {
        let Ok(text) = text else { break };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        page.push(WireRecord {
            line: line as i64,
            path: v["path"].as_str().unwrap_or_default().to_string(),
            code: v["code"].as_str().unwrap_or_default().to_string(),
            message: v["message"].as_str().unwrap_or_default().to_string(),
            size: v["size"].as_i64().unwrap_or(0),
        });
        if page.len() == PAGE {
            send(std::mem::replace(&mut page, Vec::with_capacity(PAGE)));
        }
    }
    if !page.is_empty() {
        send(page);
    }
}

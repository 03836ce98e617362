//! One command run by the agent: the engine's scan, copy or true-up, in a thread of its own,
//! with progress every second, the copy log in pages, and the result.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use godwit_codes::{Code, Kind};
use godwit_engine::{
    CopyOptions, CopyOutcome, Filter, FilterRules, JobError, Links, Location, Migration, Progress,
    Side, TargetProfile, Verify,
};
use godwit_server::protocol::{Counters, Job, ToServer, WireError, WireRecord};

use crate::{Shared, lock};

/// Records a copy-log page holds.
const PAGE: usize = 500;

/// Starts `job`. A command sent again for a run going on here (after a reconnect) is taken
/// again and nothing more; one for a run still winding down (resumed right after a pause)
/// starts once that attempt has reported how it ended.
pub(crate) fn start(shared: Arc<Shared>, state_dir: PathBuf, job: Job) {
    let stop = Arc::new(AtomicBool::new(false));
    let why = Arc::new(Mutex::new(None));
    {
        let mut jobs = lock(&shared.jobs);
        if let Some((running, _)) = jobs.get(&job.run_id) {
            if running.load(Ordering::Relaxed) {
                let (shared, state_dir) = (shared.clone(), state_dir.clone());
                std::thread::spawn(move || {
                    while lock(&shared.jobs).contains_key(&job.run_id) {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    start(shared, state_dir, job);
                });
            } else {
                let run_id = job.run_id.clone();
                shared.push(false, |seq| ToServer::Taken { seq, run_id });
            }
            return;
        }
        jobs.insert(job.run_id.clone(), (stop.clone(), why.clone()));
    }
    let run_id = job.run_id.clone();
    shared.push(false, |seq| ToServer::Taken { seq, run_id });
    std::thread::spawn(move || {
        let started = Instant::now();
        eprintln!(
            "agent: {} {} -> {} (run {})",
            job.command, job.source, job.target, job.run_id
        );
        let ended = run(&shared, &state_dir, &job, &stop);
        let (state, counters, error, log) = match ended {
            Ok(e) => e,
            Err(e) => (
                "FAILED".to_string(),
                Counters::default(),
                Some(WireError {
                    code: e.code.id().to_string(),
                    message: e.message,
                }),
                None,
            ),
        };
        let state = if state == "STOPPED" && lock(&why).as_deref() == Some("pause") {
            "PAUSED".to_string()
        } else {
            state
        };
        if let Some(log) = log {
            upload_copylog(&shared, &job.run_id, &log);
        }
        eprintln!("agent: run {} ended {state}", job.run_id);
        let run_id = job.run_id.clone();
        let report = serde_json::json!({
            "command": job.command,
            "source": job.source,
            "target": job.target,
            "state": state,
            "files": counters.files,
            "bytes": counters.bytes,
            "files_failed": counters.files_failed,
            "bytes_per_second": counters.bytes_per_second,
            "counts": counters.counts,
            "error": error.as_ref().map(|e| serde_json::json!({"code": e.code, "message": e.message})),
            "seconds": started.elapsed().as_secs_f64(),
        });
        shared.push(true, |seq| ToServer::Result {
            seq,
            run_id,
            state,
            counters,
            error,
            report: Some(report),
        });
        lock(&shared.jobs).remove(&job.run_id);
    });
}

type Ended = (String, Counters, Option<WireError>, Option<PathBuf>);

fn options_of(job: &Job, target_kind: &str) -> Result<CopyOptions, JobError> {
    let o = &job.options;
    let list = |key: &str| -> Vec<String> {
        o["filters"][key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let filter = Filter::new(&FilterRules {
        include: list("include"),
        exclude: list("exclude"),
        exclude_regex: list("excludeRegex"),
        ..Default::default()
    })?;
    let sync = job.command == "sync";
    let folders_only = job.command == "empty-folders";
    Ok(CopyOptions {
        transfers: if target_kind == "local" { 8 } else { 16 },
        verify: match o["verify"].as_str() {
            Some("none") => Verify::None,
            Some("full") => Verify::Full,
            _ => Verify::Size,
        },
        filter,
        links: Links::Skip,
        profile: TargetProfile::for_kind(target_kind),
        empty_dirs: folders_only || o["createEmptyDirs"].as_bool() == Some(true),
        folders_only,
        sanitize: o["sanitize"].as_str() == Some("on-the-fly"),
        find_deletes: sync,
        moves: sync && o["syncDeletes"].as_bool() == Some(true),
        bwlimit: o["bwlimit"]
            .as_str()
            .map(godwit_engine::rate::parse_rate)
            .transpose()?,
        ..CopyOptions::default()
    })
}

fn run(
    shared: &Arc<Shared>,
    state_dir: &Path,
    job: &Job,
    stop: &AtomicBool,
) -> Result<Ended, JobError> {
    let src_loc = Location::parse(&job.source)?;
    let source = Side::open(&src_loc, "source")?;
    if job.command == "scan" {
        let options = godwit_engine::ScanOptions {
            profile: TargetProfile::for_kind("local"),
            filter: Filter::default(),
            links: Links::Skip,
            max_folder_entries: 50_000,
            threads: 2,
        };
        let seen = AtomicU64::new(0);
        let done = AtomicBool::new(false);
        let report = std::thread::scope(|s| {
            s.spawn(|| {
                report_every_second(shared, &job.run_id, &done, || Counters {
                    files: seen.load(Ordering::Relaxed) as i64,
                    ..Counters::default()
                })
            });
            let r = godwit_engine::scan(&source, &options, None, stop, &seen);
            done.store(true, Ordering::Relaxed);
            r
        })?;
        let counters = Counters {
            files: report.files as i64,
            bytes: report.bytes as i64,
            ..Counters::default()
        };
        let state = if stop.load(Ordering::Relaxed) {
            "STOPPED"
        } else {
            "SUCCEEDED"
        };
        return Ok((
            state.into(),
            counters,
            report.job_error.map(|e| WireError {
                code: e.code.id().to_string(),
                message: e.message.unwrap_or_default(),
            }),
            None,
        ));
    }
    if !["copy", "sync", "empty-folders"].contains(&job.command.as_str()) {
        return Err(JobError::new(
            Code::INVALID_COMMAND_ERROR,
            &[("opcode", &job.command)],
        ));
    }
    let dst_loc = Location::parse(&job.target)?;
    let target = Side::open(&dst_loc, "target")?;
    let options = options_of(job, target.kind())?;
    let migration = Migration::open(state_dir, &src_loc, Some(&dst_loc))?;
    // A true-up resumed after it paused for review: the reviewed list is carried out, exactly
    // (what `godwit confirm` does on the command line).
    if job.command == "sync"
        && let Some(dir) = reviewed_run(state_dir, &job.run_id)
    {
        use godwit_engine::sync;
        let run = migration.new_run("confirm")?;
        let index = godwit_engine::index::Index::open(&migration.dir.join("index.redb"))?;
        let mut copylog = godwit_engine::run::CopyLog::append(&run)?;
        let d = sync::apply_deletes(
            &source,
            &target,
            &index,
            &dir.join(sync::DELETES_FILE),
            false,
            &run,
            &mut copylog,
            stop,
        )?;
        copylog.finish(&run)?;
        let _ = std::fs::write(dir.join(sync::CONFIRMED_FILE), &run.id);
        let _ = std::fs::remove_file(paused_marker(state_dir, &job.run_id));
        let mut counters = Counters::default();
        for (code, n) in [(Code::AZSM2043, d.deleted), (Code::AZSM2072, d.failed)] {
            if n > 0 {
                counters.counts.insert(code.id().to_string(), n);
                counters.files += n as i64;
            }
        }
        counters.files_failed = d.failed as i64;
        let state = if d.stopped { "STOPPED" } else { "SUCCEEDED" };
        return Ok((
            state.into(),
            counters,
            None,
            Some(run.dir.join("copylog.jsonl")),
        ));
    }
    let run = migration.new_run(match job.command.as_str() {
        "sync" => "sync",
        "empty-folders" => "empty-folders",
        _ => "copy",
    })?;
    let progress = Progress::default();
    let started = Instant::now();
    let done = AtomicBool::new(false);
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            report_every_second(shared, &job.run_id, &done, || {
                counters_of_progress(&progress, started)
            })
        });
        let r = godwit_engine::copy(
            &source, &target, &migration, &run, &options, stop, &progress,
        );
        done.store(true, Ordering::Relaxed);
        r
    })?;
    let mut counters = counters_of(&outcome, started);
    let log = run.dir.join("copylog.jsonl");
    if let Some(e) = &outcome.job_error {
        return Ok(("FAILED".into(), counters, Some(wire(e)), Some(log)));
    }
    if outcome.stopped {
        return Ok(("STOPPED".into(), counters, None, Some(log)));
    }
    if job.command == "sync" && job.options["syncDeletes"].as_bool() == Some(true) {
        use godwit_engine::sync;
        let max = match job.options["maxDelete"].as_str() {
            Some(m) => sync::MaxDelete::parse(m)?,
            None => sync::MaxDelete::Default,
        };
        let limit = max.limit(outcome.index_files);
        if let Some(e) = sync::guard(outcome.deletes_found, limit, outcome.unreadable) {
            // Paused for review: the list is in the agent's run folder, and resuming the job
            // run carries it out.
            let _ = std::fs::write(run.dir.join(sync::PAUSED_FILE), &e.message);
            let marker = paused_marker(state_dir, &job.run_id);
            if let Some(parent) = marker.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::write(&marker, run.dir.as_os_str().as_encoded_bytes());
            return Ok(("PAUSED".into(), counters, Some(wire(&e)), Some(log)));
        }
        let index = godwit_engine::index::Index::open(&migration.dir.join("index.redb"))?;
        let mut copylog = godwit_engine::run::CopyLog::append(&run)?;
        let d = sync::apply_deletes(
            &source,
            &target,
            &index,
            &run.dir.join(sync::DELETES_FILE),
            false,
            &run,
            &mut copylog,
            stop,
        )?;
        copylog.finish(&run)?;
        for (code, n) in [(Code::AZSM2043, d.deleted), (Code::AZSM2072, d.failed)] {
            if n > 0 {
                *counters.counts.entry(code.id().to_string()).or_default() += n;
                counters.files += n as i64;
            }
        }
        counters.files_failed += d.failed as i64;
    }
    Ok(("SUCCEEDED".into(), counters, None, Some(log)))
}

/// Where the agent notes which engine run a control-plane run paused for review in.
fn paused_marker(state_dir: &Path, run_id: &str) -> PathBuf {
    let safe: String = run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    state_dir.join("agent").join("paused").join(safe)
}

/// The engine run folder the control-plane run `run_id` paused for review in, if it did.
fn reviewed_run(state_dir: &Path, run_id: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(paused_marker(state_dir, run_id)).ok()?;
    let dir = PathBuf::from(text);
    (dir.join(godwit_engine::sync::PAUSED_FILE).exists()
        && !dir.join(godwit_engine::sync::CONFIRMED_FILE).exists())
    .then_some(dir)
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
    }
}

fn counters_of(o: &CopyOutcome, started: Instant) -> Counters {
    Counters {
        files: o.files as i64,
        bytes: o.bytes as i64,
        files_failed: o
            .counts
            .iter()
            .filter(|(c, _)| c.info().kind == Kind::Error)
            .map(|(_, n)| *n as i64)
            .sum(),
        bytes_per_second: o.bytes_copied as f64 / started.elapsed().as_secs_f64().max(0.001),
        counts: o
            .counts
            .iter()
            .map(|(c, n)| (c.id().to_string(), *n))
            .collect(),
    }
}

/// Sends `counters()` about every second until `done`.
fn report_every_second(
    shared: &Shared,
    run_id: &str,
    done: &AtomicBool,
    counters: impl Fn() -> Counters,
) {
    let mut last = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            let c = counters();
            let run_id = run_id.to_string();
            shared.push(false, |seq| ToServer::Progress {
                seq,
                run_id,
                counters: c,
            });
        }
    }
}

/// Sends the run's copy log in pages, each waiting for room in the outbox. The attempt is
/// named by the engine run's folder, which holds the log.
fn upload_copylog(shared: &Shared, run_id: &str, log: &Path) {
    let Ok(file) = std::fs::File::open(log) else {
        return;
    };
    let attempt = log
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
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

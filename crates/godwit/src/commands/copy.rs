//! `godwit copy SOURCE TARGET`

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use godwit_codes::{Code, Kind};
use godwit_engine::run::{CodeRef, timestamp};
use godwit_engine::{
    CopyOptions, CopyOutcome, JobError, Migration, Progress, Summary, Verify, copy,
};

use crate::cli::CopyArgs;
use crate::commands::print;
use crate::commands::shared::{self, bytes, report};
use crate::exit::ExitStatus;

pub fn run(args: &CopyArgs) -> anyhow::Result<ExitStatus> {
    match copy_command(args) {
        Ok(status) => Ok(status),
        Err(e) => Ok(report(&e)),
    }
}

fn copy_command(args: &CopyArgs) -> Result<ExitStatus, JobError> {
    let (src_location, source) = shared::side(&args.source, "source")?;
    let (dst_location, target) = shared::side(&args.target, "target")?;
    let options = CopyOptions {
        transfers: usize::from(args.transfers.unwrap_or(if target.kind() == "local" {
            8
        } else {
            16
        })),
        checksum: args.checksum,
        verify: match args.verify.as_str() {
            "none" => Verify::None,
            "full" => Verify::Full,
            _ => Verify::Size,
        },
        filter: shared::filter(&args.filters)?,
        links: shared::links(&args.filters),
        profile: shared::profile(&args.filters, target.kind()),
        dry_run: args.dry_run,
        compare_target: args.compare == "target",
        bwlimit: args
            .bwlimit
            .as_deref()
            .map(godwit_engine::rate::parse_rate)
            .transpose()?,
    };
    let migration = Migration::open(
        &shared::state_dir(&args.state),
        &src_location,
        Some(&dst_location),
    )?;
    let run = migration.new_run("copy")?;
    let stop = shared::stop_on_ctrl_c();
    let progress = Progress::default();
    let started = Instant::now();

    let (done, finished) = std::sync::mpsc::channel::<()>();
    let outcome = std::thread::scope(|s| {
        let progress = &progress;
        let reporter = s.spawn(move || show_progress(args.json, progress, &finished, started));
        let result = copy(
            &source, &target, &migration, &run, &options, &stop, progress,
        );
        drop(done);
        let _ = reporter.join();
        result
    })?;

    let summary = summarise(
        &migration,
        &run,
        &args.source,
        &args.target,
        &outcome,
        started,
    );
    let written = summary.write(&run);
    if args.json {
        // One JSON object a line: progress lines, then the summary as the last line.
        let _ = print(&(serde_json::to_string(&summary).unwrap_or_default() + "\n"));
    } else {
        let _ = print(&human(&summary, &outcome));
    }
    written?;
    if let Some(e) = &outcome.job_error {
        return Ok(report(e));
    }
    if outcome.stopped {
        return Ok(ExitStatus::JobFailed);
    }
    let failed = outcome
        .counts
        .iter()
        .any(|(c, n)| *n > 0 && c.info().kind == Kind::Error);
    Ok(if failed {
        ExitStatus::PartialFailure
    } else {
        ExitStatus::Success
    })
}

fn summarise(
    m: &Migration,
    run: &godwit_engine::Run,
    src: &str,
    dst: &str,
    o: &CopyOutcome,
    started: Instant,
) -> Summary {
    let status = if o.job_error.is_some() {
        Code::MIGRATE_DATA_FAILED
    } else if o.stopped {
        Code::MIGRATE_DATA_STOPPED
    } else {
        Code::MIGRATE_DATA_SUCCEEDED
    };
    let seconds = started.elapsed().as_secs_f64();
    Summary {
        run_id: run.id.clone(),
        migration_id: m.id.clone(),
        command: run.command,
        source: src.to_string(),
        target: Some(dst.to_string()),
        status: CodeRef::new(status, None),
        job_error: o
            .job_error
            .as_ref()
            .map(|e| CodeRef::new(e.code, Some(e.message.clone()))),
        counts: o.counts.clone(),
        files: o.files,
        bytes: o.bytes,
        bytes_copied: o.bytes_copied,
        started: timestamp(run.started),
        ended: timestamp(SystemTime::now()),
        seconds,
        bytes_per_second: if seconds > 0.0 {
            o.bytes_copied as f64 / seconds
        } else {
            0.0
        },
        run_dir: run.dir.display().to_string(),
    }
}

fn human(s: &Summary, o: &CopyOutcome) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}: {} files, {} in {:.1} s",
        s.status.code,
        s.status.name,
        s.files,
        bytes(s.bytes),
        s.seconds
    );
    if o.would_copy.0 > 0 {
        let _ = writeln!(
            out,
            "  dry run: would copy {} files, {}",
            o.would_copy.0,
            bytes(o.would_copy.1)
        );
    }
    for (code, n) in &s.counts {
        let _ = writeln!(out, "  {:<9} {:<40} {n}", code.id(), code.name());
    }
    if s.bytes_copied > 0 {
        let _ = writeln!(
            out,
            "  copied {} at {}/s",
            bytes(s.bytes_copied),
            bytes(s.bytes_per_second as u64)
        );
    }
    if let Some(e) = &s.job_error {
        let _ = writeln!(out, "  job error {} {}", e.code, e.name);
    }
    if o.stopped {
        let _ = writeln!(
            out,
            "  stopped before the end: run the same command again to resume."
        );
    }
    if o.counts
        .iter()
        .any(|(c, n)| *n > 0 && c.info().kind == Kind::Error)
    {
        let _ = writeln!(
            out,
            "  some files were not copied: see copylog.jsonl; `godwit explain CODE` says what to do."
        );
    }
    let _ = writeln!(out, "  run folder: {}", s.run_dir);
    out
}

/// A bar on a terminal, JSON lines with --json, nothing otherwise; until `finished` hangs up.
fn show_progress(
    json: bool,
    p: &Progress,
    finished: &std::sync::mpsc::Receiver<()>,
    started: Instant,
) {
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let mut last_json = Instant::now();
    // Wakes every 100 ms to redraw, and at once when the copy is over.
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        finished.recv_timeout(Duration::from_millis(100))
    {
        let (files, total_files) = (
            p.files_done.load(Ordering::Relaxed),
            p.files_seen.load(Ordering::Relaxed),
        );
        let (done_bytes, seen_bytes) = (
            p.bytes_done.load(Ordering::Relaxed),
            p.bytes_seen.load(Ordering::Relaxed),
        );
        let copied = p.bytes_copied.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let rate = copied as f64 / secs;
        if let Some(bar) = &bar {
            let eta = if rate > 0.0 && seen_bytes > done_bytes {
                format!(
                    ", about {:.0} s left of what is found so far",
                    (seen_bytes - done_bytes) as f64 / rate
                )
            } else {
                String::new()
            };
            bar.set_message(format!(
                "{files}/{total_files} files, {}/{}, {}/s, {} failed{eta}",
                bytes(done_bytes),
                bytes(seen_bytes),
                bytes(rate as u64),
                p.failed.load(Ordering::Relaxed)
            ));
            bar.tick();
        } else if json && last_json.elapsed() >= Duration::from_secs(1) {
            last_json = Instant::now();
            let line = serde_json::json!({
                "progress": { "files_done": files, "files_found": total_files, "bytes_done": done_bytes,
                  "bytes_found": seen_bytes, "bytes_copied": copied, "bytes_per_second": rate as u64,
                  "failed": p.failed.load(Ordering::Relaxed), "seconds": secs }
            });
            let _ = print(&format!("{line}\n"));
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

//! `godwit runs [SOURCE TARGET]` and `godwit report RUN_ID`: the run history kept in the state
//! directory, for people and for scripts.

use std::fmt::Write as _;
use std::io::BufRead;
use std::path::Path;

use godwit_codes::{Code, Kind};
use godwit_engine::history::{self, RunInfo};

use crate::cli::{ReportArgs, RunsArgs};
use crate::commands::print;
use crate::commands::shared::{self, bytes, report as report_error};
use crate::exit::ExitStatus;

pub fn run(args: &RunsArgs) -> anyhow::Result<ExitStatus> {
    let state_dir = shared::state_dir(&args.state);
    let only = match &args.source {
        Some(source) => {
            let source = match shared::location(source) {
                Ok(l) => l,
                Err(e) => return Ok(report_error(&e)),
            };
            let target = match args.target.as_deref().map(shared::location).transpose() {
                Ok(t) => t,
                Err(e) => return Ok(report_error(&e)),
            };
            Some(godwit_engine::state::migration_id(
                &source,
                target.as_ref(),
                &args.include,
            ))
        }
        None => None,
    };
    let mut runs = history::runs(&state_dir, only.as_deref());
    if args.limit > 0 {
        runs.truncate(args.limit);
    }
    if args.json {
        print(&(serde_json::to_string_pretty(&runs)? + "\n"))?;
        return Ok(ExitStatus::Success);
    }
    if runs.is_empty() {
        eprintln!(
            "no runs in {}{}",
            state_dir.display(),
            if only.is_some() {
                " for this source and target"
            } else {
                ""
            }
        );
        return Ok(ExitStatus::Success);
    }
    print(&table(&runs, only.is_none()))?;
    Ok(ExitStatus::Success)
}

/// The runs as a table; with `sides`, each with its source and target.
fn table(runs: &[RunInfo], sides: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:<14} {:<18} {:>9} {:>11} {:<20} {:>8}{}",
        "RUN",
        "COMMAND",
        "STATUS",
        "FILES",
        "BYTES",
        "STARTED",
        "SECONDS",
        if sides { "  SOURCE -> TARGET" } else { "" }
    );
    for r in runs {
        let status = match (&r.status, &r.state) {
            (Some((code, _)), Some(state)) => format!("{code} {state}"),
            (None, Some(state)) => state.clone(),
            (_, None) => "ended, no summary".to_string(),
        };
        let status = match &r.job_error {
            Some(e) => format!("{status} {e}"),
            None => status,
        };
        let _ = write!(
            out,
            "{:<24} {:<14} {:<18} {:>9} {:>11} {:<20} {:>8.1}",
            r.run_id,
            r.command,
            status,
            r.files,
            bytes(r.bytes),
            r.started.get(..19).unwrap_or(&r.started),
            r.seconds
        );
        if sides {
            let _ = write!(out, "  {} -> {}", r.source, r.target);
        }
        out.push('\n');
    }
    out
}

pub fn report(args: &ReportArgs) -> anyhow::Result<ExitStatus> {
    let state_dir = shared::state_dir(&args.state);
    let dir = match history::find_run(&state_dir, &args.run_id) {
        Ok(d) => d,
        Err(e) => {
            report_error(&e);
            eprintln!(
                "  `godwit runs` lists the runs kept in {}.",
                state_dir.display()
            );
            return Ok(ExitStatus::Usage);
        }
    };
    let log = dir.join("copylog.jsonl");
    if args.csv {
        csv_of(&log, args.failed)?;
        return Ok(ExitStatus::Success);
    }
    if args.failed {
        let mut out = String::new();
        each_record(&log, |line, record| {
            if !is_failure(record) {
                return;
            }
            if args.json {
                out.push_str(line);
                out.push('\n');
            } else {
                let _ = writeln!(
                    out,
                    "{} {}",
                    record["code"].as_str().unwrap_or_default(),
                    record["message"].as_str().unwrap_or_default()
                );
            }
        })?;
        print(&out)?;
        return Ok(ExitStatus::Success);
    }
    let info = history::run_info(&dir);
    if args.json {
        let text = match std::fs::read_to_string(dir.join("summary.json")) {
            Ok(summary) => summary.trim_end().to_string(),
            Err(_) => serde_json::to_string_pretty(&info)?,
        };
        print(&(text + "\n"))?;
        return Ok(ExitStatus::Success);
    }
    print(&human(&info, &dir))?;
    Ok(ExitStatus::Success)
}

/// One run's summary, for a person.
fn human(r: &RunInfo, dir: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {}: {} {} -> {}",
        r.run_id, r.command, r.source, r.target
    );
    let summary: serde_json::Value = std::fs::read(dir.join("summary.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    match (&r.status, &r.state) {
        (Some((code, name)), _) => {
            let _ = writeln!(out, "  {code} {name}");
        }
        (None, Some(state)) => {
            let _ = writeln!(out, "  {state}: no summary yet");
        }
        (None, None) => {
            let _ = writeln!(
                out,
                "  ended without a summary: it was killed or its machine went down. Run the same \
                 command again: it resumes, and what this run copied is in its copy log."
            );
        }
    }
    if let Some(code) = &r.job_error {
        let message = summary["job_error"]["message"].as_str().unwrap_or_default();
        let _ = writeln!(out, "  job error {code}: {message}");
    }
    let _ = writeln!(
        out,
        "  started {}, {:.1} s; {} files, {}; copied {}",
        r.started,
        r.seconds,
        r.files,
        bytes(r.bytes),
        bytes(r.bytes_copied)
    );
    if let Some(counts) = summary["counts"].as_object() {
        for (code, n) in counts {
            let name = Code::lookup(code).map(Code::name).unwrap_or_default();
            let _ = writeln!(out, "  {code:<9} {name:<44} {n}");
        }
    }
    if r.files_failed > 0 {
        let _ = writeln!(
            out,
            "  {} files failed: `godwit report {} --failed` lists them",
            r.files_failed, r.run_id
        );
    }
    let _ = writeln!(out, "  run folder: {}", r.run_dir);
    out
}

/// Whether a copy-log record's code is an error.
fn is_failure(record: &serde_json::Value) -> bool {
    record["code"]
        .as_str()
        .and_then(|c| Code::lookup(c).ok())
        .is_some_and(|c| c.info().kind == Kind::Error)
}

/// Calls `each` with every record of the copy log at `log`, streamed.
fn each_record(log: &Path, mut each: impl FnMut(&str, &serde_json::Value)) -> anyhow::Result<()> {
    let file = match std::fs::File::open(log) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        if let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) {
            each(&line, &record);
        }
    }
    Ok(())
}

/// The copy log as CSV on standard output, one row a record.
fn csv_of(log: &Path, failed_only: bool) -> anyhow::Result<()> {
    const COLUMNS: [&str; 10] = [
        "path",
        "path_hex",
        "target_path",
        "size",
        "code",
        "status",
        "message",
        "attempts",
        "checksum",
        "operation",
    ];
    let stdout = std::io::stdout().lock();
    let mut w = csv::Writer::from_writer(stdout);
    w.write_record(COLUMNS)?;
    let mut result = Ok(());
    each_record(log, |_, record| {
        if result.is_err() || (failed_only && !is_failure(record)) {
            return;
        }
        let row = COLUMNS.map(|c| match &record[c] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        });
        result = w.write_record(&row);
    })?;
    match result.and_then(|()| w.flush().map_err(Into::into)) {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other.map_err(Into::into),
    }
}

fn is_broken_pipe(e: &csv::Error) -> bool {
    matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
}

//! `godwit scan SOURCE`

use std::fmt::Write as _;
use std::io::BufWriter;
use std::sync::atomic::AtomicU64;

use godwit_engine::{Migration, ScanOptions, ScanReport, scan};

use crate::cli::ScanArgs;
use crate::commands::print;
use crate::commands::shared::{self, bytes, report};
use crate::exit::ExitStatus;

pub fn run(args: &ScanArgs) -> anyhow::Result<ExitStatus> {
    match scan_command(args) {
        Ok(status) => Ok(status),
        Err(e) => Ok(report(&e)),
    }
}

fn scan_command(args: &ScanArgs) -> Result<ExitStatus, godwit_engine::JobError> {
    let (location, source) = shared::side(&args.source, "source")?;
    let options = ScanOptions {
        profile: shared::profile(&args.filters, "local"),
        filter: shared::filter(&args.filters)?,
        links: shared::links(&args.filters),
        max_folder_entries: args.max_folder_entries,
        threads: 2,
    };
    let migration = Migration::open(&shared::state_dir(&args.state), &location, None)?;
    let run = migration.new_run("scan")?;
    let inventory_path = run.dir.join("inventory.jsonl");
    let file = std::fs::File::create(&inventory_path).map_err(|e| {
        let path = inventory_path.display().to_string();
        godwit_engine::JobError::new(
            godwit_codes::Code::SCAN_REPORT_FOLDER_ERROR,
            &[("path", &path), ("reason", &e.to_string())],
        )
    })?;
    let mut inventory = BufWriter::with_capacity(1 << 20, file);
    let stop = shared::stop_on_ctrl_c();
    let found = AtomicU64::new(0);
    let report_ = scan(&source, &options, Some(&mut inventory), &stop, &found)?;
    drop(inventory);
    let text = serde_json::to_string_pretty(&report_).unwrap_or_default();
    let _ = std::fs::write(run.dir.join("scan.json"), &text);
    if args.json {
        let _ = print(&(text + "\n"));
    } else {
        let _ = print(&human(&report_, &run.dir));
    }
    Ok(
        if report_.job_error.is_some() || report_.status.code != godwit_codes::Code::SCAN_SUCCEEDED
        {
            ExitStatus::JobFailed
        } else {
            ExitStatus::Success
        },
    )
}

fn human(r: &ScanReport, dir: &std::path::Path) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Scan of {} for a {} target: {} {}",
        r.source, r.target_profile, r.status.code, r.status.name
    );
    let _ = writeln!(
        o,
        "  {} files, {} folders, {}",
        r.files,
        r.folders,
        bytes(r.bytes)
    );
    let _ = writeln!(
        o,
        "  to migrate: {} files, {}; excluded by filters: {}",
        r.files_to_migrate,
        bytes(r.bytes_to_migrate),
        r.excluded
    );
    let _ = writeln!(o, "\nSizes");
    for c in r.size_histogram.iter().filter(|c| c.files > 0) {
        let _ = writeln!(
            o,
            "  up to {:>8}: {:>10} files  {:>10}",
            c.up_to,
            c.files,
            bytes(c.bytes)
        );
    }
    for (label, n) in [
        ("deepest", &r.deepest),
        ("longest path", &r.longest_path),
        ("largest folder", &r.largest_folder),
    ] {
        if let Some(n) = n {
            let path = if n.path.is_empty() {
                "(the root)".to_string()
            } else {
                shown(&n.path)
            };
            let _ = writeln!(o, "  {label}: {} ({})", path, n.value);
        }
    }
    if r.problems.is_empty() {
        let _ = writeln!(o, "\nNo compatibility problems.");
    } else {
        let _ = writeln!(o, "\nProblems (`godwit explain CODE` for what to do)");
        for (code, p) in &r.problems {
            let _ = writeln!(o, "  {code} {}: {}", p.name, p.count);
            for e in &p.examples {
                let _ = writeln!(o, "      {}", shown(e));
            }
        }
    }
    if let Some(e) = &r.job_error {
        let _ = writeln!(
            o,
            "\nerror[{}] {}: {}",
            e.code,
            e.name,
            e.message.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(o, "\nReport and inventory: {}", dir.display());
    o
}

/// A path for a terminal: control characters (a newline in a name) shown escaped.
fn shown(path: &str) -> String {
    path.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

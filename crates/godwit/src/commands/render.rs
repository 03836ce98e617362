//! What a person sees of a run: a progress line while it runs, and the summary at the end.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use godwit_codes::State;
use godwit_engine::Progress;
use godwit_engine::job::JobReport;

use crate::commands::print;
use crate::commands::shared::bytes;

/// How a copy, a true-up, a confirmation or an empty-folders run ended, for a person.
pub fn transfer(r: &JobReport) -> String {
    let s = &r.summary;
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
    if let Some(w) = s.dry_run.filter(|w| w.files > 0) {
        let _ = writeln!(
            out,
            "  dry run: would copy {} files, {}",
            w.files,
            bytes(w.bytes)
        );
    }
    for (code, n) in &s.counts {
        let _ = writeln!(out, "  {:<9} {:<40} {n}", code.id(), code.name());
    }
    if s.empty_dirs_made > 0 {
        let _ = writeln!(
            out,
            "  empty folders made at the target: {}",
            s.empty_dirs_made
        );
    }
    if let Some(t) = &s.true_up {
        if t.gone_from_source > 0 {
            let verb = if t.delete {
                ""
            } else {
                " (add --delete to remove them at the target)"
            };
            let _ = writeln!(
                out,
                "  gone from the source: {} files, listed in deletes.txt{verb}",
                t.gone_from_source
            );
        }
        if t.deleted + t.kept + t.delete_failed > 0 {
            let how = if s.backup.is_some() {
                "moved to the backup folder"
            } else {
                "deleted at the target"
            };
            let _ = writeln!(
                out,
                "  {how}: {}; kept (back at the source): {}; failed: {}",
                t.deleted, t.kept, t.delete_failed
            );
        }
        if let Some(id) = &t.confirmed_run {
            let _ = writeln!(out, "  carried out the reviewed list of run {id}");
        }
    }
    if let Some(dir) = &s.backup {
        let _ = writeln!(
            out,
            "  what this run deleted or replaced is kept in {dir} (godwit undo {} puts it back)",
            s.run_id
        );
    }
    if !s.metadata_not_carried.is_empty() {
        let _ = writeln!(
            out,
            "  permissions the target cannot hold (`godwit permissions --simulate` lists the paths):"
        );
        for (what, n) in &s.metadata_not_carried {
            let _ = writeln!(out, "    {what} ({n} files)");
        }
    }
    if s.bytes_copied > 0 {
        let _ = writeln!(
            out,
            "  copied {} at {}/s",
            bytes(s.bytes_copied),
            bytes(s.bytes_per_second as u64)
        );
    }
    if s.uploads_aborted > 0 {
        let _ = writeln!(
            out,
            "  aborted {} multipart upload(s) that an interrupted run left open at the target",
            s.uploads_aborted
        );
    }
    if s.uploads_open > 0 {
        let _ = writeln!(
            out,
            "  {} other multipart upload(s) are open under the target's prefix (not started by this migration; left as they are)",
            s.uploads_open
        );
    }
    if let Some(e) = &s.job_error {
        let _ = writeln!(out, "  job error {} {}", e.code, e.name);
    }
    if s.state == State::Stopped {
        let _ = writeln!(
            out,
            "  stopped before the end: run the same command again to resume."
        );
    }
    // With --metadata, a file whose permissions were not set (7020, 7030) has its data at the
    // target all the same.
    let permissions_only: u64 = [
        godwit_codes::Code::PERMISSION_TRANSLATION_ERROR,
        godwit_codes::Code::PERMISSION_APPLY_FAILURE,
    ]
    .iter()
    .filter_map(|c| s.counts.get(c))
    .sum();
    if permissions_only > 0 {
        let _ = writeln!(
            out,
            "  {permissions_only} paths have their data at the target but not their permissions: \
             see copylog.jsonl; the next true-up with --metadata sets them."
        );
    }
    if s.files_failed() > permissions_only {
        let _ = writeln!(
            out,
            "  some files were not copied: see copylog.jsonl; `godwit explain CODE` says what to do."
        );
    }
    let _ = writeln!(out, "  run folder: {}", s.run_dir);
    out
}

/// Differences a verification shows on the terminal; the rest are in its differences.jsonl.
const SHOWN_DIFFERENCES: usize = 20;

/// How a verification ended, for a person: the tally, then the first differences.
pub fn verify(r: &JobReport) -> String {
    let s = &r.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}: {} files, {} compared in {:.1} s",
        s.status.code,
        s.status.name,
        s.files,
        bytes(s.bytes),
        s.seconds
    );
    if let Some(v) = &s.verify {
        let how = if v.checksum {
            "size and content"
        } else {
            "size and modification time"
        };
        let from = if v.from_index {
            " (source side from the migration's index)"
        } else {
            ""
        };
        let _ = writeln!(out, "  compared by {how}{from}");
        for (n, what) in [
            (v.same, "the same"),
            (v.differ, "differ (AZSM2074)"),
            (v.missing, "missing at the target (AZSM2075)"),
            (v.extra, "extra at the target, not in the source (AZSM2076)"),
            (v.unreadable, "could not be read on one side (AZSM2077)"),
            (
                v.not_files,
                "links and other entries that are not files: not compared",
            ),
        ] {
            if n > 0 || what == "the same" {
                let _ = writeln!(out, "  {n:>10}  {what}");
            }
        }
        if v.differences() > 0 {
            let listed = std::fs::read_to_string(&v.report).unwrap_or_default();
            for line in listed.lines().take(SHOWN_DIFFERENCES) {
                let record: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                let code = record["code"].as_str().unwrap_or_default();
                let message = record["message"].as_str().unwrap_or_default();
                let _ = writeln!(out, "  {code} {}", shown(message));
            }
            if v.differences() as usize > SHOWN_DIFFERENCES {
                let _ = writeln!(
                    out,
                    "  ... and {} more",
                    v.differences() as usize - SHOWN_DIFFERENCES
                );
            }
            let _ = writeln!(out, "  every difference: {}", v.report);
        }
    }
    if let Some(e) = &s.job_error {
        let _ = writeln!(out, "  job error {} {}", e.code, e.name);
    }
    if s.state == State::Stopped {
        let _ = writeln!(
            out,
            "  stopped before the end: this says nothing about the files not compared yet."
        );
    }
    let _ = writeln!(out, "  run folder: {}", s.run_dir);
    out
}

/// A scan's report, for a person.
pub fn scan(report: &JobReport) -> String {
    let Some(r) = &report.scan else {
        return transfer(report);
    };
    let dir = report.run_dir();
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

/// A bar on a terminal, JSON lines with --json, nothing otherwise; until `finished` hangs up.
pub fn progress(
    json: bool,
    p: &Progress,
    finished: &std::sync::mpsc::Receiver<()>,
    started: Instant,
) {
    let bar = (!json && !crate::logging::quiet() && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        crate::logging::set_bar(&bar);
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
        crate::logging::clear_bar();
        bar.finish_and_clear();
    }
}

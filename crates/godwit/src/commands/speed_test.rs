//! `godwit speed-test TARGET`: what the path to a target can do.

use std::fmt::Write as _;

use godwit_engine::job::{JobReport, JobSpec};
use godwit_engine::record::SpeedLeg;
use godwit_spec::{CommandKind, JobOptions, Location};

use crate::cli::SpeedTestArgs;
use crate::commands::job::{self, Output};
use crate::commands::shared::{self, bytes, report};
use crate::exit::ExitStatus;

pub fn run(args: &SpeedTestArgs) -> anyhow::Result<ExitStatus> {
    let spec = || -> Result<JobSpec, godwit_engine::JobError> {
        Ok(JobSpec {
            command: CommandKind::SpeedTest,
            // No source: the test is of the target alone.
            source: Location::Local(std::path::PathBuf::new()),
            target: Some(shared::location(&args.target)?),
            options: JobOptions {
                max_time: args.max_time.clone(),
                from_scan: args.from_scan.clone(),
                transfers: args.transfers,
                ..JobOptions::default()
            },
            reviewed_run: None,
            state_dir: shared::state_dir(&args.state),
        })
    };
    Ok(match spec() {
        Ok(spec) => job::run(
            &spec,
            Output {
                json: args.json,
                progress: false,
                human,
            },
        ),
        Err(e) => report(&e),
    })
}

fn human(r: &JobReport) -> String {
    let s = &r.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} in {:.1} s",
        s.status.code, s.status.name, s.seconds
    );
    if let Some(t) = &s.speed_test {
        let _ = writeln!(
            out,
            "  {:<22} {:>7} {:>10} {:>12} {:>10}   latency ms p50 / p90 / p99 / max",
            "", "files", "bytes", "MB/s", "files/s"
        );
        let leg = |out: &mut String, name: &str, l: &SpeedLeg| {
            let _ = writeln!(
                out,
                "  {name:<22} {:>7} {:>10} {:>12.1} {:>10.1}   {:.1} / {:.1} / {:.1} / {:.1}",
                l.files,
                bytes(l.bytes),
                l.bytes_per_second / 1e6,
                l.files_per_second,
                l.latency_ms.p50,
                l.latency_ms.p90,
                l.latency_ms.p99,
                l.latency_ms.max
            );
        };
        leg(&mut out, "write, small files", &t.write_small);
        leg(&mut out, "write, large files", &t.write_large);
        leg(&mut out, "read back, small files", &t.read_small);
        leg(&mut out, "read back, large files", &t.read_large);
        if let Some(e) = &t.estimate {
            let _ = writeln!(
                out,
                "  a copy of the scanned source ({} files, {}) would take about {}",
                e.files,
                bytes(e.bytes),
                humantime::format_duration(std::time::Duration::from_secs(e.seconds.ceil() as u64))
            );
        }
        let _ = writeln!(
            out,
            "  test files under {}: {}",
            t.prefix,
            if t.cleaned_up {
                "deleted, nothing left"
            } else {
                "NOT all deleted"
            }
        );
    }
    if let Some(e) = &s.job_error {
        let _ = writeln!(out, "  job error {} {}", e.code, e.name);
    }
    let _ = writeln!(out, "  run folder: {}", s.run_dir);
    out
}

//! `godwit finalize SOURCE TARGET`: close a migration after its cut-over.

use std::fmt::Write as _;

use godwit_engine::job::{JobReport, JobSpec};
use godwit_engine::record::human_bytes;
use godwit_spec::{CommandKind, JobOptions};

use crate::cli::FinalizeArgs;
use crate::commands::job::{self, Output};
use crate::commands::shared::{self, report};
use crate::exit::ExitStatus;

pub fn run(args: &FinalizeArgs) -> anyhow::Result<ExitStatus> {
    let spec = || -> Result<JobSpec, godwit_engine::JobError> {
        let mut options = JobOptions::default();
        options.filters.include = args.include.clone();
        shared::spec_between(
            CommandKind::Finalize,
            &args.source,
            &args.target,
            options,
            &args.state,
        )
    };
    let out = Output {
        json: args.json,
        progress: false,
        human,
    };
    Ok(match spec() {
        Ok(spec) => job::run(&spec, out),
        Err(e) => report(&e),
    })
}

fn human(r: &JobReport) -> String {
    let s = &r.summary;
    let mut out = String::new();
    let _ = writeln!(out, "{} {}", s.status.code, s.status.name);
    if let Some(f) = &s.finalized {
        let _ = writeln!(
            out,
            "  removed {} files and folders ({}): the index and the runs' working files",
            f.removed_files,
            human_bytes(f.removed_bytes)
        );
        let _ = writeln!(
            out,
            "  kept the summaries, copy logs and reports of {} runs (godwit runs lists them)",
            f.runs_kept
        );
        let _ = writeln!(
            out,
            "  nothing more runs on this migration (AZSM1048); the source and target are untouched"
        );
    }
    let _ = writeln!(out, "  run folder: {}", s.run_dir);
    out
}

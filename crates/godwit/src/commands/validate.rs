//! `godwit validate SOURCE TARGET`: what would stop the migration, each with its code.

use std::fmt::Write as _;

use godwit_engine::job::{JobReport, JobSpec};
use godwit_spec::CommandKind;

use crate::cli::ValidateArgs;
use crate::commands::job::{self, Output};
use crate::commands::shared::{self, report};
use crate::exit::ExitStatus;

pub fn run(args: &ValidateArgs) -> anyhow::Result<ExitStatus> {
    let spec = || -> Result<JobSpec, godwit_engine::JobError> {
        let mut options = shared::filter_options(&args.filters)?;
        options.job_max_files = args.max_job_files;
        options.job_max_bytes = shared::job_size(args.max_job_size.as_deref())?;
        options.max_folder_entries = Some(args.max_folder_entries as u64);
        shared::spec_between(
            CommandKind::Validate,
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
    if let Some(v) = &s.validation {
        let _ = writeln!(
            out,
            "  a copy would move {} files, {}; the target {}",
            v.files,
            godwit_engine::record::human_bytes(v.bytes),
            if v.target_writable {
                "takes a probe file (written and removed)"
            } else {
                "cannot be written"
            }
        );
        if v.findings.is_empty() {
            let _ = writeln!(out, "  nothing found that would stop the migration");
        }
        for f in &v.findings {
            let _ = writeln!(out, "  {:<9} {}", f.code, f.message);
            for e in f.examples.iter().take(3) {
                let _ = writeln!(out, "            e.g. {e}");
            }
        }
        if !v.findings.is_empty() {
            let _ = writeln!(out, "  `godwit explain CODE` says what to do about each");
        }
    }
    let _ = writeln!(out, "  run folder: {}", s.run_dir);
    out
}

//! `godwit plan SOURCE`: the simulated scan, and the jobs it proposes under the job limits.

use std::fmt::Write as _;

use godwit_engine::job::{JobReport, JobSpec};
use godwit_engine::record::human_bytes;
use godwit_spec::CommandKind;

use crate::cli::PlanArgs;
use crate::commands::job::{self, Output};
use crate::commands::shared::{self, report};
use crate::exit::ExitStatus;

pub fn run(args: &PlanArgs) -> anyhow::Result<ExitStatus> {
    let spec = || -> Result<JobSpec, godwit_engine::JobError> {
        let mut options = shared::filter_options(&args.filters)?;
        options.job_max_files = args.max_job_files;
        options.job_max_bytes = shared::job_size(args.max_job_size.as_deref())?;
        Ok(JobSpec {
            command: CommandKind::SimulateScan,
            source: shared::location(&args.source)?,
            target: None,
            options,
            reviewed_run: None,
            state_dir: shared::state_dir(&args.state),
        })
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

/// The most include rules shown for one job; `--json` has them all.
const RULES_SHOWN: usize = 4;

fn human(r: &JobReport) -> String {
    let s = &r.summary;
    let mut out = String::new();
    let Some(p) = &s.plan else {
        let _ = writeln!(out, "{} {}", s.status.code, s.status.name);
        let _ = writeln!(out, "  run folder: {}", s.run_dir);
        return out;
    };
    let _ = writeln!(
        out,
        "{} {}: {} files in {} folders, {}",
        s.status.code,
        s.status.name,
        p.files,
        p.folders,
        human_bytes(p.bytes)
    );
    let _ = writeln!(
        out,
        "  {} jobs of at most {} files and {} each:",
        p.jobs.len(),
        p.limits.files,
        human_bytes(p.limits.bytes)
    );
    let _ = writeln!(
        out,
        "  {:>5}  {:>12}  {:>10}  include",
        "job", "files", "bytes"
    );
    for (i, j) in p.jobs.iter().enumerate() {
        let mut rules = j
            .include
            .iter()
            .take(RULES_SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        if j.include.len() > RULES_SHOWN {
            let _ = write!(rules, " ... ({} rules)", j.include.len());
        }
        let _ = writeln!(
            out,
            "  {:>5}  {:>12}  {:>10}  {rules}",
            i + 1,
            j.files,
            human_bytes(j.bytes)
        );
    }
    if !p.oversized.is_empty() {
        let _ = writeln!(
            out,
            "  folders too large to split (their own files exceed a limit; each is a job alone):"
        );
        for o in &p.oversized {
            let path = if o.path.is_empty() { "." } else { &o.path };
            let _ = writeln!(
                out,
                "    {path}  {} files, {}",
                o.files,
                human_bytes(o.bytes)
            );
        }
    }
    if p.unreadable > 0 {
        let _ = writeln!(
            out,
            "  {} paths could not be read: their files are not in the plan",
            p.unreadable
        );
    }
    let _ = writeln!(
        out,
        "  each job: godwit copy SOURCE TARGET --include RULE ... (--json lists every rule)"
    );
    let _ = writeln!(out, "  run folder: {}", s.run_dir);
    out
}

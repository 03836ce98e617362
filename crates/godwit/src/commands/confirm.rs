//! `godwit confirm RUN_ID`: carry out the reviewed deletions of a paused true-up.

use std::fmt::Write as _;

use godwit_engine::job::{JobReport, JobSpec};

use crate::cli::ConfirmArgs;
use crate::commands::job::{self, Output};
use crate::commands::shared;
use crate::exit::ExitStatus;

pub fn run(args: &ConfirmArgs) -> anyhow::Result<ExitStatus> {
    let spec = JobSpec::confirm(shared::state_dir(&args.state), &args.run_id);
    let out = Output {
        json: args.json,
        progress: false,
        human,
    };
    Ok(job::run(&spec, out))
}

fn human(r: &JobReport) -> String {
    let s = &r.summary;
    let t = s.true_up.clone().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}: run {} confirmed\n  deleted at the target: {}; kept (back at the source): {}; failed: {}\n  run folder: {}",
        s.status.code,
        s.status.name,
        t.confirmed_run.unwrap_or_default(),
        t.deleted,
        t.kept,
        t.delete_failed,
        s.run_dir
    );
    out
}

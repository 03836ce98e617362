//! `godwit undo RUN_ID`: put back what a true-up with `--backup-dir` deleted or replaced.

use std::fmt::Write as _;

use godwit_engine::job::{JobReport, JobSpec};
use godwit_spec::{CommandKind, JobOptions, Location};

use crate::cli::UndoArgs;
use crate::commands::job::{self, Output};
use crate::commands::shared;
use crate::exit::ExitStatus;

pub fn run(args: &UndoArgs) -> anyhow::Result<ExitStatus> {
    // The source and target come from the undone run's own record.
    let spec = JobSpec {
        command: CommandKind::Undo,
        source: Location::Local(std::path::PathBuf::new()),
        target: None,
        options: JobOptions {
            undo_run: Some(args.run_id.clone()),
            ..JobOptions::default()
        },
        reviewed_run: None,
        state_dir: shared::state_dir(&args.state),
    };
    let out = Output {
        json: args.json,
        progress: false,
        human,
    };
    Ok(job::run(&spec, out))
}

fn human(r: &JobReport) -> String {
    let s = &r.summary;
    let count = |c: godwit_codes::Code| s.counts.get(&c).copied().unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}: {} of {} files put back from {}",
        s.status.code,
        s.status.name,
        count(godwit_codes::Code::AZSM2047),
        s.files,
        s.backup.as_deref().unwrap_or_default()
    );
    let failed = count(godwit_codes::Code::AZSM2079);
    if failed > 0 {
        let _ = writeln!(
            out,
            "  AZSM2079 not put back: {failed} (godwit report {} --failed says why)",
            s.run_id
        );
    }
    let _ = writeln!(out, "  run folder: {}", s.run_dir);
    out
}

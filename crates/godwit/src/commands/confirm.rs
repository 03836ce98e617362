//! `godwit confirm RUN_ID`: carry out the reviewed deletions of a paused true-up.

use std::time::Instant;

use godwit_codes::Code;
use godwit_engine::sync::{self, JobSides, TrueUp};
use godwit_engine::{CopyOptions, CopyOutcome, JobError, Migration};

use crate::cli::ConfirmArgs;
use crate::commands::copy::{delete_listed, finish_status, summarise};
use crate::commands::print;
use crate::commands::shared::{self, report};
use crate::exit::ExitStatus;

pub fn run(args: &ConfirmArgs) -> anyhow::Result<ExitStatus> {
    match confirm(args) {
        Ok(status) => Ok(status),
        Err(e) => Ok(report(&e)),
    }
}

fn confirm(args: &ConfirmArgs) -> Result<ExitStatus, JobError> {
    let state_dir = shared::state_dir(&args.state);
    let reviewed = sync::find_paused_run(&state_dir, &args.run_id)?;
    let sides: JobSides = std::fs::read(reviewed.join(sync::JOB_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            JobError::new(
                Code::DB_ERR_GET_DOC_NOT_FOUND,
                &[
                    (
                        "kind",
                        "record of the paused run's source and target (job.json)",
                    ),
                    ("id", &args.run_id),
                ],
            )
        })?;
    let (src_location, source) = shared::side(&sides.source, "source")?;
    let (dst_location, target) = shared::side(&sides.target, "target")?;
    let migration = Migration::open(&state_dir, &src_location, Some(&dst_location))?;
    let run = migration.new_run("confirm")?;
    let stop = shared::stop_on_ctrl_c();
    let started = Instant::now();
    let options = CopyOptions {
        compare_target: sides.compare_target,
        ..CopyOptions::default()
    };
    let list = reviewed.join(sync::DELETES_FILE);
    let mut outcome = CopyOutcome::default();
    let mut t = TrueUp {
        delete: true,
        confirmed_run: Some(args.run_id.clone()),
        ..TrueUp::default()
    };
    match delete_listed(&source, &target, &migration, &run, &list, &options, &stop) {
        Ok(d) => {
            t.deleted = d.deleted;
            t.kept = d.kept;
            t.delete_failed = d.failed;
            for (code, n) in [(Code::AZSM2043, d.deleted), (Code::AZSM2072, d.failed)] {
                if n > 0 {
                    outcome.counts.insert(code, n);
                    outcome.files += n;
                }
            }
            outcome.stopped = d.stopped;
            if !d.stopped {
                let _ = std::fs::write(reviewed.join(sync::CONFIRMED_FILE), &run.id);
            }
        }
        Err(e) => outcome.job_error = Some(e),
    }
    let mut summary = summarise(
        godwit_codes::Command::TrueUp,
        &migration,
        &run,
        &sides.source,
        &sides.target,
        &outcome,
        started,
    );
    summary.true_up = Some(t.clone());
    let written = summary.write(&run);
    if args.json {
        let _ = print(&(serde_json::to_string(&summary).unwrap_or_default() + "\n"));
    } else {
        let _ = print(&format!(
            "{} {}: run {} confirmed\n  deleted at the target: {}; kept (back at the source): {}; failed: {}\n  run folder: {}\n",
            summary.status.code,
            summary.status.name,
            args.run_id,
            t.deleted,
            t.kept,
            t.delete_failed,
            summary.run_dir
        ));
    }
    written?;
    finish_status(&outcome)
}

//! `godwit sanitize SOURCE --target-profile P [--apply]`

use std::time::{Instant, SystemTime};

use godwit_codes::Code;
use godwit_engine::run::{CodeRef, timestamp};
use godwit_engine::sanitize::sanitize_in_place;
use godwit_engine::{JobError, Location, Migration, Summary, TargetProfile};

use crate::cli::SanitizeArgs;
use crate::commands::print;
use crate::commands::shared::{self, report};
use crate::exit::ExitStatus;

pub fn run(args: &SanitizeArgs) -> anyhow::Result<ExitStatus> {
    match sanitize(args) {
        Ok(status) => Ok(status),
        Err(e) => Ok(report(&e)),
    }
}

fn sanitize(args: &SanitizeArgs) -> Result<ExitStatus, JobError> {
    let location = match Location::parse(&args.source)? {
        Location::Local(p) => Location::Local(std::path::absolute(&p).unwrap_or(p)),
        _ => {
            return Err(JobError::new(
                Code::INCORRECT_MIGRATION_CONFIG,
                &[(
                    "reason",
                    "sanitize renames on a local source only; to rename at a remote target \
                     while copying, use `copy --sanitize on-the-fly`",
                )],
            ));
        }
    };
    let Location::Local(root) = &location else {
        unreachable!("checked above")
    };
    let profile = TargetProfile::by_name(&args.target_profile)
        .unwrap_or_else(|| TargetProfile::for_kind("local"));
    let migration = Migration::open(&shared::state_dir(&args.state), &location, None)?;
    let run = migration.new_run("sanitize")?;
    let stop = shared::stop_on_ctrl_c();
    let started = Instant::now();
    let result = sanitize_in_place(root, &profile, &migration, &run, args.apply, &stop);
    let (outcome, job_error) = match result {
        Ok(o) => (o, None),
        Err(e) => (Default::default(), Some(e)),
    };
    let stopped = stop.load(std::sync::atomic::Ordering::Relaxed);
    let status = crate::commands::copy::end_status(
        godwit_codes::Command::Sanitize,
        job_error.is_some(),
        stopped,
        false,
    );
    let mut counts = std::collections::BTreeMap::new();
    for (code, n) in [
        (Code::AZSM0000, outcome.renamed),
        (Code::SANITIZE_RENAME_ERROR, outcome.failed),
        (Code::SANITIZE_INVALID_SCAN_RESULT_ERROR, outcome.unreadable),
    ] {
        if n > 0 {
            counts.insert(code, n);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let summary = Summary {
        run_id: run.id.clone(),
        migration_id: migration.id.clone(),
        command: run.command,
        source: args.source.clone(),
        target: None,
        status: CodeRef::new(status, None),
        job_error: job_error
            .as_ref()
            .map(|e| CodeRef::new(e.code, Some(e.message.clone()))),
        counts,
        files: outcome.renamed + outcome.failed,
        bytes: 0,
        bytes_copied: 0,
        started: timestamp(run.started),
        ended: timestamp(SystemTime::now()),
        seconds,
        bytes_per_second: 0.0,
        run_dir: run.dir.display().to_string(),
        true_up: None,
    };
    let written = summary.write(&run);
    if args.json {
        let _ = print(&(serde_json::to_string(&summary).unwrap_or_default() + "\n"));
    } else if job_error.is_none() {
        let verb = if args.apply {
            "renamed"
        } else {
            "to rename (dry run: add --apply)"
        };
        let _ = print(&format!(
            "{} {}: {} names {verb}, {} failed, {} folders unreadable\n  report: {}\n",
            status.id(),
            status.name(),
            outcome.renamed,
            outcome.failed,
            outcome.unreadable,
            outcome.report
        ));
    }
    written?;
    if let Some(e) = &job_error {
        return Ok(report(e));
    }
    if stopped {
        return Ok(ExitStatus::JobFailed);
    }
    Ok(if outcome.failed + outcome.unreadable > 0 {
        ExitStatus::PartialFailure
    } else {
        ExitStatus::Success
    })
}

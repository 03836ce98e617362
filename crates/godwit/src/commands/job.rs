//! Running a job from the command line: the engine's one entry point with Ctrl-C, progress on
//! the terminal, the summary printed, and the exit status from how the run ended.

use std::sync::Arc;
use std::time::Instant;

use godwit_codes::State;
use godwit_engine::JobError;
use godwit_engine::job::{self, Control, JobReport, JobSpec};

use crate::commands::print;
use crate::commands::render;
use crate::commands::shared::report;
use crate::exit::ExitStatus;

/// How a subcommand shows its run.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// JSON for scripts instead of text for people.
    pub json: bool,
    /// A progress bar (or JSON progress lines) while it runs.
    pub progress: bool,
    /// The text a person reads at the end.
    pub human: fn(&JobReport) -> String,
}

/// Runs `spec` and returns the exit status; every outcome is printed with its code.
pub fn run(spec: &JobSpec, out: Output) -> ExitStatus {
    let control = Arc::new(Control::default());
    stop_on_ctrl_c(control.clone());
    let started = Instant::now();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let result = std::thread::scope(|s| {
        if out.progress {
            let progress = &control.progress;
            s.spawn(move || render::progress(out.json, progress, &finished, started));
        }
        let r = job::run(spec, &control);
        drop(done);
        r
    });
    match result {
        Ok(r) => {
            let text = if out.json { json(&r) } else { (out.human)(&r) };
            let _ = print(&text);
            exit_status(&r)
        }
        Err(e) => report(&e),
    }
}

/// The report as one JSON document: a scan's full report, else the summary on one line (the
/// last of the progress lines).
fn json(r: &JobReport) -> String {
    match &r.scan {
        Some(scan) => serde_json::to_string_pretty(scan).unwrap_or_default() + "\n",
        None => serde_json::to_string(&r.summary).unwrap_or_default() + "\n",
    }
}

/// The exit status of a run: 4 paused for review, 1 or 2 failed (by its job error), 1 stopped,
/// 3 some files failed, 0 otherwise; a scan 0 when it succeeded, else 1.
fn exit_status(r: &JobReport) -> ExitStatus {
    let s = &r.summary;
    if r.scan.is_some() {
        // A scan reports problems; finding them is its job. Its report shows any job error.
        return if s.state == State::Succeeded {
            ExitStatus::Success
        } else {
            ExitStatus::JobFailed
        };
    }
    let error = s.job_error.as_ref().map(|e| JobError {
        code: e.code,
        message: e.message.clone().unwrap_or_default(),
    });
    match (s.state, error) {
        (State::Paused, Some(e)) => {
            paused(r, &e);
            ExitStatus::PausedForReview
        }
        // Every file was tried and some could not be copied, a verification found
        // differences, or some paths' permissions could not be carried: a partial failure.
        (_, Some(e))
            if matches!(
                e.code,
                godwit_codes::Code::AZSM1046
                    | godwit_codes::Code::AZSM1047
                    | godwit_codes::Code::PERMISSION_TRANSLATION_ERROR
                    | godwit_codes::Code::PERMISSION_APPLY_FAILURE
            ) =>
        {
            let _ = report(&e);
            ExitStatus::PartialFailure
        }
        (_, Some(e)) => report(&e),
        (State::Stopped, None) => ExitStatus::JobFailed,
        _ if s.files_failed() > 0 => ExitStatus::PartialFailure,
        _ => ExitStatus::Success,
    }
}

/// What a person needs when a true-up paused before deleting: the list, and how to go on.
fn paused(r: &JobReport, e: &JobError) {
    let dir = r.run_dir();
    let unreadable = r.summary.true_up.as_ref().is_some_and(|t| t.unreadable > 0);
    eprintln!(
        "paused[{}]: {}\n  Nothing was deleted. Review the list: {}{}\n  \
         Then carry it out with `godwit confirm {}`, or run again with a higher --max-delete.\n  \
         (godwit explain {} tells more)",
        e.code.id(),
        e.message,
        dir.join(godwit_engine::record::DELETES_FILE).display(),
        if unreadable {
            format!(
                "\n  Source paths that could not be read: {}",
                dir.join(godwit_engine::record::UNREADABLE_FILE).display()
            )
        } else {
            String::new()
        },
        r.summary.run_id,
        e.code.id()
    );
}

/// The first Ctrl-C (or SIGTERM, as a service manager or `kill` sends) stops the run cleanly;
/// a second one exits at once.
fn stop_on_ctrl_c(control: Arc<Control>) {
    let _ = ctrlc::set_handler(move || {
        if control.is_stopped() {
            std::process::exit(130);
        }
        control.stop();
        eprintln!(
            "\nstopping: finishing files in flight; run the same command again to resume (Ctrl-C again to quit now)"
        );
    });
}

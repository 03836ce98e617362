//! `godwit sanitize SOURCE --target-profile P [--apply]`

use std::fmt::Write as _;

use godwit_codes::Code;
use godwit_engine::job::{JobReport, JobSpec};
use godwit_spec::{CommandKind, JobOptions, SanitizeMode};

use crate::cli::SanitizeArgs;
use crate::commands::job::{self, Output};
use crate::commands::shared::{self, report};
use crate::exit::ExitStatus;

pub fn run(args: &SanitizeArgs) -> anyhow::Result<ExitStatus> {
    let source = match shared::location(&args.source) {
        Ok(l) => l,
        Err(e) => return Ok(report(&e)),
    };
    let spec = JobSpec {
        command: CommandKind::Sanitize,
        source,
        target: None,
        options: JobOptions {
            target_profile: Some(args.target_profile),
            // Renames only with --apply; otherwise a dry run that lists what it would do.
            sanitize: SanitizeMode::InPlace,
            dry_run: !args.apply,
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
    if s.job_error.is_some() {
        return String::new();
    }
    let n = |code: Code| s.counts.get(&code).copied().unwrap_or(0);
    let verb = if s.dry_run.is_none() {
        "renamed"
    } else {
        "to rename (dry run: add --apply)"
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}: {} names {verb}, {} failed, {} folders unreadable\n  report: {}",
        s.status.code,
        s.status.name,
        n(Code::AZSM0000),
        n(Code::SANITIZE_RENAME_ERROR),
        n(Code::SANITIZE_INVALID_SCAN_RESULT_ERROR),
        r.run_dir()
            .join(godwit_engine::sanitize::REPORT_FILE)
            .display()
    );
    out
}

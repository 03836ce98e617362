//! `godwit copy SOURCE TARGET`, or `godwit copy --config FILE` for the migrations of a
//! configuration file.

use godwit_engine::JobError;
use godwit_engine::job::JobSpec;
use godwit_spec::CommandKind;
use godwit_spec::config::ConfigSide;

use crate::cli::CopyArgs;
use crate::commands::job::{self, Output};
use crate::commands::render;
use crate::commands::shared::{self, report};
use crate::exit::ExitStatus;

pub fn run(args: &CopyArgs) -> anyhow::Result<ExitStatus> {
    let specs = specs(args, CommandKind::Copy);
    Ok(run_all(specs, output(args.json)))
}

/// Runs each spec in turn: the exit status of the first that did not succeed, else success.
pub fn run_all(specs: Result<Vec<JobSpec>, JobError>, out: Output) -> ExitStatus {
    let specs = match specs {
        Ok(specs) => specs,
        Err(e) => return report(&e),
    };
    let mut status = ExitStatus::Success;
    for mut spec in specs {
        let ended = match shared::StdinList::take(&mut spec) {
            Ok(_list) => job::run(&spec, out),
            Err(e) => report(&e),
        };
        if status == ExitStatus::Success {
            status = ended;
        }
    }
    status
}

/// The specs of a copy-like command (`sync` adds its own options): one from SOURCE and
/// TARGET, or one a migration of the `--config` file.
pub fn specs(args: &CopyArgs, command: CommandKind) -> Result<Vec<JobSpec>, JobError> {
    let Some(path) = &args.config else {
        let (Some(source), Some(target)) = (&args.source, &args.target) else {
            return Err(JobError::config("give SOURCE and TARGET, or --config FILE"));
        };
        let options = shared::copy_options(args)?;
        return Ok(vec![shared::spec_between(
            command,
            source,
            target,
            options,
            &args.state,
        )?]);
    };
    // The options are the file's: a flag besides would be one of two answers.
    if shared::copy_options(args)? != unflagged_options()? {
        return Err(JobError::config(
            "with --config the options come from the file (each migration's \"options\"); \
             give them there, not as flags",
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        JobError::new(
            godwit_codes::Code::ERR_CONFIG_FILE_OPEN,
            &[("reason", &format!("{}: {}", path.display(), e))],
        )
    })?;
    let file = godwit_spec::config::parse(&bytes)?;
    let not_here = |field: String, why: &str| {
        JobError::new(
            godwit_codes::Code::ERR_CONFIG_VALIDATION,
            &[("reason", &format!("{field}: {why}"))],
        )
    };
    let mut specs = Vec::with_capacity(file.migrations.len());
    for (i, m) in file.migrations.iter().enumerate() {
        if m.id.is_some() || m.project_id.is_some() {
            return Err(not_here(
                format!("migrations[{i}]"),
                "ids and projects are the control plane's; the command line runs a migration \
                 by its source and target",
            ));
        }
        let side = |name: &str, s: &Option<ConfigSide>| match s {
            Some(ConfigSide::Location(text)) => shared::location(text),
            _ => Err(not_here(
                format!("migrations[{i}].{name}"),
                "the command line takes a location (/mnt/nas, s3://bucket/prefix, ...); an \
                 endpoint and a path are the control plane's",
            )),
        };
        specs.push(JobSpec {
            command,
            source: side("source", &m.source)?,
            target: Some(side("target", &m.target)?),
            options: m.job_options(i)?,
            reviewed_run: None,
            state_dir: shared::state_dir(&args.state),
        });
    }
    Ok(specs)
}

/// The options of a copy given no option flag.
fn unflagged_options() -> Result<godwit_spec::JobOptions, JobError> {
    use clap::Parser;
    match crate::cli::Cli::try_parse_from(["godwit", "copy", "--config", "-"]) {
        Ok(crate::cli::Cli {
            command: crate::cli::Command::Copy(a),
            ..
        }) => shared::copy_options(&a),
        _ => Err(JobError::config(
            "the copy's own arguments could not be read",
        )),
    }
}

/// Progress while it runs, then the summary.
pub fn output(json: bool) -> Output {
    Output {
        json,
        progress: true,
        human: render::transfer,
    }
}

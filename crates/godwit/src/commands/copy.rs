//! `godwit copy SOURCE TARGET`

use godwit_engine::job::JobSpec;
use godwit_spec::CommandKind;

use crate::cli::CopyArgs;
use crate::commands::job::{self, Output};
use crate::commands::render;
use crate::commands::shared::{self, report};
use crate::exit::ExitStatus;

pub fn run(args: &CopyArgs) -> anyhow::Result<ExitStatus> {
    let spec = spec(args, CommandKind::Copy)
        .and_then(|mut spec| shared::StdinList::take(&mut spec).map(|list| (spec, list)));
    Ok(match spec {
        Ok((spec, _list)) => job::run(&spec, output(args.json)),
        Err(e) => report(&e),
    })
}

/// The spec of a copy-like command from its arguments (`sync` adds its own).
pub fn spec(args: &CopyArgs, command: CommandKind) -> Result<JobSpec, godwit_engine::JobError> {
    Ok(JobSpec {
        command,
        source: shared::location(&args.source)?,
        target: Some(shared::location(&args.target)?),
        options: shared::copy_options(args)?,
        reviewed_run: None,
        state_dir: shared::state_dir(&args.state),
    })
}

/// Progress while it runs, then the summary.
pub fn output(json: bool) -> Output {
    Output {
        json,
        progress: true,
        human: render::transfer,
    }
}

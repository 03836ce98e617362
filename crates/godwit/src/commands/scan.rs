//! `godwit scan SOURCE`

use godwit_engine::job::JobSpec;
use godwit_spec::CommandKind;

use crate::cli::ScanArgs;
use crate::commands::job::{self, Output};
use crate::commands::render;
use crate::commands::shared::{self, report};
use crate::exit::ExitStatus;

pub fn run(args: &ScanArgs) -> anyhow::Result<ExitStatus> {
    let spec = || -> Result<JobSpec, godwit_engine::JobError> {
        let mut options = shared::filter_options(&args.filters)?;
        options.max_folder_entries = Some(args.max_folder_entries as u64);
        Ok(JobSpec {
            command: CommandKind::Scan,
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
        human: render::scan,
    };
    Ok(match spec() {
        Ok(spec) => job::run(&spec, out),
        Err(e) => report(&e),
    })
}

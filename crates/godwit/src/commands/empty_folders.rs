//! `godwit empty-folders SOURCE TARGET`: only the folders that hold no file.

use godwit_engine::job::JobSpec;
use godwit_spec::CommandKind;

use crate::cli::EmptyFoldersArgs;
use crate::commands::copy::output;
use crate::commands::job;
use crate::commands::shared::{self, report};
use crate::exit::ExitStatus;

pub fn run(args: &EmptyFoldersArgs) -> anyhow::Result<ExitStatus> {
    let spec = || -> Result<JobSpec, godwit_engine::JobError> {
        Ok(JobSpec {
            command: CommandKind::EmptyFolders,
            source: shared::location(&args.source)?,
            target: Some(shared::location(&args.target)?),
            options: shared::filter_options(&args.filters)?,
            reviewed_run: None,
            state_dir: shared::state_dir(&args.state),
        })
    };
    Ok(match spec() {
        Ok(spec) => job::run(&spec, output(args.json)),
        Err(e) => report(&e),
    })
}

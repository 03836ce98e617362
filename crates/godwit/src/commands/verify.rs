//! `godwit verify SOURCE TARGET`: the whole target compared with the whole source.

use godwit_engine::job::JobSpec;
use godwit_spec::CommandKind;

use crate::cli::VerifyArgs;
use crate::commands::job::{self, Output};
use crate::commands::render;
use crate::commands::shared::{self, report};
use crate::exit::ExitStatus;

pub fn run(args: &VerifyArgs) -> anyhow::Result<ExitStatus> {
    let spec = || -> Result<JobSpec, godwit_engine::JobError> {
        let mut options = shared::filter_options(&args.filters)?;
        options.checksum = args.checksum;
        options.use_index = args.use_index;
        options.transfers = args.transfers;
        shared::spec_between(
            CommandKind::Verify,
            &args.source,
            &args.target,
            options,
            &args.state,
        )
    };
    Ok(match spec() {
        Ok(spec) => job::run(
            &spec,
            Output {
                json: args.json,
                progress: true,
                human: render::verify,
            },
        ),
        Err(e) => report(&e),
    })
}

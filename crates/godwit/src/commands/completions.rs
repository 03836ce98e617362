//! `godwit completions SHELL`

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::exit::ExitStatus;

pub fn run(args: &CompletionsArgs) -> anyhow::Result<ExitStatus> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "godwit", &mut std::io::stdout());
    Ok(ExitStatus::Success)
}

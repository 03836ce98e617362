//! `godwit config check FILE`: a configuration file read as the services read it.

use crate::cli::ConfigCommand;
use crate::commands::shared;
use crate::exit::ExitStatus;

pub fn run(cmd: &ConfigCommand) -> anyhow::Result<ExitStatus> {
    match cmd {
        ConfigCommand::Check(args) => match crate::config::load(&args.file) {
            Ok(f) => {
                let tables: Vec<&str> = [
                    f.serve.as_ref().map(|_| "[serve]"),
                    f.agent.as_ref().map(|_| "[agent]"),
                    f.log.as_ref().map(|_| "[log]"),
                ]
                .into_iter()
                .flatten()
                .collect();
                let held = if tables.is_empty() {
                    "nothing (every setting has its default)".to_string()
                } else {
                    tables.join(", ")
                };
                super::print(&format!(
                    "{}: usable; it sets {held}\n",
                    args.file.display()
                ))?;
                Ok(ExitStatus::Success)
            }
            Err(e) => Ok(shared::report(&e)),
        },
    }
}

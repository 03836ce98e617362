//! `godwit`: move file trees into object and file storage, and keep them in step until cut-over.
//!
//! The binary is thin: clap definitions live in `cli.rs`, each subcommand in `commands/`, and
//! every exit status in `exit.rs`.

mod cli;
mod commands;
mod exit;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit::ExitStatus;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => commands::scan::run(&args),
        Command::Copy(args) => commands::copy::run(&args),
        Command::Explain(args) => commands::explain::run(&args),
        Command::Codes(args) => commands::codes::run(&args),
        Command::Completions(args) => commands::completions::run(&args),
    };
    match result {
        Ok(status) => status.into(),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitStatus::JobFailed.into()
        }
    }
}

//! `godwit`: move file trees into object and file storage, and keep them in step until cut-over.
//!
//! The binary is thin: clap definitions live in `cli.rs`, each subcommand in `commands/`, and
//! every exit status in `exit.rs`.

mod cli;
mod commands;
mod config;
mod exit;
mod logging;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit::ExitStatus;

/// The version this build reports (`godwit --version`, an agent's registration): set at build
/// time with `GODWIT_BUILD_VERSION` (a release build, a test's second build), else the
/// package's version.
pub const VERSION: &str = match option_env!("GODWIT_BUILD_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

fn main() -> ExitCode {
    keep_large_buffers_out_of_the_heap();
    let cli = Cli::parse();
    let base = match cli.command {
        Command::Serve(_) | Command::Agent(_) => logging::Base::Service,
        _ => logging::Base::Command,
    };
    // A service's configuration file is read first: it may say how to log.
    let file = match &cli.command {
        Command::Serve(a) => config::for_service(a.store.config.as_deref(), config::Role::Serve),
        Command::Agent(a) => config::for_service(a.config.as_deref(), config::Role::Agent),
        _ => Ok(None),
    };
    let file = match file {
        Ok(f) => f,
        Err(e) => return commands::shared::report(&e).into(),
    };
    if let Err(e) = logging::init(&cli.log, base, file.as_ref().and_then(|f| f.log.as_ref())) {
        return commands::shared::report(&e).into();
    }
    let result = match cli.command {
        Command::Scan(args) => commands::scan::run(&args),
        Command::Plan(args) => commands::plan::run(&args),
        Command::Validate(args) => commands::validate::run(&args),
        Command::Finalize(args) => commands::finalize::run(&args),
        Command::Copy(args) => commands::copy::run(&args),
        Command::Sync(args) => commands::sync::run(&args),
        Command::Confirm(args) => commands::confirm::run(&args),
        Command::Undo(args) => commands::undo::run(&args),
        Command::Sanitize(args) => commands::sanitize::run(&args),
        Command::EmptyFolders(args) => commands::empty_folders::run(&args),
        Command::Verify(args) => commands::verify::run(&args),
        Command::Permissions(args) => commands::permissions::run(&args),
        Command::SpeedTest(args) => commands::speed_test::run(&args),
        Command::Runs(args) => commands::runs::run(&args),
        Command::Report(args) => commands::runs::report(&args),
        Command::Serve(args) => commands::serve::run(&args, file.as_ref()),
        Command::Agent(args) => commands::agent::run(&args, file.as_ref()),
        Command::Config(cmd) => commands::config::run(&cmd),
        Command::Doctor(args) => commands::doctor::run(&args),
        Command::Token(cmd) => commands::token::run(&cmd),
        Command::Release(cmd) => commands::release::run(&cmd),
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

/// Uploads hold parts of several MiB that are freed and allocated again all the time. glibc
/// raises its mmap threshold after each large free, so later parts land in the heap, where
/// fragmentation keeps them: peak memory then grows with time (measured: 120-160 MiB for four
/// 512 MiB files to S3, 64 MiB steady with a fixed threshold). A fixed 1 MiB threshold keeps
/// every large buffer in its own mapping, returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_large_buffers_out_of_the_heap() {
    // SAFETY: mallopt only changes allocator tuning; called first thing in main, before any
    // other thread exists.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_buffers_out_of_the_heap() {}

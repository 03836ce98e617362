//! `godwit agent`: runs next to the data, for a control plane.

use crate::cli::AgentArgs;
use crate::commands::serve::shutdown_signal;
use crate::commands::shared;
use crate::exit::ExitStatus;

pub fn run(args: &AgentArgs) -> anyhow::Result<ExitStatus> {
    let mut options =
        godwit_agent::AgentOptions::new(&args.server, &args.token, shared::state_dir(&args.state));
    options.name = args.name.clone();
    options.version = crate::VERSION.to_string();
    options.upgrade_window = std::time::Duration::from_secs(args.upgrade_window.max(1));
    if let Some(key) = &args.release_key {
        // The key itself, or a file that holds it.
        let text = match std::fs::read_to_string(key) {
            Ok(t) => t,
            Err(_) => key.clone(),
        };
        match godwit_spec::release::public_key(&text) {
            Ok(k) => options.release_key = Some(k),
            Err(e) => {
                eprintln!("error: --release-key: {e}");
                return Ok(ExitStatus::Usage);
            }
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.post_check {
        return Ok(match rt.block_on(godwit_agent::post_check(&options)) {
            Ok(()) => ExitStatus::Success,
            Err(e) => {
                eprintln!("error: post-check: {e}");
                ExitStatus::JobFailed
            }
        });
    }
    match rt.block_on(godwit_agent::run(options, shutdown_signal())) {
        godwit_agent::Exit::Shutdown => Ok(ExitStatus::Success),
        godwit_agent::Exit::Retired => {
            eprintln!(
                "agent retired: its runs were stopped and its state directory removed; this host can be decommissioned (remove the agent's service so that it does not start again)"
            );
            Ok(ExitStatus::Success)
        }
        godwit_agent::Exit::Refused {
            code,
            message,
            remediation,
        } => {
            eprintln!(
                "error[{code}]: {message}\n  {remediation}\n  (godwit explain {code} tells more)"
            );
            Ok(ExitStatus::JobFailed)
        }
        godwit_agent::Exit::Usage(why) => {
            eprintln!("error: {why}");
            Ok(ExitStatus::Usage)
        }
    }
}

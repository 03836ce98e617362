//! `godwit agent`: runs next to the data, for a control plane.

use crate::cli::AgentArgs;
use crate::commands::serve::shutdown_signal;
use crate::commands::shared;
use crate::exit::ExitStatus;

pub fn run(args: &AgentArgs) -> anyhow::Result<ExitStatus> {
    let options = godwit_agent::AgentOptions {
        server: args.server.clone(),
        token: args.token.clone(),
        name: args.name.clone(),
        state_dir: shared::state_dir(&args.state),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match rt.block_on(godwit_agent::run(options, shutdown_signal())) {
        godwit_agent::Exit::Shutdown => Ok(ExitStatus::Success),
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

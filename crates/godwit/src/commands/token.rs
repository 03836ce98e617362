//! `godwit token create`: a token for the control plane's API, signed with its secret.

use godwit_server::{Role, Secret};

use crate::cli::TokenCommand;
use crate::commands::{print, shared};
use crate::exit::ExitStatus;

pub fn run(cmd: &TokenCommand) -> anyhow::Result<ExitStatus> {
    let TokenCommand::Create(args) = cmd;
    let ttl = match humantime::parse_duration(&args.ttl) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: --ttl {}: {e} (write it as 1h, 30d or 1y)", args.ttl);
            return Ok(ExitStatus::Usage);
        }
    };
    let role = Role::parse(&args.role).unwrap_or(Role::Viewer);
    let secret = match Secret::load(&shared::state_dir(&args.state)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: the token secret: {e}");
            return Ok(ExitStatus::JobFailed);
        }
    };
    match secret.issue(&args.subject, role, args.agent_id.as_deref(), ttl) {
        Ok(token) => {
            let _ = print(&format!("{token}\n"));
            Ok(ExitStatus::Success)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitStatus::JobFailed)
        }
    }
}

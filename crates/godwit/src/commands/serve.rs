//! `godwit serve` and `godwit token create`.

use godwit_server::{Role, Secret, ServeOptions};

use crate::cli::{AgentArgs, ServeArgs, TokenCommand};
use crate::commands::{print, shared};
use crate::exit::ExitStatus;

pub fn run(args: &ServeArgs) -> anyhow::Result<ExitStatus> {
    // A setting that cannot work is a usage error before anything starts.
    if let Err(e) = godwit_server::Settings::from_env() {
        return Ok(shared::report(&e));
    }
    let options = ServeOptions {
        listen: args.listen,
        database: args.database.clone(),
        state_dir: shared::state_dir(&args.state),
        heartbeat_window: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(godwit_server::serve(&options, shutdown_signal(), |addr| {
        let db = godwit_server::store::redact(&godwit_server::database_url(&options));
        eprintln!("godwit control plane listening on http://{addr} (store: {db})");
    }));
    match result {
        Ok(()) => Ok(ExitStatus::Success),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitStatus::JobFailed)
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        () = term => {},
    }
    eprintln!("stopping: finishing requests in flight");
}

pub fn token(cmd: &TokenCommand) -> anyhow::Result<ExitStatus> {
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

pub fn agent(args: &AgentArgs) -> anyhow::Result<ExitStatus> {
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

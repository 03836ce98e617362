//! `godwit agent`: runs next to the data, for a control plane.

use crate::cli::AgentArgs;
use crate::commands::serve::shutdown_signal;
use crate::exit::ExitStatus;

pub fn run(args: &AgentArgs, file: Option<&crate::config::File>) -> anyhow::Result<ExitStatus> {
    let f = file.and_then(|f| f.agent.as_ref());
    let Some(server) = args
        .control_plane
        .server
        .clone()
        .or_else(|| f.and_then(|f| f.server.clone()))
    else {
        eprintln!(
            "error: the control plane's URL is missing: give --server URL (or GODWIT_SERVER, or server in the configuration's [agent])"
        );
        return Ok(ExitStatus::Usage);
    };
    let token = match (
        &args.control_plane.token,
        f.and_then(|f| f.token_file.as_ref()),
    ) {
        (Some(t), _) => t.clone(),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(t) => t.trim().to_string(),
            Err(e) => {
                eprintln!("error: token_file {}: {e}", path.display());
                return Ok(ExitStatus::Usage);
            }
        },
        (None, None) => {
            eprintln!(
                "error: the agent's token is missing: set GODWIT_AGENT_TOKEN (or token_file in the configuration's [agent])"
            );
            return Ok(ExitStatus::Usage);
        }
    };
    let state_dir = args
        .state
        .state_dir
        .clone()
        .or_else(|| f.and_then(|f| f.state_dir.clone()))
        .unwrap_or_else(godwit_engine::state::default_state_dir);
    let mut options = godwit_agent::AgentOptions::new(&server, &token, state_dir);
    options.name = args.name.clone().or_else(|| f.and_then(|f| f.name.clone()));
    options.version = crate::VERSION.to_string();
    let window = args
        .upgrade_window
        .or(f.and_then(|f| f.upgrade_window_secs))
        .unwrap_or(60);
    options.upgrade_window = std::time::Duration::from_secs(window.max(1));
    options.ca_file = args
        .control_plane
        .ca_file
        .clone()
        .or_else(|| f.and_then(|f| f.ca_file.clone()));
    options.allow_plain_http =
        args.allow_plain_http || f.and_then(|f| f.allow_plain_http) == Some(true);
    let release_key = args
        .release_key
        .clone()
        .or_else(|| f.and_then(|f| f.release_key.clone()));
    let metrics_listen = args.metrics_listen.or(f.and_then(|f| f.metrics_listen));
    if let Some(key) = &release_key {
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
    if let Some(addr) = metrics_listen {
        let _ = godwit_server::telemetry::handle();
        let listener = match rt.block_on(tokio::net::TcpListener::bind(addr)) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: --metrics-listen {addr}: {e}");
                return Ok(ExitStatus::Usage);
            }
        };
        let addr = listener.local_addr().unwrap_or(addr);
        tracing::info!(addr = %addr, "metrics at http://{addr}/metrics");
        rt.spawn(async move {
            if let Err(e) = godwit_server::telemetry::serve_page(listener).await {
                tracing::error!("the metrics page stopped: {e}");
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

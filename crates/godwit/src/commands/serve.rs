//! `godwit serve`: the control plane.

use godwit_server::ServeOptions;

use crate::cli::ServeArgs;
use crate::commands::shared;
use crate::exit::ExitStatus;

pub fn run(args: &ServeArgs) -> anyhow::Result<ExitStatus> {
    // A setting that cannot work is a usage error before anything starts.
    if let Err(e) = godwit_server::Settings::from_env() {
        return Ok(shared::report(&e));
    }
    let options = ServeOptions {
        listen: args.listen,
        database: args.store.database.clone(),
        state_dir: shared::state_dir(&args.store.state),
        heartbeat_window: None,
        // The key itself, or a file that holds it.
        release_key: args
            .release_key
            .as_ref()
            .map(|k| std::fs::read_to_string(k).unwrap_or_else(|_| k.clone())),
        min_agent_version: args.min_agent_version.clone(),
        run_windows: None,
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
pub async fn shutdown_signal() {
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

//! `godwit serve`: the control plane.

use godwit_server::ServeOptions;

use crate::cli::ServeArgs;
use crate::commands::shared;
use crate::exit::ExitStatus;

pub fn run(args: &ServeArgs, file: Option<&crate::config::File>) -> anyhow::Result<ExitStatus> {
    // A setting that cannot work is a usage error before anything starts.
    if let Err(e) = godwit_server::Settings::from_env() {
        return Ok(shared::report(&e));
    }
    let f = file.and_then(|f| f.serve.as_ref());
    let from_file = |pick: fn(&crate::config::Serve) -> Option<String>| f.and_then(pick);
    let listen = args
        .listen
        .or(f.and_then(|f| f.listen))
        .unwrap_or(crate::cli::DEFAULT_LISTEN);
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => f
            .and_then(|f| f.tls.as_ref())
            .map(|t| (t.cert.clone(), t.key.clone())),
    };
    let plain_ok = args.allow_plain_http || f.and_then(|f| f.allow_plain_http) == Some(true);
    if tls.is_none() && !listen.ip().is_loopback() && !plain_ok {
        return Ok(shared::report(&godwit_spec::JobError::config(&format!(
            "--listen {listen}: plain HTTP only on a loopback address; give --tls-cert and \
             --tls-key to serve HTTPS, or --allow-plain-http behind a proxy that does TLS"
        ))));
    }
    let state_dir = args
        .store
        .state
        .state_dir
        .clone()
        .or_else(|| f.and_then(|f| f.state_dir.clone()))
        .unwrap_or_else(godwit_engine::state::default_state_dir);
    let options = ServeOptions {
        listen,
        database: args
            .store
            .database
            .clone()
            .or_else(|| from_file(|f| f.database.clone())),
        state_dir,
        heartbeat_window: None,
        // The key itself, or a file that holds it.
        release_key: args
            .release_key
            .clone()
            .or_else(|| from_file(|f| f.release_key.clone()))
            .map(|k| std::fs::read_to_string(&k).unwrap_or(k)),
        min_agent_version: args
            .min_agent_version
            .clone()
            .or_else(|| from_file(|f| f.min_agent_version.clone())),
        run_windows: None,
        tls,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let result = rt.block_on(godwit_server::serve(&options, shutdown_signal(), |addr| {
        let db = godwit_server::store::redact(&godwit_server::database_url(&options));
        tracing::info!(
            addr = %addr,
            store = %db,
            version = crate::VERSION,
            "godwit control plane listening on {scheme}://{addr}"
        );
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
    tracing::info!("stopping: finishing what is in flight");
}

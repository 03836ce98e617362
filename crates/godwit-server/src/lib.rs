//! godwit's control plane: `godwit serve`. An axum server over one store (SQLite by default,
//! PostgreSQL), with JWT auth, per-token rate limits, and one error model: every answer that is
//! not 2xx carries a catalog code (see `error.rs`).

pub mod api;
pub mod auth;
pub mod cluster;
pub mod commands;
pub mod error;
pub mod hub;
pub mod limit;
pub mod pools;
pub mod projects;
pub mod retire;
pub use godwit_spec::protocol;
pub mod records;
pub mod rules;
pub mod scheduler;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod upgrades;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;

pub use auth::{Role, Secret};
pub use store::Store;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub secret: Secret,
    pub limiter: Arc<limit::Limiter>,
    /// Requests with a missing or bad token, per client address.
    pub auth_failures: Arc<limit::Limiter>,
    pub limits: Limits,
    pub hub: Arc<hub::Hub>,
    /// The public half of the release key: releases are taken only when they verify with it.
    pub release_key: Option<godwit_spec::release::PublicKey>,
    /// Agents older than this are refused at registration (864) and as upgrade targets (1010).
    pub min_agent_version: Option<String>,
}

/// The control plane's limits on work (seed 000's 628, 629 and 640).
/// The job limits an agent's simulated scan and validation use when given none.
const DEFAULT_JOB: godwit_spec::split::Limits = godwit_spec::split::Limits::DEFAULT;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Migrations with a command not yet over, at once (628).
    pub max_active_migrations: i64,
    /// Files one job may hold, by its last scan (629).
    pub job_max_files: i64,
    /// Bytes one job may hold, by its last scan (640).
    pub job_max_bytes: i64,
}

impl Limits {
    /// From `GODWIT_MAX_ACTIVE_MIGRATIONS` (default 100), `GODWIT_JOB_MAX_FILES` (50 million)
    /// and `GODWIT_JOB_MAX_BYTES` (1 PiB).
    pub fn from_env() -> Result<Self, godwit_spec::JobError> {
        use godwit_spec::env::count;
        Ok(Limits {
            max_active_migrations: count("GODWIT_MAX_ACTIVE_MIGRATIONS", 100)?,
            job_max_files: count("GODWIT_JOB_MAX_FILES", DEFAULT_JOB.files as i64)?,
            job_max_bytes: count("GODWIT_JOB_MAX_BYTES", DEFAULT_JOB.bytes as i64)?,
        })
    }
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// `sqlite://...` or `postgres://...`; None: `sqlite://STATE_DIR/control-plane.db`.
    pub database: Option<String>,
    pub state_dir: PathBuf,
    /// An agent silent this long is inactive; None: `GODWIT_HEARTBEAT_WINDOW` or 30 s.
    pub heartbeat_window: Option<std::time::Duration>,
    /// The public half of the release key (base64), for agent releases.
    pub release_key: Option<String>,
    /// The oldest agent version that may connect.
    pub min_agent_version: Option<String>,
    /// A running command whose agent reports nothing on it this long fails with 697, one that
    /// does nothing this long with 641; None: `GODWIT_RUN_REPORT_WINDOW` (300 s) and
    /// `GODWIT_RUN_HUNG_WINDOW` (1800 s).
    pub run_windows: Option<(std::time::Duration, std::time::Duration)>,
    /// Serve HTTPS with this certificate chain and key (PEM files); None: plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Makes `dir` (and the folders above it that are missing) readable by this user only.
pub(crate) fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The database URL `options` name.
pub fn database_url(options: &ServeOptions) -> String {
    options.database.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            options.state_dir.join("control-plane.db").display()
        )
    })
}

/// What the environment sets: the rate limit, the limits, the heartbeat window. Read once at
/// start; a value that is set but unusable is a 724 naming the variable.
#[derive(Debug)]
pub struct Settings {
    pub limiter: limit::Limiter,
    pub auth_failures: limit::Limiter,
    pub limits: Limits,
    pub hub: hub::Hub,
    pub release_key: Option<godwit_spec::release::PublicKey>,
    pub min_agent_version: Option<String>,
}

impl Settings {
    pub fn from_env() -> Result<Settings, godwit_spec::JobError> {
        Ok(Settings {
            limiter: limit::Limiter::from_env()?,
            auth_failures: limit::Limiter::failures_from_env()?,
            limits: Limits::from_env()?,
            hub: hub::Hub::from_env()?,
            release_key: None,
            min_agent_version: None,
        })
    }

    /// The defaults, whatever the environment says: 50 requests a second a token (burst 100),
    /// 30 failed sign-ins a minute a client, the default limits, a 30 s heartbeat window.
    pub fn defaults() -> Settings {
        Settings {
            limiter: limit::Limiter::new(50.0, 100.0),
            auth_failures: limit::Limiter::failures(30.0),
            limits: Limits {
                max_active_migrations: 100,
                job_max_files: DEFAULT_JOB.files as i64,
                job_max_bytes: DEFAULT_JOB.bytes as i64,
            },
            hub: hub::Hub::new(std::time::Duration::from_secs(30)),
            release_key: None,
            min_agent_version: None,
        }
    }
}

/// The application with its routes, for a store and a secret, with the default settings.
pub fn app(store: Store, secret: Secret) -> Router {
    app_with(store, secret, Settings::defaults())
}

/// The application with the given settings.
pub fn app_with(store: Store, secret: Secret, settings: Settings) -> Router {
    api::router(state_with(store, secret, settings))
}

fn state_with(store: Store, secret: Secret, settings: Settings) -> AppState {
    // The metrics recorder, before anything is counted.
    let _ = telemetry::handle();
    AppState {
        store,
        secret,
        limiter: Arc::new(settings.limiter),
        auth_failures: Arc::new(settings.auth_failures),
        limits: settings.limits,
        hub: Arc::new(settings.hub),
        release_key: settings.release_key,
        min_agent_version: settings.min_agent_version,
    }
}

/// Opens the store `options` name, brought up to date: the one `godwit serve` serves and
/// `godwit token` records tokens in. The default SQLite file is made readable by this user only
/// before SQLite opens it (its journal files take the same mode); SQLite would make it with the
/// process's umask.
pub async fn open_store(options: &ServeOptions) -> Result<Store, String> {
    if options.database.is_none() {
        private_dir(&options.state_dir)
            .map_err(|e| format!("{}: {e}", options.state_dir.display()))?;
        let db = options.state_dir.join("control-plane.db");
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&db)
            .map_err(|e| format!("{}: {e}", db.display()))?;
    }
    Store::open(&database_url(options)).await
}

/// Takes the SQLite file `url` names for this process alone (an exclusive `flock`, which
/// SQLite's own `fcntl` locks do not see, so `godwit token` may still write to it): a second
/// `godwit serve` on the same file is 1056. None for an in-memory database.
fn sole_server(url: &str) -> Result<Option<std::fs::File>, String> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path.starts_with(":memory:") {
        return Ok(None);
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .open(path)
        .map_err(|e| format!("{path}: {e}"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => {
            let code = godwit_codes::Code::GODWIT_SQLITE_SECOND_SERVER;
            Err(format!(
                "[{}] {}",
                code.id(),
                code.render(&[("path", path)])
            ))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(format!("{path}: {e}")),
    }
}

/// Serves until `shutdown` resolves; requests in flight finish, then the store is closed.
pub async fn serve(
    options: &ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let settings = Settings::from_env().map_err(|e| format!("[{}] {}", e.code.id(), e.message))?;
    private_dir(&options.state_dir).map_err(|e| format!("{}: {e}", options.state_dir.display()))?;
    let secret = Secret::load(&options.state_dir)?;
    let store = open_store(options).await?;
    // SQLite is one process's store: a second `godwit serve` on it is refused (held until
    // this one returns).
    let _only_replica = match store.backend {
        store::Backend::Sqlite => sole_server(&database_url(options))?,
        store::Backend::Postgres => None,
    };
    let tls = match &options.tls {
        Some((cert, key)) => Some(tls::server_config(cert, key)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", options.listen))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let mut settings = settings;
    if let Some(w) = options.heartbeat_window {
        settings.hub.heartbeat_window = w;
    }
    if let Some((report, hung)) = options.run_windows {
        settings.hub.report_window = report;
        settings.hub.hung_window = hung;
    }
    if let Some(key) = &options.release_key {
        settings.release_key = Some(godwit_spec::release::public_key(key)?);
    }
    if let Some(v) = &options.min_agent_version {
        if !godwit_spec::release::is_version(v) {
            return Err(format!(
                "--min-agent-version {v}: not a semantic version (1.2.3)"
            ));
        }
        settings.min_agent_version = Some(v.clone());
    }
    let state = state_with(store.clone(), secret, settings);
    // On PostgreSQL, other control planes may share the database: messages for agents
    // connected to them are relayed, and one of them does the sweeps (cluster.rs).
    if store.backend == store::Backend::Postgres {
        let url = database_url(options);
        let cluster =
            cluster::Cluster::start(&url, store.clone(), state.hub.clone(), &state.secret).await?;
        state.hub.set_cluster(cluster);
    }
    // Agents that stop sending heartbeats become inactive, and what they ran is suspended;
    // schedules that are due start their commands; project runs are settled (projects.rs).
    let sweeper = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                tick.tick().await;
                // With other replicas, the one holding the lead does what follows.
                if let Some(cluster) = state.hub.cluster()
                    && !cluster.tick(&state.hub).await
                {
                    continue;
                }
                let _ = state.hub.sweep(&state.store).await;
                scheduler::fire_due(&state).await;
                projects::settle(&state).await;
                pools::settle(&state).await;
                upgrades::settle(&state).await;
                retire::settle(&state).await;
                commands::watch(&state).await;
            }
        })
    };
    on_ready(bound);
    let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = match tls {
        Some(config) => {
            use axum::serve::ListenerExt as _;
            // tap_io: connect info (the client's address) for a listener of our own.
            let listener = tls::TlsListener::new(listener, config)
                .map_err(|e| e.to_string())?
                .tap_io(|_| ());
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(|e| e.to_string())
        }
        None => axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| e.to_string()),
    };
    sweeper.abort();
    store.close().await;
    result
}

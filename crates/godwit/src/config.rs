//! Configuration files for the services: `godwit serve --config FILE` reads its `[serve]`
//! table, `godwit agent --config FILE` its `[agent]` table, both the `[log]` table. One file
//! may hold both (a host that runs both), and `godwit config check FILE` reads all of it.
//!
//! What wins: a flag, then its environment variable, then the file, then the default. A key
//! godwit does not know is an error with its line, as is a value of the wrong type; nothing
//! starts on a file that does not check.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use godwit_spec::JobError;
use serde::Deserialize;

use crate::cli::LogFormat;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub serve: Option<Serve>,
    pub agent: Option<Agent>,
    pub log: Option<Log>,
}

/// `[serve]`: the control plane.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Serve {
    pub listen: Option<SocketAddr>,
    pub database: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub release_key: Option<String>,
    pub min_agent_version: Option<String>,
    /// Serve plain HTTP on an address other than loopback (behind a proxy that does TLS).
    pub allow_plain_http: Option<bool>,
    pub heartbeat_window_secs: Option<f64>,
    pub run_report_window_secs: Option<f64>,
    pub run_hung_window_secs: Option<f64>,
    pub retire_timeout_secs: Option<f64>,
    /// How long a browse of a source (the dashboard's folder picker) waits for its agent.
    pub browse_wait_secs: Option<f64>,
    /// A folder with more folders than this is not offered for picking (638).
    pub browse_max_folders: Option<i64>,
    pub limits: Option<Limits>,
    pub tls: Option<Tls>,
}

/// `[serve.limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_active_migrations: Option<i64>,
    pub job_max_files: Option<i64>,
    pub job_max_bytes: Option<i64>,
    pub requests_per_second: Option<f64>,
    pub auth_failures_per_minute: Option<f64>,
}

/// `[serve.tls]`: the certificate chain and its key, PEM.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[agent]`: an agent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub server: Option<String>,
    /// A file holding the agent's token (the token itself belongs in no configuration file).
    pub token_file: Option<PathBuf>,
    pub name: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub release_key: Option<String>,
    pub upgrade_window_secs: Option<u64>,
    pub metrics_listen: Option<SocketAddr>,
    /// The CA certificates (PEM) the control plane's certificate must chain to, instead of
    /// the system's.
    pub ca_file: Option<PathBuf>,
    /// Connect to a control plane over plain HTTP on an address other than loopback.
    pub allow_plain_http: Option<bool>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// A filter, as RUST_LOG takes it: `info`, `debug`, `godwit_server=debug`.
    pub level: Option<String>,
    pub format: Option<LogFormat>,
}

/// Which tables' values to check beyond their syntax: a service checks its own (a control
/// plane need not find the agent's token file), `godwit config check` all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Serve,
    Agent,
    All,
}

/// Reads and checks `path` for every role: its syntax and keys, and what each value must be.
pub fn load(path: &Path) -> Result<File, JobError> {
    load_for(path, Role::All)
}

/// Reads `path`: the syntax and keys of all of it (a key misspelt anywhere is an error), the
/// values of `role`'s tables.
pub fn load_for(path: &Path, role: Role) -> Result<File, JobError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| JobError::config(&format!("{}: {e}", path.display())))?;
    let file: File = toml::from_str(&text).map_err(|e| {
        // The parser's message names the line and column and shows it.
        JobError::config(&format!("{}: {}", path.display(), e.to_string().trim_end()))
    })?;
    check(path, &file, role)?;
    Ok(file)
}

/// What a value must be beyond its type.
fn check(path: &Path, f: &File, role: Role) -> Result<(), JobError> {
    let bad = |key: &str, why: &str| JobError::config(&format!("{}: {key}: {why}", path.display()));
    if let Some(s) = f.serve.as_ref().filter(|_| role != Role::Agent) {
        if let Some(db) = &s.database
            && !(db.starts_with("sqlite:")
                || db.starts_with("postgres:")
                || db.starts_with("postgresql:"))
        {
            return Err(bad(
                "serve.database",
                "give postgres://USER@HOST/DB or sqlite://PATH",
            ));
        }
        if let Some(v) = &s.min_agent_version
            && !godwit_spec::release::is_version(v)
        {
            return Err(bad(
                "serve.min_agent_version",
                "not a semantic version (1.2.3)",
            ));
        }
        if let Some(k) = &s.release_key {
            let text = std::fs::read_to_string(k).unwrap_or_else(|_| k.clone());
            godwit_spec::release::public_key(&text).map_err(|e| bad("serve.release_key", &e))?;
        }
        if let Some(t) = &s.tls {
            for (key, file) in [("serve.tls.cert", &t.cert), ("serve.tls.key", &t.key)] {
                if let Err(e) = std::fs::metadata(file) {
                    return Err(bad(key, &format!("{}: {e}", file.display())));
                }
            }
        }
        let listen = s.listen.unwrap_or(crate::cli::DEFAULT_LISTEN);
        if !listen.ip().is_loopback() && s.tls.is_none() && s.allow_plain_http != Some(true) {
            return Err(bad(
                "serve.listen",
                &format!(
                    "{listen} is not a loopback address: give [serve.tls] cert and key, or \
                     allow_plain_http = true behind a proxy that does TLS"
                ),
            ));
        }
    }
    if let Some(a) = f.agent.as_ref().filter(|_| role != Role::Serve) {
        if let Some(list) = &a.server
            && godwit_agent::servers(list)
                .iter()
                .any(|url| !(url.starts_with("http://") || url.starts_with("https://")))
        {
            return Err(bad(
                "agent.server",
                "give http://HOST:PORT or https://HOST:PORT",
            ));
        }
        for (key, file) in [
            ("agent.token_file", &a.token_file),
            ("agent.ca_file", &a.ca_file),
        ] {
            if let Some(file) = file
                && let Err(e) = std::fs::metadata(file)
            {
                return Err(bad(key, &format!("{}: {e}", file.display())));
            }
        }
    }
    if let Some(l) = &f.log
        && let Some(level) = &l.level
        && let Err(e) = tracing_subscriber::EnvFilter::builder().parse(level)
    {
        return Err(bad("log.level", &e.to_string()));
    }
    // The numbers, by the rules the settings read them with (godwit_spec::env).
    for (var, (value, at)) in &settings(path, f) {
        match var.as_str() {
            "GODWIT_HEARTBEAT_WINDOW"
            | "GODWIT_RUN_REPORT_WINDOW"
            | "GODWIT_RUN_HUNG_WINDOW"
            | "GODWIT_BROWSE_WAIT"
            | "GODWIT_RETIRE_TIMEOUT" => godwit_spec::env::check_seconds(at, value)?,
            "GODWIT_RATE_LIMIT" | "GODWIT_AUTH_FAILURE_LIMIT" => {
                godwit_spec::env::check_positive(at, value)?;
            }
            _ => godwit_spec::env::check_count(at, value)?,
        }
    }
    Ok(())
}

/// The `[serve]` settings that stand for environment variables, by variable.
pub fn settings(path: &Path, f: &File) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let Some(s) = &f.serve else {
        return out;
    };
    let mut put = |var: &str, key: &str, v: Option<String>| {
        if let Some(v) = v {
            out.insert(
                var.to_string(),
                (v, format!("{}: serve.{key}", path.display())),
            );
        }
    };
    put(
        "GODWIT_HEARTBEAT_WINDOW",
        "heartbeat_window_secs",
        s.heartbeat_window_secs.map(|n| n.to_string()),
    );
    put(
        "GODWIT_RUN_REPORT_WINDOW",
        "run_report_window_secs",
        s.run_report_window_secs.map(|n| n.to_string()),
    );
    put(
        "GODWIT_RUN_HUNG_WINDOW",
        "run_hung_window_secs",
        s.run_hung_window_secs.map(|n| n.to_string()),
    );
    put(
        "GODWIT_RETIRE_TIMEOUT",
        "retire_timeout_secs",
        s.retire_timeout_secs.map(|n| n.to_string()),
    );
    put(
        "GODWIT_BROWSE_WAIT",
        "browse_wait_secs",
        s.browse_wait_secs.map(|n| n.to_string()),
    );
    put(
        "GODWIT_BROWSE_MAX_FOLDERS",
        "browse_max_folders",
        s.browse_max_folders.map(|n| n.to_string()),
    );
    if let Some(l) = &s.limits {
        put(
            "GODWIT_MAX_ACTIVE_MIGRATIONS",
            "limits.max_active_migrations",
            l.max_active_migrations.map(|n| n.to_string()),
        );
        put(
            "GODWIT_JOB_MAX_FILES",
            "limits.job_max_files",
            l.job_max_files.map(|n| n.to_string()),
        );
        put(
            "GODWIT_JOB_MAX_BYTES",
            "limits.job_max_bytes",
            l.job_max_bytes.map(|n| n.to_string()),
        );
        put(
            "GODWIT_RATE_LIMIT",
            "limits.requests_per_second",
            l.requests_per_second.map(|n| n.to_string()),
        );
        put(
            "GODWIT_AUTH_FAILURE_LIMIT",
            "limits.auth_failures_per_minute",
            l.auth_failures_per_minute.map(|n| n.to_string()),
        );
    }
    out
}

/// The file a service names with `--config`, read and checked; None without one.
pub fn for_service(path: Option<&Path>, role: Role) -> Result<Option<File>, JobError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let file = load_for(path, role)?;
    godwit_spec::env::set_from_file(settings(path, &file));
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<File, JobError> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("godwit.toml");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        load(&path)
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line() {
        let e = load_text("[serve]\nlisten = \"127.0.0.1:8080\"\nheartbeat_windw_secs = 30\n")
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("heartbeat_windw_secs"), "{e}");
    }

    #[test]
    fn values_are_checked_beyond_their_type() {
        for (text, key) in [
            ("[serve]\nlisten = \"0.0.0.0:8080\"\n", "serve.listen"),
            ("[serve]\ndatabase = \"mysql://x\"\n", "serve.database"),
            (
                "[serve]\nmin_agent_version = \"one\"\n",
                "serve.min_agent_version",
            ),
            (
                "[serve.limits]\njob_max_files = 0\n",
                "serve.limits.job_max_files",
            ),
            ("[agent]\nserver = \"ftp://x\"\n", "agent.server"),
            ("[log]\nlevel = \"godwit=loud\"\n", "log.level"),
        ] {
            let e = load_text(text).err().map(|e| e.message).unwrap_or_default();
            assert!(e.contains(key), "{text}: {e}");
        }
        assert!(load_text("[serve]\nlisten = \"0.0.0.0:8080\"\nallow_plain_http = true\n").is_ok());
    }

    #[test]
    fn a_service_checks_the_values_of_its_own_tables_only() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("godwit.toml");
        let text =
            "[serve]\nlisten = \"127.0.0.1:8080\"\n\n[agent]\ntoken_file = \"/nowhere/token\"\n";
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        assert!(load_for(&path, Role::Serve).is_ok());
        for role in [Role::Agent, Role::All] {
            let e = load_for(&path, role)
                .err()
                .map(|e| e.message)
                .unwrap_or_default();
            assert!(e.contains("agent.token_file"), "{e}");
        }
        // A misspelt key is an error for every role.
        std::fs::write(&path, format!("{text}nmae = \"x\"\n")).unwrap_or_else(|e| panic!("{e}"));
        assert!(load_for(&path, Role::Serve).is_err());
        assert!(load_text("[log]\nformat = \"json\"\nlevel = \"godwit_server=debug\"\n").is_ok());
    }
}

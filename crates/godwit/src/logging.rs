//! Diagnostic logging with `tracing`, to stderr.
//!
//! How much: `-v`/`-q` on every subcommand, or a filter in `RUST_LOG` (`GODWIT_LOG` is read
//! first, as it was before the flags) for fine control: `info`, `debug`,
//! `godwit_engine=debug,opendal=trace`. The services (`serve`, `agent`) log at `info` by
//! default; the other commands print their own results and log nothing unless asked.
//!
//! How: text for people, or JSON lines (`--log-format json`, the default under systemd, whose
//! journal is recognised by `JOURNAL_STREAM`). Never a credential: the secret-marker test runs
//! everything at `trace` and finds none. While the command line's progress bar is drawn, log
//! lines are written above it, not through it.

use std::io::{IsTerminal as _, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use godwit_spec::JobError;
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::{LogArgs, LogFormat};

/// The progress bar being drawn, if any: log lines suspend it while they are written.
static BAR: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);
/// `-q`: no progress bar either.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Whether `-q` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Log lines go above `bar` until [`clear_bar`].
pub fn set_bar(bar: &indicatif::ProgressBar) {
    *BAR.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bar.clone());
}

pub fn clear_bar() {
    *BAR.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
}

/// The level a command logs at with neither flag: the services tell what they do; a command
/// run by a person prints its own results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Service,
    Command,
}

/// The filter `-v`/`-q` give: from the base level, each `-v` one level more, each `-q` one less.
fn level(base: Base, verbose: u8, quiet: u8) -> &'static str {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let start: i32 = match base {
        Base::Service => 3,
        Base::Command => 0,
    };
    let at = match base {
        // A command with no flag logs nothing; -v starts at info.
        Base::Command if verbose > 0 => 2 + i32::from(verbose),
        _ => start + i32::from(verbose) - i32::from(quiet),
    };
    LEVELS[at.clamp(0, 5) as usize]
}

/// The format asked for, or the default: JSON when stderr is systemd's journal.
fn format(asked: Option<LogFormat>) -> LogFormat {
    asked.unwrap_or_else(|| {
        if stderr_is_journal() {
            LogFormat::Json
        } else {
            LogFormat::Text
        }
    })
}

/// systemd names the journal stream it gave a service in `JOURNAL_STREAM` (`DEVICE:INODE`);
/// it is the journal only if stderr is still that file (a child whose stderr was redirected
/// inherits the variable).
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    stream == format!("{}:{}", meta.dev(), meta.ino())
}

/// Starts logging for a command of kind `base`; a filter that cannot be read is 724.
/// What wins: `GODWIT_LOG` or `RUST_LOG`, then `-v`/`-q`, then the configuration file's
/// `[log]`, then the command's base level.
pub fn init(args: &LogArgs, base: Base, file: Option<&crate::config::Log>) -> Result<(), JobError> {
    QUIET.store(args.quiet > 0, Ordering::Relaxed);
    let from_env = ["GODWIT_LOG", "RUST_LOG"].iter().find_map(|name| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (v, name.to_string()))
    });
    let flags = args.verbose > 0 || args.quiet > 0;
    let (text, from) = match (from_env, file.and_then(|f| f.level.clone())) {
        (Some((v, name)), _) => (v, name),
        (None, Some(v)) if !flags => (v, "log.level".to_string()),
        _ => (
            level(base, args.verbose, args.quiet).to_string(),
            String::new(),
        ),
    };
    let asked = args.log_format.or(file.and_then(|f| f.format));
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(&text)
        .map_err(|e| {
            JobError::config(&format!(
                "{from}={text}: {e} (write a level, such as debug, or module=level pairs)"
            ))
        })?;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{Layer as _, filter, fmt};
    let never = filter::filter_fn(|meta| !never_logged(meta.target()));
    let layer = match format(asked) {
        LogFormat::Text => fmt::layer()
            .with_writer(Stderr)
            .with_ansi(false)
            .with_filter(filter)
            .with_filter(never)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(Stderr)
            .with_filter(filter)
            .with_filter(never)
            .boxed(),
    };
    // The control plane times its store's statements from sqlx's events (see telemetry.rs).
    let queries = (base == Base::Service).then(|| {
        godwit_server::telemetry::QueryTimer
            .with_filter(godwit_server::telemetry::query_timer_filter())
    });
    // Already set (a second call) is not an error worth stopping for.
    let _ = tracing_subscriber::registry()
        .with((text != "off").then_some(layer))
        .with(queries)
        .try_init();
    Ok(())
}

/// Libraries whose events hold secrets, whatever the level asked: the request signers print
/// the credentials they load (access key, secret key, session token) at debug, and the
/// WebSocket client prints its whole handshake request, the agent's token with it, at trace.
/// Both found by the secret-marker test; no filter a user writes turns them back on.
fn never_logged(target: &str) -> bool {
    target.starts_with("reqsign") || target.starts_with("tungstenite::handshake")
}

/// stderr, around the progress bar when one is drawn.
#[derive(Debug, Clone, Copy)]
struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Stderr;
    fn make_writer(&'a self) -> Stderr {
        Stderr
    }
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Each event arrives whole in one write.
        let bar = BAR
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match bar {
            Some(bar) if std::io::stderr().is_terminal() => {
                bar.suspend(|| std::io::stderr().lock().write_all(buf))?;
            }
            _ => std::io::stderr().lock().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::{Base, level};

    #[test]
    fn the_signers_are_never_logged() {
        assert!(super::never_logged("reqsign_core::api"));
        assert!(super::never_logged("reqsign_aws_v4::credential"));
        assert!(super::never_logged("tungstenite::handshake::client"));
        assert!(!super::never_logged("opendal::services"));
        assert!(!super::never_logged("godwit_engine::job"));
    }

    #[test]
    fn verbosity_moves_from_the_base_level() {
        assert_eq!(level(Base::Service, 0, 0), "info");
        assert_eq!(level(Base::Service, 1, 0), "debug");
        assert_eq!(level(Base::Service, 2, 0), "trace");
        assert_eq!(level(Base::Service, 9, 0), "trace");
        assert_eq!(level(Base::Service, 0, 1), "warn");
        assert_eq!(level(Base::Service, 0, 2), "error");
        assert_eq!(level(Base::Service, 0, 5), "off");
        assert_eq!(level(Base::Command, 0, 0), "off");
        assert_eq!(level(Base::Command, 0, 1), "off");
        assert_eq!(level(Base::Command, 1, 0), "info");
        assert_eq!(level(Base::Command, 2, 0), "debug");
        assert_eq!(level(Base::Command, 3, 0), "trace");
    }
}

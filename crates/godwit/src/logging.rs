//! Diagnostic logging: `GODWIT_LOG` turns it on, to stderr, with tracing's filter syntax
//! (`info`, `debug`, `trace`, `godwit_engine=debug,opendal=trace`). Unset, nothing is logged
//! and nothing costs. It carries godwit's own events (jobs, files that failed, requests, the
//! agent's connection) and those of the libraries below (OpenDAL's every store operation,
//! sqlx's statements), never a credential: the secret-marker test runs everything at `trace`
//! and finds none.

use godwit_spec::JobError;

/// Starts logging if `GODWIT_LOG` asks for it; a filter that cannot be read is 724.
pub fn init() -> Result<(), JobError> {
    let Some(text) = std::env::var("GODWIT_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(());
    };
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(&text)
        .map_err(|e| {
            JobError::config(&format!(
                "GODWIT_LOG={text}: {e} (write a level, such as debug, or module=level pairs)"
            ))
        })?;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{Layer as _, filter, fmt};
    let layer = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter)
        .with_filter(filter::filter_fn(|meta| !never_logged(meta.target())));
    // Already set (a second call) is not an error worth stopping for.
    let _ = tracing_subscriber::registry().with(layer).try_init();
    Ok(())
}

/// Libraries whose events hold secrets, whatever the level asked: the request signers print
/// the credentials they load (access key, secret key, session token) at debug, and the
/// WebSocket client prints its whole handshake request, the agent's token with it, at trace.
/// Both found by the secret-marker test; no filter a user writes turns them back on.
fn never_logged(target: &str) -> bool {
    target.starts_with("reqsign") || target.starts_with("tungstenite::handshake")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signers_are_never_logged() {
        assert!(super::never_logged("reqsign_core::api"));
        assert!(super::never_logged("reqsign_aws_v4::credential"));
        assert!(super::never_logged("tungstenite::handshake::client"));
        assert!(!super::never_logged("opendal::services"));
        assert!(!super::never_logged("godwit_engine::job"));
    }
}

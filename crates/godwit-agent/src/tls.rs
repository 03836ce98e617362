//! How the agent reaches its control plane safely: HTTPS verified against the system's roots
//! or a CA file (`--ca-file`), and plain HTTP only to loopback unless allowed.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// rustls' crypto, set once for the process (the WebSocket client builds its settings with
/// the process default).
pub(crate) fn install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Refuses `http://` to a host that is not loopback, unless `allowed`: the token would cross
/// the network in the clear.
pub fn check_plain(server: &str, allowed: bool) -> Result<(), String> {
    let Some(rest) = server
        .strip_prefix("http://")
        .or_else(|| server.strip_prefix("ws://"))
    else {
        return Ok(());
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback || allowed {
        Ok(())
    } else {
        Err(format!(
            "{server}: plain HTTP to a host other than this one would send the agent's token in \
             the clear; use https:// (with --ca-file for a private CA), or --allow-plain-http \
             on a network you trust"
        ))
    }
}

/// The certificates of a CA file (PEM).
fn ca_certs(ca: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(ca)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("--ca-file {}: {e}", ca.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "--ca-file {}: no certificate in it (PEM, BEGIN CERTIFICATE)",
            ca.display()
        ));
    }
    Ok(certs)
}

/// The WebSocket's TLS settings: None for the system's roots, else only the CA file's.
pub(crate) fn ws_connector(
    ca: Option<&Path>,
) -> Result<Option<tokio_tungstenite::Connector>, String> {
    let Some(ca) = ca else {
        return Ok(None);
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in ca_certs(ca)? {
        roots
            .add(cert)
            .map_err(|e| format!("--ca-file {}: {e}", ca.display()))?;
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(tokio_tungstenite::Connector::Rustls(Arc::new(config))))
}

/// An HTTP client for the control plane (release downloads, the post-check): the system's
/// roots, or only the CA file's.
pub(crate) fn http_client(ca: Option<&Path>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).map_err(|e| format!("--ca-file {}: {e}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("--ca-file {}: {e}", ca.display()))?;
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::check_plain;

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:8080/",
            "http://[::1]:8080",
            "https://cp.example:8443",
            "http://127.0.0.2",
        ] {
            assert!(check_plain(ok, false).is_ok(), "{ok}");
        }
        for refused in [
            "http://cp.example:8080",
            "http://10.0.0.5:8080",
            "http://[fe80::1]:80",
        ] {
            let e = check_plain(refused, false).unwrap_err();
            assert!(e.contains("--allow-plain-http"), "{e}");
            assert!(check_plain(refused, true).is_ok());
        }
    }
}

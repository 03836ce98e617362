//! The one Azure Blob request OpenDAL does not make: Set Blob Metadata, which replaces a blob's
//! user metadata without sending its bytes again (a permissions run writes owners and modes
//! there). Signed with the account's shared key by reqsign, the signer OpenDAL uses.

use reqsign_azure_storage::{Credential, RequestSigner, StaticCredentialProvider};
use reqsign_core::{Context, Signer};

use crate::store::StoreEnv;

/// An Azure Blob target's coordinates.
pub struct AzureTarget {
    /// The blob service's URL, without a trailing slash: `https://ACCOUNT.blob.core.windows.net`
    /// or Azurite's `http://127.0.0.1:PORT/ACCOUNT`.
    endpoint: String,
    container: String,
    /// The target's prefix: empty, or ending with `/`.
    pub prefix: String,
    http: reqwest::Client,
    signer: Signer<Credential>,
}

impl std::fmt::Debug for AzureTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the signer: it holds the key.
        f.debug_struct("AzureTarget")
            .field("endpoint", &self.endpoint)
            .field("container", &self.container)
            .finish()
    }
}

/// The value of `key` in a connection string (`Key=value;Key=value`).
fn field<'a>(conn: &'a str, key: &str) -> Option<&'a str> {
    conn.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then_some(v.trim())
    })
}

impl AzureTarget {
    /// The target `container`/`prefix` with the shared key from `env` (a connection string, or
    /// an account and key); None without a shared key.
    pub fn new(env: &StoreEnv, container: &str, prefix: &str) -> Option<AzureTarget> {
        let (account, key, endpoint) = match env.get("AZURE_STORAGE_CONNECTION_STRING") {
            Some(conn) => {
                let account = field(&conn, "AccountName")?.to_string();
                let key = field(&conn, "AccountKey")?.to_string();
                let endpoint = match field(&conn, "BlobEndpoint") {
                    Some(e) => e.to_string(),
                    None => {
                        let protocol = field(&conn, "DefaultEndpointsProtocol").unwrap_or("https");
                        let suffix = field(&conn, "EndpointSuffix").unwrap_or("core.windows.net");
                        format!("{protocol}://{account}.blob.{suffix}")
                    }
                };
                (account, key, endpoint)
            }
            None => {
                let account = env.get("AZURE_STORAGE_ACCOUNT")?;
                let key = env.get("AZURE_STORAGE_KEY")?;
                let endpoint = env
                    .get("AZURE_STORAGE_ENDPOINT")
                    .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
                (account, key, endpoint)
            }
        };
        let prefix = prefix.trim_matches('/');
        Some(AzureTarget {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            container: container.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            http: reqwest::Client::new(),
            signer: Signer::new(
                Context::new(),
                StaticCredentialProvider::new_shared_key(&account, &key),
                RequestSigner::new(),
            ),
        })
    }

    /// Replaces the user metadata of the blob `name` (its full name in the container) with
    /// `metadata`.
    pub async fn set_metadata(
        &self,
        name: &str,
        metadata: &[(String, String)],
    ) -> Result<(), String> {
        let url = format!(
            "{}/{}/{}?comp=metadata",
            self.endpoint,
            self.container,
            encode(name)
        );
        let mut request = http::Request::builder()
            .method(http::Method::PUT)
            .uri(&url)
            .header("x-ms-version", "2021-08-06")
            .header("content-length", "0");
        for (k, v) in metadata {
            request = request.header(format!("x-ms-meta-{k}"), v);
        }
        let (status, text) = crate::store::send_signed(&self.http, &self.signer, request).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{status}: {text}"))
        }
    }
}

/// A blob name in a URL path: everything but `A-Z a-z 0-9 - . _ ~ /` as `%XX`.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_string_gives_the_account_and_endpoint() {
        let conn = "DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/dev;";
        assert_eq!(field(conn, "AccountName"), Some("dev"));
        assert_eq!(field(conn, "blobendpoint"), Some("http://127.0.0.1:1/dev"));
        assert_eq!(field(conn, "EndpointSuffix"), None);
        assert_eq!(encode("a b/é.txt"), "a%20b/%C3%A9.txt");
    }
}

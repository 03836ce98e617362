//! Where data lives: a local path or a URL (`s3://`, `az://`, `sftp://`, `memory://`).

use std::fmt;
use std::path::PathBuf;

use godwit_codes::Code;

use crate::error::JobError;

/// The kinds of store godwit reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    Local,
    S3,
    AzureBlob,
    Sftp,
    Memory,
}

impl StoreKind {
    /// The kind as a short word for messages and reports: `local`, `s3`, `azure-blob`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Local => "local",
            StoreKind::S3 => "s3",
            StoreKind::AzureBlob => "azure-blob",
            StoreKind::Sftp => "sftp",
            StoreKind::Memory => "memory",
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A source or target of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local or mounted file system path.
    Local(PathBuf),
    /// An S3 or S3-compatible bucket, with an optional key prefix.
    S3 { bucket: String, prefix: String },
    /// An Azure Blob container, with an optional name prefix.
    Azure { container: String, prefix: String },
    /// A folder on an SFTP server.
    Sftp {
        user: Option<String>,
        host: String,
        port: u16,
        path: String,
    },
    /// An in-memory store, for tests.
    Memory { prefix: String },
}

/// Whether `name` can be a bucket or container: letters, digits, `.`, `-` and `_` (wider than
/// AWS's and Azure's own rules, which S3-compatible stores and older buckets do not all follow;
/// the store judges the rest).
fn store_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// What credential `uri` holds, if any: a password after an SFTP user, user information in an
/// `s3://` or `az://` URI, a key, signature or token in its query. Said without the secret, so
/// that no message, log or record repeats it (646).
pub fn credential_in(uri: &str) -> Option<&'static str> {
    let (scheme, rest) = uri.split_once("://")?;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if !scheme.eq_ignore_ascii_case("sftp") {
            return Some("user information before the bucket or container");
        }
        if userinfo.contains(':') {
            return Some("a password after the user name");
        }
    }
    let query = rest.split_once('?').map(|(_, q)| q.to_ascii_lowercase())?;
    const KEYS: &[&str] = &[
        "accountkey=",
        "sharedaccesssignature=",
        "sig=",
        "x-amz-signature=",
        "x-amz-credential=",
        "x-amz-security-token=",
        "password=",
        "secret=",
        "token=",
    ];
    KEYS.iter()
        .any(|k| query.split('&').any(|pair| pair.starts_with(k)))
        .then_some("a key, signature or token in the query")
}

/// The endpoints, a page at a time.
impl Location {
    /// Parses what a user typed: a path (`/data`, `./data`, `file:///data`) or a URL.
    pub fn parse(text: &str) -> Result<Self, JobError> {
        if let Some(what) = credential_in(text) {
            // Refused without the text: it holds the secret.
            return Err(JobError::new(
                Code::ENDPOINT_CREDENTIAL_IN_URI,
                &[("what", what)],
            ));
        }
        let bad =
            |reason: &str| JobError::new(Code::ERR_URL_PARSE, &[("url", text), ("reason", reason)]);
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(text)));
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p.trim_end_matches('/')),
            None => (rest, ""),
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                if !authority.is_empty() && authority != "localhost" {
                    return Err(bad("a file:// URL names no host: write file:///path"));
                }
                Ok(Location::Local(PathBuf::from(format!("/{path}"))))
            }
            "s3" => {
                if authority.is_empty() {
                    return Err(bad("the bucket is missing: write s3://bucket/prefix"));
                }
                if !store_name(authority) {
                    return Err(bad(
                        "a bucket name holds only letters, digits, dots, hyphens and underscores",
                    ));
                }
                Ok(Location::S3 {
                    bucket: authority.into(),
                    prefix: path.into(),
                })
            }
            "az" | "azblob" => {
                if authority.is_empty() {
                    return Err(bad("the container is missing: write az://container/prefix"));
                }
                if !store_name(authority) {
                    return Err(bad(
                        "a container name holds only letters, digits, dots, hyphens and \
                         underscores",
                    ));
                }
                Ok(Location::Azure {
                    container: authority.into(),
                    prefix: path.into(),
                })
            }
            "sftp" => {
                let (user, hostport) = match authority.rsplit_once('@') {
                    Some((u, h)) => (Some(u.to_string()), h),
                    None => (None, authority),
                };
                let (host, port) = match hostport.rsplit_once(':') {
                    Some((h, p)) => (
                        h,
                        p.parse::<u16>()
                            .map_err(|_| bad("the port is not a number"))?,
                    ),
                    None => (hostport, 22),
                };
                if host.is_empty() {
                    return Err(bad("the host is missing: write sftp://user@host:port/path"));
                }
                Ok(Location::Sftp {
                    user,
                    host: host.into(),
                    port,
                    path: format!("/{path}"),
                })
            }
            "memory" => Ok(Location::Memory {
                prefix: format!("{authority}/{path}").trim_matches('/').into(),
            }),
            other => Err(bad(&format!(
                "`{other}://` is not a location godwit knows (use a path, s3://, az://, sftp://)"
            ))),
        }
    }

    /// The kind of store.
    pub fn kind(&self) -> StoreKind {
        match self {
            Location::Local(_) => StoreKind::Local,
            Location::S3 { .. } => StoreKind::S3,
            Location::Azure { .. } => StoreKind::AzureBlob,
            Location::Sftp { .. } => StoreKind::Sftp,
            Location::Memory { .. } => StoreKind::Memory,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Location::Azure { container, prefix } => write!(f, "az://{container}/{prefix}"),
            Location::Sftp {
                user,
                host,
                port,
                path,
            } => {
                let user = user.as_deref().map(|u| format!("{u}@")).unwrap_or_default();
                write!(f, "sftp://{user}{host}:{port}{path}")
            }
            Location::Memory { prefix } => write!(f, "memory://{prefix}"),
        }
    }
}

/// `text` percent-encoded for a URL's query: every byte but the unreserved ones
/// (`A-Z a-z 0-9 - _ . ~`) as `%XX`.
pub fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_urls() {
        assert_eq!(
            Location::parse("/data/share").unwrap(),
            Location::Local("/data/share".into())
        );
        assert_eq!(
            Location::parse("file:///data").unwrap(),
            Location::Local("/data".into())
        );
        assert_eq!(
            Location::parse("s3://bucket/a/b/").unwrap(),
            Location::S3 {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            Location::parse("sftp://me@host:2222/srv/x").unwrap(),
            Location::Sftp {
                user: Some("me".into()),
                host: "host".into(),
                port: 2222,
                path: "/srv/x".into()
            }
        );
        assert_eq!(
            Location::parse("az://c").unwrap().kind(),
            StoreKind::AzureBlob
        );
    }

    #[test]
    fn bad_urls_name_the_problem_with_code_610() {
        for bad in [
            "",
            "s3://",
            "ftp://host/x",
            "sftp://host:notaport/x",
            "file://host/x",
            "s3://bad bucket/x",
            "az://my container/x",
        ] {
            let e = Location::parse(bad).unwrap_err();
            assert_eq!(e.code, Code::ERR_URL_PARSE, "{bad}");
            assert!(!e.message.contains('{'), "{}", e.message);
        }
    }

    #[test]
    fn a_credential_in_a_location_is_refused_with_646_and_never_repeated() {
        for (uri, what) in [
            ("sftp://bob:Hunter2secret@host/data", "password"),
            ("s3://KEY:Hunter2secret@bucket/x", "user information"),
            ("az://c/x?sig=Hunter2secret", "query"),
            ("az://c/x?SharedAccessSignature=Hunter2secret&a=1", "query"),
        ] {
            let e = Location::parse(uri).unwrap_err();
            assert_eq!(e.code, Code::ENDPOINT_CREDENTIAL_IN_URI, "{uri}");
            assert!(e.is_usage());
            assert!(e.message.contains(what), "{uri}: {}", e.message);
            assert!(!e.message.contains("Hunter2secret"), "{}", e.message);
        }
        // A user name alone is not a credential.
        assert!(Location::parse("sftp://bob@host:2222/data").is_ok());
        assert!(credential_in("s3://bucket/x?versionId=3").is_none());
    }

    #[test]
    fn query_values_keep_only_unreserved_bytes() {
        assert_eq!(super::query_value("a b/c=d&é~"), "a%20b%2Fc%3Dd%26%C3%A9~");
    }
}

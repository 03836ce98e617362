//! Multipart uploads that a killed run left open at an S3 target. An open upload holds its
//! parts at the store (and is billed) until it is completed or aborted, and a kill -9 gives
//! godwit no chance to abort it. So before a large file's upload starts, its key is written to
//! the run's `uploads-open.txt`; a run that ends by itself removes that file. The next run of
//! the migration finds the files of runs that did not, and aborts the open uploads of those
//! keys (only those: an upload of another tool, or of a run from another state directory, is
//! not godwit's to abort), then reports any other open upload under the target's prefix.
//!
//! OpenDAL has no call for listing or aborting uploads it did not start in the same process,
//! so these two S3 requests (ListMultipartUploads, AbortMultipartUpload) are made here, signed
//! with reqsign, the signer OpenDAL uses.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use reqsign_aws_v4::{Credential, RequestSigner, StaticCredentialProvider};
use reqsign_core::{Context, Signer};

/// The file of a run that lists the keys of the multipart uploads it started.
pub const UPLOADS_FILE: &str = "uploads-open.txt";

/// Where an S3 target is, for the requests OpenDAL does not make.
#[derive(Debug, Clone)]
pub struct S3Target {
    /// `https://host` or `http://127.0.0.1:port`, without a trailing slash.
    pub endpoint: String,
    pub bucket: String,
    /// The target's prefix: empty, or ending with `/`.
    pub prefix: String,
    pub region: String,
    /// Static credentials; without them the uploads are left (and the report says so).
    pub keys: Option<(String, String, Option<String>)>,
}

/// The keys of the multipart uploads a run starts, written before each starts.
#[derive(Debug)]
pub(crate) struct UploadLog {
    file: Mutex<Option<File>>,
    path: PathBuf,
}

impl UploadLog {
    pub(crate) fn new(run_dir: &Path) -> Self {
        UploadLog {
            file: Mutex::new(None),
            path: run_dir.join(UPLOADS_FILE),
        }
    }

    /// Notes that an upload of `key` (relative to the target's prefix) is about to start.
    pub(crate) fn starting(&self, key: &str) {
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if file.is_none() {
            *file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .ok();
        }
        if let Some(f) = file.as_mut() {
            // Written through to the file system before the upload starts: a kill right after
            // still leaves the key for the next run.
            let _ = writeln!(f, "{key}").and_then(|()| f.sync_data());
        }
    }

    /// The run ended by itself: every upload it started was completed or aborted.
    pub(crate) fn finished(&self) {
        *self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let _ = fs::remove_file(&self.path);
    }
}

/// What the check of open uploads found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadCheck {
    /// Open uploads of killed runs of this migration, aborted.
    pub aborted: u64,
    /// Other open uploads under the target's prefix, left alone.
    pub others: u64,
}

/// Aborts the open uploads that killed runs of the migration in `runs_dir` left at `target`
/// (their keys are in those runs' `uploads-open.txt`), and counts any other open upload under
/// the prefix. Nothing is asked of the store when no run was killed during an upload.
pub(crate) async fn clean_up(target: &S3Target, runs_dir: &Path, this_run: &str) -> UploadCheck {
    let mut check = UploadCheck::default();
    let lists: Vec<PathBuf> = fs::read_dir(runs_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|r| r.file_name().to_str() != Some(this_run))
        .map(|r| r.path().join(UPLOADS_FILE))
        .filter(|p| p.exists())
        .collect();
    if lists.is_empty() {
        return check;
    }
    let Some(client) = Client::new(target) else {
        return check;
    };
    let mut all_done = true;
    for list in &lists {
        let Ok(file) = File::open(list) else { continue };
        let mut done = true;
        for key in BufReader::new(file).lines().map_while(Result::ok) {
            let full = format!("{}{key}", target.prefix);
            match client.list(&full).await {
                Ok(open) => {
                    for u in open.into_iter().filter(|u| u.key == full) {
                        if client.abort(&u.key, &u.upload_id).await.is_ok() {
                            check.aborted += 1;
                        } else {
                            done = false;
                        }
                    }
                }
                Err(_) => done = false,
            }
        }
        if done {
            let _ = fs::remove_file(list);
        }
        all_done &= done;
    }
    if all_done && let Ok(open) = client.list(&target.prefix).await {
        check.others = open.len() as u64;
    }
    check
}

/// An open upload, as ListMultipartUploads lists it.
#[derive(Debug, serde::Deserialize)]
struct Upload {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "UploadId")]
    upload_id: String,
}

#[derive(Debug, serde::Deserialize)]
struct Listing {
    #[serde(rename = "Upload", default)]
    uploads: Vec<Upload>,
}

pub struct Client {
    http: reqwest::Client,
    signer: Signer<Credential>,
    base: String,
    bucket: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the signer: it holds the credentials.
        f.debug_struct("Client").field("base", &self.base).finish()
    }
}

impl Client {
    pub(crate) fn new(target: &S3Target) -> Option<Client> {
        let (id, secret, token) = target.keys.clone()?;
        let mut provider = StaticCredentialProvider::new(&id, &secret);
        if let Some(t) = token {
            provider = provider.with_session_token(&t);
        }
        Some(Client {
            http: reqwest::Client::new(),
            signer: Signer::new(
                Context::new(),
                provider,
                RequestSigner::new("s3", &target.region),
            ),
            base: format!("{}/{}", target.endpoint, encode(&target.bucket, false)),
            bucket: target.bucket.clone(),
        })
    }

    /// Replaces the user metadata of the object `key` (its full key in the bucket) with
    /// `metadata`, keeping its bytes and content type: a copy onto itself with the metadata
    /// directive REPLACE (OpenDAL's copy keeps the source's metadata).
    pub(crate) async fn replace_metadata(
        &self,
        key: &str,
        content_type: Option<&str>,
        metadata: &[(String, String)],
    ) -> Result<(), String> {
        let url = format!("{}/{}", self.base, encode(key, false));
        let mut request = http::Request::builder()
            .method(http::Method::PUT)
            .uri(&url)
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .header(
                "x-amz-copy-source",
                format!("/{}/{}", encode(&self.bucket, false), encode(key, false)),
            )
            .header("x-amz-metadata-directive", "REPLACE");
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        for (k, v) in metadata {
            request = request.header(format!("x-amz-meta-{k}"), v);
        }
        let (status, text) = crate::store::send_signed(&self.http, &self.signer, request).await?;
        // A copy can fail after its 200: the body then holds the error.
        if status.is_success() && !text.contains("<Error>") {
            Ok(())
        } else {
            Err(format!("{status}: {text}"))
        }
    }

    /// The open uploads whose keys start with `prefix` (the first thousand: enough to tell).
    async fn list(&self, prefix: &str) -> Result<Vec<Upload>, String> {
        let url = format!("{}?prefix={}&uploads=", self.base, encode(prefix, true));
        let body = self.send(http::Method::GET, &url).await?;
        let listing: Listing = quick_xml::de::from_str(&body).map_err(|e| e.to_string())?;
        Ok(listing.uploads)
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), String> {
        let url = format!(
            "{}/{}?uploadId={}",
            self.base,
            encode(key, false),
            encode(upload_id, true)
        );
        self.send(http::Method::DELETE, &url).await.map(|_| ())
    }

    async fn send(&self, method: http::Method, url: &str) -> Result<String, String> {
        let request = http::Request::builder()
            .method(method)
            .uri(url)
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
        let (status, text) = crate::store::send_signed(&self.http, &self.signer, request).await?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("{status}: {text}"))
        }
    }
}

/// S3's URI encoding: everything but `A-Z a-z 0-9 - . _ ~` (and `/` in a path) as `%XX`.
fn encode(text: &str, slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (b == b'/' && !slash) {
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
    fn keys_are_encoded_as_s3_signs_them() {
        assert_eq!(encode("a b/é~.txt", false), "a%20b/%C3%A9~.txt");
        assert_eq!(encode("a/b", true), "a%2Fb");
    }
}

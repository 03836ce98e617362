//! `godwit doctor`: what a run will need, checked before it starts, each problem with its
//! code. For a location: credentials in the environment, the store reachable and accepting
//! them, the bucket or container there, a probe written, read back and removed (for a place
//! runs write to), and the store's clock against this host's (from the probe's modification
//! time). For the host: free space in the state directory. Nothing is left behind.

use std::path::Path;
use std::time::{Duration, SystemTime};

use godwit_codes::Code;
use serde::Serialize;

use crate::backend::Side;
use crate::error::JobError;
use crate::location::Location;

/// A store clock further off than this makes signed requests fail (S3 refuses requests more
/// than 15 minutes off; Azure about the same): a warning well before that.
pub const CLOCK_SKEW_LIMIT: Duration = Duration::from_secs(5 * 60);

/// The least free space the state directory should have: room for the index and copy logs
/// of a few million files.
pub const STATE_ROOM: u64 = 1 << 30;

/// One check and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked: `credentials`, `reachable`, `write`, `clock`, `state-dir`...
    pub check: &'static str,
    /// What it was checked on: the location or folder, as given.
    pub subject: String,
    pub ok: bool,
    /// The code of the problem; none when it passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
    /// What was found, or what is wrong.
    pub message: String,
}

impl Check {
    pub fn passed(check: &'static str, subject: &str, message: String) -> Check {
        Check {
            check,
            subject: subject.to_string(),
            ok: true,
            code: None,
            name: None,
            message,
        }
    }

    pub fn failed(check: &'static str, subject: &str, e: &JobError) -> Check {
        Check {
            check,
            subject: subject.to_string(),
            ok: false,
            code: Some(e.code.id().to_string()),
            name: Some(e.code.name()),
            message: e.message.clone(),
        }
    }
}

/// Checks `location` as a place runs write to: reached, and a probe written there.
pub fn location(location: &Location) -> Vec<Check> {
    let shown = location.to_string();
    let mut out = Vec::new();
    if let Some(missing) = missing_credentials(location) {
        out.push(Check::failed("credentials", &shown, &missing));
        return out;
    }
    let side = match Side::open(location, "target") {
        Ok(s) => s,
        Err(e) => {
            out.push(Check::failed("reachable", &shown, &e));
            return out;
        }
    };
    match &side {
        Side::Local(root) => local(root, &shown, &mut out),
        Side::Remote(remote) => {
            let rt = match crate::store::runtime("doctor") {
                Ok(rt) => rt,
                Err(e) => {
                    out.push(Check::failed("reachable", &shown, &e));
                    return out;
                }
            };
            match crate::store::reachable(remote, &rt, true) {
                Ok(()) => out.push(Check::passed(
                    "reachable",
                    &shown,
                    "reached, credentials accepted, the bucket or container is there".into(),
                )),
                Err(e) => {
                    out.push(Check::failed("reachable", &shown, &e));
                    return out;
                }
            }
            remote_probe(remote, &rt, &shown, &mut out);
        }
    }
    out
}

/// Credentials a store of this kind needs and the environment does not hold (S3 and Azure;
/// an SFTP server takes the ssh agent or key files, found when it is reached).
fn missing_credentials(location: &Location) -> Option<JobError> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    let (present, wanted) = match location {
        Location::S3 { .. } => (
            (set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY"))
                || set("AWS_PROFILE")
                || set("AWS_WEB_IDENTITY_TOKEN_FILE")
                || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or a web identity)",
        ),
        Location::Azure { .. } => (
            set("AZURE_STORAGE_CONNECTION_STRING")
                || (set("AZURE_STORAGE_ACCOUNT")
                    && (set("AZURE_STORAGE_KEY") || set("AZURE_STORAGE_SAS_TOKEN"))),
            "AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY",
        ),
        _ => (true, ""),
    };
    (!present).then(|| {
        detailed(
            JobError::new(Code::AZSM1025, &[("path", &location.to_string())]),
            &format!("no credentials in the environment: set {wanted}"),
        )
    })
}

fn local(root: &Path, shown: &str, out: &mut Vec<Check>) {
    match std::fs::read_dir(root) {
        Ok(_) => out.push(Check::passed(
            "reachable",
            shown,
            "the folder can be listed".into(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => out.push(Check::passed(
            "reachable",
            shown,
            "not there yet; a copy makes it".into(),
        )),
        Err(e) => {
            let err = JobError::new(
                Code::AZSM1022,
                &[("path", shown), ("reason", &crate::error::reason(&e))],
            );
            out.push(Check::failed("reachable", shown, &err));
            return;
        }
    }
    match crate::validate::probe(&Side::Local(root.to_path_buf()), "doctor") {
        Ok(()) => out.push(Check::passed(
            "write",
            shown,
            "a probe file was written and removed".into(),
        )),
        Err(reason) => out.push(Check::failed("write", shown, &not_writable(shown, &reason))),
    }
}

fn not_writable(shown: &str, reason: &str) -> JobError {
    detailed(
        JobError::new(
            Code::PROJECT_FORBIDDEN_DEST_SHARED_PATH_ERROR,
            &[("target", shown)],
        ),
        reason,
    )
}

/// `e` with `more` said after its message.
fn detailed(e: JobError, more: &str) -> JobError {
    JobError {
        message: format!("{}: {more}.", e.message.trim_end_matches('.')),
        code: e.code,
    }
}

/// Writes a probe, reads its modification time (the store's clock), removes it.
fn remote_probe(
    remote: &crate::store::Remote,
    rt: &tokio::runtime::Runtime,
    shown: &str,
    out: &mut Vec<Check>,
) {
    let name = format!(".godwit-doctor-{:08x}", std::process::id());
    let before = SystemTime::now();
    let written = rt.block_on(async {
        remote.op.write(&name, b"godwit".to_vec()).await?;
        let meta = remote.op.stat(&name).await;
        let removed = remote.op.delete(&name).await;
        let meta = meta?;
        removed.map(|()| meta)
    });
    let after = SystemTime::now();
    let meta = match written {
        Ok(meta) => {
            out.push(Check::passed(
                "write",
                shown,
                "a probe was written, read back and removed".into(),
            ));
            meta
        }
        Err(e) => {
            let err = not_writable(shown, &crate::store::short_reason(&e));
            out.push(Check::failed("write", shown, &err));
            return;
        }
    };
    let Some(stamp) = meta.last_modified() else {
        out.push(Check::passed(
            "clock",
            shown,
            "the store gives no modification time to compare clocks with".into(),
        ));
        return;
    };
    let theirs = SystemTime::from(stamp);
    out.push(clock(shown, theirs, before, after));
}

/// The store's time `theirs` against this host's window `[before, after]` around the write
/// (the store's times are to the second: a second of slack each way).
pub fn clock(shown: &str, theirs: SystemTime, before: SystemTime, after: SystemTime) -> Check {
    let slack = Duration::from_secs(1);
    let skew = if theirs + slack < before {
        before.duration_since(theirs).unwrap_or_default()
    } else if theirs > after + slack {
        theirs.duration_since(after).unwrap_or_default()
    } else {
        Duration::ZERO
    };
    let secs = skew.as_secs();
    let direction = if theirs < before {
        "behind"
    } else {
        "ahead of"
    };
    if skew > CLOCK_SKEW_LIMIT {
        let err = JobError::new(
            Code::AZSM1053,
            &[("path", shown), ("skew", &format!("{secs} s {direction}"))],
        );
        Check::failed("clock", shown, &err)
    } else if secs > 1 {
        Check::passed(
            "clock",
            shown,
            format!("the store's clock is {secs} s {direction} this host's (within the limit)"),
        )
    } else {
        Check::passed(
            "clock",
            shown,
            "the store's clock agrees with this host's".into(),
        )
    }
}

/// Free space in the state directory (made if missing, as a run would).
pub fn state_dir(dir: &Path) -> Check {
    let shown = dir.display().to_string();
    if let Err(e) = std::fs::create_dir_all(dir) {
        let err = JobError::new(
            Code::CREATE_MIGRATION_REPORT_ERROR,
            &[
                ("job_id", "doctor"),
                ("path", &shown),
                ("reason", &crate::error::reason(&e)),
            ],
        );
        return Check::failed("state-dir", &shown, &err);
    }
    match crate::precheck::room(dir, STATE_ROOM) {
        Ok(()) => Check::passed(
            "state-dir",
            &shown,
            format!(
                "{} free",
                crate::record::human_bytes(crate::precheck::free_at(dir).unwrap_or(0))
            ),
        ),
        Err(e) => Check::failed("state-dir", &shown, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_far_off_is_refused_with_1053_and_a_near_one_passes() {
        let now = SystemTime::now();
        let later = now + Duration::from_millis(300);
        let far = clock("s3://b", now - Duration::from_secs(900), now, later);
        assert!(!far.ok);
        assert_eq!(far.code.as_deref(), Some("AZSM1053"));
        assert!(far.message.contains("900 s behind"), "{}", far.message);
        let ahead = clock("s3://b", later + Duration::from_secs(400), now, later);
        assert!(ahead.message.contains("ahead of"), "{}", ahead.message);
        let near = clock("s3://b", now + Duration::from_secs(30), now, later);
        assert!(near.ok, "{}", near.message);
        let same = clock("s3://b", now, now, later);
        assert!(
            same.ok && same.message.contains("agrees"),
            "{}",
            same.message
        );
    }
}

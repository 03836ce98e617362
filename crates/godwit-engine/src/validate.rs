//! `validate`: before a migration runs, everything that would stop it, each with its code: the
//! source cannot be read, the target cannot be written (a probe written and removed), names
//! and sizes the target profile refuses, folders over the entry limit, and the job limits.
//! Nothing is written to the source, and nothing is left at the target.

use std::sync::atomic::AtomicBool;

use godwit_codes::Code;
use godwit_spec::split::Limits;
use serde::Serialize;

use crate::backend::Side;
use crate::scan::{ScanOptions, ScanReport};

/// One thing that would stop or spoil the migration.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub code: String,
    pub name: &'static str,
    pub message: String,
    /// Example paths, for findings about files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

impl Finding {
    fn new(code: Code, params: &[(&str, &str)], more: Option<&str>) -> Finding {
        let mut message = code.render(params);
        if let Some(more) = more {
            message = format!("{}: {more}.", message.trim_end_matches('.'));
        }
        Finding {
            code: code.id().to_string(),
            name: code.name(),
            message,
            examples: Vec::new(),
        }
    }
}

/// What a validation found.
#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    /// Files and bytes a copy would move.
    pub files: u64,
    pub bytes: u64,
    pub limits: Limits,
    /// Whether a probe was written to the target and removed.
    pub target_writable: bool,
    pub findings: Vec<Finding>,
}

/// Checks the migration of `source` to `target`: a scan of the source under `scan`'s profile
/// and filters, a probe at the target, and the job limits.
pub fn validate(
    source: &Side,
    target: &Side,
    scan: &ScanOptions,
    limits: Limits,
    run_id: &str,
    stop: &AtomicBool,
    progress: &std::sync::atomic::AtomicU64,
) -> Validation {
    let mut findings = Vec::new();
    let report = crate::scan::scan(source, scan, None, stop, progress);
    let (files, bytes) = match &report {
        Ok(r) => (r.files_to_migrate, r.bytes_to_migrate),
        Err(_) => (0, 0),
    };
    match report {
        Ok(r) => findings.extend(scan_findings(&r, scan.max_folder_entries)),
        Err(e) => findings.push(Finding {
            code: e.code.id().to_string(),
            name: e.code.name(),
            message: e.message,
            examples: Vec::new(),
        }),
    }
    let target_writable = match probe(target, run_id) {
        Ok(()) => true,
        Err(why) => {
            findings.push(Finding::new(
                Code::PROJECT_FORBIDDEN_DEST_SHARED_PATH_ERROR,
                &[("target", &target.shown())],
                Some(&why),
            ));
            false
        }
    };
    if files > limits.files {
        findings.push(Finding::new(
            Code::JOB_LIMIT_FILE_COUNT_EXCEEDED_SCANNED,
            &[
                ("count", &files.to_string()),
                ("limit", &limits.files.to_string()),
            ],
            Some("cut it into jobs with `godwit plan`"),
        ));
    }
    if bytes > limits.bytes {
        findings.push(Finding::new(
            Code::JOB_LIMIT_SIZE_EXCEEDED_SCANNED,
            &[
                ("bytes", &bytes.to_string()),
                ("limit", &limits.bytes.to_string()),
            ],
            Some("cut it into jobs with `godwit plan`"),
        ));
    }
    Validation {
        files,
        bytes,
        limits,
        target_writable,
        findings,
    }
}

/// The scan's problems as findings: names, lengths, depths, sizes and types the target cannot
/// hold, folders over the entry limit, paths that could not be read.
fn scan_findings(r: &ScanReport, entry_limit: usize) -> Vec<Finding> {
    let mut out = Vec::new();
    for (code, p) in &r.problems {
        if p.count == 0 {
            continue;
        }
        out.push(Finding {
            code: code.id().to_string(),
            name: code.name(),
            message: format!(
                "{} files or folders: {}",
                p.count,
                code.info().description.trim_end_matches('.')
            ),
            examples: p.examples.clone(),
        });
    }
    for f in &r.oversized_folders {
        out.push(Finding::new(
            Code::SCAN_FAILURE_50K_LIMIT_ERROR,
            &[
                ("path", &f.path),
                ("count", &f.value.to_string()),
                ("limit", &entry_limit.to_string()),
            ],
            None,
        ));
    }
    out
}

/// Writes a small file at the target's root and removes it (a local root that does not exist
/// yet is made, and removed again if it is left empty; on SFTP the probe goes in a folder of its
/// own, made with the target's folder when that does not exist yet, as a copy would).
pub(crate) fn probe(target: &Side, run_id: &str) -> Result<(), String> {
    let name = format!(".godwit-probe-{run_id}");
    match target {
        Side::Local(root) => {
            let made = !root.exists();
            let path = root.join(&name);
            // Another validation of the same missing target (a plan's jobs share it) may remove
            // the folder it made between our making it and our write: make it again and retry.
            let mut written = Ok(());
            for _ in 0..5 {
                std::fs::create_dir_all(root).map_err(|e| crate::error::reason(&e))?;
                written = std::fs::write(&path, b"godwit");
                if !matches!(&written, Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
                    break;
                }
            }
            let written = written.map_err(|e| crate::error::reason(&e));
            let removed = std::fs::remove_file(&path);
            if made {
                let _ = std::fs::remove_dir(root);
            }
            written?;
            removed.map_err(|e| crate::error::reason(&e))
        }
        Side::Remote(r) => {
            let rt = crate::store::runtime("validate").map_err(|e| e.message)?;
            rt.block_on(async {
                match &r.sftp {
                    Some(sftp) => {
                        // In a folder of its own, made with the target's folder when that does
                        // not exist yet (as a copy makes it), and removed whole.
                        let dir = format!("{name}/");
                        r.op.create_dir(&dir)
                            .await
                            .map_err(|e| crate::store::short_reason(&e))?;
                        let written = async {
                            let mut file = sftp.create(&format!("{dir}probe")).await?;
                            file.write(b"godwit").await?;
                            file.finish(0, 6, false).await.map(|_| ())
                        }
                        .await;
                        let removed = r.op.delete_with(&dir).recursive(true).await;
                        written.map_err(|e| crate::store::short_reason(&e))?;
                        return removed.map_err(|e| crate::store::short_reason(&e));
                    }
                    None => {
                        r.op.write(&name, b"godwit".to_vec())
                            .await
                            .map_err(|e| crate::store::short_reason(&e))?;
                    }
                }
                r.op.delete(&name)
                    .await
                    .map_err(|e| crate::store::short_reason(&e))
            })
        }
    }
}

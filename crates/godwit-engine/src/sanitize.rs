//! `godwit sanitize SRC --target-profile P [--apply]`: rename, on the source itself, the names a
//! target cannot hold. A dry run unless `apply`. Every rename (done or planned) is a line of
//! the run's `sanitize.csv`, and the mapping is kept in the migration's index so that a later
//! run resolves the same collisions the same way.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use crossbeam_channel::bounded;
use godwit_codes::Code;

use crate::error::{JobError, reason};
use crate::filter::Filter;
use crate::index::Index;
use crate::profile::TargetProfile;
use crate::record::display_path;
use crate::state::{Migration, Run};
use crate::walk::{Event, WalkOptions, walk};

/// The report's file name in the run folder.
pub const REPORT_FILE: &str = "sanitize.csv";

/// How a sanitize run went.
#[derive(Debug, Default, Clone)]
pub struct SanitizeOutcome {
    /// Names renamed (or, in a dry run, to be renamed).
    pub renamed: u64,
    /// Names that could not be renamed (4010).
    pub failed: u64,
    /// Folders that could not be read (4030): names below them were not checked.
    pub unreadable: u64,
    pub report: String,
}

struct Rename {
    /// Where the entry is now, relative to the root, with its parent's original name.
    rel: Vec<u8>,
    new_name: Vec<u8>,
    depth: usize,
}

/// `sanitize.csv`, written as the run goes.
struct Report {
    out: BufWriter<File>,
    path: std::path::PathBuf,
}

impl Report {
    fn create(run: &Run) -> Result<Self, JobError> {
        let path = run.dir.join(REPORT_FILE);
        let mut r = Report {
            out: BufWriter::new(File::create(&path).map_err(|e| report_error(&path, &e))?),
            path,
        };
        r.line_raw("original,new,status,code,reason")?;
        Ok(r)
    }

    fn line_raw(&mut self, text: &str) -> Result<(), JobError> {
        writeln!(self.out, "{text}").map_err(|e| report_error(&self.path, &e))
    }

    fn line(
        &mut self,
        original: &[u8],
        new: &[u8],
        status: &str,
        code: Code,
        why: &str,
    ) -> Result<(), JobError> {
        write_line(&mut self.out, original, new, status, code, why)
            .map_err(|e| report_error(&self.path, &e))
    }

    fn finish(mut self) -> Result<(), JobError> {
        self.out.flush().map_err(|e| report_error(&self.path, &e))
    }
}

fn report_error(path: &Path, e: &std::io::Error) -> JobError {
    let path = path.display().to_string();
    JobError::new(
        Code::SANITIZE_REPORT_FOLDER_ERROR,
        &[("path", &path), ("reason", &reason(e))],
    )
}

/// Checks every name under `root` against `profile` and renames (with `apply`) those it
/// refuses. Deepest names first, so that a folder is renamed after what it holds.
pub fn sanitize_in_place(
    root: &Path,
    profile: &TargetProfile,
    migration: &Migration,
    run: &Run,
    apply: bool,
    stop: &AtomicBool,
) -> Result<SanitizeOutcome, JobError> {
    let not_a_folder = |reason: &str| {
        let path = root.display().to_string();
        JobError::new(
            Code::SANITIZE_INVALID_SCAN_RESULT_ERROR,
            &[("path", &path), ("reason", reason)],
        )
    };
    let meta = fs::metadata(root).map_err(|e| not_a_folder(&reason(&e)))?;
    if !meta.is_dir() {
        return Err(not_a_folder("it is not a folder"));
    }
    let index = Index::open(&migration.dir.join("index.redb"))?;
    let mut report = Report::create(run)?;
    let mut outcome = SanitizeOutcome {
        report: report.path.display().to_string(),
        ..SanitizeOutcome::default()
    };
    let mut plan = plan(root, profile, stop, &mut report, &mut outcome)?;
    // Deepest first, and in a stable order, so the same tree gets the same names.
    plan.sort_by(|a, b| b.depth.cmp(&a.depth).then_with(|| a.rel.cmp(&b.rel)));
    for item in plan {
        rename(
            root,
            profile,
            &index,
            apply,
            &item,
            &mut report,
            &mut outcome,
        )?;
    }
    report.finish()?;
    Ok(outcome)
}

/// The names the profile refuses, from one walk; an unreadable folder is reported (4030).
/// Only the names to change are kept: memory grows with them, not with the tree.
fn plan(
    root: &Path,
    profile: &TargetProfile,
    stop: &AtomicBool,
    report: &mut Report,
    outcome: &mut SanitizeOutcome,
) -> Result<Vec<Rename>, JobError> {
    let mut plan: Vec<Rename> = Vec::new();
    let (tx, rx) = bounded::<Event>(4096 / crate::walk::BATCH_EVENTS);
    let options = WalkOptions {
        follow_links: false,
        threads: 2,
        list_names: false,
        batch: true,
    };
    std::thread::scope(|s| -> Result<(), JobError> {
        s.spawn(|| {
            walk(root, options, &Filter::default(), &|_| {}, &tx, stop);
            drop(tx);
        });
        for event in crate::walk::events(&rx) {
            match event {
                Event::Entry(e) => {
                    let name = e.rel.rsplit(|b| *b == b'/').next().unwrap_or(&e.rel);
                    let clean = profile.sanitize_name(name);
                    if clean != name {
                        plan.push(Rename {
                            depth: e.depth,
                            new_name: clean,
                            rel: e.rel,
                        });
                    }
                }
                Event::Error { rel, error } => {
                    outcome.unreadable += 1;
                    let code = Code::SANITIZE_INVALID_SCAN_RESULT_ERROR;
                    report.line(&rel, b"", "unreadable", code, &reason(&error))?;
                }
                // `walk::events` has taken batches apart already; a walk sends no Missing.
                Event::Listed { .. }
                | Event::ExcludedDir { .. }
                | Event::Batch(_)
                | Event::Missing { .. } => {}
            }
        }
        Ok(())
    })?;
    Ok(plan)
}

/// Chooses the new name of one entry (the clean name, else tagged with a hash of the original
/// name, else of the whole path), claims it in the index, and renames (with `apply`).
fn rename(
    root: &Path,
    profile: &TargetProfile,
    index: &Index,
    apply: bool,
    item: &Rename,
    report: &mut Report,
    outcome: &mut SanitizeOutcome,
) -> Result<(), JobError> {
    let parent_len = item
        .rel
        .iter()
        .rposition(|b| *b == b'/')
        .map_or(0, |i| i + 1);
    let parent = &item.rel[..parent_len];
    let original = &item.rel[parent_len..];
    let tag6 = profile.with_tag(&item.new_name, &hex(original, 6));
    let tag12 = profile.with_tag(&item.new_name, &hex(&item.rel, 12));
    let choices: Vec<Vec<u8>> = [item.new_name.clone(), tag6, tag12]
        .into_iter()
        .map(|n| [parent, n.as_slice()].concat())
        .filter(|full| {
            // Taken on disk by another entry (in a dry run, the plan's own choices are not on
            // disk; the index's claims stand in for them).
            root.join(std::ffi::OsStr::from_bytes(full))
                .symlink_metadata()
                .is_err()
        })
        .collect();
    let Some(new_rel) = index.claim_target_name(&item.rel, &choices)? else {
        outcome.failed += 1;
        let why = "every candidate name is taken";
        return report.line(&item.rel, b"", "failed", Code::SANITIZE_RENAME_ERROR, why);
    };
    if !apply {
        outcome.renamed += 1;
        return report.line(&item.rel, &new_rel, "would rename", Code::AZSM0000, "");
    }
    let from = root.join(std::ffi::OsStr::from_bytes(&item.rel));
    let to = root.join(std::ffi::OsStr::from_bytes(&new_rel));
    // A name that appeared since the check is never overwritten.
    let result = if to.symlink_metadata().is_ok() {
        Err("the new name exists already".to_string())
    } else {
        fs::rename(&from, &to).map_err(|e| reason(&e))
    };
    match result {
        Ok(()) => {
            outcome.renamed += 1;
            report.line(&item.rel, &new_rel, "renamed", Code::AZSM0000, "")
        }
        Err(why) => {
            outcome.failed += 1;
            index.forget_target_name(&item.rel)?;
            let code = Code::SANITIZE_RENAME_ERROR;
            report.line(&item.rel, &new_rel, "failed", code, &why)
        }
    }
}

fn hex(seed: &[u8], digits: usize) -> String {
    let h = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(seed));
    h[..digits].to_string()
}

/// One CSV line (RFC 4180 quoting).
fn write_line(
    out: &mut impl Write,
    original: &[u8],
    new: &[u8],
    status: &str,
    code: Code,
    why: &str,
) -> std::io::Result<()> {
    let field = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    writeln!(
        out,
        "{},{},{},{},{}",
        field(&display_path(original)),
        field(&display_path(new)),
        status,
        code.id(),
        field(why)
    )
}

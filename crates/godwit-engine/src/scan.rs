//! `scan`: one walk of the source, an inventory on disk, and a report of what the target will
//! make of it.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_channel::bounded;
use godwit_codes::Code;
use serde::Serialize;

use godwit_spec::Links;

use crate::backend::Side;
use crate::error::{JobError, reason};
use crate::filter::Filter;
use crate::profile::TargetProfile;
use crate::record::{CodeRef, display_path};
use crate::store::walk_remote;
use crate::walk::{EntryKind, Event, WalkOptions, walk};

/// How many example paths a report keeps per problem code.
pub const EXAMPLES: usize = 20;

/// The options of a scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub profile: TargetProfile,
    pub filter: Filter,
    pub links: Links,
    /// A folder with more entries than this is a 3050 finding.
    pub max_folder_entries: usize,
    pub threads: usize,
}

/// One size class of the histogram.
#[derive(Debug, Clone, Serialize)]
pub struct SizeClass {
    pub up_to: &'static str,
    pub files: u64,
    pub bytes: u64,
}

/// Files with one problem code, and some of their paths.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Problems {
    pub name: &'static str,
    pub count: u64,
    pub examples: Vec<String>,
}

/// A path and the number that makes it notable.
#[derive(Debug, Clone, Serialize)]
pub struct Notable {
    pub path: String,
    pub value: u64,
}

/// What a scan found.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    pub source: String,
    pub target_profile: &'static str,
    pub status: CodeRef,
    pub job_error: Option<CodeRef>,
    pub files: u64,
    pub folders: u64,
    pub bytes: u64,
    /// Files that would be copied: not excluded, not unsupported.
    pub files_to_migrate: u64,
    pub bytes_to_migrate: u64,
    pub excluded: u64,
    pub size_histogram: Vec<SizeClass>,
    pub deepest: Option<Notable>,
    pub longest_path: Option<Notable>,
    pub largest_folder: Option<Notable>,
    /// Folders with more entries than the limit (code 3050).
    pub oversized_folders: Vec<Notable>,
    /// Per-file problems by code (AZSM2021-2026 unsupported, AZSM2061 unreadable folders).
    pub problems: BTreeMap<Code, Problems>,
}

const CLASSES: &[(u64, &str)] = &[
    (0, "0 B"),
    (4 << 10, "4 KiB"),
    (64 << 10, "64 KiB"),
    (1 << 20, "1 MiB"),
    (16 << 20, "16 MiB"),
    (256 << 20, "256 MiB"),
    (4 << 30, "4 GiB"),
    (u64::MAX, "larger"),
];

/// Scans `source`; each entry is also written as a JSON line to `inventory` when given.
/// `progress` counts files as they are found.
pub fn scan(
    source: &Side,
    options: &ScanOptions,
    mut inventory: Option<&mut dyn Write>,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Result<ScanReport, JobError> {
    let shown = match source {
        Side::Local(p) => p.display().to_string(),
        Side::Remote(r) => r.shown.clone(),
    };
    let rt = match source {
        Side::Local(p) => {
            match std::fs::metadata(p) {
                Ok(m) if m.is_dir() => {}
                _ => {
                    return Err(JobError::new(
                        Code::INVALID_SOURCE_PATH_ERROR,
                        &[("path", &shown)],
                    ));
                }
            }
            None
        }
        Side::Remote(_) => Some(crate::store::runtime(&shown)?),
    };
    let mut r = ScanReport {
        source: shown.clone(),
        target_profile: options.profile.name,
        status: CodeRef::new(Code::SCAN_SUCCEEDED, None),
        job_error: None,
        files: 0,
        folders: 0,
        bytes: 0,
        files_to_migrate: 0,
        bytes_to_migrate: 0,
        excluded: 0,
        size_histogram: CLASSES
            .iter()
            .map(|(_, l)| SizeClass {
                up_to: l,
                files: 0,
                bytes: 0,
            })
            .collect(),
        deepest: None,
        longest_path: None,
        largest_folder: None,
        oversized_folders: Vec::new(),
        problems: BTreeMap::new(),
    };
    let problem = |r: &mut ScanReport, code: Code, path: &[u8]| {
        let p = r.problems.entry(code).or_insert_with(|| Problems {
            name: code.name(),
            ..Default::default()
        });
        p.count += 1;
        if p.examples.len() < EXAMPLES {
            p.examples.push(display_path(path));
        }
    };
    let (tx, rx) = bounded::<Event>(4096);
    let walk_options = WalkOptions {
        follow_links: options.links == Links::Follow,
        threads: options.threads,
        list_names: false,
    };
    let mut inventory_error = None;
    let mut walk_error = None;
    std::thread::scope(|s| {
        let walker = s.spawn(|| {
            let result = match (source, &rt) {
                (Side::Local(root), _) => {
                    walk(root, walk_options, &options.filter, &|_| {}, &tx, stop);
                    Ok(())
                }
                (Side::Remote(remote), Some(rt)) => {
                    rt.block_on(walk_remote(remote, &options.filter, false, &tx, stop))
                }
                (Side::Remote(_), None) => Ok(()),
            };
            drop(tx);
            result
        });
        for event in rx.iter() {
            match event {
                Event::Entry(e) => {
                    if let Some(out) = inventory.as_mut()
                        && inventory_error.is_none()
                    {
                        let line = InventoryLine {
                            path: &display_path(&e.rel),
                            kind: kind_word(e.kind),
                            size: e.size,
                            mtime_ns: e.mtime_ns,
                            mode: e.mode,
                        };
                        let written = serde_json::to_writer(&mut *out, &line)
                            .map_err(std::io::Error::from)
                            .and_then(|()| out.write_all(b"\n"));
                        if let Err(err) = written {
                            inventory_error = Some(err);
                        }
                    }
                    let depth = e.depth as u64;
                    if r.deepest.as_ref().is_none_or(|d| depth > d.value) {
                        r.deepest = Some(Notable {
                            path: display_path(&e.rel),
                            value: depth,
                        });
                    }
                    let len = e.rel.len() as u64;
                    if r.longest_path.as_ref().is_none_or(|d| len > d.value) {
                        r.longest_path = Some(Notable {
                            path: display_path(&e.rel),
                            value: len,
                        });
                    }
                    match e.kind {
                        EntryKind::Dir => {
                            r.folders += 1;
                            if let Some((code, _)) = options.profile.check_path(&e.rel) {
                                problem(&mut r, code, &e.rel);
                            }
                        }
                        // Kept as links only with --links copy to a file system.
                        EntryKind::Symlink
                            if options.links == Links::Copy && options.profile.name == "posix" => {}
                        EntryKind::Symlink => problem(&mut r, Code::AZSM2021, &e.rel),
                        EntryKind::Special(_) => problem(&mut r, Code::AZSM2021, &e.rel),
                        EntryKind::File => {
                            r.files += 1;
                            r.bytes += e.size;
                            progress.fetch_add(1, Ordering::Relaxed);
                            let class = CLASSES
                                .iter()
                                .position(|(max, _)| e.size <= *max)
                                .unwrap_or(CLASSES.len() - 1);
                            r.size_histogram[class].files += 1;
                            r.size_histogram[class].bytes += e.size;
                            if options.filter.excludes_file(&e.rel, e.size, e.mtime_ns) {
                                r.excluded += 1;
                            } else if let Some((code, _)) = options
                                .profile
                                .check_path(&e.rel)
                                .or_else(|| options.profile.check_size(e.size))
                            {
                                problem(&mut r, code, &e.rel);
                            } else {
                                r.files_to_migrate += 1;
                                r.bytes_to_migrate += e.size;
                            }
                        }
                    }
                }
                Event::Listed { rel, entries, .. } => {
                    let n = entries as u64;
                    if r.largest_folder.as_ref().is_none_or(|d| n > d.value) {
                        r.largest_folder = Some(Notable {
                            path: display_path(&rel),
                            value: n,
                        });
                    }
                    if entries > options.max_folder_entries && r.oversized_folders.len() < EXAMPLES
                    {
                        r.oversized_folders.push(Notable {
                            path: display_path(&rel),
                            value: n,
                        });
                    }
                }
                Event::ExcludedDir { .. } => r.excluded += 1,
                Event::Error { rel, error: _ } => problem(&mut r, Code::AZSM2061, &rel),
            }
        }
        walk_error = walker.join().ok().and_then(Result::err);
    });
    if let Some(e) = walk_error {
        return Err(e);
    }
    if let Some(e) = inventory_error {
        return Err(JobError::new(
            Code::SCAN_REPORT_FOLDER_ERROR,
            &[("path", "inventory.jsonl"), ("reason", &reason(&e))],
        ));
    }
    let job_error = if stop.load(Ordering::Relaxed) {
        r.status = CodeRef::new(Code::SCAN_STOPPED, None);
        None
    } else if let Some(big) = r.oversized_folders.first() {
        let (count, limit) = (
            big.value.to_string(),
            options.max_folder_entries.to_string(),
        );
        Some(JobError::new(
            Code::SCAN_FAILURE_50K_LIMIT_ERROR,
            &[("path", &big.path), ("count", &count), ("limit", &limit)],
        ))
    } else if r.files_to_migrate == 0 {
        Some(JobError::new(
            Code::SCAN_FAILURE_NOTHING_TO_MIGRATE,
            &[("path", &shown)],
        ))
    } else {
        None
    };
    if let Some(e) = job_error {
        r.status = CodeRef::new(Code::SCAN_FAILED, None);
        r.job_error = Some(CodeRef::new(e.code, Some(e.message)));
    }
    Ok(r)
}

/// One line of `inventory.jsonl`.
#[derive(Serialize)]
struct InventoryLine<'a> {
    path: &'a str,
    kind: &'static str,
    size: u64,
    mtime_ns: i64,
    mode: u32,
}

fn kind_word(k: EntryKind) -> &'static str {
    match k {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink => "symlink",
        EntryKind::Special(s) => s,
    }
}

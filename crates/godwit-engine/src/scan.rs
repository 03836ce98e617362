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
use crate::march::{March, march};
use crate::profile::TargetProfile;
use crate::record::{CodeRef, display_path};
use crate::walk::{EntryKind, Event};

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
    let shown = source.shown();
    let rt = match source {
        Side::Local(p) => {
            if !std::fs::metadata(p).is_ok_and(|m| m.is_dir()) {
                return Err(JobError::new(
                    Code::INVALID_SOURCE_PATH_ERROR,
                    &[("path", &shown)],
                ));
            }
            None
        }
        Side::Remote(_) => Some(crate::store::runtime(&shown)?),
    };
    let mut r = ScanReport::new(shown, options.profile.name);
    let (tx, rx) = bounded::<Event>(4096 / crate::walk::BATCH_EVENTS);
    let how = March {
        filter: &options.filter,
        list_names: false,
        follow_links: options.links == Links::Follow,
        threads: options.threads,
        batch: true,
    };
    let mut inventory_error = None;
    let mut walk_error = None;
    std::thread::scope(|s| {
        let walker = s.spawn(|| {
            let result = march(source, rt.as_ref(), how, &|_| {}, &tx, stop);
            drop(tx);
            result
        });
        for event in crate::walk::events(&rx) {
            if let (Event::Entry(e), Some(out)) = (&event, inventory.as_mut())
                && inventory_error.is_none()
            {
                inventory_error = write_inventory(out, e).err();
            }
            r.add(event, options, progress);
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
    r.conclude(options, stop.load(Ordering::Relaxed));
    Ok(r)
}

/// One line of the inventory for `e`.
fn write_inventory(out: &mut &mut dyn Write, e: &crate::walk::Entry) -> std::io::Result<()> {
    let line = InventoryLine {
        path: &display_path(&e.rel),
        kind: kind_word(e.kind),
        size: e.size,
        mtime_ns: e.mtime_ns,
        mode: e.mode,
    };
    serde_json::to_writer(&mut **out, &line)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
}

impl ScanReport {
    fn new(source: String, target_profile: &'static str) -> Self {
        ScanReport {
            source,
            target_profile,
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
        }
    }

    /// One more file with problem `code`; the first few are kept as examples.
    fn problem(&mut self, code: Code, path: &[u8]) {
        let p = self.problems.entry(code).or_insert_with(|| Problems {
            name: code.name(),
            ..Default::default()
        });
        p.count += 1;
        if p.examples.len() < EXAMPLES {
            p.examples.push(display_path(path));
        }
    }

    /// What one event of the walk adds to the report.
    fn add(&mut self, event: Event, options: &ScanOptions, progress: &AtomicU64) {
        match event {
            Event::Entry(e) => self.entry(&e, options, progress),
            Event::Listed { rel, entries, .. } => {
                let n = entries as u64;
                if self.largest_folder.as_ref().is_none_or(|d| n > d.value) {
                    self.largest_folder = Some(Notable {
                        path: display_path(&rel),
                        value: n,
                    });
                }
                if entries > options.max_folder_entries && self.oversized_folders.len() < EXAMPLES {
                    self.oversized_folders.push(Notable {
                        path: display_path(&rel),
                        value: n,
                    });
                }
            }
            Event::ExcludedDir { .. } => self.excluded += 1,
            // Only a `--files-from` list sends it, and a scan walks.
            Event::Missing { .. } => {}
            Event::Error { rel, error: _ } => self.problem(Code::AZSM2061, &rel),
            Event::Batch(events) => {
                for e in events {
                    self.add(e, options, progress);
                }
            }
        }
    }

    fn entry(&mut self, e: &crate::walk::Entry, options: &ScanOptions, progress: &AtomicU64) {
        let depth = e.depth as u64;
        if self.deepest.as_ref().is_none_or(|d| depth > d.value) {
            self.deepest = Some(Notable {
                path: display_path(&e.rel),
                value: depth,
            });
        }
        let len = e.rel.len() as u64;
        if self.longest_path.as_ref().is_none_or(|d| len > d.value) {
            self.longest_path = Some(Notable {
                path: display_path(&e.rel),
                value: len,
            });
        }
        let profile = &options.profile;
        match e.kind {
            EntryKind::Dir => {
                self.folders += 1;
                if let Some((code, _)) = profile.check_path(&e.rel) {
                    self.problem(code, &e.rel);
                }
            }
            // Kept as links only with --links copy to a file system.
            EntryKind::Symlink if options.links == Links::Copy && profile.name == "posix" => {}
            EntryKind::Symlink | EntryKind::Special(_) => self.problem(Code::AZSM2021, &e.rel),
            EntryKind::File => self.file(e, options, progress),
        }
    }

    fn file(&mut self, e: &crate::walk::Entry, options: &ScanOptions, progress: &AtomicU64) {
        self.files += 1;
        self.bytes += e.size;
        progress.fetch_add(1, Ordering::Relaxed);
        let class = CLASSES
            .iter()
            .position(|(max, _)| e.size <= *max)
            .unwrap_or(CLASSES.len() - 1);
        self.size_histogram[class].files += 1;
        self.size_histogram[class].bytes += e.size;
        if options.filter.excludes_file(&e.rel, e.size, e.mtime_ns) {
            self.excluded += 1;
        } else if let Some((code, _)) = options
            .profile
            .check_path(&e.rel)
            .or_else(|| options.profile.check_size(e.size))
        {
            self.problem(code, &e.rel);
        } else {
            self.files_to_migrate += 1;
            self.bytes_to_migrate += e.size;
        }
    }

    /// The scan's status at the end: stopped, failed for a folder over the limit (3050) or for
    /// nothing to migrate, or succeeded.
    fn conclude(&mut self, options: &ScanOptions, stopped: bool) {
        let job_error = if stopped {
            self.status = CodeRef::new(Code::SCAN_STOPPED, None);
            None
        } else if let Some(big) = self.oversized_folders.first() {
            let (count, limit) = (
                big.value.to_string(),
                options.max_folder_entries.to_string(),
            );
            Some(JobError::new(
                Code::SCAN_FAILURE_50K_LIMIT_ERROR,
                &[("path", &big.path), ("count", &count), ("limit", &limit)],
            ))
        } else if self.files_to_migrate == 0 {
            Some(JobError::new(
                Code::SCAN_FAILURE_NOTHING_TO_MIGRATE,
                &[("path", &self.source)],
            ))
        } else {
            None
        };
        if let Some(e) = job_error {
            self.status = CodeRef::new(Code::SCAN_FAILED, None);
            self.job_error = Some(CodeRef::new(e.code, Some(e.message)));
        }
    }
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

//! `simulate-scan`: one walk of the source that keeps a compact folder tree on disk (the files
//! and bytes directly in each folder), and from it the split-job recommendation: jobs that each
//! stay under the job limits, cut on folder boundaries (`godwit_spec::split`).
//!
//! The tree is a redb table keyed by each folder's path with `/` written as a 0 byte, so that
//! the table's order is a depth-first preorder (a folder before everything below it, and its
//! subtree in one run); counts are gathered in memory for at most [`PENDING`] folders at a time
//! and added to the table. Memory holds no file at all, and a few numbers a folder for the split.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use godwit_codes::Code;
use godwit_spec::split::{self, Limits};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;

use crate::backend::Side;
use crate::error::JobError;
use crate::filter::Filter;
use crate::record::display_path;
use crate::walk::{EntryKind, Event};

/// Folder key (its path, `/` as 0) -> files and bytes directly in it (16 bytes, little-endian).
const FOLDERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("folders");

/// Folders counted in memory before their counts are added to the table.
const PENDING: usize = 1 << 16;

/// The tree file in the run folder.
pub const TREE_FILE: &str = "tree.redb";

/// How a simulated scan goes.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub limits: Limits,
    pub filter: Filter,
    pub follow_links: bool,
}

/// One proposed job: the include rules that select it, and what it holds.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedJob {
    pub include: Vec<String>,
    pub files: u64,
    pub bytes: u64,
}

/// A folder whose own files exceed a job limit: it cannot be split on folder boundaries.
#[derive(Debug, Clone, Serialize)]
pub struct Oversized {
    pub path: String,
    pub files: u64,
    pub bytes: u64,
}

/// What a simulated scan found and proposes.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub folders: u64,
    pub files: u64,
    pub bytes: u64,
    /// Source paths that could not be read (their files are not in the tree).
    pub unreadable: u64,
    pub limits: Limits,
    pub jobs: Vec<PlannedJob>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub oversized: Vec<Oversized>,
    /// The folder tree, for a later recommendation with other limits.
    pub tree: String,
}

/// The folder tree being gathered.
struct Tree {
    db: redb::Database,
    shown: String,
    pending: HashMap<Vec<u8>, (u64, u64)>,
}

fn key_of(folder: &[u8]) -> Vec<u8> {
    folder
        .iter()
        .map(|&b| if b == b'/' { 0 } else { b })
        .collect()
}

fn folder_of(rel: &[u8]) -> &[u8] {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => &rel[..i],
        None => b"",
    }
}

/// This machine's name, for a message that says where the scan failed (the agent runs here).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this machine".into())
}

impl Tree {
    fn create(path: &Path) -> Result<Tree, JobError> {
        let shown = path.display().to_string();
        let db = redb::Database::builder()
            .set_cache_size(8 << 20)
            .create(path)
            .map_err(|e| {
                JobError::new(
                    Code::DISK_HASH_CREATE_ERROR,
                    &[("path", &shown), ("reason", &e.to_string())],
                )
            })?;
        let mut tree = Tree {
            db,
            shown,
            pending: HashMap::new(),
        };
        // The source folder is always there, first.
        tree.pending.insert(Vec::new(), (0, 0));
        Ok(tree)
    }

    fn error(&self, e: impl std::fmt::Display) -> JobError {
        JobError::new(
            Code::SIMULATE_SCAN_FAILURE_ERROR,
            &[
                ("agent_id", &host_name()),
                ("reason", &format!("{}: {e}", self.shown)),
            ],
        )
    }

    fn add(&mut self, folder: &[u8], files: u64, bytes: u64) -> Result<(), JobError> {
        let e = self.pending.entry(key_of(folder)).or_default();
        e.0 += files;
        e.1 += bytes;
        if self.pending.len() >= PENDING {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), JobError> {
        let pending = std::mem::take(&mut self.pending);
        let write = || -> Result<(), redb::Error> {
            let txn = self.db.begin_write()?;
            {
                let mut table = txn.open_table(FOLDERS)?;
                for (key, (f, b)) in &pending {
                    let (f0, b0) = match table.get(key.as_slice())? {
                        Some(v) => decode(v.value()),
                        None => (0, 0),
                    };
                    table.insert(key.as_slice(), encode(f0 + f, b0 + b).as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        };
        write().map_err(|e| self.error(e))
    }

    /// The folders in preorder, each with its parent (the nearest folder above it the tree
    /// holds).
    fn folders(&self) -> Result<Vec<split::Folder>, JobError> {
        let read = || -> Result<Vec<split::Folder>, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(FOLDERS)?;
            let mut out: Vec<split::Folder> = Vec::new();
            // The open path: (key, index) of the folders above the current one.
            let mut path: Vec<(Vec<u8>, usize)> = Vec::new();
            for item in table.iter()? {
                let (k, v) = item?;
                let key = k.value();
                while let Some((top, _)) = path.last() {
                    let above = top.is_empty()
                        || (key.len() > top.len() && key.starts_with(top) && key[top.len()] == 0);
                    if above {
                        break;
                    }
                    path.pop();
                }
                let (files, bytes) = decode(v.value());
                out.push(split::Folder {
                    parent: path.last().map(|(_, i)| *i),
                    files,
                    bytes,
                });
                path.push((key.to_vec(), out.len() - 1));
            }
            Ok(out)
        };
        read().map_err(|e| self.error(e))
    }

    /// The paths of the folders at `indices` (ascending), as a person reads them.
    fn paths_at(&self, indices: &[usize]) -> Result<HashMap<usize, String>, JobError> {
        let read = || -> Result<HashMap<usize, String>, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(FOLDERS)?;
            let mut out = HashMap::new();
            let mut want = indices.iter().peekable();
            for (i, item) in table.iter()?.enumerate() {
                let Some(&&next) = want.peek() else { break };
                if i < next {
                    continue;
                }
                let (k, _) = item?;
                let rel: Vec<u8> = k
                    .value()
                    .iter()
                    .map(|&b| if b == 0 { b'/' } else { b })
                    .collect();
                out.insert(i, display_path(&rel));
                while want.peek().is_some_and(|&&n| n == i) {
                    want.next();
                }
            }
            Ok(out)
        };
        read().map_err(|e| self.error(e))
    }
}

fn encode(files: u64, bytes: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&files.to_le_bytes());
    b[8..].copy_from_slice(&bytes.to_le_bytes());
    b
}

fn decode(b: &[u8]) -> (u64, u64) {
    let n = |r: std::ops::Range<usize>| {
        b.get(r)
            .and_then(|s| s.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    (n(0..8), n(8..16))
}

/// Walks `source` once into a folder tree in `run_dir` and proposes jobs under the limits.
/// A folder whose own files exceed a limit ends the run with 9130, naming it; the proposal
/// is reported all the same.
pub fn simulate_scan(
    source: &Side,
    options: &PlanOptions,
    run_dir: &Path,
    stop: &AtomicBool,
    progress: &std::sync::atomic::AtomicU64,
) -> Result<(PlanReport, Option<JobError>), JobError> {
    let rt = match source {
        Side::Remote(_) => Some(crate::store::runtime("simulate-scan")?),
        Side::Local(_) => None,
    };
    // A source that is not a folder (or a store that does not answer) is no plan of nothing:
    // 9110, before anything is walked.
    match (source, rt.as_ref()) {
        (Side::Local(root), _) if !std::fs::metadata(root).is_ok_and(|m| m.is_dir()) => {
            let shown = root.display().to_string();
            return Err(JobError::new(
                Code::INVALID_SIMULATE_SOURCE_PATH_ERROR,
                &[("path", &shown)],
            ));
        }
        (Side::Remote(r), Some(rt)) => crate::store::reachable(r, rt, false)?,
        _ => {}
    }
    let tree_path: PathBuf = run_dir.join(TREE_FILE);
    let mut tree = Tree::create(&tree_path)?;
    let how = crate::march::March {
        filter: &options.filter,
        list_names: false,
        follow_links: options.follow_links,
        threads: 2,
        batch: true,
    };
    let (tx, rx) = crossbeam_channel::bounded::<Event>(64);
    let mut unreadable = 0u64;
    let mut failure = None;
    let walked = std::thread::scope(|s| -> Result<(), JobError> {
        let walker = s.spawn(|| {
            let r = crate::march::march(source, rt.as_ref(), how, &|_| {}, &tx, stop);
            drop(tx);
            r
        });
        for event in crate::walk::events(&rx) {
            if failure.is_some() {
                continue;
            }
            let added = match event {
                Event::Entry(e) if e.kind == EntryKind::Dir => tree.add(&e.rel, 0, 0),
                // The walk leaves out excluded folders; files are the filter's to judge here,
                // as a copy judges them.
                Event::Entry(e) if options.filter.excludes_file(&e.rel, e.size, e.mtime_ns) => {
                    Ok(())
                }
                Event::Entry(e) => {
                    progress.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tree.add(folder_of(&e.rel), 1, e.size)
                }
                Event::Error { .. } => {
                    unreadable += 1;
                    Ok(())
                }
                _ => Ok(()),
            };
            if let Err(e) = added {
                failure = Some(e);
            }
        }
        walker
            .join()
            .unwrap_or_else(|_| Err(JobError::config("the walk of the source panicked")))
    });
    walked?;
    if let Some(e) = failure {
        return Err(e);
    }
    tree.flush()?;
    let folders = tree.folders()?;
    let proposal = split::split(&folders, options.limits)
        .map_err(|e| JobError::new(Code::SPLIT_JOBS_ERROR, &[("reason", &e.to_string())]))?;
    // The paths of every piece's folder and of the oversized ones, read back in one pass.
    let mut wanted: Vec<usize> = proposal
        .jobs
        .iter()
        .flat_map(|j| j.pieces.iter().map(|p| p.folder()))
        .chain(proposal.oversized.iter().copied())
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let paths = tree.paths_at(&wanted)?;
    let path = |i: usize| paths.get(&i).map_or("", String::as_str);
    let jobs = proposal
        .jobs
        .iter()
        .map(|j| PlannedJob {
            include: j
                .pieces
                .iter()
                .map(|&p| split::include_rule(path(p.folder()), p))
                .collect(),
            files: j.files,
            bytes: j.bytes,
        })
        .collect();
    let oversized: Vec<Oversized> = proposal
        .oversized
        .iter()
        .map(|&i| Oversized {
            path: path(i).to_string(),
            files: folders[i].files,
            bytes: folders[i].bytes,
        })
        .collect();
    let too_large = oversized.first().map(|o| {
        let shown = if o.path.is_empty() { "." } else { &o.path };
        JobError::new(
            Code::SPLIT_JOBS_ERROR,
            &[(
                "reason",
                &format!(
                    "the folder {shown} holds {} files and {} directly, over the job limits of \
                     {} files and {}, and a folder's own files are not cut (it is proposed as a \
                     job alone{})",
                    o.files,
                    crate::record::human_bytes(o.bytes),
                    options.limits.files,
                    crate::record::human_bytes(options.limits.bytes),
                    if oversized.len() > 1 {
                        format!("; {} such folders in all", oversized.len())
                    } else {
                        String::new()
                    }
                ),
            )],
        )
    });
    let report = PlanReport {
        folders: folders.len() as u64,
        files: folders.iter().map(|f| f.files).sum(),
        bytes: folders.iter().map(|f| f.bytes).sum(),
        unreadable,
        limits: options.limits,
        jobs,
        oversized,
        tree: tree_path.display().to_string(),
    };
    Ok((report, too_large))
}

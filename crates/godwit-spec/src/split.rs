//! Cutting a scanned source into jobs that each stay under the limits: the split-job
//! recommendation.
//!
//! The tree is the folders of the source in depth-first preorder, each with the files and
//! bytes directly in it. The split makes *pieces* on folder boundaries, then packs them into
//! jobs:
//!
//! 1. One pass from the last folder to the first adds each folder's totals to its parent's
//!    (preorder puts a parent before its children), giving every subtree's files, bytes and
//!    number of folders.
//! 2. One pass from the first folder: a folder whose subtree fits the limits is a piece whole
//!    (`Tree`), and the pass jumps past its subtree; a folder whose subtree does not fit gives
//!    the files directly in it as a piece of their own (`Files`), and the pass goes on into its
//!    subfolders. Files directly in one folder are never cut: a folder whose own files exceed a
//!    limit is *oversized*, named in the proposal with its size, and becomes a job alone.
//! 3. The pieces, in tree order (so that neighbouring folders stay together), are packed into
//!    jobs first-come: a piece joins the current job if the job stays within the limits, else it
//!    starts the next job. That gives the number of jobs `k`; the packing is then run again with
//!    a target of a `k`th of the total (plus 0%, 10%, 25% or 50% slack) under the same limits,
//!    and the first run that needs no more than `k` jobs is kept: jobs of about even size.
//!
//! Guarantees (checked by property tests over random trees): every folder's own files are in
//! exactly one piece and every piece in exactly one job, so the jobs together cover the source
//! exactly once; every job stays within both limits, except a job holding a single oversized
//! folder's files, which the proposal names. Cost: each pass is linear in the number of folders
//! (the packing runs at most five times), and memory holds a few numbers a folder (about 56
//! bytes: 10 million folders take about 560 MB); names are not held at all, the caller reads
//! back the paths of the pieces' folders for their include rules.

use serde::Serialize;

/// One folder of a scanned tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The index of its parent folder (earlier in the list); `None` for the source folder.
    pub parent: Option<usize>,
    /// Files directly in it (not in its subfolders).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// What one job may hold at the most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    pub files: u64,
    pub bytes: u64,
}

impl Limits {
    /// The job limits when none are given: 50 million files, 1 PiB (the control plane's own
    /// defaults, 629 and 640).
    pub const DEFAULT: Limits = Limits {
        files: 50_000_000,
        bytes: 1 << 50,
    };
}

/// A part of the tree that goes to one job whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// The folder and everything below it.
    Tree(usize),
    /// Only the files directly in the folder.
    Files(usize),
}

impl Piece {
    /// The folder the piece is taken from.
    pub fn folder(self) -> usize {
        match self {
            Piece::Tree(i) | Piece::Files(i) => i,
        }
    }
}

/// One proposed job: its pieces, in tree order, and what they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub pieces: Vec<Piece>,
    pub files: u64,
    pub bytes: u64,
}

/// The proposal: the jobs, and the folders whose own files exceed a limit on their own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Proposal {
    pub jobs: Vec<Job>,
    /// Folders whose files (directly in them) exceed a limit: each is a job alone, over it.
    pub oversized: Vec<usize>,
}

/// Why a tree cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("folder {0} names a parent that does not come before it")]
    BadParent(usize),
    #[error("a limit of 0 files or 0 bytes leaves nothing to put in a job")]
    ZeroLimit,
}

fn fits(files: u64, bytes: u64, limits: Limits) -> bool {
    files <= limits.files && bytes <= limits.bytes
}

/// Splits `tree` (its folders in depth-first preorder, the source folder first) into jobs
/// under `limits`; see the module's documentation for the rule and its guarantees.
pub fn split(tree: &[Folder], limits: Limits) -> Result<Proposal, SplitError> {
    if limits.files == 0 || limits.bytes == 0 {
        return Err(SplitError::ZeroLimit);
    }
    // 1. Subtree totals and sizes, from the last folder to the first.
    let n = tree.len();
    let mut files: Vec<u64> = tree.iter().map(|f| f.files).collect();
    let mut bytes: Vec<u64> = tree.iter().map(|f| f.bytes).collect();
    let mut span = vec![1usize; n];
    for i in (0..n).rev() {
        match tree[i].parent {
            None if i == 0 => {}
            Some(p) if p < i => {
                files[p] = files[p].saturating_add(files[i]);
                bytes[p] = bytes[p].saturating_add(bytes[i]);
                span[p] += span[i];
            }
            _ => return Err(SplitError::BadParent(i)),
        }
    }
    // 2. The pieces, in tree order.
    let mut pieces = Vec::new();
    let mut oversized = Vec::new();
    let mut i = 0;
    while i < n {
        if fits(files[i], bytes[i], limits) {
            if files[i] > 0 || bytes[i] > 0 {
                pieces.push((Piece::Tree(i), files[i], bytes[i]));
            }
            i += span[i];
        } else {
            let own = &tree[i];
            if own.files > 0 || own.bytes > 0 {
                if !fits(own.files, own.bytes, limits) {
                    oversized.push(i);
                }
                pieces.push((Piece::Files(i), own.files, own.bytes));
            }
            i += 1;
        }
    }
    // 3. Packed first-come, then again for even jobs.
    let first = pack(&pieces, limits, limits);
    let k = first.len() as u64;
    let mut jobs = first;
    if k > 1 {
        let total_files: u64 = pieces.iter().map(|p| p.1).sum();
        let total_bytes: u64 = pieces.iter().map(|p| p.2).sum();
        for slack in [100u64, 110, 125, 150] {
            let target = Limits {
                files: total_files.div_ceil(k).saturating_mul(slack) / 100,
                bytes: total_bytes.div_ceil(k).saturating_mul(slack) / 100,
            };
            let even = pack(&pieces, limits, target);
            if even.len() as u64 <= k {
                jobs = even;
                break;
            }
        }
    }
    Ok(Proposal { jobs, oversized })
}

/// Packs `pieces` in order: each joins the current job while the job stays within `limits`
/// and `target`; a piece no job could hold within `limits` is a job alone.
fn pack(pieces: &[(Piece, u64, u64)], limits: Limits, target: Limits) -> Vec<Job> {
    let cap = Limits {
        files: limits.files.min(target.files.max(1)),
        bytes: limits.bytes.min(target.bytes.max(1)),
    };
    let mut jobs: Vec<Job> = Vec::new();
    let mut open = false;
    for &(piece, f, b) in pieces {
        let joins = open
            && jobs
                .last()
                .is_some_and(|j| fits(j.files.saturating_add(f), j.bytes.saturating_add(b), cap));
        if joins {
            if let Some(j) = jobs.last_mut() {
                j.pieces.push(piece);
                j.files += f;
                j.bytes += b;
            }
        } else {
            jobs.push(Job {
                pieces: vec![piece],
                files: f,
                bytes: b,
            });
        }
        // A piece over the limits stays alone.
        open = fits(f, b, limits);
    }
    jobs
}

/// The include rule (a glob of the migration's filters) that selects `piece` and nothing else:
/// `a/b/**` for a folder and everything below it, `a/b/*` for the files directly in it, `**`
/// and `/*` at the source folder. Characters a glob would read are escaped.
/// `path` is the piece's folder below the source (`a/b`, empty for the source folder).
pub fn include_rule(path: &str, piece: Piece) -> String {
    let tail = match piece {
        Piece::Tree(_) => "**",
        Piece::Files(_) => "*",
    };
    if path.is_empty() {
        // Anchored: a glob without a slash would match at any depth.
        return if tail == "*" {
            "/*".into()
        } else {
            "**".into()
        };
    }
    let mut rule = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\' | '!' | ',') {
            rule.push('\\');
        }
        rule.push(c);
    }
    rule.push('/');
    rule.push_str(tail);
    rule
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(parent: Option<usize>, files: u64, bytes: u64) -> Folder {
        Folder {
            parent,
            files,
            bytes,
        }
    }

    /// The source folder with a few files, `a` with three subfolders, `b` small.
    fn sample() -> Vec<Folder> {
        vec![
            folder(None, 2, 20),
            folder(Some(0), 1, 10),
            folder(Some(1), 40, 400),
            folder(Some(1), 40, 400),
            folder(Some(1), 10, 100),
            folder(Some(0), 5, 50),
        ]
    }

    /// The sample's folders' paths.
    const PATHS: [&str; 6] = ["", "a", "a/x", "a/y", "a/z", "b"];

    fn rule(piece: Piece) -> String {
        include_rule(PATHS[piece.folder()], piece)
    }

    #[test]
    fn a_tree_that_fits_is_one_job() {
        let p = split(
            &sample(),
            Limits {
                files: 1000,
                bytes: 10_000,
            },
        )
        .unwrap();
        assert_eq!(p.jobs.len(), 1);
        assert_eq!(p.jobs[0].pieces, [Piece::Tree(0)]);
        assert_eq!((p.jobs[0].files, p.jobs[0].bytes), (98, 980));
        assert_eq!(rule(Piece::Tree(0)), "**");
    }

    #[test]
    fn a_large_folder_is_cut_at_its_subfolders_and_its_own_files_stay_together() {
        let tree = sample();
        let p = split(
            &tree,
            Limits {
                files: 50,
                bytes: 10_000,
            },
        )
        .unwrap();
        let rules: Vec<Vec<String>> = p
            .jobs
            .iter()
            .map(|j| j.pieces.iter().map(|&x| rule(x)).collect())
            .collect();
        // First come, the jobs would hold 43, 50 and 5 files; evened out, 43, 40 and 15.
        assert_eq!(
            rules,
            [
                vec!["/*", "a/*", "a/x/**"],
                vec!["a/y/**"],
                vec!["a/z/**", "b/**"]
            ]
        );
        let files: Vec<u64> = p.jobs.iter().map(|j| j.files).collect();
        assert_eq!(files, [43, 40, 15]);
        assert!(p.jobs.iter().all(|j| j.files <= 50));
        assert!(p.oversized.is_empty());
    }

    #[test]
    fn a_folder_whose_own_files_exceed_a_limit_is_named_and_alone() {
        let tree = vec![
            folder(None, 0, 0),
            folder(Some(0), 500, 5),
            folder(Some(0), 3, 3),
        ];
        let p = split(
            &tree,
            Limits {
                files: 100,
                bytes: 1000,
            },
        )
        .unwrap();
        assert_eq!(p.oversized, [1]);
        assert_eq!(p.jobs[0].pieces, [Piece::Files(1)]);
        assert_eq!(p.jobs[1].pieces, [Piece::Tree(2)]);
    }

    #[test]
    fn include_rules_select_exactly_their_piece() {
        use crate::filter::{Filter, FilterRules};
        let only = |rule: String| {
            Filter::new(&FilterRules {
                include: vec![rule],
                ..Default::default()
            })
            .unwrap()
        };
        let files = only(include_rule("a[1]", Piece::Files(1)));
        assert!(!files.excludes_file(b"a[1]/x.txt", 1, 0));
        assert!(files.excludes_file(b"a[1]/deep/y.txt", 1, 0));
        assert!(files.excludes_file(b"top.txt", 1, 0));
        let root = only(include_rule("", Piece::Files(0)));
        assert!(!root.excludes_file(b"top.txt", 1, 0));
        assert!(root.excludes_file(b"a[1]/x.txt", 1, 0));
        let below = only(include_rule("a[1]", Piece::Tree(1)));
        assert!(!below.excludes_file(b"a[1]/deep/y.txt", 1, 0));
        assert!(below.excludes_file(b"a1/x.txt", 1, 0));
    }

    #[test]
    fn bad_input_is_refused() {
        let tree = vec![folder(None, 1, 1), folder(Some(5), 1, 1)];
        let l = Limits { files: 1, bytes: 1 };
        assert_eq!(split(&tree, l), Err(SplitError::BadParent(1)));
        assert_eq!(
            split(&sample(), Limits { files: 0, bytes: 1 }),
            Err(SplitError::ZeroLimit)
        );
        assert_eq!(split(&[], l), Ok(Proposal::default()));
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// A random tree in preorder: each folder's parent is an earlier folder on the path
        /// from the source to the last one made (so the list stays in preorder).
        fn trees() -> impl Strategy<Value = Vec<Folder>> {
            prop::collection::vec((0usize..8, 0u64..60, 0u64..5000), 1..200).prop_map(|spec| {
                let mut tree = vec![Folder {
                    parent: None,
                    files: spec[0].1,
                    bytes: spec[0].2,
                }];
                // The open path: the source folder and the last folder's ancestors.
                let mut path = vec![0usize];
                for &(up, files, bytes) in spec.iter().skip(1) {
                    let keep = path.len().saturating_sub(up).max(1);
                    path.truncate(keep);
                    let parent = *path.last().unwrap_or(&0);
                    tree.push(Folder {
                        parent: Some(parent),
                        files,
                        bytes,
                    });
                    path.push(tree.len() - 1);
                }
                tree
            })
        }

        proptest! {
            #[test]
            fn jobs_cover_every_folder_once_and_keep_the_limits(
                tree in trees(),
                max_files in 1u64..400,
                max_bytes in 1u64..40_000,
            ) {
                let limits = Limits { files: max_files, bytes: max_bytes };
                let p = split(&tree, limits).unwrap();
                // Which piece covers each folder's own files.
                let mut covered = vec![0u32; tree.len()];
                let mut in_tree = vec![false; tree.len()];
                for job in &p.jobs {
                    let (mut f, mut b) = (0u64, 0u64);
                    for &piece in &job.pieces {
                        match piece {
                            Piece::Files(i) => {
                                covered[i] += 1;
                                f += tree[i].files;
                                b += tree[i].bytes;
                            }
                            Piece::Tree(i) => {
                                // i and every folder below it (a contiguous run in preorder).
                                in_tree[i] = true;
                                covered[i] += 1;
                                f += tree[i].files;
                                b += tree[i].bytes;
                                let mut below = vec![false; tree.len()];
                                below[i] = true;
                                for j in i + 1..tree.len() {
                                    let Some(parent) = tree[j].parent else { break };
                                    if !below[parent] { break; }
                                    below[j] = true;
                                    covered[j] += 1;
                                    f += tree[j].files;
                                    b += tree[j].bytes;
                                }
                            }
                        }
                    }
                    prop_assert_eq!((f, b), (job.files, job.bytes));
                    let single_oversized = job.pieces.len() == 1
                        && matches!(job.pieces[0], Piece::Files(i) if p.oversized.contains(&i));
                    prop_assert!(
                        (job.files <= max_files && job.bytes <= max_bytes) || single_oversized,
                        "job {:?} over {:?}", job, limits
                    );
                }
                for (i, folder) in tree.iter().enumerate() {
                    if folder.files > 0 || folder.bytes > 0 {
                        prop_assert_eq!(covered[i], 1, "folder {} covered {} times", i, covered[i]);
                    } else {
                        prop_assert!(covered[i] <= 1);
                    }
                }
                // A folder is named oversized exactly when its own files exceed a limit.
                for &i in &p.oversized {
                    prop_assert!(tree[i].files > max_files || tree[i].bytes > max_bytes);
                }
                for (i, folder) in tree.iter().enumerate() {
                    if (folder.files > max_files || folder.bytes > max_bytes) && !in_tree[i] {
                        prop_assert!(p.oversized.contains(&i));
                    }
                }
            }
        }
    }
}

//! What the pieces of a copy share: its options, its live counters, and the context every
//! transfer thread reads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender};
use godwit_codes::Code;
use godwit_spec::{Links, Verify};

use crate::backend::Side;
use crate::error::JobError;
use crate::filter::Filter;
use crate::index::{Index, IndexEntry};
use crate::profile::TargetProfile;
use crate::record::CopyRecord;
use crate::walk::Entry;

/// Large files streamed at once; see `copy`.
pub(crate) const LARGE_FILES_IN_FLIGHT: usize = 1;

/// Moves are looked for among files of at least this size (smaller ones are cheap to send).
pub(crate) const MOVE_MIN_SIZE: u64 = 64 << 10;
/// New files held back until the walk ends, to be matched with files gone from the source; past
/// this many, new files are copied at once (memory stays bounded).
pub(crate) const MAX_HELD_BACK: usize = 100_000;
/// Files gone from the source kept as candidates for a move.
pub(crate) const MAX_MOVE_CANDIDATES: usize = 100_000;

/// (size, mtime, inode): a file moved at the source keeps all three.
pub(crate) type MoveKey = (u64, i64, u64);

/// The options of a copy.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub transfers: usize,
    /// Compute a checksum of each file while reading it (and record it).
    pub checksum: bool,
    pub verify: Verify,
    pub filter: Filter,
    pub links: Links,
    pub profile: TargetProfile,
    pub dry_run: bool,
    /// `--bwlimit`: bytes a second for the whole run, shared by all transfers.
    pub bwlimit: Option<godwit_spec::Bandwidth>,
    /// `--files-from`: exactly the files this list names, no walk of the rest.
    pub files_from: Option<std::path::PathBuf>,
    /// Files and bytes the source's last scan found to migrate, for the pre-checks of room.
    pub estimate: Option<(u64, u64)>,
    /// `--compare target`: decide by listing the target instead of trusting the index (for a
    /// target changed behind godwit's back, or a lost index); the index is repaired.
    pub compare_target: bool,
    /// A true-up: compare each folder's listing with the index (or, with `compare_target`, the
    /// target listing) and write what is gone from the source to the run's `deletes.txt`.
    pub find_deletes: bool,
    /// `--create-empty-dirs`: folders that hold nothing exist at the target too.
    pub empty_dirs: bool,
    /// `--sanitize on-the-fly`: names the target cannot hold are renamed at the target.
    pub sanitize: bool,
    /// Write a copy-log record for every excluded file (otherwise they are only counted).
    pub log_excluded: bool,
    /// Write a copy-log record for every unchanged file (otherwise they are only counted).
    pub log_unchanged: bool,
    /// Walk folders only, copying no file (`godwit empty-folders`).
    pub folders_only: bool,
    /// A true-up with `--delete`: a new file with the size, modification time and inode of a
    /// file gone from the source was moved there; it is moved at the target too (a rename, or
    /// a server-side copy) instead of being sent again.
    pub moves: bool,
    /// Files the index says are at the target that the run checks there (a random sample).
    pub spot_check: u32,
    /// `--hard-links`: a source file's other names are hard links at a local target.
    pub hard_links: bool,
    /// `--backup-dir`: what the run replaces at the target is kept there first (set by the
    /// job runner once the run has its id; see `backup.rs`).
    pub backup: Option<std::sync::Arc<crate::backup::Backup>>,
    /// `--metadata`: each file's and folder's owner, group, mode, ACLs, extended attributes
    /// and times carried with its data (a local source; see `metadata.rs`).
    pub metadata: Option<std::sync::Arc<crate::metadata::MetadataOptions>>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            transfers: 8,
            checksum: false,
            verify: Verify::Size,
            filter: Filter::default(),
            links: Links::Skip,
            profile: TargetProfile::for_kind(godwit_spec::StoreKind::Local),
            dry_run: false,
            bwlimit: None,
            files_from: None,
            estimate: None,
            compare_target: false,
            find_deletes: false,
            empty_dirs: false,
            sanitize: false,
            log_excluded: false,
            log_unchanged: false,
            folders_only: false,
            moves: false,
            spot_check: godwit_spec::options::DEFAULT_SPOT_CHECK,
            hard_links: false,
            backup: None,
            metadata: None,
        }
    }
}

impl CopyOptions {
    /// The plan of a copy, a true-up or an empty-folders run from a job's options: the one
    /// place where the options people give become what the engine does.
    pub fn plan(
        command: godwit_spec::CommandKind,
        o: &godwit_spec::JobOptions,
        target: godwit_spec::StoreKind,
    ) -> Result<CopyOptions, JobError> {
        use godwit_spec::{CommandKind, Compare, SanitizeMode};
        let sync = command == CommandKind::Sync;
        let folders_only = command == CommandKind::EmptyFolders;
        let compare_target = o.compare == Compare::Target;
        if o.files_from.is_some() && (o.sync_deletes || folders_only) {
            return Err(JobError::config(
                "--files-from sends exactly the files it lists, so it finds no deletions and no \
                 empty folders: run it without --delete (a true-up without the list finds them)",
            ));
        }
        if let Some(list) = &o.files_from {
            // Refused before the run starts, rather than found when its walk begins.
            std::fs::File::open(list).map_err(|e| {
                JobError::config(&format!(
                    "--files-from {list}: {}",
                    crate::error::reason(&e)
                ))
            })?;
        }
        Ok(CopyOptions {
            transfers: o.transfers_for(target),
            checksum: o.checksum,
            verify: o.verify,
            filter: Filter::new(&o.filters)?,
            links: o.links,
            profile: TargetProfile::chosen(o.target_profile, target),
            dry_run: o.dry_run,
            bwlimit: o.bwlimit.clone(),
            files_from: o.files_from.as_ref().map(std::path::PathBuf::from),
            estimate: None,
            compare_target,
            find_deletes: sync,
            empty_dirs: folders_only || o.create_empty_dirs,
            sanitize: o.sanitize == SanitizeMode::OnTheFly,
            log_excluded: o.log_excluded,
            log_unchanged: o.log_unchanged,
            folders_only,
            // Moves are followed at the target only when the target is to mirror the source.
            moves: sync && o.sync_deletes && !compare_target,
            spot_check: o.spot_checks(),
            hard_links: o.hard_links,
            backup: None,
            metadata: o
                .metadata
                .then(|| metadata_options(o))
                .transpose()?
                .map(std::sync::Arc::new),
        })
    }
}

/// What `--metadata` or a permissions run carries (`what`, default all) and the owner map,
/// from a job's options.
pub(crate) fn metadata_options(
    o: &godwit_spec::JobOptions,
) -> Result<crate::metadata::MetadataOptions, JobError> {
    Ok(crate::metadata::MetadataOptions {
        what: o
            .what
            .as_deref()
            .map(crate::perms::What::parse)
            .transpose()?
            .unwrap_or_default(),
        map: o
            .owner_map
            .as_deref()
            .map(crate::perms::OwnerMap::parse)
            .transpose()?
            .unwrap_or_default(),
    })
}

/// Live counters, read by the progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub files_seen: AtomicU64,
    pub bytes_seen: AtomicU64,
    pub files_done: AtomicU64,
    pub bytes_done: AtomicU64,
    pub bytes_copied: AtomicU64,
    pub failed: AtomicU64,
    /// Bytes written by transfers as they go (a large file moves this long before it is done):
    /// what shows a run is alive, not hung.
    pub bytes_moving: AtomicU64,
}

/// How a copy ended.
#[derive(Debug, Clone, Default)]
pub struct CopyOutcome {
    /// Files per final status code.
    pub counts: BTreeMap<Code, u64>,
    pub files: u64,
    pub bytes: u64,
    pub bytes_copied: u64,
    /// Files and bytes a dry run would have copied.
    pub would_copy: (u64, u64),
    /// What stopped the run as a whole, if anything.
    pub job_error: Option<JobError>,
    /// Whether the run was stopped before it finished (Ctrl-C).
    pub stopped: bool,
    /// Files gone from the source, listed in the run's `deletes.txt` (a true-up).
    pub deletes_found: u64,
    /// Source paths that could not be read, listed in the run's `unreadable.txt`.
    pub unreadable: u64,
    /// Empty folders made at the target (`--create-empty-dirs`).
    pub empty_dirs: u64,
    /// Files in the index at the end (a true-up's `--max-delete` is a share of it).
    pub index_files: u64,
    /// Open multipart uploads found at an S3 target when the run started.
    pub uploads: crate::uploads::UploadCheck,
    /// `--metadata`: what the target could not hold, with how many files had it.
    pub metadata_not_carried: BTreeMap<String, u64>,
    /// Files gone from the source that a new file may have been moved from.
    pub(crate) move_candidates: std::collections::HashMap<MoveKey, Vec<u8>>,
}

impl CopyOutcome {
    /// Adds what a second round of the same run did.
    pub(crate) fn absorb(&mut self, other: CopyOutcome) {
        for (code, n) in other.counts {
            *self.counts.entry(code).or_default() += n;
        }
        self.files += other.files;
        self.bytes += other.bytes;
        self.bytes_copied += other.bytes_copied;
        self.would_copy.0 += other.would_copy.0;
        self.would_copy.1 += other.would_copy.1;
        self.empty_dirs += other.empty_dirs;
        if self.job_error.is_none() {
            self.job_error = other.job_error;
        }
    }
}

/// What a transfer thread tells the recorder about one file.
pub(crate) struct Done {
    pub(crate) record: CopyRecord,
    /// The source path (the record holds it for display only).
    pub(crate) rel: Vec<u8>,
    pub(crate) index: Option<(Vec<u8>, IndexEntry)>,
    pub(crate) copied: u64,
    /// The fingerprint of the permissions set at the target with it (`--metadata`).
    pub(crate) perms: Option<u64>,
}

pub(crate) struct Ctx<'a> {
    pub(crate) src: &'a Side,
    pub(crate) dst: &'a Side,
    pub(crate) run_id: &'a str,
    pub(crate) options: &'a CopyOptions,
    pub(crate) index: &'a Index,
    /// The last run did not finish: a file missing from the index may already be at the target.
    pub(crate) resumed: bool,
    pub(crate) seq: AtomicU64,
    pub(crate) stop: &'a AtomicBool,
    /// Runs the async store calls of the transfer threads; None when both sides are local.
    pub(crate) rt: Option<tokio::runtime::Runtime>,
    /// Tokens for large files in flight, which hold upload buffers: bounds memory.
    pub(crate) large_slots: (Sender<()>, Receiver<()>),
    pub(crate) rate: Option<crate::rate::RateLimit>,
    /// New files held back to be matched with files gone from the source (`moves`).
    pub(crate) held_back: std::sync::Mutex<Vec<Entry>>,
    /// Set for the second round, which copies what was held back.
    pub(crate) second_round: AtomicBool,
    /// Whether the remote target was checked before the run; if not, the first write checks it.
    pub(crate) target_checked: bool,
    pub(crate) target_check: std::sync::OnceLock<Result<(), JobError>>,
    /// What stopped the run from inside a transfer (the target turned out unreachable).
    pub(crate) failure: std::sync::Mutex<Option<JobError>>,
    /// Where this run writes its temporary files at the target.
    pub(crate) temp: crate::transfer::Temp,
    /// The sample of unchanged files checked at the target, and what it found.
    pub(crate) spot: SpotCheck,
    /// The keys of the multipart uploads this run starts at an S3 target.
    pub(crate) uploads: Option<crate::uploads::UploadLog>,
    /// `--hard-links`: for each (device, inode) with several names, how its first name went.
    pub(crate) links: std::sync::Mutex<std::collections::HashMap<(u64, u64), Linked>>,
    /// How files are published at a local target.
    pub(crate) publish: crate::publish::Publish,
    /// `--metadata`: where permissions go, and what they are read from.
    pub(crate) metadata: Option<crate::metadata::Carrier<'a>>,
    /// Counts the bytes transfers write as they go (`Progress::bytes_moving`).
    pub(crate) moving: Option<&'a AtomicU64>,
}

/// The state of a file with several names (`--hard-links`) in this run.
#[derive(Debug, Clone)]
pub(crate) enum Linked {
    /// Its first name is being copied; the others wait for the second round.
    Copying,
    /// At the target under this name: the others are linked to it.
    At(Vec<u8>),
    /// Its copy failed: each other name is copied on its own.
    Failed,
}

/// What a name of a file with several names does.
pub(crate) enum LinkClaim {
    /// Copy it (the first name, or the first copy failed).
    Copy,
    /// Link it to this name at the target.
    To(Vec<u8>),
    /// The first name is still being copied.
    Wait,
}

impl Ctx<'_> {
    /// What `entry`, one name of a file with several, does in this run.
    pub(crate) fn claim_link(&self, key: (u64, u64)) -> LinkClaim {
        let mut links = self
            .links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match links.get(&key) {
            None => {
                links.insert(key, Linked::Copying);
                LinkClaim::Copy
            }
            Some(Linked::Copying) => LinkClaim::Wait,
            Some(Linked::At(first)) => LinkClaim::To(first.clone()),
            Some(Linked::Failed) => LinkClaim::Copy,
        }
    }

    /// How the copy of a name of a file with several went (`at`: its name at the target).
    pub(crate) fn link_done(&self, key: (u64, u64), at: Option<&[u8]>) {
        let mut links = self
            .links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let state = at.map_or(Linked::Failed, |t| Linked::At(t.to_vec()));
        match (links.get(&key), &state) {
            // A name already at the target stays the one to link to.
            (Some(Linked::At(_)), Linked::Failed) => {}
            _ => {
                links.insert(key, state);
            }
        }
    }
}

/// Checks, at a small fixed cost, that the target still holds what the index says godwit
/// wrote: about `wanted` of the files the index calls unchanged are picked (by a hash of their
/// path and the run's id, so each run picks others) and looked at there.
#[derive(Debug, Default)]
pub(crate) struct SpotCheck {
    /// A file is checked when the hash of its path, modulo `of`, is below `wanted`.
    wanted: u64,
    of: u64,
    seed: u64,
    pub(crate) checked: AtomicU64,
    pub(crate) wrong: AtomicU64,
    /// The first file found missing or changed, for the message.
    pub(crate) first_wrong: std::sync::Mutex<Option<String>>,
}

impl SpotCheck {
    /// About `wanted` checks among the `files` of the index, for run `run_id`.
    pub(crate) fn new(wanted: u32, files: u64, run_id: &str) -> Self {
        SpotCheck {
            wanted: u64::from(wanted),
            of: files.max(1),
            seed: xxhash_rust::xxh3::xxh3_64(run_id.as_bytes()),
            ..SpotCheck::default()
        }
    }

    /// Whether the file at `rel` is one of the sample.
    pub(crate) fn picks(&self, rel: &[u8]) -> bool {
        self.wanted > 0
            && (self.wanted >= self.of
                || xxhash_rust::xxh3::xxh3_64_with_seed(rel, self.seed) % self.of < self.wanted)
    }

    /// Counts a check; `wrong` when the target did not hold the file as the index says.
    pub(crate) fn found(&self, rel: &[u8], wrong: bool) {
        self.checked.fetch_add(1, Ordering::Relaxed);
        if wrong {
            self.wrong.fetch_add(1, Ordering::Relaxed);
            self.first_wrong
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_or_insert_with(|| crate::record::display_path(rel));
        }
    }

    /// The job error of a sample that found files missing or changed, if it did.
    pub(crate) fn verdict(&self, target: &str) -> Option<JobError> {
        let wrong = self.wrong.load(Ordering::Relaxed);
        if wrong == 0 {
            return None;
        }
        let first = self
            .first_wrong
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .unwrap_or_default();
        let reason = format!(
            "{wrong} of the {} files checked were missing or changed there (the first: {first}); \
             they were sent again, and the copy log says how each went",
            self.checked.load(Ordering::Relaxed)
        );
        Some(JobError::new(
            Code::AZSM1028,
            &[("target", target), ("reason", &reason)],
        ))
    }
}

impl<'a> Ctx<'a> {
    /// The context of a copy of `sides` (source, target); `(resumed, check_target_later)`:
    /// the last run did not finish; a remote target is checked at the first write.
    pub(crate) fn new(
        sides: (&'a Side, &'a Side),
        run: &'a crate::state::Run,
        options: &'a CopyOptions,
        index: &'a Index,
        (resumed, check_target_later): (bool, bool),
        stop: &'a AtomicBool,
        rt: Option<tokio::runtime::Runtime>,
    ) -> Self {
        // One large file streams at a time (its parts upload in parallel): each holds several
        // parts in memory, so this is what keeps peak memory flat whatever the sizes.
        let slots = crossbeam_channel::bounded::<()>(LARGE_FILES_IN_FLIGHT);
        for _ in 0..LARGE_FILES_IN_FLIGHT {
            let _ = slots.0.send(());
        }
        Ctx {
            src: sides.0,
            dst: sides.1,
            run_id: &run.id,
            options,
            index,
            resumed,
            seq: AtomicU64::new(0),
            stop,
            rt,
            large_slots: slots,
            rate: options
                .bwlimit
                .clone()
                .filter(godwit_spec::Bandwidth::limits)
                .map(crate::rate::RateLimit::new),
            held_back: std::sync::Mutex::new(Vec::new()),
            second_round: AtomicBool::new(false),
            target_checked: !check_target_later,
            target_check: std::sync::OnceLock::new(),
            failure: std::sync::Mutex::new(None),
            temp: crate::transfer::Temp {
                dir: String::new(),
                run: String::new(),
            },
            spot: SpotCheck::default(),
            uploads: None,
            links: std::sync::Mutex::new(std::collections::HashMap::new()),
            publish: crate::publish::Publish::default(),
            moving: None,
            metadata: None,
        }
    }

    /// What stopped the run from inside a transfer, if anything.
    pub(crate) fn take_failure(&self) -> Option<JobError> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// The new files held back to be matched with files gone from the source.
    pub(crate) fn take_held_back(&self) -> Vec<Entry> {
        std::mem::take(
            &mut *self
                .held_back
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Makes sure the remote target can be written, once per run, before the first write to
    /// it. On failure the run stops with that job error.
    pub(crate) fn target_ready(&self) -> Result<(), JobError> {
        if self.target_checked {
            return Ok(());
        }
        let (Side::Remote(r), Some(rt)) = (self.dst, &self.rt) else {
            return Ok(());
        };
        let result = self
            .target_check
            .get_or_init(|| crate::store::reachable(r, rt, true))
            .clone();
        if let Err(e) = &result {
            self.stop.store(true, Ordering::Relaxed);
            self.failure
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_or_insert_with(|| e.clone());
        }
        result
    }
}

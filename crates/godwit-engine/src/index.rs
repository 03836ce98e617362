//! The migration's per-file index: what godwit last wrote and verified at the target, so that
//! later runs skip unchanged files without touching the target. Kept on disk (redb), so memory
//! does not grow with the number of files.

use std::path::Path;

use godwit_codes::Code;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::JobError;

const FILES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("files");
/// What a listing of the target found (`--compare target`), replaced by each such run.
const TARGET: TableDefinition<&[u8], &[u8]> = TableDefinition::new("target-listing");

/// Sanitized names: source path -> the name used at the target (`--sanitize on-the-fly`).
const NAMES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("target-names");
/// The other way round, to find collisions: target name -> source path.
const NAMES_TAKEN: TableDefinition<&[u8], &[u8]> = TableDefinition::new("target-names-taken");
/// Permissions carried with the data (`--metadata`): path -> a fingerprint of what was set at
/// the target (see `metadata.rs`), so that a true-up finds an unchanged one without a request.
/// A table of its own, so that indexes written before it read as "nothing carried yet".
const PERMS: TableDefinition<&[u8], u64> = TableDefinition::new("permissions-set");

/// Creates every table of an index that does not have it yet, in one transaction.
fn create_tables(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    for table in [FILES, TARGET, NAMES, NAMES_TAKEN] {
        txn.open_table(table)?;
    }
    txn.open_table(PERMS)?;
    txn.commit()?;
    Ok(())
}

/// Which table a deletion scan compares with the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// What godwit wrote (the index).
    Written,
    /// What a listing of the target found (`--compare target`).
    Listed,
}

/// redb's cache for the index; see `Index::open`. At 32 MiB a copy's peak memory still grew
/// with the number of files (25 MiB at 100,000 tiny files, 52 MiB at 1,000,000: heaptrack put
/// the growth in redb's pages); at 8 MiB it is flat (26 and 27 MiB) and an unchanged true-up
/// of 100,000 files takes the same time (docs/benchmarks.md).
const CACHE_BYTES: usize = 8 << 20;

/// What the index knows of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub size: u64,
    pub mtime_ns: i64,
    /// xxh3-128 of the content when it was computed, else 0.
    pub hash: u128,
    /// The source file's inode (0 when unknown): how a file moved at the source is recognised.
    pub ino: u64,
}

impl IndexEntry {
    fn encode(&self) -> [u8; 40] {
        let mut b = [0u8; 40];
        b[..8].copy_from_slice(&self.size.to_le_bytes());
        b[8..16].copy_from_slice(&self.mtime_ns.to_le_bytes());
        b[16..32].copy_from_slice(&self.hash.to_le_bytes());
        b[32..].copy_from_slice(&self.ino.to_le_bytes());
        b
    }

    /// Reads an entry; indexes written before inodes were kept hold 32 bytes.
    fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != 32 && b.len() != 40 {
            return None;
        }
        Some(IndexEntry {
            size: u64::from_le_bytes(b[..8].try_into().ok()?),
            mtime_ns: i64::from_le_bytes(b[8..16].try_into().ok()?),
            hash: u128::from_le_bytes(b[16..32].try_into().ok()?),
            ino: match b.get(32..40) {
                Some(i) => u64::from_le_bytes(i.try_into().ok()?),
                None => 0,
            },
        })
    }
}

/// The index file of one migration.
#[derive(Debug)]
pub struct Index {
    db: Database,
    path: String,
    /// Tells this index from any other one a thread has read (see `get_reusing`).
    id: u64,
}

/// Lookups a transfer thread makes with one read transaction before it takes a fresh one: a
/// lookup is then a search of the tree and nothing more (a transaction a file cost a tenth of a
/// no-change true-up's CPU), and later writes still become visible and their pages reusable.
const READS_PER_TRANSACTION: u32 = 512;

static NEXT_INDEX: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

type FilesTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;
type PermsTable = redb::ReadOnlyTable<&'static [u8], u64>;

/// One thread's open read of an index (see `get_reusing`).
struct Reader {
    id: u64,
    left: u32,
    files: FilesTable,
    perms: PermsTable,
}

thread_local! {
    /// This thread's open read of an index's files and permissions.
    static READER: std::cell::RefCell<Option<Reader>> = const { std::cell::RefCell::new(None) };
}

impl Index {
    /// Opens or creates the index at `path`.
    pub fn open(path: &Path) -> Result<Self, JobError> {
        let shown = path.display().to_string();
        let exists = path.exists();
        if !exists {
            // Made whole under another name and renamed into place: a run killed while it
            // makes its index leaves no half-written one behind (redb would not read it).
            Self::create_whole(path).map_err(|reason| {
                JobError::new(
                    Code::DISK_HASH_CREATE_ERROR,
                    &[("path", &shown), ("reason", &reason)],
                )
            })?;
        }
        // redb keeps what it reads in its own cache, 1 GiB by default: memory would grow with
        // the number of files. The operating system's page cache holds the file anyway.
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| {
                let code = if exists {
                    Code::DISK_HASH_LOAD_ERROR
                } else {
                    Code::DISK_HASH_CREATE_ERROR
                };
                JobError::new(code, &[("path", &shown), ("reason", &e.to_string())])
            })?;
        let index = Index {
            db,
            path: shown,
            id: NEXT_INDEX.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        // Make sure the tables exist (an index from an older version may lack one), so that
        // readers never meet a missing one.
        create_tables(&index.db).map_err(|e| index.error(Code::DISK_HASH_CREATE_ERROR, &e))?;
        Ok(index)
    }

    /// Makes a new index at `path`, with its tables, in one go: written to `path.new` and
    /// renamed over `path` once complete.
    fn create_whole(path: &Path) -> Result<(), String> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".new");
        let tmp = std::path::PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        {
            let db = Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create(&tmp)
                .map_err(|e| e.to_string())?;
            create_tables(&db).map_err(|e| e.to_string())?;
        }
        std::fs::rename(&tmp, path).map_err(|e| crate::error::reason(&e))?;
        if let Some(dir) = path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// How many files the index holds.
    pub fn len(&self) -> Result<u64, JobError> {
        let count = || -> Result<u64, redb::Error> {
            let txn = self.db.begin_read()?;
            Ok(redb::ReadableTableMetadata::len(&txn.open_table(FILES)?)?)
        };
        count().map_err(|e| self.error(Code::DISK_HASH_LOAD_ERROR, &e))
    }

    /// Whether the index holds no file.
    pub fn is_empty(&self) -> Result<bool, JobError> {
        Ok(self.len()? == 0)
    }

    /// Removes `paths` from the index in one transaction.
    pub fn remove_batch(&self, paths: &[Vec<u8>]) -> Result<(), JobError> {
        let remove = || -> Result<(), redb::Error> {
            let txn = self.db.begin_write()?;
            {
                let mut table = txn.open_table(FILES)?;
                let mut perms = txn.open_table(PERMS)?;
                for rel in paths {
                    table.remove(rel.as_slice())?;
                    perms.remove(rel.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        };
        remove().map_err(|e| self.error(Code::DISKHASH_DELETE_ERROR, &e))
    }

    /// The files `known` holds directly in the folder `dir` (or anywhere below a subfolder of
    /// it) that `names`, the folder's complete and sorted listing at the source, does not hold:
    /// what was deleted at the source since. Entries below a name that may be a folder are left
    /// alone (that folder is compared when it is listed itself); an unreadable folder is never
    /// listed, so nothing below it is ever reported.
    pub fn missing_in(
        &self,
        known: Known,
        dir: &[u8],
        names: &[crate::walk::Child],
    ) -> Result<Vec<Vec<u8>>, JobError> {
        let table = match known {
            Known::Written => FILES,
            Known::Listed => TARGET,
        };
        let scan = || -> Result<Vec<Vec<u8>>, redb::Error> {
            let mut prefix = dir.to_vec();
            if !prefix.is_empty() {
                prefix.push(b'/');
            }
            let txn = self.db.begin_read()?;
            let table = txn.open_table(table)?;
            let mut missing = Vec::new();
            let mut from = prefix.clone();
            'seek: loop {
                for item in table.range(from.as_slice()..)? {
                    let (key, _) = item?;
                    let key = key.value();
                    let Some(rest) = key.strip_prefix(prefix.as_slice()) else {
                        break 'seek;
                    };
                    let (name, below) = match rest.iter().position(|b| *b == b'/') {
                        Some(i) => (&rest[..i], true),
                        None => (rest, false),
                    };
                    let listed = names
                        .binary_search_by(|c| c.name.as_slice().cmp(name))
                        .ok()
                        .map(|i| &names[i]);
                    match (listed, below) {
                        // Still there: a file, or a folder compared on its own.
                        (Some(_), false) => {}
                        (Some(c), true) if c.maybe_dir => {
                            // Skip past everything below it: the next key after `name/...`.
                            from = [prefix.as_slice(), name, b"0"].concat();
                            continue 'seek;
                        }
                        _ => missing.push(key.to_vec()),
                    }
                }
                break;
            }
            Ok(missing)
        };
        scan().map_err(|e| self.error(Code::SYNC_DIFF_CALCULATE_ERROR, &e))
    }

    /// Whether any file has a sanitized name at the target.
    pub fn has_target_names(&self) -> Result<bool, JobError> {
        let any = || -> Result<bool, redb::Error> {
            let txn = self.db.begin_read()?;
            Ok(redb::ReadableTableMetadata::len(&txn.open_table(NAMES)?)? > 0)
        };
        any().map_err(|e| self.error(Code::DISK_HASH_LOAD_ERROR, &e))
    }

    /// Calls `each` with every file of the index in path order, its entry, and its name at
    /// the target when sanitized, until `each` returns false. One read transaction.
    pub fn for_each_file(
        &self,
        mut each: impl FnMut(&[u8], IndexEntry, Option<&[u8]>) -> bool,
    ) -> Result<(), JobError> {
        let mut read = || -> Result<(), redb::Error> {
            let txn = self.db.begin_read()?;
            let files = txn.open_table(FILES)?;
            let names = txn.open_table(NAMES)?;
            let renamed = redb::ReadableTableMetadata::len(&names)? > 0;
            for item in files.iter()? {
                let (k, v) = item?;
                let Some(entry) = IndexEntry::decode(v.value()) else {
                    continue;
                };
                let name = if renamed {
                    names.get(k.value())?.map(|n| n.value().to_vec())
                } else {
                    None
                };
                if !each(k.value(), entry, name.as_deref()) {
                    break;
                }
            }
            Ok(())
        };
        read().map_err(|e| self.error(Code::DISK_HASH_LOAD_ERROR, &e))
    }

    /// The name used at the target for `rel`, when it was sanitized.
    pub fn target_name(&self, rel: &[u8]) -> Result<Option<Vec<u8>>, JobError> {
        let get = || -> Result<Option<Vec<u8>>, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(NAMES)?;
            Ok(table.get(rel)?.map(|v| v.value().to_vec()))
        };
        get().map_err(|e| self.error(Code::DISK_HASH_LOAD_ERROR, &e))
    }

    /// Records that `rel` is written at the target as the first of `choices` no other source
    /// path holds yet, and returns it; a path that already has a name keeps it. One
    /// transaction, so two files racing for one name cannot both get it.
    pub fn claim_target_name(
        &self,
        rel: &[u8],
        choices: &[Vec<u8>],
    ) -> Result<Option<Vec<u8>>, JobError> {
        let claim = || -> Result<Option<Vec<u8>>, redb::Error> {
            let txn = self.db.begin_write()?;
            let chosen = {
                let mut names = txn.open_table(NAMES)?;
                let mut taken = txn.open_table(NAMES_TAKEN)?;
                if let Some(v) = names.get(rel)? {
                    return Ok(Some(v.value().to_vec()));
                }
                let mut chosen = None;
                for choice in choices {
                    let free = taken
                        .get(choice.as_slice())?
                        .is_none_or(|owner| owner.value() == rel);
                    if free {
                        names.insert(rel, choice.as_slice())?;
                        taken.insert(choice.as_slice(), rel)?;
                        chosen = Some(choice.clone());
                        break;
                    }
                }
                chosen
            };
            txn.commit()?;
            Ok(chosen)
        };
        claim().map_err(|e| self.error(Code::MIGRATION_UPDATE_ERROR, &e))
    }

    /// Whether a target name is held by a sanitized source path other than `rel`.
    pub fn name_taken_by_other(&self, target: &[u8], rel: &[u8]) -> Result<bool, JobError> {
        let get = || -> Result<bool, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(NAMES_TAKEN)?;
            Ok(table.get(target)?.is_some_and(|v| v.value() != rel))
        };
        get().map_err(|e| self.error(Code::DISK_HASH_LOAD_ERROR, &e))
    }

    /// Forgets the sanitized name of `rel` (its file is gone).
    pub fn forget_target_name(&self, rel: &[u8]) -> Result<(), JobError> {
        let forget = || -> Result<(), redb::Error> {
            let txn = self.db.begin_write()?;
            {
                let mut names = txn.open_table(NAMES)?;
                let old = names.remove(rel)?.map(|v| v.value().to_vec());
                if let Some(old) = old {
                    txn.open_table(NAMES_TAKEN)?.remove(old.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        };
        forget().map_err(|e| self.error(Code::DISKHASH_DELETE_ERROR, &e))
    }

    /// The entry recorded for `rel`.
    pub fn get(&self, rel: &[u8]) -> Result<Option<IndexEntry>, JobError> {
        self.lookup(FILES, rel)
            .map_err(|e| self.error(Code::DISK_HASH_LOAD_ERROR, &e))
    }

    /// [`get`](Self::get) for the transfer threads of a run: it reuses the thread's read
    /// transaction for several lookups, so it may not see entries written in the last moments.
    /// Only for threads that end with the run (the copy's scoped threads): the transaction,
    /// which keeps the database open, goes with them.
    pub fn get_reusing(&self, rel: &[u8]) -> Result<Option<IndexEntry>, JobError> {
        self.reusing(|r| {
            Ok(r.files
                .get(rel)?
                .and_then(|v| IndexEntry::decode(v.value())))
        })
    }

    /// The fingerprint of the permissions last set at the target for `rel` (`--metadata`),
    /// read as [`get_reusing`](Self::get_reusing) reads.
    pub fn perms_reusing(&self, rel: &[u8]) -> Result<Option<u64>, JobError> {
        self.reusing(|r| Ok(r.perms.get(rel)?.map(|v| v.value())))
    }

    fn reusing<T>(
        &self,
        read: impl FnOnce(&Reader) -> Result<T, redb::Error>,
    ) -> Result<T, JobError> {
        let look = || -> Result<T, redb::Error> {
            READER.with_borrow_mut(|reader| {
                let fresh = !matches!(reader, Some(r) if r.id == self.id && r.left > 0);
                if fresh {
                    *reader = None;
                    let txn = self.db.begin_read()?;
                    *reader = Some(Reader {
                        id: self.id,
                        left: READS_PER_TRANSACTION,
                        files: txn.open_table(FILES)?,
                        perms: txn.open_table(PERMS)?,
                    });
                }
                let r = reader.as_mut().expect("opened above");
                r.left -= 1;
                read(r)
            })
        };
        look().map_err(|e| self.error(Code::DISK_HASH_LOAD_ERROR, &e))
    }

    /// [`perms_reusing`](Self::perms_reusing) with a read of its own, for a thread that
    /// outlives the run.
    pub fn perms_of(&self, rel: &[u8]) -> Result<Option<u64>, JobError> {
        let get = || -> Result<Option<u64>, redb::Error> {
            let txn = self.db.begin_read()?;
            Ok(txn.open_table(PERMS)?.get(rel)?.map(|v| v.value()))
        };
        get().map_err(|e| self.error(Code::DISK_HASH_LOAD_ERROR, &e))
    }

    /// Whether the index holds permissions carried with the data.
    pub fn has_perms(&self) -> Result<bool, JobError> {
        let any = || -> Result<bool, redb::Error> {
            let txn = self.db.begin_read()?;
            Ok(redb::ReadableTableMetadata::len(&txn.open_table(PERMS)?)? > 0)
        };
        any().map_err(|e| self.error(Code::DISK_HASH_LOAD_ERROR, &e))
    }

    /// Records the fingerprints of permissions set (`Some`) or no longer known to be set
    /// (`None`: the file was written again without them), in one transaction.
    pub fn set_perms_batch(&self, prints: &[(Vec<u8>, Option<u64>)]) -> Result<(), JobError> {
        let write = || -> Result<(), redb::Error> {
            let txn = self.db.begin_write()?;
            {
                let mut table = txn.open_table(PERMS)?;
                for (rel, print) in prints {
                    match print {
                        Some(p) => table.insert(rel.as_slice(), p)?,
                        None => table.remove(rel.as_slice())?,
                    };
                }
            }
            txn.commit()?;
            Ok(())
        };
        write().map_err(|e| self.error(Code::MIGRATION_UPDATE_ERROR, &e))
    }

    /// Records `entries` in one transaction.
    pub fn insert_batch(&self, entries: &[(Vec<u8>, IndexEntry)]) -> Result<(), JobError> {
        self.insert_into(FILES, entries)
            .map_err(|e| self.error(Code::MIGRATION_UPDATE_ERROR, &e))
    }

    fn insert_into(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        entries: &[(Vec<u8>, IndexEntry)],
    ) -> Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(table)?;
            for (rel, e) in entries {
                table.insert(rel.as_slice(), e.encode().as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn lookup(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        rel: &[u8],
    ) -> Result<Option<IndexEntry>, redb::Error> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(table)?;
        Ok(table.get(rel)?.and_then(|v| IndexEntry::decode(v.value())))
    }

    /// Empties the target listing, before a new one is recorded.
    pub fn clear_target_listing(&self) -> Result<(), JobError> {
        let clear = || -> Result<(), redb::Error> {
            let txn = self.db.begin_write()?;
            txn.delete_table(TARGET)?;
            txn.open_table(TARGET)?;
            txn.commit()?;
            Ok(())
        };
        clear().map_err(|e| self.error(Code::PFFL_REPORT_PATH_ERROR, &e))
    }

    /// Records entries of the target listing in one transaction.
    pub fn insert_target_listing(&self, entries: &[(Vec<u8>, IndexEntry)]) -> Result<(), JobError> {
        self.insert_into(TARGET, entries)
            .map_err(|e| self.error(Code::PFFL_REPORT_PATH_ERROR, &e))
    }

    /// What the target listing found at `rel`.
    pub fn target_listing(&self, rel: &[u8]) -> Result<Option<IndexEntry>, JobError> {
        self.lookup(TARGET, rel)
            .map_err(|e| self.error(Code::DISK_HASH_LOAD_ERROR, &e))
    }

    fn error(&self, code: Code, e: &redb::Error) -> JobError {
        JobError::new(code, &[("path", &self.path), ("reason", &e.to_string())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        let e = IndexEntry {
            size: 5,
            mtime_ns: -3,
            hash: u128::MAX - 1,
            ino: 7,
        };
        {
            let index = Index::open(&path).unwrap();
            index.insert_batch(&[(b"a/\xffb".to_vec(), e)]).unwrap();
        }
        let index = Index::open(&path).unwrap();
        assert_eq!(index.get(b"a/\xffb").unwrap(), Some(e));
        assert_eq!(index.get(b"a/b").unwrap(), None);
    }

    #[test]
    fn an_index_made_by_a_killed_run_is_never_half_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        // What a run killed while making its index leaves: a part of a file, under the
        // temporary name only.
        std::fs::write(dir.path().join("index.redb.new"), b"half a hea").unwrap();
        let index = Index::open(&path).unwrap();
        assert!(index.is_empty().unwrap());
        assert!(!dir.path().join("index.redb.new").exists());
        drop(index);
        // And it opens again as it is.
        assert!(Index::open(&path).unwrap().is_empty().unwrap());
    }

    #[test]
    fn a_damaged_index_is_2100() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        std::fs::write(
            &path,
            b"this is not a database, just some bytes that are long enough",
        )
        .unwrap();
        let e = Index::open(&path).unwrap_err();
        assert_eq!(e.code, Code::DISK_HASH_LOAD_ERROR);
    }

    fn children(list: &[(&str, bool)]) -> Vec<crate::walk::Child> {
        let mut v: Vec<_> = list
            .iter()
            .map(|(n, d)| crate::walk::Child {
                name: n.as_bytes().to_vec(),
                maybe_dir: *d,
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn missing_in_finds_files_and_whole_folders_gone_from_a_listing() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("index.redb")).unwrap();
        let e = IndexEntry {
            size: 1,
            mtime_ns: 1,
            hash: 0,
            ino: 0,
        };
        let keys = [
            "top.txt",
            "a/keep",
            "a/gone",
            "a/b-x",
            "a/b/deep/1",
            "a/b/2",
            "a/old/x",
            "a/old/y/z",
            "a/file-now-dir/q",
            "ab",
        ];
        let batch: Vec<_> = keys.iter().map(|k| (k.as_bytes().to_vec(), e)).collect();
        index.insert_batch(&batch).unwrap();
        assert_eq!(index.len().unwrap(), keys.len() as u64);

        // "a" now holds keep, b-x, the folder b, and a file where a folder was.
        let names = children(&[
            ("keep", false),
            ("b-x", false),
            ("b", true),
            ("file-now-dir", false),
        ]);
        let mut missing = index.missing_in(Known::Written, b"a", &names).unwrap();
        missing.sort();
        let missing: Vec<String> = missing
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect();
        assert_eq!(
            missing,
            ["a/file-now-dir/q", "a/gone", "a/old/x", "a/old/y/z"]
        );

        // The root: "a" is a folder, "ab" and "top.txt" are gone.
        let names = children(&[("a", true)]);
        let missing = index.missing_in(Known::Written, b"", &names).unwrap();
        assert_eq!(missing, [b"ab".to_vec(), b"top.txt".to_vec()]);

        index.remove_batch(&[b"ab".to_vec()]).unwrap();
        assert_eq!(index.get(b"ab").unwrap(), None);
    }

    #[test]
    fn a_target_name_is_claimed_once() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("index.redb")).unwrap();
        let choices = [b"a_b".to_vec(), b"a_b~1".to_vec()];
        assert_eq!(
            index.claim_target_name(b"a:b", &choices).unwrap(),
            Some(b"a_b".to_vec())
        );
        assert_eq!(
            index.claim_target_name(b"a?b", &choices).unwrap(),
            Some(b"a_b~1".to_vec())
        );
        // Asked again, each keeps its own.
        assert_eq!(
            index.claim_target_name(b"a?b", &choices).unwrap(),
            Some(b"a_b~1".to_vec())
        );
        assert_eq!(index.target_name(b"a:b").unwrap(), Some(b"a_b".to_vec()));
        assert!(index.name_taken_by_other(b"a_b", b"a_b").unwrap());
        index.forget_target_name(b"a:b").unwrap();
        assert!(!index.name_taken_by_other(b"a_b", b"a_b").unwrap());
    }
}

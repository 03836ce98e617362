//! The migration's per-file index: what godwit last wrote and verified at the target, so that
//! later runs skip unchanged files without touching the target. Kept on disk (redb), so memory
//! does not grow with the number of files.

use std::path::Path;

use godwit_codes::Code;
use redb::{Database, ReadableDatabase, TableDefinition};

use crate::error::JobError;

const FILES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("files");
/// What a listing of the target found (`--compare target`), replaced by each such run.
const TARGET: TableDefinition<&[u8], &[u8]> = TableDefinition::new("target-listing");

/// redb's cache for the index; see `Index::open`.
const CACHE_BYTES: usize = 32 << 20;

/// What the index knows of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub size: u64,
    pub mtime_ns: i64,
    /// xxh3-128 of the content when it was computed, else 0.
    pub hash: u128,
}

impl IndexEntry {
    fn encode(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&self.size.to_le_bytes());
        b[8..16].copy_from_slice(&self.mtime_ns.to_le_bytes());
        b[16..].copy_from_slice(&self.hash.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != 32 {
            return None;
        }
        Some(IndexEntry {
            size: u64::from_le_bytes(b[..8].try_into().ok()?),
            mtime_ns: i64::from_le_bytes(b[8..16].try_into().ok()?),
            hash: u128::from_le_bytes(b[16..].try_into().ok()?),
        })
    }
}

/// The index file of one migration.
#[derive(Debug)]
pub struct Index {
    db: Database,
    path: String,
}

impl Index {
    /// Opens or creates the index at `path`.
    pub fn open(path: &Path) -> Result<Self, JobError> {
        let shown = path.display().to_string();
        let exists = path.exists();
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
        let index = Index { db, path: shown };
        // Make sure the table exists, so that readers never meet a missing one.
        index.insert_batch(&[])?;
        Ok(index)
    }

    /// The entry recorded for `rel`.
    pub fn get(&self, rel: &[u8]) -> Result<Option<IndexEntry>, JobError> {
        self.lookup(FILES, rel)
            .map_err(|e| self.error(Code::DISK_HASH_LOAD_ERROR, &e))
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
}

-- A pool migration's index: for each file godwit wrote at the target, its size, time, hash,
-- inode and name there (when not its own), as the work units that wrote it sent it back. A
-- unit run on any agent of the pool starts from its part of it, so a true-up deletes only what
-- godwit wrote, whichever agent wrote it. Paths are their bytes (names need not be UTF-8),
-- so a unit's part is found by ranges of them.
CREATE TABLE pool_index (
    migration_id TEXT NOT NULL,
    path BLOB NOT NULL,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    hash TEXT NOT NULL,
    ino BIGINT NOT NULL,
    target TEXT,
    PRIMARY KEY (migration_id, path)
);

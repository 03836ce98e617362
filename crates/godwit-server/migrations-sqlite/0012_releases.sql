-- Agent releases: a signed godwit binary for one platform, kept in the store itself in pieces of
-- at most a MiB (a table on both databases: one code path, streamed both ways, backed up with
-- the rest of the store). `ready` is 0 while an upload is going on or failed verification.
CREATE TABLE releases (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    platform TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    signature TEXT NOT NULL,
    ready BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (version, platform)
);
CREATE TABLE release_chunks (
    release_id TEXT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (release_id, seq)
);

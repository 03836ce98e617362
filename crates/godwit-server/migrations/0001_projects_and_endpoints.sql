-- Portable SQL: every statement runs on SQLite and on PostgreSQL. Times are milliseconds since
-- the Unix epoch; ids are text.
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    uri TEXT NOT NULL,
    credential_ref TEXT,
    created_ms BIGINT NOT NULL
);

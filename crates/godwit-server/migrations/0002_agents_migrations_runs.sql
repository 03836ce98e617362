-- Agents, migrations, their job runs and schedules. Portable to SQLite and PostgreSQL.
CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    version TEXT NOT NULL,
    -- 900 inactive, 901 active, 902 deactivated, 903 deleted
    state BIGINT NOT NULL,
    -- 1 when the agent accepts scheduled jobs
    scheduling BIGINT NOT NULL,
    last_seen_ms BIGINT,
    created_ms BIGINT NOT NULL
);

CREATE TABLE migrations (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    agent_id TEXT REFERENCES agents (id),
    source_endpoint TEXT NOT NULL REFERENCES endpoints (id),
    source_path TEXT NOT NULL,
    target_endpoint TEXT NOT NULL REFERENCES endpoints (id),
    target_path TEXT NOT NULL,
    -- JSON: filters and options (syncDeletes, sanitize, ...)
    options TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (source_endpoint, source_path, target_endpoint, target_path)
);
CREATE INDEX migrations_by_project ON migrations (project_id);
CREATE INDEX migrations_by_agent ON migrations (agent_id);

CREATE TABLE job_runs (
    id TEXT PRIMARY KEY,
    migration_id TEXT NOT NULL REFERENCES migrations (id),
    command TEXT NOT NULL,
    -- QUEUED RUNNING STOPPING STOPPED PAUSED SUSPENDED SUCCEEDED FAILED
    state TEXT NOT NULL,
    status_code TEXT NOT NULL,
    error_code TEXT,
    -- JSON object of the error's parameters
    error_params TEXT,
    files BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    files_failed BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    started_ms BIGINT,
    ended_ms BIGINT,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX job_runs_by_migration ON job_runs (migration_id, created_ms);
CREATE INDEX job_runs_with_errors ON job_runs (error_code);

CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    migration_id TEXT NOT NULL REFERENCES migrations (id),
    command TEXT NOT NULL,
    frequency TEXT NOT NULL,
    repeat_count BIGINT NOT NULL,
    start_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX schedules_by_migration ON schedules (migration_id);

-- A migration run by a pool of agents: their ids (a JSON list); NULL: run by its one agent.
ALTER TABLE migrations ADD COLUMN pool TEXT;
-- The work units a pool migration's copy is split into, on folder boundaries: each a part of
-- the source (its include rules) that one agent of the pool copies under a lease. The first
-- unit of a run (seq 0, kind 'split') is the walk that finds the others.
CREATE TABLE work_units (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES job_runs (id),
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    include_rules TEXT NOT NULL,
    planned_files BIGINT NOT NULL,
    planned_bytes BIGINT NOT NULL,
    state TEXT NOT NULL,
    holder TEXT,
    leased_ms BIGINT,
    lease_expires_ms BIGINT,
    attempts BIGINT NOT NULL,
    files BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    files_failed BIGINT NOT NULL,
    bytes_per_second DOUBLE PRECISION NOT NULL,
    counts TEXT NOT NULL,
    error TEXT,
    report TEXT,
    updated_ms BIGINT NOT NULL,
    ended_ms BIGINT,
    UNIQUE (run_id, seq)
);
CREATE INDEX work_units_by_holder ON work_units (holder);
CREATE INDEX work_units_by_state ON work_units (state);

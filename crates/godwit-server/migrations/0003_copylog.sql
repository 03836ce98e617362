-- Copy-log records uploaded by agents in pages. `line` is the record's place in the run's log,
-- so a page sent twice (its acknowledgement lost) is stored once.
CREATE TABLE copylog (
    run_id TEXT NOT NULL REFERENCES job_runs (id),
    line BIGINT NOT NULL,
    path TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (run_id, line)
);
CREATE INDEX copylog_by_code ON copylog (run_id, code, line);

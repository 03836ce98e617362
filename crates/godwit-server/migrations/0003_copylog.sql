-- Copy-log records uploaded by agents in pages. A job run may take several attempts (stopped
-- and started again, paused and resumed); `attempt` names the agent's run of each, and `line`
-- is the record's place in that attempt's log, so a page sent twice (its acknowledgement lost)
-- is stored once.
CREATE TABLE copylog (
    run_id TEXT NOT NULL REFERENCES job_runs (id),
    attempt TEXT NOT NULL,
    line BIGINT NOT NULL,
    path TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (run_id, attempt, line)
);
CREATE INDEX copylog_by_code ON copylog (run_id, code, attempt, line);

-- The lists a true-up that paused for review (9080, 9090, 9100) sent: the files it would delete
-- (`deletes`) and the source folders it could not read (`unreadable`), one path a row, as the
-- agent's deletes.txt and unreadable.txt hold them (escaped, one line each). `attempt` is the
-- agent's run that paused; `line` the path's place in its list, so a page sent twice is stored
-- once.
CREATE TABLE review_paths (
    run_id TEXT NOT NULL REFERENCES job_runs (id),
    attempt TEXT NOT NULL,
    list TEXT NOT NULL,
    line BIGINT NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (run_id, attempt, list, line)
);
-- A run's progress over time, for its throughput chart: at most one sample a few seconds, and
-- a bounded number a run (see store/runs.rs).
CREATE TABLE run_samples (
    run_id TEXT NOT NULL REFERENCES job_runs (id),
    at_ms BIGINT NOT NULL,
    files BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    bytes_per_second DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, at_ms)
);
-- What a running command has found to do so far (its walk goes on beside its transfers), as
-- its agent last reported it: the overview's progress bar and time left.
ALTER TABLE job_runs ADD COLUMN files_found BIGINT;
ALTER TABLE job_runs ADD COLUMN bytes_found BIGINT;
-- The overview follows the runs going on and those that just ended: found by state and end.
CREATE INDEX job_runs_by_state ON job_runs (state);
CREATE INDEX job_runs_by_end ON job_runs (ended_ms);

-- Agent upgrades (one record per agent and request, with every step the agent reported) and
-- retirements.
ALTER TABLE agents ADD COLUMN platform TEXT;
-- JSON list of what the agent can be asked besides commands (upgrade, retire)
ALTER TABLE agents ADD COLUMN features TEXT;
-- Retirement: 193 asked, 194 done (it left and stayed away), 195 it came back, 196 timed out
ALTER TABLE agents ADD COLUMN retire_code TEXT;
ALTER TABLE agents ADD COLUMN retire_ms BIGINT;
-- when the agent said it had removed its state and was leaving
ALTER TABLE agents ADD COLUMN retire_left_ms BIGINT;
-- A running command's activity as its agent last reported it, and when it last changed: a run
-- whose agent reports nothing is 697, one that reports but does nothing is 641.
ALTER TABLE job_runs ADD COLUMN activity BIGINT;
ALTER TABLE job_runs ADD COLUMN active_ms BIGINT;
CREATE TABLE upgrades (
    id TEXT PRIMARY KEY,
    -- kept without references: an upgrade's record outlives its agent and its release
    agent_id TEXT NOT NULL,
    release_id TEXT NOT NULL,
    from_version TEXT NOT NULL,
    to_version TEXT NOT NULL,
    -- QUEUED (waiting for the agent's commands to end: drain), RUNNING, SUCCEEDED, FAILED
    state TEXT NOT NULL,
    -- 993 while it goes on, 994, 995, 996
    status_code TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    -- JSON list of the agent's steps
    steps TEXT NOT NULL,
    drain BIGINT NOT NULL,
    allow_downgrade BIGINT NOT NULL,
    time_limit_ms BIGINT NOT NULL,
    -- a scheduled upgrade is not sent before this time (NULL: at once)
    start_ms BIGINT,
    created_ms BIGINT NOT NULL,
    sent_ms BIGINT,
    ended_ms BIGINT
);
CREATE INDEX upgrades_by_agent ON upgrades (agent_id, created_ms);
CREATE INDEX upgrades_by_state ON upgrades (state);

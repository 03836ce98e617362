-- Runs of a project's own commands: the simulated scan, on one agent, and the validation, one
-- run on each migration's agent (`request` lists them). The agent's id is kept without a
-- reference: a scan's findings outlive the agent that made them.
CREATE TABLE project_runs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    agent_id TEXT,
    command TEXT NOT NULL,
    -- JSON: what the run was asked (source endpoint and path, limits, the job options it ran
    -- with; for a validation, its migrations' runs)
    request TEXT NOT NULL,
    -- QUEUED RUNNING SUCCEEDED FAILED
    state TEXT NOT NULL,
    status_code TEXT NOT NULL,
    error_code TEXT,
    -- JSON object of the error's parameters
    error_params TEXT,
    files BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    -- JSON: what it found (the simulated scan's totals and proposal, the validation's
    -- findings); NULL until it ends
    report TEXT,
    -- the format of `report` (a report older than this godwit reads is 729)
    format BIGINT NOT NULL,
    -- still going on past this time, the run fails with its time-out code (720, 725)
    deadline_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    started_ms BIGINT,
    ended_ms BIGINT,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX project_runs_by_project ON project_runs (project_id, created_ms);
CREATE INDEX project_runs_by_agent ON project_runs (agent_id, state);

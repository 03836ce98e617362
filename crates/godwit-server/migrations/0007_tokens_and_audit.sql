-- Tokens the control plane issued (never the token itself: its id, who it is for, its role),
-- so they can be listed and revoked; a token whose id is not here is refused. And the audit
-- log: who did what, when, with what outcome. Nothing updates or deletes an audit row.
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    role TEXT NOT NULL,
    agent_id TEXT,
    issued_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    revoked_ms BIGINT,
    revoked_by TEXT
);

CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    subject TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    -- the code of the outcome: an activity (13), a success (HTTP201) or the refusal (HTTP403, 662)
    outcome TEXT NOT NULL,
    -- the HTTP status of the answer; 0 for what the command line did
    status BIGINT NOT NULL
);

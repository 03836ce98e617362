-- Control planes sharing one PostgreSQL database (replicas): each writes its row while it
-- runs, so the others know it is alive. `secret_check` is an HMAC under its token secret:
-- replicas alive at once must sign with the same one.
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    started_ms BIGINT NOT NULL,
    seen_ms BIGINT NOT NULL,
    secret_check TEXT NOT NULL
);
-- Which replica each connected agent's WebSocket is on: a message for the agent created on
-- another replica is relayed there (LISTEN/NOTIFY). The newest connection holds the row.
CREATE TABLE agent_links (
    agent_id TEXT PRIMARY KEY,
    replica_id TEXT NOT NULL,
    since_ms BIGINT NOT NULL
);
-- A relayed message too long for a notification's payload waits here for the replica that
-- delivers it (and is removed by it, or after a minute).
CREATE TABLE relay (
    id TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

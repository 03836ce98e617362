-- A plan's jobs share their source and target and differ in their include rules (`scope`: the
-- rules sorted, one a line; '' for a migration of its whole source path). The scope is part of
-- what makes a migration unique. SQLite cannot drop a table's UNIQUE constraint, so the table is
-- made again, as SQLite documents it: the store runs this with foreign keys off and checks them
-- after.
CREATE TABLE migrations_new (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    agent_id TEXT REFERENCES agents (id),
    source_endpoint TEXT NOT NULL REFERENCES endpoints (id),
    source_path TEXT NOT NULL,
    target_endpoint TEXT NOT NULL REFERENCES endpoints (id),
    target_path TEXT NOT NULL,
    options TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    given_options TEXT,
    scope TEXT NOT NULL DEFAULT ''
);
INSERT INTO migrations_new (id, project_id, agent_id, source_endpoint, source_path,
    target_endpoint, target_path, options, created_ms, given_options)
SELECT id, project_id, agent_id, source_endpoint, source_path, target_endpoint, target_path,
    options, created_ms, given_options FROM migrations;
DROP TABLE migrations;
ALTER TABLE migrations_new RENAME TO migrations;
CREATE INDEX migrations_by_project ON migrations (project_id);
CREATE INDEX migrations_by_agent ON migrations (agent_id);
CREATE UNIQUE INDEX migrations_by_locations
    ON migrations (source_endpoint, source_path, target_endpoint, target_path, scope);

-- The options a run was started with, when its command request changed some of its
-- migration's (JSON of the whole set); NULL: the migration's own.
ALTER TABLE job_runs ADD COLUMN options TEXT;

-- A run's copy log shows one record a path across its attempts (see store/copylog.rs): found
-- by path.
CREATE INDEX copylog_by_path ON copylog (run_id, path, attempt);

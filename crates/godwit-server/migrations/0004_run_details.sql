-- What agents report beyond the counters: the transfer rate and the files per status code
-- (JSON) while a run goes on, and its report (JSON) when it has ended.
ALTER TABLE job_runs ADD COLUMN bytes_per_second DOUBLE PRECISION;
ALTER TABLE job_runs ADD COLUMN counts TEXT;
ALTER TABLE job_runs ADD COLUMN report TEXT;

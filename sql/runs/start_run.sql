-- A run's start: its id, when, and its options (never a key: the caller strips them).
insert into ingest_runs (run_id, started_at, options) values ($run_id, $started_at, $options)

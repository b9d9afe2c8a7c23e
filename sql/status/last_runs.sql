-- The $last_runs newest runs, newest first.
select run_id, strftime(started_at, '%Y-%m-%d %H:%M:%S') as started_at, outcome, loaded, not_found, failed, error
from ingest_runs
order by started_at desc
limit $last_runs

-- The failed ids of the window [$since, $until) waiting for a retry: how many, and when the first is due.
select count(*), min(next_attempt_at)
from ingest_queue
where status = 'failed' and in_id_window(generation_id, first_seen_at, $since, $until)

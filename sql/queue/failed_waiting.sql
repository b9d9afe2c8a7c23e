-- The failed ids of the window [$since, $until) waiting for a retry: how many, and when the first is due
-- (of shard $shard_index of $shard_count; null: all).
select count(*), min(next_attempt_at)
from ingest_queue
where status = 'failed' and in_id_window(generation_id, first_seen_at, $since, $until)
    and in_shard(generation_id, $shard_index, $shard_count)

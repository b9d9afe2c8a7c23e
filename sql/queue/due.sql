-- The queued ids to fetch now, with their status (the rule: sql/macros/is_due.sql). Only ids whose
-- time is in [$since, $until), of shard $shard_index of $shard_count (null: all). Parameters: $now,
-- $give_up, $refresh, $since, $until, $shard_index, $shard_count.
select generation_id, status
from ingest_queue
where is_due(status, next_attempt_at, generation_id, first_seen_at, $now, $give_up, $refresh)
    and in_id_window(generation_id, first_seen_at, $since, $until)
    and in_shard(generation_id, $shard_index, $shard_count)

-- The queued ids to fetch now, with their status: every pending id; failed ids whose retry is due;
-- not_found ids whose re-check is due, until the id is $give_up old (the API's lag is minutes, so an
-- id unknown after that will not appear); loaded ids too with $refresh. Only ids whose time is in
-- [$since, $until), of shard $shard_index of $shard_count (null: all). Parameters: $now, $give_up,
-- $refresh, $since, $until, $shard_index, $shard_count.
select generation_id, status
from ingest_queue
where (
        status = 'pending'
        or (status = 'failed' and coalesce(next_attempt_at <= $now, true))
        or (status = 'not_found' and coalesce(next_attempt_at <= $now, true)
            and queue_id_time(generation_id, first_seen_at) > $now - $give_up)
        or (status = 'loaded' and $refresh)
    )
    and in_id_window(generation_id, first_seen_at, $since, $until)
    and in_shard(generation_id, $shard_index, $shard_count)

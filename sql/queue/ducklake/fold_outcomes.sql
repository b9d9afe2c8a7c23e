-- Each id's newest outcome written into ingest_queue_base (by every writer opening the lake, and by
-- `orusage maintain`), so the ingest_queue view reads few outcomes: the outcomes of the ids of
-- shard $shard_index of $shard_count (sql/macros/in_shard.sql), a share small enough to hold. The
-- caller then deletes those outcomes, in the same transaction.
update ingest_queue_base set
    status = newest.status,
    attempts = newest.attempts,
    last_http_status = newest.last_http_status,
    last_error = newest.last_error,
    next_attempt_at = newest.next_attempt_at,
    updated_at = newest.updated_at
from (
    select * from ingest_queue_outcomes
    where in_shard(generation_id, $shard_index, $shard_count)
    qualify row_number() over (partition by generation_id order by updated_at desc) = 1
) as newest
where ingest_queue_base.generation_id = newest.generation_id

-- The lake's staging (sql/queue/stage_unqueued.sql on the file): the ids found in the logs that are
-- not queued yet, appended to ingest_queue_base as pending; only those of shard $shard_index of
-- $shard_count (null: all). Appending only, so it never conflicts with another worker's batches.
insert into ingest_queue_base (generation_id, first_seen_at, source, status, attempts, updated_at)
with queued as materialized (
    select generation_id from ingest_queue_base where generation_id in (select generation_id from _orusage_staged)
)
select generation_id, $seen_at, source, 'pending', 0, $seen_at
from _orusage_staged
where generation_id not in (select generation_id from queued)
    and in_shard(generation_id, $shard_index, $shard_count)

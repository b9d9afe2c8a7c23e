-- The ids found in the logs that are not queued yet, added as pending (first seen $seen_at, with
-- where); only those of shard $shard_index of $shard_count (null: all), so that sharded workers
-- reading the same logs queue each id once. One statement, so finding the queued ids and inserting
-- the others is atomic outside a transaction too; the queue's id column is scanned and the staged
-- ids are held.
insert into ingest_queue (generation_id, first_seen_at, source, status, attempts, updated_at)
with queued as materialized (
    select generation_id from ingest_queue where generation_id in (select generation_id from _orusage_staged)
)
select generation_id, $seen_at, source, 'pending', 0, $seen_at
from _orusage_staged
where generation_id not in (select generation_id from queued)
    and in_shard(generation_id, $shard_index, $shard_count)

-- A batch's queue updates for ids not queued yet (a caller that did not stage them), on the lake:
-- added to ingest_queue_base, first seen $now; their status is the outcome recorded with them.
insert into ingest_queue_base (generation_id, first_seen_at, source, status, attempts, updated_at)
select generation_id, $now, null, 'pending', 0, $now
from _orusage_batch_queue
where generation_id not in (
    select generation_id from ingest_queue_base
    where generation_id in (select generation_id from _orusage_batch_queue)
)

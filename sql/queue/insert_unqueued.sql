-- A batch's queue updates for ids not queued yet (a caller that did not stage them): added, first seen $now.
insert into ingest_queue
    (generation_id, first_seen_at, source, updated_at, status, attempts, last_http_status, last_error, next_attempt_at)
select generation_id, $now, null, $now, status, attempts, last_http_status, last_error, next_attempt_at
from _orusage_batch_queue
where generation_id not in (select generation_id from _orusage_batch_queued)

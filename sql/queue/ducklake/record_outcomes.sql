-- A batch's queue updates on the lake: appended to ingest_queue_outcomes (the ingest_queue view
-- gives each id its newest), never updated in place (see sql/schema/ducklake/006).
insert into ingest_queue_outcomes
    (generation_id, status, attempts, last_http_status, last_error, next_attempt_at, updated_at)
select generation_id, status, attempts, last_http_status, last_error, next_attempt_at, $now
from _orusage_batch_queue

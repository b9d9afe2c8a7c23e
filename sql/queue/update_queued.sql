-- A batch's queue updates, applied to the ids already queued (found by find_queued), joined on rowid.
update ingest_queue set
    status = batch.status,
    attempts = batch.attempts,
    last_http_status = batch.last_http_status,
    last_error = batch.last_error,
    next_attempt_at = batch.next_attempt_at,
    updated_at = $now
from (
    select batch.*, queued.stored_rowid
    from _orusage_batch_queue as batch join _orusage_batch_queued as queued using (generation_id)
) as batch
where ingest_queue.rowid = batch.stored_rowid

-- `orusage maintain` on a lake: each id's newest outcome written into ingest_queue_base, so the
-- ingest_queue view reads few outcomes. The caller then empties ingest_queue_outcomes, in the same
-- transaction.
update ingest_queue_base set
    status = newest.status,
    attempts = newest.attempts,
    last_http_status = newest.last_http_status,
    last_error = newest.last_error,
    next_attempt_at = newest.next_attempt_at,
    updated_at = newest.updated_at
from (
    select * from ingest_queue_outcomes
    qualify row_number() over (partition by generation_id order by updated_at desc) = 1
) as newest
where ingest_queue_base.generation_id = newest.generation_id

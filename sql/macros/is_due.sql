-- Whether a queued id is to be fetched now (sql/queue/due.sql, on both backends): every pending id;
-- a failed one whose retry is due; a not_found one whose re-check is due, until the id is _give_up
-- old (the API's lag is minutes, so an id unknown after that will not appear); a loaded one only
-- with _refresh.
create or replace macro is_due(_status, _next_attempt_at, _generation_id, _first_seen_at, _now, _give_up, _refresh) as
    _status = 'pending'
    or (_status = 'failed' and coalesce(_next_attempt_at <= _now, true))
    or (_status = 'not_found' and coalesce(_next_attempt_at <= _now, true)
        and queue_id_time(_generation_id, _first_seen_at) > _now - _give_up)
    or (_status = 'loaded' and _refresh)

-- Whether a queued id's time (queue_id_time) is in the half-open window _since <= t < _until; a null bound is open.
create or replace macro in_id_window(_generation_id, _first_seen_at, _since, _until) as
    (_since is null or queue_id_time(_generation_id, _first_seen_at) >= _since)
    and (_until is null or queue_id_time(_generation_id, _first_seen_at) < _until)

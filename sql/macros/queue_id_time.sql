-- When a queued id was made: the unix seconds inside a `gen-<seconds>-...` id, else when the id was first seen.
create or replace macro queue_id_time(_generation_id, _first_seen_at) as
    coalesce(to_timestamp(try_cast(regexp_extract(_generation_id, '^gen-([0-9]{10})-', 1) as bigint)), _first_seen_at)

-- The lake's due ids (sql/queue/due.sql on the file; the same rule, sql/macros/is_due.sql, and the
-- same parameters). The ingest_queue view finds each id's newest outcome among all of them, which
-- held 500 MB for 3,000,000 outcomes not yet folded in by `orusage maintain`; only an id whose base
-- row or one of whose outcomes is not `loaded` can be due (but with $refresh), so the newest
-- outcome is looked for among those ids only.
with candidates as materialized (
    select generation_id from ingest_queue_base where status <> 'loaded' or $refresh
    union
    select generation_id from ingest_queue_outcomes where status <> 'loaded' or $refresh
),
newest as (
    select * from ingest_queue_outcomes
    where generation_id in (select generation_id from candidates)
    qualify row_number() over (partition by generation_id order by updated_at desc) = 1
),
queue as (
    select
        base.generation_id,
        base.first_seen_at,
        coalesce(newest.status, base.status) as status,
        if(newest.generation_id is null, base.next_attempt_at, newest.next_attempt_at) as next_attempt_at
    from ingest_queue_base as base
    left join newest using (generation_id)
    where base.generation_id in (select generation_id from candidates)
)
select generation_id, status
from queue
where is_due(status, next_attempt_at, generation_id, first_seen_at, $now, $give_up, $refresh)
    and in_id_window(generation_id, first_seen_at, $since, $until)
    and in_shard(generation_id, $shard_index, $shard_count)

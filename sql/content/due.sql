-- The loaded generations whose content is not stored yet (`orusage ingest --with-content` /
-- `--content-only`): an id is asked once; one answered "nothing stored" has its row too. Only ids
-- whose time is in [$since, $until), of shard $shard_index of $shard_count (null: all).
select generations.id as generation_id
from generations
where not exists (select 1 from generation_content_rows as content where content.generation_id = generations.id)
    and in_id_window(generations.id, generations.created_at, $since, $until)
    and in_shard(generations.id, $shard_index, $shard_count)
order by generations.created_at

-- Delete stored content (`orusage purge-content`): of generations created before $before (null:
-- any), whose model matches the glob $model (null: any), or every row with $all. A row without its
-- generation (copied alone) goes by when it was fetched. Its parts go with it (purge_parts.sql).
delete from generation_content_rows
where generation_id in (
    select content.generation_id
    from generation_content_rows as content
    left join generations on generations.id = content.generation_id
    where $all
        or (($before is null or coalesce(generations.created_at, content.fetched_at) < $before)
            and ($model is null or generations.model glob $model)
            and ($before is not null or $model is not null))
)

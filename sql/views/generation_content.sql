-- One row per generation whose content was fetched (`ingest --with-content`): generation_content_rows
-- with a big body's fields rebuilt from its parts (sql/schema/007), so every row reads the same.
create or replace view generation_content as

with whole as (

    select generation_id, string_agg(text, '' order by part) as raw
    from generation_content_parts
    group by generation_id

)

select * exclude (stored_in_parts)
from generation_content_rows
where not stored_in_parts

union all by name

select
    rows.* exclude (stored_in_parts, messages, prompt, completion, reasoning, raw),
    case when json_array_length(whole.raw, '$.input.messages') > 0 then
        list_transform(cast(json_extract(whole.raw, '$.input.messages') as json[]), message -> struct_pack(
            role := message->>'role',
            content := case when json_type(message, '$.content') = 'VARCHAR' then message->>'content' end,
            content_parts := case when json_type(message, '$.content') in ('ARRAY', 'OBJECT')
                then json_extract(message, '$.content')::varchar end))
    end as messages,
    nullif(whole.raw->>'$.input.prompt', '') as prompt,
    whole.raw->>'$.output.completion' as completion,
    whole.raw->>'$.output.reasoning' as reasoning,
    whole.raw
from generation_content_rows as rows
join whole on whole.generation_id = rows.generation_id
where rows.stored_in_parts

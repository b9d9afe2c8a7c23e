-- One generation's stored content with its metadata (`orusage content GEN_ID`). Parameter: $generation_id.
select
    content.*,
    generations.model,
    generations.provider_name,
    generations.created_at,
    generations.total_cost as total_cost_usd,
    generations.finish_reason
from generation_content as content
left join generations on generations.id = content.generation_id
where content.generation_id = $generation_id

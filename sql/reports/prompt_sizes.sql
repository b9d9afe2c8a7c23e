-- How big are prompts and completions, by model, and what does a KB of prompt cost? From stored content (needs `ingest --with-content`).
with sized as (

    select
        generations.model,
        content.input_bytes,
        content.output_bytes,
        content.truncated,
        generations.total_cost_usd

    from generations_in_window($since, $until, $model, $provider) as generations
    join generation_content_rows as content on content.generation_id = generations.generation_id  -- sizes only: no parts needed
    where content.content_status = 'stored'

),

by_model as (

    select
        model,

        count(*) as generations,
        avg(input_bytes) as input_bytes_avg,
        quantile_cont(input_bytes, 0.5) as input_bytes_p50,
        quantile_cont(input_bytes, 0.95) as input_bytes_p95,
        max(input_bytes) as input_bytes_max,
        avg(output_bytes) as output_bytes_avg,
        sum(input_bytes) as input_bytes_total,
        sum(total_cost_usd) as total_cost_usd,
        sum(total_cost_usd) / nullif(sum(input_bytes) / 1024, 0) as cost_usd_per_prompt_kb,
        count(*) filter (where truncated) as truncated_bodies,
        row_number() over (order by sum(total_cost_usd) desc, model) as cost_rank

    from sized
    group by model

)

select * exclude (cost_rank)
from by_model
where $top is null or cost_rank <= $top
order by cost_rank

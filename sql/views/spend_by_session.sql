-- Spend per session: what did each session cost, and over what time span?
create or replace view spend_by_session as

with generations as (

    select * from stg_generations
    where session_id is not null

),

spend as (

    select
        session_id,

        count(*) as generations,
        sum(tokens_prompt) as tokens_prompt,
        sum(tokens_completion) as tokens_completion,
        sum(total_cost_usd) as total_cost_usd,

        min(created_at) as first_created_at,
        max(created_at) as last_created_at

    from generations
    group by session_id

)

select * from spend

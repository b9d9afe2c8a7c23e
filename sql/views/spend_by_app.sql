-- Spend per app (app_id, origin, referer): which apps drive the bill?
create or replace view spend_by_app as

with generations as (

    select * from stg_generations

),

spend as (

    select
        app,
        app_id,
        origin,
        http_referer,

        count(*) as generations,
        sum(tokens_prompt) as tokens_prompt,
        sum(tokens_completion) as tokens_completion,
        sum(total_cost_usd) as total_cost_usd

    from generations
    group by all

)

select * from spend

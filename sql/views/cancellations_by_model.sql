-- Cancelled generations by model: how many were cancelled, and what did they cost?
create or replace view cancellations_by_model as

with generations as (

    select * from stg_generations

),

cancellations as (

    select
        model,

        count(*) as generations,
        count(*) filter (where is_cancelled) as cancelled_generations,
        count(*) filter (where is_cancelled) / count(*) as cancelled_rate,
        coalesce(sum(total_cost_usd) filter (where is_cancelled), 0) as cancelled_cost_usd

    from generations
    group by model

)

select * from cancellations

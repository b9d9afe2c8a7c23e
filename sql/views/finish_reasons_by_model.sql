-- Finish reasons and cancellations by model: how do generations end?
create or replace view finish_reasons_by_model as

with generations as (

    select * from stg_generations

),

endings as (

    select
        model,
        finish_reason,

        count(*) as generations,
        count(*) / sum(count(*)) over (partition by model) as model_generations_share,
        count(*) filter (where is_cancelled) as cancelled_generations,
        sum(total_cost_usd) as total_cost_usd

    from generations
    group by model, finish_reason

)

select * from endings

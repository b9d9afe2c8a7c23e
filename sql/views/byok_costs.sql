-- Bring-your-own-key spend by provider and model: OpenRouter's charge (total_cost) vs the provider's (upstream_inference_cost).
create or replace view byok_costs as

with generations as (

    select * from stg_generations
    where is_byok

),

costs as (

    select
        provider_name,
        model,

        count(*) as generations,
        sum(total_cost_usd) as total_cost_usd,
        sum(upstream_inference_cost_usd) as upstream_inference_cost_usd,
        sum(total_cost_usd) + coalesce(sum(upstream_inference_cost_usd), 0) as all_in_cost_usd

    from generations
    group by provider_name, model

)

select * from costs

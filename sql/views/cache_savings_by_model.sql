-- Prompt-cache savings by model and provider: cache reads saved, cache writes cost, the net.
create or replace view cache_savings_by_model as

with generations as (

    select * from stg_generations

),

savings as (

    select
        model,
        provider_name,

        count(*) as generations,
        count(*) filter (where cache_discount_usd > 0) as cache_read_generations,
        count(*) filter (where cache_discount_usd < 0) as cache_write_generations,
        sum(native_tokens_cached) as native_tokens_cached,
        sum(cache_read_savings_usd) as cache_read_savings_usd,
        sum(cache_write_cost_usd) as cache_write_cost_usd,
        coalesce(sum(cache_discount_usd), 0) as net_cache_savings_usd,
        sum(total_cost_usd) as total_cost_usd

    from generations
    group by model, provider_name

)

select * from savings

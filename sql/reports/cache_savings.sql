-- Prompt-cache savings by model or any --by: what cache reads saved, what cache writes cost, and the net.
-- by: model (default), provider, app, user, session, day, week, month
with savings as (

    select
        by_key,

        count(*) as generations,
        count(*) filter (where cache_discount_usd > 0) as cache_read_generations,
        count(*) filter (where cache_discount_usd < 0) as cache_write_generations,
        coalesce(sum(native_tokens_cached), 0) as native_tokens_cached,
        sum(cache_read_savings_usd) as cache_read_savings_usd,
        sum(cache_write_cost_usd) as cache_write_cost_usd,
        coalesce(sum(cache_discount_usd), 0) as net_cache_savings_usd,
        sum(total_cost_usd) as total_cost_usd,
        -- the share of the bill the cache took off: net savings over what it would have cost without
        coalesce(sum(cache_discount_usd), 0)
            / nullif(sum(total_cost_usd) + coalesce(sum(cache_discount_usd), 0), 0) as net_savings_share,
        row_number() over (order by coalesce(sum(cache_discount_usd), 0) desc, by_key) as savings_rank

    from generations_in_window($since, $until, $model, $provider, $by)
    group by by_key

)

select * exclude (savings_rank)
from savings
where $top is null or savings_rank <= $top
order by
    case when $by in ('day', 'week', 'month') then by_key end,
    savings_rank

-- Bring-your-own-key generations by provider or any --by: OpenRouter's charge (total_cost) vs the provider's (upstream_inference_cost).
-- by: provider (default), model, app, user, session, day, week, month
with costs as (

    select
        by_key,

        count(*) as generations,
        count(*) filter (where is_byok) as byok_generations,
        count(*) filter (where is_byok) / count(*) as byok_share,
        sum(total_cost_usd) filter (where is_byok) as byok_total_cost_usd,
        coalesce(sum(upstream_inference_cost_usd) filter (where is_byok), 0) as byok_upstream_inference_cost_usd,
        sum(total_cost_usd) filter (where is_byok)
            + coalesce(sum(upstream_inference_cost_usd) filter (where is_byok), 0) as byok_all_in_cost_usd,
        -- the part of the all-in BYOK cost that went to OpenRouter rather than to the provider
        sum(total_cost_usd) filter (where is_byok)
            / nullif(
                sum(total_cost_usd) filter (where is_byok)
                + coalesce(sum(upstream_inference_cost_usd) filter (where is_byok), 0),
                0
            ) as openrouter_fee_share

    from generations_in_window($since, $until, $model, $provider, $by)
    group by by_key

),

ranked as (

    select
        *,
        row_number() over (order by byok_all_in_cost_usd desc, by_key) as spend_rank

    from costs
    where byok_generations > 0

)

select * exclude (spend_rank)
from ranked
where $top is null or spend_rank <= $top
order by
    case when $by in ('day', 'week', 'month') then by_key end,
    spend_rank

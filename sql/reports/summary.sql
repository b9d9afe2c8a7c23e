-- The window at a glance: generations, spend, tokens, median latency, cache savings, BYOK, fallbacks, cancellations.
with generations as (

    select * from generations_in_window($since, $until, $model, $provider)

),

fallbacks as (

    -- attempts are numbered from 0 without gaps: attempt 0 marks a generation that lists its
    -- attempts, attempt 1 one that fell back
    select
        count(*) filter (where attempt = 0) as generations_with_attempts,
        count(*) filter (where attempt = 1) as fallback_generations

    from stg_provider_responses
    where attempt <= 1
        and generation_id in (select generation_id from generations)

),

totals as (

    select
        min(created_at) as first_created_at,
        max(created_at) as last_created_at,
        count(*) as generations,
        count(distinct model) as models,
        count(distinct provider_name) as providers,
        sum(tokens_prompt) as tokens_prompt,
        sum(tokens_completion) as tokens_completion,
        coalesce(sum(total_cost_usd), 0) as total_cost_usd,
        sum(total_cost_usd) / nullif(count(*), 0) as cost_per_generation_usd,
        quantile_cont(latency_ms, [0.5, 0.99]) as latency_q,
        coalesce(sum(cache_discount_usd), 0) as net_cache_savings_usd,
        count(*) filter (where is_byok) as byok_generations,
        count(*) filter (where is_cancelled) as cancelled_generations

    from generations

)

select
    totals.* exclude (latency_q),
    totals.latency_q[1] as latency_p50_ms,
    totals.latency_q[2] as latency_p99_ms,
    fallbacks.fallback_generations,
    fallbacks.fallback_generations / nullif(fallbacks.generations_with_attempts, 0) as fallback_rate

from totals
cross join fallbacks

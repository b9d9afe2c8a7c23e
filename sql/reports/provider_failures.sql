-- Failure rate of upstream attempts by provider (fallbacks included): how often does each provider fail, and how often with a 429?
-- --provider filters on the provider attempted; --model on the generation's model.
with rates as (

    select
        coalesce(provider_name, '(unknown)') as provider_name,

        count(*) as attempts,
        count(*) filter (where not is_success) as failed_attempts,
        count(*) filter (where not is_success) / count(*) as failure_rate,
        count(*) filter (where status = 429) as rate_limited_attempts,
        count(*) filter (where status is null) as attempts_without_status,
        quantile_cont(latency_ms, 0.5) as latency_p50_ms,
        row_number() over (order by count(*) desc, provider_name) as volume_rank

    from attempts_in_window($since, $until, $model, $provider)
    group by provider_name

)

select * exclude (volume_rank)
from rates
where $top is null or volume_rank <= $top
order by volume_rank

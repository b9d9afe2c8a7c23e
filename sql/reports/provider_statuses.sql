-- Upstream attempts by provider and HTTP status: which statuses make up each provider's failures?
-- --provider filters on the provider attempted; --model on the generation's model.
with by_status as (

    select
        coalesce(provider_name, '(unknown)') as provider_name,
        status,
        is_success,

        count(*) as attempts,
        count(*) / sum(count(*)) over (partition by provider_name) as provider_attempts_share,
        quantile_cont(latency_ms, 0.5) as latency_p50_ms

    from attempts_in_window($since, $until, $model, $provider)
    group by provider_name, status, is_success

),

providers as (

    select
        provider_name,
        row_number() over (order by sum(attempts) desc, provider_name) as provider_rank

    from by_status
    group by provider_name

),

ranked as (

    select
        by_status.*,
        providers.provider_rank

    from by_status
    inner join providers using (provider_name)

)

select * exclude (provider_rank)
from ranked
where $top is null or provider_rank <= $top
order by provider_rank, attempts desc, status

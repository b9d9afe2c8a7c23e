-- Upstream attempts by provider and HTTP status, with each status's share of the provider's attempts.
create or replace view provider_attempts_by_status as

with attempts as (

    select * from stg_provider_responses

),

by_status as (

    select
        provider_name,
        status,
        is_success,

        count(*) as attempts,
        count(*) / sum(count(*)) over (partition by provider_name) as provider_attempts_share,
        quantile_cont(latency_ms, 0.5) as latency_p50_ms

    from attempts
    group by provider_name, status, is_success

)

select * from by_status

-- Failure rate of upstream attempts by provider: how often does each provider fail its attempt?
create or replace view provider_failure_rates as

with attempts as (

    select * from stg_provider_responses

),

rates as (

    select
        provider_name,

        count(*) as attempts,
        count(*) filter (where not is_success) as failed_attempts,
        count(*) filter (where not is_success) / count(*) as failure_rate,
        count(*) filter (where status = 429) as rate_limited_attempts

    from attempts
    group by provider_name

)

select * from rates

-- Latency and generation time percentiles p50 / p90 / p99 in ms (quantile_cont) by provider, model or any --by.
-- by: provider (default), model, app, user, session, day, week, month
with generations as (

    select * from stg_generations
    where created_at >= $since and created_at < $until
        and ($model is null or model glob $model)
        and ($provider is null or provider_name glob $provider)

),

keyed as (

    select
        case $by
            when 'model' then model
            when 'provider' then coalesce(provider_name, '(unknown)')
            when 'app' then coalesce(app, '(none)')
            when 'user' then coalesce(external_user, '(none)')
            when 'session' then coalesce(session_id, '(none)')
            when 'day' then strftime(created_day, '%Y-%m-%d')
            when 'week' then strftime(date_trunc('week', created_day), '%Y-%m-%d')
            when 'month' then strftime(date_trunc('month', created_day), '%Y-%m-%d')
        end as by_key,
        latency_ms,
        generation_time_ms

    from generations

),

percentiles as (

    select
        by_key,

        count(*) as generations,
        quantile_cont(latency_ms, [0.5, 0.9, 0.99]) as latency_q,
        quantile_cont(generation_time_ms, [0.5, 0.9, 0.99]) as generation_time_q

    from keyed
    group by by_key

),

ranked as (

    select
        by_key,
        generations,
        latency_q[1] as latency_p50_ms,
        latency_q[2] as latency_p90_ms,
        latency_q[3] as latency_p99_ms,
        generation_time_q[1] as generation_time_p50_ms,
        generation_time_q[2] as generation_time_p90_ms,
        generation_time_q[3] as generation_time_p99_ms,
        row_number() over (order by generations desc, by_key) as volume_rank

    from percentiles

)

select * exclude (volume_rank)
from ranked
where $top is null or volume_rank <= $top
order by
    case when $by in ('day', 'week', 'month') then by_key end,
    volume_rank

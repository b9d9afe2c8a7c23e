-- Latency and generation time percentiles p50 / p90 / p99 in ms (quantile_cont) by provider, model or any --by.
-- by: provider (default), model, app, user, session, day, week, month
with percentiles as (

    select
        by_key,

        count(*) as generations,
        quantile_cont(latency_ms, [0.5, 0.9, 0.99]) as latency_q,
        quantile_cont(generation_time_ms, [0.5, 0.9, 0.99]) as generation_time_q

    from generations_in_window($since, $until, $model, $provider, $by)
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

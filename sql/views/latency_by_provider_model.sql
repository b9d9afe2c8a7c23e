-- Latency and generation time percentiles (p50, p90, p99, ms; quantile_cont) by provider and model.
create or replace view latency_by_provider_model as

-- quantile_cont interpolates linearly between the two nearest ranks (numpy's default "linear"):
-- p = x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)]), h = (n - 1) * q, x sorted.

with generations as (

    select * from stg_generations

),

percentiles as (

    select
        provider_name,
        model,

        count(*) as generations,
        count(latency_ms) as timed_generations,
        quantile_cont(latency_ms, [0.5, 0.9, 0.99]) as latency_q,
        quantile_cont(generation_time_ms, [0.5, 0.9, 0.99]) as generation_time_q

    from generations
    group by provider_name, model

),

unpacked as (

    select
        provider_name,
        model,
        generations,
        timed_generations,

        latency_q[1] as latency_p50_ms,
        latency_q[2] as latency_p90_ms,
        latency_q[3] as latency_p99_ms,
        generation_time_q[1] as generation_time_p50_ms,
        generation_time_q[2] as generation_time_p90_ms,
        generation_time_q[3] as generation_time_p99_ms

    from percentiles

)

select * from unpacked

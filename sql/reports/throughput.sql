-- Completion tokens per second of generation time by provider, model or any --by (untimed generations left out).
-- by: provider (default), model, app, user, session, day, week, month
with throughput as (

    select
        by_key,

        count(*) as generations,
        count(completion_tokens_per_s) as timed_generations,
        sum(tokens_completion) filter (where completion_tokens_per_s is not null)
            / nullif(sum(generation_time_ms) filter (where completion_tokens_per_s is not null) / 1000.0, 0)
            as completion_tokens_per_s,
        quantile_cont(completion_tokens_per_s, [0.1, 0.5, 0.9]) as per_generation_q,
        row_number() over (order by count(*) desc, by_key) as volume_rank

    from generations_in_window($since, $until, $model, $provider, $by)
    group by by_key

)

select
    by_key,
    generations,
    timed_generations,
    completion_tokens_per_s,
    per_generation_q[1] as completion_tokens_per_s_p10,
    per_generation_q[2] as completion_tokens_per_s_p50,
    per_generation_q[3] as completion_tokens_per_s_p90

from throughput
where $top is null or volume_rank <= $top
order by
    case when $by in ('day', 'week', 'month') then by_key end,
    volume_rank

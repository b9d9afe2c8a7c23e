-- Cancelled generations by model or any --by: how many were cancelled, and what they cost.
-- by: model (default), provider, app, user, session, day, week, month
with cancellations as (

    select
        by_key,

        count(*) as generations,
        count(*) filter (where is_cancelled) as cancelled_generations,
        count(*) filter (where is_cancelled) / count(*) as cancelled_rate,
        coalesce(sum(total_cost_usd) filter (where is_cancelled), 0) as cancelled_cost_usd,
        row_number() over (order by count(*) filter (where is_cancelled) desc, by_key) as cancelled_rank

    from generations_in_window($since, $until, $model, $provider, $by)
    group by by_key

)

select * exclude (cancelled_rank)
from cancellations
where $top is null or cancelled_rank <= $top
order by
    case when $by in ('day', 'week', 'month') then by_key end,
    cancelled_rank

-- How generations end: finish reasons (with cancellations), overall or within each --by group.
-- by: model, provider, app, user, session, day, week, month
with keyed as (

    select
        by_key,
        -- a cancelled generation has no finish reason; say so rather than lump it with the other nulls
        coalesce(finish_reason, case when is_cancelled then '(cancelled)' else '(none)' end) as finish_reason,
        is_cancelled,
        total_cost_usd

    from generations_in_window($since, $until, $model, $provider, $by)

),

endings as (

    select
        by_key,
        finish_reason,

        count(*) as generations,
        count(*) / sum(count(*)) over (partition by by_key) as generations_share,
        count(*) filter (where is_cancelled) as cancelled_generations,
        sum(total_cost_usd) as total_cost_usd

    from keyed
    group by by_key, finish_reason

),

groups as (

    select
        by_key,
        row_number() over (order by sum(generations) desc, by_key) as group_rank

    from endings
    group by by_key

),

ranked as (

    select
        endings.*,
        groups.group_rank

    from endings
    inner join groups on endings.by_key is not distinct from groups.by_key

)

select * exclude (group_rank)
from ranked
where $top is null or group_rank <= $top
order by
    case when $by in ('day', 'week', 'month') then by_key end,
    group_rank,
    generations desc,
    finish_reason

-- Spend by model, provider, app, user, session, day, week or month, with each group's share of the window's spend.
-- by: model (default), provider, app, user, session, day, week, month
with spend as (

    select
        by_key,

        count(*) as generations,
        sum(tokens_prompt) as tokens_prompt,
        sum(tokens_completion) as tokens_completion,
        sum(total_cost_usd) as total_cost_usd,
        sum(total_cost_usd) / count(*) as cost_per_generation_usd,
        sum(total_cost_usd) / nullif(sum(sum(total_cost_usd)) over (), 0) as cost_share,
        row_number() over (order by sum(total_cost_usd) desc, by_key) as spend_rank

    from generations_in_window($since, $until, $model, $provider, $by)
    group by by_key

)

select * exclude (spend_rank)
from spend
where $top is null or spend_rank <= $top
order by
    case when $by in ('day', 'week', 'month') then by_key end,
    spend_rank

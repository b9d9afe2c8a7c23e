-- Spend per UTC day, optionally split by model, provider, app or user (top N series, default 10; the rest as "(other)").
-- by: model, provider, app, user
with daily as (

    select
        created_day as day,
        by_key,

        count(*) as generations,
        sum(tokens_prompt) as tokens_prompt,
        sum(tokens_completion) as tokens_completion,
        sum(total_cost_usd) as total_cost_usd

    from generations_in_window($since, $until, $model, $provider, $by)
    group by all

),

ranked as (

    select
        by_key,
        row_number() over (order by sum(total_cost_usd) desc, by_key) as spend_rank

    from daily
    group by by_key

),

lumped as (

    select
        daily.day,
        case
            when ranked.spend_rank <= coalesce($top, 10) then daily.by_key
            else '(other)'
        end as by_key,

        sum(daily.generations) as generations,
        sum(daily.tokens_prompt) as tokens_prompt,
        sum(daily.tokens_completion) as tokens_completion,
        sum(daily.total_cost_usd) as total_cost_usd,
        min(ranked.spend_rank) as spend_rank

    from daily
    inner join ranked on daily.by_key is not distinct from ranked.by_key
    group by all

)

select
    day,
    by_key,
    generations,
    tokens_prompt,
    tokens_completion,
    total_cost_usd

from lumped
order by day, spend_rank

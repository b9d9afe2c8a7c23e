-- Spend per UTC day, optionally split by model, provider, app or user (top N series, default 10; the rest as "(other)").
-- by: model, provider, app, user
with generations as (

    select * from stg_generations
    where created_at >= $since and created_at < $until
        and ($model is null or model glob $model)
        and ($provider is null or provider_name glob $provider)

),

daily as (

    select
        created_day as day,
        case $by
            when 'model' then model
            when 'provider' then coalesce(provider_name, '(unknown)')
            when 'app' then coalesce(app, '(none)')
            when 'user' then coalesce(external_user, '(none)')
        end as by_key,

        count(*) as generations,
        sum(tokens_prompt) as tokens_prompt,
        sum(tokens_completion) as tokens_completion,
        sum(total_cost_usd) as total_cost_usd

    from generations
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

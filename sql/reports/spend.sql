-- Spend by model, provider, app, user, session, day, week or month, with each group's share of the window's spend.
-- by: model (default), provider, app, user, session, day, week, month
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
        tokens_prompt,
        tokens_completion,
        total_cost_usd

    from generations

),

spend as (

    select
        by_key,

        count(*) as generations,
        sum(tokens_prompt) as tokens_prompt,
        sum(tokens_completion) as tokens_completion,
        sum(total_cost_usd) as total_cost_usd,
        sum(total_cost_usd) / count(*) as cost_per_generation_usd,
        sum(total_cost_usd) / nullif(sum(sum(total_cost_usd)) over (), 0) as cost_share,
        row_number() over (order by sum(total_cost_usd) desc, by_key) as spend_rank

    from keyed
    group by by_key

)

select * exclude (spend_rank)
from spend
where $top is null or spend_rank <= $top
order by
    case when $by in ('day', 'week', 'month') then by_key end,
    spend_rank

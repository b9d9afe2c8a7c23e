-- Cancelled generations by model or any --by: how many were cancelled, and what they cost.
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
        is_cancelled,
        total_cost_usd

    from generations

),

cancellations as (

    select
        by_key,

        count(*) as generations,
        count(*) filter (where is_cancelled) as cancelled_generations,
        count(*) filter (where is_cancelled) / count(*) as cancelled_rate,
        coalesce(sum(total_cost_usd) filter (where is_cancelled), 0) as cancelled_cost_usd,
        row_number() over (order by count(*) filter (where is_cancelled) desc, by_key) as cancelled_rank

    from keyed
    group by by_key

)

select * exclude (cancelled_rank)
from cancellations
where $top is null or cancelled_rank <= $top
order by
    case when $by in ('day', 'week', 'month') then by_key end,
    cancelled_rank

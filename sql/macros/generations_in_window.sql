-- The generations of a report's window (since <= created_at < until), filtered by model and provider globs, each with its --by group.
create or replace macro generations_in_window(_since, _until, _model := null::varchar, _provider := null::varchar, _by := null::varchar) as table

-- What every report starts from. by_key is the group of `_by` as text (a date for day, week and
-- month), null without one. The parameters carry a leading _ so they never shadow a column.

select
    *,
    case _by
        when 'model' then model
        when 'provider' then coalesce(provider_name, '(unknown)')
        when 'app' then coalesce(app, '(none)')
        when 'user' then coalesce(external_user, '(none)')
        when 'session' then coalesce(session_id, '(none)')
        when 'day' then strftime(created_day, '%Y-%m-%d')
        when 'week' then strftime(date_trunc('week', created_day), '%Y-%m-%d')
        when 'month' then strftime(date_trunc('month', created_day), '%Y-%m-%d')
    end as by_key

from stg_generations
where created_at >= _since and created_at < _until
    and (_model is null or model glob _model)
    and (_provider is null or provider_name glob _provider)

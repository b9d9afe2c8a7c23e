-- The upstream attempts (fallbacks included) of a report's window's generations: --model filters the generation, --provider the attempt.
create or replace macro attempts_in_window(_since, _until, _model := null::varchar, _provider := null::varchar) as table

select * from stg_provider_responses
where generation_id in (select generation_id from generations_in_window(_since, _until, _model))
    and (_provider is null or provider_name glob _provider)

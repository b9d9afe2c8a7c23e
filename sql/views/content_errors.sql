-- One row per stored error (from `ingest --with-content`): the error a failed generation returned
-- (error_kind 'returned') and each upstream attempt that failed before it ('previous', attempt 0,
-- 1... in order), with the generation's model, cost and time.
create or replace view content_errors as

with errors as (

    select
        generation_id,
        'returned' as error_kind,
        null::integer as attempt,
        error_provider_name as provider_name,
        error_status as status,
        error_message as message,
        error_raw as raw
    from generation_content_rows  -- the errors are never in parts
    where error_status is not null or error_message is not null or error_provider_name is not null

    union all

    select
        generation_id,
        'previous' as error_kind,
        (attempt - 1)::integer as attempt,
        previous_error.provider_name,
        previous_error.code as status,
        previous_error.message,
        previous_error.raw
    from (
        select
            generation_id,
            unnest(previous_errors) as previous_error,
            generate_subscripts(previous_errors, 1) as attempt
        from generation_content_rows
        where len(previous_errors) > 0
    )

)

select
    errors.*,
    generations.created_at,
    generations.model,
    generations.total_cost as total_cost_usd
from errors
left join generations on generations.id = errors.generation_id

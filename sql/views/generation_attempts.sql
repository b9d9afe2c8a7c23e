-- Upstream attempts per generation: how many, how many failed, and whether it fell back to another attempt.
create or replace view generation_attempts as

-- Only generations whose record lists provider_responses (the API added the field in 2026-02).

with attempts as (

    select * from stg_provider_responses

),

per_generation as (

    select
        generation_id,

        count(*) as attempts,
        count(*) filter (where not is_success) as failed_attempts,
        count(*) > 1 as fell_back,
        arg_min(provider_name, attempt) as first_provider_name,
        arg_max(provider_name, attempt) as final_provider_name,
        arg_max(is_success, attempt) as final_attempt_succeeded

    from attempts
    group by generation_id

)

select * from per_generation

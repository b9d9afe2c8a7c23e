-- Fallbacks by model or any --by: how many generations needed more than one upstream attempt, and how many attempts failed.
-- by: model (default), provider, app, user, session, day, week, month
-- Counts only generations whose record lists provider_responses (the API added the field in 2026-02);
-- --provider filters on the provider that finally served the generation. Attempts are numbered from
-- 0 without gaps, so a generation fell back exactly when it has an attempt 1: counting those rows
-- spares a group-by over every generation id.
with keyed as (

    select
        generation_id,
        by_key

    from generations_in_window($since, $until, $model, $provider, $by)

),

generation_counts as (

    select
        by_key,
        count(*) as generations

    from keyed
    group by by_key

),

attempt_counts as (

    select
        keyed.by_key,

        count(*) filter (where attempts.attempt = 0) as generations_with_attempts,
        count(*) filter (where attempts.attempt = 1) as fallback_generations,
        count(*) as attempts,
        count(*) filter (where not attempts.is_success) as failed_attempts,
        max(attempts.attempt) + 1 as max_attempts

    from stg_provider_responses as attempts
    inner join keyed using (generation_id)
    group by keyed.by_key

),

fallbacks as (

    select
        generation_counts.by_key,
        generation_counts.generations,
        coalesce(attempt_counts.generations_with_attempts, 0) as generations_with_attempts,
        coalesce(attempt_counts.fallback_generations, 0) as fallback_generations,
        attempt_counts.fallback_generations / nullif(attempt_counts.generations_with_attempts, 0) as fallback_rate,
        coalesce(attempt_counts.attempts, 0) as attempts,
        coalesce(attempt_counts.failed_attempts, 0) as failed_attempts,
        attempt_counts.failed_attempts / nullif(attempt_counts.attempts, 0) as attempt_failure_rate,
        attempt_counts.attempts / nullif(attempt_counts.generations_with_attempts, 0) as attempts_per_generation,
        attempt_counts.max_attempts,
        row_number() over (order by generation_counts.generations desc, generation_counts.by_key) as volume_rank

    from generation_counts
    left join attempt_counts on generation_counts.by_key is not distinct from attempt_counts.by_key

)

select * exclude (volume_rank)
from fallbacks
where $top is null or volume_rank <= $top
order by
    case when $by in ('day', 'week', 'month') then by_key end,
    volume_rank

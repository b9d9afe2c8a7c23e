-- Distribution of upstream attempts per generation: how often does routing need a second or third provider?
-- Counts only generations whose record lists provider_responses (the API added the field in 2026-02).
-- Attempts are numbered from 0 without gaps: the generations that reached k attempts are the rows
-- with attempt k - 1, and those with exactly k reached k but not k + 1 (no group-by over ids).
with generations as (

    select * from generations_in_window($since, $until, $model, $provider)

),

reached as (

    select
        attempt + 1 as attempts,
        count(*) as generations_reaching

    from stg_provider_responses
    where generation_id in (select generation_id from generations)
    group by attempt

),

distribution as (

    select
        attempts,
        generations_reaching - coalesce(lead(generations_reaching) over (order by attempts), 0) as generations

    from reached

)

select
    attempts,
    generations,
    generations / sum(generations) over () as generations_share

from distribution
where generations > 0
order by attempts

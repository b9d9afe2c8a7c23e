-- Distribution of upstream attempts per generation: how often does routing fall back?
create or replace view attempts_per_generation as

with per_generation as (

    select * from generation_attempts

),

distribution as (

    select
        attempts,

        count(*) as generations,
        count(*) / sum(count(*)) over () as generations_share

    from per_generation
    group by attempts

)

select * from distribution

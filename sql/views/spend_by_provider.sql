-- Spend per provider: which providers served the spend?
create or replace view spend_by_provider as

with generations as (

    select * from stg_generations

),

spend as (

    select
        provider_name,

        count(*) as generations,
        sum(tokens_prompt) as tokens_prompt,
        sum(tokens_completion) as tokens_completion,
        sum(total_cost_usd) as total_cost_usd

    from generations
    group by all

)

select * from spend

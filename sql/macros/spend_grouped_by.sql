-- Spend (generations, tokens, cost) per group of the named stg_generations columns: what the spend_by_* views share.
create or replace macro spend_grouped_by(_columns) as table

-- `_columns` is a list of column names; they come out in stg_generations' order, before the sums.

with generations as (

    select * from stg_generations

),

spend as (

    select
        columns(_columns),

        count(*) as generations,
        sum(tokens_prompt) as tokens_prompt,
        sum(tokens_completion) as tokens_completion,
        sum(total_cost_usd) as total_cost_usd

    from generations
    group by all

)

select * from spend

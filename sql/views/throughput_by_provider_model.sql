-- Completion tokens per second of generation time by provider and model.
create or replace view throughput_by_provider_model as

-- Only generations with a positive generation time and a completion count have a rate;
-- the aggregate rate is total tokens over total seconds of those same generations.

with generations as (

    select * from stg_generations

),

throughput as (

    select
        provider_name,
        model,

        count(*) as generations,
        count(completion_tokens_per_s) as timed_generations,
        sum(tokens_completion) filter (where completion_tokens_per_s is not null)
            / nullif(sum(generation_time_ms) filter (where completion_tokens_per_s is not null) / 1000.0, 0)
            as completion_tokens_per_s,
        quantile_cont(completion_tokens_per_s, 0.5) as completion_tokens_per_s_p50

    from generations
    group by provider_name, model

)

select * from throughput

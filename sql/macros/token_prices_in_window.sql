-- Cost per million tokens by model over a window: blended, and split into prompt and completion prices by least squares.
create or replace macro token_prices_in_window(_since, _until, _model := null::varchar, _provider := null::varchar) as table

-- The API reports one total per generation, not a prompt and a completion part, so the two prices
-- are the per-token rates that best explain total_cost from the two native token counts (the
-- provider's own counts, the ones billed), without intercept: the 2x2 normal equations, solved in
-- closed form. Null when the two counts never vary independently. Effective prices: cache reads
-- and writes included; BYOK generations left out (their total_cost is OpenRouter's fee, not the
-- price of the tokens: see byok_costs).

with generations as (

    select * from generations_in_window(_since, _until, _model, _provider)
    where not is_byok
        and native_tokens_prompt is not null
        and native_tokens_completion is not null

),

sums as (

    select
        model,

        count(*) as generations,
        sum(native_tokens_prompt) as native_tokens_prompt,
        sum(native_tokens_completion) as native_tokens_completion,
        sum(total_cost_usd) as total_cost_usd,

        sum(native_tokens_prompt::double * native_tokens_prompt) as s_pp,
        sum(native_tokens_prompt::double * native_tokens_completion) as s_pc,
        sum(native_tokens_completion::double * native_tokens_completion) as s_cc,
        sum(native_tokens_prompt * total_cost_usd) as s_py,
        sum(native_tokens_completion * total_cost_usd) as s_cy

    from generations
    group by model

),

prices as (

    select
        model,
        generations,
        native_tokens_prompt,
        native_tokens_completion,
        total_cost_usd,

        total_cost_usd * 1e6 / nullif(native_tokens_prompt + native_tokens_completion, 0)
            as usd_per_million_tokens,

        case when s_pp * s_cc - s_pc * s_pc > 1e-9 * s_pp * s_cc
            then (s_py * s_cc - s_cy * s_pc) / (s_pp * s_cc - s_pc * s_pc) * 1e6
        end as usd_per_million_prompt_tokens,

        case when s_pp * s_cc - s_pc * s_pc > 1e-9 * s_pp * s_cc
            then (s_cy * s_pp - s_py * s_pc) / (s_pp * s_cc - s_pc * s_pc) * 1e6
        end as usd_per_million_completion_tokens

    from sums

)

select * from prices

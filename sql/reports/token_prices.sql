-- Cost per million tokens by model: blended, and split into prompt and completion prices by least squares.
-- The API reports one total per generation, so the split prices are the per-token rates that best
-- explain total_cost from the two native token counts (the provider's own counts, the ones billed),
-- without intercept; null when the two counts never vary independently. Effective prices (cache
-- included), BYOK generations left out (their total_cost is a fee); the fit is sql/macros/token_prices_in_window.sql.
with ranked as (

    select
        *,
        row_number() over (order by total_cost_usd desc, model) as spend_rank

    from token_prices_in_window($since, $until, $model, $provider)

)

select * exclude (spend_rank)
from ranked
where $top is null or spend_rank <= $top
order by spend_rank

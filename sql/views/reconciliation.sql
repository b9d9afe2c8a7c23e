-- OpenRouter's bill (activity) against the generations the logs name, per UTC day, model and
-- provider: spend in integer nano-USD (exact sums) and in USD, requests against generations, and
-- the coverage (the share of the billed spend the logged generations account for). A full outer
-- join: billed groups nothing logged matches, and logged ones the bill does not show, are rows too.
-- BYOK: `billed_byok_usd` is /activity's `byok_usage_inference`, the inference the provider billed
-- on the account's own key; `logged_byok_usd` the `upstream_inference_cost` of the generations
-- with `is_byok`. `usage` (what OpenRouter billed, its fee for a BYOK call) is compared with
-- `total_cost`. A bill row without a provider is '(unknown)', like a generation without one.
create or replace view reconciliation as
with billed as (
    select
        date as day,
        model,
        coalesce(provider_name, '(unknown)') as provider,
        sum(round(coalesce(usage, 0) * 1e9)::bigint) as billed_nusd,
        sum(round(coalesce(byok_usage_inference, 0) * 1e9)::bigint) as billed_byok_nusd,
        sum(coalesce(requests, 0)) as billed_requests
    from activity
    group by all
),
logged as (
    select
        created_day as day,
        model,
        coalesce(provider_name, '(unknown)') as provider,
        sum(round(coalesce(total_cost_usd, 0) * 1e9)::bigint) as logged_nusd,
        sum(case when is_byok then round(coalesce(upstream_inference_cost_usd, 0) * 1e9)::bigint else 0 end)
            as logged_byok_nusd,
        count(*) as logged_generations
    from stg_generations
    group by all
)
select
    day,
    model,
    provider,
    coalesce(billed_nusd, 0)::bigint as billed_nusd,
    coalesce(logged_nusd, 0)::bigint as logged_nusd,
    (coalesce(billed_nusd, 0) - coalesce(logged_nusd, 0))::bigint as missing_nusd,
    coalesce(billed_nusd, 0) / 1e9 as billed_usd,
    coalesce(logged_nusd, 0) / 1e9 as logged_usd,
    (coalesce(billed_nusd, 0) - coalesce(logged_nusd, 0)) / 1e9 as missing_usd,
    coalesce(logged_nusd, 0) / nullif(coalesce(billed_nusd, 0), 0) as coverage,
    coalesce(billed_requests, 0)::bigint as billed_requests,
    coalesce(logged_generations, 0)::bigint as logged_generations,
    coalesce(billed_byok_nusd, 0) / 1e9 as billed_byok_usd,
    coalesce(logged_byok_nusd, 0) / 1e9 as logged_byok_usd,
    billed_nusd is not null as billed,
    logged_nusd is not null as logged
from billed
full outer join logged using (day, model, provider)

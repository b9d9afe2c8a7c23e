-- Billed spend (OpenRouter's /activity, stored by `orusage activity`) against the spend of the logged generations, with the coverage.
-- by: day (default), model, provider
select
    case $by
        when 'model' then model
        when 'provider' then provider
        else strftime(day, '%Y-%m-%d')
    end as by_key,
    sum(billed_usd) as billed_usd,
    sum(logged_usd) as logged_usd,
    sum(missing_nusd) / 1e9 as missing_usd,
    sum(logged_nusd) / nullif(sum(billed_nusd), 0) as coverage,
    sum(billed_requests)::bigint as billed_requests,
    sum(logged_generations)::bigint as logged_generations,
    (sum(billed_requests) - sum(logged_generations))::bigint as missing_requests,
    sum(billed_byok_usd) as billed_byok_usd,
    sum(logged_byok_usd) as logged_byok_usd,
    sum(missing_nusd)::bigint as missing_nusd
from reconciliation
where day >= $since_day and day < $until_day
group by by_key
order by case when $by = 'day' then by_key end, missing_nusd desc, by_key

-- The window's totals of the reconciliation view: billed and logged spend (nano-USD, exact), requests and generations.
select
    coalesce(sum(billed_nusd), 0)::bigint as billed_nusd,
    coalesce(sum(logged_nusd), 0)::bigint as logged_nusd,
    coalesce(sum(billed_requests), 0)::bigint as billed_requests,
    coalesce(sum(logged_generations), 0)::bigint as logged_generations
from reconciliation
where day >= $since_day and day < $until_day

-- The window's (day, model) pairs whose logged spend covers less than $min_coverage of the billed, the most missing first.
select
    strftime(day, '%Y-%m-%d') as day,
    model,
    sum(billed_nusd)::bigint as billed_nusd,
    sum(missing_nusd)::bigint as missing_nusd,
    sum(logged_nusd) / sum(billed_nusd) as coverage
from reconciliation
where day >= $since_day and day < $until_day
group by day, model
having sum(billed_nusd) > 0 and sum(logged_nusd) / sum(billed_nusd) < $min_coverage
order by missing_nusd desc, day, model

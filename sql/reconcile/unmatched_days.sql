-- The window's days billed with no logged generation (`billed_only`), and days with logged generations the bill does not show.
select
    strftime(day, '%Y-%m-%d') as day,
    sum(billed_nusd) > 0 and sum(logged_generations) = 0 as billed_only
from reconciliation
where day >= $since_day and day < $until_day
group by day
having (sum(billed_nusd) > 0 or sum(billed_requests) > 0) and sum(logged_generations) = 0
    or sum(logged_generations) > 0 and not bool_or(billed)
order by day

-- What is loaded: how many generations, the first and last created_at (UTC, to the second), and their total cost.
select
    count(*),
    strftime(min(created_at), '%Y-%m-%d %H:%M:%S'),
    strftime(max(created_at), '%Y-%m-%d %H:%M:%S'),
    coalesce(sum(total_cost), 0)
from generations

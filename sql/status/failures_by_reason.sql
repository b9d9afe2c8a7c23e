-- Failed ids by reason (the first $reason_chars characters of the last error), most ids first, with one example id.
select left(coalesce(last_error, '(no message)'), $reason_chars) as reason, count(*) as ids, min(generation_id)
from ingest_queue
where status = 'failed'
group by reason
order by ids desc, reason
limit $top_failures

-- How many queued ids have each status.
select status, count(*) from ingest_queue group by status order by status

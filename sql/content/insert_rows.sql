-- The batch's new rows (see new_ids.sql). Parameters: $fetched_at, $run_id.
insert into generation_content_rows by name
select batch.*, $fetched_at as fetched_at, $run_id as run_id
from _orusage_batch_content as batch
where batch.generation_id in (select generation_id from _orusage_new_content_ids)

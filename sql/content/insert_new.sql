-- A batch's content rows (the temp table _orusage_batch_content) whose id has none stored yet:
-- a generation's content is written once. Parameters: $fetched_at, $run_id.
insert into generation_content by name
select batch.*, $fetched_at as fetched_at, $run_id as run_id
from _orusage_batch_content as batch
where batch.generation_id not in (
    select generation_id from generation_content
    where generation_id in (select generation_id from _orusage_batch_content)
)

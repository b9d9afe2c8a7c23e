-- The (rowid, id) of the queue rows a batch's updates name: the queue's id column is scanned and
-- the batch is the side held in memory. update_queued and insert_unqueued read it.
create or replace temp table _orusage_batch_queued as
select rowid as stored_rowid, generation_id
from ingest_queue
where generation_id in (select generation_id from _orusage_batch_queue)

-- The ids of a content batch (the temp table _orusage_batch_content) that have no content stored:
-- only those are written (a generation's content is written once).
create or replace temp table _orusage_new_content_ids as
select generation_id from _orusage_batch_content
where generation_id not in (
    select generation_id from generation_content_rows
    where generation_id in (select generation_id from _orusage_batch_content)
)

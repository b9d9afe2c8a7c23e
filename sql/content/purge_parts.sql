-- The parts whose row is gone (after purge.sql, in the same transaction).
delete from generation_content_parts
where generation_id not in (select generation_id from generation_content_rows)

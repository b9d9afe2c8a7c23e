-- The parts of the batch's new rows whose body is stored in parts (see new_ids.sql).
insert into generation_content_parts by name
select parts.*
from _orusage_batch_content_parts as parts
where parts.generation_id in (select generation_id from _orusage_new_content_ids)

-- Spend per model: which models cost the most?
create or replace view spend_by_model as

select * from spend_grouped_by(['model'])

-- Spend per UTC day: how much did we spend each day?
create or replace view spend_by_day as

select * from spend_grouped_by(['created_day'])

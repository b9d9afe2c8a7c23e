-- Spend per external user: who drives the bill?
create or replace view spend_by_user as

select * from spend_grouped_by(['external_user'])

-- Spend per provider: which providers served the spend?
create or replace view spend_by_provider as

select * from spend_grouped_by(['provider_name'])

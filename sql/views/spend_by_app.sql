-- Spend per app (app_id, origin, referer): which apps drive the bill?
create or replace view spend_by_app as

-- app first: it is the label; app_id, origin and http_referer are what it was made from.

select app, * exclude (app) from spend_grouped_by(['app', 'app_id', 'origin', 'http_referer'])

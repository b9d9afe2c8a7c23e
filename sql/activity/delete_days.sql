-- The stored rows of the days being fetched again (_orusage_activity): a day is replaced whole.
delete from activity
where date in (select distinct date from _orusage_activity)

-- How many runs were not the demo's (their options lack "demo": true): the demo replaces only a warehouse with none.
select count(*) from ingest_runs where coalesce(json_extract_string(options, '$.demo'), 'false') <> 'true'

-- Drop the state of the files whose path matches the glob $pattern (null: every file), in every
-- scope: their next run reads them whole.
delete from log_sources
where $pattern is null or path glob $pattern

-- The log files tracked, newest seen first: how far each was read, of how much on disk.
select path, scope, read_bytes, read_lines, size_bytes, compression, last_seen_at
from log_sources
order by last_seen_at desc, path

-- The log files a scope's runs have read, and how far (pipeline/log_sources.SourceState's fields).
select path, file_id, size_bytes, modified_ns, compression, head_bytes, head_fingerprint, read_bytes,
    read_lines, tail_fingerprint
from log_sources
where scope = $scope

-- The staged states (_orusage_sources), seen now by run $run_id.
insert into log_sources
select $scope, path, file_id, size_bytes, modified_ns, compression, head_bytes, head_fingerprint,
    read_bytes, read_lines, tail_fingerprint, $seen_at, $run_id
from _orusage_sources

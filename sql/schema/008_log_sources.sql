-- How far each log file was read (pipeline/log_sources.py), so that the next run reads only what is
-- new. `scope` is '' for an unsharded run and 'I/N' for shard I of N, whose runs queue only that
-- shard's ids. One row per (scope, file_id) and per (scope, path): a writer replaces a file's row in
-- the transaction that queues the ids found up to its `read_bytes`. No key is declared (as for the
-- other tables since 006). The same statement on the DuckDB file and on a lake.
create table log_sources (
    scope             varchar not null,
    path              varchar not null,      -- absolute, where the file was last seen
    file_id           varchar not null,      -- device:inode
    size_bytes        bigint not null,       -- on disk, when its reading began
    modified_ns       bigint not null,       -- its mtime then, in ns since the epoch
    compression       varchar not null,      -- text | gzip | zstd | bzip2 | xz
    head_bytes        integer not null,      -- text bytes fingerprinted (fewer for a small file)
    head_fingerprint  varchar not null,      -- BLAKE2b-128 of them, hex
    read_bytes        bigint not null,       -- text offset after the last complete line read
    read_lines        bigint not null,       -- lines before read_bytes
    tail_fingerprint  varchar not null,      -- BLAKE2b-128 of the text's last 1,024 bytes before read_bytes
    last_seen_at      timestamptz not null,
    last_run_id       varchar
);

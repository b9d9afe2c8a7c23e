-- Whether a generation id belongs to shard _shard_index of _shard_count (`orusage ingest --shard i/N`);
-- a null count means every id. The shard is the first 32 bits of the id's MD5, modulo the count:
-- the same in every process, machine and DuckDB version (hash() is not), and even over ids.
create or replace macro in_shard(_generation_id, _shard_index, _shard_count) as
    _shard_count is null
    or ('0x' || left(md5(_generation_id), 8))::bigint % _shard_count = _shard_index

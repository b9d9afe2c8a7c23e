-- generations, provider_responses and ingest_queue lose their PRIMARY KEY declarations; the keys
-- stay keys, kept by the writer (pipeline/warehouse.py: every write finds the stored rows of its
-- batch by a join and inserts only the others, in one transaction, one writing connection at a time).
--
-- Why: DuckDB backs a primary key with an ART index that must sit in memory, and an insert loads
-- the part of it its keys fall in. Inserting 1,000 ids spread over the id range of a 10,000,000-row
-- warehouse loaded 285 MB of generations' index and 285 MB more of provider_responses' (DuckDB's
-- duckdb_memory(), tag ART_INDEX), which no memory limit can evict ("could not allocate block" under
-- 150 MB); a nightly `orusage ingest` of 1,000 ids peaked at 840 MB RSS there against 183 MB into
-- an empty warehouse. Without the indexes a batch's joins hold the batch, not the warehouse.
--
-- DuckDB cannot drop a primary key, so each table is copied: same columns, types, defaults, NOT
-- NULLs and checks, without the key. ingest_queue is declared again (003's columns) because DuckDB
-- cannot add its status CHECK by ALTER; the others get their NOT NULLs back by ALTER. Dropping a
-- table that views read is allowed (DuckDB binds a view when it runs); the views are recreated on
-- every writable open anyway.

create table _generations_006 as select * from generations;
drop table generations;
alter table _generations_006 rename to generations;
alter table generations alter column id set not null;
alter table generations alter column created_at set not null;
alter table generations alter column raw set not null;
alter table generations alter column loaded_at set not null;

create table _provider_responses_006 as select * from provider_responses;
drop table provider_responses;
alter table _provider_responses_006 rename to provider_responses;
alter table provider_responses alter column generation_id set not null;
alter table provider_responses alter column attempt set not null;

create table _ingest_queue_006 (
    generation_id    varchar not null,
    first_seen_at    timestamptz not null,
    source           varchar,
    status           varchar not null default 'pending'
                     check (status in ('pending', 'loaded', 'not_found', 'failed')),
    attempts         integer not null default 0,
    last_http_status integer,
    last_error       varchar,
    next_attempt_at  timestamptz,
    updated_at       timestamptz not null
);
insert into _ingest_queue_006 (generation_id, first_seen_at, source, status, attempts, last_http_status,
                               last_error, next_attempt_at, updated_at)
select generation_id, first_seen_at, source, status, attempts, last_http_status, last_error, next_attempt_at,
       updated_at
from ingest_queue;
drop table ingest_queue;
alter table _ingest_queue_006 rename to ingest_queue;

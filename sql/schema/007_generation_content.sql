-- What the account stored of a generation (`GET /generation/content`), fetched only with
-- `orusage ingest --with-content` / `--content-only`: one row per generation id, written once.
-- Read it through the view `generation_content` (sql/views/), which puts a big body's parts
-- back together: a body over normalize.CONTENT_INLINE_BODY_BYTES keeps only its small fields here
-- (`stored_in_parts`), and its `data` text goes to generation_content_parts in pieces of a few KB.
-- Why: a DuckDB checkpoint rewrites a table's last, partly filled row group whole, and 2,048 rows
-- (the fewest a row group holds) of megabytes made that hundreds of MB (bench/RESULTS.md).
-- `content_status` is `stored`, or `none_stored` when the API answered 200 with nothing (logging
-- off, zero data retention): such an id is not asked again. A body over --max-content-bytes is
-- stored cut (`truncated`: every text field at most that many bytes, `raw` the JSON with them
-- cut); `body_bytes` is its real size. No key is declared (as for the other tables since 006): the writer inserts only the
-- ids it does not find stored. The same statement on the DuckDB file and on a lake.
create table generation_content_rows (
    generation_id         varchar not null,
    content_status        varchar not null,  -- stored | none_stored
    input_kind            varchar,           -- messages | prompt (null: nothing stored)
    messages              struct(role varchar, content varchar, content_parts varchar)[],
    prompt                varchar,
    completion            varchar,
    reasoning             varchar,
    error_status          integer,
    error_message         varchar,
    error_provider_name   varchar,
    error_raw             varchar,
    previous_errors       struct(code integer, message varchar, provider_name varchar, raw varchar)[],
    input_bytes           bigint not null,   -- UTF-8 bytes of the prompt or of the messages' contents
    output_bytes          bigint not null,   -- UTF-8 bytes of the completion and the reasoning
    body_bytes            bigint not null,   -- the whole response body, as received
    truncated             boolean not null,
    fetched_at            timestamptz not null,
    run_id                varchar,
    raw                   varchar,           -- the body's `data`, exactly (null: in parts)
    stored_in_parts       boolean not null
);

-- A big body's `data` text, in order: string_agg(text, '' order by part) is the whole of it.
create table generation_content_parts (
    generation_id         varchar not null,
    part                  integer not null,
    text                  varchar not null
);

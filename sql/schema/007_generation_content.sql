-- What the account stored of a generation (`GET /generation/content`), fetched only with
-- `orusage ingest --with-content` / `--content-only`: one row per generation id, written once.
-- `content_status` is `stored`, or `none_stored` when the API answered 200 with nothing (logging
-- off, zero data retention): such an id is not asked again. A body over --max-content-bytes is
-- stored cut (`truncated`, every text field and `raw` at most that many bytes); `body_bytes` is its
-- real size. No key is declared (as for the other tables since 006): the writer inserts only the
-- ids it does not find stored. The same statement on the DuckDB file and on a lake.
create table generation_content (
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
    raw                   varchar not null   -- the body's `data`, exactly (cut when truncated)
);

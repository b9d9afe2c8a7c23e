-- The schema of migrations 000-006 on a DuckLake, created at once: the same tables and views, with
-- the same columns, types, defaults and NOT NULLs as the DuckDB file's (a query runs unchanged on
-- either), without what DuckLake cannot declare: no PRIMARY KEY (the writer keeps the keys, as on
-- the file since 006) and no CHECK on the queue's status (the writer refuses any other status). A
-- lake records 000-005 as applied with this file.
--
-- One difference, for several writers: `ingest_queue` is a view. DuckLake aborts a commit that
-- inserts into a table another transaction deleted from meanwhile (its conflict check is per table,
-- not per file, so partitioning the tables by shard would not help), and on the file every batch
-- updates (deletes and re-inserts) its ids' queue rows: sharded workers then conflicted on almost
-- every batch (bench/lake.py). So a batch only appends: its outcomes go to ingest_queue_outcomes,
-- and the view gives each id its newest outcome over ingest_queue_base (the staged ids, and the
-- outcomes `orusage maintain` has folded in).

create table if not exists schema_migrations (
    version    integer not null,
    name       varchar not null,
    applied_at timestamptz not null default current_timestamp
);

create table generations (
    id                              varchar not null,
    request_id                      varchar,
    session_id                      varchar,
    upstream_id                     varchar,
    response_cache_source_id        varchar,
    app_id                          bigint,
    preset_id                       varchar,
    workspace_id                    varchar,
    external_user                   varchar,
    created_at                      timestamptz not null,
    model                           varchar,
    provider_name                   varchar,
    router                          varchar,
    api_type                        varchar,
    service_tier                    varchar,
    data_region                     varchar,
    web_search_engine               varchar,
    finish_reason                   varchar,
    native_finish_reason            varchar,
    total_cost                      double,
    usage                           double,
    cache_discount                  double,
    upstream_inference_cost         double,
    latency                         double,
    generation_time                 double,
    moderation_latency              double,
    tokens_prompt                   bigint,
    tokens_completion               bigint,
    native_tokens_prompt            bigint,
    native_tokens_completion        bigint,
    native_tokens_completion_images bigint,
    native_tokens_reasoning         bigint,
    native_tokens_cached            bigint,
    num_media_prompt                bigint,
    num_input_audio_prompt          bigint,
    num_media_completion            bigint,
    num_search_results              bigint,
    num_fetches                     bigint,
    is_byok                         boolean,
    streamed                        boolean,
    cancelled                       boolean,
    origin                          varchar,
    http_referer                    varchar,
    user_agent                      varchar,
    provider_responses              json,
    raw                             varchar not null,
    loaded_at                       timestamptz not null,
    run_id                          varchar
);

create table provider_responses (
    generation_id       varchar not null,
    attempt             integer not null,
    provider_name       varchar,
    status              integer,
    latency             double,
    endpoint_id         varchar,
    model_permaslug     varchar,
    is_byok             boolean,
    routed_service_tier varchar,
    id                  varchar
);

create table ingest_queue_base (
    generation_id    varchar not null,
    first_seen_at    timestamptz not null,
    source           varchar,
    status           varchar not null default 'pending',
    attempts         integer not null default 0,
    last_http_status integer,
    last_error       varchar,
    next_attempt_at  timestamptz,
    updated_at       timestamptz not null
);

create table ingest_runs (
    run_id        varchar not null,
    started_at    timestamptz not null,
    finished_at   timestamptz,
    outcome       varchar,
    error         varchar,
    options       json,
    ids_in_logs   bigint,
    ids_new       bigint,
    ids_due       bigint,
    loaded        bigint,
    not_found     bigint,
    failed        bigint,
    rejected      bigint,
    requests      bigint,
    retries       bigint,
    responses_429 bigint,
    counts        json
);

-- One row per outcome a batch recorded (appended, never updated): the newest per id is its status.
create table ingest_queue_outcomes (
    generation_id    varchar not null,
    status           varchar not null,
    attempts         integer not null,
    last_http_status integer,
    last_error       varchar,
    next_attempt_at  timestamptz,
    updated_at       timestamptz not null
);

create view ingest_queue as
select
    base.generation_id,
    base.first_seen_at,
    base.source,
    coalesce(newest.status, base.status) as status,
    coalesce(newest.attempts, base.attempts) as attempts,
    if(newest.generation_id is null, base.last_http_status, newest.last_http_status) as last_http_status,
    if(newest.generation_id is null, base.last_error, newest.last_error) as last_error,
    if(newest.generation_id is null, base.next_attempt_at, newest.next_attempt_at) as next_attempt_at,
    coalesce(newest.updated_at, base.updated_at) as updated_at
from ingest_queue_base as base
left join (
    select * from ingest_queue_outcomes
    qualify row_number() over (partition by generation_id order by updated_at desc) = 1
) as newest using (generation_id);

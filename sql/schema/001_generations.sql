-- One row per generation id: every field of the API's generation record (GET /generation, schema
-- GenerationResponse, 45 keys) under its own name, plus `raw`, the `data` object exactly as received.
-- Only id and created_at are NOT NULL: older records lack many keys (stored as NULL; all of them
-- stay in `raw`).
--
-- Money is USD as DOUBLE, the number the API sends (exponent form included), not DECIMAL(18,12):
-- a decimal would round sub-1e-12 amounts and cost a cast on every row, while a DOUBLE sum over a
-- million costs is off by ~1e-11 USD (bench/normalize_upsert.py prints the difference against an
-- exact DECIMAL(38,18) sum), nine orders of magnitude below a cent. Round when displaying.
-- latency, generation_time, moderation_latency: milliseconds, DOUBLE (the spec types them
-- number/double; today's values are whole, a fractional one would not be lost).
create table generations (
    -- ids
    id                              varchar primary key,
    request_id                      varchar,
    session_id                      varchar,
    upstream_id                     varchar,
    response_cache_source_id        varchar,
    app_id                          bigint,
    preset_id                       varchar,
    workspace_id                    varchar,
    external_user                   varchar,

    -- timestamps
    created_at                      timestamptz not null,

    -- model and routing (enums are open strings: new values appear all the time)
    model                           varchar,
    provider_name                   varchar,
    router                          varchar,
    api_type                        varchar,
    service_tier                    varchar,
    data_region                     varchar,
    web_search_engine               varchar,
    finish_reason                   varchar,
    native_finish_reason            varchar,

    -- money, USD
    total_cost                      double,
    usage                           double,
    cache_discount                  double,
    upstream_inference_cost         double,

    -- timings, milliseconds
    latency                         double,
    generation_time                 double,
    moderation_latency              double,

    -- tokens
    tokens_prompt                   bigint,
    tokens_completion               bigint,
    native_tokens_prompt            bigint,
    native_tokens_completion        bigint,
    native_tokens_completion_images bigint,
    native_tokens_reasoning         bigint,
    native_tokens_cached            bigint,

    -- counts
    num_media_prompt                bigint,
    num_input_audio_prompt          bigint,
    num_media_completion            bigint,
    num_search_results              bigint,
    num_fetches                     bigint,

    -- flags
    is_byok                         boolean,
    streamed                        boolean,
    cancelled                       boolean,

    -- request origin
    origin                          varchar,
    http_referer                    varchar,
    user_agent                      varchar,

    -- upstream attempts, as received (also exploded, one row per attempt, in provider_responses)
    provider_responses              json,

    -- lineage
    raw                             json not null,  -- VARCHAR since 005_generations_raw_varchar.sql
    loaded_at                       timestamptz not null,
    run_id                          varchar
);

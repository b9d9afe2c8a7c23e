-- OpenRouter's bill (`GET /activity`, a management key; `orusage activity`): one row per UTC day,
-- model and provider endpoint, kept past the API's 30 days. Keyed by (date, endpoint_id, model),
-- not declared (as for the other tables since 006): a day fetched again has its rows replaced, in
-- one transaction. `endpoint_id` is '' for a row without one. `raw` is the row as received, unknown
-- fields included. The same statement on the DuckDB file and on a lake.
create table activity (
    date                  date not null,      -- the UTC day
    model                 varchar not null,
    endpoint_id           varchar not null,
    model_permaslug       varchar,
    provider_name         varchar,
    usage                 double,             -- USD billed by OpenRouter (for BYOK, its fee)
    byok_usage_inference  double,             -- USD of BYOK inference, billed by the provider
    requests              bigint,
    prompt_tokens         bigint,
    completion_tokens     bigint,
    reasoning_tokens      bigint,
    raw                   varchar not null,
    fetched_at            timestamptz not null
);

-- One row per upstream attempt of a generation (fallbacks included), in the order the API lists
-- them: attempt 0 was tried first. A re-fetched generation replaces all of its rows.
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
    id                  varchar,
    primary key (generation_id, attempt)
);

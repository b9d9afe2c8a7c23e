-- One row per ingest run. finished_at and outcome stay NULL for a run that never finished
-- (killed, or still running). options never holds the API key. counts holds every counter the
-- run reported; the common ones are also columns.
create table ingest_runs (
    run_id        varchar primary key,
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

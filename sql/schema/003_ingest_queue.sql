-- One row per generation id ever seen in the logs: the ingest job's only checkpoint.
-- status: pending (never fetched) | loaded | not_found (404 after retries; re-checked until the id
-- is a week old) | failed (retried on the next run). attempts: requests made by the last run that
-- tried the id.
create table ingest_queue (
    generation_id    varchar primary key,
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

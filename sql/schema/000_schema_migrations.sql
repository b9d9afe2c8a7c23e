-- Which numbered migrations this warehouse has; a number above the highest this orusage knows
-- means a newer orusage wrote the file, and this one refuses to open it.
create table if not exists schema_migrations (
    version    integer primary key,
    name       varchar not null,
    applied_at timestamptz not null default current_timestamp
);

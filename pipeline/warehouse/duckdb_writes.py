"""The DuckDB file's writes, on an open connection: the batch upsert, the queue, the runs.

Every batch is ONE transaction (generations, their provider responses, their queue rows and the
run's counters together), so the warehouse is the ingest job's only checkpoint: a process killed
at any moment leaves each batch either wholly written or not at all.

Upsert, by measurement (bench/normalize_upsert.py prints the comparison): the batch's polars
frames are copied into DuckDB temp tables over the Arrow C stream interface (no pyarrow). One
scan of the key column finds which of the batch's rows are stored (_stored_rows, below): those
are compared and updated in place, the others inserted; the stored ids' provider responses are
replaced, and the queue rows are found, updated and inserted the same way (sql/queue/).

The keys (generations.id, provider_responses' (generation_id, attempt), ingest_queue.generation_id)
are kept here, not declared: DuckDB backs a declared key with an ART index that must sit in memory,
and that grew the ingest's memory with the warehouse (840 MB RSS for 1,000 ids into 10 million
rows; sql/schema/006_keys_without_art_indexes.sql). Every write runs in one transaction and inserts
only the keys it did not find stored; a batch must not repeat a key (upsert_batch refuses one that
does), and one connection writes at a time.

A re-fetched record identical to the stored one (same `raw`) is not rewritten: re-applying a
batch changes nothing but `ingest_queue.updated_at`. So `generations.loaded_at` / `run_id` say
when, and by which run, the stored content was written. Telling the two apart reads the stored
rows' typed columns, and `raw` only for the rows equal in all of them (see _API_FIELDS_CHANGED).
"""

from __future__ import annotations

import math
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from itertools import islice
from typing import TypeVar

import duckdb
import orjson
import polars as pl

from pipeline import config
from pipeline.log_sources import SourceState, scope_of
from pipeline.normalize import GENERATION_SCHEMA, PROVIDER_RESPONSE_SCHEMA, NormalizedBatch, NormalizedContent
from pipeline.warehouse.interface import NOT_FOUND_GIVE_UP_AFTER, QUEUE_STATUSES, QueueUpdate
from pipeline.warehouse.sql_files import statement

_T = TypeVar("_T")
Shard = tuple[int, int]  # (index, count): `--shard 2/4` is (1, 4)

READ_OUT_OF_MEMORY_WAIT_S = 30.0
# How a writable connection sets DuckDB up, for rows of ~2 KB (`raw` is most of it). Measured on
# `orusage ingest` of 100,000 ids (bench/ingest_e2e.py's way: peak RSS of the process, from wait4;
# per-batch RSS and duckdb_memory() to see where it went): 780-830 MB before, 440-465 MB with all of
# the below (the process without any DuckDB writes peaks at ~330 MB).
# - At each checkpoint DuckDB rewrites the last, partly filled row group whole, holding 2-3x its
#   data at once: with its default 122,880 rows (~240 MB of `raw`), memory and time per checkpoint
#   grew with the row group's fill, up to ~500 MB. Groups of 16,384 rows bound that to ~50 MB. The
#   size is an ATTACH option (so the file is attached, as DATABASE, to an in-memory connection);
#   it applies to the rows written from then on.
# - Appended rows stay in memory, uncompressed, until the checkpoint that follows this much WAL
#   (CHECKPOINT_AFTER_WAL_MB, run by checkpoint_if_due): at 256 MB (before) that was the whole
#   run. 64 MB (a checkpoint every ~30,000 rows) peaked at 452-454 MB; 16 MB with the checkpoint
#   under the default limit (see checkpoint_if_due) at 425 MB, in 38.1 s against 34.5 s for the
#   100,000 ids (one run each).
# - A memory limit makes DuckDB evict cached blocks and spill appended rows rather than grow.
#   upsert_batch sets it for each batch: MEMORY_LIMIT_MB plus what DuckDB must hold for that
#   batch (_batch_memory_limit_mb); a flat limit small enough to matter failed 50,000-row batches
#   (and would fail other work). Until the first
#   batch, DuckDB's default applies (80% of the RAM).
# - One thread: the ingest already overlaps fetching and writing on its 2 cores, and each DuckDB
#   thread keeps its own allocator caches (peak 408 MB with 1 thread, 451 MB with 2).
# - No vacuum at checkpoints (max_vacuum_tasks = 0). Without key indexes (006) DuckDB's checkpoint
#   may merge the partly filled row groups that earlier checkpoints left, and every third or fourth
#   checkpoint then took 1.4-2.2 s instead of 0.35 s and +150-230 MB (533 MB peak, against 309 MB
#   without vacuum). The price: about one partly filled row group per checkpoint (100,000 rows in
#   11 groups instead of 7), which costs queries little.
# - 32 MB (MEMORY_LIMIT_MB) and batches of 2,500 (ingest.IngestOptions.batch_size) after 006: peak
#   267 MB, against 309 MB with 64 MB and 5,000 (one probe each, same time per id within noise).
# A run killed before a checkpoint replays its WAL on the next open.
DATABASE = "warehouse"
ROW_GROUP_ROWS = 16_384
# The same, for generation_content's rows (a prompt can be megabytes): the smallest DuckDB allows.
CONTENT_ROW_GROUP_ROWS = 2_048
CHECKPOINT_AFTER_WAL_MB = 16
NO_AUTOMATIC_CHECKPOINT = "1TB"
MEMORY_LIMIT_MB = 32
BATCH_MEMORY_FACTOR = 3
THREADS = 1

_SECRET_OPTION = re.compile(r"key|token|secret|password|authorization", re.IGNORECASE)


# --- the batch upsert ------------------------------------------------------------------------

_GENERATION_COLUMNS = (*GENERATION_SCHEMA, "loaded_at", "run_id")
_ATTEMPT_COLUMNS = tuple(PROVIDER_RESPONSE_SCHEMA)
_QUEUE_SCHEMA: dict[str, pl.DataType] = {
    "generation_id": pl.String(),
    "status": pl.String(),
    "attempts": pl.Int32(),
    "last_http_status": pl.Int32(),
    "last_error": pl.String(),
    "next_attempt_at": pl.Datetime("us", "UTC"),
}
# Names the batch frames are registered under, on the connection doing the upsert only.
_BATCH_GENERATIONS = "_orusage_batch_generations"
_BATCH_ATTEMPTS = "_orusage_batch_provider_responses"
_BATCH_QUEUE = "_orusage_batch_queue"


def _generations_source() -> str:
    return f"(select *, $loaded_at::timestamptz as loaded_at, $run_id::varchar as run_id from {_BATCH_GENERATIONS})"


# Stored rows are found by id once per batch, as (rowid, id) pairs in a temp table: a scan of the
# `id` column only. An all-new batch (every nightly run's) is then a plain INSERT, and only the
# batch's stored rows are compared and updated, joined on their rowid. A MERGE joined on `id` (the
# previous choice) read every column it compares (44) of every stored row whose id falls in the
# batch's id range: none when all ids are newer than the stored ones, all of them when the batch
# mixes stored ids with new ones (a --refresh, a not_found id found at last, older logs read after
# newer ones): 0.42 s of such a 5,000-row batch's 0.52 s with 1,245,000 rows stored (DuckDB's
# profile of the statement). A join on rowid reads only the rows it needs when they lie close
# together (DuckDB prunes row groups by the rowids' range); scattered over the table (a --refresh
# of old ids) it reads every row's compared columns, as the MERGE did.
_STORED_ROWID = "stored_rowid"


def _stored_rows(table: str, key: str, batch: str) -> str:
    """The (rowid, key) of `table`'s rows whose key `batch` holds: the table's key column is
    scanned and the batch is the side held in memory (`batch.key not in (select key from table)`
    would hold every stored key in a hash table instead)."""
    return f"select rowid as {_STORED_ROWID}, {key} from {table} where {key} in (select {key} from {batch})"


def _with_stored_rowid(batch: str, stored: str, key: str, extra_columns: str = "") -> str:
    """The batch's rows that are stored, each with its stored row's rowid (`stored` holds
    `_stored_rows`), for an UPDATE joined on rowid."""
    return (f"(select batch.*{extra_columns}, stored.{_STORED_ROWID} "
            f"from {batch} as batch join {stored} as stored using ({key}))")


_BATCH_STORED = "_orusage_batch_stored"
_FIND_STORED_SQL = (
    f"create or replace temp table {_BATCH_STORED} as {_stored_rows('generations', 'id', _BATCH_GENERATIONS)}"
)
_BATCH_WITH_STORED_ROWID = _with_stored_rowid(
    _BATCH_GENERATIONS, _BATCH_STORED, "id", ", $loaded_at::timestamptz as loaded_at, $run_id::varchar as run_id"
)


def _changed(target: str, source: str, columns: Sequence[str]) -> str:
    return " or ".join(f"{target}.{column} is distinct from {source}.{column}" for column in columns)


# A stored row is rewritten only if its record changed: re-applying a batch writes nothing, and a
# refresh rewrites (and re-compresses) only the rows that changed. _UPDATE_CHANGED_SQL asks whether
# any API field differs, which reads the matched rows' narrow typed columns; the rows equal in all
# of them are then compared on `raw` (where unknown keys live) by _RAW_ONLY_SQL, which reads `raw`
# for those rows only. The candidate "merge_raw" compares `raw` for every matched row instead.
_API_COLUMNS = tuple(column for column in GENERATION_SCHEMA if column != "raw")
_API_FIELDS_CHANGED = " or ".join(
    f"generations.{column}{'::varchar' if column == 'provider_responses' else ''} is distinct from batch.{column}"
    for column in _API_COLUMNS
)
_RAW_CHANGED = "generations.raw is distinct from batch.raw"
_RAW_ONLY_SQL = f"""
update generations set raw = batch.raw, loaded_at = batch.loaded_at, run_id = batch.run_id
from {_BATCH_WITH_STORED_ROWID} as batch
where generations.rowid = batch.{_STORED_ROWID} and {_RAW_CHANGED}
"""


_UPDATE_CHANGED_SQL = f"""
update generations set {", ".join(f"{column} = batch.{column}" for column in _GENERATION_COLUMNS if column != "id")}
from {_BATCH_WITH_STORED_ROWID} as batch
where generations.rowid = batch.{_STORED_ROWID} and ({_API_FIELDS_CHANGED})
"""
_INSERT_NEW_SQL = f"""
insert into generations ({", ".join(_GENERATION_COLUMNS)})
select {", ".join(_GENERATION_COLUMNS)} from {_generations_source()}
where id not in (select id from {_BATCH_STORED})
"""


_ATTEMPT_VALUES = [column for column in _ATTEMPT_COLUMNS if column not in ("generation_id", "attempt")]
_STORED_ATTEMPTS = "_orusage_stored_attempts"
_SAME_ATTEMPT = (
    "stored.generation_id = batch.generation_id and stored.attempt = batch.attempt"
    f" and not ({_changed('stored', 'batch', _ATTEMPT_VALUES)})"
)


def _replace_attempts_sql(generation_ids: str) -> str:
    """Make the stored attempts of the ids `generation_ids` (a query) selects equal to the batch's:
    stored attempts that differ from the batch's (or that it lacks) are deleted, and the batch's
    attempts not stored identically are inserted, so an identical re-fetch writes nothing. Those
    ids' stored attempts are copied once into a temp table (found by the generation_id column),
    which the delete and the insert compare with."""
    columns = ", ".join(_ATTEMPT_COLUMNS)
    return f"""
create or replace temp table {_STORED_ATTEMPTS} as
select rowid as {_STORED_ROWID}, * from provider_responses where generation_id in ({generation_ids});
delete from provider_responses where rowid in (
    select {_STORED_ROWID} from {_STORED_ATTEMPTS} as stored
    where not exists (select 1 from {_BATCH_ATTEMPTS} as batch where {_SAME_ATTEMPT})
);
insert into provider_responses ({columns})
select {columns} from {_BATCH_ATTEMPTS} as batch
where generation_id in ({generation_ids})
  and not exists (select 1 from {_STORED_ATTEMPTS} as stored where {_SAME_ATTEMPT});
drop table {_STORED_ATTEMPTS};
"""


# An id not in generations has no attempts stored (an invariant: they are written
# together, in one transaction), so a new id's attempts are a plain insert, and only stored ids can
# have attempts to replace.
_INSERT_NEW_ATTEMPTS_SQL = f"""
insert into provider_responses ({", ".join(_ATTEMPT_COLUMNS)})
select {", ".join(_ATTEMPT_COLUMNS)} from {_BATCH_ATTEMPTS}
where generation_id not in (select id from {_BATCH_STORED})
"""
_REPLACE_STORED_ATTEMPTS_SQL = _replace_attempts_sql(f"select id from {_BATCH_STORED}")

# The queue's rows are found and updated the way generations' are, by the statements in sql/queue/;
# a lake only appends outcomes, which its ingest_queue view resolves (sql/schema/ducklake/006).
QUEUE_UPDATE_STATEMENTS: dict[str, tuple[str, ...]] = {
    "duckdb": ("queue/find_queued", "queue/update_queued", "queue/insert_unqueued"),
    "ducklake": ("queue/insert_unqueued", "queue/record_outcomes"),
}
_BATCH_QUEUED = "_orusage_batch_queued"  # find_queued's table
_STAGED = "_orusage_staged"  # stage_unqueued's
_SOURCES = "_orusage_sources"  # sql/sources/'


class _ArrowStream:
    """Hands a polars frame to DuckDB through the Arrow PyCapsule interface: no copy, and no
    pyarrow needed (`con.register(frame)` itself would call `to_arrow`, which needs pyarrow)."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self._frame = frame

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self._frame.__arrow_c_stream__(requested_schema)


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, frames: dict[str, pl.DataFrame]) -> Iterator[None]:
    """The frames, as temp tables visible to `con`'s statements under these names, for the block only.

    Copied into DuckDB first, by one plain scan of each Arrow stream: scanned in a join, the stream
    itself would get the join's filters pushed into it, and where pyarrow is importable DuckDB runs
    those through pyarrow's compute functions, which have no kernels for polars' string_view
    columns (`ArrowNotImplementedError`). A copy makes every statement run the same way with or
    without pyarrow (bench/normalize_upsert.py --registration measures what it costs)."""
    stream = f"_orusage_stream_{secrets.token_hex(4)}"
    created: list[str] = []
    try:
        for name, frame in frames.items():
            con.register(stream, _ArrowStream(frame))
            try:
                con.execute(f"create or replace temp table {name} as select * from {stream}")
            finally:
                con.unregister(stream)
            created.append(name)
        yield
    finally:
        for name in created:
            try:
                con.execute(f"drop table if exists temp.{name}")
            except duckdb.Error:
                pass  # the transaction failed: its rollback drops the table


def upsert_batch(
    con: duckdb.DuckDBPyConnection,
    batch: NormalizedBatch,
    queue_updates: Sequence[QueueUpdate],
    *,
    run_id: str,
    run_counts: dict[str, int] | None = None,
    dialect: str = "duckdb",
) -> None:
    """Write one batch in ONE transaction: each generation replaces its old row (raw included)
    and all of its provider responses; each queue update replaces that id's status (ids not in
    the queue yet are added); `run_counts` (the run's counters so far, this batch included) go to
    the run's `ingest_runs` row. Either all of it is committed or none of it. `dialect` picks the
    queue's statements (QUEUE_UPDATE_STATEMENTS)."""
    _refuse_repeated_keys(batch)
    now = datetime.now(timezone.utc)
    queue = _queue_frame(queue_updates)
    _under_batch_memory_limit(con, [batch.generations, batch.provider_responses], lambda: _write_batch(
        con, batch, queue, now=now, run_id=run_id, run_counts=run_counts, dialect=dialect))


def _under_batch_memory_limit(con: duckdb.DuckDBPyConnection, frames: Sequence[pl.DataFrame],
                              write: Callable[[], _T]) -> _T:
    """write() (one idempotent transaction) under the batch's memory limit, then a checkpoint if due.

    The limit is there to make DuckDB evict, not to fail a batch (a refresh's in-place updates
    stay in memory until the next checkpoint): one that runs out of memory is written once more
    with DuckDB's default limit, 80% of the RAM (`reset memory_limit` leaves the old one in force)."""
    _set_memory_limit(con, _batch_memory_limit_mb(con, frames))
    try:
        result = write()
    except duckdb.Error as exc:
        if not ran_out_of_memory(exc):
            raise
        _set_memory_limit(con, _default_memory_limit_mb())
        result = write()
    checkpoint_if_due(con)
    return result


def ran_out_of_memory(exc: BaseException) -> bool:
    """DuckDB's OutOfMemoryException, or a commit that failed for want of memory, which it raises as
    a TransactionException ("Failed to commit: failed to allocate data of size 2.0 KiB (95.3
    MiB/32.4 MiB used)": once, under CI, a lake's content batch writing its Parquet files to S3)."""
    return isinstance(exc, duckdb.OutOfMemoryException) or (
        isinstance(exc, duckdb.TransactionException) and "failed to allocate" in str(exc).lower())


def _refuse_repeated_keys(batch: NormalizedBatch) -> None:
    """The writes insert every key they do not find stored, so a key repeated within a batch would
    be stored twice (no declared key stops it: see 006). normalize_bodies keeps one record per id."""
    for frame, key in ((batch.generations, ["id"]), (batch.provider_responses, ["generation_id", "attempt"])):
        if frame.height and frame.select(key).is_duplicated().any():
            repeated = frame.filter(frame.select(key).is_duplicated()).row(0, named=True)
            raise ValueError(f"batch repeats the key {', '.join(f'{k}={repeated[k]!r}' for k in key)}")


def checkpoint_if_due(con: duckdb.DuckDBPyConnection) -> None:
    """Checkpoint once the WAL holds CHECKPOINT_AFTER_WAL_MB, outside any transaction, under
    DuckDB's default memory limit: the one in force outside a batch's statements (see _write_batch).

    Neither a commit nor a checkpoint may run out of memory in DuckDB 1.5.5: before 006 a failed
    commit could leave its ids in a key index (its retry hit a duplicate key), and a failed
    checkpoint invalidates the database ("Checkpoint failed ... The database has been
    invalidated", seen under a 212 MB limit). DuckDB's automatic checkpoint runs inside COMMIT, under whatever
    limit is in force, so writable connections switch it off and run it here instead. Between
    batches the default limit stays, because any statement can fail under a tight one while
    committed rows wait for the checkpoint (even reading the WAL's path did, under 100 MB)."""
    if _wal_mb(con) < CHECKPOINT_AFTER_WAL_MB:
        return
    try:
        con.execute("checkpoint")
    except duckdb.TransactionException:
        pass  # another transaction of this process is running: after the next batch, then


def _wal_mb(con: duckdb.DuckDBPyConnection) -> float:
    (path,) = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchall()[0]
    try:
        return os.stat(f"{path}.wal").st_size / 2**20
    except OSError:
        return 0


def rollback_if_open(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.rollback()
    except duckdb.TransactionException:
        pass  # no transaction is active: a failed commit has already rolled back


def _batch_memory_limit_mb(con: duckdb.DuckDBPyConnection, frames: Sequence[pl.DataFrame]) -> int:
    """MEMORY_LIMIT_MB, plus room for what DuckDB must hold: the batch's rows, and the rows written
    since the last checkpoint (about the size of the WAL; updated rows cannot be evicted)."""
    frames_mb = sum(frame.estimated_size() for frame in frames) / 2**20
    return MEMORY_LIMIT_MB + math.ceil(BATCH_MEMORY_FACTOR * frames_mb + _wal_mb(con))


def _set_memory_limit(con: duckdb.DuckDBPyConnection, limit_mb: int) -> None:
    try:
        con.execute(f"set memory_limit = '{limit_mb}MB'")
    except duckdb.OutOfMemoryException:
        pass  # more than that is pinned (rows waiting for a checkpoint): the current limit stays


def _default_memory_limit_mb() -> int:
    """DuckDB's own default: 80% of the RAM (`reset memory_limit` leaves the old limit in force)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 * 8 // 10


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The block in one transaction: committed at its end, rolled back if it raises."""
    con.begin()
    try:
        yield
        con.commit()
    except BaseException:
        rollback_if_open(con)
        raise


def _write_batch(
    con: duckdb.DuckDBPyConnection, batch: NormalizedBatch, queue: pl.DataFrame, *, now: datetime,
    run_id: str, run_counts: dict[str, int] | None = None, dialect: str = "duckdb",
) -> None:
    with _transaction(con):
        if batch.generations.height:
            write_generations(con, batch, loaded_at=now, run_id=run_id)
        if queue.height:
            with _registered(con, {_BATCH_QUEUE: queue}):
                for name in QUEUE_UPDATE_STATEMENTS[dialect]:
                    sql = statement(name, dialect)
                    con.execute(sql, {"now": now} if "$now" in sql else None)
                con.execute(f"drop table if exists {_BATCH_QUEUED}")  # a rollback drops it too
        if run_counts:
            _update_run_counts(con, run_id, run_counts)
        # Only the statements run under the batch's limit: a commit must not run out of memory
        # (see checkpoint_if_due), and the default limit then stays until the next batch.
        _set_memory_limit(con, _default_memory_limit_mb())


def write_generations(
    con: duckdb.DuckDBPyConnection, batch: NormalizedBatch, *, loaded_at: datetime, run_id: str
) -> None:
    """The batch's generations and provider responses, inside the caller's transaction
    (bench/normalize_upsert.py puts its other candidates here to compare them)."""
    parameters = {"loaded_at": loaded_at, "run_id": run_id}
    with _registered(con, {_BATCH_GENERATIONS: batch.generations, _BATCH_ATTEMPTS: batch.provider_responses}):
        (stored,) = con.execute(_FIND_STORED_SQL).fetchall()[0]
        if stored:
            (changed,) = con.execute(_UPDATE_CHANGED_SQL, parameters).fetchall()[0]
            if changed < stored:
                # Some stored rows are equal in every API field: rewrite those whose `raw` differs.
                con.execute(_RAW_ONLY_SQL, parameters)
            con.execute(_REPLACE_STORED_ATTEMPTS_SQL)
        if stored < batch.generations.height:
            con.execute(_INSERT_NEW_SQL, parameters)
            con.execute(_INSERT_NEW_ATTEMPTS_SQL)
        con.execute(f"drop table {_BATCH_STORED}")  # a rollback drops it too


def _queue_frame(updates: Sequence[QueueUpdate]) -> pl.DataFrame:
    for update in updates:
        if update.status not in QUEUE_STATUSES or update.status == "pending":
            raise ValueError(f"{update.generation_id}: queue status {update.status!r} is not loaded|not_found|failed")
    frame = pl.DataFrame(
        {
            "generation_id": [u.generation_id for u in updates],
            "status": [u.status for u in updates],
            "attempts": [u.attempts for u in updates],
            "last_http_status": [u.last_http_status for u in updates],
            "last_error": [u.last_error for u in updates],
            "next_attempt_at": [u.next_attempt_at for u in updates],
        },
        schema=_QUEUE_SCHEMA,
    )
    if frame.height != frame["generation_id"].n_unique():
        frame = frame.unique("generation_id", keep="last", maintain_order=True)
    return frame


# --- the queue -------------------------------------------------------------------------------


def stage_ids(
    con: duckdb.DuckDBPyConnection,
    found: Iterable[tuple[str, str]],
    *,
    seen_at: datetime,
    chunk_size: int = config.STAGE_CHUNK_IDS,
    shard: Shard | None = None,
    dialect: str = "duckdb",
    sources: Sequence[SourceState] = (),
    run_id: str | None = None,
    in_transaction: bool = False,
) -> int:
    """Add the ids not queued yet as `pending` (with where they were first seen), and record the
    `sources` states (the log files read to their end, all of whose ids are among these or staged
    before), in ONE transaction; returns how many ids were new. Ids already queued, whatever their
    status, are left alone, and so are the ids of other shards than `shard`. `in_transaction`: the
    caller's transaction is open (a dry run's, rolled back), and it is used."""
    new = 0
    items = iter(found)
    with nullcontext() if in_transaction else _transaction(con):
        while chunk := list(islice(items, chunk_size)):
            frame = pl.DataFrame(
                {"generation_id": [generation_id for generation_id, _ in chunk],
                 "source": [source for _, source in chunk]},
                schema={"generation_id": pl.String(), "source": pl.String()},
            )
            frame = frame.unique("generation_id", keep="first", maintain_order=True)
            with _registered(con, {_STAGED: frame}):
                new += con.execute(statement("queue/stage_unqueued", dialect),
                                   {"seen_at": seen_at, **_shard_parameters(shard)}).fetchall()[0][0]
        if sources:
            _record_sources(con, sources, scope=scope_of(shard), seen_at=seen_at, run_id=run_id)
    return new


_SOURCE_SCHEMA = {
    "path": pl.String(), "file_id": pl.String(), "size_bytes": pl.Int64(), "modified_ns": pl.Int64(),
    "compression": pl.String(), "head_bytes": pl.Int32(), "head_fingerprint": pl.String(),
    "read_bytes": pl.Int64(), "read_lines": pl.Int64(), "tail_fingerprint": pl.String(),
}  # fmt: skip


def _record_sources(con: duckdb.DuckDBPyConnection, sources: Sequence[SourceState], *, scope: str,
                    seen_at: datetime, run_id: str | None) -> None:
    """Replace the rows of these files (and of other files last seen at their paths) by their states."""
    frame = pl.DataFrame([{name: getattr(state, name) for name in _SOURCE_SCHEMA} for state in sources],
                         schema=_SOURCE_SCHEMA)
    # The newest state of a file, or of a path, wins: a file read twice in a run (two names for it).
    frame = frame.reverse().unique("file_id", keep="first").unique("path", keep="first")
    with _registered(con, {_SOURCES: frame}):
        con.execute(statement("sources/delete_replaced"), {"scope": scope})
        con.execute(statement("sources/insert"), {"scope": scope, "seen_at": seen_at, "run_id": run_id})


def source_states(con: duckdb.DuckDBPyConnection, *, shard: Shard | None = None) -> list[SourceState]:
    """The log files the runs of `shard`'s scope have read, and how far."""
    return [SourceState(*row) for row in con.execute(statement("sources/states"), {"scope": scope_of(shard)}).fetchall()]


def write_activity(con: duckdb.DuckDBPyConnection, activity: pl.DataFrame) -> int:
    """Replace the stored rows of the days in `activity` (normalize.normalize_activity's frame) by
    its rows, in one transaction; how many rows were written."""
    with _transaction(con), _registered(con, {"_orusage_activity": activity}):
        con.execute(statement("activity/delete_days"))
        con.execute(statement("activity/insert"))
    return activity.height


def forget_sources(con: duckdb.DuckDBPyConnection, pattern: str | None) -> int:
    """Drop the state of the files whose path matches the glob `pattern` (None: all); how many rows."""
    with _transaction(con):
        return con.execute(statement("sources/forget"), {"pattern": pattern}).fetchall()[0][0]


def _shard_parameters(shard: Shard | None) -> dict[str, int | None]:
    """sql/macros/in_shard.sql's parameters: shard (index, count), or None for every id."""
    index, count = shard if shard is not None else (None, None)
    return {"shard_index": index, "shard_count": count}


def _due_parameters(
    now: datetime, refresh: bool, since: datetime | None, until: datetime | None, shard: Shard | None
) -> dict[str, object]:
    # The window of config's time bounds, on the id's whole seconds: an id of second S is in when
    # since <= S < until, as `orusage ids` and the log scan have it.
    return {"now": now, "give_up": NOT_FOUND_GIVE_UP_AFTER, "refresh": refresh, "since": since, "until": until,
            **_shard_parameters(shard)}


def due_counts(
    con: duckdb.DuckDBPyConnection,
    *,
    now: datetime,
    refresh: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    shard: Shard | None = None,
    dialect: str = "duckdb",
) -> dict[str, int]:
    """How many ids due_ids would yield, by status (sql/queue/due.sql)."""
    rows = con.execute(
        f"select status, count(*) from ({statement('queue/due', dialect)}) group by status order by status",
        _due_parameters(now, refresh, since, until, shard),
    ).fetchall()
    return dict(rows)


def snapshot_due(
    con: duckdb.DuckDBPyConnection,
    *,
    now: datetime,
    refresh: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    shard: Shard | None = None,
    dialect: str = "duckdb",
) -> str:
    """Copy the due ids (sql/queue/due.sql), in the order they were queued, into a temp table of
    `con`'s; returns its name. It needs no open file afterwards: read it with due_chunks."""
    return _snapshot_ids(con, statement("queue/due", dialect), _due_parameters(now, refresh, since, until, shard))


def _snapshot_ids(con: duckdb.DuckDBPyConnection, sql: str, parameters: dict[str, object]) -> str:
    """The generation ids `sql` selects, copied into a new temp table of `con`'s; its name."""
    snapshot = f"_orusage_due_{secrets.token_hex(4)}"
    con.execute(f"create temp table {snapshot} as select generation_id from ({sql})", parameters)
    return snapshot


def due_chunks(con: duckdb.DuckDBPyConnection, snapshot: str, *, chunk_size: int = 10_000) -> Iterator[list[str]]:
    """The snapshot's ids, in chunks (one chunk in Python at a time); drops it at the end."""
    try:
        offset = 0
        while True:
            rows = _waiting_out_memory_limits(
                lambda: con.execute(
                    f"select generation_id from temp.{snapshot} where rowid >= ? and rowid < ? order by rowid",
                    [offset, offset + chunk_size],
                ).fetchall()
            )
            if not rows:
                return
            yield [generation_id for (generation_id,) in rows]
            offset += chunk_size
    finally:
        _waiting_out_memory_limits(lambda: con.execute(f"drop table if exists temp.{snapshot}"))


def due_ids(
    con: duckdb.DuckDBPyConnection,
    *,
    now: datetime,
    refresh: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    chunk_size: int = 10_000,
    shard: Shard | None = None,
) -> Iterator[list[str]]:
    """The ids to fetch now (sql/queue/due.sql), in chunks, in the order they were queued, from a
    snapshot taken first: writing batches while iterating changes neither what is yielded nor
    memory use."""
    snapshot = snapshot_due(con, now=now, refresh=refresh, since=since, until=until, shard=shard)
    yield from due_chunks(con, snapshot, chunk_size=chunk_size)


def _waiting_out_memory_limits(read: Callable[[], _T]) -> _T:
    """`read()`, again for up to READ_OUT_OF_MEMORY_WAIT_S while it runs out of memory.

    The ingest reads due ids on its main thread while the writer thread's batch runs under the
    batch's memory limit, which is the whole DuckDB instance's: such a read failed once ("failed to
    pin block", with a 16 MB limit), and so did the commit of the snapshot's drop on a lake ("Failed
    to commit: failed to allocate data", ran_out_of_memory). The limit is lifted when the batch
    commits, so wait for that."""
    deadline = time.monotonic() + READ_OUT_OF_MEMORY_WAIT_S
    while True:
        try:
            return read()
        except duckdb.Error as exc:
            if not ran_out_of_memory(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


# --- copying a warehouse ---------------------------------------------------------------------

# Each table's key: `orusage copy` inserts only the rows whose key the target lacks.
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "generations": ("id",),
    "provider_responses": ("generation_id", "attempt"),
    "ingest_runs": ("run_id",),
    "ingest_queue": ("generation_id",),
    "generation_content_rows": ("generation_id",),
    "generation_content_parts": ("generation_id", "part"),
    "log_sources": ("scope", "file_id"),
    "activity": ("date", "endpoint_id", "model"),
}
_COPY_BATCH = "_orusage_copy_batch"
_COPY_STORED = "_orusage_copy_stored"


# Where a copied table's rows are inserted, where that is not the table itself: a lake's queue.
_COPY_INTO = {"ducklake": {"ingest_queue": "ingest_queue_base"}}


def copy_rows(con: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame, dialect: str = "duckdb") -> int:
    """Insert the rows of `rows` whose key `table` does not hold yet, in one transaction; how many.
    The stored keys are found by a scan of the table's first key column, the batch held in memory."""
    keys = TABLE_KEYS[table]
    into = _COPY_INTO.get(dialect, {}).get(table, table)
    columns = ", ".join(rows.columns)
    same_key = " and ".join(f"stored.{key} = batch.{key}" for key in keys)
    with _transaction(con), _registered(con, {_COPY_BATCH: rows}):
        con.execute(
            f"create or replace temp table {_COPY_STORED} as select {', '.join(keys)} from {table} "
            f"where {keys[0]} in (select {keys[0]} from {_COPY_BATCH})"
        )
        (inserted,) = con.execute(
            f"insert into {into} ({columns}) select {columns} from {_COPY_BATCH} as batch "
            f"where not exists (select 1 from {_COPY_STORED} as stored where {same_key})"
        ).fetchall()[0]
        con.execute(f"drop table {_COPY_STORED}")
    return inserted


# --- content -------------------------------------------------------------------------------

_BATCH_CONTENT = "_orusage_batch_content"  # sql/content/'s tables
_BATCH_CONTENT_PARTS = "_orusage_batch_content_parts"
_CONTENT_INSERTS = ("content/new_ids", "content/insert_rows", "content/insert_parts")


def write_content(con: duckdb.DuckDBPyConnection, content: NormalizedContent, *, run_id: str,
                  run_counts: dict[str, int] | None = None) -> int:
    """A batch of content (normalize.normalize_content: rows, and the parts of the big ones), the
    ids not stored yet, and the run's counters, in ONE transaction; how many rows were new."""
    rows = content.rows
    if rows.height and rows.select("generation_id").is_duplicated().any():
        raise ValueError("content batch repeats a generation id")
    parameters = {"fetched_at": datetime.now(timezone.utc), "run_id": run_id}

    def write() -> int:
        inserted = 0
        with _transaction(con):
            if rows.height:
                with _registered(con, {_BATCH_CONTENT: rows, _BATCH_CONTENT_PARTS: content.parts}):
                    for name in _CONTENT_INSERTS:
                        sql = statement(name)
                        result = con.execute(sql, parameters if "$run_id" in sql else None).fetchall()
                        if name == "content/insert_rows":
                            (inserted,) = result[0]
                    con.execute("drop table if exists _orusage_new_content_ids")  # a rollback drops it too
            if run_counts:
                _update_run_counts(con, run_id, run_counts)
            _set_memory_limit(con, _default_memory_limit_mb())  # see _write_batch
        return inserted

    return _under_batch_memory_limit(con, [rows, content.parts], write)


def snapshot_content_due(con: duckdb.DuckDBPyConnection, *, since: datetime | None = None,
                         until: datetime | None = None, shard: Shard | None = None) -> str:
    """Copy the ids whose content is due (sql/content/due.sql) into a temp table of `con`'s, as
    snapshot_due does; read it with due_chunks."""
    return _snapshot_ids(con, statement("content/due"), {"since": since, "until": until, **_shard_parameters(shard)})


def purge_content(con: duckdb.DuckDBPyConnection, *, before: datetime | None = None, model: str | None = None,
                  everything: bool = False) -> int:
    """Delete content rows (sql/content/purge.sql) in one transaction; how many."""
    if not (everything or before or model):
        raise ValueError("purge what? give a time, a model glob, or everything")
    with _transaction(con):
        (deleted,) = con.execute(statement("content/purge"),
                                 {"all": everything, "before": before, "model": model}).fetchall()[0]
        con.execute(statement("content/purge_parts"))
    return deleted


# --- runs ------------------------------------------------------------------------------------

_RUN_COUNT_COLUMNS = (
    "ids_in_logs", "ids_new", "ids_due", "loaded", "not_found", "failed", "rejected", "requests",
    "retries", "responses_429",
)  # fmt: skip


def start_run(con: duckdb.DuckDBPyConnection, *, options: dict) -> str:
    """Record a run's start; returns its id (sortable: UTC start time, then random)."""
    started_at = datetime.now(timezone.utc)
    run_id = f"{started_at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    con.execute(
        statement("runs/start_run"),
        {"run_id": run_id, "started_at": started_at, "options": _json(_without_secrets(options))},
    )
    return run_id


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, *, counts: dict, outcome: str) -> None:
    """Record a run's end: its outcome, its counters (the usual ones as columns, all in `counts`)
    and its error, if `counts` has one."""
    columns = ", ".join(f"{name} = ${name}" for name in _RUN_COUNT_COLUMNS)
    parameters = {name: _count(counts.get(name)) for name in _RUN_COUNT_COLUMNS}
    error = counts.get("error")
    con.execute(
        f"update ingest_runs set finished_at = $finished_at, outcome = $outcome, error = $error, "
        f"counts = $counts, {columns} where run_id = $run_id",
        {
            **parameters,
            "finished_at": datetime.now(timezone.utc),
            "outcome": outcome,
            "error": None if error is None else str(error),
            "counts": _json(_without_secrets(counts)),
            "run_id": run_id,
        },
    )


def _update_run_counts(con: duckdb.DuckDBPyConnection, run_id: str, counts: dict[str, int]) -> None:
    names = [name for name in _RUN_COUNT_COLUMNS if name in counts]
    con.execute(
        f"update ingest_runs set {', '.join(f'{name} = ${name}' for name in names)} where run_id = $run_id",
        {**{name: _count(counts[name]) for name in names}, "run_id": run_id},
    )


def failed_waiting(
    con: duckdb.DuckDBPyConnection, *, since: datetime | None = None, until: datetime | None = None,
    shard: Shard | None = None,
) -> tuple[int, datetime | None]:
    """How many ids of the window (and shard) are `failed` (waiting for a retry), and when the first is due."""
    count, first_due = con.execute(
        statement("queue/failed_waiting"), {"since": since, "until": until, **_shard_parameters(shard)}
    ).fetchall()[0]
    return count, first_due


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _without_secrets(value: object) -> object:
    """Options and counts as stored: never a key, whatever a caller passes."""
    if isinstance(value, dict):
        return {
            key: _without_secrets(item)
            for key, item in value.items()
            if not (isinstance(key, str) and _SECRET_OPTION.search(key))
        }
    if isinstance(value, (list, tuple)):
        return [_without_secrets(item) for item in value]
    if isinstance(value, str) and value.startswith("sk-or-"):
        return "[redacted]"
    if isinstance(value, str) and not value.isascii():  # a path that is not UTF-8: \x escapes
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def _json(value: object) -> str:
    return orjson.dumps(value, default=str).decode()


"""DuckLake: the warehouse for several writers. Its catalog is a PostgreSQL database (writers on
several machines) or a SQLite file (several processes of one machine); its data are Parquet files
under a folder or an S3 prefix, given once when the lake is created (`data_path`), found in the
catalog afterwards.

A writer is an in-memory DuckDB with the lake attached: every batch is one DuckLake transaction
(one snapshot), through the same writes as the DuckDB file (duckdb_writes), and sharded writers
(`shard`, sql/macros/in_shard.sql) write disjoint ids. DuckLake aborts a commit that inserts into a
table another transaction deleted from meanwhile (its check is per table), so a batch only appends:
its queue outcomes go to a ledger behind the ingest_queue view (sql/schema/ducklake/006), and the
run's counters are written at its end. Commits racing for the catalog are retried by DuckLake itself
(LAKE_COMMIT_RETRIES and friends); a conflict that still escapes (a --refresh rewriting rows, a
`maintain`, a writer folding outcomes) is retried here, the batch intact. Readers attach the lake
read-only at its last snapshot, or at an older one (`at`), and never wait for a writer.

The extensions come from the `orusage[lake]` extra's wheels (duckdb-extension-*), loaded by path;
only without them does DuckDB try to install them from the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import duckdb
import polars as pl

from pipeline import config
from pipeline.log_sources import SourceState
from pipeline.normalize import NormalizedBatch, NormalizedContent
from pipeline.warehouse import duckdb_file, duckdb_writes
from pipeline.warehouse.duckdb_file import _sql_text
from pipeline.warehouse.duckdb_writes import DATABASE, THREADS
from pipeline.warehouse.interface import QueueUpdate, WarehouseError, WarehouseNotFoundError
from pipeline.warehouse.schema import check_readable, create_macros_and_views, migrate, one_line
from pipeline.warehouse.sql_files import macro_files, statement, view_files

_T = TypeVar("_T")

DIALECT = "ducklake"
# DuckLake's own retries of a commit that lost the race for the next snapshot id (its defaults are
# the same today: set here so that they stay what was measured, bench/lake.py).
LAKE_COMMIT_RETRIES = 10
LAKE_RETRY_WAIT_MS = 100
LAKE_RETRY_BACKOFF = 1.5
# orusage's retries of a batch whose commit DuckLake reports as a conflict, and of opening a lake
# that other workers are migrating at the same moment.
CONFLICT_RETRIES = 8
CONFLICT_FIRST_WAIT_S = 0.05
# Queue outcomes folded into the queue's base table per transaction (fold_outcomes).
FOLD_CHUNK_OUTCOMES = 200_000

_EXTENSIONS = {"postgres": ("ducklake", "postgres_scanner"), "sqlite": ("ducklake", "sqlite_scanner")}
_OPTIONAL_EXTENSIONS = ("httpfs",)  # for data on S3
# The fingerprint of the macros and views a lake holds, kept as a comment on one of its views: a
# writer (re)creates them only when it differs, so N workers starting at once do not all rewrite them.
_OBJECTS_COMMENT_VIEW = "stg_generations"

# Patched by tests.
_sleep = time.sleep


class Lake:
    """A parsed `ducklake:<catalog>:<target>` location."""

    def __init__(self, location: str) -> None:
        checked = config.check_warehouse_path(location)
        if not config.is_lake(checked):
            raise WarehouseError(f"{location!r} is not a DuckLake location")
        self.catalog, _, self.target = str(checked)[len(config.LAKE_PREFIX):].partition(":")
        if self.catalog == "sqlite":  # the catalog file, wherever the command runs from
            self.target = str(Path(self.target).expanduser().resolve())
        self.location = config.redacted(f"{config.LAKE_PREFIX}{self.catalog}:{self.target}")

    def exists(self) -> bool | None:
        """Whether a lake is there (None: only attaching can tell, for PostgreSQL)."""
        return Path(self.target).is_file() if self.catalog == "sqlite" else None


def _extension_file(name: str) -> Path | None:
    """The extension shipped by the duckdb-extension-<name> wheel, if installed."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or spec.origin is None:
        return None
    found = sorted(Path(spec.origin).parent.glob(f"extensions/v{duckdb.__version__}/{name}.duckdb_extension"))
    return found[0] if found else None


def _load_extensions(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    for name in _EXTENSIONS[lake.catalog]:
        file = _extension_file(name)
        try:
            if file is not None:
                con.execute(f"load {_sql_text(str(file))}")
                continue
            try:
                con.execute(f"load {name}")  # installed by hand in DuckDB's extension folder
            except duckdb.Error:
                con.execute(f"install {name}")  # the network: only without the wheel
                con.execute(f"load {name}")
        except duckdb.Error as exc:
            raise WarehouseError(
                f"a DuckLake warehouse needs DuckDB's {name} extension: pip install 'orusage[lake]' "
                f"({'loading' if file else 'installing'} it failed: {one_line(exc)})"
            ) from None
    for name in _OPTIONAL_EXTENSIONS:
        file = _extension_file(name)
        if file is not None:
            con.execute(f"load {_sql_text(str(file))}")


def _create_s3_secret(con: duckdb.DuckDBPyConnection) -> None:
    """DuckDB's S3 credentials from the standard AWS variables (AWS_ENDPOINT_URL for an
    S3-compatible server), for this connection only: never stored, never printed."""
    key_id = os.environ.get("AWS_ACCESS_KEY_ID")
    if not key_id or _extension_file("httpfs") is None:
        return
    options = {"key_id": key_id, "secret": os.environ.get("AWS_SECRET_ACCESS_KEY", "")}
    if token := os.environ.get("AWS_SESSION_TOKEN"):
        options["session_token"] = token
    if region := os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"):
        options["region"] = region
    if endpoint := os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"):
        url = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        options |= {"endpoint": url.netloc, "url_style": "path", "use_ssl": url.scheme == "https"}
    listed = ", ".join(f"{name} {_sql_value(value)}" for name, value in options.items())
    try:
        con.execute(f"create or replace temporary secret orusage_s3 (type s3, {listed})")
    except duckdb.Error as exc:
        raise WarehouseError(f"cannot use the S3 credentials of AWS_*: {_without_secrets(one_line(exc))}") from None


def _sql_value(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else _sql_text(str(value))


def _without_secrets(text: str) -> str:
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PGPASSWORD"):
        if secret := os.environ.get(name):
            text = text.replace(secret, "***")
    return config.redacted(text)


def _instance(lake: Lake, *, threads: int | None = THREADS) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for one lake connection, spilling into a folder of its own: DuckDB's
    default, `.tmp` in the working directory, would be shared by every worker started there (two
    of them overwrote each other's spilled blocks: "Could not read enough bytes", then a crash).
    close_instance() removes it. `threads`: a writer's (see duckdb_writes.THREADS); None, DuckDB's
    default (every core), for a reader."""
    con = duckdb.connect(config={**({"threads": threads} if threads else {}), **duckdb_file.OFFLINE})
    try:
        con.execute("set temp_directory = ?", [tempfile.mkdtemp(prefix="orusage-lake-")])
        with contextlib.suppress(duckdb.Error):  # under Jupyter DuckDB refuses it without ipywidgets
            con.execute("set enable_progress_bar = false")
        _load_extensions(con, lake)
        _create_s3_secret(con)
        con.execute(f"set ducklake_max_retry_count = {LAKE_COMMIT_RETRIES}")
        con.execute(f"set ducklake_retry_wait_ms = {LAKE_RETRY_WAIT_MS}")
        con.execute(f"set ducklake_retry_backoff = {LAKE_RETRY_BACKOFF}")
    except BaseException:
        close_instance(con)
        raise
    return con


def close_instance(con: duckdb.DuckDBPyConnection) -> None:
    try:
        [(folder,)] = con.execute("select current_setting('temp_directory')").fetchall()
    except duckdb.Error:
        folder = None
    with contextlib.suppress(duckdb.Error):
        con.close()
    if folder and Path(folder).name.startswith("orusage-lake-"):
        shutil.rmtree(folder, ignore_errors=True)


def attach(con: duckdb.DuckDBPyConnection, lake: Lake, *, read_only: bool, data_path: str | None = None,
           at: int | datetime | None = None) -> None:
    """The lake attached as DATABASE and made `con`'s default; `at` a snapshot id or a time."""
    options = []
    if read_only:
        options.append("read_only")
    if data_path:
        options.append(f"data_path {_sql_text(data_path)}")
    if isinstance(at, int):
        options.append(f"snapshot_version {at}")
    elif at is not None:
        options.append(f"snapshot_time {_sql_text(at.isoformat())}")
    listed = f" ({', '.join(options)})" if options else ""
    try:
        con.execute(f"attach {_sql_text(config.LAKE_PREFIX + lake.catalog + ':' + lake.target)} as {DATABASE}{listed}")
    except duckdb.Error as exc:
        message = _without_secrets(one_line(exc))
        if at is not None and "no snapshot found" in message.lower():
            raise WarehouseError(f"the lake {lake.location} has no snapshot at {at} (its first is later, or it "
                                 "was expired by `orusage maintain`; `ducklake_snapshots('warehouse')` lists them)"
                                 ) from None
        if (read_only and "does not exist" in message.lower()) or "no snapshot" in message.lower():
            raise WarehouseNotFoundError(f"no warehouse at {lake.location} ({message})") from None
        if "data_path is not set" in message:
            raise WarehouseError(f"{lake.location} holds no lake yet: create it with --data-path DIR or "
                                 "s3://BUCKET/PREFIX/ (where its Parquet files go)") from None
        raise WarehouseError(f"cannot open the lake {lake.location}: {message}") from None
    con.execute(f"use {DATABASE}")
    con.execute("set TimeZone = 'UTC'")


def _is_conflict(exc: Exception) -> bool:
    """A commit another transaction got in the way of, or a SQLite catalog another process holds
    locked (SQLite answers "database is locked" at once, it does not wait)."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and (
        isinstance(exc, duckdb.TransactionException) or "conflict" in text or "database is locked" in text)


def _is_conflict_or_created(exc: Exception) -> bool:
    """While a lake is opened, also what another writer created meanwhile: two workers opening a
    new lake at once, the second sees the first's catalog tables (DuckLake creates them at the
    first ATTACH: "already exists", "duplicate key") or its migrated tables."""
    return _is_conflict(exc) or (isinstance(exc, (duckdb.CatalogException, WarehouseError)) and any(
        sign in str(exc) for sign in ("already exists", "duplicate key")))


def _retrying_conflicts(work: Callable[[], _T], on_retry: Callable[[], None] = lambda: None,
                        retry_on: Callable[[Exception], bool] = _is_conflict) -> _T:
    """work(), again while DuckLake reports a conflict with another transaction (up to
    CONFLICT_RETRIES times, backing off); `work` must be idempotent (a batch is)."""
    wait_s = CONFLICT_FIRST_WAIT_S
    for attempt in range(CONFLICT_RETRIES + 1):
        try:
            return work()
        except (duckdb.Error, WarehouseError) as exc:
            if not retry_on(exc) or attempt == CONFLICT_RETRIES:
                raise
            on_retry()
            _sleep(wait_s)
            wait_s *= 2
    raise AssertionError("unreachable")


# --- the ingest's writer ---------------------------------------------------------------------


def _objects_fingerprint() -> str:
    digest = hashlib.sha256()
    for file in [*macro_files(), *view_files()]:
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return f"orusage objects {digest.hexdigest()[:16]}"


def _prepare(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    """Migrations, then the macros and views if the lake's are not this orusage's."""
    migrate(con, lake.location, DIALECT)
    fingerprint = _objects_fingerprint()
    stored = con.execute(
        "select comment from duckdb_views() where database_name = current_database() and view_name = ?",
        [_OBJECTS_COMMENT_VIEW],
    ).fetchall()
    if stored and stored[0][0] == fingerprint:
        return
    create_macros_and_views(con)
    con.execute(f"comment on view {_OBJECTS_COMMENT_VIEW} is {_sql_text(fingerprint)}")


def fold_outcomes(con: duckdb.DuckDBPyConnection) -> int:
    """Each id's newest queue outcome into ingest_queue_base, and those outcomes deleted
    (sql/queue/ducklake/fold_outcomes.sql); how many were folded. None: nothing is written, so N
    workers starting together do not conflict once the first has folded.

    Every writer does it when it opens the lake, so the ingest_queue view and the due ids read one
    night's outcomes, not every outcome ever (3,000,000 of them unfolded held 500 MB). DuckLake's
    UPDATE does not spill (it failed under a memory limit), so the outcomes are folded
    FOLD_CHUNK_OUTCOMES at a time: one transaction per share of the ids (in_shard)."""
    [(outcomes,)] = con.execute("select count(*) from ingest_queue_outcomes").fetchall()
    shares = max(1, math.ceil(outcomes / FOLD_CHUNK_OUTCOMES))
    for share in range(shares if outcomes else 0):
        parameters = {"shard_index": share, "shard_count": shares}
        con.begin()
        try:
            con.execute(statement("queue/fold_outcomes", DIALECT), parameters)
            con.execute("delete from ingest_queue_outcomes where in_shard(generation_id, $shard_index, $shard_count)",
                        parameters)
            con.commit()
        except BaseException:
            duckdb_writes.rollback_if_open(con)
            raise
    return outcomes


class Writer:
    """An ingest run's lake (interface.Writer). One process may run several against one lake when
    each has its own shard; DuckLake keeps their transactions apart."""

    def __init__(self, location: str, *, data_path: str | None = None, shard: tuple[int, int] | None = None) -> None:
        self._lake = Lake(location)
        self.location = self._lake.location
        self.shard = shard
        self.commits_retried = 0  # statements (batches, run rows, the open) retried after a DuckLake conflict
        self._lock = threading.RLock()
        self._in_transaction = False  # a dry run's
        self._threads = threading.local()
        if data_path is None and self._lake.exists() is False:
            data_path = f"{self._lake.target}.files/"  # a SQLite catalog's lake: its files beside it
        if data_path and "://" not in data_path:
            # DuckLake keeps the path as given: a relative one would be read from each reader's own folder
            data_path = str(Path(data_path).expanduser().resolve()) + "/"
        self._instance = _instance(self._lake)
        try:
            _retrying_conflicts(lambda: attach(self._instance, self._lake, read_only=False, data_path=data_path),
                                self._count_retry, retry_on=_is_conflict_or_created)
            _retrying_conflicts(lambda: _prepare(self._instance, self._lake), self._count_retry,
                                retry_on=_is_conflict_or_created)
            _retrying_conflicts(lambda: fold_outcomes(self._instance), self._count_retry)
        except duckdb.Error as exc:
            close_instance(self._instance)
            raise WarehouseError(f"cannot prepare the lake {self.location}: {_without_secrets(one_line(exc))}") from None
        except BaseException:
            close_instance(self._instance)
            raise

    def _count_retry(self) -> None:
        self.commits_retried += 1

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        con = getattr(self._threads, "con", None)
        if con is None:
            con = self._threads.con = duckdb_file.cursor(self._instance)
            con.execute("set TimeZone = 'UTC'")
        return con

    def _do(self, work: Callable[[duckdb.DuckDBPyConnection], _T]) -> _T:
        """work(this thread's cursor), one at a time, again after a conflict (each piece of work is
        idempotent; not inside a dry run's transaction, which a failure ends); the lake's own errors
        (the catalog gone, the storage unreachable) as WarehouseError."""
        with self._lock:
            con = self._cursor()
            try:
                if self._in_transaction:
                    return work(con)
                return _retrying_conflicts(lambda: work(con), self._count_retry)
            except (duckdb.IOException, duckdb.ConnectionException, duckdb.HTTPException) as exc:
                raise WarehouseError(f"the lake {self.location}: {_without_secrets(one_line(exc))}") from None

    def stage_ids(self, found: Iterable[tuple[str, str]], *, seen_at: datetime,
                  sources: Sequence[SourceState] = (), run_id: str | None = None) -> int:
        found = list(found)
        return self._do(lambda con: duckdb_writes.stage_ids(con, found, seen_at=seen_at, shard=self.shard,
                                                            dialect=DIALECT, sources=sources, run_id=run_id,
                                                            in_transaction=self._in_transaction))

    def source_states(self) -> list[SourceState]:
        return self._do(lambda con: duckdb_writes.source_states(con, shard=self.shard))

    def forget_sources(self, pattern: str | None) -> int:
        return self._do(lambda con: duckdb_writes.forget_sources(con, pattern))

    def write_activity(self, activity: pl.DataFrame) -> int:
        return self._do(lambda con: duckdb_writes.write_activity(con, activity))

    def due_counts(self, *, now: datetime, refresh: bool = False, since: datetime | None = None,
                   until: datetime | None = None) -> dict[str, int]:
        return self._do(lambda con: duckdb_writes.due_counts(con, now=now, refresh=refresh, since=since, until=until,
                                                             shard=self.shard, dialect=DIALECT))

    def due_ids(self, *, now: datetime, refresh: bool = False, since: datetime | None = None,
                until: datetime | None = None) -> Iterator[list[str]]:
        snapshot = self._do(lambda con: duckdb_writes.snapshot_due(con, now=now, refresh=refresh, since=since,
                                                                   until=until, shard=self.shard, dialect=DIALECT))
        yield from duckdb_writes.due_chunks(self._cursor(), snapshot)

    def failed_waiting(self, *, since: datetime | None = None,
                       until: datetime | None = None) -> tuple[int, datetime | None]:
        return self._do(lambda con: duckdb_writes.failed_waiting(con, since=since, until=until, shard=self.shard))

    def upsert_batch(self, batch: NormalizedBatch, queue_updates: Sequence[QueueUpdate], *, run_id: str,
                     run_counts: dict[str, int] | None = None) -> None:
        # No run counters in the batch: updating the run's row would delete from ingest_runs, which
        # conflicts with every other worker's writes to it (see sql/schema/ducklake/006); finish_run
        # records them. A killed worker's run so shows none: the queue tells what it committed.
        self._do(lambda con: duckdb_writes.upsert_batch(con, batch, queue_updates, run_id=run_id, dialect=DIALECT))

    def copy_rows(self, table: str, rows: pl.DataFrame) -> int:
        return self._do(lambda con: duckdb_writes.copy_rows(con, table, rows, DIALECT))

    def write_content(self, content: NormalizedContent, *, run_id: str, run_counts: dict[str, int] | None = None) -> int:
        # No run counters, as in upsert_batch; content rows are only ever inserted, so workers of
        # other shards do not conflict with them.
        return self._do(lambda con: duckdb_writes.write_content(con, content, run_id=run_id))

    def content_due_ids(self, *, since: datetime | None = None, until: datetime | None = None) -> Iterator[list[str]]:
        snapshot = self._do(lambda con: duckdb_writes.snapshot_content_due(con, since=since, until=until,
                                                                           shard=self.shard))
        yield from duckdb_writes.due_chunks(self._cursor(), snapshot)

    def purge_content(self, *, before: datetime | None = None, model: str | None = None,
                      everything: bool = False) -> int:
        """Delete content rows, then DuckLake's own steps that take their bytes off the storage:
        the table's files with deletes rewritten (whatever their share of deleted rows), every
        snapshot expired (older ones still read the purged rows: time travel before a purge ends
        with it), and the files no snapshot reads deleted."""
        deleted = self._do(lambda con: duckdb_writes.purge_content(con, before=before, model=model,
                                                                   everything=everything))
        if deleted:
            lake = _sql_text(DATABASE)
            for sql in (f"call ducklake_flush_inlined_data({lake})",
                        f"call ducklake_rewrite_data_files({lake}, 'generation_content_rows', delete_threshold => 0)",
                        f"call ducklake_rewrite_data_files({lake}, 'generation_content_parts', delete_threshold => 0)",
                        f"call ducklake_expire_snapshots({lake}, older_than => now())",
                        f"call ducklake_cleanup_old_files({lake}, cleanup_all => true)"):
                self._do(lambda con, sql=sql: con.execute(sql).fetchall())
        return deleted

    def start_run(self, *, options: dict[str, Any]) -> str:
        return self._do(lambda con: duckdb_writes.start_run(con, options=options))

    def finish_run(self, run_id: str, *, counts: dict[str, Any], outcome: str) -> None:
        self._do(lambda con: duckdb_writes.finish_run(con, run_id, counts=counts, outcome=outcome))

    @contextmanager
    def rolled_back(self) -> Iterator[None]:
        with self._lock:
            con = self._cursor()
            con.begin()
            self._in_transaction = True
            try:
                yield
            finally:
                self._in_transaction = False
                duckdb_writes.rollback_if_open(con)

    def close(self) -> None:
        close_instance(self._instance)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- readers ---------------------------------------------------------------------------------


class Reader(duckdb_file.Reader):
    """Read-only access to the lake's last snapshot (or the one at `at`): never waits for a writer.
    External access is off once the lake is attached, but for the lake's data path, so a query
    reaches no other file."""

    def __init__(self, location: str, *, at: int | datetime | None = None,
                 lock_timeout_s: float = config.READ_LOCK_TIMEOUT_S) -> None:
        lake = Lake(location)
        self.location = lake.location
        self.waited_s = 0.0
        if lake.exists() is False:
            raise WarehouseNotFoundError(f"no warehouse at {lake.location}")
        self._con = _instance(lake, threads=None)
        try:
            attach(self._con, lake, read_only=True, at=at)
            if not check_readable(self._con, lake.location, DIALECT):
                raise WarehouseNotFoundError(f"no warehouse at {lake.location} yet (a lake without orusage's tables)")
            # Its own Parquet files stay readable; no other file is (reports.py lets only SELECT
            # and EXPLAIN through, so nothing is written there either).
            [(data_path,)] = self._con.execute(
                f"select value from ducklake_options('{DATABASE}') where option_name = 'data_path'").fetchall()
            self._con.execute("set allowed_directories = $directories", {"directories": [data_path]})
            self._con.execute("set enable_external_access = false")
            self._con.execute("set lock_configuration = true")
        except BaseException:
            close_instance(self._con)
            raise

    def close(self) -> None:
        close_instance(self._con)


def snapshots(reader: duckdb_file.Reader) -> list[tuple[Any, ...]]:
    """The lake's snapshots (id, time, changes), newest last: what `--at` can name."""
    return reader.rows(f"select snapshot_id, snapshot_time, changes from ducklake_snapshots('{DATABASE}') order by 1")


# --- maintenance -----------------------------------------------------------------------------

# DuckLake's own maintenance, in order: inlined rows written out to Parquet, small adjacent files
# merged, files mostly deleted rewritten, snapshots older than the kept window expired, and the
# files no kept snapshot reads deleted.
_MAINTENANCE = (
    ("queue outcomes folded in", None),
    ("inlined rows flushed", "call ducklake_flush_inlined_data({lake})"),
    ("small files merged", "call ducklake_merge_adjacent_files({lake})"),
    ("files rewritten without deleted rows", "call ducklake_rewrite_data_files({lake})"),
    ("snapshots expired", "call ducklake_expire_snapshots({lake}, older_than => $older_than)"),
    ("old files deleted", "call ducklake_cleanup_old_files({lake}, cleanup_all => true)"),
)


def maintain(location: str, *, older_than: datetime) -> list[tuple[str, int]]:
    """Run DuckLake's maintenance on the lake (see _MAINTENANCE); what each step did, as the number
    of rows its function returned (files, snapshots). Snapshots from `older_than` on are kept:
    `--at` can still name them."""
    lake = Lake(location)
    con = _instance(lake)
    try:
        attach(con, lake, read_only=False)
        done = []
        for what, call in _MAINTENANCE:
            sql = call.format(lake=_sql_text(DATABASE)) if call else ""
            parameters = {"older_than": older_than} if "$older_than" in sql else None
            try:
                count = _retrying_conflicts(
                    (lambda: fold_outcomes(con)) if call is None else
                    (lambda: len(con.execute(sql, parameters).fetchall())))
            except duckdb.Error as exc:
                raise WarehouseError(f"maintenance of {lake.location} ({what}): {_without_secrets(one_line(exc))}") from None
            done.append((what, count))
        return done
    finally:
        close_instance(con)

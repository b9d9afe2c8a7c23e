"""The DuckDB file: the default warehouse. Opening it (migrations, macros, views), the ingest's
Writer, and the Reader that reports, queries and notebooks use.

DuckDB lets one process write a file, and no other process read it meanwhile. So that analysts can
read during a load, the Writer holds the file only in short *write windows* (one batch's
transaction, one chunk of staged ids, a run's row): it is one in-memory DuckDB instance that
ATTACHes the file for a window and DETACHes it after, without a checkpoint (checkpoint_if_due
decides those), and readers open the file read-only between two windows, waiting while one runs
(bench/readers_during_ingest.py measures both sides). What outlives a window stays in the
instance: the due-id snapshot is a temp table. A second ingest is kept out for the whole run by
an advisory lock on `<file>.ingest.lock`, which also tells readers who holds the file and since when.

A reader sees the last committed window, as every DuckDB read-only open does: batches are whole
or absent, and a run killed at any moment leaves a file the next reader (and the next run) opens,
replaying its write-ahead log.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import orjson
import polars as pl

from pipeline import config
from pipeline.log_sources import SourceState
from pipeline.normalize import NormalizedBatch, NormalizedContent
from pipeline.warehouse import duckdb_writes
from pipeline.warehouse.duckdb_writes import (
    CONTENT_ROW_GROUP_ROWS,
    DATABASE,
    NO_AUTOMATIC_CHECKPOINT,
    ROW_GROUP_ROWS,
    THREADS,
)
from pipeline.warehouse.interface import (
    QueryError,
    QueueUpdate,
    WarehouseError,
    WarehouseLockedError,
    WarehouseNotFoundError,
    WarehouseTooNewError,
)
from pipeline.warehouse.schema import check_readable, create_macros_and_views, migrate, one_line

_T = TypeVar("_T")

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")
INGEST_LOCK_SUFFIX = ".ingest.lock"
PRIVATE_FILE_MODE = 0o600  # a warehouse file orusage creates: its owner's only

# Patched by tests so that waiting for a lock takes no real time.
_sleep = time.sleep
_monotonic = time.monotonic


# --- opening ---------------------------------------------------------------------------------


def connect(
    path: str | Path, *, read_only: bool = False, lock_timeout_s: float = 0
) -> duckdb.DuckDBPyConnection:
    """The file, opened and held until closed (tests and bench/ use this; the ingest uses Writer,
    reports use Reader). Writable: applies pending migrations (once, in one transaction), then
    (re)creates every macro and view. Read-only: migrates nothing, refuses a missing file, and
    creates the macros for this connection only.

    If another process holds the file, retries for up to `lock_timeout_s`, then raises
    WarehouseLockedError naming that process.

    A writable connection has the file attached as DATABASE (see duckdb_writes.ROW_GROUP_ROWS): its
    cursors must come from cursor(con), not con.cursor().
    """
    path = _checked_path(path, read_only=read_only)
    if read_only:
        con = _retry_while_locked(path, lambda: duckdb.connect(str(path), read_only=True, config=OFFLINE), lock_timeout_s)
    else:
        con = _instance(path)
        try:
            _retry_while_locked(path, lambda: _attach(con, path), lock_timeout_s)
        except BaseException:
            con.close()
            raise
    try:
        con.execute("set TimeZone = 'UTC'")
        if read_only:
            check_readable(con, path)
        else:
            migrate(con, path)
            create_macros_and_views(con)
    except BaseException:
        con.close()
        raise
    return con


def _checked_path(path: str | Path, *, read_only: bool) -> Path:
    try:
        path = config.check_warehouse_path(path)
    except config.WarehousePathError as exc:
        raise WarehouseError(str(exc)) from None
    if read_only and not path.exists():
        raise WarehouseNotFoundError(f"no warehouse at {path}")
    _refuse_other_files(path)
    if not read_only:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarehouseError(f"cannot create warehouse {path}: {exc.strerror or exc}") from None
        if not path.exists():
            _create_whole(path)
    return path


# No orusage connection installs or loads an extension by itself: DuckDB would otherwise fetch one
# from the network for a file it does not recognise (a SQLite file, say) or a function it lacks.
OFFLINE: dict[str, object] = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
_DUCKDB_MAGIC = b"DUCK"  # at byte 8 of every DuckDB database file
_DUCKDB_MAGIC_OFFSET = 8


def _refuse_other_files(path: Path) -> None:
    """Refuse, before DuckDB sees it, a file that is not a DuckDB database (an empty one is let
    through: DuckDB creates a database in it)."""
    try:
        with open(path, "rb") as file:
            head = file.read(_DUCKDB_MAGIC_OFFSET + len(_DUCKDB_MAGIC))
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise WarehouseError(f"{path} is a folder, not a warehouse file") from None
    except OSError as exc:
        raise WarehouseError(f"cannot read warehouse {path}: {exc.strerror or exc}") from None
    if head and head[_DUCKDB_MAGIC_OFFSET:] != _DUCKDB_MAGIC:
        raise WarehouseError(f"{path} is not a DuckDB file (an orusage warehouse is one): refusing to open it")


def _create_whole(path: Path) -> None:
    """Create a new, empty database file under another name, then link it into place.

    DuckDB creates a new file, then writes its headers: a process killed in between (7 of 51
    SIGKILLs that landed there, tests/test_ingest.py's first kill point) leaves a file DuckDB then
    refuses for good ("not a valid DuckDB database file"). A link is atomic, and never replaces
    a file another process created meanwhile. Where links are not supported, DuckDB creates the
    file itself, as before.
    """
    staging = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.new")
    try:
        duckdb.connect(str(staging), config=OFFLINE).close()
        os.chmod(staging, PRIVATE_FILE_MODE)  # it may come to hold prompts: see Writer._window
        os.link(staging, path)
    except OSError:  # FileExistsError: another process created it first; theirs is kept. Where
        pass  # links are not supported, DuckDB creates the file itself.
    except duckdb.Error as exc:
        raise WarehouseError(f"cannot create warehouse {path}: {one_line(exc)}") from None
    finally:
        for leftover in (staging, staging.with_name(staging.name + ".wal")):
            with contextlib.suppress(OSError):  # a read-only folder: the error above says why
                leftover.unlink(missing_ok=True)


def _retry_while_locked(path: Path, open_once: Callable[[], _T], wait_s: float, *, reader: bool = False) -> _T:
    """open_once(), again while another process holds the file, for up to `wait_s`; then
    WarehouseLockedError naming the holder. A reader announces itself while it waits (see
    _reader_waiting), so an ingest lets it in at the end of its current write window."""
    deadline = _monotonic() + max(0.0, wait_s)
    delay_s = 0.005
    announced = False
    with contextlib.ExitStack() as waiting:
        while True:
            try:
                return open_once()
            except duckdb.IOException as exc:
                holder = _LOCK_HOLDER.search(str(exc))
                if holder is None:
                    raise WarehouseError(f"cannot open warehouse {path}: {one_line(exc)}") from None
                remaining_s = deadline - _monotonic()
                if remaining_s <= 0:
                    raise WarehouseLockedError(_locked_message(path, holder, wait_s, reader=reader)) from None
                if reader and not announced:
                    waiting.enter_context(_reader_waiting(path))
                    announced = True
                _sleep(min(delay_s, remaining_s))
                delay_s = min(delay_s * 2, 0.05 if reader else 0.25)
            except duckdb.Error as exc:
                raise WarehouseError(f"cannot open warehouse {path}: {one_line(exc)}") from None


@contextmanager
def _reader_waiting(path: Path) -> Iterator[None]:
    """While a reader waits for the file it holds a shared lock on byte 0 of `<warehouse>.ingest.lock`
    (fcntl's, apart from the whole-file flock the ingest holds); before each write window the
    ingest waits until no reader holds it (_IngestLock.let_readers_in). Without a lock file, or
    one it may not read, the reader just retries."""
    try:
        fd = os.open(_ingest_lock_path(path), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.lockf(fd, fcntl.LOCK_SH, 1, 0)  # blocks only while an ingest tests for readers
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _instance(path: Path) -> duckdb.DuckDBPyConnection:
    """The in-memory DuckDB instance a writer attaches the file to (see ROW_GROUP_ROWS)."""
    con = duckdb.connect(config={"threads": THREADS, **OFFLINE})
    try:
        con.execute(f"set temp_directory = {_sql_text(f'{path}.tmp')}")  # DuckDB's default for a file
        con.execute("set enable_progress_bar = false")  # a long migration must not draw a bar into cron mail
        con.execute("set max_vacuum_tasks = 0")  # see duckdb_writes' comment above DATABASE
        con.execute(f"set checkpoint_threshold = '{NO_AUTOMATIC_CHECKPOINT}'")  # see checkpoint_if_due
        con.execute("pragma disable_checkpoint_on_shutdown")  # a DETACH leaves the WAL: see Writer
    except BaseException:
        con.close()
        raise
    return con


def _attach(con: duckdb.DuckDBPyConnection, path: Path, row_group_rows: int = ROW_GROUP_ROWS) -> duckdb.DuckDBPyConnection:
    """The file attached under DATABASE with ROW_GROUP_ROWS-row groups, and made `con`'s default."""
    con.execute(f"attach {_sql_text(str(path))} as {DATABASE} (row_group_size {row_group_rows})")
    con.execute(f"use {DATABASE}")
    return con


@contextmanager
def _umask(mask: int | None) -> Iterator[None]:
    """The process's umask set to `mask` for the block (None: left as it is)."""
    if mask is None:
        yield
        return
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Another connection to the same open warehouse (for another thread), on the warehouse:
    DuckDB's cursors start on the instance's default database, not on the one `use`d."""
    database = con.execute("select current_database()").fetchall()[0][0]
    result = con.cursor()
    result.execute(f"use {_sql_name(database)}")
    return result


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_name(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _locked_message(path: Path, holder: re.Match[str], waited_s: float, *, reader: bool = False) -> str:
    pid = int(holder["pid"])
    waited = f" (waited {waited_s:g} s)" if waited_s > 0 else ""
    ingest = _ingest_holding(path, pid)
    if ingest is not None:
        running_s = (datetime.now(timezone.utc) - ingest).total_seconds()
        return (
            f"warehouse {path} is being loaded by an ingest (PID {pid}, running for {_duration(running_s)}), "
            f"which has held the file for all the {waited_s:g} s this {'reader' if reader else 'writer'} waited; "
            "it releases it between batches: try again, or wait longer with --lock-timeout SECONDS"
        )
    command = _command_line(pid) or holder["program"]
    return (
        f"warehouse {path} is in use by another process{waited}: PID {pid} ({command}). "
        "DuckDB allows one writer at a time (and no reader while it writes): wait for it to "
        "finish (`orusage ingest --lock-timeout SECONDS` waits for it, as do report, query and status)."
    )


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds // 60 % 60} min"


def _command_line(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    command = " ".join(raw.replace(b"\0", b" ").decode(errors="replace").split())
    return command[:200] or None


# --- the ingest's lock -----------------------------------------------------------------------


def _ingest_lock_path(path: Path) -> Path:
    return path.with_name(path.name + INGEST_LOCK_SUFFIX)


def _lock_record(path: Path) -> dict[str, Any] | None:
    """What the ingest holding (or last holding) the warehouse wrote in its lock file: pid,
    started_at, command."""
    try:
        record = orjson.loads(_ingest_lock_path(path).read_bytes())
    except (OSError, ValueError):
        return None
    if not (isinstance(record, dict) and isinstance(record.get("pid"), int) and isinstance(record.get("started_at"), str)):
        return None
    return record


def _ingest_holding(path: Path, pid: int) -> datetime | None:
    """When the ingest of process `pid` started, if that process is the ingest the lock file names."""
    record = _lock_record(path)
    if record is None or record["pid"] != pid:
        return None
    try:
        return datetime.fromisoformat(record["started_at"])
    except ValueError:
        return None


class _IngestLock:
    """An advisory lock (flock) on `<warehouse>.ingest.lock`, held for a whole run: write windows
    let readers in between batches, and this keeps a second ingest out. The kernel drops it when
    the process dies, kill -9 included; the file stays, naming the last holder."""

    def __init__(self, path: Path, lock_timeout_s: float) -> None:
        lock_path = _ingest_lock_path(path)
        try:
            self._fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise WarehouseError(f"cannot create {lock_path}: {exc.strerror or exc}") from None
        deadline = _monotonic() + max(0.0, lock_timeout_s)
        try:
            while True:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    remaining_s = deadline - _monotonic()
                    if remaining_s <= 0:
                        raise WarehouseLockedError(self._held_message(path, lock_timeout_s)) from None
                    _sleep(min(0.25, remaining_s))
            record = {"pid": os.getpid(), "started_at": datetime.now(timezone.utc).isoformat(),
                      "command": _command_line(os.getpid())}
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, orjson.dumps(record), 0)
        except BaseException:
            os.close(self._fd)
            raise

    @staticmethod
    def _held_message(path: Path, waited_s: float) -> str:
        record = _lock_record(path)
        holder = ("another process" if record is None else
                  f"PID {record['pid']} ({record.get('command') or 'orusage ingest'}), started {record['started_at']}")
        waited = f" (waited {waited_s:g} s)" if waited_s > 0 else ""
        return (f"warehouse {path} is being loaded by another ingest{waited}: {holder}. One ingest writes a "
                "DuckDB file at a time: wait for it to finish (`orusage ingest --lock-timeout SECONDS` waits for it).")

    def let_readers_in(self, wait_s: float) -> None:
        """Wait, up to `wait_s`, while readers are waiting to open the file (_reader_waiting): they
        open it as soon as this write window's predecessor has ended, then the window waits for
        them to finish (DuckDB's lock). Readers so get in between any two windows."""
        deadline = _monotonic() + wait_s
        while True:
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
            except OSError:
                if _monotonic() >= deadline:
                    return  # readers that keep coming: write anyway (DuckDB's lock waits for the open ones)
                _sleep(0.002)
                continue
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, 0)
            return

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)  # closing drops the flock


# --- the ingest's writer ---------------------------------------------------------------------


class Writer:
    """An ingest run's warehouse (interface.Writer), holding the file only in write windows.

    Each method is one window: the file is attached, the work done, the file checkpointed if
    due and detached. Windows of the main thread (staging, due ids) and of the writer thread
    (batches) take turns under one lock; each thread has its own cursor on the instance."""

    def __init__(self, path: str | Path, *, lock_timeout_s: float = 0, readers_wait_s: float | None = None,
                 shard: duckdb_writes.Shard | None = None) -> None:
        self._path = _checked_path(path, read_only=False)
        self.location = str(self._path)
        self.shard = shard
        self.commits_retried = 0  # one writer at a time: nothing to conflict with
        self._readers_wait_s = config.WRITER_WAITS_FOR_READERS_S if readers_wait_s is None else readers_wait_s
        self._window_lock = threading.RLock()
        self._depth = 0
        self._in_transaction = False  # a dry run's, rolled back at its end
        self._threads = threading.local()
        self._ingest_lock = _IngestLock(self._path, lock_timeout_s)
        # A file only its owner may read gets a write-ahead log (and spill files) like it: DuckDB
        # creates them anew in write windows, with the process's umask.
        self._umask = 0o077 if not self._path.stat().st_mode & 0o077 else None
        try:
            self._instance = _instance(self._path)
            # The first window also waits for what held the file before this run (another tool,
            # an older orusage) as long as the caller would wait for another ingest.
            with self._window(wait_s=max(lock_timeout_s, self._readers_wait_s)) as con:
                migrate(con, self._path)
                create_macros_and_views(con)
        except BaseException:
            self.close()
            raise

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        con = getattr(self._threads, "con", None)
        if con is None:
            con = self._threads.con = self._instance.cursor()
            con.execute("set TimeZone = 'UTC'")
        return con

    @contextmanager
    def _window(self, *, wait_s: float | None = None,
                row_group_rows: int = ROW_GROUP_ROWS) -> Iterator[duckdb.DuckDBPyConnection]:
        """The file attached, for this thread's cursor; nested windows share the outermost one.
        Waits for readers holding the file (their shared lock) up to `wait_s`."""
        with self._window_lock, contextlib.ExitStack() as outermost_only:
            con = self._cursor()
            outermost = self._depth == 0
            if outermost:
                wait_s = self._readers_wait_s if wait_s is None else wait_s
                self._ingest_lock.let_readers_in(wait_s)
                outermost_only.enter_context(_umask(self._umask))
                _retry_while_locked(self._path, lambda: _attach(con, self._path, row_group_rows), wait_s)
                outermost_only.callback(self._release, con)
            self._depth += 1
            try:
                yield con
            finally:
                self._depth -= 1

    def _release(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            duckdb_writes.checkpoint_if_due(con)
        finally:
            con.execute("use memory")
            con.execute(f"detach {DATABASE}")

    def stage_ids(self, found: Iterable[tuple[str, str]], *, seen_at: datetime,
                  sources: Sequence[SourceState] = (), run_id: str | None = None) -> int:
        with self._window() as con:
            return duckdb_writes.stage_ids(con, found, seen_at=seen_at, shard=self.shard, sources=sources,
                                           run_id=run_id, in_transaction=self._in_transaction)

    def source_states(self) -> list[SourceState]:
        with self._window() as con:
            return duckdb_writes.source_states(con, shard=self.shard)

    def forget_sources(self, pattern: str | None) -> int:
        with self._window() as con:
            return duckdb_writes.forget_sources(con, pattern)

    def write_activity(self, activity: pl.DataFrame) -> int:
        with self._window() as con:
            return duckdb_writes.write_activity(con, activity)

    def due_counts(self, *, now: datetime, refresh: bool = False, since: datetime | None = None,
                   until: datetime | None = None) -> dict[str, int]:
        with self._window() as con:
            return duckdb_writes.due_counts(con, now=now, refresh=refresh, since=since, until=until, shard=self.shard)

    def due_ids(self, *, now: datetime, refresh: bool = False, since: datetime | None = None,
                until: datetime | None = None) -> Iterator[list[str]]:
        with self._window() as con:
            snapshot = duckdb_writes.snapshot_due(con, now=now, refresh=refresh, since=since, until=until,
                                                  shard=self.shard)
        # The snapshot is this thread's temp table: read without the file.
        yield from duckdb_writes.due_chunks(self._cursor(), snapshot)

    def failed_waiting(self, *, since: datetime | None = None,
                       until: datetime | None = None) -> tuple[int, datetime | None]:
        with self._window() as con:
            return duckdb_writes.failed_waiting(con, since=since, until=until, shard=self.shard)

    def upsert_batch(self, batch: NormalizedBatch, queue_updates: Sequence[QueueUpdate], *, run_id: str,
                     run_counts: dict[str, int] | None = None) -> None:
        with self._window() as con:
            duckdb_writes.upsert_batch(con, batch, queue_updates, run_id=run_id, run_counts=run_counts)

    def copy_rows(self, table: str, rows: pl.DataFrame) -> int:
        with self._window() as con:
            return duckdb_writes.copy_rows(con, table, rows)

    def write_content(self, content: NormalizedContent, *, run_id: str, run_counts: dict[str, int] | None = None) -> int:
        with self._window(row_group_rows=CONTENT_ROW_GROUP_ROWS) as con:
            return duckdb_writes.write_content(con, content, run_id=run_id, run_counts=run_counts)

    def content_due_ids(self, *, since: datetime | None = None, until: datetime | None = None) -> Iterator[list[str]]:
        with self._window() as con:
            snapshot = duckdb_writes.snapshot_content_due(con, since=since, until=until, shard=self.shard)
        yield from duckdb_writes.due_chunks(self._cursor(), snapshot)

    def start_run(self, *, options: dict[str, Any]) -> str:
        with self._window() as con:
            return duckdb_writes.start_run(con, options=options)

    def finish_run(self, run_id: str, *, counts: dict[str, Any], outcome: str) -> None:
        with self._window() as con:
            duckdb_writes.finish_run(con, run_id, counts=counts, outcome=outcome)

    def purge_content(self, *, before: datetime | None = None, model: str | None = None,
                      everything: bool = False) -> int:
        """Delete content rows, then rewrite the file without them: DuckDB leaves a deleted row's
        bytes in the file's blocks (freed, not cleared) even after a checkpoint and a VACUUM, so
        the tables are copied into a new file (COPY FROM DATABASE) that replaces this one. A
        process killed meanwhile leaves the old file, its rows deleted, and a stray `.purge` file
        the next purge removes."""
        fresh = self._path.with_name(f".{self._path.name}.purge")
        for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
            leftover.unlink(missing_ok=True)
        with self._window() as con:
            deleted = duckdb_writes.purge_content(con, before=before, model=model, everything=everything)
            if not deleted:
                return 0
            con.execute("checkpoint")  # the log replayed into the file: nothing of it may outlive the swap
            con.execute(f"attach {_sql_text(str(fresh))} as _orusage_fresh (row_group_size {ROW_GROUP_ROWS})")
            try:
                con.execute(f"copy from database {DATABASE} to _orusage_fresh")
                con.execute("checkpoint _orusage_fresh")  # a detach leaves the log (see _instance)
            finally:
                con.execute("detach _orusage_fresh")
        if Path(f"{self._path}.wal").exists():
            raise WarehouseError(f"{self._path}: a write-ahead log appeared during the purge; run it again")
        os.chmod(fresh, self._path.stat().st_mode & 0o777)
        os.replace(fresh, self._path)
        return deleted

    @contextmanager
    def rolled_back(self) -> Iterator[None]:
        with self._window() as con:
            con.begin()
            self._in_transaction = True
            try:
                yield
            finally:
                self._in_transaction = False
                duckdb_writes.rollback_if_open(con)

    def close(self) -> None:
        """The WAL checkpointed (so readers need not replay it), the instance closed, the lock released."""
        instance = getattr(self, "_instance", None)
        if instance is not None:
            with contextlib.suppress(WarehouseError, duckdb.Error):
                with self._window() as con:
                    con.execute("checkpoint")
            instance.close()
        self._ingest_lock.release()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- readers ---------------------------------------------------------------------------------


@contextmanager
def _as_query_error() -> Iterator[None]:
    """A reader's SQL that DuckDB refuses, as the interface's QueryError (one line)."""
    try:
        yield
    except duckdb.Error as exc:
        raise QueryError(one_line(exc)) from None


class Reader:
    """Read-only access (interface.Reader): opened between two of an ingest's write windows,
    waiting up to `lock_timeout_s` for one to end.

    Readers cannot write, by construction: the file is open read-only, and with external access
    off no statement reaches the file system (COPY TO, ATTACH, INSTALL, read_csv of another file,
    even under EXPLAIN ANALYZE); the configuration is then locked so no statement can undo it."""

    def __init__(self, path: str | Path, *, lock_timeout_s: float = config.READ_LOCK_TIMEOUT_S) -> None:
        self._path = _checked_path(path, read_only=True)
        self.location = str(self._path)
        started = _monotonic()
        self._con = _retry_while_locked(
            self._path, lambda: duckdb.connect(str(self._path), read_only=True, config=OFFLINE), lock_timeout_s,
            reader=True)
        self.waited_s = _monotonic() - started  # for an ingest's write window, mostly (bench/ measures it)
        try:
            self._con.execute("set TimeZone = 'UTC'")
            if not check_readable(self._con, self._path):  # created by an ingest that has not migrated it yet
                raise WarehouseNotFoundError(f"no warehouse at {self._path} yet (an empty DuckDB file)")
            with contextlib.suppress(duckdb.Error):  # under Jupyter DuckDB refuses it without ipywidgets
                self._con.execute("set enable_progress_bar = false")  # no bars drawn into a report
            self._con.execute("set enable_external_access = false")
            self._con.execute("set lock_configuration = true")
        except BaseException:
            self._con.close()
            raise

    def rows(self, sql: str, params: dict[str, Any] | list[Any] | None = None) -> list[tuple[Any, ...]]:
        with _as_query_error():
            return self._con.execute(sql, params).fetchall() if params else self._con.execute(sql).fetchall()

    def frame(self, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
        with _as_query_error():
            relation = self._con.sql(sql, params=params or None)
            if relation is None:
                return pl.DataFrame()
            # polars cannot import INTERVAL or UNION columns (it panics): hand those over as text
            unsupported = [any(t in str(dtype) for t in ("INTERVAL", "UNION(")) for dtype in relation.types]
            if any(unsupported):
                quoted = ['"' + name.replace('"', '""') + '"' for name in relation.columns]
                relation = relation.project(
                    ", ".join(f"{q}::varchar as {q}" if bad else q for q, bad in zip(quoted, unsupported))
                )
            return pl.DataFrame(relation)

    def statement_kinds(self, sql: str) -> list[str]:
        with _as_query_error():
            return [statement.type.name for statement in self._con.extract_statements(sql)]

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

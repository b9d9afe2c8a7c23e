"""The warehouse: where generations, the queue and the runs live. One interface (interface.py:
what every backend guarantees), one module per backend behind it; callers open a Writer or a
Reader here and never import the database library for warehouse work.

Backends, chosen by the location: the DuckDB file (duckdb_file.py, the default) for a file path,
DuckLake (ducklake.py) for a `ducklake:postgres:...` or `ducklake:sqlite:...` location.
"""

from __future__ import annotations

from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pipeline import config
from pipeline.log_sources import SourceState, scope_of
from pipeline.warehouse.interface import (
    NOT_FOUND_GIVE_UP_AFTER,
    QUEUE_STATUSES,
    QueryError,
    QueueUpdate,
    Reader,
    WarehouseError,
    WarehouseLockedError,
    WarehouseNotFoundError,
    WarehouseTooNewError,
    Writer,
)
from pipeline.warehouse.sql_files import statement

__all__ = [
    "NOT_FOUND_GIVE_UP_AFTER", "QUEUE_STATUSES", "QueryError", "QueueUpdate", "Reader", "WarehouseError",
    "WarehouseLockedError", "WarehouseNotFoundError", "WarehouseTooNewError", "Writer", "open_reader", "open_writer",
    "maintain", "purge_content", "Shard", "source_states", "forget_sources", "has_table",
]  # fmt: skip


Shard = tuple[int, int]  # (index, count), from 0: `--shard 2/4` is (1, 4)


def open_writer(location: str | Path, *, lock_timeout_s: float = 0, data_path: str | None = None,
                shard: Shard | None = None) -> Writer:
    """The warehouse at `location` for an ingest run, created and migrated if need be; waits up to
    `lock_timeout_s` for another ingest to finish (the file's). `data_path`: where a new lake keeps
    its Parquet files. `shard`: only the ids of that shard are staged and fetched."""
    if config.is_lake(location):
        from pipeline.warehouse import ducklake

        return ducklake.Writer(str(location), data_path=data_path, shard=shard)
    if data_path:
        raise WarehouseError("--data-path is for a DuckLake warehouse (ducklake:...): a DuckDB file keeps its own data")
    from pipeline.warehouse import duckdb_file

    return duckdb_file.Writer(location, lock_timeout_s=lock_timeout_s, shard=shard)


def open_reader(location: str | Path, *, lock_timeout_s: float = config.READ_LOCK_TIMEOUT_S,
                at: int | datetime | None = None) -> Reader:
    """The warehouse at `location`, read-only; waits up to `lock_timeout_s` for an ingest's write
    window (the file's; a lake's readers never wait). `at`: a lake's snapshot id or a time."""
    if config.is_lake(location):
        from pipeline.warehouse import ducklake

        return ducklake.Reader(str(location), at=at)
    if at is not None:
        raise WarehouseError("--at (time travel) needs a DuckLake warehouse: a DuckDB file keeps no snapshots")
    from pipeline.warehouse import duckdb_file

    return duckdb_file.Reader(location, lock_timeout_s=lock_timeout_s)


def maintain(location: str | Path, *, keep_snapshots: timedelta) -> list[tuple[str, int]]:
    """`orusage maintain`: a lake's merge of small files, snapshot expiry (those older than
    `keep_snapshots` go) and file cleanup, by DuckLake's own functions; a DuckDB file's checkpoint."""
    if config.is_lake(location):
        from pipeline.warehouse import ducklake

        return ducklake.maintain(str(location), older_than=datetime.now(timezone.utc) - keep_snapshots)
    from pipeline.warehouse import duckdb_file

    with duckdb_file.Writer(location) as writer:  # closing it checkpoints the file
        pass
    return [("checkpointed (a DuckDB file needs nothing more)", 1)]


def purge_content(location: str | Path, *, before: datetime | None = None, model: str | None = None,
                  everything: bool = False, lock_timeout_s: float = 0) -> int:
    """`orusage purge-content`: delete stored content (of generations created before `before`, of
    models matching the glob `model`, or all), its bytes gone from the file or the lake's storage."""
    with closing(open_writer(location, lock_timeout_s=lock_timeout_s)) as writer:
        return writer.purge_content(before=before, model=model, everything=everything)


def source_states(location: str | Path, *, shard: Shard | None = None,
                  lock_timeout_s: float = config.READ_LOCK_TIMEOUT_S) -> list[SourceState]:
    """The log files the runs of `shard`'s scope have read into the warehouse, and how far (none for
    a warehouse that does not exist yet, or that an orusage without them wrote last)."""
    try:
        reader = open_reader(location, lock_timeout_s=lock_timeout_s)
    except WarehouseNotFoundError:
        return []
    with closing(reader):
        if not has_table(reader, "log_sources"):
            return []
        return [SourceState(*row) for row in reader.rows(statement("sources/states"), {"scope": scope_of(shard)})]


def forget_sources(location: str | Path, *, pattern: str | None = None, lock_timeout_s: float = 0) -> int:
    """`orusage forget-sources`: drop the state of the log files whose path matches the glob `pattern`
    (None: all of them), so that the next ingest reads them whole; how many rows."""
    with closing(open_writer(location, lock_timeout_s=lock_timeout_s)) as writer:
        return writer.forget_sources(pattern)


def has_table(reader: Reader, table: str) -> bool:
    """Whether the warehouse has `table` (one an older orusage wrote last may not)."""
    return bool(reader.rows("select count(*) from duckdb_tables() where table_name = $table "
                            "and database_name = current_database()", {"table": table})[0][0])

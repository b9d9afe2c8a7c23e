"""The warehouse: where generations, the queue and the runs live. One interface (interface.py:
what every backend guarantees), one module per backend behind it; callers open a Writer or a
Reader here and never import the database library for warehouse work.

Backends: the DuckDB file (duckdb_file.py, the default), chosen by the location: a file path.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import config
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

__all__ = [
    "NOT_FOUND_GIVE_UP_AFTER", "QUEUE_STATUSES", "QueryError", "QueueUpdate", "Reader", "WarehouseError",
    "WarehouseLockedError", "WarehouseNotFoundError", "WarehouseTooNewError", "Writer", "open_reader", "open_writer",
]  # fmt: skip


def open_writer(location: str | Path, *, lock_timeout_s: float = 0) -> Writer:
    """The warehouse at `location` for an ingest run, created and migrated if need be; waits up to
    `lock_timeout_s` for another ingest to finish."""
    from pipeline.warehouse import duckdb_file

    return duckdb_file.Writer(location, lock_timeout_s=lock_timeout_s)


def open_reader(location: str | Path, *, lock_timeout_s: float = config.READ_LOCK_TIMEOUT_S) -> Reader:
    """The warehouse at `location`, read-only; waits up to `lock_timeout_s` for an ingest's write window."""
    from pipeline.warehouse import duckdb_file

    return duckdb_file.Reader(location, lock_timeout_s=lock_timeout_s)

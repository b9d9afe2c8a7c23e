"""`orusage copy`: every row of one warehouse into another (a DuckDB file into a lake, a lake into
a file, or one lake into another), exactly: the same rows and the same values.

Batch by batch with bounded memory: each table is read in COPY_CHUNK_ROWS-row pages in the order of
its key (keyset paging: `where key > the last page's last key`, so a lake's `ingest_queue` view,
which has no rowid, pages the same way), and each page is one transaction on the target that
inserts only the rows whose key the target lacks (Writer.copy_rows). So an interrupted copy is resumed by running it again, and copying into
a warehouse that already holds some of the rows adds the others. The queue goes last, so a target
never says `loaded` for an id whose generation it lacks, and the log files' record after it, so a
target never holds the record of a file without the ids found in it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from pipeline import config
from pipeline.warehouse import open_reader, open_writer
from pipeline.warehouse.duckdb_writes import TABLE_KEYS
from pipeline.warehouse.interface import WarehouseError

COPY_CHUNK_ROWS = 16_384  # ~32 MB of generations (`raw` is most of a row)
CONTENT_CHUNK_ROWS = 256  # a stored prompt can be megabytes
TABLES_IN_ORDER = ("generations", "provider_responses", "ingest_runs", "ingest_queue", "log_sources",
                   "generation_content_rows", "generation_content_parts", "activity")
assert set(TABLES_IN_ORDER) == set(TABLE_KEYS)


def copy_warehouse(source: str | Path, target: str | Path, *, data_path: str | None = None,
                   on_progress: Callable[[str, int, int], None] = lambda table, copied, read: None,
                   chunk_rows: int = COPY_CHUNK_ROWS) -> dict[str, dict[str, int]]:
    """Copy `source` into `target` (created if need be; `data_path` for a new lake); returns, by
    table, the rows read and the rows inserted (fewer on a resumed copy)."""
    if _same(source, target):
        raise WarehouseError("copy: the source and the target are the same warehouse")
    totals: dict[str, dict[str, int]] = {}
    with closing(open_reader(source)) as reader, closing(open_writer(target, data_path=data_path)) as writer:
        for table in TABLES_IN_ORDER:
            columns = ", ".join(f'"{name}"' for (name,) in reader.rows(
                "select column_name from information_schema.columns where table_catalog = current_database() "
                "and table_name = ? order by ordinal_position", [table]))
            if not columns:  # a warehouse of an older orusage, without that table
                continue
            limit = min(chunk_rows, CONTENT_CHUNK_ROWS) if table.startswith("generation_content") else chunk_rows
            keys = TABLE_KEYS[table]
            order = ", ".join(keys)
            after = f"where ({order}) > ({', '.join(f'$k{i}' for i in range(len(keys)))})"
            read = copied = 0
            last: tuple | None = None
            while True:
                rows = reader.frame(
                    f"select {columns} from {table} {after if last else ''} order by {order} limit {int(limit)}",
                    {f"k{i}": value for i, value in enumerate(last)} if last else None)
                if not rows.height:
                    break
                read += rows.height
                copied += writer.copy_rows(table, rows)
                on_progress(table, copied, read)
                last = rows.select(keys).row(-1)
            totals[table] = {"read": read, "copied": copied}
    return totals


def _same(source: str | Path, target: str | Path) -> bool:
    if config.is_lake(source) or config.is_lake(target):
        return str(source) == str(target)
    return Path(source).resolve() == Path(target).resolve()

"""The parts of the peer scripts that are not the point of the comparison: finding ids, the table, the summary.

Written the way a user's own script would do them: a regex over every file (gzip too), a small
DuckDB table keyed on `id` with a handful of columns and the record as JSON, rows inserted in
bulk every 1,000 (row-by-row inserts run at ~270 rows/s in DuckDB: a strawman, not a peer).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import polars as pl

ID = re.compile(rb"gen-[0-9]{10}-[A-Za-z0-9]{20}")
INSERT_EVERY = 1_000

TABLE = """
create table if not exists generations (
    id varchar primary key,
    created_at timestamptz,
    model varchar,
    provider_name varchar,
    total_cost double,
    tokens_prompt bigint,
    tokens_completion bigint,
    latency double,
    raw json
)
"""
SCHEMA = {
    "id": pl.String, "created_at": pl.String, "model": pl.String, "provider_name": pl.String,
    "total_cost": pl.Float64, "tokens_prompt": pl.Int64, "tokens_completion": pl.Int64, "latency": pl.Float64,
    "raw": pl.String,
}


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--logs", required=True, help="a folder of logs (every file, .gz too)")
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:PORT/api/v1")
    parser.add_argument("--warehouse", required=True, help="DuckDB file to load into")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print one JSON object (always JSON; kept for symmetry)")
    return parser.parse_args()


def ids_from_logs(folder: str) -> list[str]:
    """Distinct ids in order of first sighting."""
    seen: dict[str, None] = {}
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file():
            continue
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as lines:
            for line in lines:
                for match in ID.findall(line):
                    seen.setdefault(match.decode(), None)
    return list(seen)


def row(record: dict) -> tuple:
    return (
        record["id"], record["created_at"], record["model"], record.get("provider_name"),
        record["total_cost"], record.get("tokens_prompt"), record.get("tokens_completion"),
        record.get("latency"), json.dumps(record),
    )


class ArrowStream:
    """Hands a polars frame to DuckDB over the Arrow C stream (DuckDB's polars path wants pyarrow, absent here)."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self.frame.__arrow_c_stream__(requested_schema)


class Table:
    """The `generations` table, filled in bulk."""

    def __init__(self, path: str) -> None:
        self.con = duckdb.connect(path)
        self.con.execute(TABLE)
        self.pending: list[tuple] = []

    def add(self, values: tuple) -> None:
        self.pending.append(values)
        if len(self.pending) >= INSERT_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        batch = ArrowStream(pl.DataFrame(self.pending, schema=SCHEMA, orient="row"))  # noqa: F841 (read below)
        self.con.execute("insert or replace into generations select * replace (created_at::timestamptz as created_at, "
                         "raw::json as raw) from batch")
        self.pending = []

    def close(self) -> tuple[int, int]:
        """Flush; (rows, total cost in nano-USD)."""
        self.flush()
        rows, cost = self.con.execute(
            "select count(*), coalesce(sum(round(total_cost * 1e9)), 0)::hugeint from generations").fetchone()
        self.con.close()
        return int(rows), int(cost)


def report(*, ids: int, rows: int, cost_nusd: int, errors: Counter[str], started: float, **extra: object) -> None:
    """One JSON object on stdout: what this script saw (the harness measures time, CPU and memory itself)."""
    print(json.dumps({
        "ids_in_logs": ids, "rows": rows, "cost_nusd": cost_nusd, "errors": dict(errors),
        "ids_failed": sum(errors.values()), "elapsed_s": round(time.perf_counter() - started, 3), **extra,
    }))
    sys.stdout.flush()

"""The warehouses the end-to-end tests run against: the DuckDB file, a DuckLake with a SQLite
catalog and local data, and a DuckLake with a PostgreSQL catalog and its data on an S3 server.

The PostgreSQL and S3 servers are the ones .ci/run starts; they are named by
ORUSAGE_TEST_POSTGRES (a libpq connection string without dbname, e.g. "host=127.0.0.1
user=orusage password=...") and ORUSAGE_TEST_S3 (the S3 server's URL; the AWS_* variables hold
its credentials). Under CI (CI set) a missing server fails the test; elsewhere it is skipped,
saying which variable to set.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pipeline import warehouse

KINDS = ("file", "lake_sqlite", "lake_postgres_s3")


@dataclass(frozen=True)
class Target:
    """A warehouse for one test: where it is, and where a new lake keeps its files."""

    kind: str
    location: Path | str
    data_path: str | None = None
    files: Path | None = None  # local files that hold the warehouse (to search them for secrets)

    @property
    def is_lake(self) -> bool:
        return self.kind != "file"


def server_or_fail(variable: str) -> str:
    value = os.environ.get(variable)
    if value:
        return value
    message = f"{variable} is not set: this test needs the server .ci/run starts"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def make_target(kind: str, tmp_path: Path) -> Iterator[Target]:
    if kind == "file":
        yield Target(kind, tmp_path / "warehouse.duckdb", files=tmp_path)
    elif kind == "lake_sqlite":
        yield Target(kind, f"ducklake:sqlite:{tmp_path / 'catalog.sqlite'}", str(tmp_path / "lake") + "/", files=tmp_path)
    else:
        yield from _postgres_s3_target(tmp_path)


def _postgres_s3_target(tmp_path: Path) -> Iterator[Target]:
    connection = server_or_fail("ORUSAGE_TEST_POSTGRES")
    endpoint = server_or_fail("ORUSAGE_TEST_S3")
    name = f"lake_test_{secrets.token_hex(4)}"
    maintenance = f"{connection} dbname=postgres"
    subprocess.run(["createdb", f"--maintenance-db={maintenance}", name], check=True, timeout=30,
                   capture_output=True)
    bucket = name.replace("_", "-")
    httpx.put(f"{endpoint.rstrip('/')}/{bucket}", timeout=10).raise_for_status()
    try:
        yield Target("lake_postgres_s3", f"ducklake:postgres:{connection} dbname={name}", f"s3://{bucket}/lake/")
    finally:
        subprocess.run(["dropdb", "--force", f"--maintenance-db={maintenance}", name], timeout=30,
                       capture_output=True)


def secrets_of(target: Target) -> list[str]:
    """The secrets a lake target was opened with (its catalog password, the S3 secret key): none of
    them may end up in the warehouse."""
    if target.kind != "lake_postgres_s3":
        return []
    passwords = [part.split("=", 1)[1] for part in str(target.location).split() if part.startswith("password=")]
    return [*passwords, *filter(None, [os.environ.get("PGPASSWORD"), os.environ.get("AWS_SECRET_ACCESS_KEY")])]


def read(target: Target | Path | str, sql: str, parameters: list[object] | None = None) -> list[tuple]:
    """Rows of a query on the warehouse, through a reader (as reports see it)."""
    location = target.location if isinstance(target, Target) else target
    with warehouse.open_reader(location) as reader:
        return reader.rows(sql, parameters)

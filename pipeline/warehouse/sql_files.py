"""The warehouse's SQL, read from `sql/`: the migrations (sql/schema/NNN_name.sql), the macros and
views every writer (re)creates, and the named statements the backends run (sql/queue/, sql/runs/,
sql/status/), one per file, named after what it does."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from pipeline import config
from pipeline.warehouse.interface import WarehouseError

SQL_DIR = config.SQL_DIR
SCHEMA_DIR = SQL_DIR / "schema"
VIEWS_DIR = SQL_DIR / "views"
MACROS_DIR = SQL_DIR / "macros"  # the views, reports and queue statements call them

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def migrations(dialect: str = "duckdb") -> list[tuple[int, str, Path | None]]:
    """(version, name, file) of every sql/schema/NNN_name.sql, in order.

    For `dialect` "ducklake", a file sql/schema/ducklake/NNN_name.sql replaces the migration of its
    number, and the migrations below the first of those have no file (None): DuckLake declares no
    keys or checks, so its first file creates at once the schema they had built, and a lake records
    them as applied with it. Every migration after it must run on both, or have its own lake file."""
    found = _migration_files(SCHEMA_DIR)
    if dialect == "duckdb":
        return found
    own = {version: (version, name, file) for version, name, file in _migration_files(SCHEMA_DIR / dialect)}
    names = {version: name for version, name, _ in found}
    for version, name, file in own.values():
        if names.get(version) != name:
            raise WarehouseError(f"{file}: no sql/schema/ migration {version:03d} of that name to replace")
    baseline = min(own, default=0)
    return [own.get(version) or (version, name, None if version < baseline else file)
            for version, name, file in found]


def _migration_files(folder: Path) -> list[tuple[int, str, Path]]:
    found = []
    for file in sorted(folder.glob("*.sql")):
        match = _MIGRATION_NAME.match(file.name)
        if match is None:
            raise WarehouseError(f"{file}: a migration file must be named NNN_name.sql")
        found.append((int(match[1]), file.stem, file))
    versions = [version for version, _, _ in found]
    if len(set(versions)) != len(versions):
        raise WarehouseError(f"{folder}: two migrations share a number")
    return found


def latest_version() -> int:
    return max(version for version, _, _ in migrations())


def macro_files() -> list[Path]:
    return sorted(MACROS_DIR.glob("*.sql"))


def view_files() -> list[Path]:
    return sorted(VIEWS_DIR.glob("*.sql"))


@cache
def statement(name: str, dialect: str = "duckdb") -> str:
    """The statement in sql/<name>.sql (`queue/due`, `status/last_runs`...); for the "ducklake"
    dialect the one in sql/<group>/ducklake/ instead, where the lake needs its own."""
    group, _, file = name.rpartition("/")
    own = SQL_DIR / group / dialect / f"{file}.sql"
    if dialect != "duckdb" and own.is_file():
        return own.read_text()
    return (SQL_DIR / f"{name}.sql").read_text()

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


def migrations() -> list[tuple[int, str, Path]]:
    """(version, name, file) of every sql/schema/NNN_name.sql, in order."""
    found = []
    for file in sorted(SCHEMA_DIR.glob("*.sql")):
        match = _MIGRATION_NAME.match(file.name)
        if match is None:
            raise WarehouseError(f"{file}: a migration file must be named NNN_name.sql")
        found.append((int(match[1]), file.stem, file))
    versions = [version for version, _, _ in found]
    if len(set(versions)) != len(versions):
        raise WarehouseError(f"{SCHEMA_DIR}: two migrations share a number")
    return found


def latest_version() -> int:
    return max(version for version, _, _ in migrations())


def macro_files() -> list[Path]:
    return sorted(MACROS_DIR.glob("*.sql"))


def view_files() -> list[Path]:
    return sorted(VIEWS_DIR.glob("*.sql"))


@cache
def statement(name: str) -> str:
    """The statement in sql/<name>.sql (`queue/due`, `status/last_runs`...)."""
    return (SQL_DIR / f"{name}.sql").read_text()

"""Migrations, macros and views, on an open DuckDB connection to a warehouse: the DuckDB file's or
a DuckLake's (`dialect` picks the migration files, see sql_files.migrations). Shared by both
backends, so a query written against one runs unchanged on the other."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from pipeline.warehouse import duckdb_writes
from pipeline.warehouse.interface import WarehouseError, WarehouseTooNewError
from pipeline.warehouse.sql_files import latest_version, macro_files, migrations, view_files

_CREATE_MACRO = re.compile(r"^create or replace macro ", re.MULTILINE)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def check_readable(con: duckdb.DuckDBPyConnection, path: Path | str, dialect: str = "duckdb") -> set[int]:
    """The file's applied migrations, after refusing another tool's file or a newer orusage's."""
    con.begin()  # one snapshot for both reads: a lake another process is creating is all or nothing
    try:
        applied = _applied_versions(con, dialect)
        if not applied and con.execute(
            "select (select count(*) from duckdb_tables()) + (select count(*) from duckdb_views() where not internal)"
        ).fetchall()[0][0]:
            raise WarehouseError(f"{path} is not an orusage warehouse (it has no schema_migrations)")
    finally:
        duckdb_writes.rollback_if_open(con)
    _refuse_newer(con, path, applied)
    _create_connection_macros(con)
    return applied


# --- migrations and views --------------------------------------------------------------------


def _applied_versions(con: duckdb.DuckDBPyConnection, dialect: str = "duckdb") -> set[int]:
    exists = con.execute(
        "select count(*) from information_schema.tables where table_name = 'schema_migrations' "
        "and table_catalog = current_database()"
    ).fetchall()[0][0]
    if not exists:
        return set()
    # Another tool's `schema_migrations` (Rails, dbmate...) is not ours: every row must name one of
    # our migrations, under its number (a newer orusage's numbers, unknown here, are let through).
    known = {version: name for version, name, _ in migrations(dialect)}
    try:
        rows = con.execute("select version, name from schema_migrations").fetchall()
    except duckdb.Error:
        rows = None
    if rows is None or any(not isinstance(version, int) or known.get(version, name) != name for version, name in rows):
        raise WarehouseError(f"{_database_path(con)} is a DuckDB file but not an orusage warehouse "
                             "(its schema_migrations is another tool's)")
    return {version for version, _ in rows}


def _database_path(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("select path from duckdb_databases() where database_name = current_database()").fetchall()[0][0]


def _refuse_newer(con: duckdb.DuckDBPyConnection, path: Path | str, applied: set[int]) -> None:
    known = latest_version()
    if applied and max(applied) > known:
        raise WarehouseTooNewError(
            f"warehouse {path} was written by a newer orusage (schema version {max(applied)}; this "
            f"one knows up to {known}): upgrade orusage to use it"
        )


def migrate(con: duckdb.DuckDBPyConnection, path: Path | str, dialect: str = "duckdb") -> bool:
    """Apply the pending migrations in one transaction; whether there were any. What is applied is
    read in that transaction too: another process migrating a new lake at the same moment is then
    seen as all or nothing, and the later commit conflicts (and is retried) instead of misjudging."""
    con.begin()
    try:
        applied = _applied_versions(con, dialect)
        if not applied and con.execute(
            "select count(*) from duckdb_tables() where database_name = current_database() and not temporary"
        ).fetchall()[0][0] + con.execute(
            "select count(*) from duckdb_views() where database_name = current_database() and not internal"
        ).fetchall()[0][0]:
            raise WarehouseError(f"{path} is not an orusage warehouse (it has no schema_migrations): "
                                 "refusing to add orusage's tables to it")
        _refuse_newer(con, path, applied)
        pending = [(version, name, file) for version, name, file in migrations(dialect) if version not in applied]
        if not pending:
            con.rollback()
            return False
        folded: list[tuple[int, str]] = []  # migrations without a file: recorded with the next file's
        for version, name, file in pending:
            folded.append((version, name))
            if file is None:
                continue
            try:
                con.execute(file.read_text())
            except duckdb.Error as exc:
                raise WarehouseError(f"{file}: migration failed: {one_line(exc)}") from None
            con.executemany("insert into schema_migrations (version, name) values (?, ?)", folded)
            folded = []
        con.commit()
        return True
    except BaseException:
        duckdb_writes.rollback_if_open(con)
        raise


def create_macros_and_views(con: duckdb.DuckDBPyConnection) -> None:
    """Every sql/macros/*.sql (`create or replace macro`) and sql/views/*.sql (`create or replace
    view`), stored in the file."""
    files = [*macro_files(), *view_files()]
    _create_in_order(con, [(file, file.read_text()) for file in files])


def _create_connection_macros(con: duckdb.DuckDBPyConnection) -> None:
    """A read-only connection cannot store the macros the reports call, and the file may have been
    last opened for writing by an older orusage (without them, or with older ones): so it gets its
    own, in its temporary catalog, which DuckDB searches before the file's. If they cannot be made
    (views too old for them), the file's own, if any, still serve, and status and queries work."""
    temporary = [
        (file, _CREATE_MACRO.sub("create or replace temp macro ", file.read_text()))
        for file in macro_files()
    ]
    try:
        _create_in_order(con, temporary)
    except WarehouseError:
        pass


def _create_in_order(con: duckdb.DuckDBPyConnection, statements: list[tuple[Path, str]]) -> None:
    """Each file's statement, in the order given, repeated while some fail for want of an object
    created later: DuckDB checks a view or a table macro against what it reads when it is created.
    Each statement commits on its own (a failed one would abort a shared transaction)."""
    waiting = statements
    while waiting:
        failed: list[tuple[Path, str]] = []
        errors: list[str] = []
        for file, sql in waiting:
            try:
                con.execute(sql)
            except duckdb.CatalogException as exc:
                failed.append((file, sql))
                errors.append(f"{file}: {one_line(exc)}")
            except duckdb.TransactionException:
                raise  # another writer created it at the same moment (a lake's): the caller retries
            except duckdb.Error as exc:
                raise WarehouseError(f"{file}: {one_line(exc)}") from None
        if len(failed) == len(waiting):
            raise WarehouseError(errors[0])
        waiting = failed

"""What every warehouse backend offers its callers (ingest, reports, the CLI, the notebook API),
and the errors and records they share. Knows no database library.

A backend is two objects: a `Writer` (one per ingest run) and a `Reader` (one per report, query or
notebook call). What each backend must guarantee:

- **Migrations.** Opening a writer applies the pending `sql/schema/` migrations once, in one
  transaction, and (re)creates the `sql/macros/` and `sql/views/` objects; it refuses a warehouse
  migrated by a newer orusage (WarehouseTooNewError) and a database that is not orusage's.
  Opening a reader migrates nothing.
- **One transaction per batch.** `upsert_batch` writes the batch's generations, their provider
  responses, its queue updates and the run's counters together, or nothing: a process killed at
  any moment leaves each batch wholly written or not at all. Re-applying a batch changes nothing
  but `ingest_queue.updated_at` (an unchanged record is not rewritten).
- **Log sources with their ids.** `stage_ids` records the states of the log files read to their
  end in the transaction that queues their last ids: a state is never committed without the ids
  found up to its offset (pipeline/log_sources.py).
- **Content, written once.** `write_content` inserts only the `generation_content` rows whose id
  has none (a rerun writes nothing); `purge_content` deletes rows so that their text is gone from
  the storage's bytes too, not only from the table.
- **Keys without declared constraints.** `generations.id`, `provider_responses (generation_id,
  attempt)` and `ingest_queue.generation_id` are unique because the writes insert only the keys
  they do not find stored (DuckLake declares no keys at all; the DuckDB file keeps none either, see
  sql/schema/006): a batch must not repeat a key (ValueError).
- **Readers during loads.** A reader opened while a writer runs answers from the writer's last
  committed batch: on the DuckDB file within its `lock_timeout_s` (past it, WarehouseLockedError
  names the writer and how long the reader waited), on a lake at once, from its last snapshot (or
  an older one: `at`). A reader cannot change the warehouse or reach other files.
- **Errors.** Everything a caller must handle about the warehouse itself (missing, locked, too
  new, not a warehouse, unreachable) is a WarehouseError with a one-line message; a reader's SQL
  that fails is a QueryError. No database library's exception reaches a caller.
- **Several writers** (DuckLake): each writes its own ids (`--shard`), and a batch only appends
  (sql/schema/ducklake/006), so writers do not abort each other's commits; a write that conflicts
  anyway is retried whole (`commits_retried`). On the DuckDB file one writer at a time (a second
  one waits up to its `lock_timeout_s`, then WarehouseLockedError).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import polars as pl

from pipeline.log_sources import SourceState
from pipeline.normalize import NormalizedBatch, NormalizedContent

QUEUE_STATUSES = ("pending", "loaded", "not_found", "failed")
# `not_found` ids are re-checked until they are this old (by the timestamp in the id): the API's
# lag is seconds to minutes, so an id still unknown after a week will not appear.
NOT_FOUND_GIVE_UP_AFTER = timedelta(days=7)


class WarehouseError(Exception):
    """The warehouse cannot be used as asked; the message says why, in one line."""


class WarehouseLockedError(WarehouseError):
    """Another process holds the warehouse longer than the caller would wait."""


class WarehouseTooNewError(WarehouseError):
    """The warehouse was migrated by a newer orusage than this one."""


class WarehouseNotFoundError(WarehouseError):
    """A reader asked for a warehouse that does not exist."""


class QueryError(ValueError):
    """A reader's SQL failed (a syntax error, an unknown column...): the database's one-line message."""


@dataclass(frozen=True, slots=True)
class QueueUpdate:
    generation_id: str
    status: str  # loaded | not_found | failed
    attempts: int  # requests made for this id by the run reporting it
    last_http_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None


class Writer(Protocol):
    """An ingest run's access to the warehouse. Safe to use from two threads (the ingest's main
    thread reads due ids while its writer thread upserts batches)."""

    location: str
    shard: tuple[int, int] | None  # (index, count): only that shard's ids are staged and due
    commits_retried: int  # writes retried after a conflict with another writer (a lake's), so far

    def stage_ids(self, found: Iterable[tuple[str, str]], *, seen_at: datetime,
                  sources: Sequence[SourceState] = (), run_id: str | None = None) -> int:
        """Queue the ids not queued yet as `pending`, with where they were first seen, and record the
        states of `sources` (log files read to their end, whose ids are all among these or queued
        before), in ONE transaction; how many ids were new."""

    def source_states(self) -> list[SourceState]:
        """The log files the runs of this writer's scope (its shard's, or unsharded) have read, and how far."""

    def forget_sources(self, pattern: str | None) -> int:
        """Drop the state of the files whose path matches the glob `pattern` (None: all); how many."""

    def write_activity(self, activity: pl.DataFrame) -> int:
        """Replace the stored /activity rows of the days in `activity` by its rows (normalize.
        normalize_activity's frame), in ONE transaction; how many rows."""

    def due_counts(self, *, now: datetime, refresh: bool = False, since: datetime | None = None,
                   until: datetime | None = None) -> dict[str, int]:
        """How many ids due_ids would yield, by status."""

    def due_ids(self, *, now: datetime, refresh: bool = False, since: datetime | None = None,
                until: datetime | None = None) -> Iterator[list[str]]:
        """The ids to fetch now, in chunks, from a snapshot taken at the first chunk (writes while
        iterating change nothing yielded): pending ones, failed and not_found ones whose retry is
        due (not_found ones younger than NOT_FOUND_GIVE_UP_AFTER), loaded ones too with `refresh`,
        only those whose id time is in since <= t < until."""

    def failed_waiting(self, *, since: datetime | None = None,
                       until: datetime | None = None) -> tuple[int, datetime | None]:
        """How many ids of the window are `failed` (waiting for a retry), and when the first is due."""

    def upsert_batch(self, batch: NormalizedBatch, queue_updates: Sequence[QueueUpdate], *, run_id: str,
                     run_counts: dict[str, int] | None = None) -> None:
        """Write one batch, its queue updates and the run's counters so far in ONE transaction."""

    def copy_rows(self, table: str, rows: pl.DataFrame) -> int:
        """Insert, in one transaction, the rows of `table` (one of duckdb_writes.TABLE_KEYS) whose
        key is not stored yet; how many (`orusage copy`: a rerun inserts nothing twice)."""

    def write_content(self, content: NormalizedContent, *, run_id: str, run_counts: dict[str, int] | None = None) -> int:
        """Insert a batch of content (normalize.normalize_content's rows and parts) whose id has
        none stored, with the run's counters (the file's), in ONE transaction; how many were new."""

    def content_due_ids(self, *, since: datetime | None = None, until: datetime | None = None) -> Iterator[list[str]]:
        """The loaded generations (of the window and shard) without a content row, in chunks, from
        a snapshot taken at the first chunk."""

    def purge_content(self, *, before: datetime | None = None, model: str | None = None,
                      everything: bool = False) -> int:
        """Delete the content of generations created before `before`, of models matching the glob
        `model`, or all of it, so that its bytes are gone from the storage too; how many rows."""

    def start_run(self, *, options: dict[str, Any]) -> str:
        """Record a run's start (options without any secret); returns its id."""

    def finish_run(self, run_id: str, *, counts: dict[str, Any], outcome: str) -> None:
        """Record a run's end: outcome, counters, error."""

    def rolled_back(self) -> AbstractContextManager[None]:
        """A transaction around the block that is always rolled back (a dry run): the block's
        stage_ids and due_counts see their own writes, nothing stays."""

    def close(self) -> None: ...


class Reader(Protocol):
    """Read-only access for one report, query or status; close it when done."""

    location: str

    def rows(self, sql: str, params: dict[str, Any] | list[Any] | None = None) -> list[tuple[Any, ...]]: ...

    def frame(self, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
        """The result as a polars frame (types polars cannot hold, such as INTERVAL, as text)."""

    def statement_kinds(self, sql: str) -> list[str]:
        """The kind of each statement in `sql` (`SELECT`, `EXPLAIN`, `COPY`...), without running any."""

    def close(self) -> None: ...

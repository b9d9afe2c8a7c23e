"""The nightly job, and nothing else: logs -> queue -> fetch -> normalize -> upsert.

The warehouse is the only checkpoint. Ids found in the logs are staged in `ingest_queue` first;
the ids that are due are then read back in chunks, fetched concurrently, and every batch of
outcomes is normalized and upserted together with its queue updates in ONE transaction. A run
killed at any moment therefore loses at most the batch in flight, which the next run fetches
again; an id whose row is committed is never fetched again (unless `refresh`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pipeline import config, errors, warehouse
from pipeline.client import (
    APIUnreachableError,
    APIUnusableError,
    Failed,
    FatalAPIError,
    Loaded,
    NotFound,
    OpenRouterClient,
    Outcome,
    RetryPolicy,
)
from pipeline.fetch import fetch_generations
from pipeline.log_sources import SourceState, SourceTracker
from pipeline.logs import ScanStats, scan_logs
from pipeline.normalize import normalize_bodies, normalize_content

# A `failed` id is due again on the next run; a `not_found` one an hour later (the API's lag is
# seconds to minutes), until it is a week old (sql/queue/due.sql applies the age limit).
NOT_FOUND_RECHECK_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class IngestOptions:
    paths: tuple[str, ...]
    warehouse_path: Path | str  # a DuckDB file, or a DuckLake location (`ducklake:...`)
    data_path: str | None = None  # where a new lake keeps its Parquet files (a folder or s3://...)
    shard: warehouse.Shard | None = None  # (index, count): only the ids of that shard
    base_url: str | None = None
    concurrency: int = 32
    max_rps: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    refresh: bool = False
    rescan: bool = False  # read every log whole, as if no run had read it before (its state rebuilt)
    dry_run: bool = False
    batch_size: int = 2_500  # results per transaction; memory, measured: see warehouse.duckdb_writes.MEMORY_LIMIT_MB
    batch_seconds: float = 2.0
    lock_timeout_s: float = 0.0
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    demo: bool = False  # a run of `orusage demo`: only such a warehouse may the demo replace
    with_content: bool = False  # also fetch /generation/content for loaded generations without it
    content_only: bool = False  # only that: no logs read, no metadata fetched
    max_content_bytes: int = config.DEFAULT_MAX_CONTENT_BYTES

    def for_the_record(self) -> dict[str, object]:
        """The options as stored in `ingest_runs` (there is no key among them, by construction)."""
        record = asdict(self)
        record["paths"] = list(self.paths)
        record["warehouse_path"] = config.redacted(self.warehouse_path)
        record["shard"] = list(self.shard) if self.shard else None
        for name in ("since", "until"):
            value = record[name]
            record[name] = value.isoformat() if value else None
        return record


@dataclass
class Progress:
    """Counters of one run; the progress display and the summary read the same object."""

    ids_in_logs: int = 0
    ids_new: int = 0
    ids_due: int = 0
    done: int = 0
    loaded: int = 0
    not_found: int = 0
    failed: int = 0
    rejected: int = 0
    requests: int = 0
    retries: int = 0
    responses_429: int = 0
    batches_written: int = 0
    commits_retried: int = 0  # batches written again after a conflict with another writer (a lake's)
    content_due: int = 0  # loaded generations without stored content, when the content phase began
    content_stored: int = 0
    content_none_stored: int = 0  # 200 with nothing stored (logging off, zero data retention)
    content_not_found: int = 0
    content_failed: int = 0  # not_found, failed and rejected ones are asked again by the next run
    content_rejected: int = 0
    content_refused: str | None = None  # the API's 403 to /generation/content: content off for the run
    settled_rps: float | None = None  # the adaptive rate after the run's 429s (None: none came)
    waiting: int = 0  # failed ids in the queue after the run (this run's and earlier ones)
    next_due_at: datetime | None = None  # when the first of them is due again
    started_monotonic: float = field(default_factory=time.monotonic)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started_monotonic


OUTCOME_EXIT_CODES: dict[str, config.ExitCode] = {
    "ok": config.ExitCode.OK,
    "dry_run": config.ExitCode.OK,
    "some_failed": config.ExitCode.SOME_FAILED,
    "interrupted": config.ExitCode.SOME_FAILED,
    "no_input": config.ExitCode.USAGE,
    "key_refused": config.ExitCode.KEY_REFUSED,
    "api_unreachable": config.ExitCode.SOME_FAILED,
    "api_unusable": config.ExitCode.USAGE,
    "content_refused": config.ExitCode.KEY_REFUSED,  # metadata loaded; the key may not read content
    "crashed": config.ExitCode.CRASHED,
    "warehouse_unavailable": config.ExitCode.USAGE,  # raised as the WarehouseError, recorded if it can be
}


class IngestCrashed(Exception):
    """An unexpected error ended the run; it is recorded in the run's row (outcome `crashed`) with
    this one-line message, and the original exception is chained (`__cause__`) for the traceback."""

    def __init__(self, run_id: str, message: str) -> None:
        self.run_id = run_id
        super().__init__(message)


@dataclass
class RunSummary:
    run_id: str
    outcome: str  # one of OUTCOME_EXIT_CODES
    progress: Progress
    scan: ScanStats
    due_by_status: dict[str, int]
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return OUTCOME_EXIT_CODES[self.outcome]

    def as_dict(self) -> dict[str, object]:
        p = self.progress
        return {
            "run_id": self.run_id,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "error": self.error,
            "elapsed_s": round(p.elapsed_s, 3),
            "ids_in_logs": p.ids_in_logs,
            "ids_new": p.ids_new,
            "ids_due": p.ids_due,
            "due_by_status": self.due_by_status,
            "loaded": p.loaded,
            "not_found": p.not_found,
            "failed": p.failed,
            "rejected": p.rejected,
            "requests": p.requests,
            "retries": p.retries,
            "responses_429": p.responses_429,
            "batches_written": p.batches_written,
            "commits_retried": p.commits_retried,
            "content": None if not p.content_due and not p.content_refused else {
                "due": p.content_due, "stored": p.content_stored, "none_stored": p.content_none_stored,
                "not_found": p.content_not_found, "failed": p.content_failed, "rejected": p.content_rejected,
                "refused": p.content_refused,
            },
            "settled_rps": None if p.settled_rps is None else round(p.settled_rps, 1),
            "failed_waiting": p.waiting,
            "next_due_at": p.next_due_at.isoformat() if p.next_due_at else None,
            "files_read": self.scan.files_read,
            "files_unchanged": self.scan.files_unchanged,
            "files_continued": self.scan.files_continued,
            "files_skipped": self.scan.files_skipped,
            "bytes_read": self.scan.bytes_read,
            "bytes_skipped": self.scan.bytes_skipped,
        }


ProgressCallback = Callable[[Progress], None]


def ingest(
    options: IngestOptions,
    *,
    api_key: str | config.ApiKey | None,
    on_progress: ProgressCallback | None = None,
    warn: Callable[[str], None] | None = None,
) -> RunSummary:
    """Run the whole line once. Raises warehouse errors (locked, too new) before any work.

    A dry run never creates the warehouse: without one, it counts against an empty warehouse made
    in a temporary folder."""
    with contextlib.ExitStack() as stack:
        path = options.warehouse_path
        if options.dry_run and not config.is_lake(path) and not path.exists():
            path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="orusage-dry-run-"))) / path.name
        store = warehouse.open_writer(path, lock_timeout_s=options.lock_timeout_s, data_path=options.data_path,
                                      shard=options.shard)
        stack.callback(store.close)
        return _ingest(store, options, api_key=api_key, on_progress=on_progress or (lambda _: None), warn=warn)


def _ingest(store: warehouse.Writer, options: IngestOptions, *, api_key, on_progress: ProgressCallback,
            warn) -> RunSummary:
    progress = Progress()
    scan = ScanStats()
    run_id = store.start_run(options=options.for_the_record())
    try:
        return _run(store, run_id, options, api_key, progress, scan, on_progress, warn)
    except KeyboardInterrupt:  # while the logs were read (the fetch handles its own): nothing fetched
        summary = RunSummary(run_id, "interrupted", progress, scan, {}, "interrupted")
        _record_end(store, summary)
        return summary
    except warehouse.WarehouseError as exc:  # a reader kept the file open past the writer's wait, say
        summary = RunSummary(run_id, "warehouse_unavailable", progress, scan, {}, str(exc))
        with contextlib.suppress(Exception):  # it may still be unavailable: the message is the record
            _record_end(store, summary)
        raise
    except Exception as exc:
        summary = RunSummary(run_id, "crashed", progress, scan, {}, errors.described(exc))
        with contextlib.suppress(Exception):  # the warehouse itself may be what failed: reported anyway
            _record_end(store, summary)
        raise IngestCrashed(run_id, summary.error or "") from exc


def _record_end(store: warehouse.Writer, summary: RunSummary) -> None:
    store.finish_run(summary.run_id, counts=summary.as_dict(), outcome=summary.outcome)


def _run(store: warehouse.Writer, run_id: str, options: IngestOptions, api_key, progress: Progress,
         scan: ScanStats, on_progress: ProgressCallback, warn) -> RunSummary:
    now = datetime.now(timezone.utc)
    due_by_status: dict[str, int] = {}
    if not options.content_only:
        with store.rolled_back() if options.dry_run else contextlib.nullcontext():
            _stage(store, run_id, options, now, scan, progress, on_progress, warn)
            if scan.files_read + scan.files_unchanged == 0:
                summary = RunSummary(run_id, "no_input", progress, scan, {}, "no log could be read (see the warnings above)")
                _record_end(store, summary)
                return summary
            due_by_status = store.due_counts(now=now, refresh=options.refresh, since=options.since,
                                             until=options.until)
            progress.ids_due = sum(due_by_status.values())
            on_progress(progress)
    if options.dry_run:
        if _wants_content(options):  # the loaded generations without content; this run's would add to them
            progress.content_due = sum(map(len, store.content_due_ids(since=options.since, until=options.until)))
        summary = RunSummary(run_id, "dry_run", progress, scan, due_by_status)
        _record_end(store, summary)
        return summary

    previous = signal.getsignal(signal.SIGTERM)
    try:
        outcome, error = asyncio.run(_fetch_and_load_all(store, options, api_key, run_id, now, progress, on_progress))
    finally:  # asyncio's handler, once removed, leaves SIGTERM's default (die) for the rest of the run
        if previous is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, previous)
    summary = RunSummary(run_id, outcome, progress, scan, due_by_status, error)
    _record_end(store, summary)
    return summary


def _wants_content(options: IngestOptions) -> bool:
    return options.with_content or options.content_only


def _stage(store: warehouse.Writer, run_id: str, options: IngestOptions, now: datetime, scan: ScanStats,
           progress: Progress, on_progress: ProgressCallback, warn) -> None:
    """Queue the ids in what is new in the logs, each file's state with its last ids. A function of
    its own so that the last chunk of ids (up to config.STAGE_CHUNK_IDS tuples) is freed before the
    fetching starts, not held by `_ingest` throughout.

    A run limited by --since/--until reads on from the states but records none: it queues only the
    ids of its window, and a state would mark the others as read."""
    sources = SourceTracker(store.source_states(), rescan=options.rescan,
                            record=options.since is None and options.until is None)
    for chunk, finished in _chunks(scan_logs(options.paths, since=options.since, until=options.until, stats=scan,
                                             warn=warn, sources=sources)):
        progress.ids_in_logs += len(chunk)
        progress.ids_new += store.stage_ids(chunk, seen_at=now, sources=finished, run_id=run_id)
        on_progress(progress)


def _chunks(scanned: Iterator[tuple[list[str], list[str]] | SourceState]
            ) -> Iterator[tuple[list[tuple[str, str]], list[SourceState]]]:
    """The ids in chunks of config.STAGE_CHUNK_IDS, each with the states of the files whose last ids
    it holds, or held by an earlier chunk; a chunk is cut early to commit a waiting state once
    config.STAGE_COMMIT_S has passed since the last commit, so a killed run reads little again."""
    chunk: list[tuple[str, str]] = []
    finished: list[SourceState] = []
    committed_at = time.monotonic()
    for item in scanned:
        if isinstance(item, SourceState):
            finished.append(item)
        else:
            chunk.extend(zip(*item))
        if len(chunk) >= config.STAGE_CHUNK_IDS or (finished and time.monotonic() - committed_at >= config.STAGE_COMMIT_S):
            yield chunk, finished
            chunk, finished = [], []
            committed_at = time.monotonic()
    if chunk or finished:
        yield chunk, finished


async def _due_ids(store: warehouse.Writer, options: IngestOptions, now: datetime) -> AsyncIterator[str]:
    for chunk in store.due_ids(now=now, refresh=options.refresh, since=options.since, until=options.until):
        for generation_id in chunk:
            yield generation_id
        await asyncio.sleep(0)


async def _fetch_and_load_all(
    store: warehouse.Writer,
    options: IngestOptions,
    api_key: str | None,
    run_id: str,
    now: datetime,
    progress: Progress,
    on_progress: ProgressCallback,
) -> tuple[str, str | None]:
    """The metadata of the due ids, then (if asked) the content of the loaded generations without
    it; returns (outcome, error). One client, so one rate limit, for both."""
    _cancel_on_sigterm()
    outcome, error = "ok", None
    async with OpenRouterClient(
        api_key, base_url=options.base_url, max_rps=options.max_rps, policy=options.retry_policy
    ) as client:
        if not options.content_only:
            outcome, error = await _fetch_and_load(store, options, client, run_id, now, progress, on_progress)
        if _wants_content(options) and outcome in ("ok", "some_failed"):
            content_outcome, content_error = await _fetch_and_load_content(store, options, client, run_id, progress,
                                                                           on_progress)
            if content_outcome != "ok":
                outcome, error = content_outcome, content_error or error
    return outcome, error


async def _fetch_and_load(
    store: warehouse.Writer,
    options: IngestOptions,
    client: OpenRouterClient,
    run_id: str,
    now: datetime,
    progress: Progress,
    on_progress: ProgressCallback,
) -> tuple[str, str | None]:
    """Fetch the due ids' metadata and load them batch by batch; returns (outcome, error)."""
    writer = _BatchWriter(lambda outcomes: _write_metadata(store, run_id, outcomes, progress))
    outcomes = fetch_generations(_due_ids(store, options, now), client, concurrency=options.concurrency)
    outcome, error, _ = await _load_in_batches(outcomes, writer, client, options, progress, on_progress)
    if outcome == "ok":
        # Exit 0 means every id is loaded or known not found: failed ids of earlier runs whose
        # retry is not due yet count too, though this run did not ask for them.
        progress.waiting, progress.next_due_at = store.failed_waiting(since=options.since, until=options.until)
        if progress.failed or progress.waiting:
            outcome = "some_failed"
    return outcome, error


async def _fetch_and_load_content(
    store: warehouse.Writer,
    options: IngestOptions,
    client: OpenRouterClient,
    run_id: str,
    progress: Progress,
    on_progress: ProgressCallback,
) -> tuple[str, str | None]:
    """Fetch /generation/content for the loaded generations without a content row and store it;
    returns (outcome, error). A 403 switches content off for the rest of the run (`content_refused`)."""

    async def due() -> AsyncIterator[str]:
        for chunk in store.content_due_ids(since=options.since, until=options.until):
            progress.content_due += len(chunk)
            for generation_id in chunk:
                yield generation_id
            await asyncio.sleep(0)

    writer = _BatchWriter(lambda outcomes: _write_content(store, run_id, outcomes, progress, options.max_content_bytes))
    # No new request while a batch's worth of bodies (received or expected) waits: a body can be megabytes.
    outcomes = fetch_generations(due(), client, concurrency=options.concurrency, content=True,
                                 max_bytes_in_hand=config.CONTENT_BATCH_BYTES)
    outcome, error, refusal = await _load_in_batches(outcomes, writer, client, options, progress, on_progress,
                                                     max_batch_bytes=config.CONTENT_BATCH_BYTES)
    if refusal is not None and refusal.status == 403:
        outcome = "content_refused"
        error = progress.content_refused = (
            f"OpenRouter refused /generation/content (HTTP 403: {refusal.api_message}): reading content needs a "
            f"management key in {config.API_KEY_VARIABLE} and input/output logging turned on in the account's "
            "privacy settings (or drop --with-content); content is off for the rest of this run, the metadata "
            "stays loaded")
    elif outcome == "ok" and (progress.content_failed or progress.content_not_found or progress.content_rejected):
        outcome = "some_failed"  # the next run asks for them again
    return outcome, error


async def _load_in_batches(
    outcomes: AsyncIterator[Outcome],
    writer: _BatchWriter,
    client: OpenRouterClient,
    options: IngestOptions,
    progress: Progress,
    on_progress: ProgressCallback,
    *,
    max_batch_bytes: int | None = None,
) -> tuple[str, str | None, FatalAPIError | None]:
    """Hand the outcomes to `writer` in batches of batch_size results, batch_seconds, or
    `max_batch_bytes` of bodies; returns (outcome, error, the API's refusal of the key if any)."""
    pending: list[Outcome] = []
    pending_bytes = 0
    last_flush = time.monotonic()
    outcome, error, refusal = "ok", None, None
    try:
        async for result in outcomes:
            pending.append(result)
            if isinstance(result, Loaded):
                pending_bytes += len(result.body)
            if (len(pending) >= options.batch_size or time.monotonic() - last_flush >= options.batch_seconds
                    or (max_batch_bytes is not None and pending_bytes >= max_batch_bytes)):
                await writer.submit(pending)
                pending, pending_bytes, last_flush = [], 0, time.monotonic()
                _copy_client_stats(client, progress)
                on_progress(progress)
    except FatalAPIError as exc:
        outcome, error, refusal = "key_refused", str(exc), exc
    except APIUnreachableError as exc:
        outcome, error = "api_unreachable", str(exc)
    except APIUnusableError as exc:
        outcome, error = "api_unusable", str(exc)
    except (KeyboardInterrupt, asyncio.CancelledError):
        outcome, error = "interrupted", "interrupted"
    except BaseException:
        # Not a second attempt at writing: the error may be the writer's own. The batch in
        # flight is awaited so that nothing writes after the run's row says it crashed.
        await writer.abandon()
        _copy_client_stats(client, progress)
        raise
    await writer.submit(pending)
    await writer.drain()
    _copy_client_stats(client, progress)
    on_progress(progress)
    return outcome, error, refusal


def _cancel_on_sigterm() -> None:
    """SIGTERM cancels the fetch as asyncio's own Ctrl-C handling does (the run ends `interrupted`,
    its last batch written). Only possible on the main thread; elsewhere the caller's handling stays."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            # once: a second SIGTERM while the last batch is written must not cancel that too
            loop.add_signal_handler(signal.SIGTERM, lambda: None if task.cancelling() else task.cancel())


def _copy_client_stats(client: OpenRouterClient, progress: Progress) -> None:
    stats = client.stats
    progress.requests = stats.requests
    progress.retries = stats.retries
    progress.responses_429 = stats.responses_429
    progress.settled_rps = stats.adaptive_rps


class _BatchWriter:
    """Writes batches on a worker thread, one at a time, so fetching goes on while DuckDB writes.

    At most one batch is being written while the next one is collected: memory stays bounded by
    two batches, and batches commit in order.
    """

    def __init__(self, write: Callable[[list[Outcome]], None]) -> None:
        self._write = write
        self._in_flight: asyncio.Task[None] | None = None

    async def submit(self, outcomes: Sequence[Outcome]) -> None:
        await self.drain()
        if outcomes:
            self._in_flight = asyncio.create_task(asyncio.to_thread(self._write, list(outcomes)))

    async def drain(self) -> None:
        if self._in_flight is not None:
            task, self._in_flight = self._in_flight, None
            await asyncio.shield(task)

    async def abandon(self) -> None:
        """Wait for the batch in flight, if any, and drop its error (the caller has one already)."""
        if self._in_flight is not None:
            task, self._in_flight = self._in_flight, None
            with contextlib.suppress(Exception):
                await asyncio.shield(task)


def _write_metadata(store: warehouse.Writer, run_id: str, outcomes: list[Outcome], progress: Progress) -> None:
    now = datetime.now(timezone.utc)
    batch = normalize_bodies([(o.generation_id, o.body) for o in outcomes if isinstance(o, Loaded)])
    rejected = dict(batch.rejected)
    updates = [_queue_update(o, rejected, now) for o in outcomes]
    statuses = Counter(update.status for update in updates)
    counts = {
        "loaded": progress.loaded + statuses["loaded"],
        "not_found": progress.not_found + statuses["not_found"],
        "failed": progress.failed + statuses["failed"],
        "rejected": progress.rejected + len(rejected),
        **_request_counts(progress),
    }
    # The run's row is updated in the batch's own transaction: a run killed later still tells
    # exactly what it committed.
    store.upsert_batch(batch, updates, run_id=run_id, run_counts=counts)
    progress.done += len(updates)
    progress.batches_written += 1
    progress.commits_retried = store.commits_retried
    progress.loaded, progress.not_found, progress.failed = counts["loaded"], counts["not_found"], counts["failed"]
    progress.rejected = counts["rejected"]


def _write_content(store: warehouse.Writer, run_id: str, outcomes: list[Outcome], progress: Progress,
                   max_bytes: int) -> None:
    """A batch of content outcomes: the 200s normalized and stored; the others are only counted
    (no row, so the next run asks again)."""
    normalized = normalize_content([(o.generation_id, o.body) for o in outcomes if isinstance(o, Loaded)],
                                   max_bytes=max_bytes)
    store.write_content(normalized, run_id=run_id, run_counts=_request_counts(progress))
    statuses = Counter(normalized.rows.get_column("content_status").to_list())
    progress.content_stored += statuses["stored"]
    progress.content_none_stored += statuses["none_stored"]
    progress.content_rejected += len(normalized.rejected)
    progress.content_not_found += sum(isinstance(o, NotFound) for o in outcomes)
    progress.content_failed += sum(isinstance(o, Failed) for o in outcomes)
    progress.batches_written += 1
    progress.commits_retried = store.commits_retried


def _request_counts(progress: Progress) -> dict[str, int]:
    return {"requests": progress.requests, "retries": progress.retries, "responses_429": progress.responses_429}


def _queue_update(outcome: Outcome, rejected: dict[str, str], now: datetime) -> warehouse.QueueUpdate:
    if isinstance(outcome, Loaded):
        reason = rejected.get(outcome.generation_id)
        if reason is None:
            return warehouse.QueueUpdate(outcome.generation_id, "loaded", outcome.attempts, 200, None, None)
        return warehouse.QueueUpdate(outcome.generation_id, "failed", outcome.attempts, 200, reason, now)
    if isinstance(outcome, NotFound):
        return warehouse.QueueUpdate(
            outcome.generation_id, "not_found", outcome.attempts, 404, "not found", now + NOT_FOUND_RECHECK_AFTER
        )
    assert isinstance(outcome, Failed)
    return warehouse.QueueUpdate(
        outcome.generation_id, "failed", outcome.attempts, outcome.last_status, outcome.last_error,
        outcome.not_before or now,
    )

"""Progress of an ingest run on stderr: a live bar on a terminal, plain periodic lines elsewhere.

Cron mails whatever a job prints, so when stderr is not a terminal the display is one line every
`interval_s` seconds instead of a redrawn bar.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline.ingest import Progress as RunProgress
from pipeline.output import printable
from pipeline.ingest import RunSummary


def _rate(progress: RunProgress) -> float:
    return progress.done / progress.elapsed_s if progress.elapsed_s > 0 else 0.0


def describe(progress: RunProgress) -> str:
    return (
        f"{progress.done:,}/{progress.ids_due:,} ids, {_rate(progress):,.0f} ids/s, "
        f"loaded {progress.loaded:,}, not found {progress.not_found:,}, failed {progress.failed:,}, "
        f"retries {progress.retries:,}, 429s {progress.responses_429:,}"
    )


class PlainLines:
    def __init__(self, stream: TextIO, interval_s: float = 10.0) -> None:
        self._stream = stream
        self._interval_s = interval_s
        self._last = 0.0

    def __call__(self, progress: RunProgress) -> None:
        now = time.monotonic()
        self._latest = progress
        if now - self._last >= self._interval_s and progress.ids_due:
            self._last = now
            self._printed = describe(progress)
            print(f"orusage: {self._printed}", file=self._stream, flush=True)

    def close(self) -> None:
        """The last state, if it moved since the last line (an interrupted run's, say)."""
        latest = getattr(self, "_latest", None)
        if latest is not None and latest.ids_due and describe(latest) != getattr(self, "_printed", None):
            print(f"orusage: {describe(latest)}", file=self._stream, flush=True)
            self._printed = describe(latest)


class LiveBar:
    def __init__(self, stream: TextIO) -> None:
        self._bar = Progress(
            TextColumn("[bold]fetching"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} ids/s"),
            TextColumn("loaded {task.fields[loaded]}  not found {task.fields[not_found]}  "
                       "failed {task.fields[failed]}  retries {task.fields[retries]}  429s {task.fields[r429]}"),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=True,
        )
        self._task = self._bar.add_task("fetch", total=None, rate="0", loaded=0, not_found=0, failed=0,
                                        retries=0, r429=0)
        self._bar.start()

    def __call__(self, progress: RunProgress) -> None:
        self._bar.update(
            self._task,
            total=progress.ids_due or None,
            completed=progress.done,
            rate=f"{_rate(progress):,.0f}",
            loaded=f"{progress.loaded:,}",
            not_found=f"{progress.not_found:,}",
            failed=f"{progress.failed:,}",
            retries=f"{progress.retries:,}",
            r429=f"{progress.responses_429:,}",
        )

    def close(self) -> None:
        self._bar.stop()


class Silent:
    def __call__(self, progress: RunProgress) -> None:
        pass

    def close(self) -> None:
        pass


def progress_display(*, quiet: bool, stream: TextIO | None = None) -> PlainLines | LiveBar | Silent:
    # The stream is looked up at call time, not bound at import: a redirected sys.stderr (click's
    # CliRunner, a caller capturing output) must receive the progress lines too.
    stream = sys.stderr if stream is None else stream
    if quiet:
        return Silent()
    if stream.isatty():
        return LiveBar(stream)
    return PlainLines(stream)


def summary_text(summary: RunSummary) -> str:
    """The closing lines of a run, for people (the --json summary is for machines)."""
    p, scan = summary.progress, summary.scan
    lines = [
        f"orusage: run {summary.run_id}: {summary.outcome} in {p.elapsed_s:,.1f} s",
        f"  logs: {scan.files_read:,} files read, {scan.files_skipped:,} skipped, {scan.bytes_read / 1e6:,.1f} MB, "
        f"{p.ids_in_logs:,} ids ({p.ids_new:,} new)",
    ]
    if scan.files_unchanged or scan.files_continued:
        lines.append(f"  already read: {scan.files_unchanged:,} files unchanged (not opened), {scan.files_continued:,} "
                     f"read on from where the last run stopped, {scan.bytes_skipped / 1e6:,.1f} MB not read again "
                     "(--rescan reads all)")
    if summary.outcome == "dry_run":
        by_status = ", ".join(f"{n:,} {status}" for status, n in sorted(summary.due_by_status.items())) or "nothing"
        lines.append(f"  would fetch {p.ids_due:,} ids: {by_status}")
    else:
        lines.append(f"  fetched {p.done:,} of {p.ids_due:,} due: {p.loaded:,} loaded, {p.not_found:,} not found, "
                     f"{p.failed:,} failed ({p.rejected:,} bodies rejected)")
        lines.append(f"  {p.requests:,} requests, {p.retries:,} retries, {p.responses_429:,} rate-limited"
                     + (f"; the API's rate limit found: settled at {p.settled_rps:,.1f} requests/s"
                        if p.settled_rps is not None else ""))
    if p.content_due or p.content_refused:
        verb = "would fetch the content of" if summary.outcome == "dry_run" else "content of"
        lines.append(f"  {verb} {p.content_due:,} loaded generations"
                     + ("" if summary.outcome == "dry_run" else
                        f": {p.content_stored:,} stored, {p.content_none_stored:,} with nothing stored, "
                        f"{p.content_not_found:,} not found, {p.content_failed:,} failed "
                        f"({p.content_rejected:,} bodies rejected)"))
    if summary.error:
        lines.append(f"  error: {printable(summary.error)}")
    if summary.outcome == "some_failed":
        if p.waiting:
            due = f", the first due again at {p.next_due_at:%Y-%m-%d %H:%M:%S} UTC" if p.next_due_at else ""
            lines.append(f"  {p.waiting:,} failed ids wait for a retry{due}: the next run retries them once due "
                         "(`orusage status` groups them by reason)")
        else:
            lines.append("  failed ids stay queued: the next run retries them (`orusage status` groups them by reason)")
    return "\n".join(lines)


STATUS_SOURCES_SHOWN = 20  # the most recently seen log files listed by `orusage status`


def status_text(report: dict) -> str:
    queue = report["queue"]
    generations = report["generations"]
    lines = [f"warehouse {report['warehouse']}",
             "queue: " + (", ".join(f"{n:,} {status}" for status, n in queue.items()) or "empty")]
    if generations["count"]:
        lines.append(
            f"generations: {generations['count']:,} from {generations['first_created_at']} to "
            f"{generations['last_created_at']}, total cost ${generations['total_cost_usd']:,.2f}")
    else:
        lines.append("generations: none yet")
    if report["runs"]:
        last = report["runs"][0]
        lines.append(f"last run: {last['run_id']} started {last['started_at']} UTC: {last['outcome'] or 'unfinished'}"
                     + (f": {printable(last['error'])}" if last.get("error") else ""))
        lines.append("last runs:")
        for run in report["runs"]:
            lines.append(f"  {run['run_id']}  {run['outcome'] or 'unfinished'}  loaded {run['loaded'] or 0:,}  "
                         f"not found {run['not_found'] or 0:,}  failed {run['failed'] or 0:,}")
    if report["failures"]:
        lines.append("failed ids by reason:")
        for failure in report["failures"]:
            lines.append(f"  {failure['ids']:>8,}  {printable(failure['reason'])}  (e.g. {printable(failure['example_id'])})")
    sources = report.get("sources") or []
    if sources:
        lines.append(f"log files tracked: {len(sources):,} (read up to, of the size on disk; last seen)")
        for source in sources[:STATUS_SOURCES_SHOWN]:
            shard = f"  [shard {source['scope']}]" if source["scope"] else ""
            size = "" if source["compression"] == "text" else f" ({source['compression']}, decompressed)"
            lines.append(f"  {printable(source['path'])}{shard}: {source['read_bytes']:,} bytes{size}, "
                         f"{source['read_lines']:,} lines; of {source['size_bytes']:,} on disk; "
                         f"{source['last_seen_at']:%Y-%m-%d %H:%M:%S} UTC")
        if len(sources) > STATUS_SOURCES_SHOWN:
            lines.append(f"  ... and {len(sources) - STATUS_SOURCES_SHOWN:,} more (`orusage status --json` lists all)")
    return "\n".join(lines)

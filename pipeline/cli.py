"""The `orusage` command. Only parses options, calls one pipeline function, and prints.

Exit codes: config.ExitCode (and the README). An error is one line on stderr; an unexpected one
also leaves its traceback in a file (errors.write_traceback) unless --debug prints it.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import click

from pipeline import __version__, config, errors
from pipeline.config import ExitCode

_WAREHOUSE_META = "orusage.warehouse"  # where a crash's traceback file goes: beside the warehouse


class _Orusage(click.Group):
    """Turns an unexpected exception from any command into one line and ExitCode.CRASHED."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # the last resort: one line, the traceback kept aside
            if ctx.params.get("debug") or config.debug_enabled():
                traceback.print_exception(exc, file=sys.stderr)
                where = "above"
            else:
                folder = ctx.meta.get(_WAREHOUSE_META)
                path = errors.write_traceback(exc, folder=Path(folder).parent if folder else None)
                where = f"in {path}" if path else "not saved"
            message = str(exc) if isinstance(exc, _Reported) else errors.described(exc)
            click.echo(f"orusage: crashed: {message} (traceback {where}; --debug prints it)", err=True)
            ctx.exit(ExitCode.CRASHED)


class _Reported(Exception):
    """Marker base: an exception whose message is already the one line to print (IngestCrashed)."""


@click.group(cls=_Orusage, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="orusage")
@click.option("--debug", is_flag=True, help=f"Print an unexpected error's traceback (also {config.DEBUG_VARIABLE}=1).")
def cli(debug: bool) -> None:
    """Usage analytics for OpenRouter: generation ids from your logs, their cost and latency in DuckDB."""


@cli.command("fake-api")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option("--size", type=int, default=1000, show_default=True, help="Number of generations served.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--days", type=int, default=21, show_default=True, help="Days the generations spread over.")
@click.option("--end", default=None, help="Last instant of the data: ISO date/time or 'now' [default: fixed date].")
@click.option("--api-key", envvar="ORUSAGE_FAKE_API_KEY", default="sk-or-v1-fake", show_default=True,
              show_envvar=True, help="Key the fake server accepts.")
@click.option("--fault-rate", type=float, default=0.0, show_default=True, help="Share of requests with a transient fault.")
@click.option("--not-found-first", type=int, default=0, show_default=True, help="Answer 404 to the first N requests of each id.")
@click.option("--latency-ms", type=float, default=0.0, show_default=True, help="Added to every response.")
@click.option("--max-rps", type=float, default=None, help="Server-wide limit; beyond it 429 + Retry-After.")
@click.option("--retry-after-s", type=float, default=0.0, show_default=True, help="Wait announced by injected 429s.")
@click.option("--slow-s", type=float, default=0.05, show_default=True, help="Delay of a 'slow' fault.")
@click.option("--fatal-after", type=int, default=None, help="After N requests answer --fatal-status to everything.")
@click.option("--fatal-status", type=click.Choice(["401", "402", "403"]), default="402", show_default=True)
@click.option("--content-forbidden-after", type=int, default=None,
              help="After N /generation/content requests answer those 403 (a key that may not read content).")
@click.option("--big-content-every", type=int, default=0, show_default=True,
              help="Every N-th generation's stored prompt is --big-content-bytes long (0: none).")
@click.option("--big-content-bytes", type=int, default=4 * 2**20, show_default=True)
@click.option("--management-key", envvar="ORUSAGE_FAKE_MANAGEMENT_KEY", default="sk-or-v1-fake-management",
              show_default=True, help="The only key /activity accepts (the --api-key gets its 403 there).")
def fake_api_command(host: str, port: int, size: int, seed: int, days: int, end: str | None, api_key: str,
                     fault_rate: float, not_found_first: int, latency_ms: float, max_rps: float | None,
                     retry_after_s: float, slow_s: float, fatal_after: int | None, fatal_status: str,
                     content_forbidden_after: int | None, big_content_every: int, big_content_bytes: int,
                     management_key: str) -> None:
    """Serve a fake OpenRouter API on loopback; prints its base URL first, stops on Ctrl-C/SIGTERM."""
    from pipeline import fake_api

    try:
        dataset = fake_api.Dataset(size, seed=seed, days=days, end=fake_api.parse_end(end) if end else None,
                                   big_content_every=big_content_every, big_content_bytes=big_content_bytes)
        faults = fake_api.Faults.transient(
            fault_rate, not_found_first=not_found_first, seed=seed, latency_ms=latency_ms, max_rps=max_rps,
            retry_after_s=retry_after_s, slow_s=slow_s, fatal_after=fatal_after, fatal_status=int(fatal_status),
            content_forbidden_after=content_forbidden_after)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    fake_api.serve(dataset, api_key=api_key, faults=faults, host=host, port=port, management_key=management_key,
                   on_listening=lambda url: click.echo(url))


class _InputError(click.ClickException):
    """One line on stderr, exit 2: bad input (unknown report, SQL error, refused write), not a crash."""

    exit_code = ExitCode.USAGE


def _remember_warehouse(ctx: click.Context, param: click.Parameter, value: str) -> Path | str:
    """The checked location (a Path for a file, the `ducklake:` text for a lake); a file's folder is
    where a crash's traceback goes."""
    try:
        location = config.check_warehouse_path(value)
    except config.WarehousePathError as e:
        raise click.BadParameter(config.redacted(str(e))) from None
    if not config.is_lake(location):
        ctx.find_root().meta[_WAREHOUSE_META] = value
    return location


_LAKE_HELP = " Or a DuckLake: ducklake:postgres:'dbname=... host=...' or ducklake:sqlite:FILE."


def _warehouse_option(help_text: str, default: str = config.DEFAULT_WAREHOUSE):
    return click.option("--warehouse", envvar=config.WAREHOUSE_VARIABLE, default=default, show_default=True,
                        show_envvar=True, callback=_remember_warehouse, help=help_text + _LAKE_HELP)


def _parsed_by(parse: Callable[[str], object]) -> Callable[[click.Context, click.Parameter, str | None], object]:
    """An option's callback: the value through `parse`, its ValueError as click's usage error."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> object:
        try:
            return None if value is None else parse(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None

    return callback


_AT_OPTION = click.option("--at", callback=_parsed_by(config.parse_at), metavar="SNAPSHOT|TIME",
                          help="A lake only: answer as the warehouse was at this snapshot id or time (UTC).")


_READ_LOCK_TIMEOUT_OPTION = click.option(
    "--lock-timeout", type=click.FloatRange(min=0), default=config.READ_LOCK_TIMEOUT_S, show_default=True,
    help="Seconds to wait while an ingest writes a batch (readers answer between its batches).")


def _read_options(f):  # the options `report` and `query` share
    f = _warehouse_option("The DuckDB file to read (opened read-only).")(f)
    f = _READ_LOCK_TIMEOUT_OPTION(f)
    f = _AT_OPTION(f)
    f = click.option("--output", "-o", "output_path", type=click.Path(dir_okay=False), default=None,
                     help="Write to FILE instead of stdout.")(f)
    f = click.option("--format", "-f", "fmt", default="table", show_default=True,
                     type=click.Choice(["table", "csv", "json", "markdown", "parquet"]))(f)
    return f


@cli.command("report")
@click.argument("name", required=False)
@click.option("--list", "list_reports", is_flag=True, help="Name each report and what it answers.")
@click.option("--since", help="Window start, inclusive: YYYY-MM-DD or an ISO date-time (UTC). [default: 30 days before --until]")
@click.option("--until", help="Window end: a date is included whole, a date-time is exclusive. [default: the newest generation's day]")
@click.option("--by", help="Group by day, week, month, model, provider, app, user or session (each report lists its own).")
@click.option("--model", help="Only models matching this glob, e.g. 'anthropic/*'.")
@click.option("--provider", help="Only providers matching this glob, e.g. 'Google*'.")
@click.option("--top", type=click.IntRange(min=1), help="Keep the N largest groups.")
@_read_options
def report_command(name: str | None, list_reports: bool, since: str | None, until: str | None, by: str | None,
                   model: str | None, provider: str | None, top: int | None, fmt: str, output_path: str | None,
                   warehouse: Path | str, lock_timeout: float, at) -> None:
    """Run the named report over a window of the warehouse (default: the last 30 days of data)."""
    from pipeline import output, reports, warehouse as wh

    _refuse_output_over(warehouse, output_path)
    try:
        if list_reports or name is None:
            output.write_frame(reports.Warehouse.reports(), fmt=fmt, output=output_path)
            return
        result = reports.Warehouse(warehouse, lock_timeout_s=lock_timeout, at=at).run(name, since=since, until=until, by=by, model=model,
                                                  provider=provider, top=top)
        title = f"{name}{f' by {result.by}' if result.by else ''}, {result.window}"
        output.write_frame(result.frame, fmt=fmt, output=output_path, title=title)
    except (reports.ReportError, output.OutputError, wh.QueryError, OSError, UnicodeError) as e:
        raise _InputError(errors.one_line(e)) from None


@cli.command("query")
@click.argument("sql")
@_read_options
def query_command(sql: str, fmt: str, output_path: str | None, warehouse: Path | str, lock_timeout: float, at) -> None:
    """Run one read-only SQL statement (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE); '-' reads it from stdin.

    Only the warehouse can be read: the query runs with DuckDB's external access off, so it can
    neither write a file nor read another one (COPY, ATTACH, INSTALL, read_csv are refused).
    """
    from pipeline import output, reports, warehouse as wh

    _refuse_output_over(warehouse, output_path)
    try:
        frame = reports.Warehouse(warehouse, lock_timeout_s=lock_timeout, at=at).sql(click.get_text_stream("stdin").read() if sql == "-" else sql)
        output.write_frame(frame, fmt=fmt, output=output_path)
    except (reports.ReportError, output.OutputError, wh.QueryError, OSError, UnicodeError) as e:
        raise _InputError(errors.one_line(e)) from None


def _refuse_output_over(warehouse: Path | str, output_path: str | None) -> None:
    """--output must not name the warehouse (or its WAL): writing there would replace it."""
    if output_path is None or config.is_lake(warehouse):
        return
    import os

    target = Path(output_path)
    for protected in (Path(warehouse), Path(f"{warehouse}.wal")):
        same = target.resolve() == protected.resolve()
        with contextlib.suppress(OSError):  # a hard link is the same file under another name
            same = same or (target.exists() and protected.exists() and os.path.samefile(target, protected))
        if same:
            raise _InputError(f"--output {output_path} is the warehouse itself: give another file")


def _utc_bound(end: bool):  # click callback for --since/--until on `ids` and `ingest`
    def parse(ctx: click.Context, param: click.Parameter, value: str | None):
        try:
            bound = None if value is None else config.parse_time_bound(value, end=end)
            # whichever of the two comes second on the command line checks the window
            if end:
                config.check_window(ctx.params.get("since"), bound)
            else:
                config.check_window(bound, ctx.params.get("until"))
        except config.TimeBoundError as e:
            raise click.BadParameter(str(e)) from None
        return bound

    return parse


# --since / --until of `ids` and `ingest`: both filter on the time inside the id, without a request.
_SINCE_OPTION = click.option(
    "--since", metavar="DATE", callback=_utc_bound(end=False),
    help="Only ids created at or after this (UTC, from the id's own timestamp): YYYY-MM-DD or an ISO date-time.")
_UNTIL_OPTION = click.option(
    "--until", metavar="DATE", callback=_utc_bound(end=True),
    help="Only ids created before this: a date is included whole, a date-time is exclusive.")


@cli.command("ids")
@click.argument("paths", nargs=-1, required=True)
@_SINCE_OPTION
@_UNTIL_OPTION
@click.option("--with-source", is_flag=True, help="Add a tab and the file:line of each id's first sighting.")
@click.option("--count", is_flag=True, help="Print only the number of distinct ids.")
@click.option("--new", "only_new", is_flag=True,
              help="Only what the next ingest into --warehouse would read: the logs past where its runs read them.")
@_warehouse_option("With --new: the warehouse whose record of the logs read is used (opened read-only).")
@click.option("--shard", callback=_parsed_by(config.parse_shard), metavar="I/N",
              help="With --new: what the next `ingest --shard I/N` would read.")
def ids_command(paths: tuple[str, ...], since, until, with_source: bool, count: bool, only_new: bool,
                warehouse: Path | str, shard) -> None:
    """Print the distinct generation ids found in PATHS, one per line, in order of first sighting.

    PATHS are files, folders (read recursively), glob patterns, or - for stdin; gzip, zstd, bzip2 and
    xz files are read by their content. Every file is read whole, unless --new. Unreadable sources are
    skipped with a warning on stderr; the exit code is 2 only if no source could be read at all.
    """
    import os
    import sys

    from pipeline.log_sources import SourceTracker
    from pipeline.logs import ScanStats, scan_logs

    _refuse_closed_stdin(paths)
    sources = None
    if only_new:
        from pipeline import warehouse as wh  # not otherwise: polars and duckdb take ~0.1 s to import

        try:
            sources = SourceTracker(wh.source_states(warehouse, shard=shard), record=False)
        except wh.WarehouseError as exc:
            raise _InputError(str(exc)) from None
    elif shard:
        raise click.UsageError("--shard goes with --new")
    stats = ScanStats()
    batches = scan_logs(paths, since=since, until=until, stats=stats, sources=sources, with_sources=with_source,
                        warn=lambda message: click.echo(f"warning: {message}", err=True))
    out = sys.stdout
    try:
        for ids, found_in in batches:  # a chunk's new ids at a time: a log can hold millions
            if count:
                continue
            if with_source:
                out.write("".join(f"{generation_id}\t{source}\n" for generation_id, source in zip(ids, found_in)))
            else:
                out.write("\n".join(ids) + "\n")
        if count:
            out.write(f"{stats.ids_found}\n")
        out.flush()
    except BrokenPipeError:  # `orusage ids logs/ | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    if stats.files_read + stats.files_unchanged == 0:
        raise _InputError("no source could be read" if stats.warnings else "no files in the given folders")


def _refuse_closed_stdin(paths: tuple[str, ...]) -> None:
    if "-" in paths and (sys.stdin is None or sys.stdin.closed):
        raise click.UsageError("'-' reads ids from stdin, but stdin is closed")


def _base_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    try:
        return None if value is None else config.check_base_url(value)
    except config.BaseUrlError as e:
        raise click.BadParameter(str(e)) from None  # never echo the URL: it may hold a password


_WAREHOUSE_OPTION = _warehouse_option("The DuckDB file (ingest creates it on first use).")
_BASE_URL_OPTION = click.option(
    "--base-url", envvar=config.BASE_URL_VARIABLE, show_envvar=True, default=None, callback=_base_url,
    help=f"API base URL, without credentials [default: {config.DEFAULT_BASE_URL}].")
_WRITE_LOCK_TIMEOUT_OPTION = click.option(  # the commands other than ingest that write the warehouse
    "--lock-timeout", type=click.FloatRange(min=0), default=0, show_default=True,
    help="Seconds to wait for an ingest to finish with the warehouse.")
_DATA_PATH_OPTION = click.option(
    "--data-path", metavar="DIR|s3://BUCKET/PREFIX/",
    help="Where a new DuckLake keeps its Parquet files (given once, when the lake is created).")


@cli.command("ingest")
@click.argument("paths", nargs=-1)
@_WAREHOUSE_OPTION
@_BASE_URL_OPTION
@click.option("--concurrency", type=click.IntRange(1, 1024), default=32, show_default=True, help="Requests in flight.")
@click.option("--max-rps", type=click.FloatRange(min=0.1, max=1_000_000), default=None, help="Cap on requests per second.")
@_SINCE_OPTION
@_UNTIL_OPTION
@click.option("--refresh", is_flag=True, help="Fetch again ids already loaded.")
@click.option("--rescan", is_flag=True,
              help="Read every log whole again, not only what earlier runs had not read (their record is rebuilt).")
@click.option("--dry-run", is_flag=True, help="Say what would be fetched, by status; send no request and leave the queue as it was.")
@click.option("--batch-size", type=click.IntRange(1, 1_000_000), default=2_500, show_default=True,
              help="Results per warehouse transaction.")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Seconds to wait for another ingest to finish with the warehouse.")
@_DATA_PATH_OPTION
@click.option("--shard", callback=_parsed_by(config.parse_shard), metavar="I/N",
              help="Only the ids of shard I of N (1 <= I <= N): run N such workers at once into one lake.")
@click.option("--with-content", is_flag=True, envvar=config.WITH_CONTENT_VARIABLE, show_envvar=True,
              help="Also fetch and store each loaded generation's prompt, completion and stored error "
                   "(/generation/content; off by default).")
@click.option("--content-only", is_flag=True,
              help="Only fetch the content of generations already loaded that have none stored (no PATHS needed).")
@click.option("--max-content-bytes", type=click.IntRange(min=1024), default=config.DEFAULT_MAX_CONTENT_BYTES,
              show_default=True, help="A longer content body is stored cut to this, marked truncated.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the run summary as JSON on stdout (an error as {\"outcome\": \"error\", ...}).")
@click.option("--quiet", "-q", is_flag=True, help="No progress display and no summary on stderr.")
def ingest_command(paths: tuple[str, ...], warehouse: Path | str, base_url: str | None, concurrency: int,
                   max_rps: float | None, since, until, refresh: bool, rescan: bool, dry_run: bool, batch_size: int,
                   lock_timeout: float, data_path: str | None, shard, with_content: bool, content_only: bool,
                   max_content_bytes: int, as_json: bool, quiet: bool) -> None:
    """Find generation ids in PATHS (files, folders, globs, - for stdin) and load their metadata.

    Each file is read only past where earlier runs read it (renamed, compressed or truncated by a log
    rotation too; --rescan reads all). Ids already loaded are not fetched again (unless --refresh); a
    killed run is completed by the next. The key is read from OPENROUTER_API_KEY.
    """
    from pipeline import ingest, progress, warehouse as wh

    if content_only and paths:
        raise click.UsageError("--content-only reads no logs: it fetches the content of generations already loaded")
    if not content_only and not paths:
        raise click.UsageError("give the logs to read (files, folders, globs, - for stdin), or --content-only")
    _refuse_closed_stdin(paths)

    def fail(error: click.ClickException) -> NoReturn:
        if as_json:  # a monitor reading stdout gets an answer in every case
            click.echo(json.dumps({"outcome": "error", "exit_code": error.exit_code, "error": error.format_message()}))
        raise error

    try:
        api_key = config.api_key()
    except config.ApiKeyError as e:
        if not dry_run:
            fail(click.UsageError(str(e)))
        api_key = None
    options = ingest.IngestOptions(
        paths=paths, warehouse_path=warehouse, data_path=data_path, shard=shard,
        base_url=base_url, concurrency=concurrency, max_rps=max_rps,
        since=since, until=until, refresh=refresh, rescan=rescan, dry_run=dry_run, batch_size=batch_size,
        lock_timeout_s=lock_timeout, with_content=with_content, content_only=content_only,
        max_content_bytes=max_content_bytes)
    display = progress.progress_display(quiet=quiet)
    try:
        with _sigterm_as_interrupt():
            summary = ingest.ingest(options, api_key=api_key, on_progress=display)
    except wh.WarehouseError as exc:
        display.close()
        fail(_InputError(str(exc)))
    except ingest.IngestCrashed as exc:
        if as_json:
            click.echo(json.dumps({"outcome": "crashed", "exit_code": int(ExitCode.CRASHED), "run_id": exc.run_id,
                                   "error": str(exc)}))
        raise _IngestCrashed(f"ingest run {exc.run_id}: {exc}") from exc.__cause__
    finally:
        display.close()
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
    if not quiet:
        click.echo(progress.summary_text(summary), err=True)
    sys.exit(summary.exit_code)


class _IngestCrashed(_Reported):
    pass


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (systemd's stop, `timeout`) ends an ingest as Ctrl-C does: the batch in flight is
    written, the run recorded as interrupted, exit 1."""
    received = []

    def interrupt(signum: int, frame: object) -> None:
        if not received:  # the first one stops the run; later ones must not stop its recording
            received.append(signum)
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@cli.command("status")
@_warehouse_option("The DuckDB file to read (opened read-only).")
@_READ_LOCK_TIMEOUT_OPTION
@_AT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def status_command(warehouse: Path | str, lock_timeout: float, at, as_json: bool) -> None:
    """What the warehouse holds: queue by status, date range and totals, last runs, failures by reason."""
    from pipeline import progress, reports

    try:
        report = reports.status(warehouse, lock_timeout_s=lock_timeout, at=at)
    except reports.ReportError as exc:
        raise _InputError(str(exc)) from None
    click.echo(json.dumps(report, default=str, indent=2) if as_json else progress.status_text(report))


@cli.command("demo")
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True,
              help="Where the demo's sample logs go (DATA_DIR/demo/).")
@_warehouse_option("The warehouse the demo loads, replaced on every run (never one that holds real runs).",
                   default=config.DEMO_WAREHOUSE)
@_DATA_PATH_OPTION
def demo_command(data_dir: str, warehouse: Path | str, data_path: str | None) -> None:
    """Run the whole pipeline on built-in sample logs against a local fake OpenRouter API."""
    from pipeline import demo, progress, warehouse as wh

    display = progress.progress_display(quiet=False)
    try:
        result = demo.run_demo(Path(data_dir), warehouse_path=warehouse, data_path=data_path,
                               on_progress=display,
                               say=lambda line: click.echo(line, err=True))
    except (demo.DemoError, wh.WarehouseError) as e:
        raise _InputError(str(e)) from None
    finally:
        display.close()
    click.echo(progress.summary_text(result.summary), err=True)
    click.echo(demo.first_look(result))


@cli.command("copy")
@_warehouse_option("The warehouse to copy from (read-only).")
@click.option("--to", "target", required=True, callback=_remember_warehouse,
              help="The warehouse to copy into (created if need be): a DuckDB file or a ducklake: location.")
@_DATA_PATH_OPTION
def copy_command(warehouse: Path | str, target: Path | str, data_path: str | None) -> None:
    """Copy every row of the warehouse into another one (a file into a lake, a lake into a file).

    Batch by batch, with bounded memory; run it again to resume an interrupted copy: rows already
    copied are not copied twice.
    """
    from pipeline import warehouse as wh
    from pipeline.warehouse.copy import copy_warehouse

    def progress(table: str, copied: int, read: int) -> None:
        click.echo(f"\r{table}: {read:,} rows read, {copied:,} copied", err=True, nl=False)

    try:
        totals = copy_warehouse(warehouse, target, data_path=data_path, on_progress=progress)
    except wh.WarehouseError as exc:
        raise _InputError(str(exc)) from None
    click.echo("", err=True)
    for table, counts in totals.items():
        click.echo(f"{table}: {counts['read']:,} rows read, {counts['copied']:,} copied "
                   f"({counts['read'] - counts['copied']:,} already there)")


@cli.command("maintain")
@_warehouse_option("The warehouse to maintain.")
@click.option("--keep-days", type=click.FloatRange(min=0), default=30, show_default=True,
              help="Keep the lake's snapshots of the last DAYS days (what --at can still name).")
def maintain_command(warehouse: Path | str, keep_days: float) -> None:
    """A lake's DuckLake maintenance: merge small files, expire old snapshots, delete unused files."""
    from datetime import timedelta

    from pipeline import warehouse as wh

    try:
        done = wh.maintain(warehouse, keep_snapshots=timedelta(days=keep_days))
    except wh.WarehouseError as exc:
        raise _InputError(str(exc)) from None
    for what, count in done:
        click.echo(f"{what}: {count:,}")


@cli.command("content")
@click.argument("generation_id")
@_warehouse_option("The warehouse to read (opened read-only).")
@_READ_LOCK_TIMEOUT_OPTION
@_AT_OPTION
@click.option("--json", "as_json", is_flag=True, help="The stored row as JSON.")
def content_command(generation_id: str, warehouse: Path | str, lock_timeout: float, at, as_json: bool) -> None:
    """Print one generation's stored prompt, completion, reasoning and error (`ingest --with-content`)."""
    from pipeline import output, reports, warehouse as wh

    try:
        record = reports.Warehouse(warehouse, lock_timeout_s=lock_timeout, at=at).content(generation_id)
    except (reports.ReportError, wh.QueryError) as e:
        raise _InputError(errors.one_line(e)) from None
    if record is None:
        raise _InputError(f"{output.printable(generation_id)}: no content stored for it (fetch it with "
                          "`orusage ingest --content-only`, if the generation is loaded)")
    if as_json:
        click.echo(json.dumps(record, default=str))
    else:
        click.echo(output.content_text(record))


@cli.command("purge-content")
@_warehouse_option("The warehouse to purge.")
@click.option("--older-than", callback=_parsed_by(config.parse_age), metavar="AGE", help="Content of generations created more than AGE ago (30d, 12h, 2w).")
@click.option("--model", metavar="GLOB", help="Content of generations of models matching GLOB ('openai/*').")
@click.option("--all", "everything", is_flag=True, help="All stored content.")
@_WRITE_LOCK_TIMEOUT_OPTION
def purge_content_command(warehouse: Path | str, older_than, model: str | None, everything: bool,
                          lock_timeout: float) -> None:
    """Delete stored prompts, completions and errors, so that their bytes are gone from the warehouse's
    storage too (the DuckDB file is rewritten; a lake's files are rewritten and its old snapshots expired).
    --older-than and --model together purge what matches both."""
    from datetime import datetime, timezone

    from pipeline import warehouse as wh

    if not (everything or older_than or model):
        raise click.UsageError("say what to purge: --older-than AGE, --model GLOB, or --all")
    if everything and (older_than or model):
        raise click.UsageError("--all purges everything: give it alone")
    before = datetime.now(timezone.utc) - older_than if older_than else None
    try:
        deleted = wh.purge_content(warehouse, before=before, model=model, everything=everything,
                                   lock_timeout_s=lock_timeout)
    except wh.WarehouseError as exc:
        raise _InputError(str(exc)) from None
    click.echo(f"purged the content of {deleted:,} generations from {config.redacted(warehouse)}")


def _day(ctx: click.Context, param: click.Parameter, value: str | None):  # click callback for --date
    from datetime import date

    try:
        return None if value is None else date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@cli.command("activity")
@click.option("--date", "day", callback=_day, metavar="YYYY-MM-DD",
              help="Only this UTC day [default: every day the API has: the last 30 completed ones].")
@click.option("--management-key", metavar="KEY", default=None,
              help=f"The management key (prefer {config.MANAGEMENT_KEY_VARIABLE}: a command line is visible to other users).")
@_warehouse_option("The warehouse the bill is stored in (ingest's).")
@_DATA_PATH_OPTION
@_BASE_URL_OPTION
@_WRITE_LOCK_TIMEOUT_OPTION
def activity_command(day, management_key: str | None, warehouse: Path | str, data_path: str | None,
                     base_url: str | None, lock_timeout: float) -> None:
    """Fetch OpenRouter's billed usage (GET /activity: per UTC day, model and provider endpoint) into the
    warehouse's `activity` table, for `orusage reconcile`. Days fetched again replace their rows; days
    past the API's 30 stay. It needs a management key (OPENROUTER_MANAGEMENT_KEY)."""
    from pipeline import activity, client, warehouse as wh
    from pipeline.normalize import ActivityRowError

    try:
        key = config.management_key(management_key)
    except config.ApiKeyError as e:
        raise click.UsageError(str(e)) from None
    try:
        loaded = activity.load_activity(warehouse, key=key, base_url=base_url, day=day, data_path=data_path,
                                        lock_timeout_s=lock_timeout)
    except (activity.ManagementKeyRefused, client.FatalAPIError) as exc:
        raise _KeyRefused(str(exc)) from None
    except (client.ActivityError, client.APIUnreachableError, client.APIUnusableError) as exc:
        raise _SomeFailed(str(exc)) from None
    except (ActivityRowError, wh.WarehouseError) as exc:
        raise _InputError(str(exc)) from None
    span = f"{loaded.days[0]} to {loaded.days[-1]}" if loaded.days else "no day with usage"
    click.echo(f"stored {loaded.rows:,} billing rows for {len(loaded.days)} days ({span}) in {config.redacted(warehouse)}")


class _KeyRefused(click.ClickException):
    exit_code = ExitCode.KEY_REFUSED


class _SomeFailed(click.ClickException):
    exit_code = ExitCode.SOME_FAILED


@cli.command("reconcile")
@click.option("--since", help="First UTC day: YYYY-MM-DD [default: 30 days before --until].")
@click.option("--until", help="Last UTC day, included whole [default: the newest billed day].")
@click.option("--by", type=click.Choice(["day", "model", "provider"]), default="day", show_default=True)
@click.option("--min-coverage", type=click.FloatRange(0, 1), default=None, metavar="SHARE",
              help="Exit 1, naming the days and models, when the logs account for less than this share of "
                   "the billed spend (the window's, or any day's for a model): 0.95 for 95%.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole reconciliation as JSON (for monitoring).")
@_read_options
def reconcile_command(since: str | None, until: str | None, by: str, min_coverage: float | None, as_json: bool,
                      fmt: str, output_path: str | None, warehouse: Path | str, lock_timeout: float, at) -> None:
    """OpenRouter's bill (`orusage activity`) against the generations the logs name: per day, model or
    provider, the billed spend and requests, the logged spend and generations, what is missing, and
    the coverage; then the days only one side shows."""
    from pipeline import output, reports, warehouse as wh

    _refuse_output_over(warehouse, output_path)
    try:
        result = reports.Warehouse(warehouse, lock_timeout_s=lock_timeout, at=at).reconcile(
            since=since, until=until, by=by, min_coverage=min_coverage)
        if as_json:
            click.echo(json.dumps(result.as_dict(), default=str))
        else:
            coverage = "no billed spend" if result.coverage is None else f"coverage {result.coverage:.1%}"
            title = (f"reconcile by {by}, {result.window}: billed ${result.billed_nusd / 1e9:,.2f}, logged "
                     f"${result.logged_nusd / 1e9:,.2f}, {coverage}")
            output.write_frame(result.frame.drop("missing_nusd"), fmt=fmt, output=output_path, title=title)
    except (reports.ReportError, output.OutputError, wh.QueryError, OSError, UnicodeError) as e:
        raise _InputError(errors.one_line(e)) from None
    for label, days in (("billed with no logged generation", result.billed_only_days),
                        ("with logged generations the bill does not show", result.logged_only_days)):
        if days and not as_json:
            click.echo(f"days {label}: {', '.join(days)}", err=True)
    if not result.ok:
        worst = ", ".join(f"{row['day']} {row['model']} {row['coverage']:.1%} (${row['missing_nusd'] / 1e9:,.2f} missing)"
                          for row in result.below[:10])
        window = "" if result.coverage is None else f"the window's coverage {result.coverage:.1%}; "
        click.echo(f"orusage: coverage below {min_coverage:.0%}: {window}{worst or 'every day and model above'}"
                   + (f" and {len(result.below) - 10} more" if len(result.below) > 10 else ""), err=True)
        sys.exit(ExitCode.SOME_FAILED)


@cli.command("forget-sources")
@click.argument("pattern", required=False)
@_warehouse_option("The warehouse whose record of the logs read is dropped.")
@_WRITE_LOCK_TIMEOUT_OPTION
def forget_sources_command(pattern: str | None, warehouse: Path | str, lock_timeout: float) -> None:
    """Forget how far the log files matching PATTERN (a glob on their path; all if none) were read,
    so that the next ingest reads them whole. The ids already queued stay queued."""
    import os

    from pipeline import warehouse as wh

    absolute = None if pattern is None else pattern if pattern.startswith("/") else os.path.join(os.getcwd(), pattern)
    try:
        forgotten = wh.forget_sources(warehouse, pattern=absolute, lock_timeout_s=lock_timeout)
    except wh.WarehouseError as exc:
        raise _InputError(str(exc)) from None
    click.echo(f"forgot {forgotten:,} log files" + ("" if pattern is None else f" matching {absolute}"))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()

"""Named reports (`sql/reports/<name>.sql`) and ad-hoc SQL over a read-only warehouse, as polars frames.

A report is one parameterised query. Its file says what it answers (first comment line) and which
`--by` groupings it accepts (a `-- by:` line, the default marked); the query reads the parameters
it needs among `$since`, `$until`, `$by`, `$model`, `$provider` and `$top`, and only those are
passed; most start from the `generations_in_window` macro (sql/macros/), which applies the
window, the --model and --provider globs and the --by key. The window is half-open,
`since <= created_at < until`, in UTC. Without one, a report covers the 30 UTC days that end with
the day of the newest generation: the last 30 days *of data*, so a warehouse loaded last month
still reports on something.

Nothing here knows click: the CLI and notebooks call the same functions.
"""

from __future__ import annotations

import re
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from pipeline import config, warehouse
from pipeline.warehouse import Reader
from pipeline.warehouse.sql_files import statement

REPORTS_DIR = config.SQL_DIR / "reports"
DEFAULT_WINDOW = timedelta(days=30)
BY_CHOICES = ("day", "week", "month", "model", "provider", "app", "user", "session")
TIME_BUCKETS = ("day", "week", "month")

# Statement types a read-only query may run; everything else (COPY, ATTACH, SET, CALL, INSTALL...)
# is refused before DuckDB sees it, with a message that says why.
_READ_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})
_PARAM = re.compile(r"\$([a-z_]+)")


class ReportError(ValueError):
    """A request the reports cannot answer: unknown report, a --by it does not offer, a bad date."""


class WriteRefusedError(ReportError):
    """A statement that could change the warehouse (or the files around it) sent to a read-only query."""


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    question: str  # the file's first comment line: what the report answers
    by: tuple[str, ...]  # the --by values it accepts; empty when it has a fixed shape
    default_by: str | None  # None: grouping is optional (or not offered)
    sql: str
    params: frozenset[str]  # the $parameters the query reads


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open UTC interval: since <= created_at < until."""

    since: datetime
    until: datetime

    def __str__(self) -> str:
        last = self.until - timedelta(microseconds=1)
        if self.since.time() == time() and self.until.time() == time():
            return f"{self.since:%Y-%m-%d} to {last:%Y-%m-%d} UTC"
        return f"{self.since:%Y-%m-%d %H:%M:%S} to {self.until:%Y-%m-%d %H:%M:%S} UTC (exclusive)"


@dataclass(frozen=True, slots=True)
class ReportResult:
    report: Report
    window: Window
    by: str | None
    frame: pl.DataFrame


def _parse_report(path: Path) -> Report:
    sql = path.read_text()
    comments = [line[2:].strip() for line in sql.splitlines() if line.startswith("--")]
    by: tuple[str, ...] = ()
    default_by = None
    for line in comments:
        if line.startswith("by:"):
            choices = [c.strip() for c in line[3:].split(",")]
            by = tuple(c.removesuffix("(default)").strip() for c in choices)
            default_by = next((c.removesuffix("(default)").strip() for c in choices if c.endswith("(default)")), None)
    unknown = set(by) - set(BY_CHOICES)
    if unknown:
        raise ReportError(f"{path}: unknown --by values {sorted(unknown)} in its '-- by:' line")
    return Report(
        name=path.stem,
        question=comments[0] if comments else "",
        by=by,
        default_by=default_by,
        sql=sql,
        params=frozenset(_PARAM.findall(re.sub(r"--[^\n]*", "", sql))),
    )


@cache
def _reports(directory: Path) -> dict[str, Report]:
    return {p.stem: _parse_report(p) for p in sorted(directory.glob("*.sql"))}


def list_reports(directory: Path = REPORTS_DIR) -> list[Report]:
    return list(_reports(directory).values())


def get_report(name: str, directory: Path = REPORTS_DIR) -> Report:
    reports = _reports(directory)
    if name not in reports:
        raise ReportError(f"no report named {name!r}; the reports are: {', '.join(reports)}")
    return reports[name]


# ---- the window ------------------------------------------------------------------------------


def parse_when(value: str | date | datetime, *, end: bool = False) -> datetime:
    """A bound of the window (config.parse_time_bound), refused as a ReportError."""
    try:
        return config.parse_time_bound(value, end=end)
    except config.TimeBoundError as e:
        raise ReportError(str(e)) from None


# The newest UTC day of the generations: a date, not the TIMESTAMPTZ itself (DuckDB would need pytz to hand that over).
NEWEST_GENERATION_DAY = "select (max(created_at) at time zone 'UTC')::date from generations"


def resolve_window(
    reader: Reader,
    *,
    since: str | date | datetime | None = None,
    until: str | date | datetime | None = None,
    newest_day_sql: str = NEWEST_GENERATION_DAY,
) -> Window:
    """Fill in what the caller left out: until = the end of the newest day (`newest_day_sql`: the
    generations' by default), since = until - 30 days."""
    end = parse_when(until, end=True) if until is not None else None
    if end is None:
        [(newest_day,)] = reader.rows(newest_day_sql)
        newest_day = newest_day or datetime.now(UTC).date()
        end = parse_when(newest_day, end=True)
    start = parse_when(since) if since is not None else end - DEFAULT_WINDOW
    if start >= end:
        raise ReportError(f"empty window: since {since or start.isoformat()} is not before until {until or end.isoformat()}")
    return Window(start, end)


# ---- running ---------------------------------------------------------------------------------


def run_report(
    reader: Reader,
    name: str,
    *,
    since: str | date | datetime | None = None,
    until: str | date | datetime | None = None,
    by: str | None = None,
    model: str | None = None,
    provider: str | None = None,
    top: int | None = None,
    directory: Path = REPORTS_DIR,
) -> ReportResult:
    """Run one named report. `model` and `provider` are globs (`anthropic/*`); `top` keeps the N largest groups."""
    report = get_report(name, directory)
    if by is not None and by not in report.by:
        offered = f"--by {', '.join(report.by)}" if report.by else "no --by"
        raise ReportError(f"report {name!r} cannot group by {by!r}: it offers {offered}")
    if top is not None and "top" not in report.params:
        raise ReportError(f"report {name!r} has no --top: it returns every row it has")
    if top is not None and top < 1:
        raise ReportError(f"top must be at least 1, got {top}")
    by = by or report.default_by
    if not reader.rows("select exists (select 1 from generations)")[0][0]:
        raise ReportError("the warehouse holds no generations yet: load some with `orusage ingest LOGS...` "
                          "(`orusage status` shows its queue and its runs)")
    window = resolve_window(reader, since=since, until=until)
    values: dict[str, Any] = {
        "since": window.since,
        "until": window.until,
        **_days(window),
        "by": by,
        "model": model,
        "provider": provider,
        "top": top,
    }
    params = {k: v for k, v in values.items() if k in report.params}
    frame = _tidy(reader.frame(report.sql, params))
    return ReportResult(report, window, by, _name_group_column(frame, by))


def _days(window: Window) -> dict[str, date]:
    """The UTC days a window touches, as [since_day, until_day): for reports over daily rows (the bill)."""
    last = window.until - timedelta(microseconds=1)
    return {"since_day": window.since.date(), "until_day": last.date() + timedelta(days=1)}


def _tidy(frame: pl.DataFrame) -> pl.DataFrame:
    """DuckDB sums BIGINTs into HUGEINT, which arrives as a 38-digit decimal: make counts plain Int64 again."""
    decimals = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Decimal) and dtype.scale == 0]
    return frame.with_columns(pl.col(decimals).cast(pl.Int64)) if decimals else frame


def _name_group_column(frame: pl.DataFrame, by: str | None) -> pl.DataFrame:
    """Reports group under a generic `by_key`; show it under the grouping's own name (a date for time buckets)."""
    if "by_key" not in frame.columns:
        return frame
    if by is None:
        return frame.drop("by_key")
    if by in TIME_BUCKETS:
        frame = frame.with_columns(pl.col("by_key").str.to_date("%Y-%m-%d"))
    return frame.rename({"by_key": by})


def check_read_only(reader: Reader, query: str) -> None:
    """Refuse anything but one SELECT / EXPLAIN (WITH, FROM-first, DESCRIBE, SHOW, SUMMARIZE are SELECTs)."""
    kinds = reader.statement_kinds(query)
    if len(kinds) != 1:
        raise ReportError(f"one statement at a time, got {len(kinds)}")
    if kinds[0] not in _READ_STATEMENTS:
        raise WriteRefusedError(
            f"refused: {kinds[0]} statement; queries are read-only (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)"
        )


def run_query(reader: Reader, query: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
    """Ad-hoc read-only SQL, one statement."""
    check_read_only(reader, query)
    return reader.frame(query, params)


# ---- the notebook API ------------------------------------------------------------------------


def missing_warehouse_message(path: Path | str) -> str:
    """What to type next when there is no warehouse at `path`: the demo's, if it has run."""
    demo = Path(config.DEMO_WAREHOUSE)
    if config.is_lake(path):
        path = config.redacted(path)
    elif Path(path).resolve() != demo.resolve() and demo.exists():
        return (f"no warehouse at {path}; the demo's is {demo}: add --warehouse {demo} "
                f"(or export {config.WAREHOUSE_VARIABLE}={demo})")
    return (f"no warehouse at {path}: load one with `orusage ingest LOGS...` (or try `orusage demo`), "
            f"or point --warehouse / {config.WAREHOUSE_VARIABLE} at one")


def _connect(path: str | Path, lock_timeout_s: float = config.READ_LOCK_TIMEOUT_S,
             at: int | datetime | None = None) -> Reader:
    try:
        return warehouse.open_reader(path, lock_timeout_s=lock_timeout_s, at=at)
    except warehouse.WarehouseNotFoundError:
        raise ReportError(missing_warehouse_message(path)) from None
    except warehouse.WarehouseError as e:
        raise ReportError(str(e)) from None


class Warehouse:
    """Read-only access for notebooks and scripts: `Warehouse(path).report("daily_cost")`, `.sql("...")`.
    `path` is a DuckDB file or a DuckLake location (`ducklake:postgres:...`); `at` (a lake's
    snapshot id or a time) answers as the lake was then.

    Each call opens the warehouse, answers, and closes it, so a notebook left open never holds a
    lock that would stop `orusage ingest` from writing. During an ingest a call waits for the
    batch being written (up to `lock_timeout_s`; a lake's readers never wait) and answers from
    the batches committed.
    """

    def __init__(self, path: str | Path | None = None, *, lock_timeout_s: float = config.READ_LOCK_TIMEOUT_S,
                 at: int | str | datetime | None = None) -> None:
        self.path = config.warehouse_path(path)
        self.lock_timeout_s = lock_timeout_s
        self.at = config.parse_at(at) if isinstance(at, str) else at

    def __repr__(self) -> str:
        return f"Warehouse({config.redacted(self.path)!r})"

    @property
    def name(self) -> str:
        """What to call it in a title: the file's name, or the lake's location (without a password)."""
        return config.redacted(self.path) if config.is_lake(self.path) else Path(self.path).name

    def report(
        self,
        name: str,
        *,
        since: str | date | datetime | None = None,
        until: str | date | datetime | None = None,
        by: str | None = None,
        model: str | None = None,
        provider: str | None = None,
        top: int | None = None,
    ) -> pl.DataFrame:
        return self.run(name, since=since, until=until, by=by, model=model, provider=provider, top=top).frame

    def run(self, name: str, **options: Any) -> ReportResult:
        """Like report(), with the resolved window and grouping alongside the frame."""
        with closing(_connect(self.path, self.lock_timeout_s, self.at)) as reader:
            return run_report(reader, name, **options)

    def sql(self, query: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
        with closing(_connect(self.path, self.lock_timeout_s, self.at)) as reader:
            return run_query(reader, query, params)

    def window(
        self, *, since: str | date | datetime | None = None, until: str | date | datetime | None = None
    ) -> Window:
        with closing(_connect(self.path, self.lock_timeout_s, self.at)) as reader:
            return resolve_window(reader, since=since, until=until)

    def content(self, generation_id: str) -> dict[str, Any] | None:
        """One generation's stored prompt, completion, reasoning and error, with its model and cost
        (None: no content stored for it); see `orusage content`."""
        with closing(_connect(self.path, self.lock_timeout_s, self.at)) as reader:
            return generation_content(reader, generation_id)

    def reconcile(self, *, since: str | date | datetime | None = None, until: str | date | datetime | None = None,
                  by: str = "day", min_coverage: float | None = None) -> Reconciliation:
        """OpenRouter's bill against the logged generations (see `orusage reconcile`): `.frame` per
        group, `.coverage`, the days only one side shows, and with min_coverage what falls short."""
        with closing(_connect(self.path, self.lock_timeout_s, self.at)) as reader:
            return reconcile(reader, since=since, until=until, by=by, min_coverage=min_coverage)

    @staticmethod
    def reports() -> pl.DataFrame:
        return pl.DataFrame(
            {
                "report": [r.name for r in list_reports()],
                "answers": [r.question for r in list_reports()],
                "by": [", ".join(f"{b} (default)" if b == r.default_by else b for b in r.by) for r in list_reports()],
            }
        )


# ---- `orusage content` -----------------------------------------------------------------------------


def generation_content(reader: Reader, generation_id: str) -> dict[str, Any] | None:
    """The generation_content row of one id, with its generation's model, provider, time and cost."""
    frame = reader.frame(statement("content/one_generation"), {"generation_id": generation_id})
    return frame.row(0, named=True) if frame.height else None


# ---- `orusage status` ----------------------------------------------------------------------------------

_FAILURE_REASON_CHARS = 120


def status(path: str | Path, *, last_runs: int = 5, top_failures: int = 10,
           lock_timeout_s: float = config.READ_LOCK_TIMEOUT_S, at: int | datetime | None = None) -> dict[str, object]:
    """What `orusage status` shows: queue by status, what is loaded, the last runs, failures by reason."""
    with closing(_connect(path, lock_timeout_s, at)) as reader:
        queue = dict(reader.rows(statement("status/queue_by_status")))
        [(count, first, last, total_cost)] = reader.rows(statement("status/generations_summary"))
        runs = reader.rows(statement("status/last_runs"), {"last_runs": last_runs})
        failures = reader.rows(statement("status/failures_by_reason"),
                               {"reason_chars": _FAILURE_REASON_CHARS, "top_failures": top_failures})
        sources = reader.frame(statement("status/sources")).to_dicts() if warehouse.has_table(reader, "log_sources") else []
    return {
        "warehouse": config.redacted(path),
        "queue": queue,
        "generations": {"count": count, "first_created_at": first, "last_created_at": last,
                        "total_cost_usd": total_cost},
        "runs": [dict(zip(("run_id", "started_at", "outcome", "loaded", "not_found", "failed", "error"), row))
                 for row in runs],
        "failures": [{"reason": reason, "ids": ids, "example_id": example} for reason, ids, example in failures],
        "sources": sources,
    }



# ---- `orusage reconcile` ---------------------------------------------------------------------------

RECONCILE_BY = ("day", "model", "provider")
NO_ACTIVITY = ("the warehouse holds no billing activity: fetch it with `orusage activity` (it needs a "
               f"management key, in {config.MANAGEMENT_KEY_VARIABLE})")


@dataclass(frozen=True)
class Reconciliation:
    """What `orusage reconcile` shows: per group, the bill against the logs, and what the window adds up to."""

    window: Window
    by: str
    frame: pl.DataFrame
    billed_nusd: int
    logged_nusd: int
    billed_requests: int
    logged_generations: int
    billed_only_days: list[str]
    """Days the bill shows spend on, with no logged generation."""
    logged_only_days: list[str]
    """Days with logged generations the bill does not show (not fetched yet, or past its 30 days)."""
    below: list[dict[str, Any]]
    """With min_coverage: the (day, model) pairs covered less, the most missing first."""
    min_coverage: float | None = None

    @property
    def coverage(self) -> float | None:
        return self.logged_nusd / self.billed_nusd if self.billed_nusd else None

    @property
    def ok(self) -> bool:
        """Whether the window and each of its (day, model) pairs reach min_coverage (always, without one)."""
        return self.min_coverage is None or (not self.below and (self.coverage is None or self.coverage >= self.min_coverage))

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": {"since": self.window.since.isoformat(), "until": self.window.until.isoformat()},
            "by": self.by,
            "billed_usd": self.billed_nusd / 1e9, "logged_usd": self.logged_nusd / 1e9,
            "missing_usd": (self.billed_nusd - self.logged_nusd) / 1e9, "coverage": self.coverage,
            "billed_requests": self.billed_requests, "logged_generations": self.logged_generations,
            "billed_only_days": self.billed_only_days, "logged_only_days": self.logged_only_days,
            "min_coverage": self.min_coverage, "ok": self.ok,
            "below_min_coverage": [{**row, "missing_usd": row["missing_nusd"] / 1e9} for row in self.below],
            "groups": self.frame.to_dicts(),
        }


def reconcile(reader: Reader, *, since: str | date | datetime | None = None,
              until: str | date | datetime | None = None, by: str = "day",
              min_coverage: float | None = None) -> Reconciliation:
    """The bill (`activity`) against the logged generations over a window of UTC days (default: the
    30 days up to the newest billed one, the API's own window), grouped by day, model or provider."""
    if by not in RECONCILE_BY:
        raise ReportError(f"reconcile groups by {', '.join(RECONCILE_BY)}, not {by!r}")
    if min_coverage is not None and not 0 <= min_coverage <= 1:
        raise ReportError(f"--min-coverage is a share between 0 and 1, not {min_coverage}")
    if not warehouse.has_table(reader, "activity") or not reader.rows("select exists (select 1 from activity)")[0][0]:
        raise ReportError(NO_ACTIVITY)
    window = resolve_window(reader, since=since, until=until, newest_day_sql="select max(date) from activity")
    days = _days(window)
    frame = _name_group_column(_tidy(reader.frame(get_report("reconcile").sql, {**days, "by": by})), by)
    [(billed, logged, requests, generations)] = reader.rows(statement("reconcile/totals"), days)
    unmatched = reader.rows(statement("reconcile/unmatched_days"), days)
    below = [] if min_coverage is None else [
        dict(zip(("day", "model", "billed_nusd", "missing_nusd", "coverage"), row))
        for row in reader.rows(statement("reconcile/below_coverage"), {**days, "min_coverage": min_coverage})]
    return Reconciliation(window, by, frame, billed, logged, requests, generations,
                          [day for day, billed_only in unmatched if billed_only],
                          [day for day, billed_only in unmatched if not billed_only], below, min_coverage)

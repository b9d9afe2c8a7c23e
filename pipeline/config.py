"""orusage's defaults, environment variables, exit codes and time bounds: each spelled once, here.

Precedence everywhere: a command-line option, then the environment variable, then the default.

Time bounds (`--since` / `--until`, `Warehouse.report(since=, until=)`) have one meaning in every
command: the window is half-open, `since <= t < until`, in UTC. A bare date is a whole UTC day:
as `since` it is that midnight, as `until` the day is included (the bound is the next midnight).
A date-time is used as is (naive means UTC). `t` is a generation's `created_at` in reports, and
the time inside its id (`gen-<unix seconds>-...`, whole seconds) wherever ids are filtered
without a request (`ids`, `ingest`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import IntEnum
from pathlib import Path
from typing import Final

WAREHOUSE_VARIABLE: Final = "ORUSAGE_WAREHOUSE"
DEFAULT_WAREHOUSE: Final = "data/warehouse.duckdb"
# The demo's own file, apart from real data; `orusage demo` replaces it on every run.
DEMO_WAREHOUSE: Final = "data/demo.duckdb"
API_KEY_VARIABLE: Final = "OPENROUTER_API_KEY"
MANAGEMENT_KEY_VARIABLE: Final = "OPENROUTER_MANAGEMENT_KEY"  # `orusage activity`: /activity takes no other key
BASE_URL_VARIABLE: Final = "OPENROUTER_BASE_URL"
DEFAULT_BASE_URL: Final = "https://openrouter.ai/api/v1"
DEBUG_VARIABLE: Final = "ORUSAGE_DEBUG"

def _sql_dir() -> Path:
    """The project's `sql/` folder: inside the package when installed from a wheel (pyproject maps
    `sql/` to `pipeline/sql/`), beside `pipeline/` in a checkout (editable installs, tests)."""
    package = Path(__file__).resolve().parent
    return package / "sql" if (package / "sql").is_dir() else package.parent / "sql"


SQL_DIR: Final = _sql_dir()

# How long a reader (report, query, status, the notebook API) waits for an ingest's write window to
# end before it says who holds the warehouse; and how long an ingest waits, at each window, for
# readers to close the file (a reader left open for longer stops the run: the DuckDB CLI, say).
READ_LOCK_TIMEOUT_S: Final = 30.0
WRITER_WAITS_FOR_READERS_S: Final = 120.0

# Ids staged in one statement (and held in Python at once) while the logs are read.
STAGE_CHUNK_IDS: Final = 50_000
# A log file's new state waits at most this long for its commit (with the ids staged so far), so
# that a run killed while scanning many files reads again only the last seconds' worth.
STAGE_COMMIT_S: float = 1.0

WITH_CONTENT_VARIABLE: Final = "ORUSAGE_WITH_CONTENT"  # 1: `ingest --with-content`
# A stored body over this is kept with each of its texts cut to it (`raw` too, still JSON), marked `truncated`.
DEFAULT_MAX_CONTENT_BYTES: Final = 32 * 2**20
# A batch of content rows is written once it holds this many bytes of bodies (or batch_size rows).
CONTENT_BATCH_BYTES: Final = 4 * 2**20


class ExitCode(IntEnum):
    """What `orusage` exits with (the README's table)."""

    OK = 0  # every id loaded or known not found; a dry run; a report or query answered
    SOME_FAILED = 1  # some ids failed (or the run was interrupted): they stay queued for the next run
    USAGE = 2  # bad option or input, nothing readable, warehouse missing, locked or too new, SQL error
    KEY_REFUSED = 3  # the API refused the key (401/402/403): the run stopped, what was loaded stays
    CRASHED = 4  # an unexpected error: one line on stderr, the traceback in a file (or --debug)


class WarehousePathError(ValueError):
    """A --warehouse that names no file orusage can keep (`:memory:`, a URL, an empty name)."""


def warehouse_path(explicit: str | Path | None = None) -> Path | str:
    """The warehouse to use: `explicit`, else ORUSAGE_WAREHOUSE, else DEFAULT_WAREHOUSE."""
    return check_warehouse_path(explicit or os.environ.get(WAREHOUSE_VARIABLE) or DEFAULT_WAREHOUSE)


# A DuckLake warehouse: `ducklake:postgres:<libpq connection string>` or `ducklake:sqlite:<file>`.
LAKE_PREFIX: Final = "ducklake:"
LAKE_CATALOGS: Final = ("postgres", "sqlite")


def is_lake(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(LAKE_PREFIX)


def check_warehouse_path(value: str | Path) -> Path | str:
    """A warehouse is a DuckDB file (a Path) or a DuckLake (its `ducklake:` location, a str):
    `:memory:` would keep nothing, and `md:`, `s3://`, `file:` names are DuckDB's other kinds of
    database, which orusage does not write."""
    text = str(value)
    if not text.strip():
        raise WarehousePathError("the warehouse path is empty")
    if text.startswith(LAKE_PREFIX):
        catalog, _, target = text[len(LAKE_PREFIX):].partition(":")
        if catalog not in LAKE_CATALOGS or not target.strip():
            raise WarehousePathError(
                "a DuckLake warehouse is ducklake:postgres:'dbname=... host=...' or ducklake:sqlite:PATH")
        return text
    if text.startswith(":") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", text):
        raise WarehousePathError(f"{text!r} is not a file path: a warehouse is a DuckDB file (e.g. data/warehouse.duckdb) "
                                 "or a DuckLake (ducklake:postgres:... or ducklake:sqlite:...)")
    return Path(text)


def parse_at(value: str) -> int | datetime:
    """`--at`: a lake's snapshot id (digits) or a time (an ISO date or date-time; naive means UTC)."""
    text = value.strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is neither a snapshot id nor an ISO date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_shard(value: str) -> tuple[int, int]:
    """`--shard i/N` (1 <= i <= N) as (index from 0, count)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value)
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise ValueError(f"{value!r} is not i/N with 1 <= i <= N (e.g. 2/4: the second of four shards)")
    return int(match[1]) - 1, int(match[2])


def redacted(location: str | Path) -> str:
    """A warehouse location as it may be printed, logged or stored: without a password."""
    text = str(location)
    text = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text, flags=re.IGNORECASE)
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key and where it came from, so an error can say which one to check. Its repr hides it."""

    value: str
    source: str  # "OPENROUTER_API_KEY" or a phrase like "the key passed explicitly"

    def __repr__(self) -> str:
        return f"ApiKey(source={self.source!r})"

    @property
    def hint(self) -> str:
        return f"check {self.source}"


class ApiKeyError(ValueError):
    """No usable key: unset, empty, or with characters no HTTP header may carry."""


def api_key(
    explicit: str | None = None,
    *,
    explicit_source: str = f"the key passed explicitly (it overrides {API_KEY_VARIABLE})",
    variable: str = API_KEY_VARIABLE,
    kind: str = "API key",
) -> ApiKey:
    """The key to send: `explicit` if given, else the `variable` (OPENROUTER_API_KEY). Surrounding
    whitespace (a trailing newline or `\\r` from a key file) is dropped; a key still holding a
    control character or a space is refused, naming where it came from but never showing it."""
    if explicit is not None and explicit.strip():
        value, source = explicit, explicit_source
    else:
        value, source = os.environ.get(variable, ""), variable
    value = value.strip()
    if not value:
        raise ApiKeyError(f"{variable} is not set: export your OpenRouter {kind} first")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise ApiKeyError(f"the {kind} in {source} holds a space or a control character: check {source}")
    if not value.isascii():
        raise ApiKeyError(f"the {kind} in {source} holds a character that is not ASCII: check {source}")
    return ApiKey(value, source)


def management_key(explicit: str | None = None) -> ApiKey:
    """The management key `/activity` needs (made on OpenRouter's settings page, not an inference
    key): `explicit` (--management-key) if given, else OPENROUTER_MANAGEMENT_KEY; checked as api_key does."""
    return api_key(explicit, explicit_source=f"--management-key (it overrides {MANAGEMENT_KEY_VARIABLE})",
                   variable=MANAGEMENT_KEY_VARIABLE, kind="management key")


class BaseUrlError(ValueError):
    """A base URL orusage will not use: not http(s), or carrying credentials."""


def check_base_url(url: str) -> str:
    """`url` if usable. Credentials in it (`http://user:pass@host`) are refused: the API's only
    credential is the key, and a URL is printed, logged and stored in `ingest_runs`."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise BaseUrlError("the base URL is not a valid URL") from None
    if parts.username is not None or parts.password is not None:
        raise BaseUrlError("the base URL must not carry a user name or password (the API key is the only credential)")
    if parts.query or parts.fragment:
        raise BaseUrlError("the base URL must not carry a query string or fragment (orusage adds `?id=`)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BaseUrlError(f"the base URL must be http:// or https:// with a host, not {parts.scheme or 'no scheme'}")
    return url


# --- time bounds -------------------------------------------------------------------------------


class TimeBoundError(ValueError):
    """A --since / --until that is not a date or date-time, or a window that is empty."""


def parse_time_bound(value: str | date | datetime, *, end: bool = False) -> datetime:
    """One bound, as an aware UTC datetime (see the module docstring: `end` marks an `until`)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise TimeBoundError(
                f"not a date or date-time: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+00:00])"
            ) from None
    try:
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        day = datetime.combine(value, time(), tzinfo=UTC)
        return day + timedelta(days=1) if end else day
    except OverflowError:
        raise TimeBoundError(f"out of range: {value} (dates go up to 9999-12-30)") from None


def check_window(since: datetime | None, until: datetime | None) -> None:
    """Refuse a window with nothing in it (`since` at or after `until`)."""
    if since is not None and until is not None and since >= until:
        raise TimeBoundError(
            f"empty window: --since {since:%Y-%m-%d %H:%M:%S} is not before --until {until:%Y-%m-%d %H:%M:%S} (UTC)"
        )


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(value: str) -> timedelta:
    """`30d`, `12h`, `2w`, `90m`, `45s`: how old (`purge-content --older-than`)."""
    match = _AGE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not an age: a number and a unit, s, m, h, d or w (30d, 12h, 2w)")
    return timedelta(**{_AGE_UNITS[match[2]]: float(match[1])})

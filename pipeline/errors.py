"""How an error reaches the user: one line, and for an unexpected one its traceback in a file.

Every command prints an error as one line on stderr; an unexpected one (a bug, a library that
broke) also has its traceback written to a file whose path the line names, or shown with
`orusage --debug` (or ORUSAGE_DEBUG=1). Nothing else here: no click, no DuckDB.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

MAX_LINE_CHARS = 500


def one_line(error: BaseException) -> str:
    """The error's message on one line, without the echoed query and caret DuckDB appends."""
    lines = []
    for line in str(error).splitlines():
        if line.startswith("LINE ") or not line.strip() or set(line.strip()) == {"^"}:
            break
        lines.append(line.strip())
    text = " ".join(" ".join(lines).split()) or type(error).__name__
    return text if len(text) <= MAX_LINE_CHARS else text[: MAX_LINE_CHARS - 1] + "…"


def described(error: BaseException) -> str:
    """`Type: message`, one line: for errors nobody planned for, where the type is the clue."""
    message = one_line(error)
    name = type(error).__name__
    return name if message == name else f"{name}: {message}"


def write_traceback(error: BaseException, *, folder: Path | None = None) -> Path | None:
    """The whole traceback (chained causes included) in a new file; its path, or None if no folder
    would take it. Goes to `folder` (the warehouse's) when writable, else the system's temp folder."""
    text = "".join(traceback.format_exception(error))
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{os.getpid()}"
    for where in ([folder] if folder else []) + [Path(tempfile.gettempdir())]:
        path = where / f"orusage-crash-{stamp}.txt"
        try:
            with open(path, "x", encoding="utf-8") as file:
                file.write(text)
            return path
        except OSError:
            continue
    return None

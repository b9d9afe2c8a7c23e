"""Write a polars frame as a terminal table, CSV, JSON, Markdown or Parquet.

Machine formats (csv, json, parquet) carry the values as they are. The human ones (table, markdown)
format each column by the unit its name carries: `_usd` as dollars with as many decimals as the
column's largest value needs, `_ms` as whole milliseconds, `_share` / `_rate` as percentages,
counts with thousands separators; numbers are right-aligned.
"""

from __future__ import annotations

import io
import math
import sys
from datetime import date, datetime
from pathlib import Path
from typing import IO, Callable

import polars as pl

FORMATS = ("table", "csv", "json", "markdown", "parquet")
MISSING = "–"


class OutputError(ValueError):
    pass


def write_frame(
    frame: pl.DataFrame,
    *,
    fmt: str = "table",
    output: str | Path | None = None,
    title: str | None = None,
    stdout: IO[str] | None = None,
) -> None:
    """Write `frame` to `output` (a path) or to stdout."""
    if fmt not in FORMATS:
        raise OutputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    stdout = stdout or sys.stdout
    if fmt == "parquet":
        if output is None:
            if stdout.isatty():
                raise OutputError("parquet is binary: give --output FILE (or redirect stdout)")
            stdout.flush()
            frame.write_parquet(stdout.buffer)
        else:
            frame.write_parquet(output)
        return
    text = render(frame, fmt=fmt, title=title, width=None if output else _terminal_width(stdout))
    if output is None:
        stdout.write(text)
    else:
        Path(output).write_text(text)


def render(frame: pl.DataFrame, *, fmt: str, title: str | None = None, width: int | None = None) -> str:
    if fmt == "csv":
        return frame.write_csv()
    if fmt == "json":
        return frame.write_json() + "\n"
    if fmt == "markdown":
        return _markdown(frame, title)
    if fmt == "table":
        return _table(frame, title, width)
    raise OutputError(f"cannot render {fmt!r} as text")


# ---- formatting by unit ----------------------------------------------------------------------


def _dollar_decimals(values: list[float]) -> int:
    """Two decimals once amounts reach a dollar; below that, enough to show three significant digits."""
    largest = max((abs(v) for v in values), default=0.0)
    if largest >= 1 or largest == 0:
        return 2
    return min(8, max(2, 2 - math.floor(math.log10(largest))))


def _money(decimals: int) -> Callable[[float], str]:
    def fmt(v: float) -> str:
        text = f"{abs(v):,.{decimals}f}"
        return f"-${text}" if v < 0 and float(text.replace(",", "")) != 0 else f"${text}"

    return fmt


def _percent(v: float) -> str:
    pct = v * 100
    if 0 < abs(pct) < 0.1:
        return "<0.1%"
    return f"{pct:.1f}%"


def _formatter(name: str, series: pl.Series) -> Callable[[object], str]:
    dtype = series.dtype
    if isinstance(dtype, pl.Decimal):
        series, dtype = series.cast(pl.Int64 if dtype.scale == 0 else pl.Float64), pl.Int64 if dtype.scale == 0 else pl.Float64
    if dtype.is_float():
        values = [v for v in series.to_list() if v is not None and math.isfinite(v)]
        if "usd" in name.split("_"):
            return _money(_dollar_decimals(values))  # type: ignore[return-value]
        if name.endswith(("_share", "_rate")):
            return _percent  # type: ignore[return-value]
        if name.endswith("_ms"):
            return lambda v: f"{v:,.0f}"  # type: ignore[misc]
        if name.endswith("_per_s") or "_per_s_" in name:
            return lambda v: f"{v:,.1f}"  # type: ignore[misc]
        largest = max((abs(v) for v in values), default=0.0)
        decimals = 2 if largest >= 1 or largest == 0 else min(6, 2 - math.floor(math.log10(largest)))
        return lambda v: f"{v:,.{decimals}f}"  # type: ignore[misc]
    if dtype.is_integer():
        return lambda v: f"{v:,}"
    if dtype == pl.Datetime:
        return lambda v: v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else str(v)
    if dtype == pl.Date:
        return lambda v: v.isoformat() if isinstance(v, date) else str(v)
    return str


# Control characters (ESC, BEL, newlines, C1) shown as escapes: data an app user set must not
# move the cursor, retitle the terminal or break a table's rows.
_VISIBLE = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}


def printable(text: str) -> str:
    """`text` with every control character written as `\\xNN`, for terminals and Markdown."""
    return text.translate(_VISIBLE) if not text.isprintable() else text


def _cells(name: str, series: pl.Series) -> list[str]:
    fmt = _formatter(name, series)
    if isinstance(series.dtype, pl.Decimal):
        series = series.cast(pl.Int64 if series.dtype.scale == 0 else pl.Float64)
    return [MISSING if v is None else printable(fmt(v)) for v in series.to_list()]


def formatted_columns(frame: pl.DataFrame) -> list[tuple[str, bool, list[str]]]:
    """(name, is_numeric, cell texts) per column."""
    columns = []
    for name in frame.columns:
        series = frame[name]
        columns.append((name, series.dtype.is_numeric(), _cells(name, series)))
    return columns


def _is_wide_single_row(frame: pl.DataFrame) -> bool:
    return frame.height == 1 and frame.width > 6


def _table(frame: pl.DataFrame, title: str | None, width: int | None) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Every cell, header and title is a Text: data (an `external_user` set by any app user) is
    # printed as it is, never read as rich markup (`[bold]`, `[/]`) or emoji codes (`:smile:`).
    table = Table(box=box.SIMPLE_HEAD)
    columns = formatted_columns(frame)
    if _is_wide_single_row(frame):  # one wide row (a summary) reads better as a list of measures
        table.add_column(Text("measure"))
        table.add_column(Text("value"), justify="right", no_wrap=True)
        for name, _, cells in columns:
            table.add_row(Text(name), Text(cells[0]))
    else:
        for name, numeric, _ in columns:
            table.add_column(Text(printable(name)), justify="right" if numeric else "left", no_wrap=numeric)
        for row in zip(*(cells for _, _, cells in columns)):
            table.add_row(*(Text(cell) for cell in row))
    buffer = io.StringIO()
    console = Console(file=buffer, width=width or 250, color_system=None, highlight=False, soft_wrap=False,
                      markup=False, emoji=False)
    if title:
        console.print(Text(printable(title)), soft_wrap=True)
    console.print(table)
    if frame.height == 0:
        console.print("(no rows)")
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def _markdown(frame: pl.DataFrame, title: str | None) -> str:
    columns = formatted_columns(frame)
    if _is_wide_single_row(frame):
        columns = [
            ("measure", False, [name for name, _, _ in columns]),
            ("value", True, [cells[0] for _, _, cells in columns]),
        ]
    lines = [f"**{printable(title)}**", ""] if title else []
    lines.append("| " + " | ".join(printable(name) for name, _, _ in columns) + " |")
    lines.append("|" + "|".join("---:" if numeric else "---" for _, numeric, _ in columns) + "|")
    for row in zip(*(cells for _, _, cells in columns)):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(lines) + "\n"


def _terminal_width(stream: IO[str]) -> int | None:
    """The terminal's width when writing to one; None (wide, never wrapped) when piped to a file."""
    try:
        if stream.isatty():
            import shutil

            return shutil.get_terminal_size().columns
    except (AttributeError, ValueError):
        pass
    return None


def content_text(record: dict) -> str:
    """One generation's stored content for a person (`orusage content`): what it asked, what it
    answered, and the error it returned, under a line of its metadata."""
    cost = record.get("total_cost_usd")
    head = [record["generation_id"], record.get("model") or "(model unknown)", record.get("provider_name") or "",
            f"${cost:.6f}" if cost is not None else "", f"{record['created_at']:%Y-%m-%d %H:%M:%S} UTC"
            if record.get("created_at") else ""]
    lines = ["  ".join(part for part in head if part)]
    if record["content_status"] == "none_stored":
        lines.append("(no content stored: the account's logging was off or the request had zero data retention)")
        return "\n".join(lines)
    if record["truncated"]:
        lines.append(f"(stored cut: the body was {record['body_bytes']:,} bytes, over --max-content-bytes)")
    lines.append(f"--- input ({record['input_kind'] or 'none'}, {record['input_bytes']:,} bytes)")
    if record["messages"]:
        for message in record["messages"]:
            text = message["content"] if message["content"] is not None else message["content_parts"]
            lines.append(f"[{message['role'] or '?'}] {text if text is not None else ''}")
    elif record["prompt"] is not None:
        lines.append(record["prompt"])
    for name in ("completion", "reasoning"):
        if record[name] is not None:
            lines += [f"--- {name}", record[name]]
    if record["error_status"] is not None or record["error_message"] is not None:
        lines.append("--- error")
        lines.append(f"HTTP {record['error_status']} from {record['error_provider_name'] or '(unknown)'}: "
                     f"{record['error_message'] or ''}")
        for number, attempt in enumerate(record["previous_errors"] or []):
            lines.append(f"  before it, attempt {number}: HTTP {attempt['code']} from "
                         f"{attempt['provider_name'] or '(unknown)'}: {attempt['message'] or ''}")
    return "\n".join(lines)

"""Raw `GET /generation` bodies to polars frames with explicit types. Pure: no I/O.

How it parses, by measurement (bench/normalize_upsert.py prints the comparison): msgspec decodes
each body straight into a typed struct (checking every field's type on the way, no dict per
record), one `attrgetter` reads each struct's row, and the rows become columns. Slower here:
`orjson.loads` into dicts then `pl.DataFrame(dicts, schema=...)` (even with the garbage collector
paused, as it is here too: it otherwise spends most of a parse scanning the objects just made),
column-wise lists from dicts, `pl.read_ndjson` and `str.json_decode` with a nested schema.
DuckDB's `json_transform` over the batch was about as fast but coerces silently (1016.5 -> 1016,
"7" -> 7, true -> 1.0); polars' dict constructor does too, which is why types are checked first.

A body the typed decoder refuses takes the careful path (orjson, then explicit checks) which
either fixes what is safe or rejects the id with a one-line reason; the rest of the batch goes on.
Decisions about odd values, one per kind:
- an integer field holding a float: 1016.0 is stored as 1016; 1016.5 rejects the record rather
  than being rounded, so no stored count differs from what the API said;
- a value of the wrong JSON type (a string where a number belongs, 1 for a boolean...) rejects
  the record; null or a missing key is NULL (older records lack the fields added since);
- unknown keys are kept, in `raw` only; enums are open strings (any string is accepted);
- `created_at` with `Z` or an offset, any number of fractional digits, is converted to UTC
  (microsecond precision); one without an offset is taken as UTC; an unparseable one rejects;
- `raw` is the `data` object's own bytes as received (re-serialized only for an envelope with
  keys besides `data`); the `provider_responses` column is the attempts re-encoded (known keys,
  nulls omitted).
"""

from __future__ import annotations

import gc
import operator
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated

import msgspec
import orjson
import polars as pl

UTC_MICROS = pl.Datetime("us", "UTC")

# The 45 keys of the API's generation record (OpenAPI schema GenerationResponse), by type.
STRING_FIELDS = (
    "id", "request_id", "session_id", "upstream_id", "response_cache_source_id", "preset_id",
    "workspace_id", "external_user", "model", "provider_name", "router", "api_type", "service_tier",
    "data_region", "web_search_engine", "finish_reason", "native_finish_reason", "origin",
    "http_referer", "user_agent",
)  # fmt: skip
INTEGER_FIELDS = (
    "app_id", "tokens_prompt", "tokens_completion", "native_tokens_prompt", "native_tokens_completion",
    "native_tokens_completion_images", "native_tokens_reasoning", "native_tokens_cached",
    "num_media_prompt", "num_input_audio_prompt", "num_media_completion", "num_search_results",
    "num_fetches",
)  # fmt: skip
# USD for the costs; milliseconds for the three timings.
FLOAT_FIELDS = (
    "total_cost", "usage", "cache_discount", "upstream_inference_cost",
    "latency", "generation_time", "moderation_latency",
)  # fmt: skip
BOOLEAN_FIELDS = ("is_byok", "streamed", "cancelled")
API_FIELDS = (*STRING_FIELDS, "created_at", *INTEGER_FIELDS, *FLOAT_FIELDS, *BOOLEAN_FIELDS, "provider_responses")

GENERATION_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "request_id": pl.String(),
    "session_id": pl.String(),
    "upstream_id": pl.String(),
    "response_cache_source_id": pl.String(),
    "app_id": pl.Int64(),
    "preset_id": pl.String(),
    "workspace_id": pl.String(),
    "external_user": pl.String(),
    "created_at": UTC_MICROS,
    "model": pl.String(),
    "provider_name": pl.String(),
    "router": pl.String(),
    "api_type": pl.String(),
    "service_tier": pl.String(),
    "data_region": pl.String(),
    "web_search_engine": pl.String(),
    "finish_reason": pl.String(),
    "native_finish_reason": pl.String(),
    "total_cost": pl.Float64(),
    "usage": pl.Float64(),
    "cache_discount": pl.Float64(),
    "upstream_inference_cost": pl.Float64(),
    "latency": pl.Float64(),
    "generation_time": pl.Float64(),
    "moderation_latency": pl.Float64(),
    "tokens_prompt": pl.Int64(),
    "tokens_completion": pl.Int64(),
    "native_tokens_prompt": pl.Int64(),
    "native_tokens_completion": pl.Int64(),
    "native_tokens_completion_images": pl.Int64(),
    "native_tokens_reasoning": pl.Int64(),
    "native_tokens_cached": pl.Int64(),
    "num_media_prompt": pl.Int64(),
    "num_input_audio_prompt": pl.Int64(),
    "num_media_completion": pl.Int64(),
    "num_search_results": pl.Int64(),
    "num_fetches": pl.Int64(),
    "is_byok": pl.Boolean(),
    "streamed": pl.Boolean(),
    "cancelled": pl.Boolean(),
    "origin": pl.String(),
    "http_referer": pl.String(),
    "user_agent": pl.String(),
    "provider_responses": pl.String(),  # JSON text of the array, or null
    "raw": pl.String(),  # JSON text: the body's `data` object exactly as received
}
assert set(GENERATION_SCHEMA) == {*API_FIELDS, "raw"} and len(API_FIELDS) == 45

PROVIDER_RESPONSE_SCHEMA: dict[str, pl.DataType] = {
    "generation_id": pl.String(),
    "attempt": pl.Int32(),  # 0-based, in the order the API lists the attempts
    "provider_name": pl.String(),
    "status": pl.Int32(),
    "latency": pl.Float64(),  # milliseconds
    "endpoint_id": pl.String(),
    "model_permaslug": pl.String(),
    "is_byok": pl.Boolean(),
    "routed_service_tier": pl.String(),
    "id": pl.String(),
}
_ATTEMPT_FIELDS = tuple(name for name in PROVIDER_RESPONSE_SCHEMA if name not in ("generation_id", "attempt"))


_INT64 = Annotated[int, msgspec.Meta(ge=-(2**63) + 1, le=2**63 - 1)]
_INT32 = Annotated[int, msgspec.Meta(ge=-(2**31) + 1, le=2**31 - 1)]


class _Attempt(msgspec.Struct, omit_defaults=True, gc=False):
    """One item of `provider_responses`; fields in the API's (alphabetical) order."""

    endpoint_id: str | None = None
    id: str | None = None
    is_byok: bool | None = None
    latency: int | float | None = None
    model_permaslug: str | None = None
    provider_name: str | None = None
    routed_service_tier: str | None = None
    status: _INT32 | None = None


def _field_type(name: str) -> object:
    if name in INTEGER_FIELDS:
        return _INT64 | None
    if name in FLOAT_FIELDS:
        return float | None
    if name in BOOLEAN_FIELDS:
        return bool | None
    if name == "provider_responses":
        return list[_Attempt] | None
    return str | None


# Every field optional (older records lack many); unknown keys ignored here (they stay in `raw`).
_Generation = msgspec.defstruct(
    "_Generation", [(name, _field_type(name), None) for name in API_FIELDS], gc=False
)
# The envelope may hold `data` and nothing else, so that `raw` can be cut from the body's bytes.
_Body = msgspec.defstruct("_Body", [("data", _Generation)], forbid_unknown_fields=True, gc=False)
_decode_body = msgspec.json.Decoder(_Body).decode
_encode = msgspec.json.Encoder().encode

_ROW_FIELDS = tuple(name for name in GENERATION_SCHEMA if name not in ("provider_responses", "raw"))
_row_of = operator.attrgetter(*_ROW_FIELDS)
_attempt_row_of = operator.attrgetter(*_ATTEMPT_FIELDS)
_COMPACT_PREFIX = b'{"data":{'
_DATA_PREFIX = re.compile(rb'\A\s*\{\s*"data"\s*:\s*')


@dataclass
class NormalizedBatch:
    generations: pl.DataFrame  # GENERATION_SCHEMA, one row per id (the last body wins if an id repeats)
    provider_responses: pl.DataFrame  # PROVIDER_RESPONSE_SCHEMA, one row per attempt, in order
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (requested id, reason)


class _Rejected(Exception):
    pass


class _Unusual(Exception):
    pass


def normalize_bodies(bodies: Sequence[tuple[str, bytes]]) -> NormalizedBatch:
    """(requested id, raw 200 body) pairs to frames. A body that is no valid record of the
    requested id is rejected with a one-line reason; an id given twice keeps its last body."""
    if len({requested_id for requested_id, _ in bodies}) != len(bodies):
        bodies = list({requested_id: (requested_id, body) for requested_id, body in bodies}.values())
    with _gc_paused():
        generations, provider_responses, rejected = _decode_all(bodies)
    generations, bad_times = _parse_created_at(generations)
    if bad_times:
        rejected.extend(bad_times)
        bad_ids = [generation_id for generation_id, _ in bad_times]
        provider_responses = provider_responses.filter(~pl.col("generation_id").is_in(bad_ids))
    return NormalizedBatch(
        generations=generations.select(list(GENERATION_SCHEMA)),
        provider_responses=provider_responses.select(list(PROVIDER_RESPONSE_SCHEMA)),
        rejected=rejected,
    )


def _decode_all(bodies: Sequence[tuple[str, bytes]]) -> tuple[pl.DataFrame, pl.DataFrame, list[tuple[str, str]]]:
    rows: list[tuple] = []
    raws: list[bytes] = []  # the body (when whole_body) or the `data` object's text
    whole_body: list[bool] = []
    attempts_json: list[bytes | None] = []
    attempt_rows: list[tuple] = []
    attempt_ids: list[str] = []
    attempt_numbers: list[int] = []
    rejected: list[tuple[str, str]] = []
    for requested_id, body in bodies:
        try:
            record = _decode_body(body).data
            if record.id != requested_id or record.created_at is None:
                raise _Unusual
            if body.startswith(_COMPACT_PREFIX) and body.endswith(b"}}"):
                whole_body.append(True)  # `raw` is cut from it below, vectorized
                raw = body
            else:
                whole_body.append(False)
                raw = _data_text(body)
                if raw is None:
                    raise _Unusual
        except (msgspec.DecodeError, msgspec.ValidationError, _Unusual):
            try:
                record, raw = _decode_carefully(requested_id, body)
            except _Rejected as exc:
                rejected.append((requested_id, str(exc)))
                continue
            whole_body.append(False)
        rows.append(_row_of(record))
        raws.append(raw)
        attempts = record.provider_responses
        if attempts is None:
            attempts_json.append(None)
        else:
            attempts_json.append(_encode(attempts))
            attempt_rows.extend(map(_attempt_row_of, attempts))
            attempt_ids.extend([requested_id] * len(attempts))
            attempt_numbers.extend(range(len(attempts)))
    generations = _frame(rows, _ROW_FIELDS, GENERATION_SCHEMA).with_columns(
        pl.Series("provider_responses", attempts_json, pl.Binary()).cast(pl.String()),
        _raw_column(raws, whole_body),
    )
    provider_responses = _frame(attempt_rows, _ATTEMPT_FIELDS, PROVIDER_RESPONSE_SCHEMA).with_columns(
        pl.Series("generation_id", attempt_ids, pl.String()),
        pl.Series("attempt", attempt_numbers, pl.Int32()),
    )
    return generations, provider_responses, rejected  # the row tuples die here, before the GC is back


def _raw_column(texts: list[bytes], whole_body: list[bool]) -> pl.Series:
    """Cutting `{"data":` and the closing brace off in polars costs nothing (string views);
    slicing 1.5 KB bytes objects in Python cost ~1 us each."""
    texts_column = pl.Series("raw", texts, pl.Binary()).cast(pl.String())
    cut = texts_column.str.slice(len(_COMPACT_PREFIX) - 1).str.head(-1)  # `{"data":` ... `}`
    return cut.zip_with(pl.Series(whole_body, dtype=pl.Boolean()), texts_column)


def _frame(rows: list[tuple], names: Sequence[str], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Rows to a frame through columns: faster here than polars' own row or dict constructors."""
    columns = zip(*rows) if rows else ((),) * len(names)
    return pl.DataFrame(
        [pl.Series(name, values, pl.String() if name == "created_at" else schema[name]) for name, values in zip(names, columns)]
    )


@contextmanager
def _gc_paused() -> Iterator[None]:
    """A batch makes hundreds of thousands of young objects at once; letting the collector scan
    them as they come tripled the parse time (measured with orjson; msgspec is no different)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _data_text(body: bytes) -> bytes | None:
    """The `data` object's own bytes, given a body known to be `{"data": {...}}` and nothing else."""
    prefix = _DATA_PREFIX.match(body)
    if prefix is None:  # the key spelled with escapes: let the careful path re-serialize
        return None
    return body[prefix.end() : body.rfind(b"}")].rstrip()


def _decode_carefully(requested_id: str, body: bytes) -> tuple[msgspec.Struct, bytes]:
    """The slow path, for bodies the typed decoder refused: say exactly what is wrong, or fix it."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _Rejected(f"body is not JSON ({exc})") from None
    if type(document) is not dict:
        raise _Rejected(f"body is a JSON {_json_type(document)}, not an object")
    data = document.get("data")
    if type(data) is not dict:
        if "error" in document:
            raise _Rejected(f"body is an API error, not a generation: {_excerpt(document['error'])}")
        raise _Rejected("body has no `data` object (not a generation record)")
    generation_id = data.get("id")
    if generation_id is None:
        raise _Rejected("`data` has no `id` (not a generation record)")
    if generation_id != requested_id:
        raise _Rejected(f"`data.id` is {_excerpt(generation_id)}, not the requested id")
    if data.get("created_at") is None:
        raise _Rejected("`data` has no `created_at` (not a generation record)")
    _integers_from_floats(data, INTEGER_FIELDS, "data.")
    attempts = data.get("provider_responses")
    if type(attempts) is list:
        for index, attempt in enumerate(attempts):
            if type(attempt) is dict:
                _integers_from_floats(attempt, ("status",), f"data.provider_responses[{index}].")
    try:
        record = msgspec.convert(data, _Generation)
    except msgspec.ValidationError as exc:
        raise _Rejected(str(exc).replace("`$", "`data")) from None
    text = _data_text(body) if len(document) == 1 else None
    return record, text if text is not None else orjson.dumps(data)


def _integers_from_floats(record: dict, names: Sequence[str], where: str) -> None:
    for name in names:
        value = record.get(name)
        if type(value) is float:
            if not value.is_integer():
                raise _Rejected(f"{where}{name}={value!r} is not an integer")
            record[name] = int(value)


def _json_type(value: object) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _excerpt(value: object, limit: int = 80) -> str:
    text = repr(value) if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_created_at(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[tuple[str, str]]]:
    text = frame["created_at"]
    parsed = text.str.to_datetime("%+", time_unit="us", time_zone="UTC", strict=False)
    if parsed.null_count():
        # No offset at all: the API's clock is UTC, so take it as UTC rather than lose the record.
        naive = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False)
        parsed = parsed.fill_null(naive.dt.replace_time_zone("UTC"))
    frame = frame.with_columns(parsed.alias("created_at"))
    if not parsed.null_count():
        return frame, []
    bad = frame.filter(pl.col("created_at").is_null())
    rejected = [
        (generation_id, f"created_at={_excerpt(value)} is not an ISO 8601 timestamp")
        for generation_id, value in zip(bad["id"], text.filter(parsed.is_null()))
    ]
    return frame.filter(pl.col("created_at").is_not_null()), rejected


# --- /generation/content ---------------------------------------------------------------------

_MESSAGE = pl.Struct({"role": pl.String(), "content": pl.String(), "content_parts": pl.String()})
_PREVIOUS_ERROR = pl.Struct({"code": pl.Int32(), "message": pl.String(), "provider_name": pl.String(),
                             "raw": pl.String()})
CONTENT_SCHEMA: dict[str, pl.DataType] = {
    "generation_id": pl.String(),
    "content_status": pl.String(),
    "input_kind": pl.String(),
    "messages": pl.List(_MESSAGE),
    "prompt": pl.String(),
    "completion": pl.String(),
    "reasoning": pl.String(),
    "error_status": pl.Int32(),
    "error_message": pl.String(),
    "error_provider_name": pl.String(),
    "error_raw": pl.String(),
    "previous_errors": pl.List(_PREVIOUS_ERROR),
    "input_bytes": pl.Int64(),
    "output_bytes": pl.Int64(),
    "body_bytes": pl.Int64(),
    "truncated": pl.Boolean(),
    "raw": pl.String(),
    "stored_in_parts": pl.Boolean(),
}  # fmt: skip
CONTENT_PARTS_SCHEMA: dict[str, pl.DataType] = {"generation_id": pl.String(), "part": pl.Int32(), "text": pl.String()}
# A body longer than this keeps only its small fields in its row; its `data` text is stored in parts of
# CONTENT_PART_CHARS characters (at most 4 bytes each), so that no row is more than a few tens of KB
# (sql/schema/007_generation_content.sql says why).
CONTENT_INLINE_BODY_BYTES = 16 * 1024
CONTENT_PART_CHARS = 4 * 1024


@dataclass
class NormalizedContent:
    rows: pl.DataFrame  # CONTENT_SCHEMA, one row per id
    parts: pl.DataFrame  # CONTENT_PARTS_SCHEMA: the `data` text of the rows stored in parts, in order
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (requested id, reason: never the content)


def normalize_content(bodies: Sequence[tuple[str, bytes]], *, max_bytes: int) -> NormalizedContent:
    """(requested id, raw 200 body of /generation/content) pairs to typed rows. A body that is not
    the API's content shape is rejected with a reason that names the field, never its text; a text
    field or `raw` over `max_bytes` is stored cut to that many bytes (`truncated`)."""
    rows: list[dict[str, object]] = []
    parts: dict[str, list] = {"generation_id": [], "part": [], "text": []}
    rejected: list[tuple[str, str]] = []
    with _gc_paused():
        for requested_id, body in dict(bodies).items():
            try:
                row = {"generation_id": requested_id, **_content_row(body, max_bytes)}
            except _Rejected as exc:
                rejected.append((requested_id, str(exc)))
                continue
            if len(body) > CONTENT_INLINE_BODY_BYTES:
                raw = row["raw"]
                pieces = [raw[start:start + CONTENT_PART_CHARS] for start in range(0, len(raw), CONTENT_PART_CHARS)]
                parts["generation_id"] += [requested_id] * len(pieces)
                parts["part"] += range(len(pieces))
                parts["text"] += pieces
                row.update(messages=None, prompt=None, completion=None, reasoning=None, raw=None, stored_in_parts=True)
            rows.append(row)
    return NormalizedContent(pl.DataFrame(rows, schema=CONTENT_SCHEMA),
                             pl.DataFrame(parts, schema=CONTENT_PARTS_SCHEMA), rejected)


def _content_row(body: bytes, max_bytes: int) -> dict[str, object]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _Rejected("content body is not JSON") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise _Rejected("content body has no `data` object")
    messages, prompt, completion, reasoning, error = _content_fields(data)
    message_rows = _message_rows(messages)
    input_bytes = _utf8_len(prompt) + sum(
        _utf8_len(m["content"]) + _utf8_len(m["content_parts"]) for m in message_rows or ())
    output_bytes = _utf8_len(completion) + _utf8_len(reasoning)
    stored = bool(input_bytes or output_bytes or error is not None)
    cut = len(body) > max_bytes
    if cut:  # every text cut to max_bytes, `raw` included, which stays JSON; the sizes above are the real ones
        data = _cut_texts(data, max_bytes)
        messages, prompt, completion, reasoning, error = _content_fields(data)
        message_rows = _message_rows(messages)
        raw_text = orjson.dumps(data).decode()
    else:
        raw = _data_text(body) if body.startswith(_COMPACT_PREFIX) else None
        raw_text = raw.decode() if raw is not None else orjson.dumps(data).decode()
    return {
        "content_status": "stored" if stored else "none_stored",
        "input_kind": "messages" if messages else "prompt" if prompt else None,
        "messages": message_rows or None,
        "prompt": prompt or None,
        "completion": completion,
        "reasoning": reasoning,
        **_error_fields(error),
        "input_bytes": input_bytes,
        "output_bytes": output_bytes,
        "body_bytes": len(body),
        "truncated": cut,
        "raw": raw_text,
        "stored_in_parts": False,
    }


def _content_fields(data: dict) -> tuple:
    """(messages, prompt, completion, reasoning, error) of a content body's `data`, each type-checked."""
    inputs = _typed(data, "input", dict, "data") or {}
    output = _typed(data, "output", dict, "data") or {}
    return (_typed(inputs, "messages", list, "input"), _typed(inputs, "prompt", str, "input"),
            _typed(output, "completion", str, "output"), _typed(output, "reasoning", str, "output"),
            _typed(data, "error", dict, "data"))


def _typed(parent: dict, key: str, kind: type, where: str) -> object:
    value = parent.get(key)
    if value is not None and not isinstance(value, kind):
        raise _Rejected(f"content body: `{where}.{key}` is {_json_type(value)}, not {_json_type(kind())}")
    return value


def _message_rows(messages: list | None) -> list[dict[str, str | None]] | None:
    return None if messages is None else [_message_row(message, number) for number, message in enumerate(messages)]


def _message_row(message: object, number: int) -> dict[str, str | None]:
    if not isinstance(message, dict):
        raise _Rejected(f"content body: `input.messages[{number}]` is {_json_type(message)}, not object")
    role = _typed(message, "role", str, f"input.messages[{number}]")
    content = message.get("content")
    if content is None or isinstance(content, str):
        return {"role": role, "content": content, "content_parts": None}
    return {"role": role, "content": None, "content_parts": orjson.dumps(content).decode()}


def _error_fields(error: dict | None) -> dict[str, object]:
    if error is None:
        return dict.fromkeys(("error_status", "error_message", "error_provider_name", "error_raw", "previous_errors"))
    status = _typed(error, "status", int, "error")
    previous = _typed(error, "previous_errors", list, "error") or []
    attempts = []
    for number, attempt in enumerate(previous):
        where = f"error.previous_errors[{number}]"
        if not isinstance(attempt, dict):
            raise _Rejected(f"content body: `{where}` is {_json_type(attempt)}, not object")
        attempts.append({"code": _typed(attempt, "code", int, where), "message": _typed(attempt, "message", str, where),
                         "provider_name": _typed(attempt, "provider_name", str, where),
                         "raw": _typed(attempt, "raw", str, where)})
    return {
        "error_status": status,
        "error_message": _typed(error, "message", str, "error"),
        "error_provider_name": _typed(error, "provider_name", str, "error"),
        "error_raw": _typed(error, "raw", str, "error"),
        "previous_errors": attempts,
    }


def _utf8_len(text: object) -> int:
    return len(text.encode()) if isinstance(text, str) else 0


def _cut(text: str, max_bytes: int) -> str:
    """The text's first max_bytes bytes, never half a character."""
    if len(text) * 4 <= max_bytes:
        return text
    return text.encode()[:max_bytes].decode(errors="ignore")


def _cut_texts(value: object, max_bytes: int) -> object:
    """A JSON value with every string in it cut to max_bytes (a cut body's `raw`)."""
    if isinstance(value, str):
        return _cut(value, max_bytes)
    if isinstance(value, dict):
        return {key: _cut_texts(item, max_bytes) for key, item in value.items()}
    if isinstance(value, list):
        return [_cut_texts(item, max_bytes) for item in value]
    return value


# --- /activity -------------------------------------------------------------------------------------

ACTIVITY_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "model": pl.String(),
    "endpoint_id": pl.String(),
    "model_permaslug": pl.String(),
    "provider_name": pl.String(),
    "usage": pl.Float64(),
    "byok_usage_inference": pl.Float64(),
    "requests": pl.Int64(),
    "prompt_tokens": pl.Int64(),
    "completion_tokens": pl.Int64(),
    "reasoning_tokens": pl.Int64(),
    "raw": pl.String(),
    "fetched_at": UTC_MICROS,
}
_ACTIVITY_STRINGS = ("model_permaslug", "provider_name")
_ACTIVITY_FLOATS = ("usage", "byok_usage_inference")
_ACTIVITY_INTEGERS = ("requests", "prompt_tokens", "completion_tokens", "reasoning_tokens")
_ACTIVITY_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[ T]00:00:00(?:\.0+)?(?:Z|[+-]00:?00)?)?$")


class ActivityRowError(ValueError):
    """An /activity row orusage will not store: the message names the row and the field."""


def normalize_activity(rows: Sequence[object], *, fetched_at: datetime) -> pl.DataFrame:
    """/activity's `data` rows to ACTIVITY_SCHEMA, keyed by (date, endpoint_id, model).

    `date` is the UTC day in either form seen (`2026-08-31`, documented; `2026-08-31 00:00:00`,
    live). `endpoint_id` is '' when a row has none (rows of the older shape), so the key is never
    null. Unknown fields stay in `raw` (the row's JSON). A row without a day or a model, a number
    of the wrong type, or the same key twice refuses the whole response (ActivityRowError): a day
    stored half would reconcile wrong."""
    records = []
    for index, row in enumerate(rows):
        where = f"/activity row {index}"
        if not isinstance(row, dict):
            raise ActivityRowError(f"{where}: not an object")
        day = _ACTIVITY_DAY.match(row["date"]) if isinstance(row.get("date"), str) else None
        if day is None:
            raise ActivityRowError(f"{where}: `date` {row.get('date')!r} is not a UTC day (YYYY-MM-DD)")
        if not isinstance(row.get("model"), str) or not row["model"]:
            raise ActivityRowError(f"{where}: no `model`")
        endpoint_id = row.get("endpoint_id")
        if endpoint_id is not None and not isinstance(endpoint_id, str):
            raise ActivityRowError(f"{where}: `endpoint_id` is not a string")
        record: dict[str, object] = {"date": date.fromisoformat(day[1]), "model": row["model"],
                                     "endpoint_id": endpoint_id or ""}
        for name in _ACTIVITY_STRINGS:
            value = row.get(name)
            if value is not None and not isinstance(value, str):
                raise ActivityRowError(f"{where}: `{name}` is not a string")
            record[name] = value
        for name in _ACTIVITY_FLOATS:
            value = row.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ActivityRowError(f"{where}: `{name}` {value!r} is not a number")
            record[name] = None if value is None else float(value)
        for name in _ACTIVITY_INTEGERS:
            value = row.get(name)
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ActivityRowError(f"{where}: `{name}` {value!r} is not a whole number")
            record[name] = value
        record["raw"] = orjson.dumps(row).decode()
        record["fetched_at"] = fetched_at
        records.append(record)
    frame = pl.DataFrame(records, schema=ACTIVITY_SCHEMA)
    repeated = frame.filter(pl.struct("date", "endpoint_id", "model").is_duplicated())
    if repeated.height:
        first = repeated.row(0, named=True)
        raise ActivityRowError(f"/activity: two rows for {first['date']}, model {first['model']}, "
                               f"endpoint {first['endpoint_id'] or '(none)'}")
    return frame

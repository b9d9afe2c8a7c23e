"""Finding generation ids in logs: what counts as an id, where it can hide, and what bad input does.

The real excerpts in tests/fixtures/ come first: every live-form id that the public record shows
in a log, a stream, a body or a printout must be found where it appears, and the documentation's
placeholders and Vercel's `gen_<ULID>` must not. Generated logs then cover each shape and decoy,
each compression, and every way a chunk edge can cut an id (with a chunk of a few bytes).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import random
import re
import string
import struct
import sys
import tarfile
import threading
import zipfile
import zlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import logs
from pipeline.cli import cli
from pipeline.config import parse_time_bound as parse_utc_time
from pipeline.logs import FoundId, ScanStats, find_ids, id_timestamp, is_generation_id

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

FIXTURES = Path(__file__).parent / "fixtures"
LIVE_ID = re.compile(r"^(gen-\d{10}-[A-Za-z0-9]{20})\s", re.MULTILINE)
REAL_IDS = LIVE_ID.findall((FIXTURES / "generation_ids_real_observed.txt").read_text())

ID_A = "gen-1771967973-0hZ8J5kY7qLMOKbPx0u3"
ID_B = "gen-1759187999-DLF0yPmniXJ2Z2AYtgzN"
ID_C = "gen-1763626368-7nC7HDrc2SUlvwBTJ1qL"


def scan(*paths: str | Path, chunk_size: int = logs.CHUNK_BYTES, **options) -> tuple[list[FoundId], ScanStats]:
    stats = ScanStats()
    warnings: list[str] = []
    found = list(find_ids([str(p) for p in paths], stats=stats, warn=warnings.append, chunk_size=chunk_size,
                          **options))
    assert warnings == stats.warnings
    return found, stats


def ids_in(*paths: str | Path, **options) -> list[str]:
    return [generation_id for generation_id, _ in scan(*paths, **options)[0]]


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --- the real excerpts ---------------------------------------------------------------------------


def test_every_real_id_in_an_excerpt_is_found_and_no_placeholder_is(tmp_path):
    excerpts = [p for p in sorted(FIXTURES.iterdir()) if p.name != "generation_ids_real_observed.txt"]
    text = "\n".join(p.read_text() for p in excerpts)
    expected = [i for i in REAL_IDS if i in text]
    assert len(expected) == 11  # SSE chunks, a stream, LangChain reprs, /generation bodies, a chat completion

    found = ids_in(*excerpts)

    assert sorted(found) == sorted(expected)
    for placeholder in ("gen-3bhGkxlo4XFrqiabUM7NDtwDzWwG", "gen-abc123", "gen-def456", "gen-..."):
        assert placeholder in text
    assert not any(f.startswith("gen_") for f in found)


def test_the_observed_list_yields_its_live_ids_and_none_of_the_placeholders():
    found = ids_in(FIXTURES / "generation_ids_real_observed.txt")

    assert found == REAL_IDS  # in file order; gen-3bhG..., gen-1234567890, req-..., gen_01KZ... left out
    assert len(found) == 32


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        # every chunk repeats the id; `: OPENROUTER PROCESSING` comments come first
        ("sse_stream_real_venice_llama33_free_with_processing_comments.txt",
         [("gen-1759187999-DLF0yPmniXJ2Z2AYtgzN", 7)]),
        ("sse_chunks_real_captured_in_tests.txt",
         [("gen-1770951369-sKYcTnzlyj6HvxZfXXkd", 2), ("gen-1768896871-9HgAQqS1Z72C6gApaidi", 7),
          ("gen-1772969079-EhEx5DeV7JqM43lpl47Y", 11), ("gen-1746649993-JcAnN9JWfGSdco3C13ad", 14)]),
        # a Python repr on one long line, and a commented dict print
        ("langchain_response_metadata_with_gen_id.txt",
         [("gen-1763626368-7nC7HDrc2SUlvwBTJ1qL", 2), ("gen-1771043112-yLUz3txgvHSjkyCQK8KQ", 7)]),
        ("chat_completion_real_gemini25flash_google_skills.json", [("gen-1772036036-03sYeRNNFhHlQjQZpj70", 2)]),
        ("generation_200_real_mistral_medium_wrapped_by_app_proxy.json",
         [("gen-1755352517-vcNNzGslBXHr45jGsA2B", 28)]),
        # placeholders only: docs headers (gen-def456), an app log's `gen_id=gen-...`, Vercel's gen_ULID
        ("headers_response_cache_hit_x_generation_id_docs.txt", []),
        ("applog_generation_lookup_failures_and_delays.txt", []),
        ("distractor_vercel_ai_gateway_gen_ulid_not_openrouter.json", []),
        ("generation_200_docs_openapi_example.json", []),
    ],
)
def test_each_real_excerpt_gives_its_ids_with_file_and_line(fixture, expected):
    found, stats = scan(FIXTURES / fixture)

    assert found == [(i, f"{FIXTURES / fixture}:{line}") for i, line in expected]
    assert stats.files_read == 1 and stats.warnings == []


# --- what an id is -------------------------------------------------------------------------------

SHAPES = [  # (a log line holding ID_A, as it appears in the wild)
    '{"level":"info","id":"%s","model":"openai/gpt-4o"}',
    '{"event":"usage","generation_id":"%s"}',
    '{"completion_id": "%s", "cost": 0.1}',
    'data: {"id":"%s","object":"chat.completion.chunk","choices":[]}',
    "2026-02-24T21:19:34Z INFO generation done gen_id=%s tokens=12",
    "{ id: '%s', model: 'x' }",  # a JavaScript object print
    "{'id': '%s', 'finish_reason': 'stop'}",  # a Python repr
    "X-Generation-Id: %s",
    "GET /api/v1/generation?id=%s&x=1 HTTP/1.1",
    "curl https://openrouter.ai/api/v1/generation/%s/",
    "ids=[%s,%s]",
    "(%s)",
    "\t%s\r",
    "\\\"id\\\":\\\"%s\\\"",  # JSON inside a JSON string
    "caf\xe9 %s \u2014 done",  # non-ASCII around it
]

DECOYS = [
    "x" + ID_A,  # a longer token
    "oxygen-1771967973-0hZ8J5kY7qLMOKbPx0u3",
    "_" + ID_A,
    "-" + ID_A,
    ID_A + "X",  # one more id character: not cut to a shorter id
    ID_A + "_",
    ID_A + "-2",
    "gen_01KZ7DP24DBPWN0TR4VAG1P9X6",  # Vercel AI Gateway
    "gen-ai",
    "regenerate",
    "req-1727282430-aBcDeFgHiJkLmNoPqRsT",  # the docs' request id: same shape, not a generation
    "gen-3bhGkxlo4XFrqiabUM7NDtwDzWwG",  # the OpenAPI example: 28 characters, no timestamp
    "gen-1234567890",
    "gen-abc123",
    "gen-xxxxxxxxxxxxxxxxxxxxxxxx",
    "gen-1234567890-aBcDeFgHiJkLmNoPqRsT",  # a placeholder's made-up 2009 timestamp
    "gen-177196797-0hZ8J5kY7qLMOKbPx0u3X",  # 9 digits
    "gen-1771967973-0hZ8J5kY7qLMOKbPx0u",  # 19 characters
    "GEN-1771967973-0hZ8J5kY7qLMOKbPx0u3",
    "gen-1771967973_0hZ8J5kY7qLMOKbPx0u3",
]


@pytest.mark.parametrize("shape", SHAPES)
def test_an_id_is_found_in_every_shape_it_is_logged_in(tmp_path, shape):
    line = shape.replace("%s", ID_A)
    path = write(tmp_path / "app.log", "first line\n" + line + "\nlast line\n")

    assert scan(path)[0] == [(ID_A, f"{path}:2")]


@pytest.mark.parametrize("decoy", DECOYS)
def test_decoys_are_not_ids(tmp_path, decoy):
    path = write(tmp_path / "app.log", f'{{"note": "{decoy}"}}\nsee {decoy} and {decoy}\n{decoy}')

    assert ids_in(path) == []
    assert ids_in(path, chunk_size=7) == []


def test_is_generation_id_and_its_timestamp():
    assert is_generation_id(ID_A)
    assert id_timestamp(ID_A) == datetime(2026, 2, 24, 21, 19, 33, tzinfo=timezone.utc)
    for decoy in DECOYS:
        assert not is_generation_id(decoy)
        assert id_timestamp(decoy) is None
    assert not is_generation_id(ID_A + "\n")


def test_each_id_once_at_its_first_sighting_in_argument_order(tmp_path):
    first = write(tmp_path / "b.log", f"{ID_B}\n{ID_A}\n")
    second = write(tmp_path / "a.log", f"{ID_A}\n{ID_C}\n{ID_B}\n")

    found, stats = scan(first, second)

    assert found == [
        (ID_B, f"{first}:1"), (ID_A, f"{first}:2"), (ID_C, f"{second}:2"),
    ]
    assert (stats.files_read, stats.ids_found, stats.bytes_read) == (2, 3, first.stat().st_size + second.stat().st_size)


def test_lines_count_newlines_whatever_the_bytes_around_them(tmp_path):
    data = b"\xff\xfe broken utf-8\r\n\x00 a stray NUL\r\n" + b"a" * 3_000_000 + b" " + ID_A.encode() + b"\r\n" + ID_B.encode()
    path = write(tmp_path / "odd.log", data)

    assert scan(path)[0] == [(ID_A, f"{path}:3"), (ID_B, f"{path}:4")]


@pytest.mark.parametrize(("run_bytes", "chunk_size"), [(3_000_000, logs.CHUNK_BYTES), (5000, 4096), (5000, 50)])
def test_an_id_after_a_long_run_of_id_characters_is_not_glued_to_it(tmp_path, run_bytes, chunk_size):
    run = b"A" * run_bytes
    path = write(tmp_path / "run.log", run + ID_A.encode() + b"\n" + run + b" " + ID_B.encode() + b"\n")

    assert ids_in(path, chunk_size=chunk_size) == [ID_B]


def test_a_chunk_of_known_ids_still_places_a_new_one_on_its_own_line(tmp_path):
    """After a chunk of repeats, the scan switches to findall, and reads a chunk again with finditer
    once it holds a new id: the new id's line must come from that second pass, decoy and all."""
    path = write(tmp_path / "repeats.log", f"{ID_A} " * 120 + f"\nx{ID_B}\n{ID_B}\n")

    found = scan(path, chunk_size=4096)[0]

    assert found == [(ID_A, f"{path}:1"), (ID_B, f"{path}:3")]


# --- chunk edges ---------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 8, 13, 34, 35, 36, 37, 64])
def test_ids_straddling_chunk_edges_are_found_once_and_decoys_never(tmp_path, chunk_size):
    text = (
        f"{ID_A}\nxx {ID_B},{ID_A}\n"
        f"x{ID_C} {ID_C}X gen-ai\n"
        f"oxygen-1771967973-0hZ8J5kY7qLMOKbPx0u3 {ID_C}\n"
        f"{'A' * 40}{ID_B} {ID_C}"
    )
    path = write(tmp_path / "edges.log", text)

    found = scan(path, chunk_size=chunk_size)[0]

    assert found == [
        (ID_A, f"{path}:1"), (ID_B, f"{path}:2"), (ID_C, f"{path}:4"),
    ]


def test_every_cut_position_of_an_id_is_handled(tmp_path):
    for offset in range(40):
        path = write(tmp_path / f"cut{offset}.log", "." * offset + ID_A + "." + "x" + ID_B)
        assert ids_in(path, chunk_size=37) == [ID_A], offset
        assert ids_in(path, chunk_size=36 + offset % 5) == [ID_A], offset


BOUNDARY_BYTES = st.sampled_from(
    [b" ", b"\n", b"\r\n", b'"', b"'", b"=", b":", b"/", b",", b"(", b")", b"[", b"]", b"{", b"}", b"\t", b"\\",
     b"&", b"?", b"|", b";", b"<", b">", b"\x00", b"\xff", b"\xe2\x80\x94", b".", b"@", b"#", b"%"]
)
FRAGMENTS = st.one_of(
    st.sampled_from([ID_A, ID_B, ID_C]).map(str.encode),
    st.sampled_from(DECOYS).map(str.encode),
    st.sampled_from([b"gen-", b"gen", b"-", b"x", b"A" * 40, b"17719679", b"0hZ8J5kY7q"]),
    BOUNDARY_BYTES,
    st.binary(max_size=8),
)


def with_line_numbers(found: list[FoundId]) -> list[tuple[str, int]]:
    return [(generation_id, int(source.rsplit(":", 1)[1])) for generation_id, source in found]


def fresh_ids_with_lines(data: bytes) -> list[tuple[str, int]]:
    """The reference: the id regex over the whole text at once, first sightings, 1-based lines."""
    out: dict[str, int] = {}
    line, counted = 1, 0
    for match in logs._ID_RE.finditer(data):
        line += data.count(b"\n", counted, match.start())
        counted = match.start()
        out.setdefault(match[0].decode(), line)
    return list(out.items())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(FRAGMENTS, max_size=30), chunk_size=st.integers(1, 80))
def test_any_chunking_finds_what_the_whole_text_holds(tmp_path, parts, chunk_size):
    data = b" " + b"".join(parts)  # never a compressed file's magic bytes up front
    path = write(tmp_path / "h.log", data)

    found = scan(path, chunk_size=chunk_size)[0]

    assert with_line_numbers(found) == fresh_ids_with_lines(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pieces=st.lists(
        st.tuples(st.lists(BOUNDARY_BYTES, min_size=1, max_size=3),
                  st.one_of(st.sampled_from([ID_A, ID_B, ID_C]), st.sampled_from(DECOYS))),
        max_size=12,
    ),
    chunk_size=st.sampled_from([3, 36, 1 << 20]),
)
def test_an_id_between_any_separators_is_found_and_no_decoy_is(tmp_path, pieces, chunk_size):
    data = b"".join(b"".join(separators) + token.encode() for separators, token in pieces) + b"\n"
    embedded = list(dict.fromkeys(token for _, token in pieces if token in (ID_A, ID_B, ID_C)))

    assert ids_in(write(tmp_path / "p.log", data), chunk_size=chunk_size) == embedded


@pytest.mark.parametrize("chunk_size", [4096, logs.CHUNK_BYTES])
def test_a_busy_log_places_every_new_id_on_its_line(tmp_path, chunk_size):
    """Ids line after line, at every offset of a 64-byte word: chunks of only new ids, of new ids
    twice, of new and known ones, of only known ones, then new ones again; each on its own line."""
    lines = []
    for n in range(4000):
        phase = n // 1000
        old = 5 * (n % 200) + 1  # a line of phase 0 that holds an id
        number = (n, (n, n - 1, old)[n % 3], old, n)[phase]
        padding = "x" * (n % 67)
        lines.append(padding if n % 5 == 0 else f'{padding} "id":"gen-17719{number:05d}-0hZ8J5kY7qLMOKbPx0u3"')
    data = "\r\n".join(lines).encode()
    path = write(tmp_path / "busy.log", data)

    found = scan(path, chunk_size=chunk_size)[0]

    assert with_line_numbers(found) == fresh_ids_with_lines(data)


# --- what it reads -------------------------------------------------------------------------------


def two_members_gzip(first: bytes, second: bytes) -> bytes:
    return gzip.compress(first) + gzip.compress(second)  # `cat a.gz b.gz`: one valid gzip file


@pytest.mark.parametrize(
    ("name", "encode"),
    [
        ("app.log.1.gz", gzip.compress),
        ("app.log.2.gz", lambda data: two_members_gzip(data[:50], data[50:])),
        ("app.log.zst", lambda data: zstd.compress(data[:50]) + zstd.compress(data[50:])),  # two frames
        ("app.log.bz2", bz2.compress),
        ("app.log.xz", lzma.compress),
        ("rotated-but-named.log", gzip.compress),  # read by content, not by name
        ("plain-but-named.gz", lambda data: data),
    ],
)
@pytest.mark.parametrize("chunk_size", [logs.CHUNK_BYTES, 16])
def test_compressed_files_are_read_by_their_content(tmp_path, name, encode, chunk_size):
    text = f"start\n{{\"id\":\"{ID_A}\"}}\n" + "filler line\n" * 5 + f"X-Generation-Id: {ID_B}\n"
    path = write(tmp_path / name, encode(text.encode()))

    found, stats = scan(path, chunk_size=chunk_size)

    assert found == [(ID_A, f"{path}:2"), (ID_B, f"{path}:8")]
    assert (stats.files_read, stats.bytes_read, stats.warnings) == (1, len(text), [])


def lines_with_ids(count: int) -> bytes:
    return b"".join(b'{"n":%d,"id":"gen-17719%05d-0hZ8J5kY7qLMOKbPx0u3"}\n' % (n, n) for n in range(count))


@pytest.mark.parametrize(
    ("fmt", "compress", "kept_fraction"),
    [("gzip", gzip.compress, 3 / 4), ("zstd", zstd.compress, 3 / 4), ("xz", lzma.compress, 3 / 4),
     ("bzip2", bz2.compress, 7 / 8)],  # bzip2 decodes whole 900 kB blocks: cut after the first one
)
def test_a_truncated_file_keeps_the_ids_before_the_damage_and_warns(tmp_path, fmt, compress, kept_fraction):
    data = lines_with_ids(20_000)  # ~1.1 MB of text, every id distinct
    packed = compress(data)
    damaged = write(tmp_path / f"app.log.{fmt}", packed[: int(len(packed) * kept_fraction)])
    intact = write(tmp_path / "later.log", f"{ID_A}\n")

    found, stats = scan(damaged, intact)

    ids = [generation_id for generation_id, _ in found]
    assert ids[0] == "gen-1771900000-0hZ8J5kY7qLMOKbPx0u3"
    assert len(ids) > 20_000 / 3  # decoders hold back the last ~64-500 kB before the damage
    assert ids[-1] == ID_A  # the next source is still read
    assert stats.files_read == 2 and stats.files_skipped == 0
    [warning] = stats.warnings
    assert warning.startswith(f"{damaged}: truncated or corrupt {fmt} data")
    assert warning.endswith("; kept the ids found before")


def test_a_corrupt_zstd_file_is_skipped_with_a_warning(tmp_path):
    packed = zstd.compress(lines_with_ids(100))
    corrupt = write(tmp_path / "bad.zst", packed[:20] + b"\xff" * 40 + packed[60:])

    found, stats = scan(corrupt, FIXTURES / "chat_completion_real_gemini25flash_google_skills.json")

    assert [generation_id for generation_id, _ in found] == ["gen-1772036036-03sYeRNNFhHlQjQZpj70"]
    assert (stats.files_read, stats.files_skipped) == (1, 1)
    assert stats.warnings[0].startswith(f"{corrupt}: skipped: truncated or corrupt zstd data (ZstdError")


def app_log(count: int, seed: int = 0) -> bytes:
    """A busy app's log: a request a line, each with its own random id, as the live ones are."""
    rng = random.Random(seed)
    alnum = string.ascii_letters + string.digits
    return "".join(
        f"2026-02-24T21:{n // 60 % 60:02d}:{n % 60:02d}Z INFO request={n} model=openai/gpt-4o "
        f"id=gen-{1771900000 + n}-{''.join(rng.choices(alnum, k=20))} tokens={rng.randrange(10, 5000)}\n"
        for n in range(count)
    ).encode()


def zeroed(data: bytes, at: int, size: int) -> bytes:
    """`data` with `size` bytes from `at` on read back as zeros, as from a lost storage block."""
    return data[:at] + bytes(size) + data[at + size :]


def zstd_frame(data: bytes, *, checksum: bool) -> bytes:
    return zstd.compress(data, options={zstd.CompressionParameter.checksum_flag: int(checksum)})


@pytest.mark.parametrize("where", [0.25, 0.6, 0.9])  # elsewhere, the damaged block fails to decode at once
@pytest.mark.parametrize("checksum", [False, True], ids=["no-checksum", "checksum"])
def test_a_zstd_file_with_a_zeroed_block_yields_only_ids_that_were_logged(tmp_path, checksum, where):
    """A lost 4 KiB block reads back as zeros. zstd decodes zeroed literals into garbage without an
    error when the frame has no checksum (the content size still matches), and with one it says so
    only at the frame's end: the garbage held ids that no request had, each a week of 404 retries.
    The ids before the damage are kept, in order, on their lines; the next file is still read."""
    text = app_log(20_000)
    packed = zstd_frame(text, checksum=checksum)
    damaged = write(tmp_path / "app.log.zst", zeroed(packed, int(len(packed) * where) // 4096 * 4096, 4096))
    intact = write(tmp_path / "later.log", f"{ID_A}\n")

    found, stats = scan(damaged, intact)

    assert found[-1] == (ID_A, f"{intact}:1")
    kept = with_line_numbers(found[:-1])
    assert kept == fresh_ids_with_lines(text)[: len(kept)]  # no id that was not logged, none out of place
    assert len(kept) > 20_000 * where / 2
    [warning] = stats.warnings
    assert warning.startswith(f"{damaged}: truncated or corrupt zstd data (ZeroedData: 4,096 or more zero bytes")


def test_a_zstd_frame_that_fails_its_checksum_gives_none_of_its_ids_and_the_frames_before_all_theirs(tmp_path):
    """64 zeroed bytes garble a frame without a sign until its checksum fails at the frame's end:
    the ids decoded from a frame are held until it ends clean, and dropped when it does not; the
    frames before it ended clean and keep every id."""
    text = app_log(20_000)
    lines = text.splitlines(keepends=True)
    parts = [b"".join(lines[i : i + 4000]) for i in range(0, 20_000, 4000)]  # one frame each
    frames = [zstd_frame(part, checksum=True) for part in parts]
    at = len(frames[0]) + len(frames[1]) + len(frames[2]) * 3 // 10
    damaged = write(tmp_path / "app.log.zst", zeroed(b"".join(frames), at, 64))

    found, stats = scan(damaged)

    assert with_line_numbers(found) == fresh_ids_with_lines(parts[0] + parts[1])
    [warning] = stats.warnings
    assert warning.startswith(f"{damaged}: truncated or corrupt zstd data (ZstdError")
    assert "checksum" in warning and "dropped the " in warning


def test_a_gzip_file_that_fails_its_crc_yields_no_id_from_the_part_the_crc_covers(tmp_path):
    """gzip checks a member's CRC only at its end, after the garbage is decoded: the ids of the last
    16 MiB are held until then, so a log of a few MB that fails it gives none, not ids never logged."""
    text = app_log(20_000)
    packed = gzip.compress(text)
    damaged = write(tmp_path / "app.log.gz", zeroed(packed, len(packed) * 6 // 10, 8))
    intact = write(tmp_path / "later.log", f"{ID_A}\n")

    found, stats = scan(damaged, intact)

    assert found == [(ID_A, f"{intact}:1")]
    [warning] = stats.warnings
    assert warning.startswith(f"{damaged}: truncated or corrupt gzip data (BadGzipFile: CRC check failed")
    assert "dropped the " in warning


def test_missing_paths_empty_globs_and_unreadable_files_are_skipped_one_warning_each(tmp_path, monkeypatch):
    good = write(tmp_path / "good.log", f"{ID_A}\n")
    locked = write(tmp_path / "locked.log", f"{ID_B}\n")
    real_open = open

    def open_refusing_locked(path, *args, **kwargs):
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(logs, "open", open_refusing_locked, raising=False)
    found, stats = scan(tmp_path / "missing.log", str(tmp_path / "*.nothing"), locked, good)

    assert [generation_id for generation_id, _ in found] == [ID_A]
    assert stats.warnings == [
        f"{tmp_path / 'missing.log'}: skipped: no such file or directory",
        f"{tmp_path / '*.nothing'}: skipped: no file matches this pattern",
        f"{locked}: skipped: Permission denied",
    ]
    assert (stats.files_read, stats.files_skipped, stats.ids_found) == (1, 3, 1)


def test_a_binary_file_is_skipped_but_a_log_with_a_stray_nul_is_read(tmp_path):
    binary = write(tmp_path / "image.bin", bytes(range(256)) * 100 + b"\x00\x00gen-ai")
    stray_nul = write(tmp_path / "crashed.log", f"{ID_A}\n".encode() + b"\x00" * 4096 + f"{ID_B}\n".encode())
    nul_late = write(tmp_path / "late.log", b"x\n" * 600_000 + b"\x00" + f"{ID_C}\n".encode())

    found, stats = scan(binary, stray_nul, nul_late)

    assert [generation_id for generation_id, _ in found] == [ID_A, ID_B, ID_C]
    assert stats.warnings == [
        f"{binary}: skipped: binary file (NUL and control bytes, no generation id in its first 1 MiB)"
    ]
    assert (stats.files_read, stats.files_skipped) == (2, 1)


def sparse_file(path: Path, hole_bytes: int, text: bytes) -> Path:
    """`truncate -s <hole_bytes> app.log; cat more.log >> app.log`: what copytruncate leaves."""
    with open(path, "wb") as log:
        log.truncate(hole_bytes)
    with open(path, "ab") as log:
        log.write(text)
    return path


@pytest.mark.parametrize("chunk_size", [logs.CHUNK_BYTES, 4096])
def test_a_log_rotated_by_copytruncate_is_read_past_its_hole_of_nul_bytes(tmp_path, chunk_size):
    """logrotate's `copytruncate` empties the log while the app goes on writing at its old offset:
    the file becomes a sparse hole of NULs, then the new lines. The hole is no sign of a binary file,
    and holds no newline: the first line after it is line 1."""
    more = lines_with_ids(5000)
    path = sparse_file(tmp_path / "app.log", 5 << 20, more)

    found, stats = scan(path, chunk_size=chunk_size)

    assert len(found) == 5000
    assert with_line_numbers(found) == fresh_ids_with_lines(more)
    assert (stats.files_read, stats.files_skipped, stats.warnings) == (1, 0, [])


def test_nul_runs_anywhere_in_a_log_leave_its_ids_and_lines_alone(tmp_path):
    """Lines written at offset 0 after the truncation (by a second writer), then the hole, then the
    app's lines; and a log that nothing was written to since: all hole, read, no ids, no warning."""
    mixed = write(tmp_path / "mixed.log", b"logger: restarted\n\n" + bytes(3 << 20) + f"x\n{ID_B} {ID_C}\n".encode())
    hole_only = sparse_file(tmp_path / "hole.log", 2 << 20, b"")

    found, stats = scan(mixed, hole_only)

    assert found == [(ID_B, f"{mixed}:4"), (ID_C, f"{mixed}:4")]
    assert (stats.files_read, stats.files_skipped, stats.warnings) == (2, 0, [])


def png_image(rng: random.Random) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\0" + rng.randbytes(3 * 256) for _ in range(256))  # 256x256 RGB noise
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def tar_archive(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def zip_archive(members: dict[str, bytes], method: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


NO_ID_LOG = b"".join(b"2026-02-24T21:19:%02dZ INFO request %d done in 12 ms\n" % (n % 60, n) for n in range(300))


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        pytest.param("python", None, "ELF executable",  # this interpreter's own executable
                     marks=pytest.mark.skipif(sys.platform != "linux", reason="an ELF file on Linux only")),
        ("noise.png", png_image, "PNG image"),
        ("photo.jpg", lambda rng: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
                                  + rng.randbytes(200_000) + b"\xff\xd9", "JPEG image"),
        ("logs.zip", lambda rng: zip_archive({"app.log": NO_ID_LOG, "b.log": NO_ID_LOG}, zipfile.ZIP_DEFLATED),
         "zip archive"),
        # stored, the members are plain text: only the magic bytes tell
        ("stored.zip", lambda rng: zip_archive({"app.log": NO_ID_LOG}, zipfile.ZIP_STORED), "zip archive"),
        ("logs.tar", lambda rng: tar_archive({"a.log": NO_ID_LOG[:900], "b.log": NO_ID_LOG[:500]}), "tar archive"),
        ("disk.img", lambda rng: bytes(2 << 20) + rng.randbytes(300_000), "NUL and control bytes"),
    ],
    ids=["elf", "png", "jpeg", "zip", "stored-zip", "tar", "nul-run-then-noise"],
)
def test_real_binaries_are_still_skipped_whatever_their_nul_runs(tmp_path, name, make, reason):
    """NUL runs no longer make a file binary, but executables, images and archives still are: by
    their magic bytes, or by the control bytes among the bytes that are not NUL."""
    path = Path(os.path.realpath(sys.executable)) if make is None else write(tmp_path / name, make(random.Random(7)))

    found, stats = scan(path)

    assert found == []
    assert stats.warnings == [f"{path}: skipped: binary file ({reason}, no generation id in its first 1 MiB)"]


def test_folders_are_read_recursively_in_sorted_order_and_globs_expand_sorted(tmp_path):
    write(tmp_path / "logs" / "b" / "app.log", f"{ID_B}\n")
    write(tmp_path / "logs" / "a.log.1.gz", gzip.compress(f"{ID_A}\n".encode()))
    write(tmp_path / "logs" / "c.log", f"{ID_C}\n{ID_A}\n")
    os.mkfifo(tmp_path / "logs" / "a-fifo")  # opening it would block: not a regular file, not read

    found, stats = scan(tmp_path / "logs")

    assert [source for _, source in found] == [
        f"{tmp_path / 'logs' / 'a.log.1.gz'}:1", f"{tmp_path / 'logs' / 'b' / 'app.log'}:1",
        f"{tmp_path / 'logs' / 'c.log'}:1",
    ]
    assert ids_in(str(tmp_path / "logs" / "**" / "*.log"), tmp_path / "logs") == [ID_B, ID_C, ID_A]
    assert stats.files_read == 3


def test_the_same_file_named_twice_is_read_once(tmp_path):
    path = write(tmp_path / "a.log", f"{ID_A}\n")

    found, stats = scan(path, tmp_path, str(tmp_path / "*.log"))

    assert [generation_id for generation_id, _ in found] == [ID_A] and stats.files_read == 1


def test_stdin_is_read_as_dash_even_gzip_d(monkeypatch):
    data = gzip.compress(f"noise\n{ID_B}\n".encode())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))

    assert scan("-")[0] == [(ID_B, "-:2")]


def test_a_consumer_may_stop_early_without_leaving_a_decompression_thread_behind(tmp_path):
    path = write(tmp_path / "big.log.gz", gzip.compress(lines_with_ids(50_000)))
    threads_before = threading.active_count()

    found = find_ids([str(path)])
    first_id, _source = next(found)
    found.close()

    assert first_id == "gen-1771900000-0hZ8J5kY7qLMOKbPx0u3"
    assert threading.active_count() == threads_before


# --- the time window -----------------------------------------------------------------------------


def test_since_and_until_filter_on_the_timestamp_inside_the_id(tmp_path):
    # ID_B 2025-09-29T23:13:19Z, ID_C 2025-11-20T08:12:48Z, ID_A 2026-02-24T21:19:33Z
    path = write(tmp_path / "a.log", f"{ID_B}\n{ID_C}\n{ID_A}\n")

    assert ids_in(path, since=datetime(2025, 11, 20, 8, 12, 48, tzinfo=timezone.utc)) == [ID_C, ID_A]
    assert ids_in(path, until=datetime(2025, 11, 20, 8, 12, 48)) == [ID_B]  # naive is UTC; until is exclusive
    found, stats = scan(path, since=parse_utc_time("2025-10-01"), until=parse_utc_time("2025-11-20", end=True))
    assert [generation_id for generation_id, _ in found] == [ID_C]
    assert (stats.ids_found, stats.ids_out_of_range) == (1, 2)


def test_time_bounds_read_dates_and_date_times_in_utc():
    assert parse_utc_time("2026-11-01") == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert parse_utc_time("2026-11-01", end=True) == datetime(2026, 11, 2, tzinfo=timezone.utc)
    assert parse_utc_time("2026-11-01T08:30:00") == datetime(2026, 11, 1, 8, 30, tzinfo=timezone.utc)
    assert parse_utc_time("2026-11-01T08:30:00+02:00") == datetime(2026, 11, 1, 6, 30, tzinfo=timezone.utc)
    assert parse_utc_time("2026-11-01T08:30:00Z", end=True) == datetime(2026, 11, 1, 8, 30, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="not a date or date-time: '2026-13-01'"):
        parse_utc_time("2026-13-01")


# --- the command ---------------------------------------------------------------------------------


def test_cli_prints_each_id_once_and_counts_them():
    runner = CliRunner()

    listed = runner.invoke(cli, ["ids", str(FIXTURES)])
    counted = runner.invoke(cli, ["ids", str(FIXTURES), "--count"])

    assert listed.exit_code == 0 and counted.exit_code == 0
    assert sorted(listed.stdout.split()) == sorted(REAL_IDS)
    assert counted.stdout == f"{len(REAL_IDS)}\n"


def test_cli_with_source_since_until_and_stdin():
    stream = (FIXTURES / "langchain_response_metadata_with_gen_id.txt").read_bytes()
    stream += (FIXTURES / "sse_chunks_real_captured_in_tests.txt").read_bytes()

    result = CliRunner().invoke(cli, ["ids", "-", "--with-source", "--since", "2025-11-20", "--until",
                                      "2026-02-13T12:00:00Z"], input=stream)

    assert result.exit_code == 0, result.output
    assert result.stdout == (  # 2025-11-20T08:12:48Z, then the stream's 2026-02-13T02:56:09Z and 2026-01-20
        "gen-1763626368-7nC7HDrc2SUlvwBTJ1qL\t-:2\n"  # the LangChain repr's 2026-02-14 id (line 7) is too late
        "gen-1770951369-sKYcTnzlyj6HvxZfXXkd\t-:15\n"
        "gen-1768896871-9HgAQqS1Z72C6gApaidi\t-:20\n"
    )


def test_cli_warns_per_bad_source_and_exits_2_only_when_nothing_was_read(tmp_path):
    runner = CliRunner()
    missing = str(tmp_path / "nope.log")

    partly = runner.invoke(cli, ["ids", missing, str(FIXTURES / "chat_completion_real_gemini25flash_google_skills.json")])
    nothing = runner.invoke(cli, ["ids", missing, str(tmp_path / "*.gz")])
    bad_date = runner.invoke(cli, ["ids", "--since", "yesterday", missing])
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(cli, ["ids", str(tmp_path / "empty")])

    assert partly.exit_code == 0
    assert partly.stdout == "gen-1772036036-03sYeRNNFhHlQjQZpj70\n"
    assert partly.stderr == f"warning: {missing}: skipped: no such file or directory\n"
    assert nothing.exit_code == 2
    assert nothing.stderr.splitlines() == [
        f"warning: {missing}: skipped: no such file or directory",
        f"warning: {tmp_path / '*.gz'}: skipped: no file matches this pattern",
        "Error: no source could be read",
    ]
    assert bad_date.exit_code == 2 and "not a date or date-time: 'yesterday'" in bad_date.stderr
    assert (empty.exit_code, empty.stderr) == (2, "Error: no files in the given folders\n")


# --- a big plain file, in two processes ----------------------------------------------------------

_HALVES_SCRIPT = """
import json, os, sys
from pipeline import logs

def scan(split_min_bytes, paths, with_sources=False):
    logs.SPLIT_MIN_BYTES = split_min_bytes
    stats = logs.ScanStats()
    found = [generation_id for generation_id, _ in logs.find_ids(paths, stats=stats, with_sources=with_sources)]
    return found, stats.bytes_read, stats.ids_found

marker, *paths = sys.argv[1:]
whole = scan(1 << 62, paths)
halves = scan(1, paths)
with_sources = scan(1, paths, with_sources=True)  # lines wanted: never split
def die(*args):  # the child dies, saying it was there: this process scans on alone
    open(marker, "w").close()
    os._exit(3)
logs._Scanner._second_half = die
fallback = scan(1, paths)
print(json.dumps({"whole": whole, "halves": halves, "with_sources": with_sources, "fallback": fallback,
                  "tasks": len(os.listdir("/proc/self/task"))}))
"""


def test_a_big_plain_file_scanned_by_two_processes_gives_the_same_ids_in_the_same_order(tmp_path):
    """`orusage ids` forks a child for the second half of a big plain file (logs.SPLIT_MIN_BYTES;
    here every file): its ids come after the first half's, less those seen there, whatever file
    saw them first; a child that dies leaves the parent to scan that half itself."""
    rng = random.Random(7)
    ids = [f"gen-17719{n:05d}-{''.join(rng.choices(string.ascii_letters + string.digits, k=20))}" for n in range(3000)]
    first = tmp_path / "a.log"
    second = tmp_path / "b.log"
    chosen = [ids[rng.randrange(2000)] for _ in range(20_000)]  # many repeated, across the halves
    lines = [f"{n} ok gen_id={chosen[n]} x\n" if n % 3 else f"{n} filler xgen-{ids[0][4:]}\n" for n in range(20_000)]
    first.write_text("".join(lines))
    second.write_text("".join(f"again {ids[n]}\n" for n in range(1500, 3000)) + f"no newline at the end {ids[2999]}")
    marker = tmp_path / "a child was forked"
    result = subprocess_json(_HALVES_SCRIPT, str(marker), str(first), str(second))
    assert result["tasks"] == 1 and marker.exists()  # single-threaded, so the halves were really forked
    assert result["halves"] == result["whole"] == result["with_sources"] == result["fallback"]
    found, bytes_read, ids_found = result["whole"]
    assert len(found) == len(set(found)) == ids_found
    assert bytes_read == first.stat().st_size + second.stat().st_size
    assert set(found) == {chosen[n] for n in range(20_000) if n % 3} | set(ids[1500:])


def subprocess_json(script: str, *args: str) -> dict:
    import json
    import subprocess

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=root, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)

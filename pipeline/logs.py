"""Find OpenRouter generation ids in log files: the first stage of the pipeline.

No endpoint lists generations, so the ids in an application's own logs are the only way in.
`find_ids` yields each distinct id once, with the file and line where it was first seen; `orusage
ids` prints them and `orusage ingest` queues them.

What an id is
-------------
Exactly the live form: ``gen-`` + 10 digits (the Unix second of the request) + ``-`` + 20 ASCII
letters or digits, e.g. ``gen-1771967973-0hZ8J5kY7qLMOKbPx0u3``. All 32 real ids on record have that
form (tests/fixtures/generation_ids_real_observed.txt: live calls, SSE chunks, app logs, LangChain
printouts, from 2025-04 to 2026-08). Nothing else is accepted, because every other ``gen-`` string on
record is a documentation placeholder that the API would answer with 404 for a week of retries:
``gen-3bhGkxlo4XFrqiabUM7NDtwDzWwG`` (28 characters, only in the OpenAPI example), ``gen-1234567890``,
``gen-abc123``, ``gen-xxxx...``; and Vercel's gateway's ``gen_<ULID>`` is not OpenRouter's. The
timestamp is also what ``--since``/``--until`` and the week-long 404 re-check rely on: an id without
one could not be placed in time. The 10 digits must be at least 1600000000 (2020-09-13): OpenRouter
started in 2023, so an earlier value is made up, like the docs' ``gen-1234567890-...``.

An id must stand alone: the bytes on both sides must not be ASCII letters, digits, ``_`` or ``-``
(the start and end of the text count as boundaries). So ``xgen-...``, ``oxygen-...``, ``regenerate``,
``gen-ai``, ``req-1727282430-...`` and an id followed by one more id character are not ids, and no
shorter id is cut out of a longer token; quotes, ``=``, ``:``, ``/``, spaces, commas, brackets,
backslashes, ``\\r``, NUL and any non-ASCII byte are boundaries. A consequence: an id right after a
percent- or ``\\u``-escape ending in a letter or digit (``%3Dgen-...``) is not found; no log on
record shows one.

How it reads
------------
Files, folders (recursively, files in sorted order), glob patterns, and ``-`` for stdin; gzip
(multi-member too), zstd (multi-frame), bzip2 and xz are recognised by their magic bytes, not their
names. gzip goes through ISA-L in its own thread (``isal.igzip_threaded``: one GIL-free call per
256 KiB block, so decompression overlaps the scan; ~1.3 GB/s, the standard library's ~0.55), zstd
frame by frame through Python 3.14's ``compression.zstd`` (backported), which, unlike ``zstandard``'s
stream reader, reports a truncated file instead of ending it silently (`_ZstdFrames`).

The text is scanned as bytes, 512 KiB at a time, with one regular expression (Python's ``re`` over
big chunks runs ~3x faster than reading line by line), so invalid UTF-8, CRLF, NUL bytes and multi-
megabyte lines change nothing. A chunk ends just before its trailing run of id characters, which is
carried into the next chunk with the one byte before it as the lookbehind's context: an id split
across chunks is found once, and the carry stays under 40 bytes. Each chunk is handled as a batch
(see `_Scanner._scan`): the regex dominates, and a new id costs ~0.5 us more (set insert, line,
decoding, its `path:line` string and tuple). Lines are counted only where they are needed: a chunk
with a new id places each one with numpy's packed newline bits (`_lines`); any other chunk just
counts its newlines (numpy, ~5x ``bytes.count``). A reader thread of our own for plain files gained
nothing: the GIL handoffs serialised it with the regex.

Distinct ids are kept exact, as bytes in a set: ~130 bytes each, so a million distinct ids (a 1 GB log
with a new id on every fifth line) peak at ~160 MB RSS (bench/scan_logs.py measures it).

Bad input
---------
A missing path, a glob without matches, an unreadable file, or a binary file is skipped with one
warning naming it. Binary means: the first MiB of bytes other than NUL (decompressed) holds no id, and
the file starts with the magic bytes of an executable, image or archive (ELF, PNG, JPEG, zip, tar...)
or holds a NUL and at least 5% control bytes among those other bytes (`_binary_reason`). NUL runs
alone never make a log binary: logrotate's ``copytruncate`` leaves a hole of NULs where the app goes
on writing at its old offset, and the lines after it are read (the hole holds no newline, so they
count from line 1). A text log with a stray NUL, or a binary file with ids in it, is read.

A truncated compressed file keeps the ids read before the cut (the decoders hold back at most a few
hundred KiB before it) and warns. A corrupt one must not yield ids from the garbage decoded before a
check caught it, ids that no request had: a failed zstd checksum or content size, gzip CRC or xz and
bzip2 check, or a corrupt block, shows only once the garbage is decoded. So a compressed source's new
ids are held until their zstd frame ends clean or 16 MiB more text is decoded (`_HOLD_BYTES`), and
those still held at such damage are dropped, and counted in its warning; within a gzip member or zstd
frame of more than 16 MiB, the ids before its last 16 MiB are out already. A zstd frame without a
checksum decodes zeroed bytes into garbage with no error at all: a run of 4 KiB of zeros in zstd data
(a lost block) stops the reading before it is decoded (`_ZEROED_RUN`); shorter runs go unnoticed. The
counts come back in `ScanStats` for the run summary.
"""

from __future__ import annotations

import bisect
import bz2
import contextlib
import glob
import io
import itertools
import json
import lzma
import operator
import os
import re
import signal
import stat
import sys
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

from isal import igzip_threaded

from pipeline.log_sources import (
    FINGERPRINT_BYTES,
    TAIL_BYTES,
    Resume,
    SourceState,
    SourceTracker,
    file_id,
    fingerprint,
    stored_path,
)

if "numpy" not in sys.modules:
    # numpy serves this module's vectorised byte passes, never BLAS, but OpenBLAS starts a thread per
    # core when numpy loads, and each spins ~0.1 s waiting for work: on 2 busy cores that took ~12% of
    # a 64 MB scan (bench/scan_logs.py). One thread: none is started.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

SPLIT_MIN_BYTES = 1 << 26
"""A plain file this big, when nothing but its ids is wanted (`orusage ids`), is scanned in two
processes at once, one half each (`_Scanner._scan_halves`): on 2 cores, a 1 GB log in ~0.6 of the time."""

CHUNK_BYTES = 1 << 19
"""Bytes scanned per regex call. 256 KiB to 4 MiB ran within a few percent; 512 KiB ran 2-3% fewer
instructions than 1 MiB on a busy log (a new id every ~1 KB): a chunk's ~500 match objects stay under
the garbage collector's 700-allocation trigger, and its newline flags stay in cache."""

SNIFF_BYTES = 1 << 20
"""A source is binary if its first SNIFF_BYTES that are not NUL (decompressed) hold no id, and it starts
with a binary format's magic bytes or they hold >= 5% control bytes and it a NUL (`_binary_reason`)."""

_GZIP_BLOCK_BYTES = 1 << 18
"""isal decompresses gzip this much at a time in its thread; a truncated file loses at most this much."""

_PIECE_BYTES = 1 << 16
"""Read size from decompressors: a read that meets the damage loses what it decoded, so keep it small."""

_HOLD_BYTES = 1 << 24
"""A compressed source's new ids wait until this much more text is decoded, or until the zstd frame they
are in ends clean, before they are yielded: a checksum or CRC fails only at the end of its frame or gzip
member, once the garbage before it is decoded, and the ids still held then are dropped. 16 MiB of a busy
log hold ~16,000 new ids (~1.5 MB held); a log of nothing but ids (36 bytes each) ~470,000 (~40 MB)."""

_ZSTD_INPUT_BYTES = 1 << 17
"""Compressed bytes read at a time for zstd."""

_ZEROED_RUN = 1 << 12
"""A run of this many zero bytes in zstd data is taken for damage: what a lost 4 KiB block reads back
as. zstd writes no run that long: the longest seen in its output were ~820 bytes (the entropy-coded
sequences of logs of near-identical lines, levels 1 to 19). A frame without a checksum decodes zeroed
literals into garbage without any error (`_ZstdFrames`); shorter zeroed ranges go unnoticed there."""
_ZEROS = bytes(_ZEROED_RUN)

_LEAD_BYTES = 262
"""The stream's first bytes that `_binary_reason` looks at: a tar header has `ustar` at 257."""

_BINARY_MAGICS = (
    (b"\x7fELF", "ELF executable"),
    (b"\xcf\xfa\xed\xfe", "Mach-O executable"),
    (b"\xce\xfa\xed\xfe", "Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "Mach-O executable or Java class"),
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"%PDF-", "PDF document"),
    (b"PK\x03\x04", "zip archive"),
    (b"PK\x05\x06", "zip archive"),
    (b"7z\xbc\xaf\x27\x1c", "7z archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"SQLite format 3\x00", "SQLite database"),
)
"""Formats that no log starts with; found by their first bytes even when their other bytes look like
text (a zip of stored files)."""

_ID_CHAR_CLASS = rb"A-Za-z0-9_\-"
_ID_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_ID_LEN = 35
_CARRY_RUN = _ID_LEN + 1
"""A trailing run of id characters this long cannot start an id (one more id character follows it)."""

# The lookbehind sits after the literal `gen-` so that `re` keeps its fast literal-prefix search
# (a leading lookbehind made the scan ~20x slower).
_ID_RE = re.compile(
    rb"gen-(?<![" + _ID_CHAR_CLASS + rb"]gen-)"
    rb"(?:1[6-9]|[2-9][0-9])[0-9]{8}-[A-Za-z0-9]{20}"
    rb"(?![" + _ID_CHAR_CLASS + rb"])"
)
_ID_FULL_RE = re.compile(r"gen-(?:1[6-9]|[2-9][0-9])[0-9]{8}-[A-Za-z0-9]{20}")

_MATCHED = operator.itemgetter(0)
"""A match's text: `map(_MATCHED, matches)` takes every id of a chunk without a Python step per match."""
_NEWLINE = 10
_ONE = np.uint64(1)
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F])
"""Bytes that text does not hold: C0 controls except tab, newline, form feed, CR and ESC; DEL."""
_STDIN = "-"


FoundId = tuple[str, str | None]
"""`(generation_id, source)`: the id and the `path:line` of its first sighting (`-:12` for stdin),
lines counting from 1 (None when not asked for). A plain tuple, because a log can hold a million new ids: building a frozen
dataclass cost ~0.5 us each, a tuple ~0.1 us, and a NamedTuple's Python-level `__new__` is no cheaper."""


@dataclass
class ScanStats:
    files_read: int = 0
    """Sources scanned, fully or up to a damaged part (then also a warning)."""
    files_skipped: int = 0
    """Missing, unmatched globs, unreadable, binary, or damaged before their first byte."""
    bytes_read: int = 0
    """Bytes of text scanned, after decompression."""
    ids_found: int = 0
    """Distinct ids yielded (inside --since/--until); counted a chunk at a time, as they are handed out."""
    ids_out_of_range: int = 0
    """Distinct ids seen but outside --since/--until."""
    files_unchanged: int = 0
    """Files as an earlier run left them (same device, inode, size, mtime): not opened."""
    files_continued: int = 0
    """Files read on from where an earlier run stopped (grown, or renamed or compressed by a rotation)."""
    bytes_skipped: int = 0
    """Bytes of text not read again: unchanged files', and those before the offsets continued from."""
    warnings: list[str] = field(default_factory=list)


def is_generation_id(text: str) -> bool:
    """True for a live-form OpenRouter generation id (see the module docstring)."""
    return _ID_FULL_RE.fullmatch(text) is not None


def id_timestamp(generation_id: str) -> datetime | None:
    """The UTC second the id carries (the request's start), or None if it is not a live-form id."""
    if not is_generation_id(generation_id):
        return None
    return datetime.fromtimestamp(int(generation_id[4:14]), tz=timezone.utc)


def find_ids(
    paths: Sequence[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    stats: ScanStats | None = None,
    warn: Callable[[str], None] | None = None,
    chunk_size: int = CHUNK_BYTES,
    sources: SourceTracker | None = None,
    with_sources: bool = True,
) -> Iterator[FoundId]:
    """Yield each distinct generation id in `paths` once, in order of first sighting, as a plain
    tuple `(generation_id, source)`: `for generation_id, source in find_ids(paths)`.

    Arguments are read in the order given; folders and globs in sorted path order; `-` is stdin.
    `since` (inclusive) and `until` (exclusive; naive means UTC) filter on the id's own timestamp.
    Warnings go to `warn` (default: stderr) and into `stats.warnings`; `stats` is complete once the
    iterator is. With `sources`, files are read only past where its states say earlier runs read
    them (see pipeline/log_sources.py). Without `with_sources` the source is None and no line is
    counted: ~40% less time on a log with a new id every fifth line (bench/scan_logs.py).
    """
    for item in scan_logs(paths, since=since, until=until, stats=stats, warn=warn, chunk_size=chunk_size,
                          sources=sources, with_sources=with_sources):
        if not isinstance(item, SourceState):
            ids, found_in = item  # a chunk's worth: one generator hop per id, not three
            yield from zip(ids, found_in) if found_in is not None else zip(ids, itertools.repeat(None))


def scan_logs(
    paths: Sequence[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    stats: ScanStats | None = None,
    warn: Callable[[str], None] | None = None,
    chunk_size: int = CHUNK_BYTES,
    sources: SourceTracker | None = None,
    with_sources: bool = True,
) -> Iterator[tuple[list[str], list[str] | None] | SourceState]:
    """`find_ids`, in the pieces an ingest commits: a chunk's first sightings as `(ids, sources)`,
    and, with `sources` recording, each file's new `SourceState` right after its last ids (and the
    kept state of a file found unchanged, at its path now)."""
    stats = stats if stats is not None else ScanStats()
    scanner = _Scanner(
        stats=stats,
        warn=warn or _warn_stderr,
        low_s=_epoch_s(since) if since is not None else 0,
        high_s=_epoch_s(until) if until is not None else 10**10,
        chunk_size=max(1, chunk_size),
        sources=sources,
        with_sources=with_sources,
    )
    for name in _expand(paths, scanner.skip):
        with contextlib.closing(scanner.scan_source(name)) as batches:
            yield from batches


# --- sources -------------------------------------------------------------------------------------


def _expand(paths: Sequence[str], skip: Callable[[str, str], None]) -> Iterator[str]:
    """Every file to read, each real file once; reports what cannot be found."""
    seen_files: set[str] = set()

    def once(name: str) -> Iterator[str]:
        key = name if name == _STDIN else os.path.realpath(name)
        if key not in seen_files:
            seen_files.add(key)
            yield name

    for arg in paths:
        if arg == _STDIN:
            yield from once(arg)
        elif os.path.isdir(arg):
            for name in _walk(arg):
                yield from once(name)
        elif os.path.lexists(arg):
            yield from once(arg)
        elif glob.has_magic(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            if not matches:
                skip(arg, "no file matches this pattern")
            for match in matches:
                for name in _walk(match) if os.path.isdir(match) else [match]:
                    yield from once(name)
        else:
            skip(arg, "no such file or directory")


def _walk(folder: str) -> list[str]:
    """Regular files under `folder`, sorted; FIFOs and devices inside folders would block or never end."""
    found: list[str] = []
    for root, _dirs, files in os.walk(folder):
        for file_name in files:
            path = os.path.join(root, file_name)
            try:
                if stat.S_ISREG(os.stat(path).st_mode):
                    found.append(path)
            except OSError:
                found.append(path)  # a broken symlink: let the open report it
    return sorted(found)


class _Reader(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


_GZIP_MAGIC = b"\x1f\x8b\x08"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_BZIP2_BLOCK_MAGICS = (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")  # first block, end


def _decoder(file: io.BufferedReader) -> tuple[str, _Reader]:
    """The compression format from the magic bytes, and a reader of the decompressed text."""
    head = file.peek(10)[:10]
    if head.startswith(_GZIP_MAGIC):
        # Decompressed in igzip_threaded's own thread, in blocks: one GIL-free call per block, so it
        # overlaps the regex (a reader thread of ours, doing smaller steps, did not: GIL convoy).
        return "gzip", igzip_threaded.open(file, "rb", threads=1, block_size=_GZIP_BLOCK_BYTES)
    if head.startswith(_ZSTD_MAGIC):
        return "zstd", _ZstdFrames(file)
    if head.startswith(_XZ_MAGIC):
        return "xz", lzma.LZMAFile(file)
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] in _BZIP2_BLOCK_MAGICS:
        return "bzip2", bz2.BZ2File(file)
    return "text", file


class ZeroedData(Exception):
    """A run of `_ZEROED_RUN` zero bytes in zstd data: lost blocks, read back as zeros."""


class _ZstdFrames:
    """The text of a zstd file's frames, each decoded by its own `ZstdDecompressor`, as `ZstdFile`
    reads them but for two things. `verified` counts the text of the frames that ended clean, so
    that the ids of a frame that does not (a failed checksum or content size, a corrupt block) are
    not yielded (see `_HOLD_BYTES`). And a run of `_ZEROED_RUN` zero bytes stops the reading before
    it is decoded, with `ZeroedData`: a frame without a checksum decodes zeroed literals into garbage
    without an error, and the text decoded before the run came from sound bytes (a block is decoded
    only once all of it is in). So a piece's trailing zeros wait for the next piece.
    """

    def __init__(self, file: io.BufferedReader) -> None:
        self.file = file
        self.decompressor = zstd.ZstdDecompressor()
        self.frame_fed = False
        self.produced = 0
        self.verified = 0
        """Text bytes, from the start, of the frames that ended clean."""
        self.read_bytes = 0
        self.zeros = b""
        """A piece's trailing zero bytes, shorter than `_ZEROED_RUN`: fed once the next piece shows more."""
        self.zeroed: ZeroedData | None = None

    def readinto(self, buffer: memoryview, /) -> int:
        while True:
            decompressor = self.decompressor
            if decompressor.eof:  # libzstd checked its content size and checksum, if it has them
                self.verified = self.produced
                data = decompressor.unused_data or self._input()
                if not data:
                    return 0
                self.decompressor = decompressor = zstd.ZstdDecompressor()
            elif decompressor.needs_input:
                data = self._input()
                if not data:
                    if self.frame_fed:
                        raise EOFError("Compressed file ended before the end-of-stream marker was reached")
                    return 0
            else:
                data = b""
            self.frame_fed = True
            out = decompressor.decompress(data, len(buffer))
            if out:
                size = len(out)
                buffer[:size] = out
                self.produced += size
                if decompressor.eof:
                    self.verified = self.produced
                return size

    def _input(self) -> bytes:
        """The next compressed bytes to decode; b"" at the end; raises `ZeroedData` at a run of zeros."""
        if self.zeroed is not None:
            raise self.zeroed
        while True:
            piece = self.file.read(_ZSTD_INPUT_BYTES)
            data = self.zeros + piece if self.zeros else piece
            offset = self.read_bytes - len(self.zeros)
            self.read_bytes += len(piece)
            self.zeros = b""
            if not piece:
                return data
            run = data.find(_ZEROS)
            if run != -1:
                self.zeroed = ZeroedData(f"{_ZEROED_RUN:,} or more zero bytes at byte {offset + run:,} "
                                         f"of the compressed data, as lost blocks read back; stopped there")
                if run:
                    return data[:run]
                raise self.zeroed
            sound = len(data.rstrip(b"\0"))  # `data` itself, uncopied, when it ends in no zero
            self.zeros = data[sound:]
            if sound:
                return data[:sound]

    def close(self) -> None:
        self.decompressor = None  # type: ignore[assignment]


def _may_be_garbled(error: Exception) -> bool:
    """Whether the text decoded before `error` may be garbage: a decoder that found its data corrupt
    (a checksum, CRC, size or block that does not add up) may have decoded garbage before it noticed.
    A file that ends early, or fails to be read (an OSError with an errno), or holds a run of zeros
    (`ZeroedData`, raised before them) was decoded from sound bytes up to there."""
    if isinstance(error, (EOFError, ZeroedData)):
        return False
    return not (isinstance(error, OSError) and error.errno is not None)


def _binary_reason(lead: bytes, text_bytes: int, nuls: int, control_bytes: int) -> str | None:
    """Why a source whose sniffed window holds no id is binary, or None if it is text.

    `text_bytes` are the window's bytes that are not NUL, `control_bytes` the control bytes among
    them (counted from the first chunk with a NUL on). NUL runs alone never make a file binary:
    logrotate's copytruncate leaves a hole of NULs where the app goes on writing at its old offset,
    and a UTF-16 text or a file of nothing but NULs holds no id either way. A tar archive is judged
    with its NULs, as all files were before: its headers are text and NUL padding, so an archive of
    small files is binary and one of big logs is read.
    """
    for magic, what in _BINARY_MAGICS:
        if lead.startswith(magic):
            return what
    if lead[257:262] == b"ustar":
        return "tar archive" if nuls and (control_bytes + nuls) * 20 >= text_bytes + nuls else None
    if nuls and text_bytes and control_bytes * 20 >= text_bytes:
        return "NUL and control bytes"
    return None


# --- scanning --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Chunk:
    """`buffer[start:cut]` is to be scanned; bytes before `start` are lookbehind context only."""

    buffer: bytearray
    start: int
    cut: int
    new_bytes: int
    origin: int
    """The offset in the decoded stream of `buffer[0]`."""
    sniffed: bool
    """The sniffed window ends with this chunk (or before it): `binary` is the verdict."""
    binary: str | None
    """Why the source is binary (`_binary_reason`), if it is and holds no id in the window."""
    verified: int
    """Decoded bytes, from the start, that a checksum vouched for (zstd frames that ended clean)."""
    final: bool
    damage: str | None
    """Why the source ended early, on its final chunk."""
    garbled: bool
    """The damage may have garbled the text decoded before it, back to `verified` (`_may_be_garbled`)."""


def _chunks(reader: _Reader, kind: str, chunk_size: int, *, origin: int = 0, sniff: bool = True) -> Iterator[_Chunk]:
    """Cut a decoded stream into chunks; no id straddles a cut (see the module docstring). The
    reader is `origin` bytes into the stream; without `sniff` (a source read before) it is text.

    One buffer serves every chunk: the consumer is done with a chunk when it asks for the next.
    """
    piece = chunk_size if kind == "text" else _PIECE_BYTES
    buffer = bytearray(chunk_size + _CARRY_RUN + 1)
    carried = 0  # bytes at the front of `buffer`, carried over from the previous chunk
    start = 0
    offset = origin
    sniffing = sniff
    lead = bytearray()
    text_bytes = 0  # bytes of the sniffed window that are not NUL
    nuls = 0
    control_bytes = 0
    while True:
        with memoryview(buffer) as view:
            n, eof, error = _fill(reader, view[carried : carried + chunk_size], piece)
        end = carried + n
        offset += n
        final = eof or error is not None
        sniffed = False
        binary = None
        if sniffing:
            # The window is the first SNIFF_BYTES that are not NUL, however long the NUL runs before
            # them: a hole of NULs costs one `find` and one numpy count per chunk (~0.1 ns a byte).
            if len(lead) < _LEAD_BYTES:
                lead += buffer[carried : min(end, carried + _LEAD_BYTES - len(lead))]
            if nuls or buffer.find(b"\0", carried, end) != -1:
                new = np.frombuffer(buffer, dtype=np.uint8, count=n, offset=carried)
                not_nul = int(np.count_nonzero(new))
                if not_nul:  # a copy: only once a NUL shows, and not for a chunk of NULs only
                    control_bytes += not_nul - len(buffer[carried:end].translate(None, _CONTROL_BYTES))
                nuls += n - not_nul
                text_bytes += not_nul
            else:
                text_bytes += n
            if text_bytes >= SNIFF_BYTES or final:
                sniffing = False
                sniffed = True
                binary = _binary_reason(bytes(lead), text_bytes, nuls, control_bytes)
        cut = end
        if not final:
            tail = buffer[max(start, end - _CARRY_RUN) : end]
            run = len(tail) - len(tail.rstrip(_ID_CHARS))
            if run < _CARRY_RUN:
                cut = end - run
        damage = _describe_damage(kind, error) if error is not None else None
        garbled = error is not None and _may_be_garbled(error)
        verified = getattr(reader, "verified", 0)
        yield _Chunk(buffer, start, cut, n, offset - end, sniffed, binary, verified, final, damage, garbled)
        if final:
            return
        if cut > start:
            carry_from, start = cut - 1, 1
        else:
            carry_from = 0
        carried = end - carry_from
        buffer[:carried] = buffer[carry_from:end]


def _fill(reader: _Reader, view: memoryview, piece: int) -> tuple[int, bool, Exception | None]:
    """Read until `view` is full or the stream ends: (bytes read, at the end, the error that ended it)."""
    filled = 0
    total = len(view)
    try:
        while filled < total:
            n = reader.readinto(view[filled : min(total, filled + piece)])
            if not n:
                return filled, True, None
            filled += n
    except Exception as error:  # noqa: BLE001 - whatever a decoder raises is this file's damage
        return filled, True, error
    return filled, False, None


def _describe_damage(kind: str, error: Exception) -> str:
    what = "read error" if kind == "text" else f"truncated or corrupt {kind} data"
    detail = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return f"{what} ({type(error).__name__}: {detail})"


class _Scanner:
    """Scans sources one after another, sharing one set of seen ids."""

    def __init__(
        self,
        *,
        stats: ScanStats,
        warn: Callable[[str], None],
        low_s: float,
        high_s: float,
        chunk_size: int,
        sources: SourceTracker | None = None,
        with_sources: bool = True,
    ) -> None:
        self.sources = sources
        self.with_sources = with_sources
        self.stats = stats
        self.warn = warn
        self.low_s = low_s
        self.high_s = high_s
        self.filtering = low_s > 0 or high_s < 10**10
        self.chunk_size = chunk_size
        self.seen: set[bytes] = set()

    def skip(self, name: str, reason: str) -> None:
        self.stats.files_skipped += 1
        self._warning(f"{name}: skipped: {reason}")

    def _warning(self, message: str) -> None:
        self.stats.warnings.append(message)
        self.warn(message)

    def _in_window(self, keys: list[bytes], fresh: Sequence[int]) -> Sequence[int]:
        """Those of the `fresh` indices whose id's time is inside --since/--until."""
        if not fresh or not self.filtering:
            return fresh
        kept = [i for i in fresh if self.low_s <= int(keys[i][4:14]) < self.high_s]
        self.stats.ids_out_of_range += len(fresh) - len(kept)
        return kept

    def scan_source(self, name: str) -> Iterator[tuple[list[str], list[str]] | SourceState]:
        # A file name that is not UTF-8 (bytes decoded with surrogates) shown with \x escapes: the
        # source is stored as text, and one such name must not stop the run.
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        label = "stdin" if name == _STDIN else shown
        tracker = self.sources if name != _STDIN else None
        if tracker is not None:
            try:
                unchanged = tracker.unchanged(name, os.stat(name))
            except OSError as error:
                self.skip(label, error.strerror or str(error))
                return
            if unchanged is not None:
                self.stats.files_unchanged += 1
                self.stats.bytes_skipped += unchanged.read_bytes
                if tracker.record:
                    yield unchanged
                return
        try:
            file = sys.stdin.buffer if name == _STDIN else open(name, "rb")  # noqa: SIM115
        except OSError as error:
            self.skip(label, error.strerror or str(error))
            return
        resume: Resume | None = None
        try:
            if not hasattr(file, "peek"):  # a test harness's stdin: a BytesIO
                file = io.BufferedReader(file)  # type: ignore[arg-type]
            try:
                kind, reader = _decoder(file)  # type: ignore[arg-type]
                if tracker is not None:
                    st = os.fstat(file.fileno())  # the file opened: the path may name another one by now
                    head = _head(name, kind, file)
                    resume, tail, reader = _resume_point(file, kind, reader, tracker.candidates(st, head), st.st_size)
            except OSError as error:
                self.skip(label, error.strerror or str(error))
                return
            try:
                origin = resume.read_bytes if resume else 0
                halves = self._halves(file, kind) if origin == 0 and name != _STDIN else None
                if halves is not None:
                    outcome = yield from self._scan_halves(file, name, shown, halves)
                else:
                    chunks = _chunks(reader, kind, self.chunk_size, origin=origin, sniff=resume is None)
                    outcome = yield from self._scan(chunks, shown, hold=kind != "text", origin=origin,
                                                    lines_before=resume.read_lines if resume else 0,
                                                    tail=tail if resume else b"",
                                                    track_lines=tracker is not None and tracker.record)
            finally:
                if reader is not file:
                    reader.close()  # type: ignore[attr-defined]  # stops igzip_threaded's thread
        finally:
            if name != _STDIN:
                file.close()
        scanned, damage = outcome.scanned, outcome.damage
        if outcome.binary:
            self.skip(label, f"binary file ({outcome.binary}, no generation id in its first "
                             f"{SNIFF_BYTES >> 20} MiB)")
        elif damage is not None and scanned == 0:
            self.skip(label, damage)
        else:
            self.stats.files_read += 1
            self.stats.bytes_read += scanned
            if damage is not None and outcome.dropped_ids:
                dropped = f"{outcome.dropped_ids:,} ids found in the last {outcome.dropped_bytes:,} bytes"
                self._warning(f"{label}: {damage} after {scanned:,} bytes; dropped the {dropped}, which the "
                              f"damage may have garbled; kept the ids found before")
            elif damage is not None:
                self._warning(f"{label}: {damage} after {scanned:,} bytes; kept the ids found before")
            if resume is not None:
                self.stats.files_continued += 1
                self.stats.bytes_skipped += resume.read_bytes
            if tracker is not None and tracker.record and damage is None:  # a damaged one: read again
                line_end = outcome.line_end or resume or Resume(0, 0, fingerprint(b""))
                yield SourceState(
                    path=stored_path(name), file_id=file_id(st), size_bytes=st.st_size,
                    modified_ns=st.st_mtime_ns, compression=kind, head_bytes=len(head),
                    head_fingerprint=fingerprint(head), read_bytes=line_end.read_bytes,
                    read_lines=line_end.read_lines, tail_fingerprint=line_end.tail_fingerprint)

    def _halves(self, file: io.BufferedReader, kind: str) -> int | None:
        """Where to cut a plain file to scan its two halves at once, if it is worth it and safe: a
        big file, nothing wanted per id but the id itself (no line, no window), a second core, and
        no other thread in the process (a fork copies only the forking thread: a lock another one
        held would stay locked in the child)."""
        if kind != "text" or self.with_sources or self.filtering or not hasattr(os, "fork"):
            return None
        size = os.fstat(file.fileno()).st_size
        if size < SPLIT_MIN_BYTES or (os.cpu_count() or 1) < 2 or not _single_threaded():
            return None
        # The first half a little bigger: the child's ids are merged after it (measured: 0.87 s for
        # 1 GB against 0.92 at half and half, bench/RESULTS.md).
        return _line_start_after(file.fileno(), size * 55 // 100)

    def _scan_halves(
        self, file: io.BufferedReader, name: str, shown: str, middle: int
    ) -> Generator[tuple[list[str], None], None, _Outcome]:
        """`_scan` of a plain file in two processes: a forked child scans from `middle` (a line's
        start) to the end while this one scans up to it, then the child's new ids, in order, are
        yielded after this half's, less those this half found first. If the child fails, this
        process scans the second half itself."""
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: nothing it does may return into the caller's code
            status = 1
            try:
                os.close(read_end)
                with open(write_end, "wb") as out:
                    out.write(self._second_half(name, shown, middle))
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        finished = False
        try:
            first = _chunks(_Upto(file, middle), "text", self.chunk_size)
            outcome = yield from self._scan(first, shown, hold=False)
            if outcome.binary is not None or outcome.damage is not None:
                return outcome
            with open(read_end, "rb", closefd=False) as results:
                blob = results.read()
            finished = os.waitpid(pid, 0)[1] == 0
            header, _, ids_text = blob.partition(b"\n")
            if not finished or not header:
                file.seek(middle)
                rest = _chunks(file, "text", self.chunk_size, origin=middle, sniff=False)
                second = yield from self._scan(rest, shown, hold=False)
            else:
                scanned, damage = json.loads(header)
                keys = ids_text.split(b"\n") if ids_text else []
                fresh = _first_sightings(keys, self.seen)
                if fresh:  # all of them, unless the first half had some: the child's text is used as is
                    yield _handed_out(ids_text if len(fresh) == len(keys) else b"\n".join(_picked(keys, fresh)),
                                      self.stats), None
                second = _Outcome(scanned, damage=damage)
            return _Outcome(outcome.scanned + second.scanned, damage=second.damage)
        finally:
            os.close(read_end)
            if not finished:
                with contextlib.suppress(ProcessLookupError, ChildProcessError):
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)

    def _second_half(self, name: str, shown: str, middle: int) -> bytes:
        """In the forked child: the new ids from `middle` on, after a header line (bytes scanned, damage)."""
        found: list[str] = []
        with open(name, "rb") as again:
            again.seek(middle)
            chunks = _chunks(again, "text", self.chunk_size, origin=middle, sniff=False)
            scan = self._scan(chunks, shown, hold=False)
            while True:
                try:
                    ids, _ = next(scan)
                except StopIteration as stop:
                    outcome: _Outcome = stop.value
                    break
                found += ids
        header = json.dumps([outcome.scanned, outcome.damage]).encode()
        return header + b"\n" + "\n".join(found).encode("ascii")

    def _scan(
        self, chunks: Iterator[_Chunk], source: str, *, hold: bool, origin: int = 0, lines_before: int = 0,
        tail: bytes = b"", track_lines: bool = False,
    ) -> Generator[tuple[list[str], list[str]], None, _Outcome]:
        """Yield one source's first sightings, as (ids, sources) per chunk; return what became of it.

        Batch work per chunk, with no Python step per byte or per line and as few as possible per
        id, because a busy log holds a new id every ~1 KB (a million per GB), each costing on top of
        the regex: one regex call gives the chunk's ids, set operations pick the new ones
        (`_first_sightings`), numpy places them on their lines (`_lines`), one join decodes them, and
        only they get a `path:line` string. Their offsets come from `finditer`'s match objects (~10%
        slower than `findall`, far cheaper than searching for the ids again), so a chunk uses
        `finditer` when the previous one had a new id (they come in runs) and `findall` otherwise,
        running `finditer` as well only on the chunk where new ids resume.

        With `hold` (a compressed source), a chunk's new ids wait in `held` until a check vouches
        for the text they were found in (their zstd frame ended clean) or `_HOLD_BYTES` more of it
        is decoded; damage that may have garbled the text (a failed checksum or CRC) drops the ids
        still waiting, and takes them out of `seen` again, so that a later file may still give them.

        The text starts `origin` bytes into the stream, after `lines_before` lines ending in `tail`.
        With `track_lines`, the outcome says where the last complete line ends (`line_end`).
        """
        seen = self.seen
        stats = self.stats
        prefix = f"{source}:"
        placed = self.with_sources or track_lines or hold  # a held id's offset says when to release it
        line_end: Resume | None = None
        scanned = 0
        sightings = 0
        dense = True
        held: deque[_Held] = deque()
        with contextlib.closing(chunks):
            for chunk in chunks:
                buffer, start, cut = chunk.buffer, chunk.start, chunk.cut
                scanned += chunk.new_bytes
                if not placed:  # no line wanted: the regex and the set, nothing per id but its decoding
                    keys = _ID_RE.findall(buffer, start, cut)
                    sightings += len(keys)
                    fresh = self._in_window(keys, _first_sightings(keys, seen))
                    if fresh:
                        yield _handed_out(b"\n".join(_picked(keys, fresh)), stats), None
                    if chunk.sniffed and chunk.binary and not sightings:
                        return _Outcome(scanned, binary=chunk.binary)
                    if chunk.final:
                        return _Outcome(scanned, damage=chunk.damage)
                    continue
                matches = list(_ID_RE.finditer(buffer, start, cut)) if dense else None
                keys = list(map(_MATCHED, matches)) if matches is not None else _ID_RE.findall(buffer, start, cut)
                sightings += len(keys)
                fresh = _first_sightings(keys, seen)
                dense = bool(fresh)
                fresh = self._in_window(keys, fresh)
                text = np.frombuffer(buffer, dtype=np.uint8, count=cut - start, offset=start)
                if fresh:
                    if matches is None:
                        matches = list(_ID_RE.finditer(buffer, start, cut))
                    offsets = [matches[i].start() for i in fresh]
                    lines, lines_before = _lines(text, offsets, start, lines_before)
                    new_keys = _picked(keys, fresh)
                    if hold:  # bytes and ints until released: fewer, smaller objects to keep than strings
                        held.append(_Held(chunk.origin, offsets, new_keys, lines))
                    else:
                        yield _handed_out(b"\n".join(new_keys), stats), [f"{prefix}{line}" for line in lines]
                elif cut > start:
                    lines_before += int(np.count_nonzero(text == _NEWLINE))
                if track_lines:
                    line_end = _line_end(buffer, start, cut, chunk.origin, lines_before, tail) or line_end
                    tail = (tail + buffer[max(start, cut - TAIL_BYTES) : cut])[-TAIL_BYTES:]
                if held:
                    # The text before `sound` is vouched for by a check, or lies far enough behind
                    # the decoder; an end without damage, or with one that garbles nothing, vouches for all.
                    position = origin + scanned  # in the decoded stream, as the chunks' offsets are
                    if chunk.final and not chunk.garbled:
                        sound = position
                    else:
                        sound = max(chunk.verified, position - _HOLD_BYTES)
                    yield from _release(held, sound, prefix, stats)
                    if chunk.final and held:  # found after `sound`, and the damage may have garbled them
                        for batch in held:
                            seen.difference_update(batch.keys)
                        dropped = sum(len(batch.keys) for batch in held)
                        return _Outcome(scanned, damage=chunk.damage, dropped_ids=dropped,
                                        dropped_bytes=position - sound)
                if chunk.sniffed and chunk.binary and not sightings:
                    return _Outcome(scanned, binary=chunk.binary)
                if chunk.final:
                    return _Outcome(scanned, damage=chunk.damage, line_end=line_end)
        return _Outcome(scanned, line_end=line_end)


@dataclass(slots=True)
class _Outcome:
    scanned: int
    """Bytes of text scanned."""
    binary: str | None = None
    """Why the source was found binary (then it is skipped)."""
    damage: str | None = None
    dropped_ids: int = 0
    """New ids found after the text last vouched for, before damage that may have garbled it."""
    dropped_bytes: int = 0
    line_end: Resume | None = None
    """Where the last complete line scanned ends, for the source's state (with `track_lines`)."""


@dataclass(slots=True)
class _Held:
    """A chunk's new ids, not yielded yet: `offsets` are theirs in the buffer, which starts at `origin`."""

    origin: int
    offsets: list[int]
    keys: list[bytes]
    lines: list[int]


def _release(
    held: deque[_Held], sound: int, prefix: str, stats: ScanStats
) -> Iterator[tuple[list[str], list[str]]]:
    """Yield the held ids that end by `sound` bytes into the text, oldest first."""
    while held:
        batch = held[0]
        count = bisect.bisect_right(batch.offsets, sound - batch.origin - _ID_LEN)
        if count == 0:
            return
        keys, lines = batch.keys, batch.lines
        if count == len(keys):
            held.popleft()
        else:  # the frame that vouches for the text ends inside this chunk
            keys, lines = keys[:count], lines[:count]
            del batch.offsets[:count], batch.keys[:count], batch.lines[:count]
        yield _handed_out(b"\n".join(keys), stats), [f"{prefix}{line}" for line in lines]


def _picked(keys: list[bytes], fresh: Sequence[int]) -> list[bytes]:
    """The keys at the `fresh` indices (all of them without a copy, the common case)."""
    return keys if len(fresh) == len(keys) else [keys[i] for i in fresh]


def _handed_out(joined: bytes, stats: ScanStats) -> list[str]:
    """Ids joined by newlines as text, one decode for the lot, counted as found."""
    ids = joined.decode("ascii").split("\n")
    stats.ids_found += len(ids)
    return ids


class _Upto:
    """A plain file's bytes up to `end`: the first half of `_Scanner._scan_halves`."""

    def __init__(self, file: io.BufferedReader, end: int) -> None:
        self.file = file
        self.left = end

    def readinto(self, buffer: memoryview, /) -> int:
        if self.left <= 0:
            return 0
        n = self.file.readinto(buffer[: self.left]) or 0
        self.left -= n
        return n


def _single_threaded() -> bool:
    """Whether this process has one thread, native ones (DuckDB's, igzip's) included."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _line_start_after(fd: int, offset: int) -> int | None:
    """The offset just after the first newline at or after `offset`, or None if there is none."""
    while piece := os.pread(fd, 1 << 16, offset):
        newline = piece.find(b"\n")
        if newline != -1:
            return offset + newline + 1
        offset += len(piece)
    return None


def _line_end(buffer: bytearray, start: int, cut: int, origin: int, lines: int, before: bytes) -> Resume | None:
    """Where the last complete line of `buffer[start:cut]` ends (`lines` newlines through `cut`, the
    text before `start` ending in `before`), as a place to resume from; None if it holds no newline."""
    newline = buffer.rfind(b"\n", start, cut)
    if newline == -1:
        return None
    tail = bytes(buffer[max(start, newline + 1 - TAIL_BYTES) : newline + 1])
    if len(tail) < TAIL_BYTES:
        tail = (before + tail)[-TAIL_BYTES:]
    return Resume(origin + newline + 1, lines, fingerprint(tail))


def _head(name: str, kind: str, file: io.BufferedReader) -> bytes:
    """The first FINGERPRINT_BYTES of the source's text (all of it if shorter): its identity."""
    if kind == "text":
        return os.pread(file.fileno(), FINGERPRINT_BYTES, 0)
    with open(name, "rb") as again:  # decoded on a second handle: the first one's decoder stays at 0
        _, reader = _decoder(again)
        try:
            head = bytearray(FINGERPRINT_BYTES)
            with memoryview(head) as view:
                n, _, _ = _fill(reader, view, _PIECE_BYTES)
            return bytes(head[:n])
        finally:
            reader.close()  # type: ignore[attr-defined]


def _resume_point(
    file: io.BufferedReader, kind: str, reader: _Reader, candidates: list[Resume], size: int
) -> tuple[Resume | None, bytes, _Reader]:
    """The first candidate whose tail the text before its offset ends with, that tail, and the reader
    positioned there; or None and the reader at 0. A compressed source is decoded up to the offset
    (only its best candidate is tried: each try decodes); a plain one is seeked."""
    if kind == "text":  # `size`: the file's, on disk
        for candidate in candidates:
            if candidate.read_bytes <= size:
                tail = os.pread(file.fileno(), candidate.tail_bytes, candidate.read_bytes - candidate.tail_bytes)
                if fingerprint(tail) == candidate.tail_fingerprint:
                    file.seek(candidate.read_bytes)
                    return candidate, tail, reader
        return None, b"", reader
    if not candidates:
        return None, b"", reader
    candidate = candidates[0]
    tail = _skip(reader, candidate.read_bytes, candidate.tail_bytes)
    if tail is not None and fingerprint(tail) == candidate.tail_fingerprint:
        return candidate, tail, reader
    reader.close()  # type: ignore[attr-defined]
    file.seek(0)
    return None, b"", _decoder(file)[1]


def _skip(reader: _Reader, count: int, tail_bytes: int) -> bytes | None:
    """Read and drop `count` bytes; the last `tail_bytes` of them, or None if the stream ends (or fails) first."""
    buffer = bytearray(CHUNK_BYTES)
    tail = b""
    left = count
    with memoryview(buffer) as view:
        while left:
            n, _, error = _fill(reader, view[: min(len(buffer), left)], _PIECE_BYTES)
            if error is not None or n == 0:
                return None
            left -= n
            if left < tail_bytes:  # this piece reaches into the tail
                tail = (tail + view[:n])[-tail_bytes:]
    return tail


def _first_sightings(keys: list[bytes], seen: set[bytes]) -> Sequence[int]:
    """Indices in `keys` of the ids not in `seen`, each at its first occurrence; adds them to `seen`.

    Set operations first, so that a chunk pays a Python step per id only when it mixes new ids
    with known ones: all known (a re-scan) is one `issuperset`; all new and distinct (a busy log,
    1 GB with a million ids) is one `isdisjoint` and one `update`. Each stops early when it fails.
    """
    if seen.issuperset(keys):
        return []
    if seen.isdisjoint(keys):
        size_before = len(seen)
        seen.update(keys)
        if len(seen) - size_before == len(keys):
            return range(len(keys))
        first_index = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1)))  # the first one wins
        return sorted(first_index.values())
    seen_add = seen.add
    return [i for i, key in enumerate(keys) if key not in seen and not seen_add(key)]


def _lines(text: np.ndarray, offsets: list[int], origin: int, lines_before: int) -> tuple[list[int], int]:
    """The 1-based line of each of the sorted buffer `offsets` (`text` starts at `origin`, after
    `lines_before` lines), and the lines before the end of `text`.

    Vectorised, because a chunk can hold thousands of new ids: the newline flags are packed into
    64-bit words (bit i of word w is byte 64w+i), whose running popcount gives the newlines before
    each word, and a masked popcount of an offset's own word gives the rest. ~0.3 ns a byte, a
    third less than `flatnonzero` + `searchsorted`, which allocate one integer per newline.
    """
    size = len(text)
    is_newline = np.empty(size + -size % 64, dtype=bool)
    is_newline[size:] = False
    np.equal(text, _NEWLINE, out=is_newline[:size])
    words = np.packbits(is_newline, bitorder="little").view("<u8")
    per_word = np.bitwise_count(words)
    through_word = np.cumsum(per_word, dtype=np.int64)
    at = np.array(offsets, dtype=np.int64) - origin
    word = at >> 6
    below = words[word] & ((_ONE << (at & 63).astype(np.uint64)) - _ONE)
    lines = through_word[word] - per_word[word] + np.bitwise_count(below) + (lines_before + 1)
    return lines.tolist(), lines_before + int(through_word[-1])


def _epoch_s(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _warn_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)

"""Which log files earlier runs read, and how far: the checkpoints that let a nightly run read only
what is new, exactly.

A file's state (`SourceState`) is its identity, a fingerprint of its first `FINGERPRINT_BYTES` of
text (decompressed for a compressed file) and its device and inode; its size and mtime on disk; and
how far it was read: the text offset after its last complete line, the lines before it, and a
fingerprint of the `TAIL_BYTES` of text before it. The states live in the warehouse
(`log_sources`), each written in the same transaction as the queue rows of the ids found up to its
offset (see warehouse.Writer.stage_ids), so a run killed at any moment loses no id: a file whose
new state is not committed is read again from its old one.

What the next run does with a file (`SourceTracker`, asked by the scanner in pipeline/logs.py):
- same device, inode, size and mtime as a state: not opened;
- otherwise its head is fingerprinted, and every state with the same head is a candidate, the same
  device and inode first (a file grown, or renamed by a rotation), then the others (a rotated copy:
  `app.log.1.gz` of an `app.log.1` read before). The first candidate whose tail fingerprint matches
  the file's text before the candidate's offset is continued from there (a plain file is seeked, a
  compressed one decompressed up to it without scanning);
- no candidate (a new file, a file truncated in place, one whose first bytes changed): read from 0.
Log shippers (Vector, Filebeat, fluent-bit) resume on the head or the inode alone, and so re-read
or skip text when a rotation fools them; checking the text at the offset too makes skipping safe:
text is skipped only where it is byte for byte (to 128-bit hashes) what was read before.

A file shorter than `FINGERPRINT_BYTES` is fingerprinted on what it has (`head_bytes`), and matched
again on that many bytes once it grows. stdin has no state: it is read whole every time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace

FINGERPRINT_BYTES = 1024
"""Text bytes at the head of a file that identify it across renames and compression (Filebeat's default)."""

TAIL_BYTES = 1024
"""Text bytes before a saved offset that must read the same for a file to be continued there."""


def fingerprint(data: bytes) -> str:
    """A 128-bit BLAKE2b of `data`, in hex: long enough that two different texts never collide."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def scope_of(shard: tuple[int, int] | None) -> str:
    """Whose states: '' for an unsharded run's, 'I/N' for shard I of N's (its runs queue only its ids)."""
    return "" if shard is None else f"{shard[0] + 1}/{shard[1]}"


def stored_path(name: str) -> str:
    """The absolute path, as text: a name that is not UTF-8 (bytes decoded with surrogates) with \\x escapes."""
    return os.path.abspath(name).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def file_id(st: os.stat_result) -> str:
    """The device and inode, as stored: `device:inode`."""
    return f"{st.st_dev}:{st.st_ino}"


@dataclass(frozen=True, slots=True)
class SourceState:
    path: str
    """Absolute path where it was last seen."""
    file_id: str
    size_bytes: int
    """On disk (compressed, for a compressed file), when its reading began."""
    modified_ns: int
    compression: str
    """text, gzip, zstd, bzip2 or xz."""
    head_bytes: int
    """Bytes fingerprinted: FINGERPRINT_BYTES, or all the text of a smaller file."""
    head_fingerprint: str
    read_bytes: int
    """Text offset after the last complete line read: a line without its newline is read again."""
    read_lines: int
    """Lines before read_bytes (an id's source line counts on from there)."""
    tail_fingerprint: str
    """Of the min(TAIL_BYTES, read_bytes) bytes of text before read_bytes."""


@dataclass(frozen=True, slots=True)
class Resume:
    """Where to continue a file, if its text before `read_bytes` ends with the tail fingerprinted."""

    read_bytes: int
    read_lines: int
    tail_fingerprint: str

    @property
    def tail_bytes(self) -> int:
        return min(TAIL_BYTES, self.read_bytes)


class SourceTracker:
    """The states of one scope (an unsharded run's, or one shard's) as the run began: where the
    scanner may go on from (logs.scan_logs yields the new states, for the caller to commit).

    `rescan` ignores the earlier states (every file read from 0) and records new ones; `record`
    False (a run limited by --since/--until, whose ids outside the window are not queued, or `ids
    --new`) uses them without recording any.
    """

    def __init__(self, states: Iterable[SourceState], *, rescan: bool = False, record: bool = True) -> None:
        self.states = [] if rescan else list(states)
        self.record = record
        self.by_file_id = {state.file_id: state for state in self.states}
        self.head_lengths = sorted({state.head_bytes for state in self.states}, reverse=True)
        self.by_head: dict[tuple[int, str], list[SourceState]] = {}
        for state in self.states:
            self.by_head.setdefault((state.head_bytes, state.head_fingerprint), []).append(state)

    def unchanged(self, path: str, st: os.stat_result) -> SourceState | None:
        """The state the file is as left by, if any, at its path now (then it is not opened)."""
        state = self.by_file_id.get(file_id(st))
        if state is None or state.size_bytes != st.st_size or state.modified_ns != st.st_mtime_ns:
            return None
        return replace(state, path=stored_path(path))

    def candidates(self, st: os.stat_result, head: bytes) -> list[Resume]:
        """Where the file may be continued, best first: states with its head, its own inode first,
        then the furthest read."""
        found: list[SourceState] = []
        for length in self.head_lengths:
            if length <= len(head):
                found += self.by_head.get((length, fingerprint(head[:length])), [])
        own = file_id(st)
        found.sort(key=lambda state: (state.file_id != own, -state.read_bytes))
        return [Resume(state.read_bytes, state.read_lines, state.tail_fingerprint)
                for state in found if state.read_bytes > 0]


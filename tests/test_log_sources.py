"""Nightly runs read only what is new in the logs (pipeline/log_sources.py): each file's state is
kept in the warehouse with the ids found up to its offset, and the next run goes on from there
through growth, half-written lines and every logrotate mode, exactly: the ids queued over the
incremental runs are always the ids a full rescan finds."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import warehouse
from pipeline.cli import cli
from pipeline.fake_api import Dataset, start_server
from pipeline.ingest import RunSummary, ingest
from pipeline.log_sources import FINGERPRINT_BYTES
from pipeline.logs import find_ids

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

from lakes import Target
from test_ingest import INGEST_SCRIPT, KEY, ROOT, options, read

DATASET = Dataset(2_000, seed=19)


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with start_server(DATASET, api_key=KEY) as server:
        yield server.base_url


class App:
    """An application writing one log line per LLM call, each with the next id of the dataset."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.next_ids = iter(DATASET.ids)
        self.written: list[str] = []

    def line(self) -> str:
        generation_id = next(self.next_ids)
        self.written.append(generation_id)
        return f"2026-08-01T00:00:00Z INFO llm call ok model=openai/gpt-4.1-mini gen_id={generation_id} took=812ms\n"

    def write(self, lines: int, name: str = "app.log") -> int:
        """Append `lines` lines to `name`; how many bytes."""
        text = "".join(self.line() for _ in range(lines))
        with open(self.logs / name, "a") as log:
            log.write(text)
        return len(text)


def run(logs: Path, path: Path | Target, api: str, **changes: object) -> RunSummary:
    summary = ingest(options(logs, path, api, **changes), api_key=KEY)
    assert summary.outcome == "ok", summary.error
    return summary


def queued(path: Path | Target) -> set[str]:
    return {generation_id for (generation_id,) in read(path, "select generation_id from ingest_queue")}


def rescanned(logs: Path) -> set[str]:
    """What reading every file whole finds."""
    return {generation_id for generation_id, _ in find_ids([str(logs)])}


def test_an_unchanged_file_is_not_opened_and_a_grown_one_is_read_from_where_the_last_run_stopped(tmp_path, api):
    app, path = App(tmp_path / "logs"), tmp_path / "warehouse.duckdb"
    first_bytes = app.write(100)
    first = run(app.logs, path, api)
    assert (first.scan.files_read, first.scan.bytes_read, first.progress.ids_new) == (1, first_bytes, 100)

    unchanged = run(app.logs, path, api)
    assert (unchanged.scan.files_read, unchanged.scan.files_unchanged, unchanged.scan.bytes_read) == (0, 1, 0)
    assert unchanged.scan.bytes_skipped == first_bytes

    appended = app.write(10)
    grown = run(app.logs, path, api)
    assert (grown.scan.files_continued, grown.scan.bytes_read, grown.progress.ids_in_logs) == (1, appended, 10)
    # the lines count on from the saved offset
    assert read(path, "select source from ingest_queue where generation_id = ?", [app.written[100]]) == [
        (f"{app.logs / 'app.log'}:101",)]
    assert queued(path) == set(app.written) == rescanned(app.logs)


def test_a_line_written_in_two_halves_between_runs_is_read_again_whole(tmp_path, api):
    app, path = App(tmp_path / "logs"), tmp_path / "warehouse.duckdb"
    app.write(5)
    line = app.line()
    half = len(line) // 2  # the id is cut in the middle
    with open(app.logs / "app.log", "a") as log:
        log.write(line[:half])
    first = run(app.logs, path, api)
    assert first.progress.ids_in_logs == 5
    [(read_bytes, read_lines)] = read(path, "select read_bytes, read_lines from log_sources")
    assert (read_lines, read_bytes) == (5, os.path.getsize(app.logs / "app.log") - half)  # up to the last newline

    with open(app.logs / "app.log", "a") as log:
        log.write(line[half:])
    second = run(app.logs, path, api)
    assert (second.scan.bytes_read, second.progress.ids_in_logs, second.progress.ids_new) == (len(line), 1, 1)
    assert read(path, "select source from ingest_queue where generation_id = ?", [app.written[-1]]) == [
        (f"{app.logs / 'app.log'}:6",)]
    assert queued(path) == set(app.written)


def test_logrotate_create_mode_the_renamed_file_is_continued_and_the_new_one_read_whole(tmp_path, api):
    app, path = App(tmp_path / "logs"), tmp_path / "warehouse.duckdb"
    app.write(50)
    run(app.logs, path, api)
    late = app.write(3)  # written after the run, before the rotation: the renamed file has them
    os.rename(app.logs / "app.log", app.logs / "app.log.1")
    fresh = app.write(20)
    rotated = run(app.logs, path, api)
    assert (rotated.scan.files_continued, rotated.scan.files_read) == (1, 2)
    assert rotated.scan.bytes_read == late + fresh
    assert queued(path) == set(app.written) == rescanned(app.logs)
    assert dict(read(path, "select path, read_lines from log_sources")) == {
        str(app.logs / "app.log.1"): 53, str(app.logs / "app.log"): 20}

    again = run(app.logs, path, api)
    assert (again.scan.files_unchanged, again.scan.bytes_read) == (2, 0)


def test_logrotate_copytruncate_the_copy_is_continued_and_the_truncated_file_read_from_0(tmp_path, api):
    app, path = App(tmp_path / "logs"), tmp_path / "warehouse.duckdb"
    app.write(50)
    run(app.logs, path, api)
    late = app.write(4)
    log = app.logs / "app.log"
    (app.logs / "app.log.1").write_bytes(log.read_bytes())  # copy, then truncate in place: the same inode
    inode = log.stat().st_ino
    os.truncate(log, 0)
    fresh = app.write(7)
    assert log.stat().st_ino == inode
    summary = run(app.logs, path, api)
    assert (summary.scan.files_continued, summary.scan.bytes_read) == (1, late + fresh)
    assert queued(path) == set(app.written) == rescanned(app.logs)


def test_a_file_truncated_and_rewritten_to_more_than_it_was_is_read_from_0(tmp_path, api):
    app, path = App(tmp_path / "logs"), tmp_path / "warehouse.duckdb"
    app.write(20)
    run(app.logs, path, api)
    os.truncate(app.logs / "app.log", 0)
    size = app.write(40)  # longer than before, another head: nothing to go on from
    summary = run(app.logs, path, api)
    assert (summary.scan.files_continued, summary.scan.bytes_read, summary.progress.ids_new) == (0, size, 40)
    assert queued(path) == set(app.written)


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_logrotate_compress_and_delaycompress_a_compressed_rotation_is_recognised_by_its_decompressed_head(
        tmp_path, api, compress):
    app, path = App(tmp_path / "logs"), tmp_path / "warehouse.duckdb"
    suffix, opener = (".gz", gzip.open) if compress == "gzip" else (".zst", zstd.open)

    def rotate(delay: bool) -> None:
        """logrotate's rename, with `compress` (and `delaycompress`: the first rotation stays plain)."""
        logs = app.logs
        if delay and (logs / "app.log.1").exists():
            with open(logs / "app.log.1", "rb") as plain, opener(logs / f"app.log.2{suffix}", "wb") as packed:
                packed.write(plain.read())
            os.remove(logs / "app.log.1")
        if delay:
            os.rename(logs / "app.log", logs / "app.log.1")
        else:
            with open(logs / "app.log", "rb") as plain, opener(logs / f"app.log.1{suffix}", "wb") as packed:
                packed.write(plain.read())
            os.remove(logs / "app.log")

    app.write(60)
    run(app.logs, path, api)
    rotate(delay=False)  # compress: app.log -> app.log.1.gz
    fresh = app.write(5)
    compressed = run(app.logs, path, api)
    # the compressed file is decompressed up to the offset and found read to its end: nothing scanned
    assert (compressed.scan.files_continued, compressed.scan.bytes_read) == (1, fresh)
    assert compressed.progress.ids_in_logs == 5
    assert queued(path) == set(app.written) == rescanned(app.logs)

    rotate(delay=True)  # delaycompress: app.log -> app.log.1
    app.write(6)
    run(app.logs, path, api)
    app.write(2, "app.log")
    rotate(delay=True)  # app.log.1 -> app.log.2.gz, app.log -> app.log.1
    app.write(3)
    delayed = run(app.logs, path, api)
    assert delayed.progress.ids_in_logs == 5  # the 2 written to app.log (now app.log.1) and 3 in the new app.log
    assert queued(path) == set(app.written) == rescanned(app.logs)
    assert run(app.logs, path, api).scan.bytes_read == 0


def test_a_file_whose_first_bytes_changed_is_read_from_0(tmp_path, api):
    app, path = App(tmp_path / "logs"), tmp_path / "warehouse.duckdb"
    app.write(30)
    run(app.logs, path, api)
    log = app.logs / "app.log"
    text = log.read_bytes()
    with open(log, "r+b") as same_inode:  # another head, same size: a rewrite in place
        same_inode.write(b"X" + text[1:])
    summary = run(app.logs, path, api)
    assert (summary.scan.files_continued, summary.scan.bytes_read) == (0, len(text))


def test_a_file_smaller_than_the_fingerprint_is_fingerprinted_on_what_it_has_and_continued_once_grown(tmp_path, api):
    app, path = App(tmp_path / "logs"), tmp_path / "warehouse.duckdb"
    small = app.write(2)
    assert small < FINGERPRINT_BYTES
    run(app.logs, path, api)
    assert read(path, "select head_bytes from log_sources") == [(small,)]
    appended = app.write(30)
    grown = run(app.logs, path, api)
    assert (grown.scan.files_continued, grown.scan.bytes_read, grown.progress.ids_in_logs) == (1, appended, 30)
    assert read(path, "select head_bytes from log_sources") == [(FINGERPRINT_BYTES,)]
    assert queued(path) == set(app.written)


def test_stdin_is_read_whole_every_time(tmp_path, api, monkeypatch):
    app, path = App(tmp_path / "logs"), tmp_path / "warehouse.duckdb"
    app.write(10)
    text = (app.logs / "app.log").read_bytes()
    for _ in range(2):
        result = CliRunner().invoke(cli, ["ingest", "-", "--warehouse", str(path), "--base-url", api, "--json"],
                                    input=text, env={"OPENROUTER_API_KEY": KEY})
        summary = json.loads(result.stdout)
        assert (summary["ids_in_logs"], summary["bytes_read"]) == (10, len(text))
    assert read(path, "select count(*) from log_sources") == [(0,)]


def test_rescan_reads_everything_again_and_since_reads_on_without_recording(tmp_path, api):
    app, path = App(tmp_path / "logs"), tmp_path / "warehouse.duckdb"
    size = app.write(40)
    run(app.logs, path, api)
    rescan = run(app.logs, path, api, rescan=True)
    assert (rescan.scan.files_read, rescan.scan.bytes_read, rescan.progress.ids_in_logs) == (1, size, 40)

    appended = app.write(5)
    state = read(path, "select read_bytes from log_sources")
    windowed = run(app.logs, path, api, since=datetime(2020, 1, 1, tzinfo=timezone.utc))
    assert (windowed.scan.bytes_read, windowed.progress.ids_in_logs) == (appended, 5)
    assert read(path, "select read_bytes from log_sources") == state  # not recorded: the window queues only its ids
    assert run(app.logs, path, api).scan.bytes_read == appended


def test_ids_new_shows_what_the_next_ingest_would_read_and_status_and_forget_sources_manage_the_state(tmp_path, api):
    app, path = App(tmp_path / "logs"), tmp_path / "warehouse.duckdb"
    app.write(10)
    app.write(5, "other.log")
    cli_run = CliRunner().invoke
    assert cli_run(cli, ["ids", "--new", "--count", "--warehouse", str(path), str(app.logs)]).stdout == "15\n"
    run(app.logs, path, api)
    app.write(3)
    new = cli_run(cli, ["ids", "--new", "--warehouse", str(path), str(app.logs)])
    assert new.stdout.split() == app.written[-3:]
    assert cli_run(cli, ["ids", "--count", str(app.logs)]).stdout == "18\n"  # without --new: everything

    status = cli_run(cli, ["status", "--warehouse", str(path)])
    assert "log files tracked: 2" in status.stdout
    assert f"{app.logs / 'other.log'}: " in status.stdout
    tracked = json.loads(cli_run(cli, ["status", "--json", "--warehouse", str(path)]).stdout)["sources"]
    assert {source["path"]: source["read_lines"] for source in tracked} == {
        str(app.logs / "app.log"): 10, str(app.logs / "other.log"): 5}

    forgot = cli_run(cli, ["forget-sources", str(app.logs / "other*"), "--warehouse", str(path)])
    assert forgot.exit_code == 0 and forgot.stdout.startswith("forgot 1 log files")
    summary = run(app.logs, path, api)
    assert (summary.scan.files_continued, summary.scan.files_read, summary.progress.ids_in_logs) == (1, 2, 3 + 5)
    assert cli_run(cli, ["forget-sources", "--warehouse", str(path)]).stdout.startswith("forgot 2 log files")
    assert run(app.logs, path, api).progress.ids_in_logs == 18


def test_the_state_works_on_every_backend(tmp_path, api, target):
    app = App(tmp_path / "logs")
    app.write(30)
    run(app.logs, target, api)
    app.write(4)
    os.rename(app.logs / "app.log", app.logs / "app.log.1")
    app.write(6)
    summary = run(app.logs, target, api)
    assert (summary.scan.files_continued, summary.progress.ids_in_logs) == (1, 10)
    assert queued(target) == set(app.written) == rescanned(app.logs)
    assert len(warehouse.source_states(target.location)) == 2
    assert warehouse.forget_sources(target.location, pattern=str(app.logs / "app.log.1")) == 1
    assert run(app.logs, target, api).progress.ids_in_logs == 34


def test_kill_9_at_random_points_of_a_scan_then_a_rerun_reads_each_file_at_most_once_more(tmp_path, api):
    """A state is committed only with the ids found up to its offset: after a SIGKILL, every file
    recorded has all its ids queued, and the rerun reads exactly the files not recorded, once. The
    child commits each file's state as soon as it is read (STAGE_COMMIT_S 0), so that kills land
    between many commits; where they land is printed with -s."""
    logs = tmp_path / "logs"
    logs.mkdir()
    ids = iter(itertools.cycle(DATASET.ids))
    filler = "2026-08-01T00:00:00Z DEBUG cache hit key=user:4411 bytes=5120 path=/v1/chat/completions\n" * 1200
    written: dict[str, set[str]] = {}
    for number in range(40):  # 40 files of ~2.6 MB, 25 ids each
        name = f"app-{number:02d}.log"
        chosen = [next(ids) for _ in range(25)]
        written[name] = set(chosen)
        (logs / name).write_text("".join(f"{filler}INFO gen_id={generation_id}\n" for generation_id in chosen))
    sizes = {name: (logs / name).stat().st_size for name in written}
    rng = random.Random(19)
    for attempt in range(3):
        path = tmp_path / f"warehouse-{attempt}.duckdb"
        env = {**os.environ, "OPENROUTER_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
        script = "from pipeline import config\nconfig.STAGE_COMMIT_S = 0.0\n" + INGEST_SCRIPT
        child = subprocess.Popen([sys.executable, "-c", script, str(logs), str(path), api, "", ""],
                                 cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "opening"
        time.sleep(rng.uniform(0.0, 0.6))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)

        recorded = {state.path: state.read_bytes for state in warehouse.source_states(path)}
        queue = queued(path) if recorded else set()
        for file, read_bytes in recorded.items():
            name = Path(file).name
            assert read_bytes == sizes[name]
            assert written[name] <= queue, f"{name} recorded without all its ids queued"
        print("recorded", len(recorded), "queued", len(queue))
        rerun = run(logs, path, api)
        assert rerun.scan.files_unchanged == len(recorded)
        assert rerun.scan.bytes_read == sum(size for name, size in sizes.items() if str(logs / name) not in recorded)
        assert queued(path) == set().union(*written.values())
        assert run(logs, path, api).scan.bytes_read == 0


def test_each_shard_keeps_its_own_record_and_an_unsharded_run_its_own(tmp_path, api):
    """A shard's runs queue only its ids, so its record says nothing of the others': each scope reads
    a file once, and `ids --new --shard` answers for that shard."""
    app, path = App(tmp_path / "logs"), tmp_path / "warehouse.duckdb"
    app.write(60)
    first, second = (run(app.logs, path, api, shard=(index, 2)) for index in (0, 1))
    assert first.scan.files_read == second.scan.files_read == 1
    assert first.progress.ids_new + second.progress.ids_new == 60 and first.progress.ids_new not in (0, 60)
    assert run(app.logs, path, api, shard=(0, 2)).scan.files_unchanged == 1
    assert sorted(read(path, "select scope from log_sources")) == [("1/2",), ("2/2",)]
    app.write(4)
    new_for_shard = CliRunner().invoke(cli, ["ids", "--new", "--count", "--shard", "2/2", "--warehouse", str(path),
                                             str(app.logs)])
    assert new_for_shard.stdout == "4\n"  # every new id is found; the shard's ingest queues its own of them
    unsharded = run(app.logs, path, api)
    assert (unsharded.scan.files_read, unsharded.scan.files_continued, unsharded.progress.ids_in_logs) == (1, 0, 64)
    assert queued(path) == set(app.written)

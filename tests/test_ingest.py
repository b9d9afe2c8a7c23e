"""The whole line, logs -> queue -> fetch -> warehouse, against the fake API on real loopback HTTP.

What a nightly run promises: the warehouse ends equal to what the API serves, through transient
faults and 404 lag; a rerun fetches nothing; a run killed with SIGKILL anywhere is completed by the
next one without refetching what was committed; missing ids are `not_found` and re-checked an hour
later. The CLI options, exit codes, lock and key handling are in tests/test_cli_ingest.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from pipeline import warehouse
from pipeline.warehouse import duckdb_file, duckdb_writes
from pipeline.client import RetryPolicy
from pipeline.demo import write_demo_logs
from pipeline.fake_api import Dataset, Faults, start_server
from pipeline.ingest import IngestOptions, ingest


import lakes
from lakes import Target

ROOT = Path(__file__).resolve().parent.parent
# Not `sk-or-` shaped on purpose: what keeps the key out must not be a redaction of that prefix.
KEY = "ingest-tests-key-5d1f8e0b7a2c4693"
# Waits of milliseconds, and enough attempts that 20% faults never exhaust them (0.2^12).
FAST = RetryPolicy(max_attempts=12, backoff_initial_s=0.01, backoff_max_s=0.05)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# --- helpers shared with tests/test_cli_ingest.py ------------------------------------------------


def write_logs(dataset: Dataset, logs_dir: Path, *, extra_ids: Iterable[str] = ()) -> Path:
    """The dataset's ids in the log shapes the demo writes, plus `extra_ids` in one more file."""
    write_demo_logs(dataset, logs_dir)
    extra = "".join(f"2026-08-01T00:00:00Z WARN lookup later gen_id={generation_id}\n" for generation_id in extra_ids)
    if extra:
        (logs_dir / "api" / "lookups.log").write_text(extra)
    return logs_dir


def write_id_log(path: Path, ids: Iterable[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"2026-08-01T00:00:00Z INFO llm call ok gen_id={generation_id}\n" for generation_id in ids))
    return path


def options(logs: Path, warehouse_path: Path | Target, base_url: str, **changes: object) -> IngestOptions:
    if isinstance(warehouse_path, Target):
        changes.setdefault("data_path", warehouse_path.data_path)
        warehouse_path = warehouse_path.location
    settings: dict[str, object] = {"concurrency": 16, "batch_size": 200, "retry_policy": FAST, **changes}
    return IngestOptions(paths=(str(logs),), warehouse_path=warehouse_path, base_url=base_url,
                         **settings)  # type: ignore[arg-type]


def read(path: Path | Target, sql: str, parameters: Sequence[object] = ()) -> list[tuple]:
    """Rows of a query on a closed warehouse (a lake's through a reader, as reports read it)."""
    if isinstance(path, Target):
        return lakes.read(path, sql, list(parameters))
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, list(parameters)).fetchall()
    finally:
        con.close()


def epoch_us(created_at: str) -> int:
    return (datetime.fromisoformat(created_at) - EPOCH) // timedelta(microseconds=1)


def assert_warehouse_holds(path: Path, dataset: Dataset, ids: Iterable[str] | None = None) -> None:
    """`generations` holds exactly these ids (all the dataset's by default), each with the API's
    total_cost and created_at to the microsecond."""
    wanted = list(dataset.ids if ids is None else ids)
    expected = {}
    for generation_id in wanted:
        record = dataset.record(generation_id)
        assert record is not None
        expected[generation_id] = (record["total_cost"], epoch_us(record["created_at"]))
    rows = read(path, "select id, total_cost, epoch_us(created_at) from generations")
    assert len(rows) == len(expected)
    assert {generation_id: (cost, created_us) for generation_id, cost, created_us in rows} == expected


def queue_counts(path: Path) -> dict[str, int]:
    return dict(read(path, "select status, count(*) from ingest_queue group by status"))


def assert_key_nowhere(path: Path | Target, *keys: str) -> None:
    """No row of any table (every column, JSON and options included) contains a key, nor any
    local file of the warehouse (a lake's catalog and Parquet files included)."""
    tables = [name for (name,) in read(path, "select table_name from duckdb_tables() "
                                             "where database_name = current_database()")]
    assert {"generations", "provider_responses", "ingest_runs"} <= set(tables)
    assert {"ingest_queue"} <= set(tables) or {"ingest_queue_base", "ingest_queue_outcomes"} <= set(tables)  # a lake's
    files = [path] if isinstance(path, Path) else [f for f in (path.files or Path("/nonexistent")).rglob("*") if f.is_file()]
    for key in keys:
        for table in tables:
            found = read(path, f'select count(*) from "{table}" as r where contains(cast(r as varchar), ?)', [key])
            assert found == [(0,)], f"the secret is in {table}"
        for file in files:
            assert key.encode() not in file.read_bytes(), file


# --- end to end ----------------------------------------------------------------------------------


def test_through_20_percent_faults_and_404_lag_the_warehouse_equals_the_api_and_a_rerun_fetches_nothing(
        tmp_path, target):
    dataset = Dataset(1000, seed=11)
    logs = write_logs(dataset, tmp_path / "logs")
    path = target
    with start_server(dataset, api_key=KEY, faults=Faults.transient(0.2, not_found_first=2, seed=5)) as server:
        first = ingest(options(logs, path, server.base_url), api_key=KEY)
        after_first = server.snapshot()
        second = ingest(options(logs, path, server.base_url), api_key=KEY)
        after_second = server.snapshot()
        rescan = ingest(options(logs, path, server.base_url, rescan=True), api_key=KEY)

    assert (first.outcome, first.exit_code) == ("ok", 0)
    assert (first.progress.ids_in_logs, first.progress.ids_due, first.progress.loaded) == (1000, 1000, 1000)
    # the faults really happened: every kind, and two 404s per id before it appeared
    assert set(after_first.by_fault) >= {"429", "500", "502_html", "524_html", "529", "drop", "truncated", "slow"}
    assert after_first.by_fault["not_found_lag"] == 2 * 1000
    assert first.progress.retries > 2000
    # every id fetched successfully exactly once, and stored exactly as served
    assert after_first.ok_by_id == Counter(dataset.ids)
    assert_warehouse_holds(path, dataset)
    assert queue_counts(path) == {"loaded": 1000}

    assert (second.outcome, second.exit_code) == ("ok", 0)
    # the logs, read whole by the first run, are not even opened
    assert (second.progress.ids_in_logs, second.progress.ids_new, second.progress.ids_due) == (0, 0, 0)
    assert (second.scan.files_read, second.scan.files_unchanged) == (0, first.scan.files_read)
    assert second.due_by_status == {}
    assert (rescan.scan.files_read, rescan.progress.ids_in_logs, rescan.progress.ids_new) == (first.scan.files_read, 1000, 0)
    assert second.progress.requests == 0
    assert after_second == after_first  # not one request reached the server
    assert_warehouse_holds(path, dataset)
    runs = read(path, "select outcome, ids_due, loaded, requests from ingest_runs order by started_at")
    assert runs == [("ok", 1000, 1000, first.progress.requests), ("ok", 0, 0, 0), ("ok", 0, 0, 0)]
    assert_key_nowhere(path, KEY, *lakes.secrets_of(target))


def test_missing_ids_end_not_found_and_are_rechecked_an_hour_later_until_a_week_old(tmp_path):
    now = datetime.now(timezone.utc)
    dataset = Dataset(200, seed=3, end=now, days=2)  # recent ids: a not_found one is re-checked
    missing = dataset.missing_ids(5)
    logs = write_logs(dataset, tmp_path / "logs", extra_ids=missing)
    path = tmp_path / "warehouse.duckdb"
    with start_server(dataset, api_key=KEY, faults=Faults(not_found_first=1)) as server:
        first = ingest(options(logs, path, server.base_url), api_key=KEY)
        after_first = server.snapshot()
        right_away = ingest(options(logs, path, server.base_url), api_key=KEY)
        after_right_away = server.snapshot()

        assert (first.outcome, first.exit_code) == ("ok", 0)  # known not found is not a failure
        assert (first.progress.loaded, first.progress.not_found, first.progress.failed) == (200, 5, 0)
        assert queue_counts(path) == {"loaded": 200, "not_found": 5}
        rows = read(path, "select generation_id, attempts, last_http_status, epoch_us(next_attempt_at) "
                          "from ingest_queue where status = 'not_found' order by generation_id")
        assert [row[:3] for row in rows] == [(generation_id, 4, 404) for generation_id in sorted(missing)]
        recheck_at = [EPOCH + timedelta(microseconds=us) for *_, us in rows]
        finished = datetime.now(timezone.utc)
        assert all(now + timedelta(hours=1) <= at <= finished + timedelta(hours=1) for at in recheck_at)

        # a rerun right away asks nothing: the missing ids are not due for an hour
        assert right_away.progress.ids_due == 0
        assert after_right_away == after_first

        con = duckdb_file.connect(path)
        try:
            def due(at: datetime) -> list[str]:
                return sorted(generation_id for chunk in duckdb_writes.due_ids(con, now=at) for generation_id in chunk)

            assert due(datetime.now(timezone.utc)) == []
            assert due(max(recheck_at) + timedelta(seconds=1)) == sorted(missing)
            assert due(now + timedelta(days=8)) == []  # a week old: given up
            # the hour passes (the queue is the clock ingest reads): the next run asks again
            con.execute("update ingest_queue set next_attempt_at = now() - interval 1 second "
                        "where status = 'not_found'")
        finally:
            con.close()
        later = ingest(options(logs, path, server.base_url), api_key=KEY)
        after_later = server.snapshot()

    assert later.due_by_status == {"not_found": 5}
    assert (later.outcome, later.progress.not_found) == ("ok", 5)
    assert after_later.by_status[404] - after_first.by_status[404] == 5 * 4
    assert after_later.ok_by_id == after_first.ok_by_id
    assert_warehouse_holds(path, dataset)


# --- kill -9 -------------------------------------------------------------------------------------

# One ingest in a child process, printing where it is: "opening", then "progress <due> <done>" at
# every staged chunk and every batch handed to the writer (`done` counts committed results).
INGEST_SCRIPT = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from pipeline.client import RetryPolicy
    from pipeline.ingest import IngestOptions, ingest
    from pipeline.config import check_warehouse_path, parse_shard

    logs, warehouse, base_url, data_path, shard = (sys.argv[1:] + ["", ""])[:5]
    options = IngestOptions(
        paths=(logs,), warehouse_path=check_warehouse_path(warehouse), base_url=base_url, concurrency=4,
        batch_size=50, retry_policy=RetryPolicy(max_attempts=12, backoff_initial_s=0.01, backoff_max_s=0.05),
        data_path=data_path or None, shard=parse_shard(shard) if shard else None)
    print("opening", flush=True)
    summary = ingest(options, api_key=os.environ["OPENROUTER_API_KEY"],
                     on_progress=lambda p: print("progress", p.ids_due, p.done, flush=True))
    print("finished", summary.outcome, flush=True)
""")


def start_ingest(logs: Path, path: Path | Target, base_url: str, shard: str = "") -> subprocess.Popen[str]:
    env = {**os.environ, "OPENROUTER_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    location, data_path = (path.location, path.data_path or "") if isinstance(path, Target) else (path, "")
    return subprocess.Popen([sys.executable, "-c", INGEST_SCRIPT, str(logs), str(location), base_url, data_path, shard],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


KillPoint = Callable[[list[str]], bool]  # on a line the child printed (split): kill it now?


def opening(words: list[str]) -> bool:
    return words == ["opening"]


def staged(words: list[str]) -> bool:
    return words[0] == "progress" and int(words[1]) > 0 and int(words[2]) == 0


def committed(share: float) -> KillPoint:
    return lambda words: words[0] == "progress" and int(words[2]) >= share * int(words[1]) > 0


def run_ingest(logs: Path, path: Path | Target, base_url: str, kill_at: KillPoint | None = None,
               shard: str = "") -> tuple[int, list[str]]:
    """Run one ingest; SIGKILL it on the first line `kill_at` accepts. Returns (exit status, lines)."""
    child = start_ingest(logs, path, base_url, shard)
    lines = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line.strip())
            if kill_at is not None and kill_at(line.split()):
                child.send_signal(signal.SIGKILL)
                break
    finally:
        returncode = child.wait(timeout=60)
    return returncode, lines


def _exists(target: Target) -> bool:
    try:
        read(target, "select 1")
    except warehouse.WarehouseNotFoundError:
        return False
    return True


def loaded_ids(path: Path | Target) -> set[str]:
    rows = read(path, "select generation_id from ingest_queue where status = 'loaded'")
    return {generation_id for (generation_id,) in rows}


def test_kill_9_while_opening_staging_fetching_and_near_the_end_then_a_rerun_ends_exact(tmp_path, target):
    dataset = Dataset(1000, seed=21)
    logs = write_logs(dataset, tmp_path / "logs")
    path = target
    # A few faults and a little latency: ~1 s of fetching, so each kill lands inside a run.
    faults = Faults.transient(0.1, seed=2, latency_ms=2)
    kill_points = [("opening", opening), ("staged", staged), ("a third committed", committed(0.3)),
                   ("most committed", committed(0.8))]
    fetched_by_kill: list[tuple[str, set[str], Counter[str]]] = []
    with start_server(dataset, api_key=KEY, faults=faults) as server:
        for name, kill_at in kill_points:
            returncode, lines = run_ingest(logs, path, server.base_url, kill_at)
            assert returncode == -signal.SIGKILL, (name, lines)
            loaded = loaded_ids(path) if _exists(path) else set()
            fetched_by_kill.append((name, loaded, server.snapshot().ok_by_id))
        returncode, lines = run_ingest(logs, path, server.base_url)
        final = server.snapshot()

    assert (returncode, lines[-1]) == (0, "finished ok")
    assert_warehouse_holds(path, dataset)
    assert queue_counts(path) == {"loaded": 1000}
    # the kills landed mid-fetch: part of the ids committed, and those never fetched again
    after_a_third, after_most = fetched_by_kill[2][1], fetched_by_kill[3][1]
    assert 0 < len(after_a_third) < len(after_most) < 1000
    for name, loaded, ok_by_id in fetched_by_kill:
        assert {generation_id: final.ok_by_id[generation_id] for generation_id in loaded} == {
            generation_id: ok_by_id[generation_id] for generation_id in loaded
        }, f"ids committed before the kill while {name} were fetched again"
    # every id fetched; twice at most those a kill caught uncommitted: a batch being written, one
    # being collected, and what the fetcher's 4 slots x 8 workers and its result queue held
    assert set(final.ok_by_id) == set(dataset.ids)
    uncommitted_at_most = 50 + 50 + 4 * 8 + 4
    assert sum(final.ok_by_id.values()) - 1000 <= len(kill_points) * uncommitted_at_most
    runs = read(path, "select outcome from ingest_runs order by started_at")
    assert runs[-1] == ("ok",) and runs.count((None,)) >= 3  # the killed runs never finished


# --- the demo ------------------------------------------------------------------------------------


def test_the_demo_runs_twice_in_a_row_each_time_ending_with_exactly_its_own_logs_ids(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from pipeline import demo
    from pipeline.cli import cli
    from pipeline.logs import find_ids

    real_run_demo = demo.run_demo
    monkeypatch.setattr(demo, "run_demo", lambda *args, **kwargs: real_run_demo(*args, size=500, **kwargs))
    for _ in range(2):
        result = CliRunner().invoke(cli, ["demo", "--data-dir", str(tmp_path), "--warehouse", str(tmp_path / "demo.duckdb")])
        assert result.exit_code == 0, result.output
        assert "Spend by model" in result.stdout and "Latency by provider" in result.stdout
        assert " ok in " in result.stderr
        logged = {generation_id for generation_id, _ in find_ids([str(tmp_path / "demo")])}
        assert len(logged) == 500
        stored = read(tmp_path / "demo.duckdb", "select id from generations")
        assert {generation_id for (generation_id,) in stored} == logged
        assert queue_counts(tmp_path / "demo.duckdb") == {"loaded": 500}

"""`orusage ingest` and `orusage status` through click's CliRunner, against the fake API on loopback.

Exit codes (0 ok, 1 some ids failed, 2 usage or input, 3 key refused), the one-line messages,
what each option changes, the single-writer lock, and the key: it never reaches the output or
the warehouse. The CLI takes no retry policy, so `ingest` is wrapped to use millisecond waits;
everything else is the command as users run it.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_ingest import (
    FAST,
    KEY,
    assert_key_nowhere,
    assert_warehouse_holds,
    options,
    queue_counts,
    read,
    start_ingest,
    write_id_log,
    write_logs,
)

from pipeline import ingest as ingest_module
from pipeline.cli import cli
from pipeline.client import RetryPolicy
from pipeline.fake_api import Dataset, Faults, start_server
from pipeline.ingest import ingest
from pipeline.logs import id_timestamp


@pytest.fixture
def orusage(monkeypatch):
    """Run `orusage ARGS...` in-process with OPENROUTER_API_KEY set (None unsets it)."""
    real_ingest = ingest_module.ingest
    policy = {"now": FAST}

    def ingest_with_short_waits(options: ingest_module.IngestOptions, **kwargs: object) -> ingest_module.RunSummary:
        return real_ingest(dataclasses.replace(options, retry_policy=policy["now"]), **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_module, "ingest", ingest_with_short_waits)
    for variable in ("OPENROUTER_BASE_URL", "ORUSAGE_WAREHOUSE"):
        monkeypatch.delenv(variable, raising=False)

    def run(*args: object, key: str | None = KEY, retry_policy: RetryPolicy = FAST) -> Result:
        policy["now"] = retry_policy
        result = CliRunner().invoke(cli, [str(arg) for arg in args], env={"OPENROUTER_API_KEY": key})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a traceback at the CLI is a bug: fail with it
        return result

    return run


def dataset_with_logs(tmp_path: Path, size: int, seed: int) -> tuple[Dataset, Path, Path]:
    dataset = Dataset(size, seed=seed)
    return dataset, write_logs(dataset, tmp_path / "logs"), tmp_path / "warehouse.duckdb"


def run_options(path: Path) -> dict:
    ((options_json,),) = read(path, "select options from ingest_runs order by started_at desc limit 1")
    return json.loads(options_json)


# --- the key -------------------------------------------------------------------------------------


def test_without_openrouter_api_key_ingest_exits_2_before_any_work(orusage, tmp_path):
    dataset, logs, path = dataset_with_logs(tmp_path, 20, seed=1)
    with start_server(dataset, api_key=KEY) as server:
        result = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url, key=None)
        assert server.snapshot().requests == 0
    assert result.exit_code == 2
    assert "OPENROUTER_API_KEY is not set" in result.stderr
    assert not path.exists()  # not even the warehouse was created


@pytest.mark.parametrize("status", [401, 402])
def test_a_key_refused_mid_run_exits_3_with_one_line_naming_the_variable_and_keeps_the_rows_loaded(
    orusage, tmp_path, status
):
    dataset, logs, path = dataset_with_logs(tmp_path, 400, seed=2)
    with start_server(dataset, api_key=KEY, faults=Faults(fatal_after=150, fatal_status=status)) as server:
        result = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url,
                         "--batch-size", 20, "--concurrency", 4)
        stats = server.snapshot()

    assert result.exit_code == 3
    assert "Traceback" not in result.output and KEY not in result.output
    naming = [line for line in result.stderr.splitlines() if "OPENROUTER_API_KEY" in line]
    assert len(naming) == 1 and f"HTTP {status}" in naming[0]
    assert stats.by_fault["fatal"] <= 4  # stopped at once: at most the requests already on the wire
    loaded = [generation_id for (generation_id,) in read(path, "select id from generations")]
    assert 0 < len(loaded) <= 150
    assert set(loaded) <= set(stats.ok_by_id)
    assert_warehouse_holds(path, dataset, loaded)
    # the ids not loaded stay pending for the next run: a refused key is not the ids' failure
    assert queue_counts(path) == {"loaded": len(loaded), "pending": 400 - len(loaded)}
    ((outcome, error),) = read(path, "select outcome, error from ingest_runs")
    assert outcome == "key_refused" and "OPENROUTER_API_KEY" in error
    assert_key_nowhere(path, KEY)


def test_the_key_appears_nowhere_in_the_output_or_the_warehouse(orusage, tmp_path):
    dataset, logs, path = dataset_with_logs(tmp_path, 100, seed=3)
    write_id_log(logs / "missing.log", dataset.missing_ids(15))
    wrong_key = "ingest-tests-wrong-key-93ab51c07e"
    outputs = []
    faults = Faults(rate_500=0.3, not_found_first=1, seed=4)
    with start_server(dataset, api_key=KEY, faults=faults) as server:
        # loaded, not found and failed ids, then a refused key, then every way of reading the result
        mixed = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url, "--json",
                        retry_policy=RetryPolicy(max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.05))
        refused = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url, key=wrong_key)
        outputs += [mixed, refused]
    outputs += [orusage("status", "--warehouse", path), orusage("status", "--warehouse", path, "--json")]

    summary = json.loads(mixed.stdout)
    assert summary["loaded"] > 0 and summary["not_found"] > 0 and summary["failed"] > 0
    assert refused.exit_code == 3
    for result in outputs:
        assert KEY not in result.output and wrong_key not in result.output
    assert_key_nowhere(path, KEY, wrong_key)


# --- the lock ------------------------------------------------------------------------------------


def test_a_second_concurrent_ingest_is_refused_in_one_line_and_with_lock_timeout_waits_its_turn(orusage, tmp_path):
    dataset, logs, path = dataset_with_logs(tmp_path, 100, seed=5)
    with start_server(dataset, api_key=KEY, faults=Faults(latency_ms=60_000)) as stuck, \
            start_server(dataset, api_key=KEY) as server:
        holder = start_ingest(logs, path, stuck.base_url)  # an ingest stuck on its first requests
        try:
            assert holder.stdout is not None
            while not (line := holder.stdout.readline()).startswith("progress 100 "):
                assert line, "the first ingest ended early"
            refused = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url)
            threading.Timer(0.5, holder.send_signal, [signal.SIGKILL]).start()
            waited = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url,
                             "--lock-timeout", 60, "--json")
        finally:
            holder.kill()
            holder.wait(timeout=60)
        stats = server.snapshot()

    assert refused.exit_code == 2
    assert "Traceback" not in refused.output
    assert refused.stdout == ""
    (message,) = refused.stderr.strip().splitlines()
    assert f"is being loaded by another ingest: PID {holder.pid} (" in message

    assert holder.returncode == -signal.SIGKILL  # the waiting ingest ran once the holder was gone
    assert waited.exit_code == 0, waited.output
    assert json.loads(waited.stdout)["loaded"] == 100
    assert stats.ok_by_id == Counter(dataset.ids)
    assert_warehouse_holds(path, dataset)


# --- dry run -------------------------------------------------------------------------------------


def test_dry_run_needs_no_key_sends_no_request_changes_no_queue_row_and_counts_what_is_due(orusage, tmp_path):
    dataset = Dataset(300, seed=6)
    path = tmp_path / "warehouse.duckdb"
    old_logs = write_id_log(tmp_path / "logs" / "old.log", [*dataset.ids[:200], *dataset.missing_ids(2)])
    new_logs = write_id_log(tmp_path / "logs" / "new.log", dataset.ids[200:])
    queue_sql = "select generation_id, status, attempts, cast(updated_at as varchar) from ingest_queue order by 1"
    with start_server(dataset, api_key=KEY) as server:
        ingest(options(old_logs, path, server.base_url), api_key=KEY)
        before, queue_before = server.snapshot(), read(path, queue_sql)
        dry = orusage("ingest", tmp_path / "logs", "--warehouse", path, "--base-url", server.base_url,
                      "--dry-run", key=None)
        dry_json = orusage("ingest", tmp_path / "logs", "--warehouse", path, "--base-url", server.base_url,
                           "--dry-run", "--json", "--refresh", key=None)
        after = server.snapshot()

    assert dry.exit_code == 0, dry.output
    assert "would fetch 100 ids: 100 pending" in dry.stderr
    assert dry_json.exit_code == 0
    summary = json.loads(dry_json.stdout)
    # old.log, read whole by the first run, is not opened again; new.log is read, but not recorded
    assert (summary["outcome"], summary["ids_in_logs"], summary["ids_new"]) == ("dry_run", 100, 100)
    assert (summary["files_read"], summary["files_unchanged"]) == (1, 1)
    assert read(path, "select path from log_sources") == [(str(old_logs),)]
    assert summary["due_by_status"] == {"loaded": 200, "pending": 100}  # with --refresh, the loaded too
    assert summary["requests"] == 0
    assert after == before
    assert read(path, queue_sql) == queue_before  # the 100 new ids were not even staged
    assert read(path, "select outcome from ingest_runs order by started_at") == [("ok",), ("dry_run",), ("dry_run",)]


# --- options -------------------------------------------------------------------------------------


def test_json_prints_one_object_with_the_counts_and_quiet_prints_nothing_on_stderr(orusage, tmp_path):
    dataset, logs, path = dataset_with_logs(tmp_path, 120, seed=7)
    with start_server(dataset, api_key=KEY) as server:
        quiet = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url, "--json", "--quiet")
        talkative = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url)

    assert quiet.exit_code == 0
    assert quiet.stderr == ""
    assert quiet.stdout.count("\n") == 1
    summary = json.loads(quiet.stdout)
    assert {name: summary[name] for name in ("outcome", "exit_code", "ids_in_logs", "ids_due", "loaded",
                                             "not_found", "failed")} == {
        "outcome": "ok", "exit_code": 0, "ids_in_logs": 120, "ids_due": 120, "loaded": 120, "not_found": 0,
        "failed": 0,
    }  # fmt: skip
    assert talkative.exit_code == 0 and talkative.stdout == ""
    assert "fetched 0 of 0 due" in talkative.stderr  # the summary goes to stderr unless --quiet


def test_since_and_until_restrict_the_ids_fetched_to_those_created_in_the_window(orusage, tmp_path):
    dataset, logs, path = dataset_with_logs(tmp_path, 300, seed=8)  # 2026-08-11 to 2026-09-01
    start, end = datetime(2026, 8, 20, tzinfo=timezone.utc), datetime(2026, 8, 23, tzinfo=timezone.utc)
    window = [generation_id for generation_id in dataset.ids if start <= id_timestamp(generation_id) < end]
    assert 0 < len(window) < 300
    with start_server(dataset, api_key=KEY) as server:
        result = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url,
                         "--since", "2026-08-20", "--until", "2026-08-22")  # --until includes that day
        stats = server.snapshot()
    assert result.exit_code == 0, result.output
    assert stats.ok_by_id == Counter(window)
    assert_warehouse_holds(path, dataset, window)


def test_refresh_fetches_loaded_ids_again(orusage, tmp_path):
    dataset, logs, path = dataset_with_logs(tmp_path, 80, seed=9)
    with start_server(dataset, api_key=KEY) as server:
        first = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url, "--json")
        refresh = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url, "--json", "--refresh")
        stats = server.snapshot()
    assert (first.exit_code, refresh.exit_code) == (0, 0)
    assert json.loads(refresh.stdout)["due_by_status"] == {"loaded": 80}
    assert stats.ok_by_id == Counter({generation_id: 2 for generation_id in dataset.ids})
    assert_warehouse_holds(path, dataset)
    assert run_options(path)["refresh"] is True


def test_concurrency_max_rps_and_batch_size_reach_the_run(orusage, tmp_path):
    dataset, logs, path = dataset_with_logs(tmp_path, 60, seed=10)
    with start_server(dataset, api_key=KEY) as server:
        result = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url,
                         "--concurrency", 3, "--max-rps", 500, "--batch-size", 7)
        bad = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url, "--concurrency", 0)
    assert result.exit_code == 0, result.output
    recorded = run_options(path)
    assert (recorded["concurrency"], recorded["max_rps"], recorded["batch_size"]) == (3, 500, 7)
    assert_warehouse_holds(path, dataset)
    assert bad.exit_code == 2 and "--concurrency" in bad.stderr


# --- failures and status -------------------------------------------------------------------------


def test_ids_that_keep_failing_exit_1_stay_failed_with_their_error_and_status_groups_them(orusage, tmp_path):
    dataset, logs, path = dataset_with_logs(tmp_path, 5, seed=11)
    two_attempts = RetryPolicy(max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.05)
    with start_server(dataset, api_key=KEY, faults=Faults(rate_500=1.0)) as server:
        result = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url, retry_policy=two_attempts)
        stats = server.snapshot()

    assert result.exit_code == 1
    assert "5 failed" in result.stderr and "the next run retries them" in result.stderr
    assert stats.by_status == Counter({500: 10})
    rows = read(path, "select status, attempts, last_http_status, last_error from ingest_queue")
    assert len(rows) == 5
    assert {(status, attempts, http_status) for status, attempts, http_status, _ in rows} == {("failed", 2, 500)}
    (error,) = {error for *_, error in rows}
    assert error.startswith("HTTP 500: ") and error.endswith("(after 2 attempts)")

    status = orusage("status", "--warehouse", path)
    assert status.exit_code == 0
    assert "queue: 5 failed" in status.stdout
    assert "failed ids by reason:" in status.stdout and f"       5  {error}" in status.stdout
    report = json.loads(orusage("status", "--warehouse", path, "--json").stdout)
    assert report["queue"] == {"failed": 5}
    assert report["failures"] == [{"reason": error, "ids": 5, "example_id": min(dataset.ids)}]
    assert report["runs"][0]["outcome"] == "some_failed"

    # the next run, the API healthy again, loads them
    with start_server(dataset, api_key=KEY) as server:
        retried = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url)
    assert retried.exit_code == 0
    assert queue_counts(path) == {"loaded": 5}
    assert_warehouse_holds(path, dataset)

"""What an adversarial probe broke, each pinned: writes through `query`, files that are not
warehouses, credentials in URLs, data read as markup, a server-side rate limit, an API that went
away, exit codes that hid failed ids, SIGTERM, and the small crashes and help texts."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import polars as pl
import pytest
from click.testing import CliRunner
from test_cli_ingest import dataset_with_logs, orusage  # noqa: F401 - the fixture
from test_ingest import FAST, KEY, ROOT, options, queue_counts, read, write_id_log

from pipeline import output, progress, warehouse
from pipeline.warehouse import duckdb_file, duckdb_writes
from pipeline.cli import cli
from pipeline.client import AdaptiveRate, APIUnreachableError, Failed, OpenRouterClient, RetryPolicy
from pipeline.fake_api import Dataset, Faults, start_server
from pipeline.ingest import Progress, ingest
from pipeline.normalize import normalize_bodies


def invoke(*args: object, env: dict | None = None, **kwargs: object):
    return CliRunner().invoke(cli, [str(a) for a in args], env={"ORUSAGE_WAREHOUSE": None, **(env or {})}, **kwargs)


@pytest.fixture
def loaded(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    dataset = Dataset(40, seed=2)
    con = duckdb_file.connect(path)
    duckdb_writes.upsert_batch(con, normalize_bodies([(i, dataset.body(i)) for i in dataset.ids]),
                           [warehouse.QueueUpdate(i, "loaded", 1, 200, None, None) for i in dataset.ids], run_id="t")
    con.close()
    return path


# --- security ----------------------------------------------------------------------------------


def test_query_cannot_write_any_file_even_under_explain_analyze(loaded: Path, tmp_path: Path):
    before = loaded.read_bytes()
    target = tmp_path / "pwned.csv"
    for sql in (f"EXPLAIN ANALYZE COPY (select 'pwned' as x) TO '{loaded}' (FORMAT csv)",
                f"EXPLAIN ANALYZE COPY (select 'pwned' as x) TO '{target}' (FORMAT csv)",
                "select * from read_csv('/etc/passwd')",
                "EXPLAIN ANALYZE select * from read_text('/etc/hostname')"):
        result = invoke("query", sql, "--warehouse", loaded)
        assert result.exit_code == 2, (sql, result.output)
        assert len(result.stderr.strip().splitlines()) == 1
    assert loaded.read_bytes() == before and not target.exists()
    assert invoke("query", "select count(*) as n from generations", "--warehouse", loaded, "-f", "csv").stdout == "n\n40\n"
    assert "neither write a file nor read another one" in invoke("query", "--help").stdout


def test_a_file_that_is_not_a_duckdb_warehouse_is_refused_in_one_line_before_duckdb_opens_it(tmp_path: Path):
    sqlite_file = tmp_path / "app.sqlite"
    sqlite3.connect(sqlite_file).execute("create table t (x)").connection.commit()
    foreign = tmp_path / "other.duckdb"
    import duckdb

    duckdb.connect(str(foreign)).execute("create table mine as select 1 as x").close()
    logs = write_id_log(tmp_path / "ids.log", Dataset(3, seed=1).ids)
    for args in (["status"], ["report", "spend"], ["query", "select 1"],
                 ["ingest", "--dry-run", logs]):
        result = invoke(*args, "--warehouse", sqlite_file)
        assert result.exit_code == 2 and "is not a DuckDB file" in result.stderr, args
        assert len(result.stderr.strip().splitlines()) == 1
    for args in (["status"], ["report", "spend"]):
        result = invoke(*args, "--warehouse", foreign)
        assert result.exit_code == 2 and "not an orusage warehouse" in result.stderr, args
    assert sqlite_file.read_bytes()[:15] == b"SQLite format 3"


def test_no_orusage_connection_may_load_an_extension_by_itself(loaded: Path):
    con = duckdb_file.connect(loaded, read_only=True)
    settings = dict(con.execute("select name, value from duckdb_settings() where name like 'auto%_known_extensions'").fetchall())
    con.close()
    assert settings == {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}


def test_credentials_in_the_base_url_are_refused_and_never_shown_or_stored(tmp_path: Path):
    logs = write_id_log(tmp_path / "ids.log", Dataset(3, seed=1).ids)
    path = tmp_path / "w.duckdb"
    result = invoke("ingest", logs, "--warehouse", path, "--base-url", "http://user:S3CRETPASS@127.0.0.1:9/api/v1",
                    env={"OPENROUTER_API_KEY": KEY})
    assert result.exit_code == 2 and "must not carry a user name or password" in result.stderr
    assert "S3CRETPASS" not in result.output and "Traceback" not in result.output
    assert not path.exists()
    with pytest.raises(ValueError, match="user name or password"):
        OpenRouterClient(KEY, base_url="https://u:p@openrouter.ai/api/v1")


@pytest.mark.parametrize("value", ["[bold red]hi[/bold red]", "[/]", ":smile:", "[link=http://x]y[/link]"])
def test_table_output_prints_data_literally(value: str):
    frame = pl.DataFrame({"external_user": [value], "generations": [1]})
    text = output.render(frame, fmt="table", title=f"title {value}")
    assert text.count(value) == 2  # the title and the cell, as they are


# --- the API's limits ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_adaptive_rate_finds_a_server_limit_and_ignores_random_429s():
    clock = Clock()
    rate = AdaptiveRate(clock=clock, sleep=clock.sleep)
    for n in range(3000):  # 2,000 answers a second, 6% of them 429 at random: no limit
        clock.now = n / 2000
        rate.answered(rate_limited=n % 17 == 0)
    assert rate.rps is None
    for n in range(8000):  # the same rate against a limit of 50 a second: 97.5% are 429s
        clock.now = 2 + n / 2000
        rate.answered(rate_limited=n % 40 != 0)
    assert rate.rps is not None and 40 <= rate.rps <= 50
    start = clock.now
    async def send_100() -> None:
        await asyncio.gather(*(rate.acquire() for _ in range(100)))

    asyncio.run(send_100())
    assert clock.now - start == pytest.approx(99 / rate.rps, rel=0.01)  # paced, no burst


def test_against_a_rate_limited_server_no_id_fails_and_429s_spend_no_retries(tmp_path: Path):
    dataset = Dataset(120, seed=8)
    logs = write_id_log(tmp_path / "ids.log", dataset.ids)
    policy = RetryPolicy(max_attempts=1, backoff_initial_s=0.01, backoff_max_s=0.05)
    with start_server(dataset, api_key=KEY, faults=Faults(max_rps=60)) as server:
        summary = ingest(dataclasses.replace(options(logs, tmp_path / "w.duckdb", server.base_url), retry_policy=policy),
                         api_key=KEY)
    assert summary.progress.loaded == 120 and summary.progress.failed == 0
    assert summary.progress.responses_429 > 0 and summary.progress.settled_rps is not None
    assert summary.as_dict()["settled_rps"] is not None


def _unreachable_client(clock: Clock, policy: RetryPolicy) -> OpenRouterClient:
    def refuse(request: httpx.Request) -> httpx.Response:
        clock.now += 0.5
        raise httpx.ConnectError("connection refused", request=request)

    return OpenRouterClient(KEY, base_url="http://127.0.0.1:9/api/v1", transport=httpx.MockTransport(refuse),
                            sleep=clock.sleep, clock=clock, policy=policy)


def test_a_long_outage_trips_the_breaker_instead_of_failing_every_id():
    clock = Clock()
    policy = RetryPolicy(max_attempts=1000, unreachable_after_s=30, unreachable_min_failures=20)
    client = _unreachable_client(clock, policy)
    with pytest.raises(APIUnreachableError, match="API unreachable since 1970-01-01 00:00:00 UTC"):
        asyncio.run(client.get_generation("gen-1771967973-0hZ8J5kY7qLMOKbPx0u3"))
    assert clock.now >= 30
    short = _unreachable_client(Clock(), RetryPolicy(max_attempts=3))  # a few failures: this id's own
    assert isinstance(asyncio.run(short.get_generation("gen-1771967973-0hZ8J5kY7qLMOKbPx0u3")), Failed)
    # once the whole client gets no answer, failures spend no attempt: the id is not failed, the run stops
    down = _unreachable_client(Clock(), RetryPolicy(max_attempts=3, unreachable_after_s=30, unreachable_min_failures=2))
    with pytest.raises(APIUnreachableError):
        asyncio.run(down.get_generation("gen-1771967973-0hZ8J5kY7qLMOKbPx0u3"))


def test_an_api_that_goes_away_mid_run_stops_it_with_exit_1_leaving_untried_ids_pending(orusage, tmp_path, monkeypatch):
    dataset, logs, path = dataset_with_logs(tmp_path, 400, seed=9)
    from pipeline import client as client_module

    quick = RetryPolicy(max_attempts=50, backoff_initial_s=0.01, backoff_max_s=0.05, unreachable_after_s=1,
                        unreachable_min_failures=5)
    calls = {"n": 0}
    real_attempt = client_module.OpenRouterClient._attempt

    async def attempt_then_outage(self, url, generation_id, *rest):
        calls["n"] += 1
        if calls["n"] > 100:  # the API is gone after 100 requests
            self.stats.transport_errors += 1
            await asyncio.sleep(0.01)
            return client_module._Verdict("retry", None, "connection refused")
        return await real_attempt(self, url, generation_id, *rest)

    monkeypatch.setattr(client_module.OpenRouterClient, "_attempt", attempt_then_outage)
    with start_server(dataset, api_key=KEY) as server:
        result = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url, "--batch-size", "50",
                         retry_policy=quick)
    assert result.exit_code == 1
    assert "API unreachable since" in result.stderr
    counts = queue_counts(path)
    assert counts.get("failed", 0) == 0 and counts["pending"] > 0 and counts["loaded"] <= 100
    ((outcome,),) = read(path, "select outcome from ingest_runs")
    assert outcome == "api_unreachable"


def test_exit_0_only_when_no_failed_id_waits_even_if_this_run_fetched_nothing(orusage, tmp_path):
    dataset, logs, path = dataset_with_logs(tmp_path, 30, seed=12)
    with start_server(dataset, api_key=KEY, faults=Faults(rate_500=1.0)) as server:
        first = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url,
                        retry_policy=RetryPolicy(max_attempts=1, backoff_initial_s=0, backoff_max_s=0))
        assert first.exit_code == 1
        con = duckdb_file.connect(path)
        con.execute("update ingest_queue set next_attempt_at = now() + interval 2 hour")
        con.close()
        second = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url)
    assert second.exit_code == 1, second.stderr
    assert "30 failed ids wait for a retry, the first due again at" in second.stderr


# --- signals and the run's row -------------------------------------------------------------------

SLOW_INGEST = """
import sys
from pipeline.cli import main
sys.argv = ["orusage", "ingest", sys.argv[1], "--warehouse", sys.argv[2], "--base-url", sys.argv[3],
            "--batch-size", "20", "--concurrency", "4"]
main()
"""


def _slow_run(tmp_path: Path, server_latency_ms: float = 20) -> tuple[subprocess.Popen, Path, object]:
    dataset = Dataset(4000, seed=14)
    logs = write_id_log(tmp_path / "ids.log", dataset.ids)
    path = tmp_path / "w.duckdb"
    server = start_server(dataset, api_key=KEY, faults=Faults(latency_ms=server_latency_ms))
    env = {**os.environ, "OPENROUTER_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", SLOW_INGEST, str(logs), str(path), server.base_url],
                             cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return child, path, server


def _wait_for_rows(child: subprocess.Popen, server) -> None:
    """Until the API has answered enough for a few batches (of 20) to commit, and a moment more:
    the writer holds the file, so a reader cannot look at the warehouse meanwhile."""
    deadline = time.monotonic() + 90
    while sum(server.snapshot().ok_by_id.values()) < 200:
        assert child.poll() is None and time.monotonic() < deadline, "the run ended, or never started"
        time.sleep(0.1)
    time.sleep(1.0)
    assert child.poll() is None, "the run ended too early"


def test_sigterm_ends_an_ingest_as_ctrl_c_does_and_its_row_tells_the_truth(tmp_path: Path):
    child, path, server = _slow_run(tmp_path)
    try:
        _wait_for_rows(child, server)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=60)
    finally:
        server.close()
    assert child.returncode == 1, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    ((outcome, loaded),) = read(path, "select outcome, loaded from ingest_runs")
    assert outcome == "interrupted"
    assert loaded == read(path, "select count(*) from generations")[0][0] > 0


def test_after_kill_9_the_runs_row_counts_what_was_committed(tmp_path: Path):
    child, path, server = _slow_run(tmp_path)
    try:
        _wait_for_rows(child, server)
        child.kill()
        child.wait(timeout=30)
    finally:
        server.close()
    ((outcome, loaded),) = read(path, "select outcome, loaded from ingest_runs")
    assert outcome is None  # unfinished
    assert loaded == read(path, "select count(*) from generations")[0][0] > 0
    assert "unfinished  loaded" in invoke("status", "--warehouse", path).stdout


# --- small crashes, help texts -------------------------------------------------------------------


def test_a_warehouse_that_cannot_be_created_is_one_line(tmp_path: Path):
    logs = write_id_log(tmp_path / "ids.log", Dataset(3, seed=1).ids)
    result = invoke("ingest", logs, "--warehouse", "/proc/orusage/w.duckdb", env={"OPENROUTER_API_KEY": KEY})
    assert result.exit_code == 2 and "cannot create warehouse /proc/orusage/w.duckdb" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_ids_from_a_closed_stdin_is_one_line():
    child = subprocess.run([sys.executable, "-m", "pipeline.cli", "ids", "-"], cwd=ROOT, capture_output=True,
                           text=True, preexec_fn=lambda: os.close(0))
    assert child.returncode == 2 and "stdin is closed" in child.stderr and "Traceback" not in child.stderr


def test_json_gives_an_error_object_on_stdout_for_a_missing_key_or_a_refused_warehouse(tmp_path: Path):
    import json

    logs = write_id_log(tmp_path / "ids.log", Dataset(3, seed=1).ids)
    missing = invoke("ingest", logs, "--warehouse", tmp_path / "w.duckdb", "--json", env={"OPENROUTER_API_KEY": None})
    assert missing.exit_code == 2
    assert json.loads(missing.stdout) == {"outcome": "error", "exit_code": 2, "error": missing.stderr.split("Error: ")[1].strip()}
    (tmp_path / "bad.duckdb").write_text("not a database at all")
    bad = invoke("ingest", logs, "--warehouse", tmp_path / "bad.duckdb", "--json", env={"OPENROUTER_API_KEY": KEY})
    assert bad.exit_code == 2 and "is not a DuckDB file" in json.loads(bad.stdout)["error"]


def test_help_and_messages_say_what_the_commands_really_do(tmp_path: Path):
    assert "created on first use" not in invoke("status", "--help").stdout
    assert "opened read-only" in invoke("status", "--help").stdout
    holder = re_match = None
    import re

    re_match = re.search(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)",
                         "Conflicting lock is held in python (PID 1)")
    holder = duckdb_file._locked_message(Path("w.duckdb"), re_match, 0)
    assert "ingest --lock-timeout" in holder and "give a lock timeout" not in holder
    logs = write_id_log(tmp_path / "ids.log", Dataset(3, seed=1).ids)
    dry = invoke("ingest", "--dry-run", logs, "--warehouse", tmp_path / "new.duckdb")
    assert dry.exit_code == 0 and "would fetch 3 ids" in dry.stderr
    assert not (tmp_path / "new.duckdb").exists()


def test_the_last_progress_line_is_the_final_state(tmp_path: Path):
    import io

    stream = io.StringIO()
    display = progress.PlainLines(stream, interval_s=3600)
    state = Progress(ids_due=10)
    display(state)
    state.done = state.loaded = 7
    display(state)
    display.close()
    assert stream.getvalue().splitlines()[-1].startswith("orusage: 7/10 ids")


# --- a second probe ---------------------------------------------------------------------------------


def test_a_base_url_that_is_not_the_api_stops_the_run_and_marks_no_id_not_found(orusage, tmp_path):
    dataset, logs, path = dataset_with_logs(tmp_path, 30, seed=21)
    with start_server(dataset, api_key=KEY) as server:
        wrong = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url.replace("/api/v1", "/api/v2"))
        assert wrong.exit_code == 2 and "not the OpenRouter API" in wrong.stderr
        assert queue_counts(path) == {"pending": 30}
        right = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url)
    assert right.exit_code == 0 and queue_counts(path) == {"loaded": 30}


@pytest.mark.parametrize("value", [":memory:", "md:foo", "s3://bucket/w.duckdb", "file:x.db"])
def test_a_warehouse_must_be_a_file(value: str, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    logs = write_id_log(tmp_path / "ids.log", Dataset(3, seed=1).ids)
    for args in (["ingest", logs, "--warehouse", value], ["status", "--warehouse", value]):
        result = invoke(*args, env={"OPENROUTER_API_KEY": KEY})
        assert result.exit_code == 2 and "not a file path" in result.stderr, args
    assert list(tmp_path.iterdir()) == [tmp_path / "ids.log"]


def test_output_never_replaces_the_warehouse(loaded: Path):
    before = loaded.read_bytes()
    for args in (["query", "select 1 as a", "-o", loaded], ["report", "summary", "-f", "parquet", "-o", loaded],
                 ["query", "select 1 as a", "-o", f"{loaded}.wal"]):
        result = invoke(*args, "--warehouse", loaded)
        assert result.exit_code == 2 and "is the warehouse itself" in result.stderr
    assert loaded.read_bytes() == before


def test_the_demo_deletes_nothing_it_did_not_write_and_never_adopts_a_loopback_warehouse(tmp_path: Path):
    mine = tmp_path / "proj" / "demo" / "src" / "important.py"
    mine.parent.mkdir(parents=True)
    mine.write_text("x")
    result = invoke("demo", "--data-dir", tmp_path / "proj", "--warehouse", tmp_path / "d.duckdb")
    assert result.exit_code == 2 and "holds files the demo did not write" in result.stderr
    assert mine.read_text() == "x"
    # a warehouse loaded through a proxy on loopback is no demo's, though its base URL is local
    real = tmp_path / "real.duckdb"
    con = duckdb_file.connect(real)
    duckdb_writes.start_run(con, options={"base_url": "http://127.0.0.1:8080/api/v1"})
    con.close()
    assert invoke("demo", "--data-dir", tmp_path / "d", "--warehouse", real).exit_code == 2
    assert real.exists()


def test_ingest_never_adds_its_tables_to_another_tools_duckdb_file(tmp_path: Path):
    import duckdb

    other = tmp_path / "sales.duckdb"
    duckdb.connect(str(other)).execute("create table sales as select 1 as amount").close()
    logs = write_id_log(tmp_path / "ids.log", Dataset(3, seed=1).ids)
    result = invoke("ingest", logs, "--warehouse", other, env={"OPENROUTER_API_KEY": KEY})
    assert result.exit_code == 2 and "not an orusage warehouse" in result.stderr
    con = duckdb.connect(str(other), read_only=True)
    assert [name for (name,) in con.execute("select table_name from duckdb_tables()").fetchall()] == ["sales"]
    con.close()


def test_control_characters_in_data_never_reach_the_terminal_raw(loaded: Path):
    hostile = "\x1b]0;PWNED\x07\x1b[2J\nnext"
    for fmt in ("table", "markdown"):
        result = invoke("query", f"select chr(27) || ']0;PWNED' || chr(7) || chr(27) || '[2J' || chr(10) || 'next' as u",
                        "--warehouse", loaded, "-f", fmt)
        assert result.exit_code == 0 and "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "\\x1b]0;PWNED\\x07\\x1b[2J\\x0anext" in result.stdout
    assert output.printable(hostile) == "\\x1b]0;PWNED\\x07\\x1b[2J\\x0anext"
    assert "\x1b" not in progress.status_text({"warehouse": "w", "queue": {}, "generations": {"count": 0}, "runs": [],
                                               "failures": [{"ids": 1, "reason": hostile, "example_id": "gen-1"}]})


def test_a_log_whose_name_is_not_utf8_is_read_with_the_others(orusage, tmp_path: Path):
    dataset, logs, path = dataset_with_logs(tmp_path, 20, seed=22)
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/odd-caf\xe9"))
    odd.mkdir()
    extra = Dataset(25, seed=23)
    write_id_log(odd / "x.log", extra.ids[20:])
    with start_server(dataset, api_key=KEY) as server:
        result = orusage("ingest", logs, odd, "--warehouse", path, "--base-url", server.base_url)
    assert result.exit_code in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    assert sum(queue_counts(path).values()) == 25
    ((source,),) = read(path, "select source from ingest_queue where source like '%odd-caf%' limit 1")
    assert "odd-caf\\xe9" in source


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/api/v1?api_key=sk-or-v1-SECRETQS", "http://127.0.0.1:9/api/v1#tok=x"])
def test_a_base_url_with_a_query_or_fragment_is_refused(url: str, tmp_path: Path):
    logs = write_id_log(tmp_path / "ids.log", Dataset(3, seed=1).ids)
    result = invoke("ingest", logs, "--warehouse", tmp_path / "w.duckdb", "--base-url", url,
                    env={"OPENROUTER_API_KEY": KEY})
    assert result.exit_code == 2 and "query string or fragment" in result.stderr and "SECRETQS" not in result.output


def test_odd_values_are_one_line_errors_not_crashes(tmp_path: Path, loaded: Path):
    logs = write_id_log(tmp_path / "ids.log", Dataset(3, seed=1).ids)
    assert invoke("ids", logs, "--until", "9999-12-31").exit_code == 2
    assert invoke("report", "summary", "--until", "9999-12-31", "--warehouse", loaded).exit_code == 2
    non_ascii = invoke("ingest", logs, "--warehouse", tmp_path / "w.duckdb", env={"OPENROUTER_API_KEY": "sk-or-v1-ключ"})
    assert non_ascii.exit_code == 2 and "not ASCII" in non_ascii.stderr and "ключ" not in non_ascii.output


def test_an_absurd_server_wait_is_capped_not_a_crash():
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "1e12"}, json={"error": {"message": "slow down", "code": 429}})

    clock = Clock()
    client = OpenRouterClient(KEY, base_url="http://127.0.0.1:9/api/v1", transport=httpx.MockTransport(answer),
                              sleep=clock.sleep, clock=clock)
    outcome = asyncio.run(client.get_generation("gen-1771967973-0hZ8J5kY7qLMOKbPx0u3"))
    assert isinstance(outcome, Failed) and "left for a later run" in outcome.last_error


def test_json_reports_a_crash_as_an_object_on_stdout(orusage, tmp_path, monkeypatch):
    import json

    dataset, logs, path = dataset_with_logs(tmp_path, 10, seed=24)
    monkeypatch.setattr(duckdb_writes, "upsert_batch", lambda *a, **k: 1 / 0)
    with start_server(dataset, api_key=KEY) as server:
        result = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url, "--json")
    assert result.exit_code == 4
    answer = json.loads(result.stdout)
    assert answer["outcome"] == "crashed" and "ZeroDivisionError" in answer["error"]


# --- a third probe ----------------------------------------------------------------------------------


def test_a_web_server_answering_html_pages_stops_the_run_instead_of_failing_every_id():
    def page(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html><title>It works</title></html>")

    clock = Clock()
    client = OpenRouterClient(KEY, base_url="http://127.0.0.1:9/v1", transport=httpx.MockTransport(page),
                              sleep=clock.sleep, clock=clock, policy=RetryPolicy(max_attempts=100))
    from pipeline.client import APIUnusableError

    with pytest.raises(APIUnusableError, match="HTML page: It works"):
        asyncio.run(client.get_generation("gen-1771967973-0hZ8J5kY7qLMOKbPx0u3"))


def test_another_tools_schema_migrations_table_is_not_taken_for_ours(tmp_path: Path):
    import duckdb

    logs = write_id_log(tmp_path / "ids.log", Dataset(3, seed=1).ids)
    for ddl in ("create table schema_migrations (version integer, name varchar); insert into schema_migrations values (6, 'x')",
                "create table schema_migrations (version varchar primary key); insert into schema_migrations values ('20240101')"):
        other = tmp_path / f"rails-{len(ddl)}.duckdb"
        con = duckdb.connect(str(other))
        con.execute(ddl + "; create table users (id integer)")
        con.close()
        for args in (["ingest", "--dry-run", logs], ["status"]):
            result = invoke(*args, "--warehouse", other, env={"OPENROUTER_API_KEY": KEY})
            assert result.exit_code == 2 and "not an orusage warehouse" in result.stderr, (ddl, args, result.output)
        con = duckdb.connect(str(other), read_only=True)
        assert sorted(n for (n,) in con.execute("select table_name from duckdb_tables()").fetchall()) == ["schema_migrations", "users"]
        assert con.execute("select count(*) from duckdb_views() where not internal").fetchone() == (0,)
        con.close()


def test_output_through_a_hard_link_never_replaces_the_warehouse(loaded: Path):
    link = loaded.with_name("hard.duckdb")
    os.link(loaded, link)
    before = loaded.read_bytes()
    result = invoke("query", "select 1 as a", "--warehouse", loaded, "-o", link, "-f", "csv")
    assert result.exit_code == 2 and "is the warehouse itself" in result.stderr
    assert loaded.read_bytes() == before


def test_the_demo_never_writes_through_a_symbolic_link(tmp_path: Path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "app.jsonl").write_text("mine")
    (tmp_path / "D" / "demo").mkdir(parents=True)
    (tmp_path / "D" / "demo" / "api").symlink_to(real)
    result = invoke("demo", "--data-dir", tmp_path / "D", "--warehouse", tmp_path / "d.duckdb")
    assert result.exit_code == 2 and "symbolic link" in result.stderr
    assert (real / "app.jsonl").read_text() == "mine" and sorted(p.name for p in real.iterdir()) == ["app.jsonl"]


def test_an_api_error_with_control_characters_is_shown_escaped_in_the_summary_and_status():
    from pipeline.ingest import RunSummary
    from pipeline.logs import ScanStats

    hostile = "OpenRouter rejected the API key (HTTP 401: m\x1b[31mRED\x07bell\x9bC1\x00\x7f)"
    text = progress.summary_text(RunSummary("r", "key_refused", Progress(), ScanStats(), {}, hostile))
    status = progress.status_text({"warehouse": "w", "queue": {}, "generations": {"count": 0}, "failures": [],
                                   "runs": [{"run_id": "r", "started_at": "t", "outcome": "key_refused", "loaded": 0,
                                             "not_found": 0, "failed": 0, "error": hostile}]})
    for shown in (text, status):
        assert not any(c in shown for c in "\x1b\x07\x9b\x00\x7f")
        assert "m\\x1b[31mRED\\x07bell\\x9bC1\\x00\\x7f" in shown

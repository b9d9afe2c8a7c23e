"""Analysts read while an ingest runs: the notebook API, `orusage report` and `status` answer from
the batches committed so far, never fail, and see counts that only grow; a killed ingest leaves
a warehouse readers open at once and the next run completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner
from test_ingest import INGEST_SCRIPT, KEY, ROOT, read, write_id_log

from pipeline import config, reports
from pipeline.cli import cli
from pipeline.fake_api import Dataset, Faults, start_server
from pipeline.reports import Warehouse

IDS = 3000
# 5% of requests fail (500, 502 pages, 429s) and every answer takes 5 ms: batches of 50 commit
# every fraction of a second over a run of several seconds.
FAULTS = Faults(rate_500=0.02, rate_502_html=0.01, rate_429=0.02, latency_ms=5)


def start(tmp_path: Path, server) -> tuple[subprocess.Popen[str], Path]:
    dataset_ids = server_ids[server]
    logs = write_id_log(tmp_path / "ids.log", dataset_ids)
    path = tmp_path / "warehouse.duckdb"
    env = {**os.environ, "OPENROUTER_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", INGEST_SCRIPT, str(logs), str(path), server.base_url],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "opening\n"
    return child, path


server_ids: dict[object, list[str]] = {}


def serve(dataset: Dataset):
    server = start_server(dataset, api_key=KEY, faults=FAULTS)
    server_ids[server] = dataset.ids
    return server


def loaded_now(path: Path) -> int | None:
    """What a notebook sees: the number of generations, or None before the warehouse exists."""
    try:
        return Warehouse(path).sql("select count(*) as n from generations")["n"][0]
    except reports.ReportError as exc:
        assert str(exc).startswith("no warehouse at"), exc
        return None


def test_readers_during_an_ingest_never_fail_and_see_counts_that_only_grow(tmp_path: Path):
    dataset = Dataset(IDS, seed=16)
    with serve(dataset) as server:
        child, path = start(tmp_path, server)
        seen: list[int] = []
        reports_answered = 0
        while child.poll() is None:
            count = loaded_now(path)
            if count is None:
                continue
            seen.append(count)
            if 0 < count:  # before the first batch, a report says there is nothing to report on
                result = CliRunner().invoke(cli, ["report", "spend", "--by", "model", "--warehouse", str(path),
                                                  "--format", "csv"])
                assert result.exit_code == 0, result.output
                reports_answered += 1
                status = reports.status(path)
                assert sum(status["queue"].values()) == IDS  # staged whole before the first batch
            time.sleep(0.05)
        stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 0 and "finished ok" in stdout, stderr
    assert seen == sorted(seen), "a reader saw the count go down"
    during = [count for count in seen if 0 < count < IDS]
    assert len(during) >= 5, f"too few answers during the load: {seen}"
    assert reports_answered >= 5
    assert loaded_now(path) == IDS


def test_a_killed_ingest_leaves_readers_working_and_the_next_run_completes(tmp_path: Path):
    dataset = Dataset(IDS, seed=17)
    with serve(dataset) as server:
        child, path = start(tmp_path, server)
        while not (loaded_now(path) or 0) >= 500:
            assert child.poll() is None, "the run ended before it was killed"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)

        reader = Warehouse(path, lock_timeout_s=0)  # nothing holds the file now: no wait at all
        ((committed,),) = reader.sql("select count(*) from generations").rows()
        ((counted,),) = reader.sql("select loaded from ingest_runs").rows()
        assert 500 <= committed < IDS and counted == committed  # the run's row counts its last batch

        again, path = start(tmp_path, server)
        stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0 and "finished ok" in stdout, stderr
    assert read(path, "select count(*), count(distinct id) from generations") == [(IDS, IDS)]


# A reader that keeps the file open, as the `duckdb` CLI left open would.
OPEN_READER = "import sys, duckdb; con = duckdb.connect(sys.argv[1], read_only=True); print('open', flush=True); sys.stdin.read()"


def test_a_reader_that_keeps_the_file_open_stops_the_ingest_in_one_line_and_the_next_run_completes(
        tmp_path: Path, monkeypatch):
    dataset = Dataset(200, seed=18)
    logs = write_id_log(tmp_path / "ids.log", dataset.ids[:100])
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setattr(config, "WRITER_WAITS_FOR_READERS_S", 0.5)
    ingest_args = ["ingest", str(logs), "--warehouse", str(path), "--quiet"]
    with start_server(dataset, api_key=KEY) as server:
        ingest_args += ["--base-url", server.base_url]
        assert CliRunner().invoke(cli, ingest_args, env={"OPENROUTER_API_KEY": KEY}).exit_code == 0
        write_id_log(tmp_path / "ids.log", dataset.ids)
        holder = subprocess.Popen([sys.executable, "-c", OPEN_READER, str(path)], text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            assert holder.stdout.readline() == "open\n"
            stopped = CliRunner().invoke(cli, ingest_args, env={"OPENROUTER_API_KEY": KEY})
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
        assert stopped.exit_code == 2 and "Traceback" not in stopped.output
        (line,) = stopped.stderr.strip().splitlines()
        assert f"is in use by another process (waited 0.5 s): PID {holder.pid} (" in line
        again = CliRunner().invoke(cli, ingest_args, env={"OPENROUTER_API_KEY": KEY})
    assert again.exit_code == 0, again.output
    assert read(path, "select count(*) from generations") == [(200,)]

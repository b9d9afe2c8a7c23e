"""What a newcomer meets: a crash is one line and is recorded, the demo's warehouse is found, the
configuration has one source, and a time bound means the same in every command."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner
from test_cli_ingest import dataset_with_logs, orusage  # noqa: F401 - the fixture
from test_ingest import KEY, read, write_id_log

from pipeline import config, demo, warehouse
from pipeline.warehouse import duckdb_file, duckdb_writes
from pipeline.cli import cli
from pipeline.fake_api import Dataset, start_server
from pipeline.normalize import normalize_bodies
from pipeline.reports import Warehouse


def invoke(*args: object, env: dict | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], env={"ORUSAGE_WAREHOUSE": None, **(env or {})})


# --- a crash ---------------------------------------------------------------------------------


def test_an_unexpected_error_is_one_line_exit_4_and_the_run_row_says_crashed(orusage, tmp_path, monkeypatch):
    dataset, logs, path = dataset_with_logs(tmp_path, 30, seed=3)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the writer broke\nsecond line")

    monkeypatch.setattr(duckdb_writes, "upsert_batch", broken)
    with start_server(dataset, api_key=KEY) as server:
        result = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url)
    assert result.exit_code == config.ExitCode.CRASHED == 4
    lines = result.stderr.strip().splitlines()
    crash = [line for line in lines if line.startswith("orusage: crashed:")]
    assert len(crash) == 1 and "Traceback" not in result.stderr
    assert "RuntimeError: the writer broke second line" in crash[0]
    saved = Path(crash[0].split("traceback in ")[1].split(";")[0])
    assert saved.parent == path.parent and "Traceback" in saved.read_text()
    assert "the writer broke" in saved.read_text()
    (outcome, error), = read(path, "select outcome, error from ingest_runs")
    assert outcome == "crashed" and error == "RuntimeError: the writer broke second line"
    status = invoke("status", "--warehouse", path)
    assert status.exit_code == 0
    assert "crashed: RuntimeError: the writer broke second line" in status.stdout


def test_debug_prints_the_traceback_instead_of_saving_it(orusage, tmp_path, monkeypatch):
    dataset, logs, path = dataset_with_logs(tmp_path, 10, seed=4)
    monkeypatch.setattr(duckdb_writes, "upsert_batch", lambda *a, **k: 1 / 0)
    with start_server(dataset, api_key=KEY) as server:
        result = orusage("--debug", "ingest", logs, "--warehouse", path, "--base-url", server.base_url)
    assert result.exit_code == 4
    assert result.stderr.count("Traceback (most recent call last)") >= 1
    assert "ZeroDivisionError" in result.stderr and "traceback above" in result.stderr
    assert not list(path.parent.glob("orusage-crash-*"))


# --- the demo's warehouse ----------------------------------------------------------------------


def test_after_the_demo_a_missing_default_warehouse_names_the_demos_and_what_to_type(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    nothing = invoke("report", "spend")
    assert nothing.exit_code == 2 and "orusage ingest" in nothing.stderr
    Path("data").mkdir()
    duckdb_file.connect(config.DEMO_WAREHOUSE).close()
    for args in (["report", "spend"], ["status"], ["query", "select 1"]):
        result = invoke(*args)
        assert result.exit_code == 2, args
        assert "--warehouse data/demo.duckdb" in result.stderr
        assert "export ORUSAGE_WAREHOUSE=data/demo.duckdb" in result.stderr
        assert "orusage demo" not in result.stderr  # no loop back to the demo


def test_the_demo_honours_orusage_warehouse_and_prints_commands_that_work_as_they_are(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "mine.duckdb"
    real_run_demo = demo.run_demo
    monkeypatch.setattr(demo, "run_demo", lambda *args, **kwargs: real_run_demo(*args, size=200, **kwargs))
    result = invoke("demo", env={"ORUSAGE_WAREHOUSE": str(target)})
    assert result.exit_code == 0, result.output
    assert target.exists() and not Path(config.DEMO_WAREHOUSE).exists()
    export = next(line.strip() for line in result.stdout.splitlines() if line.strip().startswith("export "))
    assert export == f"export ORUSAGE_WAREHOUSE={target.resolve()}"
    report = invoke("report", "spend", env={"ORUSAGE_WAREHOUSE": str(target)})
    assert report.exit_code == 0 and "anthropic/" in report.stdout


def test_the_demo_never_replaces_a_warehouse_that_holds_real_runs(tmp_path):
    path = tmp_path / "real.duckdb"
    con = duckdb_file.connect(path)
    duckdb_writes.start_run(con, options={"base_url": None})
    con.close()
    result = invoke("demo", "--warehouse", path, "--data-dir", tmp_path)
    assert result.exit_code == 2 and "not a demo warehouse" in result.stderr
    assert read(path, "select count(*) from ingest_runs") == [(1,)]
    other = tmp_path / "notes.txt"
    other.write_text("not a warehouse")
    assert invoke("demo", "--warehouse", other, "--data-dir", tmp_path).exit_code == 2
    assert other.read_text() == "not a warehouse"


# --- the key's source --------------------------------------------------------------------------


def test_a_refused_key_from_the_environment_says_to_check_the_variable(orusage, tmp_path):
    dataset, logs, path = dataset_with_logs(tmp_path, 10, seed=5)
    with start_server(dataset, api_key="sk-or-v1-other") as server:
        result = orusage("ingest", logs, "--warehouse", path, "--base-url", server.base_url)
    assert result.exit_code == 3
    assert "check OPENROUTER_API_KEY" in result.stderr and "passed explicitly" not in result.stderr


def test_a_key_with_a_trailing_carriage_return_is_stripped_and_one_with_inner_spaces_refused():
    assert config.api_key("sk-or-v1-abc\r\n").value == "sk-or-v1-abc"
    with pytest.raises(config.ApiKeyError, match="control character") as refused:
        config.api_key("sk-or-v1-a\x07bc")
    assert "abc" not in str(refused.value) and "abc" not in repr(config.api_key("sk-or-v1-abc"))


# --- time bounds: one meaning ------------------------------------------------------------------


def test_an_id_created_exactly_at_until_is_out_of_ids_ingest_and_reports_alike(tmp_path):
    dataset = Dataset(300, seed=11, end=datetime(2026, 8, 1, tzinfo=UTC), days=2)
    target = dataset.ids[150]
    created = datetime.fromtimestamp(int(target.split("-")[1]), UTC)
    until, since = created.isoformat(), (created - timedelta(days=3)).isoformat()
    logs = write_id_log(tmp_path / "ids.log", dataset.ids)

    listed = invoke("ids", logs, "--since", since, "--until", until).stdout.split()
    listed_after = invoke("ids", logs, "--since", until).stdout.split()
    assert target not in listed and target in listed_after

    path = tmp_path / "w.duckdb"
    con = duckdb_file.connect(path)
    duckdb_writes.stage_ids(con, [(i, "ids.log") for i in dataset.ids], seen_at=datetime.now(UTC))
    due = [i for chunk in duckdb_writes.due_ids(con, now=datetime.now(UTC), until=config.parse_time_bound(until))
           for i in chunk]
    assert target not in due and set(due) == set(listed)
    batch = normalize_bodies([(i, dataset.body(i)) for i in dataset.ids])
    duckdb_writes.upsert_batch(con, batch, [warehouse.QueueUpdate(i, "loaded", 1, 200, None, None) for i in dataset.ids],
                           run_id="t")
    con.close()
    # a report's window reads created_at, which has the id's second plus a fraction
    in_window = Warehouse(path).sql(
        "select generation_id from generations_in_window($since, $until)",
        {"since": config.parse_time_bound(since), "until": config.parse_time_bound(until)})["generation_id"].to_list()
    assert target not in in_window and set(in_window) == set(listed)


def test_an_empty_window_is_refused_by_ingest_and_ids_as_by_report(tmp_path):
    logs = write_id_log(tmp_path / "ids.log", Dataset(5, seed=1).ids)
    for args in (["ids", logs], ["ingest", "--dry-run", logs, "--warehouse", tmp_path / "w.duckdb"]):
        for order in (["--since", "2026-08-20", "--until", "2026-08-10"], ["--until", "2026-08-10", "--since", "2026-08-20"]):
            result = invoke(*args, *order)
            assert result.exit_code == 2 and "empty window" in result.stderr, (args, order)
    assert not (tmp_path / "w.duckdb").exists()


def test_the_defaults_are_spelled_once():
    root = Path(__file__).resolve().parent.parent / "pipeline"
    for literal in ('"data/warehouse.duckdb"', '"OPENROUTER_API_KEY"', '"ORUSAGE_WAREHOUSE"'):
        holders = [p.name for p in root.glob("*.py") if literal in p.read_text()]
        assert holders in ([], ["config.py"]), (literal, holders)


# --- pyarrow --------------------------------------------------------------------------------------


def test_a_batch_is_handed_to_duckdb_as_a_table_so_no_filter_reaches_pyarrow(tmp_path):
    con = duckdb_file.connect(tmp_path / "w.duckdb")
    frame = pl.DataFrame({"generation_id": ["gen-1-a", "gen-2-b"]})
    with duckdb_writes._registered(con, {"_batch": frame}):
        kinds = con.execute("select table_type from information_schema.tables where table_name = '_batch'").fetchall()
        assert kinds == [("LOCAL TEMPORARY",)]
        assert con.execute("select count(*) from _batch where generation_id >= 'gen-2'").fetchone() == (1,)
    assert con.execute("select count(*) from duckdb_tables() where table_name = '_batch'").fetchone() == (0,)
    con.close()


# --- the repository stands alone ----------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def test_bench_run_uses_the_interpreter_that_runs_it_or_python(monkeypatch):
    import importlib.machinery
    import importlib.util
    import sys

    def load():
        loader = importlib.machinery.SourceFileLoader("bench_run", str(ROOT / "bench" / "run"))
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader("bench_run", loader))
        monkeypatch.setitem(sys.modules, "bench_run", module)  # its dataclasses look themselves up there
        loader.exec_module(module)
        return module

    monkeypatch.delenv("PYTHON", raising=False)
    assert load().PYTHON == sys.executable
    monkeypatch.setenv("PYTHON", "/opt/python3.13/bin/python3")
    assert load().PYTHON == "/opt/python3.13/bin/python3"


def test_the_docs_point_nowhere_outside_the_repository_and_state_the_contract():
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "pipeline").glob("*.py"),
                 *(ROOT / "notebooks").glob("*")]:
        if path.is_file():
            assert "../shared" not in path.read_text(errors="replace"), path
    contract = (ROOT / "docs" / "warehouse.md").read_text()
    for table in ("generations", "provider_responses", "ingest_queue", "ingest_runs"):
        assert f"### `{table}`" in contract
    assert "docs/warehouse.md" in (ROOT / "README.md").read_text()

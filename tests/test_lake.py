"""The DuckLake warehouse: sharded workers loading one lake at once, readers while they load, time
travel, copying a warehouse between the backends, maintenance, and the secrets in a lake's
location. The end-to-end runs that every backend must pass (faults, rerun, kill -9) are
parametrised over the backends in tests/test_ingest.py.
"""

from __future__ import annotations

import hashlib
import signal
import threading
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from lakes import Target, make_target, read
from pipeline import cli, config, demo, reports, warehouse
from pipeline.fake_api import Dataset, Faults, start_server
from pipeline.ingest import ingest
from pipeline.normalize import normalize_bodies
from pipeline.warehouse import QueueUpdate, duckdb_writes, ducklake, sql_files
from pipeline.warehouse.copy import copy_warehouse
from pipeline.warehouse.duckdb_writes import TABLE_KEYS
from test_ingest import KEY, assert_warehouse_holds, committed, options, queue_counts, start_ingest, write_logs

SHARDS = 4


# --- shards ----------------------------------------------------------------------------------


def shard_of(generation_id: str, count: int) -> int:
    """sql/macros/in_shard.sql's rule, restated: the first 32 bits of the id's MD5, modulo the count."""
    return int(hashlib.md5(generation_id.encode()).hexdigest()[:8], 16) % count


def test_shards_split_the_ids_by_a_stable_hash_each_id_in_exactly_one(tmp_path):
    dataset = Dataset(400, seed=3)
    logs = write_logs(dataset, tmp_path / "logs")
    path = tmp_path / "w.duckdb"
    staged: dict[int, set[str]] = {}
    with start_server(dataset, api_key=KEY) as server:
        for index in range(SHARDS):
            ingest(options(logs, path, server.base_url, shard=(index, SHARDS), dry_run=True), api_key=KEY)
        for index in range(SHARDS):
            summary = ingest(options(logs, path, server.base_url, shard=(index, SHARDS)), api_key=KEY)
            staged[index] = {i for (i,) in read(path, "select id from generations where run_id = ?", [summary.run_id])}
    assert sum(len(ids) for ids in staged.values()) == 400
    assert set().union(*staged.values()) == set(dataset.ids)
    for index, ids in staged.items():
        assert ids and all(shard_of(i, SHARDS) == index for i in ids)  # the same rule as in SQL
        assert 400 / SHARDS * 0.6 < len(ids) < 400 / SHARDS * 1.4  # even enough


def test_four_shard_workers_at_once_one_killed_and_rerun_load_exactly_the_union_while_reports_answer(
        tmp_path, lake):
    dataset = Dataset(1200, seed=31)
    logs = write_logs(dataset, tmp_path / "logs")
    faults = Faults.transient(0.1, seed=4, latency_ms=2)
    report_errors: list[BaseException] = []
    reports_answered = 0
    stop = threading.Event()

    def reader_loop() -> None:
        nonlocal reports_answered
        while not stop.is_set():
            try:
                book = reports.Warehouse(lake.location)
                book.report("spend", since="2020-01-01", until="2100-01-01")
                book.sql("select count(*) from generations")
                reports.status(lake.location)
                reports_answered += 1
            except reports.ReportError as exc:
                if "no generations yet" not in str(exc):  # before the first batch committed
                    report_errors.append(exc)
            except BaseException as exc:  # noqa: BLE001 - any failure of a reader is the finding
                report_errors.append(exc)

    with start_server(dataset, api_key=KEY, faults=faults) as server:
        # the lake exists before the readers start, as it would after the first night
        ingest(options(logs, lake, server.base_url, dry_run=True), api_key=KEY)
        reader = threading.Thread(target=reader_loop)
        reader.start()
        try:
            workers = {index: start_ingest(logs, lake, server.base_url, f"{index}/{SHARDS}")
                       for index in range(1, SHARDS + 1)}
            killed = 2
            lines: dict[int, list[str]] = {index: [] for index in workers}
            for line in workers[killed].stdout:  # type: ignore[union-attr]
                lines[killed].append(line.strip())
                if committed(0.3)(line.split()):
                    workers[killed].send_signal(signal.SIGKILL)
                    break
            for index, worker in workers.items():
                out, _ = worker.communicate(timeout=120)
                lines[index] += out.split("\n")
            assert workers[killed].returncode == -signal.SIGKILL
            assert all(workers[i].returncode == 0 for i in workers if i != killed), lines
            loaded_when_killed = {i for (i,) in read(lake, "select generation_id from ingest_queue "
                                                           "where status = 'loaded'")}
            fetched_when_killed = server.snapshot().ok_by_id
            rerun = start_ingest(logs, lake, server.base_url, f"{killed}/{SHARDS}")
            out, _ = rerun.communicate(timeout=120)
            assert rerun.returncode == 0, out
        finally:
            stop.set()
            reader.join(timeout=60)
        final = server.snapshot()

    assert report_errors == []
    assert reports_answered > 0
    assert_warehouse_holds(lake, dataset)
    assert queue_counts(lake) == {"loaded": 1200}
    [(attempts, distinct_attempts, listed)] = read(lake, """
        select (select count(*) from provider_responses),
               (select count(distinct (generation_id, attempt)) from provider_responses),
               (select sum(coalesce(json_array_length(provider_responses), 0)) from generations)""")
    assert attempts == distinct_attempts == listed > 1000
    # what was committed before the kill was not fetched again; every id fetched once, but for
    # those the killed worker held uncommitted
    assert {i: final.ok_by_id[i] for i in loaded_when_killed} == {i: fetched_when_killed[i] for i in loaded_when_killed}
    assert set(final.ok_by_id) == set(dataset.ids)
    assert sum(final.ok_by_id.values()) - 1200 <= 50 + 50 + 4 * 8 + 4
    runs = read(lake, "select outcome, count(*) from ingest_runs group by all")
    assert dict(runs) == {None: 1, "ok": SHARDS, "dry_run": 1}  # the killed run never finished


def test_a_batch_whose_commit_conflicts_with_another_writer_is_retried_with_the_batch_intact(lake, monkeypatch):
    target = lake
    dataset = Dataset(40, seed=12)
    first, second = dataset.ids[:20], dataset.ids[20:]

    def batch(ids, extra_cost=0.0):
        bodies = []
        for generation_id in ids:
            body = orjson.loads(dataset.body(generation_id))
            body["data"]["total_cost"] += extra_cost
            bodies.append((generation_id, orjson.dumps(body)))
        return normalize_bodies(bodies), [QueueUpdate(i, "loaded", 1, 200, None, None) for i in ids]

    other = warehouse.open_writer(target.location, data_path=target.data_path)
    writer = warehouse.open_writer(target.location)
    other.upsert_batch(*batch(first), run_id="other")
    write_generations = duckdb_writes.write_generations
    interfered = []

    def while_the_batch_is_open(con, *args, **kwargs):
        write_generations(con, *args, **kwargs)
        if not interfered:  # the other writer rewrites its rows (a --refresh) and commits first
            interfered.append(True)
            other.upsert_batch(*batch(first, extra_cost=1.0), run_id="other")

    monkeypatch.setattr(duckdb_writes, "write_generations", while_the_batch_is_open)
    writer.upsert_batch(*batch(second), run_id="writer")
    other.close()
    writer.close()

    assert writer.commits_retried == 1  # DuckLake refused the first commit: a real conflict
    rows = dict(read(target, "select id, total_cost from generations"))
    assert len(rows) == 40
    assert all(rows[i] == dataset.record(i)["total_cost"] + 1.0 for i in first)
    assert all(rows[i] == dataset.record(i)["total_cost"] for i in second)
    assert queue_counts(target) == {"loaded": 40}


def test_four_workers_opening_a_new_lake_at_once_migrate_it_once(lake):
    errors: list[BaseException] = []

    def open_and_close() -> None:
        try:
            warehouse.open_writer(lake.location, data_path=lake.data_path).close()
        except BaseException as exc:  # noqa: BLE001 - any failure is the finding
            errors.append(exc)

    threads = [threading.Thread(target=open_and_close) for _ in range(SHARDS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    versions = read(lake, "select version, count(*) from schema_migrations group by all order by 1")
    assert versions == [(version, 1) for version in range(sql_files.latest_version() + 1)]
    [(views,)] = read(lake, "select count(*) from duckdb_views() where database_name = current_database() "
                            "and view_name = 'spend_by_model'")
    assert views == 1


# --- readers and time travel -----------------------------------------------------------------


def test_query_at_a_snapshot_or_a_time_answers_as_the_lake_was_then(tmp_path):
    [target] = make_target("lake_sqlite", tmp_path)
    first, second = Dataset(300, seed=5), Dataset(200, seed=6)
    with start_server(first, api_key=KEY) as server:
        ingest(options(write_logs(first, tmp_path / "first"), target, server.base_url), api_key=KEY)
    with warehouse.open_reader(target.location) as reader:
        [(before_second,)] = reader.rows(f"select max(snapshot_id) from ducklake_snapshots('{warehouse.duckdb_writes.DATABASE}')")
    between = datetime.now(timezone.utc)
    with start_server(second, api_key=KEY) as server:
        ingest(options(write_logs(second, tmp_path / "second"), target, server.base_url), api_key=KEY)

    runner = CliRunner()
    count = "select count(*) as n from generations"
    now = runner.invoke(cli.cli, ["query", count, "--format", "csv", "--warehouse", target.location])
    at_snapshot = runner.invoke(cli.cli, ["query", count, "--format", "csv", "--warehouse", target.location,
                                          "--at", str(before_second)])
    at_time = runner.invoke(cli.cli, ["report", "summary", "--format", "csv", "--warehouse", target.location,
                                      "--since", "2000-01-01", "--until", "2100-01-01", "--at", between.isoformat()])
    assert (now.exit_code, now.output.split()) == (0, ["n", "500"])
    assert (at_snapshot.exit_code, at_snapshot.output.split()) == (0, ["n", "300"]), at_snapshot.output
    assert at_time.exit_code == 0, at_time.output
    assert reports.Warehouse(target.location, at=before_second).sql(count)["n"].to_list() == [300]
    assert reports.Warehouse(target.location, at=between.isoformat()).sql(count)["n"].to_list() == [300]
    for before_any in ("99999", "2000-01-01"):
        result = runner.invoke(cli.cli, ["query", count, "--warehouse", target.location, "--at", before_any])
        assert result.exit_code == 2 and "has no snapshot at" in result.output, result.output
    on_file = runner.invoke(cli.cli, ["query", count, "--warehouse", str(tmp_path / "w.duckdb"), "--at", "1"])
    assert on_file.exit_code == 2 and "needs a DuckLake warehouse" in on_file.output


# --- copy ------------------------------------------------------------------------------------


def table_rows(location: Path | str) -> dict[str, list[tuple]]:
    return {table: read(location, f"select * from {table} order by {', '.join(keys)}")
            for table, keys in TABLE_KEYS.items()}


def test_copy_file_to_lake_to_file_round_trips_identical_rows_and_resumes_without_duplicates(tmp_path, lake,
                                                                                             monkeypatch):
    dataset = Dataset(700, seed=8)
    source = tmp_path / "source.duckdb"
    with start_server(dataset, api_key=KEY, faults=Faults.transient(0.2, not_found_first=1, seed=3)) as server:
        ingest(options(write_logs(dataset, tmp_path / "logs", extra_ids=dataset.missing_ids(1)),
                       source, server.base_url, with_content=True), api_key=KEY)
    original = table_rows(source)
    assert len(original["generations"]) == 700 and len(original["ingest_queue"]) == 701
    assert len(original["generation_content_rows"]) == 700

    # a copy that dies after two pages (a kill, a lost connection), then run again: it resumes
    copy_rows = warehouse.duckdb_writes.copy_rows
    pages: list[str] = []

    def dies_after_two_pages(con, table, rows, *dialect):
        if len(pages) == 2:
            raise KeyboardInterrupt
        pages.append(table)
        return copy_rows(con, table, rows, *dialect)

    monkeypatch.setattr(warehouse.duckdb_writes, "copy_rows", dies_after_two_pages)
    with pytest.raises(KeyboardInterrupt):
        copy_warehouse(source, lake.location, data_path=lake.data_path, chunk_rows=256)
    monkeypatch.undo()
    [(copied_before,)] = read(lake, "select count(*) from generations")
    assert copied_before == 512  # two pages of 256 committed, each one transaction
    first = copy_warehouse(source, lake.location, chunk_rows=256)
    assert {table: counts["copied"] for table, counts in first.items()} == {
        table: len(rows) - (512 if table == "generations" else 0) for table, rows in original.items()}
    assert table_rows(lake.location) == original
    again = copy_warehouse(source, lake.location, chunk_rows=256)  # a resumed copy: nothing twice
    assert all(counts["copied"] == 0 for counts in again.values())
    assert table_rows(lake.location) == original

    back = tmp_path / "back.duckdb"
    result = CliRunner().invoke(cli.cli, ["copy", "--warehouse", lake.location, "--to", str(back)])
    assert result.exit_code == 0, result.output
    assert table_rows(back) == original
    assert "password" not in result.output or "password=***" in result.output


# --- maintenance -----------------------------------------------------------------------------


def test_maintain_merges_the_small_files_of_many_runs_and_keeps_every_row(tmp_path):
    [target] = make_target("lake_sqlite", tmp_path)
    for night in range(6):
        dataset = Dataset(60, seed=100 + night)
        with start_server(dataset, api_key=KEY) as server:
            ingest(options(write_logs(dataset, tmp_path / f"logs{night}"), target, server.base_url, batch_size=20),
                   api_key=KEY)
    before = table_rows(target.location)

    def parquet_files() -> int:
        return sum(1 for _ in Path(target.data_path).rglob("*.parquet"))

    files_before = parquet_files()
    result = CliRunner().invoke(cli.cli, ["maintain", "--warehouse", target.location, "--keep-days", "0"])
    assert result.exit_code == 0, result.output
    assert "small files merged" in result.output
    assert table_rows(target.location) == before
    assert parquet_files() < files_before / 2, (files_before, parquet_files())
    [(snapshots,)] = read(target, "select count(*) from ducklake_snapshots('warehouse')")
    assert snapshots < 10  # expired: only the last ones are kept


# --- locations, secrets, errors --------------------------------------------------------------


def test_a_catalog_password_is_never_printed_nor_stored(tmp_path, lake):
    secret = next(part.split("=", 1)[1] for part in lake.location.split() if part.startswith("password="))
    dataset = Dataset(50, seed=9)
    runner = CliRunner()
    with start_server(dataset, api_key=KEY) as server:
        result = runner.invoke(cli.cli, ["ingest", str(write_logs(dataset, tmp_path / "logs")), "--warehouse",
                                         lake.location, "--data-path", lake.data_path, "--base-url", server.base_url,
                                         "--json"], env={config.API_KEY_VARIABLE: KEY})
    assert result.exit_code == 0, result.output
    status = runner.invoke(cli.cli, ["status", "--warehouse", lake.location, "--json"])
    wrong = runner.invoke(cli.cli, ["status", "--warehouse", lake.location.replace(secret, secret + "-wrong")])
    unreachable = runner.invoke(cli.cli, ["status", "--warehouse", lake.location + " port=1"])
    for outcome in (result, status, wrong, unreachable):
        assert secret not in outcome.output
    assert status.exit_code == 0 and "password=***" in status.output
    for failed in (wrong, unreachable):
        assert failed.exit_code == 2 and len(failed.output.strip().splitlines()) == 1, failed.output
    [(options_json,)] = read(lake, "select options::varchar from ingest_runs")
    assert secret not in options_json and "password=***" in options_json


def test_a_missing_extension_is_one_line_exit_2(tmp_path, monkeypatch):
    warehouse.open_writer(f"ducklake:sqlite:{tmp_path / 'c.sqlite'}").close()
    monkeypatch.setattr(ducklake, "_extension_file", lambda name: None)  # no wheel, and no network here
    result = CliRunner().invoke(cli.cli, ["status", "--warehouse", f"ducklake:sqlite:{tmp_path / 'c.sqlite'}"])
    assert result.exit_code == 2
    assert "pip install 'orusage[lake]'" in result.output and len(result.output.strip().splitlines()) == 1


def test_lake_locations_are_checked_before_any_work():
    runner = CliRunner()
    for bad in ("ducklake:mysql:db", "ducklake:postgres:", "ducklake:"):
        result = runner.invoke(cli.cli, ["status", "--warehouse", bad])
        assert result.exit_code == 2 and "ducklake:postgres:" in result.output, (bad, result.output)
    assert config.redacted("ducklake:postgres:dbname=o password='a b' user=u") == (
        "ducklake:postgres:dbname=o password=*** user=u")
    assert config.redacted("ducklake:postgres:postgresql://me:pw@host/db") == "ducklake:postgres:postgresql://me:***@host/db"


def test_the_demo_runs_on_a_lake_and_its_first_look_reads_it(tmp_path):
    location = f"ducklake:sqlite:{tmp_path / 'demo.sqlite'}"
    result = demo.run_demo(tmp_path, warehouse_path=location, say=lambda line: None, size=300)
    assert result.summary.outcome == "ok"
    assert read(location, "select count(*) from generations") == [(300,)]
    assert "Spend by model" in demo.first_look(result)

"""The warehouse interface (pipeline/warehouse/interface.py), as every backend must honour it.

Each test takes a `location` from the `backend` fixture: the DuckDB file today; the next backend
adds itself to BACKENDS and runs every test here unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import polars as pl
import pytest

from pipeline import warehouse
from pipeline.normalize import NormalizedBatch, normalize_bodies
from pipeline.warehouse import QueueUpdate
from pipeline.warehouse.sql_files import migrations, view_files

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
LLAMA = orjson.loads((FIXTURES / "generation_200_real_llama4scout_deepinfra_cancelled.json").read_bytes())["data"]
T0 = 1771967973  # LLAMA's id timestamp, 2026-02-24T21:19:33Z
NOW = datetime(2026, 2, 25, 12, 0, tzinfo=timezone.utc)

BACKENDS: dict[str, Callable[[Path], str]] = {
    "duckdb_file": lambda folder: str(folder / "warehouse.duckdb"),
}


@pytest.fixture(params=sorted(BACKENDS))
def location(request, tmp_path: Path) -> str:
    return BACKENDS[request.param](tmp_path)


@pytest.fixture
def writer(location: str):
    store = warehouse.open_writer(location)
    yield store
    store.close()


def gen_id(index: int) -> str:
    return f"gen-{T0}-{index:020d}"


def bodies(*indexes: int, **changes: object) -> list[tuple[str, bytes]]:
    return [(gen_id(i), orjson.dumps({"data": {**LLAMA, "id": gen_id(i), **changes}})) for i in indexes]


def loaded(*indexes: int) -> list[QueueUpdate]:
    return [QueueUpdate(gen_id(i), "loaded", 1, 200, None, None) for i in indexes]


def read(location: str, sql: str) -> list[tuple]:
    reader = warehouse.open_reader(location)
    try:
        return reader.rows(sql)
    finally:
        reader.close()


def all_due(store, **options) -> list[str]:
    return [generation_id for chunk in store.due_ids(now=NOW, **options) for generation_id in chunk]


def test_a_writer_migrates_once_and_a_reader_finds_every_table_and_view(location):
    warehouse.open_writer(location).close()
    warehouse.open_writer(location).close()
    assert read(location, "select version, name from schema_migrations order by version") == [
        (version, name) for version, name, _ in migrations()
    ]
    names = {name for (name,) in read(location, "select table_name from information_schema.tables")}
    assert {"generations", "provider_responses", "ingest_queue", "ingest_runs"} | {f.stem for f in view_files()} <= names


def test_staged_ids_are_queued_once_and_due_until_a_batch_settles_them(writer, location):
    assert writer.stage_ids([(gen_id(1), "a.log:1"), (gen_id(2), "a.log:2"), (gen_id(1), "a.log:9")], seen_at=NOW) == 2
    assert writer.stage_ids([(gen_id(2), "b.log:1"), (gen_id(3), "b.log:2")], seen_at=NOW) == 1
    assert writer.due_counts(now=NOW) == {"pending": 3}
    assert all_due(writer) == [gen_id(1), gen_id(2), gen_id(3)]  # in the order they were queued

    retry_at = NOW + timedelta(hours=1)
    updates = [*loaded(1), QueueUpdate(gen_id(2), "not_found", 4, 404, "not found", retry_at),
               QueueUpdate(gen_id(3), "failed", 6, 502, "bad gateway", NOW)]
    writer.upsert_batch(normalize_bodies(bodies(1)), updates, run_id="run-1", run_counts=None)

    assert writer.due_counts(now=NOW) == {"failed": 1}
    assert writer.due_counts(now=retry_at) == {"failed": 1, "not_found": 1}
    assert writer.due_counts(now=NOW, refresh=True) == {"failed": 1, "loaded": 1}
    assert writer.failed_waiting() == (1, NOW)
    assert all_due(writer, until=datetime.fromtimestamp(T0, timezone.utc)) == []  # the window is since <= t < until
    assert read(location, "select id, run_id from generations") == [(gen_id(1), "run-1")]
    assert read(location, "select source from ingest_queue where generation_id = '" + gen_id(2) + "'") == [("a.log:2",)]


def test_a_batch_applied_twice_changes_nothing_and_a_changed_record_replaces_the_stored_one(writer, location):
    writer.upsert_batch(normalize_bodies(bodies(1, 2)), loaded(1, 2), run_id="first")
    writer.upsert_batch(normalize_bodies(bodies(1, 2)), loaded(1, 2), run_id="again")
    assert read(location, "select run_id, count(*) from generations group by 1") == [("first", 2)]
    writer.upsert_batch(normalize_bodies(bodies(2, tokens_prompt=7)), loaded(2), run_id="changed")
    assert read(location, "select id, tokens_prompt, run_id from generations order by id") == [
        (gen_id(1), 65, "first"), (gen_id(2), 7, "changed")]
    assert read(location, "select count(*) from provider_responses") == [(2,)]
    assert read(location, "select status, count(*) from ingest_queue group by 1") == [("loaded", 2)]


def test_a_batch_that_repeats_a_key_is_refused_whole(writer, location):
    batch = normalize_bodies(bodies(1, 2))
    twice = NormalizedBatch(pl.concat([batch.generations, batch.generations.head(1)]), batch.provider_responses)
    with pytest.raises(ValueError, match=f"batch repeats the key id='{gen_id(1)}'"):
        writer.upsert_batch(twice, loaded(1, 2), run_id="run-1")
    assert read(location, "select count(*) from generations") == [(0,)]
    assert read(location, "select count(*) from ingest_queue") == [(0,)]


def test_a_run_is_recorded_with_its_counts_and_never_a_key(writer, location):
    run_id = writer.start_run(options={"paths": ["logs/"], "api_key": "sk-or-v1-secret"})
    writer.upsert_batch(normalize_bodies(bodies(1)), loaded(1), run_id=run_id, run_counts={"loaded": 1})
    assert read(location, "select loaded, outcome from ingest_runs") == [(1, None)]  # counted with its batch
    writer.finish_run(run_id, counts={"loaded": 1, "error": None}, outcome="ok")
    assert read(location, "select run_id, loaded, outcome from ingest_runs") == [(run_id, 1, "ok")]
    assert "sk-or" not in str(read(location, "select * from ingest_runs"))


def test_a_rolled_back_block_sees_its_own_writes_and_leaves_none(writer, location):
    with writer.rolled_back():
        assert writer.stage_ids([(gen_id(1), "a.log:1")], seen_at=NOW) == 1
        assert writer.due_counts(now=NOW) == {"pending": 1}
    assert writer.due_counts(now=NOW) == {}
    assert read(location, "select count(*) from ingest_queue") == [(0,)]


def test_a_reader_answers_between_batches_and_cannot_write(writer, location):
    writer.upsert_batch(normalize_bodies(bodies(1)), loaded(1), run_id="run-1")
    reader = warehouse.open_reader(location)
    try:
        assert reader.frame("select id from generations")["id"].to_list() == [gen_id(1)]
        assert reader.statement_kinds("select 1; copy generations to 'out.csv'") == ["SELECT", "COPY"]
        for sql in ("create table notes (line varchar)", "select * from read_csv('/etc/passwd')",
                    "select no_such_column from generations"):
            with pytest.raises(warehouse.QueryError):
                reader.rows(sql)
    finally:
        reader.close()
    writer.upsert_batch(normalize_bodies(bodies(2)), loaded(2), run_id="run-1")  # the writer goes on
    assert read(location, "select count(*) from generations") == [(2,)]


def test_a_reader_of_a_missing_warehouse_is_told_so_and_creates_nothing(tmp_path: Path, location):
    with pytest.raises(warehouse.WarehouseNotFoundError, match="no warehouse at"):
        warehouse.open_reader(location)
    assert list(tmp_path.iterdir()) == []


def test_a_second_writer_is_refused_naming_the_first(writer, location):
    with pytest.raises(warehouse.WarehouseLockedError, match=rf"being loaded by another ingest: PID {os.getpid()} "):
        warehouse.open_writer(location)


# A writer in another process that holds one write window open until told to leave it (a line on
# stdin), then stays open between windows until stdin closes.
WINDOW_HOLDER = textwrap.dedent("""
    import sys
    from pipeline import warehouse
    store = warehouse.open_writer(sys.argv[1])
    with store.rolled_back():
        print("in a window", flush=True)
        sys.stdin.readline()
    print("between windows", flush=True)
    sys.stdin.read()
    store.close()
""")


def test_a_reader_waits_for_a_write_window_and_past_its_wait_names_the_ingest(location):
    warehouse.open_writer(location).close()
    holder = subprocess.Popen([sys.executable, "-c", WINDOW_HOLDER, location], cwd=ROOT, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == "in a window\n"
        with pytest.raises(warehouse.WarehouseLockedError) as error:
            warehouse.open_reader(location, lock_timeout_s=0.3)
        message = str(error.value)
        assert f"is being loaded by an ingest (PID {holder.pid}, running for " in message
        assert "held the file for all the 0.3 s this reader waited" in message and "\n" not in message
        holder.stdin.write("leave\n")
        holder.stdin.flush()
        assert holder.stdout.readline() == "between windows\n"
        assert read(location, "select count(*) from ingest_queue") == [(0,)]  # the writer is still running
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)

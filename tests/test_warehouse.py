"""The warehouse: its tables and types, the batch upsert as ONE transaction, the queue, the runs,
and what happens when the file is busy, too new, missing, or its writer is killed mid-batch."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pytest

from pipeline import warehouse
from pipeline.warehouse import duckdb_file, duckdb_writes, sql_files
from pipeline.normalize import NormalizedBatch, normalize_bodies
from pipeline.warehouse import QueueUpdate

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
LLAMA = orjson.loads((FIXTURES / "generation_200_real_llama4scout_deepinfra_cancelled.json").read_bytes())["data"]
DOCS = orjson.loads((FIXTURES / "generation_200_docs_openapi_example.json").read_bytes())["data"]
NOW = datetime(2026, 2, 25, 12, 0, tzinfo=timezone.utc)
T0 = 1771967973  # LLAMA's id timestamp, 2026-02-24T21:19:33Z


def gen_id(index: int, seconds: int = T0) -> str:
    return f"gen-{seconds}-{index:020d}"


def body(generation_id: str, **changes: object) -> tuple[str, bytes]:
    return generation_id, orjson.dumps({"data": {**LLAMA, "id": generation_id, **changes}})


def loaded(*ids: str) -> list[QueueUpdate]:
    return [QueueUpdate(generation_id, "loaded", 1, 200, None, None) for generation_id in ids]


def write(con, bodies: list[tuple[str, bytes]], updates: list[QueueUpdate] | None = None, run_id: str = "run-1"):
    batch = normalize_bodies(bodies)
    if updates is None:
        updates = loaded(*batch.generations["id"])
    duckdb_writes.upsert_batch(con, batch, updates, run_id=run_id)
    return batch


def table(con, name: str, order_by: str) -> list[tuple]:
    return con.execute(f"select * from {name} order by {order_by}").fetchall()


class ConnectionProxy:
    """A warehouse connection with some methods replaced by a test; the rest go to `con`."""

    def __init__(self, con) -> None:
        self._con = con

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


@pytest.fixture
def con(path: Path):
    connection = duckdb_file.connect(path)
    yield connection
    connection.close()


def run_python(code: str, *args: str, **popen: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, **popen)


# --- tables, types, migrations, views ---------------------------------------------------------

GENERATION_TYPES = {
    **dict.fromkeys(
        ["id", "request_id", "session_id", "upstream_id", "response_cache_source_id", "preset_id", "workspace_id",
         "external_user", "model", "provider_name", "router", "api_type", "service_tier", "data_region",
         "web_search_engine", "finish_reason", "native_finish_reason", "origin", "http_referer", "user_agent",
         "run_id"],
        "VARCHAR",
    ),
    **dict.fromkeys(
        ["app_id", "tokens_prompt", "tokens_completion", "native_tokens_prompt", "native_tokens_completion",
         "native_tokens_completion_images", "native_tokens_reasoning", "native_tokens_cached", "num_media_prompt",
         "num_input_audio_prompt", "num_media_completion", "num_search_results", "num_fetches"],
        "BIGINT",
    ),
    **dict.fromkeys(
        ["total_cost", "usage", "cache_discount", "upstream_inference_cost", "latency", "generation_time",
         "moderation_latency"],
        "DOUBLE",
    ),
    **dict.fromkeys(["is_byok", "streamed", "cancelled"], "BOOLEAN"),
    **dict.fromkeys(["created_at", "loaded_at"], "TIMESTAMP WITH TIME ZONE"),
    "provider_responses": "JSON",
    "raw": "VARCHAR",  # JSON text, queried with the JSON functions; see sql/schema/005_generations_raw_varchar.sql
}  # fmt: skip


def column_types(con, name: str) -> dict[str, str]:
    return {column: kind for column, kind, *_ in con.execute(f"describe {name}").fetchall()}


def test_generations_has_every_api_field_under_its_own_name_and_type(con):
    assert column_types(con, "generations") == GENERATION_TYPES
    assert len(GENERATION_TYPES) == 45 + 3  # the API's 45 keys, raw, loaded_at, run_id


KEYS = {"generations": ["id"], "provider_responses": ["generation_id", "attempt"], "ingest_queue": ["generation_id"]}


def declared_constraints(con, table_name: str) -> set[tuple[str, str]]:
    rows = con.execute("select constraint_type, constraint_column_names from duckdb_constraints() "
                       "where table_name = ? and database_name = current_database()", [table_name]).fetchall()
    return {(kind, ",".join(columns)) for kind, columns in rows}


def test_keys_are_not_null_and_kept_by_the_writer_without_a_key_index(con):
    # DuckDB holds a declared key's ART index in memory (sql/schema/006_keys_without_art_indexes.sql)
    for table_name, key in KEYS.items():
        constraints = declared_constraints(con, table_name)
        assert not {kind for kind, _ in constraints} & {"PRIMARY KEY", "UNIQUE"}, table_name
        assert {("NOT NULL", column) for column in key} <= constraints
    ids = [gen_id(index) for index in range(3)]
    for _ in range(2):
        write(con, [body(i) for i in ids], loaded(*ids))
        assert duckdb_writes.stage_ids(con, [(i, "app.log:1") for i in ids], seen_at=datetime.now(timezone.utc)) == 0
    for table_name, key in KEYS.items():
        (rows, keys) = con.execute(f"select count(*), count(distinct ({', '.join(key)})) from {table_name}").fetchone()
        assert rows == keys == 3, table_name


def test_the_other_tables_have_the_contract_columns(con):
    assert column_types(con, "provider_responses") == {
        "generation_id": "VARCHAR", "attempt": "INTEGER", "provider_name": "VARCHAR", "status": "INTEGER",
        "latency": "DOUBLE", "endpoint_id": "VARCHAR", "model_permaslug": "VARCHAR", "is_byok": "BOOLEAN",
        "routed_service_tier": "VARCHAR", "id": "VARCHAR",
    }  # fmt: skip
    assert column_types(con, "ingest_queue") == {
        "generation_id": "VARCHAR", "first_seen_at": "TIMESTAMP WITH TIME ZONE", "source": "VARCHAR",
        "status": "VARCHAR", "attempts": "INTEGER", "last_http_status": "INTEGER", "last_error": "VARCHAR",
        "next_attempt_at": "TIMESTAMP WITH TIME ZONE", "updated_at": "TIMESTAMP WITH TIME ZONE",
    }  # fmt: skip
    runs = column_types(con, "ingest_runs")
    assert {"run_id", "started_at", "finished_at", "options", "outcome", "counts", "loaded", "failed"} <= set(runs)
    assert runs["options"] == "JSON"
    assert column_types(con, "schema_migrations") == {
        "version": "INTEGER", "name": "VARCHAR", "applied_at": "TIMESTAMP WITH TIME ZONE"
    }


def test_migrations_are_applied_once_and_recorded(path):
    duckdb_file.connect(path).close()
    con = duckdb_file.connect(path)
    applied = con.execute("select version, name, applied_at from schema_migrations order by version").fetchall()
    assert [(version, name) for version, name, _ in applied] == [
        (version, name) for version, name, _ in sql_files.migrations()
    ]
    con.close()
    con = duckdb_file.connect(path)
    assert con.execute("select version, name, applied_at from schema_migrations order by version").fetchall() == applied
    con.close()


def test_opening_an_older_warehouse_applies_the_missing_migrations(path):
    con = duckdb_file.connect(path)
    con.execute("drop table ingest_runs")
    con.execute("delete from schema_migrations where version = 4")
    con.close()
    con = duckdb_file.connect(path)
    assert column_types(con, "ingest_runs")["run_id"] == "VARCHAR"
    assert 4 in {version for (version,) in con.execute("select version from schema_migrations").fetchall()}
    con.close()


def test_a_warehouse_with_raw_as_json_keeps_its_rows_when_raw_becomes_varchar(path):
    con = duckdb_file.connect(path)
    con.execute("alter table generations alter raw type json")  # as 001 made it, before 005
    con.execute("delete from schema_migrations where version = 5")
    write(con, [body(LLAMA["id"])])
    con.close()
    con = duckdb_file.connect(path)
    assert column_types(con, "generations")["raw"] == "VARCHAR"
    assert con.execute("select raw->>'$.usage' from generations").fetchall() == [("0.00003452",)]
    con.close()


def test_a_warehouse_with_key_indexes_keeps_its_rows_and_constraints_without_them(path):
    con = duckdb.connect(str(path))
    for version, name, file in sql_files.migrations():
        if version <= 5:  # the warehouse as orusage left it before 006
            con.execute(file.read_text())
            con.execute("insert into schema_migrations (version, name) values (?, ?)", [version, name])
    ids = [gen_id(index) for index in range(4)]
    write(con, [body(i) for i in ids[:3]], loaded(*ids[:3]))
    con.execute((sql_files.MACROS_DIR / "in_shard.sql").read_text())  # staging's macro (an older orusage had none)
    duckdb_writes.stage_ids(con, [(ids[3], "app.log:7")], seen_at=datetime.now(timezone.utc))
    before = {name: table(con, name, order_by) for name, order_by in TABLE_ORDER.items()}
    assert ("PRIMARY KEY", "id") in declared_constraints(con, "generations")
    con.close()
    con = duckdb_file.connect(path)
    assert {name: table(con, name, order_by) for name, order_by in TABLE_ORDER.items()} == before
    assert all(("PRIMARY KEY", ",".join(key)) not in declared_constraints(con, name) for name, key in KEYS.items())
    assert ("CHECK", "status") in declared_constraints(con, "ingest_queue")
    with pytest.raises(duckdb.ConstraintException, match="NOT NULL constraint failed: generations.raw"):
        con.execute("insert into generations (id, created_at, loaded_at) values ('x', now(), now())")
    with pytest.raises(duckdb.ConstraintException, match="CHECK constraint failed"):
        con.execute("update ingest_queue set status = 'lost'")
    write(con, [body(i) for i in ids], loaded(*ids))
    assert con.execute("select count(*), count(distinct id) from generations").fetchone() == (4, 4)
    assert con.execute("select count(*) from ingest_queue where status = 'loaded'").fetchone() == (4,)
    con.close()


TABLE_ORDER = {"generations": "id", "provider_responses": "generation_id, attempt", "ingest_queue": "generation_id"}


def test_every_view_file_is_a_view_after_opening(con):
    views = {name for (name,) in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
    assert {file.stem for file in sql_files.VIEWS_DIR.glob("*.sql")} <= views
    for view in views:
        con.execute(f"select * from {view} limit 0")


def test_a_warehouse_from_a_newer_orusage_is_refused(path):
    con = duckdb_file.connect(path)
    con.execute("insert into schema_migrations (version, name) values (999, '999_from_the_future')")
    con.close()
    for read_only in (False, True):
        with pytest.raises(warehouse.WarehouseTooNewError, match=rf"newer orusage \(schema version 999; this one knows up to {sql_files.latest_version()}\)"):
            duckdb_file.connect(path, read_only=read_only)


def test_read_only_refuses_a_missing_file_and_migrates_nothing(tmp_path):
    with pytest.raises(warehouse.WarehouseNotFoundError, match="no warehouse at .*missing.duckdb"):
        duckdb_file.connect(tmp_path / "missing.duckdb", read_only=True)
    assert not (tmp_path / "missing.duckdb").exists()
    duckdb.connect(str(tmp_path / "empty.duckdb")).close()
    reader = duckdb_file.connect(tmp_path / "empty.duckdb", read_only=True)
    assert reader.execute("select count(*) from information_schema.tables").fetchone() == (0,)
    reader.close()


def test_a_reader_cannot_write(path):
    duckdb_file.connect(path).close()
    reader = duckdb_file.connect(path, read_only=True)
    with pytest.raises(duckdb.Error, match="read-only"):
        reader.execute("delete from generations")
    reader.close()


def test_a_file_that_is_not_a_warehouse_gives_one_clear_line(tmp_path):
    bogus = tmp_path / "notes.duckdb"
    bogus.write_text("these are my notes\n" * 100)
    with pytest.raises(warehouse.WarehouseError, match=r"notes.duckdb is not a DuckDB file") as error:
        duckdb_file.connect(bogus)
    assert "\n" not in str(error.value)


# --- the batch upsert -------------------------------------------------------------------------


def test_a_batch_lands_in_all_three_tables(con):
    docs_body = (DOCS["id"], orjson.dumps({"data": DOCS}))
    batch = write(con, [body(LLAMA["id"]), docs_body], run_id="run-7")
    stored = con.execute("select id, created_at, total_cost, tokens_prompt, is_byok, run_id, raw::varchar from generations order by id").fetchall()
    assert stored == [
        (LLAMA["id"], datetime(2026, 2, 24, 21, 19, 33, 705000, tzinfo=timezone.utc), 0.00003452, 65, False, "run-7",
         batch.generations.filter(id=LLAMA["id"])["raw"][0]),
        (DOCS["id"], datetime(2024, 7, 15, 23, 33, 19, 433273, tzinfo=timezone.utc), 0.0015, 10, False, "run-7",
         batch.generations.filter(id=DOCS["id"])["raw"][0]),
    ]  # fmt: skip
    assert con.execute("select raw->>'$.usage' from generations where id = ?", [LLAMA["id"]]).fetchone() == ("0.00003452",)
    assert table(con, "provider_responses", "generation_id, attempt") == [
        (LLAMA["id"], 0, "DeepInfra", 200, 420.0, "9cf05ded-eefe-41b4-8c08-0c6460feffea",
         "meta-llama/llama-4-scout-17b-16e-instruct", False, None, "chatcmpl-RpyL88Ca8K6TiYlxBWgZcDml"),
    ]  # fmt: skip
    assert con.execute("select generation_id, status, attempts, last_http_status, source from ingest_queue order by 1").fetchall() == [
        (LLAMA["id"], "loaded", 1, 200, None),
        (DOCS["id"], "loaded", 1, 200, None),
    ]


def test_applying_the_same_batch_twice_changes_nothing_but_the_queue_timestamps(con):
    bodies = [body(gen_id(index), provider_responses=[{"status": 429}, {"status": 200}]) for index in range(50)]
    updates = loaded(*[generation_id for generation_id, _ in bodies[:40]]) + [
        QueueUpdate(generation_id, "failed", 3, 502, "bad gateway", NOW) for generation_id, _ in bodies[40:]
    ]
    write(con, bodies, updates)
    stored_rows = "select rowid, * from provider_responses order by rowid"  # a rewritten row moves
    before = [table(con, "generations", "id"), con.execute(stored_rows).fetchall(),
              con.execute("select * exclude (updated_at) from ingest_queue order by 1").fetchall()]  # fmt: skip
    write(con, bodies, updates, run_id="run-2")
    after = [table(con, "generations", "id"), con.execute(stored_rows).fetchall(),
             con.execute("select * exclude (updated_at) from ingest_queue order by 1").fetchall()]  # fmt: skip
    assert after == before
    assert len(before[0]) == 50 and len(before[1]) == 100


def test_a_refetched_record_replaces_the_whole_row_and_all_its_attempts(con):
    attempts = [{"provider_name": "A", "status": 429}, {"provider_name": "B", "status": 502}, {"provider_name": "C", "status": 200}]
    write(con, [body(LLAMA["id"], provider_responses=attempts, usage_cache=None)], run_id="run-1")
    write(con, [body(LLAMA["id"], provider_responses=[{"provider_name": "D", "status": 200}], tokens_prompt=99)], run_id="run-2")
    tokens, raw, run_id, stored_attempts = con.execute(
        "select tokens_prompt, raw::varchar, run_id, provider_responses::varchar from generations"
    ).fetchone()
    assert (tokens, run_id) == (99, "run-2")
    assert "usage_cache" not in orjson.loads(raw)  # the old raw is gone, not merged
    assert orjson.loads(stored_attempts) == [{"provider_name": "D", "status": 200}]
    assert con.execute("select attempt, provider_name from provider_responses").fetchall() == [(0, "D")]


def test_a_refetch_that_differs_only_in_a_key_orusage_does_not_know_replaces_raw(con):
    write(con, [body(LLAMA["id"])], run_id="run-1")
    write(con, [body(LLAMA["id"], usage_tier="gold")], run_id="run-2")  # no column holds it: only raw
    raw, run_id = con.execute("select raw, run_id from generations").fetchone()
    assert (orjson.loads(raw)["usage_tier"], run_id) == ("gold", "run-2")


def test_each_refetched_record_lands_on_its_own_row_wherever_that_row_is_stored(con):
    # The upsert finds stored rows by their rowid: rows loaded in shuffled batches, some
    # checkpointed and some not, must each be matched to the record with their own id.
    order = list(range(300))
    random.Random(7).shuffle(order)
    for start in range(0, 300, 100):
        write(con, [body(gen_id(index), tokens_prompt=index) for index in order[start:start + 100]], run_id="run-1")
        if start == 100:
            con.execute("checkpoint")
    changed, unknown_key_only, new = order[:40], order[40:60], range(300, 330)
    refetched = (
        [body(gen_id(index), tokens_prompt=10_000 + index) for index in changed]
        + [body(gen_id(index), tokens_prompt=index, usage_tier="gold") for index in unknown_key_only]
        + [body(gen_id(index), tokens_prompt=index) for index in order[60:90]]  # unchanged
        + [body(gen_id(index), tokens_prompt=index) for index in new]
    )
    random.Random(8).shuffle(refetched)
    write(con, refetched, run_id="run-2")

    rows = {row[0]: row[1:] for row in con.execute(
        "select id, tokens_prompt, run_id, raw->>'$.usage_tier' from generations").fetchall()}  # fmt: skip
    expected = {gen_id(index): (index, "run-1", None) for index in range(300)}
    expected |= {gen_id(index): (10_000 + index, "run-2", None) for index in changed}
    expected |= {gen_id(index): (index, "run-2", "gold") for index in unknown_key_only}
    expected |= {gen_id(index): (index, "run-2", None) for index in new}
    assert rows == expected
    assert con.execute("select count(*), count(distinct id) from generations").fetchone() == (330, 330)


def test_a_batch_bigger_than_the_memory_limit_still_lands(con, monkeypatch):
    monkeypatch.setattr(duckdb_writes, "MEMORY_LIMIT_MB", 1)
    monkeypatch.setattr(duckdb_writes, "BATCH_MEMORY_FACTOR", 0)
    write(con, [body(gen_id(index)) for index in range(3000)])
    assert con.execute("select count(*) from generations").fetchone() == (3000,)


def test_queue_updates_insert_ids_the_queue_has_not_seen_and_replace_the_others(con):
    duckdb_writes.stage_ids(con, [(gen_id(1), "app.log:1"), (gen_id(2), "app.log:2")], seen_at=NOW)
    retry_at = NOW + timedelta(hours=1)
    write(con, [], [
        QueueUpdate(gen_id(1), "not_found", 4, 404, "not found", retry_at),
        QueueUpdate(gen_id(3), "failed", 5, None, "connection reset", NOW),
    ])  # fmt: skip
    rows = con.execute("select generation_id, source, status, attempts, last_http_status, last_error, next_attempt_at "
                       "from ingest_queue order by 1").fetchall()  # fmt: skip
    assert rows == [
        (gen_id(1), "app.log:1", "not_found", 4, 404, "not found", retry_at),
        (gen_id(2), "app.log:2", "pending", 0, None, None, None),
        (gen_id(3), None, "failed", 5, None, "connection reset", NOW),
    ]


def test_a_queue_update_must_be_a_final_status(con):
    with pytest.raises(ValueError, match="'pending' is not loaded|not_found|failed"):
        write(con, [], [QueueUpdate(gen_id(1), "pending", 0, None, None, None)])


def test_rejected_bodies_do_not_stop_the_batch(con):
    bodies = [body(gen_id(1)), (gen_id(2), b"<html>502 Bad Gateway</html>"), body(gen_id(3), tokens_prompt=1.5)]
    batch = normalize_bodies(bodies)
    updates = loaded(*batch.generations["id"]) + [
        QueueUpdate(generation_id, "failed", 1, 200, reason, NOW) for generation_id, reason in batch.rejected
    ]
    duckdb_writes.upsert_batch(con, batch, updates, run_id="run-1")
    assert con.execute("select id from generations order by 1").fetchall() == [(gen_id(1),)]
    assert dict(con.execute("select generation_id, last_error from ingest_queue where status = 'failed'").fetchall()) == {
        gen_id(2): dict(batch.rejected)[gen_id(2)],
        gen_id(3): "data.tokens_prompt=1.5 is not an integer",
    }


def test_a_batch_that_repeats_a_key_is_refused_before_anything_is_written(con):
    # no declared key would stop the second copy (006): upsert_batch must
    batch = normalize_bodies([body(gen_id(1)), body(gen_id(2))])
    generations_twice = NormalizedBatch(pl.concat([batch.generations, batch.generations.tail(1)]), batch.provider_responses)
    attempts_twice = NormalizedBatch(batch.generations, pl.concat([batch.provider_responses.head(1), batch.provider_responses]))
    with pytest.raises(ValueError, match=f"batch repeats the key id='{gen_id(2)}'"):
        duckdb_writes.upsert_batch(con, generations_twice, loaded(gen_id(1), gen_id(2)), run_id="run-1")
    with pytest.raises(ValueError, match=f"batch repeats the key generation_id='{gen_id(1)}', attempt=0"):
        duckdb_writes.upsert_batch(con, attempts_twice, loaded(gen_id(1), gen_id(2)), run_id="run-1")
    assert [con.execute(f"select count(*) from {name}").fetchone() for name in KEYS] == [(0,), (0,), (0,)]


def test_a_failing_batch_leaves_nothing_behind(con, monkeypatch):
    write(con, [body(gen_id(1))])
    real_statement = duckdb_writes.statement
    monkeypatch.setattr(duckdb_writes, "statement", lambda name, *dialect: "select no_such_column from ingest_queue"
                        if name == "queue/insert_unqueued" else real_statement(name, *dialect))
    with pytest.raises(duckdb.Error):
        write(con, [body(gen_id(1), tokens_prompt=7), body(gen_id(2))])
    assert con.execute("select id, tokens_prompt from generations").fetchall() == [(gen_id(1), 65)]
    assert con.execute("select count(*) from provider_responses").fetchone() == (1,)


# a writer process that stops inside its transaction (or just after its commit) and waits to be killed
DOOMED_WRITER = """
import sys, time
from pathlib import Path
import orjson
from pipeline import warehouse
from pipeline.warehouse import duckdb_file, duckdb_writes
from pipeline.normalize import NormalizedBatch, normalize_bodies

path, ready, stop_after = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
record = orjson.loads(Path("tests/fixtures/generation_200_real_llama4scout_deepinfra_cancelled.json").read_bytes())["data"]
ids = [f"gen-1771967973-{index:020d}" for index in range(2000)]
batch = normalize_bodies([(i, orjson.dumps({"data": {**record, "id": i, "tokens_prompt": 2}})) for i in ids])

class StopsInside:
    def __init__(self, con):
        self.con = con
    def __getattr__(self, name):
        return getattr(self.con, name)
    def execute(self, *args):
        result = self.con.execute(*args)
        if stop_after == "first write" and args[0].lstrip().startswith(("insert", "merge", "delete")):
            # generations written, attempts and queue not yet
            ready.write_text("inside the transaction")
            time.sleep(600)
        return result
    def commit(self):
        self.con.commit()
        if stop_after == "commit":
            ready.write_text("committed")
            time.sleep(600)

con = duckdb_file.connect(path)
updates = [warehouse.QueueUpdate(i, "loaded", 1, 200, None, None) for i in ids]
duckdb_writes.upsert_batch(StopsInside(con), batch, updates, run_id="doomed")
"""


def kill_inside(path: Path, tmp_path: Path, stop_after: str) -> None:
    ready = tmp_path / "ready"
    writer = run_python(DOOMED_WRITER, str(path), str(ready), stop_after)
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert writer.poll() is None, "the writer died before reaching its stop"
        assert time.monotonic() < deadline, "the writer never reached its stop"
        time.sleep(0.02)
    writer.send_signal(signal.SIGKILL)
    writer.wait()


@pytest.mark.parametrize(("stop_after", "doomed_rows"), [("first write", 0), ("commit", 2000)])
def test_a_writer_killed_mid_batch_leaves_all_of_it_or_none(path, tmp_path, stop_after, doomed_rows):
    con = duckdb_file.connect(path)
    write(con, [body(gen_id(index)) for index in range(10)], run_id="earlier")  # tokens_prompt 65
    duckdb_writes.stage_ids(con, [(gen_id(index), "app.log") for index in range(2000)], seen_at=NOW)
    con.close()

    kill_inside(path, tmp_path, stop_after)

    con = duckdb_file.connect(path)
    by_run = dict(con.execute("select run_id, count(*) from generations group by 1").fetchall())
    if doomed_rows:
        assert by_run == {"doomed": 2000}
        assert con.execute("select count(*) from provider_responses").fetchone() == (2000,)
        assert con.execute("select status, count(*) from ingest_queue group by 1").fetchall() == [("loaded", 2000)]
    else:
        assert by_run == {"earlier": 10}
        assert con.execute("select distinct tokens_prompt from generations").fetchall() == [(65,)]
        assert con.execute("select count(*) from provider_responses").fetchone() == (10,)
        assert dict(con.execute("select status, count(*) from ingest_queue group by 1").fetchall()) == {"loaded": 10, "pending": 1990}
    write(con, [body(gen_id(index), tokens_prompt=3) for index in range(2000, 2100)], run_id="next")
    assert con.execute("select count(*) from generations where run_id = 'next'").fetchone() == (100,)
    con.close()


# --- one writer at a time ---------------------------------------------------------------------

HOLDER = """
import sys
from pipeline import warehouse
from pipeline.warehouse import duckdb_file, duckdb_writes
con = duckdb_file.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
con.close()
"""


@pytest.fixture
def holder(path):
    duckdb_file.connect(path).close()
    process = run_python(HOLDER, str(path), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "holding\n"
    yield process
    if not process.stdin.closed:
        process.stdin.close()
    process.wait(timeout=30)
    process.stdout.close()


def test_a_second_writer_is_refused_with_the_holder_named(path, holder):
    for read_only in (False, True):
        with pytest.raises(warehouse.WarehouseLockedError) as error:
            duckdb_file.connect(path, read_only=read_only)
        message = str(error.value)
        assert f"warehouse {path} is in use by another process: PID {holder.pid} (" in message
        assert "\n" not in message


class FakeClock:
    def __init__(self, on_first_sleep=None):
        self.now = 1000.0
        self.slept: list[float] = []
        self.on_first_sleep = on_first_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if not self.slept and self.on_first_sleep:
            self.on_first_sleep()
        self.slept.append(seconds)
        self.now += seconds


def test_a_writer_with_a_lock_timeout_waits_for_the_holder(path, holder, monkeypatch):
    def holder_finishes() -> None:
        holder.stdin.close()
        holder.wait(timeout=30)

    clock = FakeClock(on_first_sleep=holder_finishes)
    monkeypatch.setattr(duckdb_file, "_sleep", clock.sleep)
    monkeypatch.setattr(duckdb_file, "_monotonic", clock.monotonic)
    con = duckdb_file.connect(path, lock_timeout_s=30)
    assert con.execute("select count(*) from generations").fetchone() == (0,)
    con.close()
    assert len(clock.slept) == 1


def test_a_lock_timeout_gives_up_when_it_runs_out(path, holder, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(duckdb_file, "_sleep", clock.sleep)
    monkeypatch.setattr(duckdb_file, "_monotonic", clock.monotonic)
    with pytest.raises(warehouse.WarehouseLockedError, match=rf"\(waited 5 s\): PID {holder.pid} "):
        duckdb_file.connect(path, lock_timeout_s=5)
    assert sum(clock.slept) == pytest.approx(5)
    assert max(clock.slept) <= 1.0


# --- the queue --------------------------------------------------------------------------------


def test_stage_ids_counts_only_new_ids_and_keeps_the_first_sighting(con):
    assert duckdb_writes.stage_ids(con, [(gen_id(1), "a.log:1"), (gen_id(2), "a.log:2"), (gen_id(1), "a.log:9")], seen_at=NOW) == 2
    assert duckdb_writes.stage_ids(con, [(gen_id(2), "b.log:1"), (gen_id(3), "b.log:2")], seen_at=NOW) == 1
    assert con.execute("select generation_id, source, status, attempts, first_seen_at from ingest_queue order by 1").fetchall() == [
        (gen_id(1), "a.log:1", "pending", 0, NOW),
        (gen_id(2), "a.log:2", "pending", 0, NOW),
        (gen_id(3), "b.log:2", "pending", 0, NOW),
    ]


def test_stage_ids_leaves_loaded_ids_alone_and_works_in_chunks(con):
    write(con, [body(gen_id(1))])
    found = [(gen_id(index), f"a.log:{index}") for index in range(1, 11)]
    assert duckdb_writes.stage_ids(con, iter(found), seen_at=NOW, chunk_size=3) == 9
    assert con.execute("select status from ingest_queue where generation_id = ?", [gen_id(1)]).fetchone() == ("loaded",)


def test_stage_ids_runs_inside_the_callers_transaction(con):
    con.execute("begin transaction")
    assert duckdb_writes.stage_ids(con, [(gen_id(1), "a.log:1")], seen_at=NOW, in_transaction=True) == 1
    assert duckdb_writes.due_counts(con, now=NOW) == {"pending": 1}
    con.execute("rollback")
    assert con.execute("select count(*) from ingest_queue").fetchone() == (0,)


@pytest.fixture
def queue(con):
    """One id in every situation due_ids distinguishes."""
    ids = {
        "pending": gen_id(1),
        "loaded": gen_id(2),
        "failed, due": gen_id(3),
        "failed, later": gen_id(4),
        "not found, due": gen_id(5),
        "not found, later": gen_id(6),
        "not found, a week old": gen_id(7, seconds=T0 - 8 * 86400),
        "no timestamp, pending": "gen-3bhGkxlo4XFrqiabUM7NDtwDzWwG",
        "pending, a day later": gen_id(8, seconds=T0 + 86400),
    }
    duckdb_writes.stage_ids(con, [(generation_id, "app.log") for generation_id in ids.values()], seen_at=NOW)
    write(con, [body(ids["loaded"])])
    write(con, [], [
        QueueUpdate(ids["failed, due"], "failed", 3, 500, "boom", NOW - timedelta(seconds=1)),
        QueueUpdate(ids["failed, later"], "failed", 3, 500, "boom", NOW + timedelta(hours=1)),
        QueueUpdate(ids["not found, due"], "not_found", 3, 404, "not found", NOW),
        QueueUpdate(ids["not found, later"], "not_found", 3, 404, "not found", NOW + timedelta(hours=1)),
        QueueUpdate(ids["not found, a week old"], "not_found", 3, 404, "not found", NOW - timedelta(days=1)),
    ])  # fmt: skip
    return ids


def due(con, **options) -> list[str]:
    return [generation_id for chunk in duckdb_writes.due_ids(con, now=NOW, **options) for generation_id in chunk]


def test_due_ids_are_pending_and_retries_whose_time_has_come(con, queue):
    expected = ["pending", "failed, due", "not found, due", "no timestamp, pending", "pending, a day later"]
    assert sorted(due(con)) == sorted(queue[name] for name in expected)
    assert duckdb_writes.due_counts(con, now=NOW) == {"failed": 1, "not_found": 1, "pending": 3}


def test_refresh_adds_the_loaded_ids(con, queue):
    assert queue["loaded"] in due(con, refresh=True)
    assert duckdb_writes.due_counts(con, now=NOW, refresh=True)["loaded"] == 1


def test_since_and_until_filter_on_the_ids_own_timestamp_half_open(con, queue):
    day_one = datetime.fromtimestamp(T0, timezone.utc)
    assert queue["pending, a day later"] not in due(con, until=day_one + timedelta(hours=1))
    # an id without a timestamp is placed by when it was first seen (NOW, the next day)
    assert sorted(due(con, since=day_one + timedelta(hours=1))) == [queue["pending, a day later"], queue["no timestamp, pending"]]
    # since <= t < until: an id of second T0 is in from T0 up to T0 + 1 s, and out at until = T0
    assert queue["pending"] in due(con, since=day_one, until=day_one + timedelta(seconds=1))
    assert queue["pending"] not in due(con, since=day_one - timedelta(seconds=1), until=day_one)


def test_due_ids_come_in_chunks_from_a_snapshot(con, queue):
    chunks = duckdb_writes.due_ids(con, now=NOW, chunk_size=2)
    first = next(chunks)
    assert len(first) == 2
    write(duckdb_file.cursor(con), [body(generation_id) for generation_id in first])  # loaded while iterating
    rest = [generation_id for chunk in chunks for generation_id in chunk]
    assert len(first) + len(rest) == 5
    assert not set(first) & set(rest)
    assert con.execute("select count(*) from duckdb_tables() where temporary").fetchone() == (0,)


class ReadsRunOutOfMemory(ConnectionProxy):
    """A connection whose reads of the due-id snapshot run out of memory `times` times, as one did
    while the writer thread's batch held a 16 MB limit."""

    def __init__(self, con, times: int) -> None:
        super().__init__(con)
        self.failures_left = times

    def execute(self, sql, *args):
        if "from temp._orusage_due_" in sql and not sql.startswith("create") and self.failures_left:
            self.failures_left -= 1
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to pin block of size 256.0 KiB")
        return self._con.execute(sql, *args)


def test_a_due_id_read_that_runs_out_of_memory_waits_for_the_limit_to_lift(con, queue):
    flaky = ReadsRunOutOfMemory(con, times=3)
    assert sorted(due(flaky)) == sorted(due(con))
    assert flaky.failures_left == 0


class CommitsRunOutOfMemory(ConnectionProxy):
    """A connection whose drop of the due-id snapshot fails `times` times to commit for want of
    memory, as one did on a lake (CI, Python 3.12) while the writer thread's batch held its limit."""

    def __init__(self, con, times: int) -> None:
        super().__init__(con)
        self.failures_left = times

    def execute(self, sql, *args):
        if sql.startswith("drop table if exists temp._orusage_due_") and self.failures_left:
            self.failures_left -= 1
            raise duckdb.TransactionException("TransactionContext Error: Failed to commit: failed to allocate data "
                                              "of size 2.0 KiB (95.3 MiB/32.4 MiB used)")
        return self._con.execute(sql, *args)


def test_a_snapshot_drop_whose_commit_runs_out_of_memory_waits_for_the_limit_to_lift(con, queue):
    flaky = CommitsRunOutOfMemory(con, times=2)
    assert sorted(due(flaky)) == sorted(due(con))
    assert flaky.failures_left == 0
    assert con.execute("select count(*) from duckdb_tables() where temporary").fetchone() == (0,)


def test_a_batch_whose_commit_runs_out_of_memory_is_written_again_without_the_limit(con):
    limits = []

    def write():
        limits.append(con.execute("select current_setting('memory_limit')").fetchone()[0])
        if len(limits) == 1:
            raise duckdb.TransactionException("Failed to commit: failed to allocate data of size 2.0 KiB")
        return "written"

    assert duckdb_writes._under_batch_memory_limit(con, [], write) == "written"
    assert limits[0].endswith("MiB") and limits[1].endswith("GiB")

    def conflicts():
        raise duckdb.TransactionException("Conflict on tuple deletion")

    with pytest.raises(duckdb.TransactionException, match="Conflict"):  # any other failure is not retried here
        duckdb_writes._under_batch_memory_limit(con, [], conflicts)


def test_a_due_id_read_that_keeps_running_out_of_memory_gives_up(con, queue, monkeypatch):
    monkeypatch.setattr(duckdb_writes, "READ_OUT_OF_MEMORY_WAIT_S", 0.2)
    with pytest.raises(duckdb.OutOfMemoryException):
        due(ReadsRunOutOfMemory(con, times=1000))


# --- runs -------------------------------------------------------------------------------------


def test_a_run_is_recorded_without_any_key(con):
    run_id = duckdb_writes.start_run(con, options={
        "paths": ["logs/"], "concurrency": 32, "api_key": "sk-or-v1-secret", "base_url": "sk-or-v1-pasted-in-the-wrong-place",
        "headers": {"Authorization": "Bearer sk-or-v1-secret"},
    })  # fmt: skip
    duckdb_writes.finish_run(con, run_id, outcome="some_failed", counts={
        "loaded": 7, "failed": 2, "not_found": 1, "ids_in_logs": 10, "error": None, "due_by_status": {"pending": 10},
    })  # fmt: skip
    row = con.execute("select run_id, outcome, loaded, failed, not_found, ids_in_logs, finished_at >= started_at, "
                      "options::varchar, counts::varchar from ingest_runs").fetchone()  # fmt: skip
    assert row[:7] == (run_id, "some_failed", 7, 2, 1, 10, True)
    assert orjson.loads(row[7]) == {"paths": ["logs/"], "concurrency": 32, "base_url": "[redacted]", "headers": {}}
    assert orjson.loads(row[8])["due_by_status"] == {"pending": 10}
    assert "sk-or" not in str(con.execute("select * from ingest_runs").fetchall())


def test_a_run_that_never_finished_has_no_outcome(con):
    run_id = duckdb_writes.start_run(con, options={})
    assert con.execute("select finished_at, outcome from ingest_runs where run_id = ?", [run_id]).fetchone() == (None, None)

class RecordsMemoryLimits(ConnectionProxy):
    """A writer connection that notes the memory limit in force at each write of generations and
    at each commit."""

    def __init__(self, con) -> None:
        super().__init__(con)
        self.at_write: list[str] = []
        self.at_commit: list[str] = []

    def _limit(self) -> str:
        return self._con.execute("select current_setting('memory_limit')").fetchone()[0]

    def execute(self, sql, *args):
        if sql.lstrip().lower().startswith(("insert into generations", "update generations")):
            self.at_write.append(self._limit())
        return self._con.execute(sql, *args)

    def commit(self):
        self.at_commit.append(self._limit())
        return self._con.commit()


def test_a_batch_runs_under_its_memory_limit_and_commits_without_it(con):
    # DuckDB 1.5.5 failed commits under 16-32 MB limits ("Failed to commit: failed to pin block"),
    # and retrying that batch then hit a duplicate key: a commit must not run out of memory.
    recorder = RecordsMemoryLimits(con)
    write(recorder, [body(gen_id(index)) for index in range(100)])
    assert recorder.at_write and all(limit.endswith("MiB") for limit in recorder.at_write)
    assert recorder.at_commit and all(limit.endswith("GiB") for limit in recorder.at_commit)
    # Between batches too: any statement can fail under a tight limit while rows await the checkpoint
    assert con.execute("select current_setting('memory_limit')").fetchone()[0].endswith("GiB")


def wal_bytes(path: Path) -> int:
    return os.stat(f"{path}.wal").st_size if os.path.exists(f"{path}.wal") else 0


def test_a_batch_checkpoints_once_the_wal_passes_the_threshold(path, monkeypatch):
    with duckdb_file.connect(path) as con:
        write(con, [body(gen_id(index)) for index in range(200)])
        assert wal_bytes(path) > 0  # under the threshold: left in the WAL
        monkeypatch.setattr(duckdb_writes, "CHECKPOINT_AFTER_WAL_MB", 0)
        write(con, [body(gen_id(index)) for index in range(200, 400)])
        assert wal_bytes(path) == 0
        assert con.execute("select count(*) from generations").fetchone() == (400,)


def test_a_checkpoint_under_a_tiny_memory_limit_still_completes(path, monkeypatch):
    monkeypatch.setattr(duckdb_writes, "CHECKPOINT_AFTER_WAL_MB", 0)
    monkeypatch.setattr(duckdb_writes, "MEMORY_LIMIT_MB", 1)
    monkeypatch.setattr(duckdb_writes, "BATCH_MEMORY_FACTOR", 0)
    with duckdb_file.connect(path) as con:
        for first in (0, 3000):
            write(con, [body(gen_id(index)) for index in range(first, first + 3000)])
        assert wal_bytes(path) == 0
    with duckdb_file.connect(path, read_only=True) as reader:
        assert reader.execute("select count(*) from generations").fetchone() == (6000,)


def test_a_batch_written_while_another_cursor_has_a_transaction_open_still_commits(path, monkeypatch):
    monkeypatch.setattr(duckdb_writes, "CHECKPOINT_AFTER_WAL_MB", 0)
    with duckdb_file.connect(path) as con:
        other = duckdb_file.cursor(con)
        other.execute("begin transaction")
        other.execute("select count(*) from ingest_queue").fetchall()
        write(con, [body(gen_id(index)) for index in range(10)])  # its checkpoint may have to wait
        other.execute("commit")
        write(con, [body(gen_id(index)) for index in range(10, 20)])
        assert wal_bytes(path) == 0
        assert con.execute("select count(*) from generations").fetchone() == (20,)

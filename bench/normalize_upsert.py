"""Normalize + upsert throughput: the parse candidates, the upsert candidates, the real path, the naive path.

    .venv/bin/python bench/normalize_upsert.py            # 1M existing rows, a 1M-body stream
    .venv/bin/python bench/normalize_upsert.py --quick    # 100k / 100k, smaller samples

The stream is half new ids, half revised records of existing ids (tokens_completion, total_cost
and cancelled changed: each must be rewritten), in batches (as `orusage ingest` writes them), into
a warehouse already holding the existing rows. Identical re-fetches (what `ingest --refresh` mostly
gets back) are measured apart, as a stream of their own. Bodies are shaped by
`pipeline.fake_api.Dataset` (~1.4 KB, every record shape it serves) and stamped with fresh ids,
timestamps and token counts, so generating 1M of them takes seconds, not minutes; generation is
not timed. Times are wall clock; "cpu" adds up every thread of the process (DuckDB uses several).
Writes its warehouses under bench/out/ (named after the process: runs may overlap) and removes
them at the end.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import msgspec
import orjson
import polars as pl
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import normalize  # noqa: E402
from pipeline.warehouse import QueueUpdate, duckdb_file, duckdb_writes  # noqa: E402
from pipeline.fake_api import Dataset  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent / "out"
FIGURES: dict[str, object] = {}  # what --json prints at the end (bench/run reads it)
T0_S = 1_771_000_000
RUN_ID = "bench"


# --- the upsert candidates -------------------------------------------------------------------
# What the warehouse's upsert (duckdb_writes.write_generations: stored rows found by rowid, then
# compared and updated, new ones inserted) is measured against. Each candidate is one statement
# for the generations, then the stored attempts replaced.

W = duckdb_writes
BY_ROWID = "by_rowid"


def _merge_sql(changed: str) -> str:
    updates = ", ".join(f"{column} = batch.{column}" for column in W._GENERATION_COLUMNS if column != "id")
    columns = ", ".join(W._GENERATION_COLUMNS)
    values = ", ".join(f"batch.{column}" for column in W._GENERATION_COLUMNS)
    return (
        f"merge into generations using {W._generations_source()} as batch on generations.id = batch.id "
        f"when matched and ({changed}) then update set {updates} "
        f"when not matched then insert ({columns}) values ({values})"
    )


def _delete_insert_sql() -> str:
    columns = ", ".join(W._GENERATION_COLUMNS)
    return (
        f"delete from generations where id in (select id from {W._BATCH_GENERATIONS}); "
        f"insert into generations ({columns}) select {columns} from {W._generations_source()}"
    )


ONE_STATEMENT_UPSERTS = {
    "merge": _merge_sql(W._API_FIELDS_CHANGED),
    "merge_raw": _merge_sql(W._RAW_CHANGED),
    "delete_insert": _delete_insert_sql(),
}
UPSERT_STRATEGIES = (BY_ROWID, *ONE_STATEMENT_UPSERTS)
_REPLACE_ATTEMPTS_SQL = W._replace_attempts_sql(f"select id from {W._BATCH_GENERATIONS}")


def upsert_with(strategy: str, con, frame, updates, *, run_id: str) -> None:
    """upsert_batch, with the generations written by `strategy` (by_rowid: the warehouse's own)."""
    if strategy == BY_ROWID:
        W.upsert_batch(con, frame, updates, run_id=run_id)
        return

    def write_generations(con, batch, *, loaded_at, run_id):
        with W._registered(con, {W._BATCH_GENERATIONS: batch.generations, W._BATCH_ATTEMPTS: batch.provider_responses}):
            con.execute(ONE_STATEMENT_UPSERTS[strategy], {"loaded_at": loaded_at, "run_id": run_id})
            con.execute(_REPLACE_ATTEMPTS_SQL)

    original, W.write_generations = W.write_generations, write_generations
    try:
        W.upsert_batch(con, frame, updates, run_id=run_id)
    finally:
        W.write_generations = original


# --- bodies ----------------------------------------------------------------------------------


class Bodies:
    """Realistic bodies, fast: fake_api records turned into templates with holes for the id,
    created_at and the fields a later revision of a record changes. `version` 0 is the record as
    first loaded; a higher one is a revision: tokens_completion + version, total_cost up by
    version %, cancelled true (a changed record: the warehouse must rewrite it). The same index
    and version again is an identical re-fetch."""

    def __init__(self, templates: int = 1000, seed: int = 0) -> None:
        dataset = Dataset(templates, seed=seed)
        self._templates: list[tuple[bytes, int, float, bool]] = []
        for index in range(templates):
            record = dict(dataset.record_at(index))
            record["id"], record["created_at"] = "@@ID@@", "@@CREATED@@"
            tokens = record.get("tokens_completion")
            if isinstance(tokens, int):
                record["tokens_completion"] = "@@TC@@"
            cost, cancelled = float(record.get("total_cost") or 0), bool(record.get("cancelled"))
            record["total_cost"], record["cancelled"] = "@@COST@@", "@@CANCELLED@@"
            body = orjson.dumps({"data": record}).replace(b"%", b"%%")
            for hole, value in ((b"ID", b"%(id)s"), (b"CREATED", b"%(created)s"), (b"TC", b"%(tc)d"),
                                (b"COST", b"%(cost)s"), (b"CANCELLED", b"%(cancelled)s")):
                body = body.replace(b'"@@' + hole + b'@@"', value if hole in (b"TC", b"COST", b"CANCELLED") else b'"' + value + b'"')
            self._templates.append((body, tokens if isinstance(tokens, int) else 0, cost, cancelled))

    @staticmethod
    def generation_id(index: int) -> str:
        return f"gen-{T0_S + index // 20:010d}-{index:020d}"

    def body(self, index: int, version: int = 0) -> tuple[str, bytes]:
        generation_id = self.generation_id(index)
        template, tokens, cost, cancelled = self._templates[index % len(self._templates)]
        stamp = datetime.fromtimestamp(T0_S + index // 20, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        micros = (index * 7919) % 1_000_000
        created = f"{stamp}.{micros:06d}+00:00" if index % 2 else f"{stamp}.{micros // 1000:03d}Z"
        values = {
            b"id": generation_id.encode(), b"created": created.encode(), b"tc": tokens + version,
            b"cost": repr(cost * (1 + version / 100)).encode(), b"cancelled": b"true" if cancelled or version else b"false",
        }
        return generation_id, template % values


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Timing:
    wall_s: float
    cpu_s: float


def timed(function: Callable[[], object], repeat: int = 1) -> tuple[Timing, object]:
    """Best of `repeat` runs (the machine is shared: the best run is the least disturbed)."""
    best: Timing | None = None
    result = None
    for _ in range(repeat):
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        result = function()
        timing = Timing(time.perf_counter() - wall, time.process_time() - cpu)
        if best is None or timing.wall_s < best.wall_s:
            best = timing
    assert best is not None
    return best, result


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def per_s(count: int, timing: Timing) -> float:
    return round(count / timing.wall_s) if timing.wall_s else 0.0


def figure(section: str, key: str, count: int, timing: Timing) -> None:
    FIGURES.setdefault(section, {})[key] = {"per_s": per_s(count, timing), "us_cpu": round(timing.cpu_s * 1e6 / count, 2)}


def line(label: str, count: int, timing: Timing, extra: str = "") -> str:
    rate = count / timing.wall_s if timing.wall_s else float("inf")
    return (
        f"  {label:<58} {rate:>10,.0f}/s  {timing.wall_s * 1e6 / count:6.2f} us wall"
        f"  {timing.cpu_s * 1e6 / count:6.2f} us cpu{extra}"
    )


# --- parse candidates ------------------------------------------------------------------------

_FLAT_SCHEMA = {name: dtype for name, dtype in normalize.GENERATION_SCHEMA.items() if name not in ("provider_responses", "raw")}
_FLAT_SCHEMA["created_at"] = pl.String()


@dataclass
class _GcPaused:
    def __enter__(self) -> None:
        self.was = gc.isenabled()
        gc.disable()

    def __exit__(self, *_: object) -> None:
        if self.was:
            gc.enable()


def parse_candidates(sample: list[tuple[str, bytes]]) -> list[tuple[str, str, Callable[[], object]]]:
    bodies = [body for _, body in sample]
    attempt_struct = pl.Struct({name: normalize.PROVIDER_RESPONSE_SCHEMA[name] for name in normalize._ATTEMPT_FIELDS})
    nested = pl.Struct({"data": pl.Struct({**_FLAT_SCHEMA, "provider_responses": pl.List(attempt_struct)})})
    duck_types = {pl.String(): "VARCHAR", pl.Int64(): "BIGINT", pl.Float64(): "DOUBLE", pl.Boolean(): "BOOLEAN"}
    structure = {name: duck_types[dtype] for name, dtype in _FLAT_SCHEMA.items()}
    structure["provider_responses"] = [{name: duck_types.get(dtype, "INTEGER") for name, dtype in attempt_struct.to_schema().items()}]
    duck_structure = json.dumps({"data": structure}).replace("'", "''")
    con = duckdb.connect()
    ndjson = b"\n".join(bodies)  # fake_api bodies are single-line

    def orjson_gc_on() -> object:
        return [orjson.loads(body) for body in bodies]

    def orjson_gc_paused() -> object:
        with _GcPaused():
            return [orjson.loads(body) for body in bodies]

    def orjson_dicts_frame() -> object:
        with _GcPaused():
            records = [orjson.loads(body)["data"] for body in bodies]
            return pl.DataFrame(records, schema=_FLAT_SCHEMA)

    def orjson_column_lists() -> object:
        with _GcPaused():
            records = [orjson.loads(body)["data"] for body in bodies]
            return pl.DataFrame([pl.Series(name, [r.get(name) for r in records], dtype) for name, dtype in _FLAT_SCHEMA.items()])

    decode = msgspec.json.Decoder(normalize._Body).decode

    def msgspec_columns() -> object:
        with _GcPaused():
            rows = [normalize._row_of(decode(body).data) for body in bodies]
            return normalize._frame(rows, normalize._ROW_FIELDS, normalize.GENERATION_SCHEMA)

    def polars_read_ndjson() -> object:
        return pl.read_ndjson(io.BytesIO(ndjson), schema=nested.to_schema()).unnest("data")

    def polars_json_decode() -> object:
        return pl.Series(bodies, dtype=pl.Binary()).cast(pl.String()).str.json_decode(nested).struct.unnest()

    def duckdb_json_transform() -> object:
        source = pl.DataFrame({"body": pl.Series(bodies, dtype=pl.Binary()).cast(pl.String())})
        con.register("bodies", duckdb_writes._ArrowStream(source))
        return pl.DataFrame(con.sql(f"select unnest(json_transform(body, '{duck_structure}').data) from bodies"))

    def normalize_bodies() -> object:
        return normalize.normalize_bodies(sample)

    return [
        ("orjson_gc_on", "orjson.loads, GC on (parse only)", orjson_gc_on),
        ("orjson_gc_paused", "orjson.loads, GC paused (parse only)", orjson_gc_paused),
        ("orjson_dicts_frame", "orjson + dicts -> pl.DataFrame(schema)", orjson_dicts_frame),
        ("orjson_column_lists", "orjson + column lists -> pl.Series", orjson_column_lists),
        ("polars_read_ndjson", "pl.read_ndjson, nested schema", polars_read_ndjson),
        ("polars_json_decode", "polars str.json_decode, nested struct", polars_json_decode),
        ("duckdb_json_transform", "DuckDB json_transform over an Arrow column", duckdb_json_transform),
        ("msgspec_columns", "msgspec typed structs -> rows -> columns", msgspec_columns),
        ("normalize_bodies", "normalize_bodies (msgspec; + checks, raw, attempts)", normalize_bodies),
    ]


# --- the run ---------------------------------------------------------------------------------


def stream_batches(existing: int, stream: int, batch: int) -> Iterator[list[int]]:
    """Half new ids (existing, existing+1, ...), half existing ones (0, 1, ...), in each batch."""
    new_next, old_next = existing, 0
    for ids in batches(0, stream, batch):
        half = len(ids) // 2
        yield list(range(new_next, new_next + len(ids) - half)) + list(range(old_next, old_next + half))
        new_next += len(ids) - half
        old_next += half


def sum_generation_s(bodies: Bodies, plan: list[list[int]]) -> float:
    """What generating the bodies of `plan` costs, to subtract it from a loop that had to do it."""
    started = time.perf_counter()
    for indexes in plan:
        [bodies.body(index, version=2) for index in indexes]
    return time.perf_counter() - started


def loaded(ids: list[str]) -> list[QueueUpdate]:
    return [QueueUpdate(generation_id, "loaded", 1, 200, None, None) for generation_id in ids]


def batches(start: int, stop: int, size: int) -> Iterator[range]:
    for first in range(start, stop, size):
        yield range(first, min(first + size, stop))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k existing rows and a 100k stream, small samples")
    parser.add_argument("--existing", type=int, help="rows in the warehouse before the stream (default 1,000,000)")
    parser.add_argument("--stream", type=int, help="bodies in the measured stream (default 1,000,000)")
    parser.add_argument("--batch", type=int, default=25_000, help="bodies per batch (default 25,000)")
    parser.add_argument("--naive", type=int, help="records for the naive path (default 20,000; quick 500)")
    parser.add_argument("--keep", action="store_true", help="keep the warehouses in bench/out/")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object at the end")
    args = parser.parse_args()
    existing = args.existing or (100_000 if args.quick else 1_000_000)
    stream = args.stream or (100_000 if args.quick else 1_000_000)
    naive_n = args.naive or (500 if args.quick else 20_000)
    sample_n = 20_000 if args.quick else 50_000
    batch = args.batch

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"normalize_upsert-{os.getpid()}.duckdb"
    naive_path = OUT_DIR / f"normalize_upsert_naive-{os.getpid()}.duckdb"
    remove(path, naive_path)
    bodies = Bodies()
    print(f"normalize + upsert: {existing:,} rows already loaded, a {stream:,}-body stream (half new ids, half "
          f"revised records of existing ids), batches of {batch:,}; duckdb {duckdb.__version__}, "
          f"polars {pl.__version__}, msgspec {msgspec.__version__}, {psutil.cpu_count()} cpus")
    print(f"bodies: {sum(len(bodies.body(index)[1]) for index in range(1000)) / 1000:,.0f} bytes on average")

    con = duckdb_file.connect(path)
    build(con, bodies, existing, stream, batch)
    end_to_end_rate = run_stream(con, path, bodies, existing, stream, batch)
    identical_rate = identical_refetches(con, bodies, existing, stream, batch)
    upsert_candidates(con, bodies, existing, stream, batch)
    raw_json_vs_varchar(con, bodies, batch)
    cost_accuracy(con)
    con.close()
    merge_ceiling(bodies, max(batch, 25_000), 100_000 if args.quick else 200_000)

    sample = [bodies.body(index) for index in range(sample_n)]
    print(f"\nparse candidates ({sample_n:,} bodies, best of 3):")
    for key, label, candidate in parse_candidates(sample):
        timing, _ = timed(candidate, repeat=3)
        print(line(label, sample_n, timing))
        figure("parse", key, sample_n, timing)
    del sample

    naive_rate = naive(naive_path, bodies, naive_n)
    print(f"\nEND TO END {end_to_end_rate:,.0f} generations/s (half new, half revised; identical re-fetches "
          f"{identical_rate:,.0f}/s); naive path {naive_rate:,.0f}/s: {end_to_end_rate / naive_rate:,.0f}x faster")
    FIGURES.update(existing=existing, stream_bodies=stream, batch=batch, naive_records=naive_n,
                   end_to_end_per_s=round(end_to_end_rate), identical_refetch_per_s=round(identical_rate),
                   naive_per_s=round(naive_rate, 1),
                   ratio_vs_naive=round(end_to_end_rate / naive_rate, 1))
    if args.json:
        print(json.dumps(FIGURES, indent=1))
    if not args.keep:
        remove(path, naive_path)


def remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
        Path(f"{path}.wal").unlink(missing_ok=True)
        shutil.rmtree(f"{path}.tmp", ignore_errors=True)  # DuckDB's spill files


def build(con: duckdb.DuckDBPyConnection, bodies: Bodies, existing: int, stream: int, batch: int) -> None:
    print(f"\nbuilding the warehouse ({existing:,} rows, insert-only batches):")
    load = Timing(0, 0)
    for ids in batches(0, existing, batch):
        frame = normalize.normalize_bodies([bodies.body(index) for index in ids])
        updates = loaded(list(frame.generations["id"]))
        timing, _ = timed(lambda: duckdb_writes.upsert_batch(con, frame, updates, run_id=RUN_ID))
        load = Timing(load.wall_s + timing.wall_s, load.cpu_s + timing.cpu_s)
    timing, _ = timed(lambda: con.execute("checkpoint"))
    print(line("upsert_batch, all new ids, + the checkpoint", existing,
               Timing(load.wall_s + timing.wall_s, load.cpu_s + timing.cpu_s)))
    new_ids = range(existing, existing + stream - stream // 2)
    found = [(bodies.generation_id(index), f"app.log:{index}") for index in new_ids]
    timing, _ = timed(lambda: duckdb_writes.stage_ids(con, found, seen_at=datetime.now(timezone.utc)))
    print(line("stage_ids (the stream's new ids, as pending)", len(new_ids), timing))


def run_stream(con: duckdb.DuckDBPyConnection, path: Path, bodies: Bodies, existing: int, stream: int, batch: int) -> float:
    print(f"\nthe stream: {stream:,} bodies, normalize_bodies + upsert_batch per batch;")
    print("  first half one batch after the other; second half pipelined (the next batch is normalized while")
    print("  DuckDB writes the previous one on another thread, as ingest's writer thread overlaps fetching):")
    gc.collect()
    rss_before = rss_mb()
    peak = [rss_before]
    plan = list(stream_batches(existing, stream, batch))
    halfway = max(1, len(plan) // 2)

    def upsert(frame: normalize.NormalizedBatch, updates: list[QueueUpdate]) -> None:
        duckdb_writes.upsert_batch(con, frame, updates, run_id=RUN_ID)
        peak[0] = max(peak[0], rss_mb())

    normalize_t, upsert_t = Timing(0, 0), Timing(0, 0)
    for indexes in plan[:halfway]:
        raw = [bodies.body(index, version=2) for index in indexes]
        n_timing, frame = timed(lambda: normalize.normalize_bodies(raw))
        updates = loaded([generation_id for generation_id, _ in raw])
        u_timing, _ = timed(lambda: upsert(frame, updates))
        normalize_t = Timing(normalize_t.wall_s + n_timing.wall_s, normalize_t.cpu_s + n_timing.cpu_s)
        upsert_t = Timing(upsert_t.wall_s + u_timing.wall_s, upsert_t.cpu_s + u_timing.cpu_s)
        del raw, frame, updates
    checkpoint_t, _ = timed(lambda: con.execute("checkpoint"))
    sequential_n = sum(len(indexes) for indexes in plan[:halfway])
    sequential = Timing(normalize_t.wall_s + upsert_t.wall_s + checkpoint_t.wall_s,
                        normalize_t.cpu_s + upsert_t.cpu_s + checkpoint_t.cpu_s)
    print(line("normalize_bodies", sequential_n, normalize_t))
    print(line("upsert_batch", sequential_n, upsert_t))
    print(line("checkpoint at the end (compress + write what the WAL holds)", sequential_n, checkpoint_t))
    print(line("end to end before the checkpoint (normalize + upsert_batch)", sequential_n,
               Timing(normalize_t.wall_s + upsert_t.wall_s, normalize_t.cpu_s + upsert_t.cpu_s)))
    print(line("END TO END, one batch after the other, checkpoint included", sequential_n, sequential))
    figure("stream", "normalize", sequential_n, normalize_t)
    figure("stream", "upsert", sequential_n, upsert_t)
    figure("stream", "checkpoint", sequential_n, checkpoint_t)
    figure("stream", "end_to_end", sequential_n, sequential)

    rest = plan[halfway:]
    if rest:
        with ThreadPoolExecutor(max_workers=1) as writer:
            def pipelined() -> None:
                in_flight = None
                for indexes in rest:
                    raw = [bodies.body(index, version=2) for index in indexes]  # subtracted below
                    frame = normalize.normalize_bodies(raw)
                    if in_flight is not None:
                        in_flight.result()
                    in_flight = writer.submit(upsert, frame, loaded([generation_id for generation_id, _ in raw]))
                if in_flight is not None:
                    in_flight.result()
                con.execute("checkpoint")

            pipelined_t, _ = timed(pipelined)
        generation_s = sum_generation_s(bodies, rest)
        pipelined_n = sum(len(indexes) for indexes in rest)
        pipelined_t = Timing(pipelined_t.wall_s - generation_s, pipelined_t.cpu_s - generation_s)
        print(line("END TO END, pipelined, checkpoint included (body generation subtracted)", pipelined_n, pipelined_t))
        figure("stream", "end_to_end_pipelined", pipelined_n, pipelined_t)
    FIGURES["rss_mb"] = {"before_stream": round(rss_before), "peak": round(peak[0])}
    print(f"  RSS: {rss_before:,.0f} MB before the stream, {peak[0]:,.0f} MB at its peak (mostly DuckDB's "
          "buffer pool: cached blocks and the WAL's pending rows)")
    rows = con.execute("select count(*) from generations").fetchone()[0]
    queue = dict(con.execute("select status, count(*) from ingest_queue group by status").fetchall())
    print(f"  warehouse after: {rows:,} generations, queue {queue}, {path.stat().st_size / 2**20:,.0f} MB on disk")
    return sequential_n / sequential.wall_s


def identical_refetches(con: duckdb.DuckDBPyConnection, bodies: Bodies, existing: int, stream: int, batch: int) -> float:
    """Existing ids the stream left alone, fetched again and unchanged: nothing may be rewritten."""
    first, count = stream // 2, min(stream // 2, existing - stream // 2)
    print(f"\nidentical re-fetches: {count:,} existing ids, bodies as loaded, normalize_bodies + upsert_batch:")
    if count <= 0:
        return 0.0
    normalize_t, upsert_t = Timing(0, 0), Timing(0, 0)
    for indexes in batches(first, first + count, batch):
        raw = [bodies.body(index) for index in indexes]
        n_timing, frame = timed(lambda: normalize.normalize_bodies(raw))
        updates = loaded([generation_id for generation_id, _ in raw])
        u_timing, _ = timed(lambda: duckdb_writes.upsert_batch(con, frame, updates, run_id="identical"))
        normalize_t = Timing(normalize_t.wall_s + n_timing.wall_s, normalize_t.cpu_s + n_timing.cpu_s)
        upsert_t = Timing(upsert_t.wall_s + u_timing.wall_s, upsert_t.cpu_s + u_timing.cpu_s)
    checkpoint_t, _ = timed(lambda: con.execute("checkpoint"))
    total = Timing(normalize_t.wall_s + upsert_t.wall_s + checkpoint_t.wall_s, normalize_t.cpu_s + upsert_t.cpu_s + checkpoint_t.cpu_s)
    rewritten = con.execute("select count(*) from generations where run_id = 'identical'").fetchone()[0]
    print(line("normalize_bodies", count, normalize_t))
    print(line("upsert_batch", count, upsert_t))
    print(line(f"END TO END, checkpoint included ({rewritten:,} rows rewritten)", count, total))
    figure("identical_refetch", "normalize", count, normalize_t)
    figure("identical_refetch", "upsert", count, upsert_t)
    figure("identical_refetch", "end_to_end", count, total)
    return count / total.wall_s


def upsert_candidates(con: duckdb.DuckDBPyConnection, bodies: Bodies, existing: int, stream: int, batch: int) -> None:
    print(f"\nupsert candidates (upsert_batch, batches of {batch:,}; existing ids get a changed body):")
    spare_new = 10 * (existing + stream)  # new ids for this part only, far from the stream's
    spare_old = existing - 1  # existing ids, from the top down (the stream took them from the bottom up)
    for strategy in UPSERT_STRATEGIES:
        chosen = " (chosen)" if strategy == BY_ROWID else ""
        for kind, key, new_share in (("new ids", "new", 1.0), ("existing ids, changed", "existing_changed", 0.0),
                                     ("half new, half existing", "half_new", 0.5)):
            new_count = int(batch * new_share)
            indexes = list(range(spare_new, spare_new + new_count))
            indexes += list(range(spare_old, spare_old - (batch - new_count), -1))
            spare_new += new_count
            spare_old -= batch - new_count
            frame = normalize.normalize_bodies([bodies.body(index, version=1) for index in indexes])
            updates = loaded(list(frame.generations["id"]))
            timing, _ = timed(lambda: upsert_with(strategy, con, frame, updates, run_id=RUN_ID))
            print(line(f"{strategy}{chosen}: {kind}", batch, timing))
            figure(f"upsert_{strategy}", key, batch, timing)
        timing, _ = timed(lambda: upsert_with(strategy, con, frame, updates, run_id=RUN_ID))
        print(line(f"{strategy}{chosen}: the same batch again (unchanged re-fetch)", batch, timing))
        figure(f"upsert_{strategy}", "unchanged_refetch", batch, timing)
    timing, _ = timed(lambda: con.execute("checkpoint"))
    print(line("the checkpoint after them", batch * 4 * len(UPSERT_STRATEGIES), timing))


def raw_json_vs_varchar(con: duckdb.DuckDBPyConnection, bodies: Bodies, batch: int) -> None:
    """The same batch inserted into two empty copies of `generations`, raw as JSON and as VARCHAR
    (a JSON column validates every value on the way in)."""
    frame = normalize.normalize_bodies([bodies.body(index) for index in range(batch)]).generations
    columns = ", ".join(frame.columns)
    print("\nraw column type (insert of one batch into an empty generations table):")
    for raw_type in ("json", "varchar"):
        con.execute(f"create or replace temp table generations_{raw_type} as select * from generations limit 0")
        con.execute(f"alter table generations_{raw_type} alter raw type {raw_type}")
        con.register("frame", duckdb_writes._ArrowStream(frame))
        timing, _ = timed(lambda: con.execute(
            f"insert into generations_{raw_type} ({columns}, loaded_at) select {columns}, now() from frame"))
        con.unregister("frame")
        con.execute(f"drop table generations_{raw_type}")
        print(line(f"raw {raw_type.upper()}", batch, timing))
        figure("raw_column_insert", raw_type, batch, timing)


def _empty_copy(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> None:
    """Table `g`, with `frame`'s columns and types and no rows."""
    con.register("first", duckdb_writes._ArrowStream(frame.clear()))
    con.execute("create table g as select * from first")
    con.unregister("first")


def _load(con: duckdb.DuckDBPyConnection, frames: list[pl.DataFrame], statement: str, *, strip_raw: bool) -> Timing:
    """`statement` (reading the frame as `b`) once per frame, `raw` nulled if asked; the time it took."""
    total = Timing(0, 0)
    for frame in frames:
        if strip_raw:
            frame = frame.with_columns(pl.lit(None, pl.String()).alias("raw"))
        con.register("b", duckdb_writes._ArrowStream(frame))
        timing, _ = timed(lambda: con.execute(statement))
        con.unregister("b")
        total = Timing(total.wall_s + timing.wall_s, total.cpu_s + timing.cpu_s)
    return total


def merge_ceiling(bodies: Bodies, batch: int, rows: int) -> None:
    """What DuckDB's MERGE alone reaches with our frames, in memory (no file, WAL, checkpoint, other
    table or normalizing), new ids into a table with `id` as its primary key: with `raw` as stored
    and with `raw` null, to show what the ~1.4 KB of text per row costs."""
    frames = [normalize.normalize_bodies([bodies.body(index) for index in ids]).generations
              for ids in batches(10**8, 10**8 + rows, batch)]  # ids unlike the warehouse's
    print(f"\nMERGE alone, in memory, new ids ({rows:,} rows, batches of {batch:,}; the upper bound of upsert_batch):")
    for label, key, strip_raw in (("with raw", "with_raw", False), ("raw null", "raw_null", True)):
        memory = duckdb.connect(config={"threads": duckdb_writes.THREADS})
        _empty_copy(memory, frames[0])
        memory.execute("alter table g add primary key (id)")
        load = _load(memory, frames, "merge into g using b on g.id = b.id when matched then update when not matched "
                     "then insert", strip_raw=strip_raw)
        memory.close()
        print(line(label, rows, load))
        figure("merge_in_memory", key, rows, load)
    insert_floor(frames, rows)


def insert_floor(frames: list[pl.DataFrame], rows: int) -> None:
    """The least DuckDB can do with these rows, on disk: append them to a table with no key and
    nothing else in the transaction, then CHECKPOINT (where it compresses and writes them). No
    upsert of the same rows, with raw, can beat the "with raw" figure on this machine."""
    print(f"\nINSERT alone, on disk, into a table with no key, then CHECKPOINT ({rows:,} rows; the floor):")
    for label, key, strip_raw in (("with raw", "with_raw", False), ("raw null", "raw_null", True)):
        path = OUT_DIR / f"insert_floor-{os.getpid()}.duckdb"
        remove(path)
        disk = duckdb.connect(str(path), config={"threads": duckdb_writes.THREADS})
        disk.execute(f"set checkpoint_threshold = '{duckdb_writes.NO_AUTOMATIC_CHECKPOINT}'")
        _empty_copy(disk, frames[0])
        inserts = _load(disk, frames, "insert into g select * from b", strip_raw=strip_raw)
        checkpoint, _ = timed(lambda: disk.execute("checkpoint"))
        disk.close()
        remove(path)
        total = Timing(inserts.wall_s + checkpoint.wall_s, inserts.cpu_s + checkpoint.cpu_s)
        print(line(f"{label}: the inserts", rows, inserts))
        print(line(f"{label}: inserts + checkpoint", rows, total))
        figure("insert_floor_on_disk", f"{key}_inserts", rows, inserts)
        figure("insert_floor_on_disk", key, rows, total)


def cost_accuracy(con: duckdb.DuckDBPyConnection) -> None:
    """DOUBLE vs exact decimal sums of the costs actually stored."""
    double_sum, decimal_sum, rows = con.execute(
        "select sum(total_cost), sum(total_cost::decimal(38, 18)), count(*) from generations"
    ).fetchone()
    error = abs(double_sum - float(decimal_sum))
    FIGURES["cost_sum_error_usd"] = error
    print(f"\ncost sums over {rows:,} rows: DOUBLE {double_sum:.12f} USD, DECIMAL(38,18) {decimal_sum:.12f} USD; "
          f"difference {error:.3e} USD")


def naive(path: Path, bodies: Bodies, count: int) -> float:
    """The path this module replaces: a dict per record (json.loads), one row at a time, upserted by
    the primary key such code declares (the warehouse keeps its keys without one: see
    sql/schema/006_keys_without_art_indexes.sql)."""
    con = duckdb_file.connect(path)
    con.execute("create table naive_generations as select * from generations limit 0")
    con.execute("alter table naive_generations add primary key (id)")
    columns = [*normalize.API_FIELDS, "raw", "loaded_at", "run_id"]
    sql = (f"insert or replace into naive_generations ({', '.join(columns)}) "
           f"values ({', '.join('?' for _ in columns)})")
    sample = [bodies.body(index) for index in range(count)]

    def run() -> None:
        now = datetime.now(timezone.utc)
        rows = []
        for _, body in sample:
            record = json.loads(body)["data"]
            values = [record.get(name) for name in normalize.API_FIELDS]
            values[-1] = json.dumps(record.get("provider_responses"))
            rows.append([*values, json.dumps(record), now, RUN_ID])
        con.executemany(sql, rows)

    timing, _ = timed(run)
    con.close()
    print(f"\nnaive path ({count:,} records):")
    print(line("json.loads dict per record + executemany row by row", count, timing))
    return count / timing.wall_s


if __name__ == "__main__":
    main()

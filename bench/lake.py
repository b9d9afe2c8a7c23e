"""Issue 17: the DuckLake warehouse (PostgreSQL catalog, data in a local folder) against the DuckDB file.

1. ingest: `orusage ingest` of --ids ids (default 50,000; quick 5,000) into a new file warehouse and
   into a new lake, alternated --rounds times, the same logs and fake API, the ingest pinned to core 1
   and the fake API to core 0 (PostgreSQL unpinned). Target: the lake >= 70% of the file's ids/s.
2. shards: 1, 2 and 4 `--shard i/N` workers started together into one new lake over the same
   --shard-ids ids (default 40,000; quick 4,000), unpinned (the fake API on core 0): aggregate ids/s
   from the first start to the last exit, every row exact, and the batches orusage retried after a
   DuckLake conflict per 1,000 batches written (DuckLake's own commit retries are not visible).
3. reports: every named report over --report-rows generations (default 10,000,000; quick 1,000,000),
   bench/reports.py's synthetic warehouse copied into a lake by one INSERT per table (so its Parquet
   files are large: a lake after `orusage maintain`), each run once on the file, then on the lake.
   Targets: every report under 3 s on the lake (under 2 s on the file).
4. grown: a worker's peak RSS (wait4) loading 1,000 new ids into that big lake, against the same run
   into a new lake. Target: under 300 MB.

PostgreSQL: ORUSAGE_BENCH_POSTGRES (or ORUSAGE_TEST_POSTGRES), a libpq string without dbname, e.g.
"host=127.0.0.1 user=orusage password=..."; each measurement gets a new database, dropped after.

    .venv/bin/python bench/lake.py --quick --json
    .venv/bin/python bench/lake.py --only ingest --rounds 3
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from common import OUT, ROOT, FakeApi, Logs, emit, note, orusage_command, prepare_logs, ratio, run_measured
from common import client_prefix

sys.path.insert(0, str(ROOT))

from pipeline import reports, warehouse  # noqa: E402
from pipeline.warehouse import ducklake  # noqa: E402

TARGET_SHARE_OF_FILE = 0.7
TARGET_LAKE_REPORT_S = 3.0
TARGET_FILE_REPORT_S = 2.0
TARGET_PEAK_RSS_MB = 300
LAKES = OUT / "lakes"


def postgres() -> str:
    connection = os.environ.get("ORUSAGE_BENCH_POSTGRES") or os.environ.get("ORUSAGE_TEST_POSTGRES")
    if not connection:
        sys.exit("set ORUSAGE_BENCH_POSTGRES to a libpq connection string without dbname "
                 "(e.g. \"host=127.0.0.1 user=orusage password=...\")")
    return connection


@contextmanager
def new_lake(tag: str):
    """(location, data path) of a new, empty lake: a new PostgreSQL database, a new folder."""
    connection = postgres()
    name = f"orusage_bench_{tag}_{secrets.token_hex(3)}"
    maintenance = f"--maintenance-db={connection} dbname=postgres"
    subprocess.run(["createdb", maintenance, name], check=True, capture_output=True, timeout=60)
    data = LAKES / name
    shutil.rmtree(data, ignore_errors=True)
    try:
        yield f"ducklake:postgres:{connection} dbname={name}", f"{data}/"
    finally:
        subprocess.run(["dropdb", "--force", maintenance, name], capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)


def totals(location: str | Path) -> tuple[int, int]:
    """(rows, total cost in nano-USD) of `generations`, through a reader."""
    with warehouse.open_reader(location) as reader:
        [(rows, cost)] = reader.rows("select count(*), coalesce(sum(round(total_cost * 1e9)), 0)::hugeint "
                                     "from generations")
    return int(rows), int(cost)


def ingest_command(logs: Logs, base_url: str, location: str | Path, data_path: str | None = None,
                   shard: str | None = None, pin: bool = True) -> list[str]:
    command = [*(client_prefix() if pin else []), *orusage_command(), "ingest", str(logs.directory),
               "--warehouse", str(location), "--base-url", base_url, "--concurrency", "64", "--json", "--quiet"]
    if data_path:
        command += ["--data-path", data_path]
    if shard:
        command += ["--shard", shard]
    return command


def one_ingest(logs: Logs, location: str | Path, data_path: str | None) -> dict:
    with FakeApi(logs.size, logs.seed) as api:
        measured = run_measured(ingest_command(logs, api.base_url, location, data_path))
    summary = measured.json()
    rows, cost = totals(location)
    return {"ids_per_s": round(logs.size / measured.wall_s, 1), "peak_rss_mb": round(measured.peak_rss_mb, 1),
            "exit_code": measured.returncode, "exact": (rows, cost) == (logs.truth_rows, logs.truth_cost_nusd),
            "batches_written": summary.get("batches_written"), "commits_retried": summary.get("commits_retried")}


def bench_ingest(logs: Logs, rounds: int) -> dict:
    file_runs, lake_runs = [], []
    for round_number in range(rounds):
        path = OUT / "warehouses" / "lake-bench-file.duckdb"
        for stale in (path, Path(f"{path}.wal"), Path(f"{path}.ingest.lock")):
            stale.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with note(f"round {round_number + 1}: {logs.size:,} ids into a DuckDB file"):
            file_runs.append(one_ingest(logs, path, None))
        with new_lake("ingest") as (location, data_path), \
                note(f"round {round_number + 1}: {logs.size:,} ids into a lake (PostgreSQL catalog, local data)"):
            lake_runs.append(one_ingest(logs, location, data_path))
    file_rate = statistics.median(r["ids_per_s"] for r in file_runs)
    lake_rate = statistics.median(r["ids_per_s"] for r in lake_runs)
    share = ratio(lake_rate, file_rate)
    return {"ids": logs.size, "rounds": rounds, "file": file_runs, "lake": lake_runs,
            "file_ids_per_s_median": file_rate, "lake_ids_per_s_median": lake_rate,
            "lake_share_of_file": share, "target_share": TARGET_SHARE_OF_FILE,
            "meets_share": share is not None and share >= TARGET_SHARE_OF_FILE}


def bench_shards(logs: Logs, worker_counts: list[int]) -> dict:
    results = []
    for workers in worker_counts:
        with new_lake(f"shards{workers}") as (location, data_path), FakeApi(logs.size, logs.seed) as api, \
                note(f"{workers} shard worker(s) over {logs.size:,} ids into one lake"):
            # the lake created first, as by an earlier night: the workers then only load
            warehouse.open_writer(location, data_path=data_path).close()
            measured: dict[int, object] = {}

            def work(index: int) -> None:
                command = ingest_command(logs, api.base_url, location, shard=f"{index}/{workers}", pin=False)
                measured[index] = run_measured(command)

            started = time.perf_counter()
            threads = [threading.Thread(target=work, args=(i,)) for i in range(1, workers + 1)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall_s = time.perf_counter() - started
        # read after the fake API stopped, before the lake is dropped
            summaries = [m.json() for m in measured.values()]  # type: ignore[attr-defined]
            rows, cost = totals(location)
        batches = sum(s.get("batches_written") or 0 for s in summaries)
        retried = sum(s.get("commits_retried") or 0 for s in summaries)
        results.append({
            "workers": workers, "wall_s": round(wall_s, 2), "ids_per_s": round(logs.size / wall_s, 1),
            "exit_codes": [m.returncode for m in measured.values()],  # type: ignore[attr-defined]
            "exact": (rows, cost) == (logs.truth_rows, logs.truth_cost_nusd),
            "batches_written": batches, "commits_retried": retried,
            "commits_retried_per_1000_batches": round(1000 * retried / batches, 1) if batches else None,
            "peak_rss_mb_max": round(max(m.peak_rss_mb for m in measured.values()), 1),  # type: ignore[attr-defined]
        })
    return {"ids": logs.size, "runs": results}


def copy_into_lake(source: Path, location: str, data_path: str) -> float:
    """bench/reports.py's file warehouse into a new lake, one INSERT ... SELECT per table."""
    warehouse.open_writer(location, data_path=data_path).close()  # the lake's schema, by orusage
    started = time.perf_counter()
    lake = ducklake.Lake(location)
    con = ducklake._instance(lake)
    try:
        con.execute("set threads = 2")
        ducklake.attach(con, lake, read_only=False)
        con.execute(f"attach '{source}' as source (read_only)")
        for table in ("generations", "provider_responses", "ingest_queue", "ingest_runs"):
            into = "ingest_queue_base" if table == "ingest_queue" else table  # the lake's queue is a view
            con.execute(f"insert into warehouse.{into} by name select * from source.{table}")
    finally:
        ducklake.close_instance(con)
    return time.perf_counter() - started


def time_reports(location: str | Path) -> dict[str, float]:
    seconds = {}
    for report in reports.list_reports():
        with warehouse.open_reader(location) as reader:  # each report opens the warehouse, as `orusage report` does
            started = time.perf_counter()
            reports.run_report(reader, report.name)
            seconds[report.name] = round(time.perf_counter() - started, 3)
    return seconds


def bench_reports_and_grown(rows: int, grown_logs: Logs, new_logs_rss: bool = True) -> dict:
    sys.path.insert(0, str(ROOT / "bench"))
    import reports as report_bench  # bench/reports.py

    source = OUT / f"reports_{rows}.duckdb"
    if not source.exists():
        with note(f"building {source.name}: {rows:,} generations (bench/reports.py)"):
            report_bench.build(source, rows)
    result: dict = {"rows": rows}
    with note("every report on the file"):
        file_seconds = time_reports(source)
    with new_lake("reports") as (location, data_path):
        with note(f"copying {rows:,} generations into a lake"):
            result["copy_into_lake_s"] = round(copy_into_lake(source, location, data_path), 1)
        with note("every report on the lake"):
            lake_seconds = time_reports(location)
        with FakeApi(grown_logs.size, grown_logs.seed) as api, note(f"{grown_logs.size:,} new ids into the big lake"):
            grown = run_measured(ingest_command(grown_logs, api.base_url, location))
    with new_lake("fresh") as (location, data_path), FakeApi(grown_logs.size, grown_logs.seed) as api, \
            note(f"{grown_logs.size:,} new ids into a new lake"):
        fresh = run_measured(ingest_command(grown_logs, api.base_url, location, data_path))
    result["reports"] = [{"report": name, "file_s": file_seconds[name], "lake_s": lake_seconds[name]}
                         for name in file_seconds]
    result["slowest_file_s"] = max(file_seconds.values())
    result["slowest_lake_s"] = max(lake_seconds.values())
    result["meets_lake_target"] = result["slowest_lake_s"] < TARGET_LAKE_REPORT_S
    result["meets_file_target"] = result["slowest_file_s"] < TARGET_FILE_REPORT_S
    result["grown"] = {"ids": grown_logs.size, "into_big_lake_peak_rss_mb": round(grown.peak_rss_mb, 1),
                       "into_new_lake_peak_rss_mb": round(fresh.peak_rss_mb, 1),
                       "exit_codes": [grown.returncode, fresh.returncode],
                       "meets_peak_rss": max(grown.peak_rss_mb, fresh.peak_rss_mb) < TARGET_PEAK_RSS_MB}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: proves it works")
    parser.add_argument("--ids", type=int, help="ids per ingest run (default 50,000; quick 5,000)")
    parser.add_argument("--rounds", type=int, default=2, help="file/lake ingest pairs, alternated")
    parser.add_argument("--shard-ids", type=int, help="ids for the shard runs (default 40,000; quick 4,000)")
    parser.add_argument("--report-rows", type=int, help="generations for the reports (default 10,000,000; quick 1,000,000)")
    parser.add_argument("--only", action="append", choices=["ingest", "shards", "reports"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ids = args.ids or (5_000 if args.quick else 50_000)
    shard_ids = args.shard_ids or (4_000 if args.quick else 40_000)
    report_rows = args.report_rows or (1_000_000 if args.quick else 10_000_000)
    figures: dict = {}
    if not args.only or "ingest" in args.only:
        figures["ingest"] = bench_ingest(prepare_logs(ids, 17), args.rounds)
    if not args.only or "shards" in args.only:
        figures["shards"] = bench_shards(prepare_logs(shard_ids, 18), [1, 2, 4])
    if not args.only or "reports" in args.only:
        figures["reports"] = bench_reports_and_grown(report_rows, prepare_logs(1_000, 19))
    emit(figures, as_json=args.json)


if __name__ == "__main__":
    main()

"""Issue 5: `orusage ingest` end to end, logs to warehouse, against the fake API on loopback.

Three measurements, each client a child process on core 1, a fresh fake API on core 0:

1. throughput: 100,000 ids (--quick: 5,000) with no latency and no faults. Targets: >= 2,000
   ids/s end to end, peak RSS <= 300 MB (the ingest process's own, from wait4), every row exact
   (count and total cost against the fake dataset's records).
2. peer: the same, over the same logs of --peer-ids ids, for orusage and for the official
   `openrouter` SDK's async client with `asyncio.gather` + a semaphore at the same concurrency
   (bench/peers/sdk_async.py). The ratio is quoted.
3. latency: 150 ms added to every response, 64 in flight: the bound is 64 / 0.15 s = 427 ids/s;
   target >= 90% of it, over 10,000 ids (a fixed start-up cost of ~1 s is ~4% of 23 s). The SDK
   peer runs the same over 3,000 ids (it is CPU-bound far below the bound: more ids only take longer).
4. grown: a nightly run of 1,000 new ids into a warehouse that already holds --grown-rows
   generations (1,000,000; quick 100,000: bench/reports.py's synthetic ones, with their attempts and
   a `loaded` queue row each), against the same run into a new warehouse. The new ids' times fall
   among the stored ones', so no row group can be skipped. Memory must not grow with the warehouse
   (with DuckDB's key indexes it did: sql/schema/006_keys_without_art_indexes.sql).

ids/s is end to end: process start to exit (interpreter start, log scan, staging, fetch, load),
on the wall clock; `ids_per_s_own_clock` is the ingest's own `elapsed_s` from its --json summary.

    .venv/bin/python bench/ingest_e2e.py --quick --json
    .venv/bin/python bench/ingest_e2e.py            # 100,000 ids
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import OUT, ROOT, emit, note, prepare_logs, ratio, run_client

TARGET_IDS_PER_S = 2_000
TARGET_PEAK_RSS_MB = 300
LATENCY_MS = 150
TARGET_SHARE_OF_BOUND = 0.9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: proves it works, in seconds")
    parser.add_argument("--ids", type=int, help="ids for the throughput run (default 100,000; quick 5,000)")
    parser.add_argument("--peer-ids", type=int, help="ids for the peer comparison (default 3,000; quick 500)")
    parser.add_argument("--latency-ids", type=int, help="ids for orusage's 150 ms run (default 10,000; quick 1,000)")
    parser.add_argument("--latency-peer-ids", type=int,
                        help="ids for the SDK's 150 ms run (default 3,000; quick 500): it is CPU-bound well below "
                             "the bound, so more ids only take longer")
    parser.add_argument("--grown-rows", type=int, help="generations already stored for the grown run (default "
                                                          "1,000,000; quick 100,000)")
    parser.add_argument("--grown-ids", type=int, default=1_000, help="new ids the grown run loads")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args()
    ids = args.ids or (5_000 if args.quick else 100_000)
    peer_ids = args.peer_ids or (500 if args.quick else 3_000)
    latency_ids = args.latency_ids or (1_000 if args.quick else 10_000)
    latency_peer_ids = args.latency_peer_ids or (500 if args.quick else 3_000)
    c = args.concurrency
    commands: dict[str, str] = {}

    logs = prepare_logs(ids, args.seed)
    throughput, commands["throughput"] = run_client("orusage", logs, concurrency=c, tag="-e2e")
    throughput.update(
        target_ids_per_s=TARGET_IDS_PER_S, meets_ids_per_s=(throughput["ids_per_s"] or 0) >= TARGET_IDS_PER_S,
        target_peak_rss_mb=TARGET_PEAK_RSS_MB,
        meets_peak_rss=throughput["finished"] and throughput["peak_rss_mb"] <= TARGET_PEAK_RSS_MB,
    )

    peer_logs = prepare_logs(peer_ids, args.seed + 1)
    ours, commands["peer: orusage"] = run_client("orusage", peer_logs, concurrency=c, tag="-e2e-peer")
    sdk, commands["peer: sdk_async"] = run_client("sdk_async", peer_logs, concurrency=c, tag="-e2e-peer")
    peer = {
        "ids": peer_ids, "orusage": ours, "sdk_async": sdk,
        "ratio_ids_per_s": ratio(ours["ids_per_s"], sdk["ids_per_s"]),
        "ratio_cpu_per_id": ratio(sdk["cpu_s_per_10k_ids"], ours["cpu_s_per_10k_ids"]),
    }

    bound = c / (LATENCY_MS / 1000)
    latency_logs = prepare_logs(latency_ids, args.seed + 2)
    slow_ours, commands["latency: orusage"] = run_client("orusage", latency_logs, concurrency=c, latency_ms=LATENCY_MS,
                                                         tag="-e2e-latency")
    slow_sdk, commands["latency: sdk_async"] = run_client("sdk_async", prepare_logs(latency_peer_ids, args.seed + 3),
                                                          concurrency=c, latency_ms=LATENCY_MS, tag="-e2e-latency")
    for figures in (slow_ours, slow_sdk):
        figures["share_of_bound"] = ratio(figures["ids_per_s"], bound)
        if figures.get("ids_per_s_own_clock"):
            figures["share_of_bound_own_clock"] = ratio(figures["ids_per_s_own_clock"], bound)
    slow_ours["meets_share_of_bound"] = (slow_ours["share_of_bound"] or 0) >= TARGET_SHARE_OF_BOUND
    latency = {
        "ids": latency_ids, "latency_ms": LATENCY_MS, "concurrency": c, "bound_ids_per_s": round(bound, 1),
        "target_share_of_bound": TARGET_SHARE_OF_BOUND, "orusage": slow_ours, "sdk_async": slow_sdk,
        "ratio_ids_per_s": ratio(slow_ours["ids_per_s"], slow_sdk["ids_per_s"]),
    }

    grown_rows = args.grown_rows or (100_000 if args.quick else 1_000_000)
    grown_logs = prepare_logs(args.grown_ids, args.seed + 4)
    into_new, commands["grown: into a new warehouse"] = run_client("orusage", grown_logs, concurrency=c, tag="-e2e-new")
    into_grown, commands["grown: into the grown one"] = run_client(
        "orusage", grown_logs, concurrency=c, tag="-e2e-grown", grown_from=grown_warehouse(grown_rows))
    grown = {
        "stored_rows": grown_rows, "new_ids": args.grown_ids, "into_new": into_new, "into_grown": into_grown,
        "peak_rss_growth_mb": round(into_grown["peak_rss_mb"] - into_new["peak_rss_mb"], 1),
    }
    emit({"throughput": throughput, "peer": peer, "latency": latency, "grown": grown, "commands": commands},
         as_json=args.json)


def grown_warehouse(rows: int) -> Path:
    """A warehouse at the current schema holding `rows` generations, their attempts and a `loaded`
    queue row each; built once (the name carries the schema version, so an older one is not reused)."""
    sys.path.insert(0, str(ROOT))
    from pipeline.warehouse import duckdb_file, sql_files
    from reports import build

    version = sql_files.latest_version()
    path = OUT / f"grown_{rows}_v{version}.duckdb"
    if path.exists():
        return path
    with note(f"building a warehouse of {rows:,} generations"):
        staging = path.with_name(f".{path.name}.new")
        build(staging, rows)
        con = duckdb_file.connect(staging)
        con.execute("""
            insert into ingest_queue (generation_id, first_seen_at, source, status, attempts, updated_at)
            select id, created_at, 'app.log:' || rowid, 'loaded', 1, loaded_at from generations
        """)
        con.execute("checkpoint")
        con.close()
        staging.rename(path)
    return path


if __name__ == "__main__":
    main()

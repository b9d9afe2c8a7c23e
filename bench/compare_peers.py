"""Issue 7: orusage against the tools a user would otherwise use, same fake API, same logs, same run.

Clients (each a child process on core 1; a fresh fake API on core 0 for each):
- orusage: `orusage ingest LOGS --concurrency 64`;
- sdk_sync: the official `openrouter` SDK, `get_generation` in a loop (bench/peers/sdk_sync.py);
- sdk_async: its async client, `asyncio.gather` + a semaphore, 64 in flight (bench/peers/sdk_async.py);
- dlt_rest_api: dlt's `rest_api` source, merge on `id` into DuckDB, 64 workers (bench/peers/dlt_rest_api.py).

Two passes: `clean` (no faults: speed, CPU, memory) and `faults` (10% transient faults: 429s, 5xx,
HTML 502/524, dropped connections, truncated bodies, slow answers; is the result still exact?).
Exact means the loaded table has every id once and its total cost equals the dataset's, to the
nano-dollar (`Dataset(size, seed).records()` summed).

    .venv/bin/python bench/compare_peers.py --quick --json
"""

from __future__ import annotations

import argparse

from common import CLIENTS, emit, prepare_logs, ratio, run_client

FAULT_RATE = 0.10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: proves it works, in seconds")
    parser.add_argument("--ids", type=int, help="ids for the clean pass (default 3,000; quick 300)")
    parser.add_argument("--fault-ids", type=int, help="ids for the faults pass (default 600; quick 200)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--only", action="append", choices=CLIENTS, help="run only these clients (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args()
    clients = args.only or list(CLIENTS)
    passes = {
        "clean": (prepare_logs(args.ids or (300 if args.quick else 3_000), args.seed), 0.0),
        "faults": (prepare_logs(args.fault_ids or (200 if args.quick else 600), args.seed + 1), FAULT_RATE),
    }
    result: dict = {"concurrency": args.concurrency, "fault_rate": FAULT_RATE}
    commands: dict[str, str] = {}
    for name, (logs, fault_rate) in passes.items():
        figures: dict = {"ids": logs.size}
        for client in clients:
            figures[client], commands[f"{name}: {client}"] = run_client(
                client, logs, concurrency=args.concurrency, fault_rate=fault_rate, tag=f"-peers-{name}")
        if "orusage" in clients:
            for client in clients:
                if client != "orusage":
                    figures[f"orusage_vs_{client}_ids_per_s"] = ratio(figures["orusage"]["ids_per_s"],
                                                                       figures[client]["ids_per_s"])
                    figures[f"{client}_vs_orusage_cpu_per_id"] = ratio(figures[client]["cpu_s_per_10k_ids"],
                                                                       figures["orusage"]["cpu_s_per_10k_ids"])
        result[name] = figures
    result["commands"] = commands
    emit(result, as_json=args.json)


if __name__ == "__main__":
    main()

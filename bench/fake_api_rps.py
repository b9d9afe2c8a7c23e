"""Requests per second the fake API serves on one core.

The server runs as `orusage fake-api` pinned to core 0 (taskset); this process pins itself to core 1 and
loads it with aiohttp at a fixed concurrency, each id fetched once (the backfill case: no cache hits), or
`--repeat` times. Reports wall-clock requests/s and the server's CPU time per request (psutil), whose
inverse is what one fully busy core would serve.

    .venv/bin/python bench/fake_api_rps.py            # quick: 5,000 requests
    .venv/bin/python bench/fake_api_rps.py --requests 100000 --concurrency 128
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import psutil

from pipeline.fake_api import DEFAULT_API_KEY, Dataset

ROOT = Path(__file__).resolve().parent.parent


async def load(base_url: str, ids: list[str], concurrency: int) -> tuple[int, Counter[int]]:
    statuses: Counter[int] = Counter()
    queue = iter(ids)
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=base_url + "/", headers=headers, connector=connector) as session:

        async def worker() -> None:
            for generation_id in queue:
                async with session.get("generation", params={"id": generation_id}) as response:
                    await response.read()
                    statuses[response.status] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sum(statuses.values()), statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1, help="fetch each id this many times (>1 hits the body cache)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    size = max(1, args.requests // args.repeat)
    ids = [i for i in Dataset(size, seed=args.seed).ids for _ in range(args.repeat)][: args.requests]
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1 else []
    server = subprocess.Popen(
        [*pin, sys.executable, "-m", "pipeline.cli", "fake-api", "--size", str(size), "--seed", str(args.seed)],
        stdout=subprocess.PIPE, cwd=ROOT,
    )
    try:
        base_url = server.stdout.readline().decode().strip()
        if pin:
            os.sched_setaffinity(0, {1})
        server_process = psutil.Process(server.pid)
        asyncio.run(load(base_url, ids[: min(200, len(ids))], args.concurrency))  # warm up: connections, imports
        cpu_before = sum(server_process.cpu_times()[:2])
        started = time.perf_counter()
        done, statuses = asyncio.run(load(base_url, ids, args.concurrency))
        wall_s = time.perf_counter() - started
        server_cpu_s = sum(server_process.cpu_times()[:2]) - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=10)
    result = {
        "requests": done,
        "statuses": dict(statuses),
        "concurrency": args.concurrency,
        "repeat": args.repeat,
        "pinned": bool(pin),
        "wall_s": round(wall_s, 3),
        "requests_per_s": round(done / wall_s),
        "server_cpu_us_per_request": round(server_cpu_s / done * 1e6, 1),
        "requests_per_server_cpu_s": round(done / server_cpu_s) if server_cpu_s else None,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

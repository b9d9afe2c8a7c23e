"""Which HTTP client should fetch generations? Requests/s and client CPU ms per request, measured.

Every client fetches the same ids, 64 in flight, in the same run, from the same fake API
(`orusage fake-api`, a subprocess pinned to core 0 with taskset) while this process runs on core 1:

- orusage: OpenRouterClient + fetch_generations, the pipeline's own path (retry policy, JSON check),
  over the chosen transport and, for comparison, over httpx's default transport (it hands httpx
  Requests straight to the transport, skipping httpx.AsyncClient's per-request bookkeeping);
- raw httpx.AsyncClient with its default transport, and with httpx-aiohttp's AiohttpTransport;
- the official `openrouter` SDK's `generations.get_generation_async`;
- raw aiohttp, the ceiling for any client built on it.

CPU is this process's CPU time (time.process_time) over the timed part, divided by requests:
what a large backfill pays per id. The server's CPU share is printed too: near 100% means the
server, not the client, set the pace. A second check runs the orusage client over each transport
against a server with 20% transient faults and checks every body (correctness under faults).

    .venv/bin/python bench/http_clients.py --quick            # ~2,000 requests per client
    .venv/bin/python bench/http_clients.py --json out.json    # 20,000 per client, JSON too
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import httpx
import psutil
from httpx_aiohttp import AiohttpTransport

from pipeline.client import Loaded, OpenRouterClient, RetryPolicy
from pipeline.fake_api import Dataset
from pipeline.fetch import fetch_generations

KEY = "sk-or-v1-bench-0123456789abcdef"
ROOT = Path(__file__).resolve().parent.parent
FetchMany = Callable[[Sequence[str]], Awaitable[int]]  # fetches ids, returns how many came back 200


@dataclass
class Result:
    client: str
    requests: int
    ok: int
    wall_s: float
    requests_per_s: float
    cpu_ms_per_request: float
    server_cpu_share: float


# --- the clients ---------------------------------------------------------------------------------


async def _pool(ids: Sequence[str], concurrency: int, get_one: Callable[[str], Awaitable[bool]]) -> int:
    """A fixed pool of workers over a shared iterator: the same shape as fetch_generations."""
    it = iter(ids)
    ok = 0

    async def worker() -> None:
        nonlocal ok
        for generation_id in it:
            loaded = await get_one(generation_id)  # not `ok += await ...`: that reads ok before awaiting
            ok += loaded

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


@contextlib.asynccontextmanager
async def orusage_client(base_url: str, concurrency: int, transport: httpx.AsyncBaseTransport | None) -> AsyncIterator[FetchMany]:
    async with OpenRouterClient(KEY, base_url=base_url, transport=transport, max_connections=concurrency) as client:

        async def fetch_many(ids: Sequence[str]) -> int:
            return sum([isinstance(o, Loaded) async for o in fetch_generations(ids, client, concurrency=concurrency)])

        yield fetch_many


@contextlib.asynccontextmanager
async def orusage_aiohttp(base_url: str, concurrency: int) -> AsyncIterator[FetchMany]:
    async with orusage_client(base_url, concurrency, None) as fetch_many:  # None: the chosen default
        yield fetch_many


@contextlib.asynccontextmanager
async def orusage_httpx_default(base_url: str, concurrency: int) -> AsyncIterator[FetchMany]:
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=concurrency))
    async with orusage_client(base_url, concurrency, transport) as fetch_many:
        yield fetch_many


def _raw_httpx(transport: httpx.AsyncBaseTransport | None):
    @contextlib.asynccontextmanager
    async def make(base_url: str, concurrency: int) -> AsyncIterator[FetchMany]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {KEY}"}, limits=limits,
            transport=transport,
        ) as client:

            async def get_one(generation_id: str) -> bool:
                response = await client.get("/generation", params={"id": generation_id})
                return response.status_code == 200 and bool(response.content)

            yield lambda ids: _pool(ids, concurrency, get_one)

    return make


@contextlib.asynccontextmanager
async def raw_httpx_aiohttp(base_url: str, concurrency: int) -> AsyncIterator[FetchMany]:
    transport = AiohttpTransport(limits=httpx.Limits(max_connections=concurrency))
    async with _raw_httpx(transport)(base_url, concurrency) as fetch_many:
        yield fetch_many


@contextlib.asynccontextmanager
async def openrouter_sdk(base_url: str, concurrency: int) -> AsyncIterator[FetchMany]:
    from openrouter import OpenRouter
    from openrouter.errors import ResponseValidationError

    sdk = OpenRouter(api_key=KEY, server_url=base_url)

    async def get_one(generation_id: str) -> bool:
        try:
            response = await sdk.generations.get_generation_async(id=generation_id)
        except ResponseValidationError:
            # The SDK's model requires fields that older generations lack (e.g. `router`,
            # `provider_responses` before they existed): it cannot read those records at all.
            return False
        return response.data is not None

    try:
        yield lambda ids: _pool(ids, concurrency, get_one)
    finally:
        with contextlib.suppress(Exception):
            await sdk.__aexit__(None, None, None)


@contextlib.asynccontextmanager
async def raw_aiohttp(base_url: str, concurrency: int) -> AsyncIterator[FetchMany]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers={"Authorization": f"Bearer {KEY}"}) as session:
        url = f"{base_url}/generation"

        async def get_one(generation_id: str) -> bool:
            async with session.get(url, params={"id": generation_id}) as response:
                return response.status == 200 and bool(await response.read())

        yield lambda ids: _pool(ids, concurrency, get_one)


CLIENTS = {
    "orusage (OpenRouterClient+fetch, httpx over aiohttp) [chosen]": orusage_aiohttp,
    "orusage over httpx default transport": orusage_httpx_default,
    "httpx.AsyncClient, default transport": _raw_httpx(None),
    "httpx + httpx-aiohttp AiohttpTransport": raw_httpx_aiohttp,
    "openrouter SDK get_generation_async": openrouter_sdk,
    "aiohttp (reference ceiling)": raw_aiohttp,
}


# --- the harness ---------------------------------------------------------------------------------


@contextlib.contextmanager
def fake_api(size: int, seed: int, *extra: str) -> Iterator[tuple[str, psutil.Process]]:
    """Start `orusage fake-api` on core 0; yields (base URL, process)."""
    command = [sys.executable, "-m", "pipeline.cli", "fake-api", "--size", str(size), "--seed", str(seed), "--api-key", KEY, *extra]
    if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1:
        command = ["taskset", "-c", "0", *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("http"):
            raise SystemExit(f"fake-api did not start (printed {base_url!r})")
        yield base_url, psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)


def measure(name: str, make, base_url: str, server: psutil.Process, ids: Sequence[str], warmup: Sequence[str], concurrency: int) -> Result:
    async def run() -> tuple[int, float, float, float]:
        async with make(base_url, concurrency) as fetch_many:
            await fetch_many(warmup)  # connections opened, caches warm
            server_cpu0 = sum(server.cpu_times()[:2])
            cpu0, t0 = time.process_time(), time.perf_counter()
            ok = await fetch_many(ids)
            wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
            return ok, wall_s, cpu_s, sum(server.cpu_times()[:2]) - server_cpu0

    ok, wall_s, cpu_s, server_cpu_s = asyncio.run(run())
    n = len(ids)
    return Result(name, n, ok, round(wall_s, 3), round(n / wall_s, 1), round(cpu_s / n * 1000, 3), round(server_cpu_s / wall_s, 2))


def check_under_faults(size: int, seed: int) -> dict[str, str]:
    """The orusage client over each transport, 20% transient faults: every body must come back exact."""
    dataset = Dataset(size, seed=seed)
    ids = list(dataset.ids)
    verdicts: dict[str, str] = {}
    policy = RetryPolicy(max_attempts=12, backoff_initial_s=0.005, backoff_max_s=0.05)
    transports = {
        "httpx over aiohttp": lambda: None,
        "httpx default transport": lambda: httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=64)),
    }
    for name, transport in transports.items():
        with fake_api(size, seed, "--fault-rate", "0.2", "--not-found-first", "1") as (base_url, _):

            async def run() -> list:
                async with OpenRouterClient(KEY, base_url=base_url, transport=transport(), policy=policy) as client:
                    return [o async for o in fetch_generations(ids, client, concurrency=64)]

            outcomes = asyncio.run(run())
        exact = sum(isinstance(o, Loaded) and o.body == dataset.body(o.generation_id) for o in outcomes)
        distinct = len({o.generation_id for o in outcomes})
        verdicts[name] = "ok" if exact == distinct == len(ids) == len(outcomes) else f"WRONG: {exact}/{len(ids)} exact"
    return verdicts


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="~2,000 requests per client (proves it runs)")
    parser.add_argument("--requests", type=int, help="requests per client (default 20,000; 2,000 with --quick)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", help="run only clients whose name contains this (repeatable)")
    parser.add_argument("--no-fault-check", action="store_true")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON ('-' for stdout)")
    args = parser.parse_args(argv)
    n = args.requests or (2_000 if args.quick else 20_000)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the server has core 0

    dataset = Dataset(n, seed=args.seed)
    ids = list(dataset.ids)
    warmup = ids[: max(args.concurrency * 4, n // 10)]
    clients = {k: v for k, v in CLIENTS.items() if not args.only or any(o.lower() in k.lower() for o in args.only)}
    results: list[Result] = []
    with fake_api(n, args.seed) as (base_url, server):
        for name, make in clients.items():
            results.append(measure(name, make, base_url, server, ids, warmup, args.concurrency))
            print(f"  measured {name}", file=sys.stderr)
    faults = {} if args.no_fault_check else check_under_faults(min(n, 1_000), args.seed + 1)

    width = max(len(r.client) for r in results)
    print(f"\n{n} requests per client, {args.concurrency} in flight, server on core 0, client on core 1")
    print(f"{'client':<{width}}  {'req/s':>8}  {'CPU ms/req':>10}  {'server CPU':>10}  {'200s':>6}")
    for r in results:
        print(f"{r.client:<{width}}  {r.requests_per_s:>8.0f}  {r.cpu_ms_per_request:>10.3f}  {r.server_cpu_share:>9.0%}  {r.ok:>6}")
    for name, verdict in faults.items():
        print(f"orusage over {name}, 20% transient faults + 404 lag: {verdict}")
    if args.json:
        payload = {"requests": n, "concurrency": args.concurrency, "results": [asdict(r) for r in results], "faults": faults}
        text = json.dumps(payload, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()

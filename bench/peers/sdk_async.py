"""Peer 2: the official `openrouter` SDK's async client, `asyncio.gather` over every id and a semaphore.

Same as peer 1 (regex over the logs, the SDK's default retries, failures counted and skipped, rows
into DuckDB in bulk) with `--concurrency` requests in flight.

    OPENROUTER_API_KEY=... .venv/bin/python bench/peers/sdk_async.py --logs DIR --base-url URL --warehouse FILE --concurrency 64
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

from openrouter import OpenRouter

from peer_common import Table, arguments, ids_from_logs, report, row


async def fetch_all(ids: list[str], base_url: str, concurrency: int, table: Table, errors: Counter[str]) -> None:
    semaphore = asyncio.Semaphore(concurrency)
    async with OpenRouter(api_key=os.environ["OPENROUTER_API_KEY"], server_url=base_url) as sdk:

        async def one(generation_id: str) -> None:
            async with semaphore:
                try:
                    response = await sdk.generations.get_generation_async(id=generation_id)
                except Exception as e:  # noqa: BLE001 (the straightforward script: log it, go on)
                    errors[type(e).__name__] += 1
                    return
            table.add(row(response.data.model_dump(mode="json", by_alias=True)))

        await asyncio.gather(*(one(generation_id) for generation_id in ids))


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    started = time.perf_counter()
    ids = ids_from_logs(args.logs)
    table = Table(args.warehouse)
    errors: Counter[str] = Counter()
    asyncio.run(fetch_all(ids, args.base_url, args.concurrency, table, errors))
    rows, cost_nusd = table.close()
    report(ids=len(ids), rows=rows, cost_nusd=cost_nusd, errors=errors, started=started, concurrency=args.concurrency)


if __name__ == "__main__":
    main()

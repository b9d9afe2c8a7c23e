"""Peer 1: the script a user writes first. The official `openrouter` SDK, one `get_generation` at a time.

Ids from a regex over the logs, `get_generation` in a loop with the SDK's default retries (5XX and
connection errors, backoff from 0.5 s), each failure counted and skipped, rows into DuckDB.

    OPENROUTER_API_KEY=... .venv/bin/python bench/peers/sdk_sync.py --logs DIR --base-url URL --warehouse FILE
"""

from __future__ import annotations

import os
import time
from collections import Counter

from openrouter import OpenRouter

from peer_common import Table, arguments, ids_from_logs, report, row


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    started = time.perf_counter()
    ids = ids_from_logs(args.logs)
    table = Table(args.warehouse)
    errors: Counter[str] = Counter()
    with OpenRouter(api_key=os.environ["OPENROUTER_API_KEY"], server_url=args.base_url) as sdk:
        for generation_id in ids:
            try:
                response = sdk.generations.get_generation(id=generation_id)
            except Exception as e:  # noqa: BLE001 (the straightforward script: log it, go on)
                errors[type(e).__name__] += 1
                continue
            table.add(row(response.data.model_dump(mode="json", by_alias=True)))
    rows, cost_nusd = table.close()
    report(ids=len(ids), rows=rows, cost_nusd=cost_nusd, errors=errors, started=started, concurrency=1)


if __name__ == "__main__":
    main()

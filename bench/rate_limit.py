"""`orusage ingest` with default options against an API that limits requests per second.

    python bench/rate_limit.py [--ids 2500] [--server-rps 50] [--json]

The fake API answers 429 with Retry-After beyond --server-rps (server-wide). Reports the share of
requests answered 429, the ids that failed, the adaptive rate the client settled at, and ids/s
against the bound (--server-rps). The target (issue 15): under 10% 429s and no failed id.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.demo import write_demo_logs  # noqa: E402
from pipeline.fake_api import Dataset, Faults, start_server  # noqa: E402
from pipeline.ingest import IngestOptions, ingest  # noqa: E402

KEY = "sk-or-v1-bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=2_500)
    parser.add_argument("--server-rps", type=float, default=50.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    dataset = Dataset(args.ids, seed=3)
    with tempfile.TemporaryDirectory() as folder:
        logs = Path(folder) / "logs"
        write_demo_logs(dataset, logs)
        with start_server(dataset, api_key=KEY, faults=Faults(max_rps=args.server_rps)) as server:
            started = time.monotonic()
            summary = ingest(IngestOptions(paths=(str(logs),), warehouse_path=Path(folder) / "w.duckdb",
                                           base_url=server.base_url), api_key=KEY)
            elapsed_s = time.monotonic() - started
    p = summary.progress
    figures = {
        "ids": args.ids, "server_rps": args.server_rps, "elapsed_s": round(elapsed_s, 1),
        "loaded": p.loaded, "failed": p.failed, "requests": p.requests, "responses_429": p.responses_429,
        "share_429": round(p.responses_429 / max(p.requests, 1), 4), "settled_rps": p.settled_rps,
        "ids_per_s": round(p.loaded / elapsed_s, 1), "of_bound": round(p.loaded / elapsed_s / args.server_rps, 3),
    }
    print(json.dumps(figures) if args.json else "\n".join(f"{k}: {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()

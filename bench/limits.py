"""The physical limits, for context: how fast can ids come out of the logs at all?

`rg -o` (ripgrep, `-z` for the rotated .gz) over the same logs the end-to-end benchmark ingests,
pinned to core 1 like every client, against orusage's own scanner (`pipeline.logs.find_ids`) on the
same core. The other limit, the fake API's own requests/s on one core, is bench/fake_api_rps.py
(bench/run runs it beside this).

    .venv/bin/python bench/limits.py --quick --json
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from common import ID_PATTERN, PYTHON, can_pin, client_prefix, display, emit, prepare_logs


def rg_path() -> str:
    found = shutil.which("rg", path=f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        raise SystemExit("ripgrep (rg) not found: .venv/bin/pip install ripgrep (it is in the bench extra)")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick logs (5,000 ids)")
    parser.add_argument("--ids", type=int, help="ids in the logs (default 100,000, the end-to-end logs; quick 5,000)")
    parser.add_argument("--seed", type=int, default=5, help="5: the same logs as bench/ingest_e2e.py")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each scanner (the median is kept)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args()
    logs = prepare_logs(args.ids or (5_000 if args.quick else 100_000), args.seed)

    rg_command = [*client_prefix(), rg_path(), "-o", "-z", "--no-filename", "--no-line-number", ID_PATTERN,
                  str(logs.directory)]
    rg_times, matches = [], 0
    for _ in range(args.repeat):
        started = time.perf_counter()
        output = subprocess.run(rg_command, capture_output=True, check=True).stdout
        rg_times.append(time.perf_counter() - started)
        matches = output.count(b"\n")
    distinct = len(set(output.split()))

    from pipeline.logs import find_ids

    if can_pin():
        os.sched_setaffinity(0, {1})
    scan_times, found = [], 0
    for _ in range(args.repeat):
        started = time.perf_counter()
        found = sum(1 for _ in find_ids([str(logs.directory)]))
        scan_times.append(time.perf_counter() - started)

    rg_s, scan_s = statistics.median(rg_times), statistics.median(scan_times)
    emit({
        "logs": {"ids": logs.size, "bytes": logs.bytes, "files": sum(1 for p in logs.directory.rglob("*") if p.is_file())},
        "rg": {"wall_s": round(rg_s, 4), "matches": matches, "distinct_ids": distinct,
               "ids_per_s": round(logs.size / rg_s), "mb_per_s": round(logs.bytes / rg_s / 1e6, 1)},
        "find_ids": {"wall_s": round(scan_s, 4), "distinct_ids": found, "ids_per_s": round(logs.size / scan_s),
                     "mb_per_s": round(logs.bytes / scan_s / 1e6, 1)},
        "rg_vs_find_ids": round(scan_s / rg_s, 2),
        "commands": {"rg": display(rg_command), "find_ids": ["pipeline.logs.find_ids", str(display([str(logs.directory)])[0])]},
    }, as_json=args.json)


if __name__ == "__main__":
    main()

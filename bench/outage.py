"""An API that goes away mid-run: `orusage ingest` (default options) of --ids ids against the fake
API in a child process, which is killed --kill-after-s seconds in.

    python bench/outage.py [--ids 20000] [--kill-after-s 8] [--json]

Reports how long the ingest went on after the API died, its exit code and last line, and how the
queue was left (loaded / pending / failed). The target (issue 15): the run stops by itself with
"API unreachable since ...", exit 1, and the ids it did not load are left pending, not failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.demo import FakeApiProcess, write_demo_logs  # noqa: E402
from pipeline.fake_api import Dataset  # noqa: E402

KEY = "sk-or-v1-bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=20_000)
    parser.add_argument("--kill-after-s", type=float, default=8.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    end = datetime(2026, 8, 1, tzinfo=timezone.utc)
    with tempfile.TemporaryDirectory() as folder:
        logs, path = Path(folder) / "logs", Path(folder) / "w.duckdb"
        write_demo_logs(Dataset(args.ids, seed=7, end=end, days=21), logs)
        api = FakeApiProcess(size=args.ids, seed=7, end=end, days=21, api_key=KEY)
        env = {**os.environ, "OPENROUTER_API_KEY": KEY}
        started = time.monotonic()
        ingest = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "ingest", str(logs), "--warehouse", str(path),
                                   "--base-url", api.base_url], env=env, stderr=subprocess.PIPE, text=True)
        time.sleep(args.kill_after_s)
        api._process.kill()
        killed = time.monotonic()
        _, stderr = ingest.communicate(timeout=600)
        after_kill_s = time.monotonic() - killed
        api.close()
        con = duckdb.connect(str(path), read_only=True)
        queue = dict(con.execute("select status, count(*) from ingest_queue group by 1").fetchall())
        con.close()
    lines = [line for line in stderr.splitlines() if line.strip()]
    figures = {"ids": args.ids, "kill_after_s": args.kill_after_s, "ran_after_kill_s": round(after_kill_s, 1),
               "run_s": round(time.monotonic() - started, 1), "exit_code": ingest.returncode, "queue": queue,
               "error": next((line.strip() for line in lines if line.strip().startswith("error:")), lines[-1] if lines else "")}
    print(json.dumps(figures) if args.json else "\n".join(f"{k}: {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()

"""`orusage demo`: the whole line on made-up data, from a fresh clone, in well under a minute.

It writes application logs of several real shapes under `data/demo/`, starts the fake OpenRouter
API as a separate process (so it has its own core, as the real API would) with some faults on,
and runs the real ingest against it. Nothing here is a shortcut: the demo exercises the same code
a nightly run does.
"""

from __future__ import annotations

import gzip
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import orjson

from pipeline import config
from pipeline.activity import load_activity
from pipeline.fake_api import DEFAULT_MANAGEMENT_KEY, Dataset
from pipeline.ingest import IngestOptions, RunSummary, ingest

DEMO_GENERATIONS = 20_000
DEMO_DAYS = 21
DEMO_SEED = 7
DEMO_API_KEY = "sk-or-v1-demo"
# Enough faults that retries and 404 lag show in the summary, few enough to finish quickly.
DEMO_FAULT_RATE = 0.05
DEMO_NOT_FOUND_FIRST = 1


@dataclass(frozen=True)
class DemoResult:
    summary: RunSummary
    warehouse_path: Path | str
    logs_dir: Path
    generations_served: int


DEMO_LOG_FILES = ("api/app.jsonl", "api/stream.log", "worker/worker.log", "worker/worker.log.1.gz")


class DemoError(Exception):
    """The demo cannot run as asked (it would replace real data, or read files it did not write)."""


def write_demo_logs(dataset: Dataset, logs_dir: Path) -> None:
    """Spread the dataset's ids over the log shapes apps really write (see tests/fixtures), in
    DEMO_LOG_FILES under `logs_dir`, which must hold nothing else (the demo reads the whole folder,
    and never deletes what it did not write)."""
    if logs_dir.is_symlink() or any(p.is_symlink() for p in logs_dir.rglob("*")):
        raise DemoError(f"{logs_dir} holds a symbolic link: the demo writes only into a folder of its own")
    if logs_dir.exists():
        others = sorted(str(p) for p in logs_dir.rglob("*")
                        if not p.is_dir() and p.relative_to(logs_dir).as_posix() not in DEMO_LOG_FILES)
        if others:
            raise DemoError(f"{logs_dir} holds files the demo did not write ({others[0]}): give another --data-dir")
    (logs_dir / "api").mkdir(parents=True, exist_ok=True)
    (logs_dir / "worker").mkdir(parents=True, exist_ok=True)
    json_lines, sse_lines, plain_lines, rotated_lines = [], [], [], []
    for index, generation_id in enumerate(dataset.ids):
        record = dataset.record(generation_id)
        assert record is not None
        model, created_at = record["model"], record["created_at"]
        shape = index % 4
        if shape == 0:
            json_lines.append(orjson.dumps({
                "ts": created_at, "level": "info", "msg": "chat completion done",
                "generation_id": generation_id, "model": model,
            }))
        elif shape == 1:
            chunk = orjson.dumps({
                "id": generation_id, "provider": record.get("provider_name"), "model": model,
                "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "Hi"}}],
            })
            sse_lines += [b": OPENROUTER PROCESSING", b"", b"data: " + chunk, b"", b"data: " + chunk, b"",
                          b"data: [DONE]", b""]
        elif shape == 2:
            plain_lines.append(f"{created_at} INFO worker: llm call ok gen_id={generation_id} model={model}".encode())
        else:
            rotated_lines.append(f"{created_at} DEBUG X-Generation-Id: {generation_id}\r".encode())
    (logs_dir / "api" / "app.jsonl").write_bytes(b"\n".join(json_lines) + b"\n")
    (logs_dir / "api" / "stream.log").write_bytes(b"\n".join(sse_lines) + b"\n")
    (logs_dir / "worker" / "worker.log").write_bytes(b"\n".join(plain_lines) + b"\n")
    with gzip.open(logs_dir / "worker" / "worker.log.1.gz", "wb") as rotated:
        rotated.write(b"\n".join(rotated_lines) + b"\n")


class FakeApiProcess:
    """`orusage fake-api` in a child process; its first stdout line is its base URL."""

    def __init__(self, *, size: int, seed: int, end: datetime, days: int, api_key: str) -> None:
        command = [
            sys.executable, "-m", "pipeline.cli", "fake-api",
            "--port", "0", "--size", str(size), "--seed", str(seed), "--days", str(days),
            "--end", end.isoformat(), "--fault-rate", str(DEMO_FAULT_RATE),
            "--not-found-first", str(DEMO_NOT_FOUND_FIRST),
        ]
        env = {**os.environ, "ORUSAGE_FAKE_API_KEY": api_key}
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True)
        assert self._process.stdout is not None
        self.base_url = self._process.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            self.close()
            raise RuntimeError("the fake API did not start (see the lines above)")

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()

    def __enter__(self) -> FakeApiProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def run_demo(
    data_dir: Path,
    *,
    warehouse_path: Path | str | None = None,
    data_path: str | None = None,
    on_progress: Callable | None = None,
    say: Callable[[str], None] = print,
    size: int = DEMO_GENERATIONS,
) -> DemoResult:
    """Write logs under `data_dir/demo/`, serve them from the fake API, ingest into `warehouse_path`
    (default config.DEMO_WAREHOUSE), which is started afresh, unless it holds real runs (a lake is
    not emptied: the demo's ids are new on every run, and it adds them)."""
    warehouse_path = warehouse_path or Path(config.DEMO_WAREHOUSE)
    end = datetime.now(timezone.utc).replace(microsecond=0)
    dataset = Dataset(size, seed=DEMO_SEED, end=end, days=DEMO_DAYS)
    logs_dir = data_dir / "demo"
    # Each demo serves new ids (dated up to now), like its freshly written logs: start its warehouse
    # afresh too, or a second demo would add its ids to the first one's and double every total.
    refuse_real_warehouse(warehouse_path)
    if not config.is_lake(warehouse_path):
        for stale in (warehouse_path, warehouse_path.with_name(warehouse_path.name + ".wal")):
            stale.unlink(missing_ok=True)
    say(f"writing {size:,} generations' worth of sample logs to {logs_dir}/")
    write_demo_logs(dataset, logs_dir)
    with FakeApiProcess(size=size, seed=DEMO_SEED, end=end, days=DEMO_DAYS, api_key=DEMO_API_KEY) as api:
        say(f"fake OpenRouter API at {api.base_url} ({DEMO_FAULT_RATE:.0%} transient faults, 404 lag)")
        options = IngestOptions(paths=(str(logs_dir),), warehouse_path=warehouse_path, data_path=data_path,
                                base_url=api.base_url,
                                concurrency=64, demo=True, with_content=True)
        summary = ingest(options, api_key=DEMO_API_KEY, on_progress=on_progress)
        # The fake bill too, so that `orusage reconcile` and the notebook's coverage have one to read.
        billed = load_activity(warehouse_path, key=config.ApiKey(DEFAULT_MANAGEMENT_KEY, "the demo's management key"),
                               base_url=api.base_url)
        say(f"stored the fake API's billing activity: {billed.rows:,} rows over {len(billed.days)} days")
    return DemoResult(summary, warehouse_path, logs_dir, size)


def refuse_real_warehouse(path: Path | str) -> None:
    """A file the demo may replace: none yet, or a warehouse whose every run was a demo's (marked
    so in its options). Anything else (real runs, another tool's file) is kept."""
    from pipeline import warehouse

    if config.is_lake(path):
        try:
            warehouse.open_reader(path).close()
        except warehouse.WarehouseNotFoundError:
            return
    elif not path.exists():
        return

    refusal = (f"{path} is not a demo warehouse (it holds runs against a real API, or is no orusage "
               f"warehouse): the demo replaces its warehouse, so give it another one with --warehouse")
    from pipeline.warehouse.sql_files import statement

    try:
        reader = warehouse.open_reader(path)
    except warehouse.WarehouseError:
        raise DemoError(refusal) from None
    try:
        [(real_runs,)] = reader.rows(statement("status/real_runs"))
    except warehouse.QueryError:  # not a warehouse of ours
        real_runs = 1
    finally:
        reader.close()
    if real_runs:
        raise DemoError(refusal)


def _an_id_with_content(warehouse) -> str:
    rows = warehouse.sql("select generation_id from generation_content_rows where completion is not null "
                         "order by generation_id limit 1")
    return rows["generation_id"][0] if rows.height else "GEN_ID"


def first_look(result: DemoResult) -> str:
    """What the demo prints on stdout: spend by model, latency by provider, and what to try next."""
    from pipeline import output
    from pipeline.reports import Warehouse

    warehouse = Warehouse(result.warehouse_path)
    spend = warehouse.report("spend", by="model", top=10)
    latency = warehouse.report("latency", by="provider", top=10)
    path = result.warehouse_path if config.is_lake(result.warehouse_path) else result.warehouse_path.resolve()
    return "\n".join([
        output.render(spend, fmt="table", title="Spend by model (last 30 days of data)"),
        output.render(latency, fmt="table", title="Latency by provider"),
        f"Next, point orusage at the demo's warehouse ({path}) and try:",
        f"  export {config.WAREHOUSE_VARIABLE}={shlex.quote(config.redacted(path))}",
        "  orusage report --list",
        "  orusage report daily_cost",
        "  orusage report spend --by provider --format markdown",
        "  orusage query \"select model, count(*) as calls, sum(total_cost) as cost_usd from generations "
        "group by all order by cost_usd desc\"",
        "  orusage status",
        "  orusage reconcile --by model   # the bill (`orusage activity`) against what the logs name",
        "  orusage report errors          # the errors providers returned (from the stored content)",
        f"  orusage content {_an_id_with_content(warehouse)}   # one generation's prompt and completion",
        f"  the notebook: notebooks/cost_report.ipynb (it reads {config.WAREHOUSE_VARIABLE} too)",
    ])

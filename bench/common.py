"""What the end-to-end benchmarks share: the fake API on its own core, cached logs, ground truth, measuring a child.

A client under test always runs as a child process pinned to core 1 (`taskset -c 1`) while the fake
API runs pinned to core 0, so every client gets the same single core and the same server. The
child's CPU time and peak RSS come from `os.wait4`, which reports that one child's own rusage
(RUSAGE_CHILDREN would mix in every child waited for before it).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PYTHON = sys.executable
# The key the fake API accepts and every client sends; a fake one, so it may appear in commands.
BENCH_API_KEY = "sk-or-v1-bench-0000000000000000"
ID_PATTERN = r"gen-[0-9]{10}-[A-Za-z0-9]{20}"


def can_pin() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) > 1


def server_prefix() -> list[str]:
    return ["taskset", "-c", "0"] if can_pin() else []


def client_prefix() -> list[str]:
    return ["taskset", "-c", "1"] if can_pin() else []


def client_env() -> dict[str, str]:
    """The environment of a client under test: the bench key, no telemetry, nothing from the caller's key."""
    env = {**os.environ, "OPENROUTER_API_KEY": BENCH_API_KEY, "RUNTIME__DLTHUB_TELEMETRY": "false"}
    env.pop("OPENROUTER_BASE_URL", None)
    return env


# --------------------------------------------------------------------------------------------
# The fake API, in its own process on core 0
# --------------------------------------------------------------------------------------------


class FakeApi:
    """`orusage fake-api` as a child process pinned to core 0; its first stdout line is the base URL."""

    def __init__(self, size: int, seed: int, *, fault_rate: float = 0.0, latency_ms: float = 0.0,
                 extra_args: Sequence[str] = ()) -> None:
        self.command = [
            *server_prefix(), PYTHON, "-m", "pipeline.cli", "fake-api", "--port", "0", "--size", str(size),
            "--seed", str(seed), "--fault-rate", str(fault_rate), "--latency-ms", str(latency_ms), *extra_args,
        ]
        env = {**os.environ, "ORUSAGE_FAKE_API_KEY": BENCH_API_KEY}
        self._process = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        assert self._process.stdout is not None
        self.base_url = self._process.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            self.close()
            raise RuntimeError(f"the fake API did not start: {' '.join(self.command)}")
        self._ps = psutil.Process(self._process.pid)

    def cpu_s(self) -> float:
        times = self._ps.cpu_times()
        return times.user + times.system

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> FakeApi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Logs and ground truth, built once per (size, seed) and kept under bench/out/
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Logs:
    directory: Path
    size: int
    seed: int
    bytes: int
    truth_rows: int
    truth_cost_nusd: int  # the dataset's total cost in nano-USD: exact integers, compared exactly


def prepare_logs(size: int, seed: int) -> Logs:
    """The demo's log shapes (JSON lines, SSE, plain text, a rotated .gz) over `Dataset(size, seed)`'s ids."""
    from pipeline.demo import write_demo_logs
    from pipeline.fake_api import Dataset

    directory = OUT / f"logs-{size}-{seed}"
    meta_path = OUT / f"logs-{size}-{seed}.json"
    if meta_path.exists() and directory.is_dir():
        return Logs(directory=directory, **json.loads(meta_path.read_text()))
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"  writing logs for {size:,} ids (seed {seed}) and summing the dataset's records...", file=sys.stderr)
    dataset = Dataset(size, seed=seed)
    write_demo_logs(dataset, directory)
    cost_nusd = sum(round(record["total_cost"] * 1e9) for record in dataset.records())
    meta = {"size": size, "seed": seed, "bytes": sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()),
            "truth_rows": size, "truth_cost_nusd": cost_nusd}
    meta_path.write_text(json.dumps(meta))
    return Logs(directory=directory, **meta)


def check_exact(logs: Logs, rows: int | None, cost_nusd: int | None) -> bool:
    return rows == logs.truth_rows and cost_nusd == logs.truth_cost_nusd


def duckdb_totals(path: Path, table: str) -> tuple[int | None, int | None]:
    """(rows, total cost in nano-USD) of a loaded table, or (None, None) when there is none."""
    import duckdb

    if not path.exists():
        return None, None
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            rows, cost = con.execute(
                f"select count(*), coalesce(sum(round(total_cost * 1e9)), 0)::hugeint from {table}"
            ).fetchone()
    except duckdb.Error:
        return None, None
    return int(rows), int(cost)


def fresh(path: Path) -> Path:
    """A path under bench/out/ with nothing at it (a previous run's warehouse or dlt state removed)."""
    for p in (path, path.with_name(path.name + ".wal")):
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------------------------
# Measuring one child process
# --------------------------------------------------------------------------------------------


@dataclass
class Measured:
    command: list[str]
    returncode: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    stdout: str
    stderr: str
    server_cpu_s: float | None = None

    def json(self) -> dict:
        """The child's stdout as JSON (its last JSON object), or {} when it printed none."""
        return last_json_object(self.stdout) or {}


# The measured command runs as the child of this small launcher, which reports its rusage. Not a child of
# the bench itself: Linux starts a child's peak RSS (ru_maxrss) at the peak of the process it was forked
# from, and subprocess forks the whole bench (a /bin/true started from a 500 MB Python reported 511 MB).
# Forked from this ~10 MB launcher, the figure is the command's own.
_LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall_s = time.perf_counter() - started
with open(sys.argv[1], "w") as report:
    report.write(f"{wall_s} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def run_measured(command: Sequence[str], *, env: dict[str, str] | None = None, server: FakeApi | None = None,
                 timeout_s: float = 1800) -> Measured:
    """Run `command` to completion; its wall time, CPU time and peak RSS (its own: see _LAUNCHER)."""
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = f"{os.getpid()}-{time.monotonic_ns()}"
    out_path, err_path, usage_path = (OUT / f".child-{stamp}.{kind}" for kind in ("out", "err", "usage"))
    server_cpu0 = server.cpu_s() if server else None
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen([PYTHON, "-I", "-S", "-c", _LAUNCHER, str(usage_path), *command], stdout=out,
                                   stderr=err, cwd=ROOT, env=env or client_env(), start_new_session=True)
        try:
            returncode = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            returncode = process.wait()
    stdout, stderr = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    wall_s, cpu_s, peak_rss_kib = (float(x) for x in usage_path.read_text().split()) if usage_path.exists() else (
        float("nan"), float("nan"), float("nan"))
    for path in (out_path, err_path, usage_path):
        path.unlink(missing_ok=True)
    return Measured(
        command=list(command), returncode=returncode, wall_s=wall_s,
        cpu_s=cpu_s, peak_rss_mb=peak_rss_kib / 1024,  # Linux: KiB
        stdout=stdout, stderr=stderr,
        server_cpu_s=None if server is None or server_cpu0 is None else server.cpu_s() - server_cpu0,
    )


def client_figures(m: Measured, ids: int, logs: Logs, rows: int | None, cost_nusd: int | None, *,
                   finished: bool) -> dict:
    """The figures every client gets, peers and orusage alike; no rate for a run that did not finish."""
    return {
        "ids": ids,
        "exit_code": m.returncode,
        "finished": finished,
        "wall_s": round(m.wall_s, 3),
        "ids_per_s": round(ids / m.wall_s, 1) if finished else None,
        "cpu_s_per_10k_ids": round(m.cpu_s / ids * 10_000, 2) if finished else None,
        "peak_rss_mb": round(m.peak_rss_mb, 1),
        "server_cpu_share": round(m.server_cpu_s / m.wall_s, 2) if m.server_cpu_s is not None else None,
        "rows": rows,
        "cost_nusd": cost_nusd,
        "exact": check_exact(logs, rows, cost_nusd),
    }


def last_json_object(text: str) -> dict | None:
    """The last top-level JSON object printed on its own lines (scripts may print a table before it)."""
    decoder = json.JSONDecoder()
    found = None
    position = skip_to = 0
    for line in text.splitlines(keepends=True):
        start, position = position, position + len(line)
        if start < skip_to:
            continue  # inside an object already decoded (an indented JSON prints nested '{' lines)
        stripped = line.lstrip()
        if stripped.startswith("{"):
            try:
                value, end = decoder.raw_decode(text, start + len(line) - len(stripped))
            except ValueError:
                continue
            if isinstance(value, dict):
                found, skip_to = value, end
    return found


def tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def emit(figures: dict, *, as_json: bool) -> None:
    """One JSON object on stdout (--json), else the same figures, indented, for a person."""
    print(json.dumps(figures, indent=None if as_json else 2, default=str))


@contextmanager
def note(message: str) -> Iterator[None]:
    started = time.perf_counter()
    print(f"  {message}...", file=sys.stderr, flush=True)
    yield
    print(f"  {message}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# The clients under test: orusage's own ingest and the peers, behind one call
# --------------------------------------------------------------------------------------------

CLIENTS = ("orusage", "sdk_sync", "sdk_async", "dlt_rest_api")


def orusage_command() -> list[str]:
    script = Path(PYTHON).parent / "orusage"
    return [str(script)] if script.exists() else [PYTHON, "-m", "pipeline.cli"]


def client_command(client: str, logs: Logs, base_url: str, warehouse: Path, concurrency: int) -> list[str]:
    if client == "orusage":
        return [*client_prefix(), *orusage_command(), "ingest", str(logs.directory), "--warehouse", str(warehouse),
                "--base-url", base_url, "--concurrency", str(concurrency), "--json", "--quiet"]
    command = [*client_prefix(), PYTHON, str(ROOT / "bench" / "peers" / f"{client}.py"), "--logs", str(logs.directory),
               "--base-url", base_url, "--warehouse", str(warehouse)]
    return command if client == "sdk_sync" else [*command, "--concurrency", str(concurrency)]  # sync: one at a time


def run_client(client: str, logs: Logs, *, concurrency: int, fault_rate: float = 0.0, latency_ms: float = 0.0,
               tag: str = "", grown_from: Path | None = None) -> tuple[dict, str]:
    """One client over `logs` against a fresh fake API; (figures, the server's and the client's commands).

    `grown_from`: the client loads into a copy of that warehouse instead of a new one; rows and cost
    are then counted over the rows it added."""
    warehouse = fresh(OUT / "warehouses" / f"{client}{tag}.duckdb")
    base_rows, base_cost_nusd = 0, 0
    if grown_from is not None:
        shutil.copyfile(grown_from, warehouse)
        base_rows, base_cost_nusd = duckdb_totals(warehouse, "generations")
    fresh(OUT / "warehouses" / f"{client}{tag}.dlt")  # dlt's pipeline state, when the client is dlt
    with FakeApi(logs.size, logs.seed, fault_rate=fault_rate, latency_ms=latency_ms) as api, \
            note(f"{client} over {logs.size:,} ids (faults {fault_rate:.0%}, latency {latency_ms:g} ms, {concurrency} in flight)"):
        command = client_command(client, logs, api.base_url, warehouse, concurrency)
        measured = run_measured(command, server=api)
    printed = measured.json()
    if client == "orusage":
        rows, cost_nusd = duckdb_totals(warehouse, "generations")
        if rows is not None and cost_nusd is not None:
            rows, cost_nusd = rows - base_rows, cost_nusd - base_cost_nusd
        extra = {key: printed.get(key) for key in ("outcome", "loaded", "failed", "requests", "retries")}
        if printed.get("elapsed_s"):
            extra["ids_per_s_own_clock"] = round(logs.size / printed["elapsed_s"], 1)
        finished = measured.returncode in (0, 1) and bool(printed)  # 1: some ids failed, to retry next run
    else:
        rows, cost_nusd = printed.get("rows"), printed.get("cost_nusd")
        extra = {"errors": printed.get("errors"), "run_error": printed.get("run_error")}
        finished = measured.returncode == 0 and bool(printed) and not printed.get("run_error")
    figures = {**client_figures(measured, logs.size, logs, rows, cost_nusd, finished=finished), **extra}
    if not finished:
        figures["stderr_tail"] = tail(measured.stderr)
        print(f"  {client} exited {measured.returncode}:\n{tail(measured.stderr)}", file=sys.stderr)
    return figures, (f"ORUSAGE_FAKE_API_KEY=$KEY {shlex.join(display(api.command))} (prints $BASE_URL) ; "
                     f"OPENROUTER_API_KEY=$KEY {shlex.join(display(command, base_url=api.base_url))}")


def display(command: Sequence[str], *, base_url: str | None = None) -> list[str]:
    """The command as a person would type it from the repository root (the server's URL as $BASE_URL)."""
    root = str(ROOT) + "/"
    return ["$BASE_URL" if part == base_url else part.removeprefix(root) for part in command]


def ratio(numerator: float | None, denominator: float | None, digits: int = 3) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, digits)

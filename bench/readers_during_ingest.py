"""Readers during a load (issue 16): `orusage ingest` of --ids ids against the fake API (its own
core, as in bench/common.py; --fault-rate of its requests fail), once alone and once with a reader
asking for a report every --every-s seconds.

    python bench/readers_during_ingest.py [--ids 100000] [--every-s 2] [--rounds 2] [--fault-rate 0] [--json]

The reader is its own process, as an analyst's would be: each round opens the warehouse with the
notebook API's reader (waiting for the ingest's write window, up to 30 s), runs `report spend --by
model` and `status`'s queue count, and closes it. Reported: the reader's wait for the file (p50 /
p95 / max) and its whole answer time, failures (must be 0), whether the loaded count only grew;
and the ingest's ids/s with and without the reader, runs alternated (--rounds of each). The
targets: reader p95 wait under 2 s, the ingest slowed by under 10%.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import FakeApi, client_env, prepare_logs  # noqa: E402


def reader_loop(path: Path, every_s: float, stop_file: Path) -> None:
    """Until stop_file exists: every `every_s`, one report and one count; a JSON line per round."""
    from pipeline import reports, warehouse

    while not stop_file.exists():
        started = time.monotonic()
        record: dict[str, object] = {}
        try:
            reader = warehouse.open_reader(path)
            try:
                record["wait_s"] = reader.waited_s
                reports.run_report(reader, "spend", by="model")
                [(loaded,)] = reader.rows("select count(*) from generations")
                record["loaded"] = loaded
            finally:
                reader.close()
        except warehouse.WarehouseNotFoundError:  # before the ingest created it
            record["absent"] = True
        except reports.ReportError as exc:  # before the first batch: no generations yet
            record["empty"] = str(exc)[:80]
        except Exception as exc:  # noqa: BLE001 - a failure is what this counts
            record["error"] = f"{type(exc).__name__}: {exc}"[:300]
        record["answer_s"] = time.monotonic() - started
        print(json.dumps(record), flush=True)
        time.sleep(max(0.0, every_s - (time.monotonic() - started)))


def one_ingest(ids: int, folder: Path, *, with_reader: bool, every_s: float, fault_rate: float) -> dict[str, object]:
    logs, path = prepare_logs(ids, seed=16).directory, folder / f"w-{time.monotonic_ns()}.duckdb"
    with FakeApi(ids, seed=16, fault_rate=fault_rate) as api:
        stop = folder / "stop"
        stop.unlink(missing_ok=True)
        reader = None
        if with_reader:
            reader = subprocess.Popen([sys.executable, __file__, "--reader-loop", str(path), "--every-s", str(every_s),
                                       "--stop-file", str(stop)], stdout=subprocess.PIPE, text=True)
        started = time.monotonic()
        ingest = subprocess.run([sys.executable, "-m", "pipeline.cli", "ingest", str(logs), "--warehouse", str(path),
                                 "--base-url", api.base_url, "--quiet", "--json"], env=client_env(), capture_output=True,
                                text=True, timeout=1800)
        elapsed_s = time.monotonic() - started
        stop.touch()
        rounds = [json.loads(line) for line in reader.communicate(timeout=120)[0].splitlines()] if reader else []
    summary = json.loads(ingest.stdout.strip().splitlines()[-1])
    result: dict[str, object] = {"with_reader": with_reader, "exit_code": ingest.returncode, "loaded": summary["loaded"],
                                 "ids_per_s": round(ids / elapsed_s, 1), "wall_s": round(elapsed_s, 1)}
    if with_reader:
        waits = sorted(r["wait_s"] for r in rounds if "wait_s" in r)
        answers = sorted(r["answer_s"] for r in rounds if "error" not in r)
        loaded = [r["loaded"] for r in rounds if "loaded" in r]
        result.update({
            "reader_rounds": len(rounds), "reader_errors": [r["error"] for r in rounds if "error" in r],
            "reader_answers_with_data": len(loaded),
            "loaded_only_grew": all(a <= b for a, b in zip(loaded, loaded[1:])),
            "wait_p50_s": round(statistics.median(waits), 3), "wait_p95_s": round(quantile(waits, 0.95), 3),
            "wait_max_s": round(waits[-1], 3), "answer_p50_s": round(statistics.median(answers), 3),
            "answer_p95_s": round(quantile(answers, 0.95), 3), "answer_max_s": round(answers[-1], 3),
        })
    path.unlink(missing_ok=True)
    return result


def quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=100_000)
    parser.add_argument("--every-s", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--reader-loop", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stop-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader_loop:
        reader_loop(args.reader_loop, args.every_s, args.stop_file)
        return
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for with_reader in (False, True):
                runs.append(one_ingest(args.ids, Path(folder), with_reader=with_reader, every_s=args.every_s,
                                       fault_rate=args.fault_rate))
                if not args.json:
                    print(json.dumps(runs[-1]), flush=True)
    alone = [r["ids_per_s"] for r in runs if not r["with_reader"]]
    read = [r["ids_per_s"] for r in runs if r["with_reader"]]
    figures = {"ids": args.ids, "every_s": args.every_s, "fault_rate": args.fault_rate, "runs": runs,
               "slowdown": round(1 - statistics.median(read) / statistics.median(alone), 3)}
    print(json.dumps(figures) if args.json else f"slowdown with the reader (medians): {figures['slowdown']:.1%}")


if __name__ == "__main__":
    main()

"""What handing a batch to DuckDB costs: a copy into a temp table (what `duckdb_writes._registered`
does) against scanning the polars frame's Arrow stream in place (what it did before, which broke
wherever pyarrow is importable: see `_registered`'s docstring).

    python bench/batch_registration.py [--batch 2500] [--repeat 200]

Times the registration alone (register, plus the copy when asked, plus the drop), and a whole
`upsert_batch` of new ids with the copy, so the share is visible. Wall clock, median of --repeat.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from normalize_upsert import Bodies, loaded  # noqa: E402

from pipeline import normalize, warehouse  # noqa: E402
from pipeline.warehouse import duckdb_file, duckdb_writes


def registration_ms(con: duckdb.DuckDBPyConnection, frame, *, copy: bool, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        if copy:
            with duckdb_writes._registered(con, {"batch": frame}):
                pass
        else:
            con.register("batch", duckdb_writes._ArrowStream(frame))
            con.unregister("batch")
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2_500)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bodies = Bodies()
    batch = normalize.normalize_bodies([bodies.body(i) for i in range(args.batch)])
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        con = duckdb_file.connect(Path(folder) / "w.duckdb")
        figures["stream_ms"] = registration_ms(con, batch.generations, copy=False, repeat=args.repeat)
        figures["copy_ms"] = registration_ms(con, batch.generations, copy=True, repeat=args.repeat)
        upserts = []
        for round_ in range(20):
            fresh = normalize.normalize_bodies([bodies.body(i) for i in range((round_ + 1) * args.batch,
                                                                               (round_ + 2) * args.batch)])
            start = time.perf_counter()
            duckdb_writes.upsert_batch(con, fresh, loaded(list(fresh.generations["id"])), run_id="bench")
            upserts.append(time.perf_counter() - start)
        figures["upsert_batch_ms"] = statistics.median(upserts) * 1000
        con.close()
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{args.batch:,}-row generations frame: stream {figures['stream_ms']:.2f} ms, "
              f"copy into a temp table {figures['copy_ms']:.2f} ms; "
              f"a whole upsert_batch of new ids {figures['upsert_batch_ms']:.1f} ms")


if __name__ == "__main__":
    main()

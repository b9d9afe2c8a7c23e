"""Issue 18: `orusage ingest --with-content` against the same ingest without content.

Each round loads --ids ids (default 20,000; quick 2,000) from the same logs into a new DuckDB file,
once without content and once with (`--with-content`: twice the requests, and the bodies of the
prompts), alternated, against a new fake API each time (pinned to core 0, the ingest to core 1).
Figures: ids/s from start to exit, peak RSS (wait4), and whether every generation got its content
row. Target: the content run >= 60% of the metadata-only rate. Then the same run with content
where every --big-every-th prompt is --big-mb MB (default every 100th, 4 MB): peak RSS target
under 400 MB.

    .venv/bin/python bench/content.py --quick --json
    .venv/bin/python bench/content.py --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from common import OUT, ROOT, FakeApi, Logs, emit, fresh, note, orusage_command, prepare_logs, ratio, run_measured
from common import client_prefix

sys.path.insert(0, str(ROOT))

from pipeline import warehouse  # noqa: E402

TARGET_SHARE_OF_METADATA_ONLY = 0.6
TARGET_PEAK_RSS_MB = 400


def one_ingest(logs: Logs, *, with_content: bool, fake_api_args: list[str] = ()) -> dict:
    path = fresh(OUT / "warehouses" / "content-bench.duckdb")
    Path(f"{path}.ingest.lock").unlink(missing_ok=True)
    with FakeApi(logs.size, logs.seed, extra_args=fake_api_args) as api:
        command = [*client_prefix(), *orusage_command(), "ingest", str(logs.directory), "--warehouse", str(path),
                   "--base-url", api.base_url, "--concurrency", "64", "--json", "--quiet"]
        measured = run_measured([*command, "--with-content"] if with_content else command)
    with warehouse.open_reader(path) as reader:
        [(generations, contents)] = reader.rows(
            "select (select count(*) from generations), (select count(*) from generation_content)")
    return {"ids_per_s": round(logs.size / measured.wall_s, 1), "peak_rss_mb": round(measured.peak_rss_mb, 1),
            "exit_code": measured.returncode, "generations": generations, "content_rows": contents,
            "exact": generations == logs.size and contents == (logs.size if with_content else 0)}


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: proves it works")
    parser.add_argument("--ids", type=int, help="ids per run (default 20,000; quick 2,000)")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs, alternated")
    parser.add_argument("--big-every", type=int, default=100, help="every N-th prompt is big, in the last run")
    parser.add_argument("--big-mb", type=float, default=4.0, help="the big prompts' size (MB)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ids = args.ids or (2_000 if args.quick else 20_000)
    logs = prepare_logs(ids, seed=18)
    metadata_only, with_content = [], []
    for round_number in range(args.rounds):
        with note(f"round {round_number + 1}: {ids:,} ids without content"):
            metadata_only.append(one_ingest(logs, with_content=False))
        with note(f"round {round_number + 1}: {ids:,} ids with content"):
            with_content.append(one_ingest(logs, with_content=True))
    big_args = ["--big-content-every", str(args.big_every), "--big-content-bytes", str(int(args.big_mb * 2**20))]
    with note(f"{ids:,} ids with content, every {args.big_every}th prompt {args.big_mb:g} MB"):
        big = one_ingest(logs, with_content=True, fake_api_args=big_args)
    share = ratio(median(with_content, "ids_per_s"), median(metadata_only, "ids_per_s"))
    emit({
        "ids": ids,
        "metadata_only": {"ids_per_s": median(metadata_only, "ids_per_s"),
                          "peak_rss_mb": median(metadata_only, "peak_rss_mb"), "runs": metadata_only},
        "with_content": {"ids_per_s": median(with_content, "ids_per_s"),
                         "peak_rss_mb": median(with_content, "peak_rss_mb"), "runs": with_content},
        "content_share_of_metadata_only_rate": share,
        "target_share": TARGET_SHARE_OF_METADATA_ONLY,
        "meets_rate_target": share is not None and share >= TARGET_SHARE_OF_METADATA_ONLY,
        "big_prompts": {"every": args.big_every, "mb": args.big_mb, **big},
        "meets_rss_target": max(median(with_content, "peak_rss_mb"), big["peak_rss_mb"]) < TARGET_PEAK_RSS_MB,
        "all_exact": all(run["exact"] for run in [*metadata_only, *with_content, big]),
    }, as_json=args.json)


if __name__ == "__main__":
    main()

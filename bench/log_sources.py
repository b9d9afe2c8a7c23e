"""Issue 19: nightly runs read only what is new in the logs.

Rerun: --files plain logs of --file-mb MB each (default 10 of 1,024), filler lines with --ids-per-file
ids of the fake API's dataset spread through each, ingested into a new DuckDB file (every byte read).
Then, each the whole `orusage ingest` process (wall time, from the launcher):
- again with nothing changed (target: under 1 s: stat and state, no reading), and `orusage ids --new
  --count`, the same stat-and-state path without the ingest around it;
- with --append-mb MB (and --ids-per-file more ids) appended to one file (target: those MB read, at
  scan speed);
- `orusage ingest --rescan`, which reads every byte again: what a run costs without the state.
The files stay in the page cache (24 GiB of RAM): the figures are CPU, not disk.

Dense: a log with an id on every fifth line (bench/scan_logs.py's corpus, each id once, ~1M distinct
ids per GB): `orusage ids --count` against `rg -o | wc -l` and `rg -o | sort -u | wc -l`, the three
alternated, --repeat rounds, after one untimed read of the file into the page cache (target: ours
>= 0.5x the speed of rg -o, on the medians). Each is a whole process.

    .venv/bin/python bench/log_sources.py --quick --json
    .venv/bin/python bench/log_sources.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

import scan_logs
from common import ID_PATTERN, OUT, PYTHON, ROOT, FakeApi, emit, fresh, note, orusage_command, ratio, run_measured

sys.path.insert(0, str(ROOT))

from pipeline.fake_api import Dataset  # noqa: E402

SEED = 19
TARGET_UNCHANGED_S = 1.0
TARGET_DENSE_VS_RG = 0.5
FILLER = ('{"ts":"2026-08-01T00:00:00.000Z","level":"info","logger":"http","msg":"request handled",'
          '"method":"POST","path":"/api/chat","status":200,"duration_ms":812,"trace":"5c0ffee0ddba11ab"}\n')


def id_line(generation_id: str) -> str:
    return (f'{{"ts":"2026-08-01T00:00:00.000Z","level":"info","logger":"llm.client","msg":"completion finished",'
            f'"id":"{generation_id}","model":"openai/gpt-4.1-mini","latency_ms":812}}\n')


def write_log(path: Path, size: int, ids: list[str], header: str) -> None:
    """`size` bytes of filler with `ids` spread evenly, after a first line that makes the head unique."""
    block_lines = max(1, (size // len(FILLER)) // (len(ids) + 1))
    block = FILLER * block_lines
    with open(path, "w") as out:
        out.write(header)
        written = len(header)
        for generation_id in ids:
            out.write(block + id_line(generation_id))
            written += len(block) + len(id_line(generation_id))
        while written < size:
            piece = block[: size - written]
            piece = piece[: piece.rfind("\n") + 1] or FILLER
            out.write(piece)
            written += len(piece)


def prepare_logs(files: int, file_mb: int, ids_per_file: int, dataset: Dataset) -> Path:
    folder = OUT / f"log-sources-{files}x{file_mb}mb-{ids_per_file}"
    meta = folder.with_name(folder.name + ".complete")  # beside it: a file inside would be read as a log
    if meta.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with note(f"writing {files} logs of {file_mb} MB"):
        for number in range(files):
            ids = dataset.ids[number * ids_per_file : (number + 1) * ids_per_file]
            write_log(folder / f"app-{number:02d}.log", file_mb * 1_000_000, list(ids), f"# app-{number:02d} started\n")
    meta.write_text("")
    return folder


def ingest(folder: Path, warehouse: Path, base_url: str, *extra: str) -> dict:
    measured = run_measured([*orusage_command(), "ingest", str(folder), "--warehouse", str(warehouse),
                             "--base-url", base_url, "--json", "--quiet", *extra])
    summary = measured.json()
    if measured.returncode != 0:
        sys.exit(f"ingest {' '.join(extra)} failed ({measured.returncode}): {measured.stderr[-2000:]}")
    return {"wall_s": round(measured.wall_s, 3), "peak_rss_mb": round(measured.peak_rss_mb, 1),
            **{key: summary[key] for key in ("files_read", "files_unchanged", "files_continued", "bytes_read",
                                             "bytes_skipped", "ids_in_logs", "ids_new", "loaded")}}


def rerun(args: argparse.Namespace) -> dict:
    dataset = Dataset(args.files * args.ids_per_file + args.ids_per_file, seed=SEED)
    folder = prepare_logs(args.files, args.file_mb, args.ids_per_file, dataset)
    total_mb = sum(path.stat().st_size for path in folder.glob("*.log")) / 1e6
    warehouse = fresh(OUT / "warehouses" / "log-sources.duckdb")
    Path(f"{warehouse}.ingest.lock").unlink(missing_ok=True)
    appended_to = folder / "app-00.log"
    original_size = appended_to.stat().st_size
    figures: dict[str, object] = {"files": args.files, "file_mb": args.file_mb, "total_mb": round(total_mb, 1)}
    try:
        with FakeApi(len(dataset.ids), SEED) as api:
            with note("first ingest (reads everything)"):
                figures["first"] = ingest(folder, warehouse, api.base_url)
            unchanged = []
            ids_new = []
            for _ in range(args.repeat):
                unchanged.append(ingest(folder, warehouse, api.base_url))
                measured = run_measured([*orusage_command(), "ids", "--new", "--count", "--warehouse", str(warehouse),
                                         str(folder)])
                ids_new.append({"wall_s": round(measured.wall_s, 3), "ids": measured.stdout.strip()})
            figures["unchanged"] = min(unchanged, key=lambda run: run["wall_s"])
            figures["unchanged_wall_s_all"] = [run["wall_s"] for run in unchanged]
            figures["ids_new_unchanged"] = min(ids_new, key=lambda run: run["wall_s"])
            extra_ids = list(dataset.ids[args.files * args.ids_per_file :])
            appended = OUT / "log-sources-appended.log"
            write_log(appended, args.append_mb * 1_000_000, extra_ids, "")
            with open(appended_to, "ab") as target, open(appended, "rb") as source:
                shutil.copyfileobj(source, target, 1 << 20)
            appended_mb = (appended_to.stat().st_size - original_size) / 1e6
            measured = run_measured([*orusage_command(), "ids", "--new", "--count", "--warehouse", str(warehouse),
                                     str(folder)])
            figures["ids_new_appended"] = {"wall_s": round(measured.wall_s, 3), "ids": measured.stdout.strip()}
            figures["appended_mb"] = round(appended_mb, 1)
            figures["appended"] = ingest(folder, warehouse, api.base_url)
            with note("ingest --rescan (reads everything again)"):
                figures["rescan"] = ingest(folder, warehouse, api.base_url, "--rescan")
    finally:
        os.truncate(appended_to, original_size)  # the logs are kept for the next run, as written
    first, rescan = figures["first"], figures["rescan"]
    figures["rescan_mb_per_s"] = round(total_mb / rescan["wall_s"], 1)  # type: ignore[index]
    figures["unchanged_vs_rescan"] = ratio(figures["unchanged"]["wall_s"], rescan["wall_s"])  # type: ignore[index]
    figures["appended_vs_rescan"] = ratio(figures["appended"]["wall_s"], rescan["wall_s"])  # type: ignore[index]
    figures["unchanged_target_met"] = figures["unchanged"]["wall_s"] < TARGET_UNCHANGED_S  # type: ignore[index]
    appended_bytes = figures["appended"]["bytes_read"]  # type: ignore[index]
    figures["exact"] = (first["bytes_read"] + appended_bytes == rescan["bytes_read"]  # type: ignore[index]
                        and figures["unchanged"]["bytes_read"] == 0  # type: ignore[index]
                        and figures["appended"]["ids_new"] == len(extra_ids)  # type: ignore[index]
                        and abs(appended_bytes / 1e6 - appended_mb) < 0.01)
    return figures


def dense(args: argparse.Namespace) -> dict:
    plain, _, meta = scan_logs.prepare_corpus(args.dense_mb, 1)
    rg = shutil.which("rg", path=str(Path(PYTHON).parent)) or shutil.which("rg")
    if rg is None:
        sys.exit("no rg: install the bench extra (.venv/bin/pip install -e '.[bench]')")
    commands = {
        "orusage_ids_count": [*orusage_command(), "ids", "--count", str(plain)],
        "rg_o": ["bash", "-c", f"set -o pipefail; '{rg}' -o -a '{ID_PATTERN}' '{plain}' | wc -l"],
        "rg_o_sort_u": ["bash", "-c", f"set -o pipefail; '{rg}' -o -a '{ID_PATTERN}' '{plain}' | sort -u | wc -l"],
    }
    runs: dict[str, list[float]] = {name: [] for name in commands}
    with open(plain, "rb") as warm:  # into the page cache first: the rerun's 10 GB may have pushed it out
        while warm.read(1 << 24):
            pass
    for _ in range(args.repeat):  # alternated: a burst of load from elsewhere hits each alike
        for name, command in commands.items():
            measured = run_measured(command)
            if measured.returncode != 0:
                sys.exit(f"{name} failed: {measured.stderr[-500:]}")
            # rg's pattern has no boundaries, so it also counts the corpus's decoys (xgen-..., req-...)
            if name == "orusage_ids_count" and int(measured.stdout.split()[-1]) != meta["distinct_ids"]:
                sys.exit(f"orusage ids --count counted {measured.stdout.strip()}, not {meta['distinct_ids']}")
            runs[name].append(round(measured.wall_s, 3))
    mb = plain.stat().st_size / 1e6
    figures: dict[str, object] = {"mb": round(mb, 1), "distinct_ids": meta["distinct_ids"], "repeat": args.repeat}
    for name, walls in runs.items():
        figures[name] = {"best_s": min(walls), "median_s": statistics.median(walls), "all_s": walls,
                         "mb_per_s": round(mb / min(walls), 1)}
    figures["ours_vs_rg_o"] = ratio(runs["rg_o"] and min(runs["rg_o"]), min(runs["orusage_ids_count"]), 2)
    figures["ours_vs_rg_o_median"] = ratio(statistics.median(runs["rg_o"]), statistics.median(runs["orusage_ids_count"]), 2)
    figures["ours_vs_rg_o_sort_u"] = ratio(min(runs["rg_o_sort_u"]), min(runs["orusage_ids_count"]), 2)
    figures["target_met"] = figures["ours_vs_rg_o_median"] >= TARGET_DENSE_VS_RG  # type: ignore[operator]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 logs of 64 MB, a 64 MB dense log")
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--file-mb", type=int, default=1024)
    parser.add_argument("--ids-per-file", type=int, default=100)
    parser.add_argument("--append-mb", type=int, default=10)
    parser.add_argument("--dense-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the unchanged rerun and of the dense scans")
    parser.add_argument("--only", choices=["rerun", "dense"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.files, args.file_mb, args.dense_mb, args.append_mb = 3, 64, 64, 2
    figures: dict[str, object] = {}
    if args.only in (None, "rerun"):
        figures["rerun"] = rerun(args)
    if args.only in (None, "dense"):
        with note("dense log: orusage ids --count, rg -o, rg -o | sort -u"):
            figures["dense"] = dense(args)
    (OUT / "log_sources.json").write_text(json.dumps(figures, indent=2))
    emit(figures, as_json=args.json)


if __name__ == "__main__":
    main()

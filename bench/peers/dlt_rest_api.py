"""Peer 3: dlt's `rest_api` source into DuckDB, the data-engineering tool a user would reach for.

dlt's rest_api builds resources from a declarative config. "A resource per id" does not scale to
thousands of ids (every resource is a separate pipe, its own table hints and extract step), so this
is the nearest faithful thing, the pattern dlt documents for fetching details by id: a parent
resource listing the ids found in the logs, and one dependent `generation` endpoint resource whose
`id` query parameter is `resolve`d from it, `write_disposition="merge"`, `primary_key="id"`,
`data_selector="data"`, no paginator. `parallelized=True` fans the requests out over dlt's extract
thread pool (`extract.workers` = `--concurrency`). Retries are dlt's own (429, 5xx, connection
errors, `Retry-After`). dlt stages to files, normalizes (nested `provider_responses` becomes the
child table `generation__provider_responses`), then loads with MERGE.

    OPENROUTER_API_KEY=... .venv/bin/python bench/peers/dlt_rest_api.py --logs DIR --base-url URL --warehouse FILE
"""

from __future__ import annotations

import os
import traceback
import time
from collections import Counter
from pathlib import Path

from peer_common import arguments, ids_from_logs, report

DATASET = "openrouter"


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    # Set before dlt reads its configuration; telemetry off: nothing here may reach the network.
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ["EXTRACT__WORKERS"] = str(args.concurrency)
    os.environ["EXTRACT__MAX_PARALLEL_ITEMS"] = str(args.concurrency)
    started = time.perf_counter()

    import dlt
    from dlt.sources.rest_api import rest_api_source

    ids = ids_from_logs(args.logs)

    @dlt.resource(name="generation_ids", selected=False)
    def generation_ids():  # pages of ids, as a listing endpoint would yield them (dependents iterate a page)
        for start in range(0, len(ids), 1_000):
            yield [{"id": i} for i in ids[start : start + 1_000]]

    source = rest_api_source({
        "client": {
            "base_url": args.base_url.rstrip("/") + "/",
            "auth": {"type": "bearer", "token": os.environ["OPENROUTER_API_KEY"]},
            "paginator": "single_page",
        },
        "resources": [
            generation_ids(),
            {
                "name": "generation",
                "endpoint": {
                    "path": "generation",
                    "params": {"id": "{resources.generation_ids.id}"},
                    "data_selector": "data",
                },
                "write_disposition": "merge",
                "primary_key": "id",
                "parallelized": True,
            },
        ],
    })
    warehouse = Path(args.warehouse).resolve()
    pipeline = dlt.pipeline(
        pipeline_name="orusage_peer_dlt", destination=dlt.destinations.duckdb(str(warehouse)), dataset_name=DATASET,
        pipelines_dir=str(warehouse.parent / f"{warehouse.stem}.dlt"),
    )
    errors: Counter[str] = Counter()
    run_error = None
    try:
        pipeline.run(source)
    except Exception as e:  # noqa: BLE001 (one failed request fails the whole run: reported, not hidden)
        traceback.print_exc()
        cause = e
        while cause.__cause__ is not None or cause.__context__ is not None:
            cause = cause.__cause__ or cause.__context__
        errors[f"run failed ({type(cause).__name__})"] += 1
        run_error = f"{type(e).__name__} <- {type(cause).__name__}: {str(cause)[:160]}"

    import duckdb

    rows = cost_nusd = 0
    with duckdb.connect(str(warehouse)) as con:
        exists = con.execute("select count(*) from information_schema.tables where table_schema = ? "
                             "and table_name = 'generation'", [DATASET]).fetchone()[0]
        if exists:
            rows, cost_nusd = con.execute(f"select count(*), coalesce(sum(round(total_cost * 1e9)), 0)::hugeint "
                                          f"from {DATASET}.generation").fetchone()
    report(ids=len(ids), rows=int(rows), cost_nusd=int(cost_nusd), errors=errors, started=started,
           concurrency=args.concurrency, run_error=run_error)


if __name__ == "__main__":
    main()

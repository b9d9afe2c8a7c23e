"""Re-run cost_report.ipynb in place, so its committed outputs (static PNG charts) match the code.

    orusage demo                                  # builds data/demo.duckdb
    .venv/bin/python notebooks/render.py          # executes the notebook against it, saves outputs

The outputs are committed on purpose: GitHub shows the charts without a kernel. They must come
from the demo warehouse (made-up data), never from a real one. `--warehouse` reads another file
(the path goes in a cell after the `parameters` cell for the run, and is dropped before saving).
Needs the dev extra (nbclient, ipykernel, matplotlib).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent / "cost_report.ipynb"


def execute(path: Path, parameters: dict[str, object] | None = None, *, timeout_s: int = 300) -> nbformat.NotebookNode:
    """Execute a notebook from its own folder; `parameters` go in a cell after the one tagged `parameters`."""
    nb = nbformat.read(path, as_version=4)
    if parameters:
        index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
        nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    NotebookClient(nb, timeout=timeout_s, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", help="read this warehouse instead of ../data/demo.duckdb (or ORUSAGE_WAREHOUSE)")
    parser.add_argument("--check", action="store_true",
                        help="execute and fail on any error, save nothing (CI runs this on a fresh warehouse)")
    args = parser.parse_args()
    if not args.check:  # committed outputs come from made-up data only
        from pipeline import demo

        try:
            demo.refuse_real_warehouse(Path(args.warehouse or NOTEBOOK.parent / "../data/demo.duckdb"))
        except demo.DemoError as e:
            raise SystemExit(f"render.py: {e}") from None
    nb = execute(NOTEBOOK, {"warehouse": str(Path(args.warehouse).resolve())} if args.warehouse else None)
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs if out.output_type == "error"]
    if errors:
        raise SystemExit(f"{NOTEBOOK.name}: {errors[0].ename}: {errors[0].evalue}")
    if args.check:
        print(f"{NOTEBOOK.name}: every cell ran")
        return
    nb.cells = [cell for cell in nb.cells if "injected-parameters" not in cell.metadata.get("tags", [])]
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    for count, cell in enumerate(code, start=1):  # as if run without the injected cell
        cell.execution_count = count
        for out in cell.outputs:
            if out.output_type == "execute_result":
                out.execution_count = count
    nbformat.write(nb, NOTEBOOK)
    print(f"wrote {NOTEBOOK} ({NOTEBOOK.stat().st_size / 1e3:,.0f} kB)")


if __name__ == "__main__":
    main()

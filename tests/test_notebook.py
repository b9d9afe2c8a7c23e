"""notebooks/cost_report.ipynb runs end to end on a warehouse loaded from the fake API and draws its charts."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest

from lakes import make_target
from pipeline import warehouse
from pipeline.fake_api import Dataset
from pipeline.normalize import normalize_activity, normalize_bodies, normalize_content
from pipeline.warehouse import QueueUpdate

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "cost_report.ipynb"
CHARTS = 5  # spend per day, top spenders, latency per provider, cache savings, fallbacks and failures
# ... and billed against logged spend per day, with a stored bill


def _render_module():
    spec = importlib.util.spec_from_file_location("render", ROOT / "notebooks" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The file's warehouse holds no content and no bill (the notebook's sections on them say so), the lake's does.
@pytest.mark.parametrize(("kind", "with_content"), [("file", False), ("lake_sqlite", True)])
def test_notebook_runs_every_cell_and_draws_png_charts(tmp_path: Path, kind: str, with_content: bool) -> None:
    dataset = Dataset(3000, seed=7, end=datetime(2026, 8, 1, tzinfo=UTC), days=21)
    [target] = make_target(kind, tmp_path)
    with warehouse.open_writer(target.location, data_path=target.data_path) as writer:
        batch = normalize_bodies([(i, dataset.body(i)) for i in dataset.ids])
        writer.upsert_batch(batch, [QueueUpdate(i, "loaded", 1, 200, None, None) for i in dataset.ids], run_id="test")
        if with_content:
            content = normalize_content([(i, dataset.content_body(i)) for i in dataset.ids], max_bytes=2**20)
            writer.write_content(content, run_id="test")
            writer.write_activity(normalize_activity(dataset.activity(), fetched_at=datetime.now(UTC)))

    nb = _render_module().execute(NOTEBOOK, {"warehouse": str(target.location)})

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "every code cell ran"
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert errors == []
    pngs = [out for cell in code for out in cell.outputs if "image/png" in out.get("data", {})]
    assert len(pngs) == CHARTS + with_content
    content_section = "".join(str(out.get("data", {}).get("text/markdown", "")) for out in code[-2].outputs)
    coverage_section = "".join(str(out.get("data", {}).get("text/markdown", "")) for out in code[-1].outputs)
    if with_content:
        assert "most_common_message" in content_section and "cost_usd_per_prompt_kb" in content_section
        assert "The logs account for **100.0%**" in coverage_section and "missing_usd" in coverage_section
    else:
        assert "No content stored" in content_section
        assert "No billing activity stored" in coverage_section


def test_committed_notebook_has_one_tagged_parameter_cell_and_no_injected_one() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    tags = [tag for cell in nb.cells for tag in cell.metadata.get("tags", [])]
    assert tags.count("parameters") == 1
    assert "injected-parameters" not in tags

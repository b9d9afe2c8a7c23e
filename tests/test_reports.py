"""Reports agree with the fake API's own records, summed in plain Python.

The warehouse is loaded the way ingest loads it (normalize_bodies, upsert_batch) from the bodies
the fake API serves; every expected figure below is computed from `Dataset.records()` alone, so
a mistake in a view, a report, the window or the grouping shows up as a mismatch.

Percentiles are DuckDB's quantile_cont: linear interpolation between the two nearest ranks,
x[floor(h)] + (h - floor(h)) * (x[floor(h)+1] - x[floor(h)]) with h = (n - 1) q on the sorted
values (numpy's default "linear"), reimplemented here from a sorted list.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from pipeline import Warehouse
from pipeline.cli import cli
from pipeline.fake_api import Dataset
from pipeline.config import DEFAULT_MAX_CONTENT_BYTES
from pipeline.normalize import normalize_bodies, normalize_content
from pipeline.reports import ReportError, list_reports
from pipeline.warehouse import QueueUpdate
from pipeline.warehouse.duckdb_file import connect
from pipeline.warehouse.duckdb_writes import upsert_batch, write_content

ROOT = Path(__file__).resolve().parent.parent
END = datetime(2026, 8, 1, tzinfo=UTC)
DAYS = 45  # longer than the default 30-day window, so the default window has something to leave out


def load(path: Path, dataset: Dataset) -> Path:
    con = connect(path)
    batch = normalize_bodies([(i, dataset.body(i)) for i in dataset.ids])
    assert batch.rejected == []
    updates = [QueueUpdate(i, "loaded", 1, 200, None, None) for i in dataset.ids]
    upsert_batch(con, batch, updates, run_id="test")
    content = normalize_content([(i, dataset.content_body(i)) for i in dataset.ids], max_bytes=DEFAULT_MAX_CONTENT_BYTES)
    assert content.rejected == []
    write_content(con, content, run_id="test")
    con.close()
    return path


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset(4000, seed=11, end=END, days=DAYS)


@pytest.fixture(scope="module")
def records(dataset: Dataset) -> list[dict]:
    return list(dataset.records())


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory, dataset: Dataset) -> Warehouse:
    return Warehouse(load(tmp_path_factory.mktemp("reports") / "warehouse.duckdb", dataset))


# ---- the independent computation ---------------------------------------------------------------


def created(record: dict) -> datetime:
    return datetime.fromisoformat(record["created_at"]).astimezone(UTC)


def in_window(records: list[dict], since: datetime, until: datetime) -> list[dict]:
    return [r for r in records if since <= created(r) < until]


def app_label(r: dict) -> str:
    return r.get("origin") or r.get("http_referer") or (f"app {r['app_id']}" if r.get("app_id") is not None else "(none)")


KEYS = {
    "model": lambda r: r["model"],
    "provider": lambda r: r.get("provider_name") or "(unknown)",
    "app": app_label,
    "user": lambda r: r.get("external_user") or "(none)",
    "session": lambda r: r.get("session_id") or "(none)",
    "day": lambda r: created(r).date(),
    "week": lambda r: created(r).date() - timedelta(days=created(r).weekday()),
    "month": lambda r: created(r).date().replace(day=1),
}


def quantile_cont(values: list[float], q: float) -> float | None:
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return None
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def rows_by(frame: pl.DataFrame, key: str) -> dict:
    return {row[key]: row for row in frame.iter_rows(named=True)}


def attempts_of(r: dict) -> list[dict] | None:
    return r.get("provider_responses")


# ---- the window ------------------------------------------------------------------------------


def test_default_window_is_the_last_30_days_of_data_not_of_the_clock(wh: Warehouse, records: list[dict]) -> None:
    newest_day = max(created(r) for r in records).date()
    window = wh.window()
    assert window.until == datetime.combine(newest_day + timedelta(days=1), datetime.min.time(), UTC)
    assert window.since == window.until - timedelta(days=30)
    summary = wh.report("summary")
    assert summary["generations"][0] == len(in_window(records, window.since, window.until)) < len(records)


def test_a_date_until_includes_that_whole_day(wh: Warehouse, records: list[dict]) -> None:
    frame = wh.report("daily_cost", since="2026-07-10", until="2026-07-12")
    assert frame["day"].to_list() == [date(2026, 7, 10), date(2026, 7, 11), date(2026, 7, 12)]
    expected = in_window(records, datetime(2026, 7, 10, tzinfo=UTC), datetime(2026, 7, 13, tzinfo=UTC))
    assert frame["generations"].sum() == len(expected)


# ---- spend -------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["model", "provider", "app", "user", "session", "day", "week", "month"])
def test_spend_by_each_grouping_equals_the_records_summed(wh: Warehouse, records: list[dict], by: str) -> None:
    since, until = datetime(2026, 6, 20, 6, tzinfo=UTC), datetime(2026, 7, 25, 18, tzinfo=UTC)
    window = in_window(records, since, until)
    cost: dict = defaultdict(float)
    count: Counter = Counter()
    prompt: Counter = Counter()
    for r in window:
        cost[KEYS[by](r)] += r["total_cost"]
        count[KEYS[by](r)] += 1
        prompt[KEYS[by](r)] += r["tokens_prompt"] or 0

    frame = wh.report("spend", by=by, since=since, until=until)

    assert frame.columns[0] == by
    got = rows_by(frame, by)
    assert set(got) == set(cost)
    total = sum(cost.values())
    for key, row in got.items():
        assert row["total_cost_usd"] == pytest.approx(cost[key], rel=1e-9, abs=1e-12)
        assert row["generations"] == count[key]
        assert row["tokens_prompt"] == prompt[key]
        assert row["cost_share"] == pytest.approx(cost[key] / total, rel=1e-9, abs=1e-12)
    if by in ("day", "week", "month"):
        assert frame[by].to_list() == sorted(got)  # time reads in order
    else:
        assert frame["total_cost_usd"].to_list() == sorted(frame["total_cost_usd"].to_list(), reverse=True)


def test_daily_cost_by_model_keeps_the_top_models_and_sums_the_rest(wh: Warehouse, records: list[dict]) -> None:
    window = wh.window()
    rows = in_window(records, window.since, window.until)
    per_model: dict = defaultdict(float)
    for r in rows:
        per_model[r["model"]] += r["total_cost"]
    top3 = sorted(per_model, key=per_model.get, reverse=True)[:3]
    expected: dict = defaultdict(float)
    for r in rows:
        expected[(created(r).date(), r["model"] if r["model"] in top3 else "(other)")] += r["total_cost"]

    frame = wh.report("daily_cost", by="model", top=3)

    assert set(frame["model"]) == {*top3, "(other)"}
    got = {(row["day"], row["model"]): row["total_cost_usd"] for row in frame.iter_rows(named=True)}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12)


def test_model_and_provider_filters_are_globs(wh: Warehouse, records: list[dict]) -> None:
    window = wh.window()
    rows = in_window(records, window.since, window.until)
    expected = sum(r["total_cost"] for r in rows if r["model"].startswith("anthropic/") and r["provider_name"] == "Anthropic")

    frame = wh.report("spend", by="model", model="anthropic/*", provider="Anthropic")

    assert set(frame["model"]) == {"anthropic/claude-sonnet-4.5", "anthropic/claude-haiku-4.5"}
    assert frame["total_cost_usd"].sum() == pytest.approx(expected, rel=1e-9)


def test_top_keeps_the_n_most_expensive(wh: Warehouse) -> None:
    everything = wh.report("spend", by="model")
    assert wh.report("spend", by="model", top=3).equals(everything.head(3))


# ---- prices, latency, throughput -------------------------------------------------------------


def test_token_prices_blended_and_least_squares_split(wh: Warehouse, records: list[dict]) -> None:
    window = wh.window()
    rows = [r for r in in_window(records, window.since, window.until) if not r["is_byok"]]
    frame = rows_by(wh.report("token_prices"), "model")
    for model, row in frame.items():
        mine = [r for r in rows if r["model"] == model]
        p = np.array([r["native_tokens_prompt"] for r in mine], dtype=float)
        c = np.array([r["native_tokens_completion"] for r in mine], dtype=float)
        y = np.array([r["total_cost"] for r in mine])
        assert row["usd_per_million_tokens"] == pytest.approx(y.sum() * 1e6 / (p.sum() + c.sum()), rel=1e-9)
        if not c.any():  # embeddings: no completion tokens, no split
            assert row["usd_per_million_completion_tokens"] is None
            continue
        (prompt_price, completion_price), *_ = np.linalg.lstsq(np.column_stack([p, c]), y, rcond=None)
        assert row["usd_per_million_prompt_tokens"] == pytest.approx(prompt_price * 1e6, rel=1e-6)
        assert row["usd_per_million_completion_tokens"] == pytest.approx(completion_price * 1e6, rel=1e-6)


@pytest.mark.parametrize("by", ["provider", "model"])
def test_latency_percentiles_are_quantile_cont_of_the_records(wh: Warehouse, records: list[dict], by: str) -> None:
    window = wh.window()
    groups: dict = defaultdict(list)
    for r in in_window(records, window.since, window.until):
        groups[KEYS[by](r)].append(r)
    for key, row in rows_by(wh.report("latency", by=by), by).items():
        for measure in ("latency", "generation_time"):
            values = [r[measure] for r in groups[key]]
            for q in (50, 90, 99):
                assert row[f"{measure}_p{q}_ms"] == pytest.approx(quantile_cont(values, q / 100), rel=1e-9), (key, measure, q)


def test_throughput_skips_generations_without_a_positive_time(wh: Warehouse, records: list[dict]) -> None:
    window = wh.window()
    groups: dict = defaultdict(list)
    for r in in_window(records, window.since, window.until):
        if r["generation_time"] and r["generation_time"] > 0 and r["tokens_completion"] is not None:
            groups[r["provider_name"]].append(r)
    for provider, row in rows_by(wh.report("throughput", by="provider"), "provider").items():
        timed = groups[provider]
        assert row["timed_generations"] == len(timed)
        tokens = sum(r["tokens_completion"] for r in timed)
        seconds = sum(r["generation_time"] for r in timed) / 1000
        assert row["completion_tokens_per_s"] == pytest.approx(tokens / seconds, rel=1e-9)
        rates = [r["tokens_completion"] / (r["generation_time"] / 1000) for r in timed]
        assert row["completion_tokens_per_s_p50"] == pytest.approx(quantile_cont(rates, 0.5), rel=1e-9)


# ---- cache, BYOK, endings ------------------------------------------------------------------


def test_cache_savings_keep_reads_and_writes_apart(wh: Warehouse, records: list[dict]) -> None:
    window = wh.window()
    reads: dict = defaultdict(float)
    writes: dict = defaultdict(float)
    for r in in_window(records, window.since, window.until):
        discount = r["cache_discount"] or 0
        reads[r["model"]] += max(discount, 0)
        writes[r["model"]] += max(-discount, 0)
    frame = rows_by(wh.report("cache_savings"), "model")
    assert any(v > 0 for v in writes.values()) and any(v > 0 for v in reads.values())
    for model, row in frame.items():
        assert row["cache_read_savings_usd"] == pytest.approx(reads[model], rel=1e-9, abs=1e-12)
        assert row["cache_write_cost_usd"] == pytest.approx(writes[model], rel=1e-9, abs=1e-12)
        assert row["net_cache_savings_usd"] == pytest.approx(reads[model] - writes[model], rel=1e-9, abs=1e-12)


def test_byok_compares_openrouter_charge_with_the_upstream_cost(wh: Warehouse, records: list[dict]) -> None:
    window = wh.window()
    byok = [r for r in in_window(records, window.since, window.until) if r["is_byok"]]
    assert byok
    frame = rows_by(wh.report("byok", by="provider"), "provider")
    assert set(frame) == {r["provider_name"] for r in byok}
    for provider, row in frame.items():
        mine = [r for r in byok if r["provider_name"] == provider]
        assert row["byok_generations"] == len(mine)
        assert row["byok_total_cost_usd"] == pytest.approx(sum(r["total_cost"] for r in mine), rel=1e-9, abs=1e-12)
        assert row["byok_upstream_inference_cost_usd"] == pytest.approx(
            sum(r["upstream_inference_cost"] for r in mine), rel=1e-9)


def test_finish_reasons_and_cancellations(wh: Warehouse, records: list[dict]) -> None:
    window = wh.window()
    rows = in_window(records, window.since, window.until)
    reasons = Counter(r["finish_reason"] or ("(cancelled)" if r["cancelled"] else "(none)") for r in rows)
    frame = wh.report("finish_reasons")
    assert dict(zip(frame["finish_reason"], frame["generations"])) == reasons
    cancelled = Counter(r["model"] for r in rows if r["cancelled"])
    got = rows_by(wh.report("cancellations"), "model")
    assert {m: row["cancelled_generations"] for m, row in got.items() if row["cancelled_generations"]} == cancelled


# ---- fallbacks and failures (provider_responses) ---------------------------------------------


def test_attempts_per_generation_histogram(wh: Warehouse, records: list[dict]) -> None:
    window = wh.window()
    counts = Counter(len(attempts_of(r)) for r in in_window(records, window.since, window.until) if attempts_of(r))
    frame = wh.report("attempts")
    assert dict(zip(frame["attempts"], frame["generations"])) == counts
    assert max(counts) >= 2  # the data has fallbacks to count


def test_fallbacks_by_model(wh: Warehouse, records: list[dict]) -> None:
    window = wh.window()
    for model, row in rows_by(wh.report("fallbacks", by="model"), "model").items():
        mine = [r for r in in_window(records, window.since, window.until) if r["model"] == model]
        listed = [attempts_of(r) for r in mine if attempts_of(r)]
        assert row["generations"] == len(mine)
        assert row["generations_with_attempts"] == len(listed)
        assert row["fallback_generations"] == sum(len(a) > 1 for a in listed)
        assert row["failed_attempts"] == sum(1 for a in listed for x in a if not 200 <= (x["status"] or 0) < 300)


def test_provider_failure_rates_and_statuses(wh: Warehouse, records: list[dict]) -> None:
    window = wh.window()
    attempts = [a for r in in_window(records, window.since, window.until) for a in (attempts_of(r) or [])]
    by_provider: dict = defaultdict(list)
    for a in attempts:
        by_provider[a["provider_name"]].append(a["status"])
    rates = rows_by(wh.report("provider_failures"), "provider_name")
    assert set(rates) == set(by_provider)
    for provider, statuses in by_provider.items():
        failed = sum(1 for s in statuses if not 200 <= (s or 0) < 300)
        assert rates[provider]["attempts"] == len(statuses)
        assert rates[provider]["failure_rate"] == pytest.approx(failed / len(statuses))
        assert rates[provider]["rate_limited_attempts"] == statuses.count(429)
    statuses = wh.report("provider_statuses")
    got = {(row["provider_name"], row["status"]): row["attempts"] for row in statuses.iter_rows(named=True)}
    assert got == Counter((a["provider_name"], a["status"]) for a in attempts)


def test_summary_headline_numbers(wh: Warehouse, records: list[dict]) -> None:
    window = wh.window()
    rows = in_window(records, window.since, window.until)
    listed = [attempts_of(r) for r in rows if attempts_of(r)]
    summary = wh.report("summary").row(0, named=True)
    assert summary["generations"] == len(rows)
    assert summary["total_cost_usd"] == pytest.approx(sum(r["total_cost"] for r in rows), rel=1e-9)
    assert summary["latency_p50_ms"] == pytest.approx(quantile_cont([r["latency"] for r in rows], 0.5))
    assert summary["fallback_rate"] == pytest.approx(sum(len(a) > 1 for a in listed) / len(listed))


# ---- the files and the API -------------------------------------------------------------------


def test_every_view_file_creates_the_view_it_is_named_after(wh: Warehouse) -> None:
    files = sorted((ROOT / "sql" / "views").glob("*.sql"))
    views = set(wh.sql("select view_name from duckdb_views() where not internal")["view_name"])
    for path in files:
        first = path.read_text().splitlines()[0]
        assert first.startswith("-- ") and len(first) > 20, f"{path.name}: first line says what it answers"
        assert path.stem in views
        assert wh.sql(f"select count(*) as n from {path.stem}")["n"][0] > 0, f"{path.stem} is empty on the fake data"


def test_every_report_says_what_it_answers(wh: Warehouse) -> None:
    listed = Warehouse.reports()
    assert sorted(listed["report"]) == sorted(p.stem for p in (ROOT / "sql" / "reports").glob("*.sql"))
    for report in list_reports():
        assert len(report.question) > 20
        assert isinstance(wh.report(report.name), pl.DataFrame)


def test_warehouse_api_is_read_only(wh: Warehouse) -> None:
    with pytest.raises(ValueError, match="refused: DELETE"):
        wh.sql("delete from generations")
    assert wh.sql("select count(*) as n from generations where model = $m", {"m": "z-ai/glm-4.6"})["n"][0] > 0


# ---- the CLI ---------------------------------------------------------------------------------


def run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_report_list_names_every_report(wh: Warehouse) -> None:
    result = run("report", "--list")
    assert result.exit_code == 0
    for report in list_reports():
        assert report.name in result.output


def test_cli_report_formats_round_trip(wh: Warehouse, tmp_path: Path) -> None:
    expected = wh.report("spend", by="provider")
    base = ("report", "spend", "--by", "provider", "--warehouse", str(wh.path))

    as_csv = run(*base, "--format", "csv")
    assert pl.read_csv(as_csv.output.encode())["total_cost_usd"].to_list() == pytest.approx(expected["total_cost_usd"].to_list())
    as_json = json.loads(run(*base, "--format", "json").output)
    assert [row["provider"] for row in as_json] == expected["provider"].to_list()
    assert run(*base, "--format", "parquet", "--output", str(tmp_path / "spend.parquet")).exit_code == 0
    assert pl.read_parquet(tmp_path / "spend.parquet").equals(expected)
    markdown = run(*base, "--format", "markdown").output.splitlines()
    assert markdown[2].startswith("| provider |") and markdown[3].startswith("|---|---:")


def test_cli_table_is_aligned_with_units(wh: Warehouse) -> None:
    result = run("report", "latency", "--by", "provider", "--top", "3", "--warehouse", str(wh.path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("latency by provider, ") and lines[0].endswith(" UTC")
    rule = next(i for i, line in enumerate(lines) if line.strip().startswith("─"))
    rows = [line for line in lines[rule + 1:] if line.strip()]
    assert len(rows) == 3
    assert len({len(line) for line in rows}) == 1  # right-aligned numbers end in one column
    spend = run("report", "spend", "--warehouse", str(wh.path)).output
    assert "$" in spend and "%" in spend


def test_cli_query_reads_and_refuses_writes_in_one_line(wh: Warehouse) -> None:
    ok = run("query", "select model, count(*) as n from generations group by model order by n desc limit 2",
             "--warehouse", str(wh.path), "--format", "csv")
    assert ok.exit_code == 0 and ok.output.startswith("model,n\n")

    for statement in ("delete from generations", "copy generations to '/tmp/x.csv'", "attach 'x.duckdb'"):
        refused = run("query", statement, "--warehouse", str(wh.path))
        assert refused.exit_code == 2
        assert "read-only" in refused.output and len(refused.output.strip().splitlines()) == 1

    bad = run("query", "select nope from generations", "--warehouse", str(wh.path))
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines() == [bad.output.strip()]
    assert "Binder Error" in bad.output and "nope" in bad.output and "Traceback" not in bad.output


def test_cli_bad_input_is_one_line_exit_2(wh: Warehouse, tmp_path: Path) -> None:
    cases = [
        (("report", "nope"), "no report named 'nope'"),
        (("report", "attempts", "--by", "model"), "cannot group by 'model'"),
        (("report", "spend", "--since", "last tuesday"), "not a date"),
        (("report", "summary", "--top", "3"), "has no --top"),
        (("report", "spend", "--warehouse", str(tmp_path / "missing.duckdb")), "no warehouse at"),
    ]
    for args, message in cases:
        if "--warehouse" not in args:
            args = (*args, "--warehouse", str(wh.path))
        result = run(*args)
        assert result.exit_code == 2, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_a_warehouse_with_no_generation_says_so_instead_of_printing_an_empty_table(tmp_path: Path) -> None:
    connect(tmp_path / "empty.duckdb").close()
    result = run("report", "spend", "--warehouse", str(tmp_path / "empty.duckdb"))
    assert result.exit_code == 2 and "(no rows)" not in result.output
    assert "holds no generations yet" in result.stderr and "orusage ingest" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(ReportError, match="no generations yet"):
        Warehouse(tmp_path / "empty.duckdb").report("summary")


def test_a_window_with_no_generation_still_prints_the_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    dataset = Dataset(50, seed=1, end=datetime(2026, 8, 1, tzinfo=UTC), days=2)
    con = connect(path)
    upsert_batch(con, normalize_bodies([(i, dataset.body(i)) for i in dataset.ids]),
                 [QueueUpdate(i, "loaded", 1, 200, None, None) for i in dataset.ids], run_id="test")
    con.close()
    result = run("report", "spend", "--since", "2020-01-01", "--until", "2020-01-02", "--warehouse", str(path))
    assert result.exit_code == 0 and "(no rows)" in result.output

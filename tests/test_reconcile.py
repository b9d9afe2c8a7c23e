"""Reconciliation with OpenRouter's bill: `orusage activity` stores `GET /activity` (a management
key), and `orusage reconcile` sets it against the generations the logs name, per day, model and
provider, exactly: spend the logs miss is reported to the nano-dollar, with its request count."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import reports, warehouse
from pipeline.cli import cli
from pipeline.client import RetryPolicy
from pipeline.fake_api import DEFAULT_MANAGEMENT_KEY, Dataset, Faults, start_server
from pipeline.ingest import ingest
from pipeline.normalize import ActivityRowError, normalize_activity, normalize_bodies
from pipeline.warehouse import QueueUpdate

from test_ingest import KEY, options, read, write_id_log

FIXTURES = Path(__file__).parent / "fixtures"
FETCHED_AT = datetime(2026, 9, 1, 6, 0, tzinfo=timezone.utc)
FAST = RetryPolicy(max_attempts=12, backoff_initial_s=0.01, backoff_max_s=0.05)


def fixture_rows(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text())["data"]


def activity(*args: object, key: str = DEFAULT_MANAGEMENT_KEY):
    return CliRunner().invoke(cli, ["activity", *map(str, args)], env={"OPENROUTER_MANAGEMENT_KEY": key})


def reconcile(*args: object):
    return CliRunner().invoke(cli, ["reconcile", *map(str, args)])


def nusd(value: float | None) -> int:
    return round((value or 0) * 1e9)


# --- the bodies ----------------------------------------------------------------------------------


def test_the_real_activity_sample_bodies_parse_to_exact_rows_in_either_date_form():
    documented = normalize_activity(fixture_rows("activity_200_docs_openapi_example.json"), fetched_at=FETCHED_AT)
    assert documented.drop("raw").to_dicts() == [{
        "date": date(2025, 8, 24), "model": "openai/gpt-4.1", "endpoint_id": "550e8400-e29b-41d4-a716-446655440000",
        "model_permaslug": "openai/gpt-4.1-2025-04-14", "provider_name": "OpenAI", "usage": 0.015,
        "byok_usage_inference": 0.012, "requests": 5, "prompt_tokens": 50, "completion_tokens": 125,
        "reasoning_tokens": 25, "fetched_at": FETCHED_AT}]

    live_shape = normalize_activity(fixture_rows("activity_200_fixture_shape_copied_from_real_timestamp_dates.json"),
                                    fetched_at=FETCHED_AT)
    assert live_shape["date"].to_list() == [date(2026, 8, 31), date(2026, 8, 31), date(2026, 8, 30),
                                            date(2026, 8, 14), date(2026, 7, 20)]
    assert live_shape["endpoint_id"].to_list() == [""] * 5  # that shape has none: the key stays whole
    assert live_shape.row(1, named=True) | {"raw": None} == {
        "date": date(2026, 8, 31), "model": "anthropic/claude-opus-5", "endpoint_id": "", "model_permaslug": None,
        "provider_name": None, "usage": 0.25, "byok_usage_inference": 9.99, "requests": 3, "prompt_tokens": 100,
        "completion_tokens": 50, "reasoning_tokens": None, "fetched_at": FETCHED_AT, "raw": None}
    # what the API sends that orusage has no column for stays in raw
    extra = normalize_activity([{**fixture_rows("activity_200_docs_openapi_example.json")[0], "byok_requests": 2}],
                               fetched_at=FETCHED_AT)
    assert json.loads(extra["raw"][0])["byok_requests"] == 2


@pytest.mark.parametrize("row, message", [
    ({"date": "31/08/2026", "model": "m"}, "row 0: `date` '31/08/2026' is not a UTC day"),
    ({"date": "2026-08-31 13:00:00", "model": "m"}, "is not a UTC day"),
    ({"date": "2026-08-31"}, "row 0: no `model`"),
    ({"date": "2026-08-31", "model": "m", "usage": "0.1"}, "`usage` '0.1' is not a number"),
    ({"date": "2026-08-31", "model": "m", "requests": 1.5}, "`requests` 1.5 is not a whole number"),
])
def test_a_row_orusage_cannot_store_refuses_the_response_naming_the_row(row, message):
    with pytest.raises(ActivityRowError, match=message.replace("(", r"\(").replace("`", "`")):
        normalize_activity([row], fetched_at=FETCHED_AT)


# --- orusage activity ----------------------------------------------------------------------------


def test_an_inference_key_gets_one_line_saying_a_management_key_is_needed_and_the_ingest_is_unaffected(tmp_path):
    dataset = Dataset(50, seed=4)
    path = tmp_path / "warehouse.duckdb"
    with start_server(dataset, api_key=KEY) as server:
        summary = ingest(options(write_id_log(tmp_path / "logs" / "a.log", dataset.ids), path, server.base_url),
                         api_key=KEY)
        refused = activity("--warehouse", path, "--base-url", server.base_url, key=KEY)
    assert summary.progress.loaded == 50
    assert refused.exit_code == 3
    assert len(refused.output.strip().splitlines()) == 1
    assert "management key" in refused.output and "403" in refused.output
    assert KEY not in refused.output
    assert read(path, "select count(*) from generations") == [(50,)]
    assert read(path, "select count(*) from activity") == [(0,)]


def test_a_day_fetched_again_replaces_its_rows_and_the_days_past_the_api_window_stay(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    early = Dataset(3000, seed=1, days=40, end=datetime(2026, 8, 20, tzinfo=timezone.utc))
    later = Dataset(3000, seed=2, days=40, end=datetime(2026, 9, 1, tzinfo=timezone.utc))
    with start_server(early) as server:
        first = activity("--warehouse", path, "--base-url", server.base_url)
    assert first.exit_code == 0, first.output
    stored_early = read(path, "select date, model, endpoint_id, usage from activity order by all")
    with start_server(later) as server:
        again = activity("--warehouse", path, "--base-url", server.base_url, "--date", "2026-08-10")
    assert again.exit_code == 0, again.output
    assert "for 1 days (2026-08-10 to 2026-08-10)" in again.output
    now = read(path, "select date, model, endpoint_id, usage from activity order by all")
    day = date(2026, 8, 10)
    assert [row for row in now if row[0] != day] == [row for row in stored_early if row[0] != day]
    later_day = sorted((date.fromisoformat(r["date"][:10]), r["model"], r["endpoint_id"], r["usage"])
                       for r in later.activity("2026-08-10"))
    assert [row for row in now if row[0] == day] == later_day
    with start_server(later) as server:
        assert activity("--warehouse", path, "--base-url", server.base_url).exit_code == 0
    [(first_day, last_day)] = read(path, "select min(date), max(date) from activity")
    assert first_day == min(row[0] for row in stored_early)  # older than the later server's 30 days: kept
    assert last_day == date(2026, 8, 31)


# --- orusage reconcile ---------------------------------------------------------------------------


def test_reconcile_reports_exactly_the_spend_and_the_requests_the_logs_miss_under_faults(tmp_path, target):
    """The fake API's bill is the sum of its generations. Leave out of the logs every generation of
    one model on one day, and every fifth of another model's: reconcile finds exactly their spend
    and count, by day and by model, through 20% faults on both endpoints."""
    dataset = Dataset(1500, seed=20, days=10, end=datetime(2026, 8, 31, 12, tzinfo=timezone.utc))
    records = [record for record in dataset.records()]
    billed = [r for r in records if datetime.fromisoformat(r["created_at"]).date() < date(2026, 8, 31)]
    by_model = Counter(r["model"] for r in billed)
    [(first_model, _), (second_model, _)] = by_model.most_common(2)
    gone_day = datetime.fromisoformat(billed[0]["created_at"]).date()
    left_out = [r for i, r in enumerate(billed)
                if (r["model"] == first_model and datetime.fromisoformat(r["created_at"]).date() == gone_day)
                or (r["model"] == second_model and i % 5 == 0)]
    missing_ids = {r["id"] for r in left_out}
    logs = write_id_log(tmp_path / "logs" / "app.log", [i for i in dataset.ids if i not in missing_ids])
    with start_server(dataset, api_key=KEY, faults=Faults.transient(0.2, seed=9)) as server:
        ingest(options(logs, target, server.base_url), api_key=KEY)
        stored = CliRunner().invoke(cli, ["activity", "--warehouse", str(target.location), "--base-url",
                                          server.base_url], env={"OPENROUTER_MANAGEMENT_KEY": DEFAULT_MANAGEMENT_KEY})
        assert stored.exit_code == 0, stored.output
        assert server.stats.by_fault  # the faults really happened

    result = warehouse_reconcile(target, by="model")
    assert result.billed_nusd == sum(nusd(r["usage"]) for r in billed)
    assert result.billed_nusd - result.logged_nusd == sum(nusd(r["total_cost"]) for r in left_out)
    assert result.billed_requests - result.logged_generations == len(left_out)
    missing_by_model = {row["model"]: (row["missing_nusd"], row["missing_requests"]) for row in result.frame.to_dicts()}
    expected = Counter()
    for r in left_out:
        expected[r["model"]] += nusd(r["total_cost"])
    assert {model: nano for model, (nano, _) in missing_by_model.items() if nano} == dict(expected)
    assert sum(requests for _, requests in missing_by_model.values()) == len(left_out)
    # BYOK: the bill's byok_usage_inference against the logged BYOK generations' upstream_inference_cost
    byok = result.frame.select("billed_byok_usd", "logged_byok_usd").sum().row(0)
    expected_byok = sum(nusd(r["upstream_inference_cost"]) for r in billed if r["is_byok"] and r["id"] not in missing_ids)
    assert round(byok[1] * 1e9) == expected_byok and byok[0] >= byok[1]

    by_day = warehouse_reconcile(target, by="day", min_coverage=0.999)
    assert gone_day in {row["day"] for row in by_day.frame.to_dicts() if row["missing_nusd"]}
    assert not by_day.ok
    assert (gone_day.isoformat(), first_model) in {(row["day"], row["model"]) for row in by_day.below}
    assert by_day.logged_only_days == []  # the window ends with the bill's last day
    assert warehouse_reconcile(target, by="day", min_coverage=0.5).below == [
        row for row in by_day.below if row["coverage"] < 0.5]


def warehouse_reconcile(target, **options) -> reports.Reconciliation:
    return reports.Warehouse(target.location).reconcile(**options)


def test_reconcile_for_cron_exits_1_naming_the_days_and_models_below_the_coverage_and_prints_json(tmp_path):
    dataset = Dataset(400, seed=21, days=5, end=datetime(2026, 8, 31, 12, tzinfo=timezone.utc))
    records = list(dataset.records())
    logs = write_id_log(tmp_path / "logs" / "app.log", dataset.ids[: len(records) * 3 // 4])
    path = tmp_path / "warehouse.duckdb"
    with start_server(dataset, api_key=KEY) as server:
        ingest(options(logs, path, server.base_url), api_key=KEY)
        assert activity("--warehouse", path, "--base-url", server.base_url).exit_code == 0
    alert = reconcile("--warehouse", path, "--min-coverage", "0.95")
    assert alert.exit_code == 1
    assert "coverage below 95%" in alert.stderr and " missing)" in alert.stderr
    monitored = reconcile("--warehouse", path, "--json", "--by", "model")
    summary = json.loads(monitored.stdout)
    assert monitored.exit_code == 0 and summary["ok"] is True  # no threshold asked
    assert summary["billed_usd"] > summary["logged_usd"] > 0
    assert {group["model"] for group in summary["groups"]} >= {r["model"] for r in records
                                                               if r["created_at"] < "2026-08-31"}
    assert reconcile("--warehouse", path, "--min-coverage", "0").exit_code == 0
    for fmt in ("table", "csv", "json", "markdown"):
        shown = reconcile("--warehouse", path, "--format", fmt)
        assert shown.exit_code == 0, shown.output
        assert "2026-08-30" in shown.stdout and "coverage" in shown.stdout.lower()
    parquet = tmp_path / "reconcile.parquet"
    assert reconcile("--warehouse", path, "--format", "parquet", "-o", parquet).exit_code == 0
    assert parquet.stat().st_size > 0


def test_a_generation_at_23_59_59_9_utc_lands_on_its_own_day_on_both_sides(tmp_path):
    body = json.loads((FIXTURES / "generation_200_docs_openapi_example.json").read_text())
    body["data"].update(id="gen-1785542399-aaaaaaaaaaaaaaaaaaaa", created_at="2026-08-01T23:59:59.900Z",
                        total_cost=0.25, model="openai/gpt-4.1", provider_name="OpenAI", is_byok=False)
    path = tmp_path / "warehouse.duckdb"
    with warehouse.open_writer(path) as writer:
        batch = normalize_bodies([(body["data"]["id"], json.dumps(body).encode())])
        writer.upsert_batch(batch, [QueueUpdate(body["data"]["id"], "loaded", 1, 200, None, None)], run_id="t")
        writer.write_activity(normalize_activity([
            {"date": "2026-08-01 00:00:00", "model": "openai/gpt-4.1", "provider_name": "OpenAI", "usage": 0.25,
             "requests": 1}], fetched_at=FETCHED_AT))
    result = reports.Warehouse(path).reconcile(since="2026-08-01", until="2026-08-02")
    assert [(row["day"], row["coverage"], row["missing_requests"]) for row in result.frame.to_dicts()] == [
        (date(2026, 8, 1), 1.0, 0)]
    assert result.billed_only_days == result.logged_only_days == []


def test_reconcile_on_a_warehouse_without_activity_says_so_in_one_line(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    warehouse.open_writer(path).close()
    result = reconcile("--warehouse", path)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"Error: {reports.NO_ACTIVITY}"]

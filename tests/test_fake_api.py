"""The fake OpenRouter API: a deterministic dataset served over real HTTP on loopback, with faults on demand."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openrouter import components as sdk
from pydantic import ValidationError

from pipeline.fake_api import DEFAULT_API_KEY, DEFAULT_MANAGEMENT_KEY, Dataset, Faults, start_server

FIXTURES = Path(__file__).parent / "fixtures"
AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
MANAGEMENT_AUTH = {"Authorization": f"Bearer {DEFAULT_MANAGEMENT_KEY}"}
ID_PATTERN = re.compile(r"^gen-(\d{10})-[A-Za-z0-9]{20}$")
# Keys the spec added after 2025-09 (schema_field_timeline_from_spec_history.txt): old bodies lack them.
LATER_KEYS = {
    "native_tokens_completion_images", "num_input_audio_prompt", "router", "provider_responses", "request_id",
    "session_id", "preset_id", "data_region", "workspace_id", "num_fetches", "web_search_engine", "service_tier",
    "user_agent", "http_referer",
}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset(3000, seed=7)


@pytest.fixture(scope="module")
def records(dataset: Dataset) -> list[dict]:
    return list(dataset.records())


def fixture_json(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


HTTP = httpx.Client(timeout=10)  # one client for the module: building one per request costs ~20 ms


def get(srv, path: str, generation_id: str | None = None, **kwargs) -> httpx.Response:
    params = {"id": generation_id} if generation_id is not None else kwargs.pop("params", None)
    return HTTP.get(srv.base_url + path, params=params, headers=kwargs.pop("headers", AUTH), **kwargs)


# ---- the dataset --------------------------------------------------------------------------------


def test_same_seed_gives_the_same_bytes_and_another_seed_other_ids():
    a, b, c = Dataset(300, seed=1), Dataset(300, seed=1), Dataset(300, seed=2)
    assert list(a.ids) == list(b.ids)
    assert [a.body(i) for i in a.ids] == [b.body(i) for i in b.ids]
    assert not set(a.ids) & set(c.ids)
    assert all(c.record(i) is None for i in a.ids[:50])


def test_ids_look_real_and_their_seconds_match_created_at(dataset: Dataset, records: list[dict]):
    for generation_id, record in zip(dataset.ids, records, strict=True):
        match = ID_PATTERN.match(generation_id)
        assert match, generation_id
        assert record["id"] == generation_id
        created = datetime.fromisoformat(record["created_at"])
        lag_s = created.timestamp() - int(match.group(1))
        assert 0 <= lag_s < 4, (generation_id, record["created_at"])
        assert dataset.start <= created <= dataset.end
    assert len(set(dataset.ids)) == dataset.size


def test_generations_spread_over_the_requested_days_ending_at_end():
    end = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    ds = Dataset(2000, seed=3, end=end, days=10)
    days = Counter(datetime.fromisoformat(r["created_at"]).date() for r in ds.records())
    assert min(days) == (end - timedelta(days=10)).date()
    assert max(days) == end.date()
    assert len(days) == 11  # 10 x 24 h that straddle 11 calendar days


def test_record_is_exactly_what_the_server_sends(dataset: Dataset):
    with start_server(dataset) as srv:
        for generation_id in dataset.ids[:50]:
            response = get(srv, "/generation", generation_id)
            assert response.status_code == 200
            assert response.content == dataset.body(generation_id)
            assert orjson.loads(response.content)["data"] == dataset.record(generation_id)


def test_a_dataset_of_millions_is_lazy_and_lookups_stay_exact():
    ds = Dataset(5_000_000, seed=11)
    last = ds.ids[-1]
    assert ds.index_of(last) == 4_999_999
    assert ds.record(last)["id"] == last
    assert ds.ids[123_456] < ds.ids[4_000_000]  # ids follow time, index order


def test_unknown_tampered_and_out_of_range_ids_are_not_in_the_dataset(dataset: Dataset):
    real = dataset.ids[10]
    flipped = real[:-1] + ("A" if real[-1] != "A" else "B")
    other_second = real[:13] + str((int(real[13]) + 1) % 10) + real[14:]
    for generation_id in [flipped, other_second, *dataset.missing_ids(20), "gen-1234567890", "nope", real + "x"]:
        assert dataset.record(generation_id) is None, generation_id
    assert all(ID_PATTERN.match(i) for i in dataset.missing_ids(20))


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, 10**9 - 1), seed=st.integers(0, 2**32), suffix=st.text("abcXYZ019", min_size=20, max_size=20))
def test_every_index_round_trips_through_its_id_and_made_up_suffixes_do_not(index, seed, suffix):
    ds = Dataset(10**9, seed=seed)
    generation_id = ds.id_at(index)
    assert ID_PATTERN.match(generation_id)
    assert ds.index_of(generation_id) == index
    assert ds.index_of(generation_id[:15] + suffix) is None  # a keyed 78-bit tag: a false match is ~2**-78


def test_a_demo_dataset_ends_now():
    now = datetime.now(UTC)
    ds = Dataset(200, end=now, days=2)
    created = [datetime.fromisoformat(r["created_at"]) for r in ds.records()]
    assert now - timedelta(days=2) <= min(created) and max(created) <= now


def test_fault_rates_must_make_sense():
    with pytest.raises(ValueError):
        Faults(rate_429=0.7, rate_500=0.5)
    with pytest.raises(ValueError):
        Faults(fatal_after=1, fatal_status=500)
    assert sum(rate for _, rate in Faults.transient(0.2).kinds()) == pytest.approx(0.2)


# ---- bodies the official SDK accepts --------------------------------------------------------------


def test_current_bodies_validate_with_the_official_sdk_and_old_shapes_only_lack_later_keys(dataset: Dataset):
    old_shapes = 0
    for generation_id in dataset.ids:
        body = dataset.body(generation_id)
        try:
            parsed = sdk.GenerationResponse.model_validate_json(body)
        except ValidationError as e:
            # Like the real 2025 mistral body, which this SDK rejects the same way: only later keys are missing.
            missing = {err["loc"][-1] for err in e.errors() if err["type"] == "missing"}
            assert len(missing) == len(e.errors()) and missing <= LATER_KEYS, e
            data = orjson.loads(body)["data"]
            sdk.GenerationResponse.model_validate({"data": {**dict.fromkeys(missing), **data}})
            old_shapes += 1
            continue
        assert parsed.data.id == generation_id
    assert 0.05 * dataset.size < old_shapes < 0.25 * dataset.size


def test_the_real_2025_body_fails_the_sdk_the_same_way():
    mistral = fixture_json("generation_200_real_mistral_medium_wrapped_by_app_proxy.json")["data"]
    with pytest.raises(ValidationError) as e:
        sdk.GenerationResponse.model_validate(mistral)
    assert {err["loc"][-1] for err in e.value.errors()} <= LATER_KEYS


def test_content_and_activity_bodies_validate_with_the_sdk(dataset: Dataset):
    for generation_id in dataset.ids[:1000]:
        content = sdk.GenerationContentResponse.model_validate_json(dataset.content_body(generation_id))
        assert content.data.output is not None
    activity = sdk.ActivityResponse.model_validate_json(orjson.dumps({"data": dataset.activity()}))
    assert len(activity.data) > 100


# ---- realism ----------------------------------------------------------------------------------------


def test_the_mix_has_every_shape_and_case_the_pipeline_must_handle(dataset: Dataset, records: list[dict]):
    bodies = [dataset.body(i) for i in dataset.ids]
    assert any("data_region" not in r for r in records), "old-shape records"
    assert any("native_tokens_completion_images" not in r for r in records), "2025-08 shape (the mistral body)"
    assert any("router" in r and "data_region" not in r for r in records), "2026-02 shape (the llama body)"
    assert sum("usage_cache" in r for r in records) > 20, "a key no spec lists"
    assert any("response_cache_source_id" in r for r in records) and any("request_id" in r and "response_cache_source_id" not in r for r in records)
    assert any(r["created_at"].endswith("Z") for r in records) and any(r["created_at"].endswith("+00:00") for r in records)
    assert any(re.search(rb'"total_cost":\d(\.\d+)?e-\d', b) for b in bodies), "costs in exponent form"
    assert {r["finish_reason"] for r in records} >= {"stop", "length", "tool_calls", "error", None}
    assert any(r["cancelled"] for r in records) and {r["streamed"] for r in records} == {True, False}
    assert len({r["model"] for r in records}) >= 15
    assert len({r["provider_name"] for r in records}) >= 12
    assert len({r["origin"] for r in records}) >= 5 and "" in {r["origin"] for r in records}
    assert any(r["external_user"] for r in records) and any(r.get("session_id") for r in records)
    api_types = Counter(r["api_type"] for r in records)
    assert api_types.most_common(1)[0][0] == "completions" and "embeddings" in api_types
    popularity = Counter(r["model"] for r in records).most_common()
    assert popularity[0][1] > 4 * popularity[-1][1], "skewed popularity"


def test_costs_are_consistent_with_tokens_byok_and_cache(records: list[dict]):
    byok = [r for r in records if r["is_byok"]]
    assert len(byok) > 30
    for r in byok:
        assert r["usage"] == r["total_cost"] <= r["upstream_inference_cost"]
    assert any(r["total_cost"] < r["upstream_inference_cost"] for r in byok)
    for r in records:
        if not r["is_byok"]:
            assert r["upstream_inference_cost"] == 0 and r["usage"] == r["total_cost"]
        assert round(r["total_cost"] * 1e9) == pytest.approx(r["total_cost"] * 1e9, abs=1e-6), "rounded to 1e-9 USD"
        assert (r["native_tokens_cached"] or 0) <= r["native_tokens_prompt"]
    discounts = [r["cache_discount"] for r in records if r["cache_discount"] is not None]
    assert min(discounts) < 0 < max(discounts), "cache writes negative, cache reads positive"


@pytest.mark.parametrize(
    ("model", "provider", "prompt_usd_per_m", "completion_usd_per_m", "real_body"),
    [
        ("mistralai/mistral-medium-3.1", "Mistral", 0.40, 2.00, "generation_200_real_mistral_medium_wrapped_by_app_proxy.json"),
        ("meta-llama/llama-4-scout", "DeepInfra", 0.08, 0.30, "generation_200_real_llama4scout_deepinfra_cancelled.json"),
    ],
)
def test_prices_are_the_ones_real_bodies_show(records, model, provider, prompt_usd_per_m, completion_usd_per_m, real_body):
    real = fixture_json(real_body)["data"]
    real = real.get("data", real)
    def priced(r: dict) -> float:
        return (r["native_tokens_prompt"] * prompt_usd_per_m + r["native_tokens_completion"] * completion_usd_per_m) / 1e6
    assert priced(real) == pytest.approx(real["total_cost"], rel=1e-9)
    ours = [r for r in records if r["model"] == model and r["provider_name"] == provider and not r["is_byok"]
            and r["finish_reason"] != "error" and r.get("response_cache_source_id") is None
            and not r["num_search_results"]]  # web search adds $4 per 1000 results
    assert ours
    for r in ours:
        assert priced(r) == pytest.approx(r["total_cost"], rel=1e-9, abs=1e-9)


def test_fallbacks_list_the_failed_attempts_before_the_provider_that_served(records: list[dict]):
    fallbacks = [r for r in records if r.get("provider_responses") and len(r["provider_responses"]) > 1
                 and r["provider_responses"][-1]["status"] == 200]
    assert len(fallbacks) > 20
    for r in fallbacks:
        *failed, served = r["provider_responses"]
        assert served["provider_name"] == r["provider_name"]
        assert all(a["status"] in (429, 500, 502, 503) and a["provider_name"] != r["provider_name"] for a in failed)
        assert all("id" not in a for a in failed)


def test_activity_totals_equal_the_per_day_sums_of_the_records(dataset: Dataset, records: list[dict]):
    expected: dict[tuple, Counter] = {}
    for r in records:
        day = datetime.fromisoformat(r["created_at"]).astimezone(UTC).date()
        if day >= dataset.end.date():
            continue  # the live endpoint lists completed days only
        sums = expected.setdefault((day.isoformat(), r["model"], r["provider_name"]), Counter())
        sums["usage_nusd"] += round(r["usage"] * 1e9)
        sums["byok_nusd"] += round(r["upstream_inference_cost"] * 1e9) if r["is_byok"] else 0
        sums["requests"] += 1
        sums["prompt_tokens"] += r["tokens_prompt"]
        sums["completion_tokens"] += r["tokens_completion"]
        sums["reasoning_tokens"] += r["native_tokens_reasoning"]
    rows = dataset.activity()
    got = {
        (row["date"][:10], row["model"], row["provider_name"]): Counter({
            "usage_nusd": round(row["usage"] * 1e9), "byok_nusd": round(row["byok_usage_inference"] * 1e9),
            "requests": row["requests"], "prompt_tokens": row["prompt_tokens"],
            "completion_tokens": row["completion_tokens"], "reasoning_tokens": row["reasoning_tokens"]})
        for row in rows
    }
    assert got == expected
    assert sum(row["requests"] for row in rows) == sum(1 for r in records
                                                      if datetime.fromisoformat(r["created_at"]).date() < dataset.end.date())


# ---- the server: auth, lookups, lag -----------------------------------------------------------------


def test_requests_without_or_with_a_wrong_key_get_the_real_401_bodies(dataset: Dataset):
    with start_server(dataset, api_key="sk-or-v1-right", management_key="sk-or-v1-manage") as srv:
        for path, key in (("/generation", "sk-or-v1-right"), ("/generation/content", "sk-or-v1-right"),
                          ("/activity", "sk-or-v1-manage")):
            missing = get(srv, path, dataset.ids[0], headers={})
            wrong = get(srv, path, dataset.ids[0], headers={"Authorization": "Bearer sk-or-v1-wrong"})
            right = get(srv, path, dataset.ids[0], headers={"Authorization": f"Bearer {key}"})
            assert (missing.status_code, missing.json()) == (401, fixture_json("error_401_no_auth_credentials_found_captured.json"))
            assert (wrong.status_code, wrong.json()) == (401, fixture_json("error_401_user_not_found.json"))
            assert right.status_code == 200
        # /activity needs a management key: the inference key gets the documented 403
        inference_key = get(srv, "/activity", headers={"Authorization": "Bearer sk-or-v1-right"})
        assert (inference_key.status_code, inference_key.json()["error"]["code"]) == (403, 403)
        assert "sk-or-v1-right" not in repr(srv)


def test_a_key_that_runs_out_gets_the_production_402_body_from_then_on(dataset: Dataset):
    with start_server(dataset, faults=Faults(fatal_after=3, fatal_status=402)) as srv:
        statuses = [get(srv, "/generation", i).status_code for i in dataset.ids[:3]]
        later = [get(srv, "/generation", i) for i in dataset.ids[3:6]]
    assert statuses == [200, 200, 200]
    assert {r.status_code for r in later} == {402}
    assert later[0].json() == fixture_json("error_402_requires_more_credits_production_body.json")


def test_missing_ids_are_404_forever_and_a_missing_parameter_is_400(dataset: Dataset):
    with start_server(dataset, faults=Faults(not_found_first=1)) as srv:
        for generation_id in dataset.missing_ids(3) + ["gen-1234567890"]:
            responses = [get(srv, "/generation", generation_id) for _ in range(4)]
            assert [r.status_code for r in responses] == [404] * 4
            assert responses[0].json() == fixture_json("error_404_generation_not_found_test_fixture.json")
        assert get(srv, "/generation").status_code == 400


def test_new_generations_are_404_for_their_first_requests_then_200(dataset: Dataset):
    first, second = dataset.ids[:2]
    with start_server(dataset, faults=Faults(not_found_first=2)) as srv:
        assert [get(srv, "/generation", first).status_code for _ in range(4)] == [404, 404, 200, 200]
        assert get(srv, "/generation", second).status_code == 404, "each id lags on its own"
        assert [get(srv, "/generation/content", first).status_code for _ in range(3)] == [404, 404, 200]
        assert srv.stats.by_fault["not_found_lag"] == 5
        assert srv.stats.ok_by_id == Counter({first: 2})


def test_stats_count_statuses_and_successful_fetches_per_id(dataset: Dataset):
    ids = dataset.ids[:40]
    with start_server(dataset) as srv, httpx.Client(base_url=srv.base_url, headers=AUTH) as client:
        for generation_id in ids:
            assert client.get("/generation", params={"id": generation_id}).status_code == 200
        client.get("/generation", params={"id": dataset.missing_ids(1)[0]})
        assert srv.snapshot().ok_by_id == Counter(dict.fromkeys(ids, 1))
        assert srv.stats.by_status == Counter({200: 40, 404: 1})
        assert srv.stats.requests == 41


def test_activity_endpoint_serves_rows_and_filters_by_date(dataset: Dataset):
    day = dataset.activity()[0]["date"][:10]
    with start_server(dataset) as srv:
        everything = get(srv, "/activity", headers=MANAGEMENT_AUTH).json()["data"]
        one_day = get(srv, "/activity", params={"date": day}, headers=MANAGEMENT_AUTH).json()["data"]
        bad = get(srv, "/activity", params={"date": "31/08/2026"}, headers=MANAGEMENT_AUTH)
    assert everything == dataset.activity()
    assert one_day and {row["date"][:10] for row in one_day} == {day}
    assert bad.status_code == 400


# ---- the server: injected faults ----------------------------------------------------------------------


def test_429_carries_retry_after_or_the_reset_in_the_body(dataset: Dataset):
    with start_server(dataset, faults=Faults(rate_429=1, retry_after_s=7, rate_limit_in_body_share=0)) as srv:
        header_kind = get(srv, "/generation", dataset.ids[0])
    with start_server(dataset, faults=Faults(rate_429=1, retry_after_s=7, rate_limit_in_body_share=1)) as srv:
        before_ms = time.time() * 1000
        body_kind = get(srv, "/generation", dataset.ids[0])
    assert header_kind.status_code == 429 and header_kind.headers["Retry-After"] == "7"
    assert header_kind.json()["error"]["code"] == 429
    assert body_kind.status_code == 429 and "Retry-After" not in body_kind.headers
    reset_ms = int(body_kind.json()["error"]["metadata"]["headers"]["X-RateLimit-Reset"])
    assert before_ms + 6000 < reset_ms < before_ms + 60_000


@pytest.mark.parametrize(
    ("faults", "status", "content_type", "marker"),
    [
        (Faults(rate_500=1), 500, "application/json", b'"code":500'),
        (Faults(rate_529=1), 529, "application/json", b'"code":529'),
        (Faults(rate_502_html=1), 502, "text/html", b"<html"),
        (Faults(rate_524_html=1), 524, "text/html", b"524: A timeout occurred"),
    ],
)
def test_server_errors_come_as_json_or_as_edge_html_pages(dataset: Dataset, faults, status, content_type, marker):
    with start_server(dataset, faults=faults) as srv:
        response = get(srv, "/generation", dataset.ids[0])
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith(content_type)
    assert marker in response.content


def test_dropped_connections_end_without_a_response(dataset: Dataset):
    with start_server(dataset, faults=Faults(rate_drop=1)) as srv:
        with pytest.raises(httpx.RemoteProtocolError):
            get(srv, "/generation", dataset.ids[0])
        assert srv.stats.by_fault["drop"] == 1 and not srv.stats.by_status


def test_truncated_bodies_are_well_formed_http_with_half_a_json(dataset: Dataset):
    with start_server(dataset, faults=Faults(rate_truncated=1)) as srv:
        responses = [get(srv, "/generation", i) for i in dataset.ids[:20]]
        assert not srv.stats.ok_by_id
    for generation_id, response in zip(dataset.ids, responses):
        full = dataset.body(generation_id)
        assert response.status_code == 200
        assert int(response.headers["Content-Length"]) == len(response.content) < len(full)
        assert full.startswith(response.content)
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(response.content)


def test_slow_responses_hold_the_answer_back(dataset: Dataset):
    with start_server(dataset, faults=Faults(rate_slow=1, slow_s=0.5)) as srv:
        with pytest.raises(httpx.ReadTimeout):
            get(srv, "/generation", dataset.ids[0], timeout=httpx.Timeout(5, read=0.05))
        assert srv.stats.by_fault["slow"] == 1


def test_a_server_wide_rate_limit_answers_429_with_retry_after(dataset: Dataset):
    with start_server(dataset, faults=Faults(max_rps=5)) as srv, httpx.Client(base_url=srv.base_url, headers=AUTH) as client:
        responses = [client.get("/generation", params={"id": i}) for i in dataset.ids[:30]]
    limited = [r for r in responses if r.status_code == 429]
    assert limited and sum(r.status_code == 200 for r in responses) >= 5
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert int(limited[0].headers["X-RateLimit-Reset"]) > time.time() * 1000 - 60_000


def test_transient_faults_spread_over_every_kind_deterministically(dataset: Dataset):
    faults = Faults.transient(0.6, seed=5, slow_s=0)

    def statuses() -> tuple[list, Counter]:
        seen = []
        with start_server(dataset, faults=faults) as srv, httpx.Client(base_url=srv.base_url, headers=AUTH) as client:
            for generation_id in dataset.ids[:400]:
                try:
                    response = client.get("/generation", params={"id": generation_id})
                    seen.append((response.status_code, len(response.content)))
                except httpx.TransportError:
                    seen.append("dropped")
            return seen, srv.stats.by_fault

    first, kinds = statuses()
    assert set(kinds) >= {"429", "500", "502_html", "524_html", "529", "drop", "truncated", "slow"}
    assert 0.45 < sum(kinds.values()) / 400 < 0.75
    assert statuses()[0] == first


# ---- the command --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_command_prints_its_url_first_serves_and_exits_0_on_a_signal(stop_signal):
    env = {**os.environ, "ORUSAGE_FAKE_API_KEY": "sk-or-v1-from-env"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "fake-api", "--size", "20", "--seed", "3", "--not-found-first", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=Path(__file__).parent.parent,
    )
    try:
        base_url = process.stdout.readline().decode().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1", base_url)
        generation_id = Dataset(20, seed=3).ids[4]
        headers = {"Authorization": "Bearer sk-or-v1-from-env"}
        statuses = [HTTP.get(f"{base_url}/generation", params={"id": generation_id}, headers=headers).status_code
                    for _ in range(2)]
        assert statuses == [404, 200]
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()


def test_content_is_consistent_with_each_generations_metadata():
    """Every content body validates; its prompt is about as long as the prompt tokens say (~4 bytes
    a token, up to the cap), a completed generation has a completion, a failed one its stored error
    with one previous error per earlier failed attempt; some store nothing; big prompts where asked."""
    dataset = Dataset(3000, seed=21, big_content_every=500, big_content_bytes=3 * 2**20)
    kinds = Counter()
    for index, generation_id in enumerate(dataset.ids):
        body = dataset.content_body(generation_id)
        sdk.GenerationContentResponse.model_validate_json(body)
        data, record = orjson.loads(body)["data"], dataset.record(generation_id)
        messages = data["input"].get("messages")
        if not messages and not data["input"].get("prompt"):
            kinds["none_stored"] += 1
            assert data["output"] == {"completion": None, "reasoning": None} and data["error"] is None
            continue
        text = messages[-1]["content"] if messages else data["input"]["prompt"]
        if index % 500 == 499:
            kinds["big"] += 1
            assert len(text) == 3 * 2**20
        elif record["tokens_prompt"] and record["tokens_prompt"] < 2_000:
            assert 2 * record["tokens_prompt"] < len(text) < 12 * record["tokens_prompt"] + 60
        if record["finish_reason"] == "error":
            kinds["failed"] += 1
            attempts = record.get("provider_responses") or [None]
            assert data["output"]["completion"] is None and data["error"]["status"] is not None
            assert len(data["error"]["previous_errors"]) == len(attempts) - 1
        elif record["api_type"] != "embeddings":
            assert data["output"]["completion"]
    assert kinds["none_stored"] > 50 and kinds["failed"] > 10 and kinds["big"] >= 5

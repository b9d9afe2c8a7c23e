"""normalize_bodies: raw `GET /generation` bodies to typed frames.

The expected rows are written out by hand from the recorded bodies in tests/fixtures, every
column of them, so a change in how any field is read shows up here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import orjson
import polars as pl
import pytest

from pipeline.normalize import (
    API_FIELDS,
    GENERATION_SCHEMA,
    PROVIDER_RESPONSE_SCHEMA,
    NormalizedBatch,
    normalize_bodies,
)

FIXTURES = Path(__file__).parent / "fixtures"
DOCS_BODY = (FIXTURES / "generation_200_docs_openapi_example.json").read_bytes()
LLAMA_BODY = (FIXTURES / "generation_200_real_llama4scout_deepinfra_cancelled.json").read_bytes()
MISTRAL_WRAPPED = (FIXTURES / "generation_200_real_mistral_medium_wrapped_by_app_proxy.json").read_bytes()
FALLBACK_PARTIAL = (FIXTURES / "generation_200_real_partial_gemini_flash_lite_fallback_429_then_200.json").read_bytes()
IMAGE_PARTIAL = (FIXTURES / "generation_200_real_partial_gemini_flash_image_reverse_lookup.json").read_bytes()
DEEPSEEK_PARTIAL = (FIXTURES / "generation_partial_real_deepseek_atlascloud_usage_cache_field.json").read_bytes()

DOCS_ID = "gen-3bhGkxlo4XFrqiabUM7NDtwDzWwG"
LLAMA_ID = "gen-1771967973-0hZ8J5kY7qLMOKbPx0u3"
MISTRAL_ID = "gen-1755352517-vcNNzGslBXHr45jGsA2B"
FALLBACK_ID = "gen-1772030107-1FJRHH9DliPkfVmjcn64"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def only_row(batch: NormalizedBatch) -> dict:
    assert batch.rejected == []
    assert batch.generations.height == 1
    return batch.generations.row(0, named=True)


def body_of(record: dict, **changes: object) -> bytes:
    return orjson.dumps({"data": {**record, **changes}})


def llama_record() -> dict:
    return orjson.loads(LLAMA_BODY)["data"]


def normalize_one(record: dict, **changes: object) -> NormalizedBatch:
    return normalize_bodies([(record["id"], body_of(record, **changes))])


def rejection_of(record: dict, **changes: object) -> str:
    batch = normalize_one(record, **changes)
    assert batch.generations.height == 0
    [(generation_id, reason)] = batch.rejected
    assert generation_id == record["id"]
    return reason


# --- the recorded bodies, column by column ---------------------------------------------------


def test_the_documentation_example_gives_every_field():
    row = only_row(normalize_bodies([(DOCS_ID, DOCS_BODY)]))
    raw = row.pop("raw")
    assert row == {
        "id": DOCS_ID,
        "request_id": "req-1727282430-aBcDeFgHiJkLmNoPqRsT",
        "session_id": None,
        "upstream_id": "chatcmpl-791bcf62-080e-4568-87d0-94c72e3b4946",
        "response_cache_source_id": None,
        "app_id": 12345,
        "preset_id": "a9e8d400-592a-494f-908c-375efa66cafd",
        "workspace_id": "550e8400-e29b-41d4-a716-446655440000",
        "external_user": "user-123",
        "created_at": utc(2024, 7, 15, 23, 33, 19, 433273),
        "model": "sao10k/l3-stheno-8b",
        "provider_name": "Infermatic",
        "router": "openrouter/auto",
        "api_type": "completions",
        "service_tier": "priority",
        "data_region": "global",
        "web_search_engine": "exa",
        "finish_reason": "stop",
        "native_finish_reason": "stop",
        "total_cost": 0.0015,
        "usage": 0.0015,
        "cache_discount": None,
        "upstream_inference_cost": 0.0012,
        "latency": 1250.0,
        "generation_time": 1200.0,
        "moderation_latency": 50.0,
        "tokens_prompt": 10,
        "tokens_completion": 25,
        "native_tokens_prompt": 10,
        "native_tokens_completion": 25,
        "native_tokens_completion_images": 0,
        "native_tokens_reasoning": 5,
        "native_tokens_cached": 3,
        "num_media_prompt": 1,
        "num_input_audio_prompt": 0,
        "num_media_completion": 0,
        "num_search_results": 5,
        "num_fetches": 0,
        "is_byok": False,
        "streamed": True,
        "cancelled": False,
        "origin": "https://openrouter.ai/",
        "http_referer": "https://openrouter.ai/",
        "user_agent": "Mozilla/5.0",
        "provider_responses": None,
    }
    # raw: the `data` object's own bytes, indentation and all
    assert raw.encode() == DOCS_BODY[DOCS_BODY.index(b"{", 1) : DOCS_BODY.rindex(b"}")].rstrip()
    assert orjson.loads(raw) == orjson.loads(DOCS_BODY)["data"]


def test_the_real_llama_body_with_a_z_timestamp_and_one_attempt():
    batch = normalize_bodies([(LLAMA_ID, LLAMA_BODY)])
    row = only_row(batch)
    raw = row.pop("raw")
    attempts_json = row.pop("provider_responses")
    assert row == {
        "id": LLAMA_ID,
        "request_id": None,  # older record: the key is absent
        "session_id": None,
        "upstream_id": "chatcmpl-RpyL88Ca8K6TiYlxBWgZcDml",
        "response_cache_source_id": None,
        "app_id": 2872617,
        "preset_id": None,
        "workspace_id": None,
        "external_user": None,
        "created_at": utc(2026, 2, 24, 21, 19, 33, 705000),
        "model": "meta-llama/llama-4-scout-17b-16e-instruct",
        "provider_name": "DeepInfra",
        "router": None,
        "api_type": "completions",
        "service_tier": None,
        "data_region": None,
        "web_search_engine": None,
        "finish_reason": None,
        "native_finish_reason": None,
        "total_cost": 0.00003452,
        "usage": 0.00003452,
        "cache_discount": None,
        "upstream_inference_cost": 0.0,
        "latency": 1016.0,
        "generation_time": 2940.0,
        "moderation_latency": None,
        "tokens_prompt": 65,
        "tokens_completion": 116,
        "native_tokens_prompt": 64,
        "native_tokens_completion": 98,
        "native_tokens_completion_images": None,
        "native_tokens_reasoning": 0,
        "native_tokens_cached": 0,
        "num_media_prompt": None,
        "num_input_audio_prompt": None,
        "num_media_completion": 0,
        "num_search_results": None,
        "num_fetches": None,
        "is_byok": False,
        "streamed": True,
        "cancelled": True,
        "origin": "https://github.com/wvanderp/Trick-question-bench",
        "http_referer": None,
        "user_agent": None,
    }
    assert orjson.loads(raw) == llama_record()
    assert orjson.loads(attempts_json) == llama_record()["provider_responses"]
    assert batch.provider_responses.rows(named=True) == [
        {
            "generation_id": LLAMA_ID,
            "attempt": 0,
            "provider_name": "DeepInfra",
            "status": 200,
            "latency": 420.0,
            "endpoint_id": "9cf05ded-eefe-41b4-8c08-0c6460feffea",
            "model_permaslug": "meta-llama/llama-4-scout-17b-16e-instruct",
            "is_byok": False,
            "routed_service_tier": None,
            "id": "chatcmpl-RpyL88Ca8K6TiYlxBWgZcDml",
        }
    ]


def test_the_mistral_body_as_the_api_serves_it_has_an_offset_timestamp_and_fewer_keys():
    inner = orjson.loads(MISTRAL_WRAPPED)["data"]["data"]
    row = only_row(normalize_bodies([(MISTRAL_ID, orjson.dumps({"data": inner}))]))
    raw = row.pop("raw")
    assert orjson.loads(raw) == inner
    assert row == {
        "id": MISTRAL_ID,
        "request_id": None,
        "session_id": None,
        "upstream_id": "0c1ff376aac04ac5a9cb385ea4efe9d5",
        "response_cache_source_id": None,
        "app_id": None,
        "preset_id": None,
        "workspace_id": None,
        "external_user": None,
        "created_at": utc(2025, 8, 16, 13, 55, 18, 378595),
        "model": "mistralai/mistral-medium-3.1",
        "provider_name": "Mistral",
        "router": None,
        "api_type": "completions",
        "service_tier": None,
        "data_region": None,
        "web_search_engine": None,
        "finish_reason": "stop",
        "native_finish_reason": "stop",
        "total_cost": 0.000164,
        "usage": 0.000164,
        "cache_discount": None,
        "upstream_inference_cost": 0.0,
        "latency": 343.0,
        "generation_time": 418.0,
        "moderation_latency": None,
        "tokens_prompt": 285,
        "tokens_completion": 25,
        "native_tokens_prompt": 285,
        "native_tokens_completion": 25,
        "native_tokens_completion_images": None,  # not in records of that time
        "native_tokens_reasoning": 0,
        "native_tokens_cached": 0,
        "num_media_prompt": None,
        "num_input_audio_prompt": None,
        "num_media_completion": None,
        "num_search_results": None,
        "num_fetches": None,
        "is_byok": False,
        "streamed": True,
        "cancelled": False,
        "origin": "",
        "http_referer": None,
        "user_agent": None,
        "provider_responses": None,
    }


def test_the_app_proxy_wrapper_is_not_a_generation_record():
    batch = normalize_bodies([(MISTRAL_ID, MISTRAL_WRAPPED)])
    assert batch.generations.height == 0
    assert batch.rejected == [(MISTRAL_ID, "`data` has no `id` (not a generation record)")]


def test_a_fallback_keeps_its_attempts_in_order():
    record = orjson.loads(FALLBACK_PARTIAL)["data"]  # trimmed by its author: no created_at
    batch = normalize_bodies([(FALLBACK_ID, body_of(record, created_at="2026-02-25T14:35:07.12+00:00"))])
    row = only_row(batch)
    assert row["created_at"] == utc(2026, 2, 25, 14, 35, 7, 120000)
    assert row["provider_name"] == "Google AI Studio"
    assert (row["latency"], row["generation_time"], row["total_cost"]) == (1643.0, 3881.0, 0.0001402)
    assert batch.provider_responses.select("attempt", "provider_name", "status", "latency", "is_byok", "id").rows() == [
        (0, "Google", 429, 327.0, False, None),
        (1, "Google AI Studio", 200, 1643.0, False, None),
    ]
    assert batch.provider_responses["endpoint_id"].to_list() == [
        "ebdbef25-737d-4ac3-9e98-fd3928724e45",
        "ce839073-aa24-4f29-8358-15b319bd05ec",
    ]


def test_trimmed_bodies_are_rejected_with_the_missing_key_named():
    batch = normalize_bodies(
        [(FALLBACK_ID, FALLBACK_PARTIAL), ("gen-image", IMAGE_PARTIAL), ("gen-deepseek", DEEPSEEK_PARTIAL)]
    )
    assert batch.generations.height == 0
    assert batch.rejected == [
        (FALLBACK_ID, "`data` has no `created_at` (not a generation record)"),
        ("gen-image", "`data` has no `id` (not a generation record)"),
        ("gen-deepseek", "body has no `data` object (not a generation record)"),
    ]


# --- types and odd values ----------------------------------------------------------------------


def test_frames_have_the_declared_schemas_even_when_empty():
    for batch in (normalize_bodies([(LLAMA_ID, LLAMA_BODY)]), normalize_bodies([]), normalize_bodies([("x", b"{}")])):
        assert dict(batch.generations.schema) == GENERATION_SCHEMA
        assert dict(batch.provider_responses.schema) == PROVIDER_RESPONSE_SCHEMA
    assert set(GENERATION_SCHEMA) == {*API_FIELDS, "raw"} and len(API_FIELDS) == 45


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-02-24T21:19:33.705Z", utc(2026, 2, 24, 21, 19, 33, 705000)),
        ("2025-08-16T13:55:18.378595+00:00", utc(2025, 8, 16, 13, 55, 18, 378595)),
        ("2026-02-24T21:19:33Z", utc(2026, 2, 24, 21, 19, 33)),
        ("2026-02-24T23:19:33.5+02:00", utc(2026, 2, 24, 21, 19, 33, 500000)),
        ("2026-02-24T21:19:33.123456789Z", utc(2026, 2, 24, 21, 19, 33, 123456)),
        ("2026-02-24T21:19:33.705", utc(2026, 2, 24, 21, 19, 33, 705000)),  # no offset: UTC
    ],
)
def test_created_at_in_every_form_becomes_utc(text, expected):
    assert only_row(normalize_one(llama_record(), created_at=text))["created_at"] == expected


def test_an_unparseable_created_at_rejects_only_that_id():
    good = llama_record()
    bad = {**good, "id": "gen-1771967973-badtimestampxxxxxxxx", "created_at": "yesterday"}
    batch = normalize_bodies([(bad["id"], body_of(bad)), (good["id"], body_of(good))])
    assert batch.generations["id"].to_list() == [good["id"]]
    assert batch.rejected == [(bad["id"], "created_at='yesterday' is not an ISO 8601 timestamp")]
    assert batch.provider_responses["generation_id"].to_list() == [good["id"]]


def test_costs_in_exponent_form():
    body = LLAMA_BODY.replace(b'"total_cost": 0.00003452', b'"total_cost": 3.452e-05').replace(
        b'"usage": 0.00003452', b'"usage": 6E-7'
    )
    row = only_row(normalize_bodies([(LLAMA_ID, body)]))
    assert (row["total_cost"], row["usage"]) == (0.00003452, 6e-7)
    assert '"total_cost": 3.452e-05' in row["raw"]  # raw keeps the text as sent


def test_integers_sent_as_floats_are_stored_as_integers():
    row = only_row(normalize_one(llama_record(), tokens_prompt=65.0, app_id=2872617.0))
    assert (row["tokens_prompt"], row["app_id"]) == (65, 2872617)
    assert '"tokens_prompt":65.0' in row["raw"]


def test_a_fractional_integer_rejects_the_record_rather_than_rounding_it():
    assert rejection_of(llama_record(), tokens_prompt=1016.5) == "data.tokens_prompt=1016.5 is not an integer"


def test_a_fractional_attempt_status_is_rejected_too():
    record = llama_record()
    record["provider_responses"][0]["status"] = 200.5
    assert rejection_of(record) == "data.provider_responses[0].status=200.5 is not an integer"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"total_cost": "0.0015"}, "Expected `float | null`, got `str` - at `data.total_cost`"),
        ({"is_byok": 1}, "Expected `bool | null`, got `int` - at `data.is_byok`"),
        ({"tokens_prompt": True}, "Expected `int | null`, got `bool` - at `data.tokens_prompt`"),
        ({"model": 7}, "Expected `str | null`, got `int` - at `data.model`"),
        ({"provider_responses": {"status": 200}}, "Expected `array | null`, got `object` - at `data.provider_responses`"),
        ({"tokens_prompt": 2**63}, "Expected `int` <= 9223372036854775807 - at `data.tokens_prompt`"),
    ],
)
def test_a_value_of_the_wrong_type_rejects_the_record_with_the_field_named(changes, reason):
    assert rejection_of(llama_record(), **changes) == reason


def test_missing_keys_are_null_and_unknown_keys_stay_in_raw():
    record = llama_record()
    for key in ("app_id", "router", "moderation_latency", "cancelled"):
        del record[key]
    row = only_row(normalize_one(record, usage_cache=-0.0000123, creator_user_id="user_x"))
    assert (row["app_id"], row["router"], row["moderation_latency"], row["cancelled"]) == (None, None, None, None)
    assert orjson.loads(row["raw"])["usage_cache"] == -0.0000123
    assert orjson.loads(row["raw"])["creator_user_id"] == "user_x"


def test_enums_are_open_strings():
    record = llama_record()
    record["provider_responses"][0].update(provider_name="Brand New Provider", routed_service_tier="turbo")
    batch = normalize_one(record, api_type="hologram", data_region="mars", finish_reason="exploded")
    row = only_row(batch)
    assert (row["api_type"], row["data_region"], row["finish_reason"]) == ("hologram", "mars", "exploded")
    assert batch.provider_responses.select("provider_name", "routed_service_tier").row(0) == (
        "Brand New Provider",
        "turbo",
    )


@pytest.mark.parametrize(("attempts", "stored"), [([], "[]"), (None, None)])
def test_empty_or_null_provider_responses_give_no_attempt_rows(attempts, stored):
    batch = normalize_one(llama_record(), provider_responses=attempts)
    assert only_row(batch)["provider_responses"] == stored
    assert batch.provider_responses.height == 0


def test_an_attempt_without_id_or_status_keeps_nulls():
    record = llama_record()
    record["provider_responses"] = [{"status": None, "provider_name": "Groq"}, {"provider_name": "Groq", "status": 200}]
    batch = normalize_one(record)
    assert batch.provider_responses.select("attempt", "provider_name", "status", "id").rows() == [
        (0, "Groq", None, None),
        (1, "Groq", 200, None),
    ]


# --- what is not a generation record ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>524: a timeout occurred</html>", "body is not JSON (unexpected character"),
        (b'{"data": {"id": "gen-1', "body is not JSON (unexpected end of data"),
        (b"[1, 2]", "body is a JSON array, not an object"),
        (b'{"error": {"code": 404, "message": "Not found"}}', 'body is an API error, not a generation: {"code":404,"message":"Not found"}'),
        (b'{"result": {}}', "body has no `data` object (not a generation record)"),
        (b'{"data": null}', "body has no `data` object (not a generation record)"),
        (b'{"data": {"created_at": "2026-02-24T21:19:33.705Z"}}', "`data` has no `id` (not a generation record)"),
        (b'{"data": {"id": "gen-other"}}', "`data.id` is 'gen-other', not the requested id"),
    ],
)
def test_bodies_that_are_not_a_generation_record_are_rejected_and_the_batch_goes_on(body, reason):
    batch = normalize_bodies([("gen-requested", body), (LLAMA_ID, LLAMA_BODY)])
    [(generation_id, rejected_because)] = batch.rejected
    assert generation_id == "gen-requested"
    assert rejected_because.startswith(reason)  # orjson's own words follow "not JSON ("
    assert batch.generations["id"].to_list() == [LLAMA_ID]
    assert batch.provider_responses["generation_id"].to_list() == [LLAMA_ID]


def test_an_id_given_twice_keeps_its_last_body():
    first = body_of(llama_record(), tokens_prompt=1)
    second = body_of(llama_record(), tokens_prompt=2, provider_responses=[])
    batch = normalize_bodies([(LLAMA_ID, first), (LLAMA_ID, second)])
    assert batch.generations.select("id", "tokens_prompt").rows() == [(LLAMA_ID, 2)]
    assert batch.provider_responses.height == 0


def test_raw_is_the_data_object_as_received_in_every_envelope_layout():
    data = b'{"id":"%s","created_at":"2026-02-24T21:19:33.705Z","usage":6e-07}' % LLAMA_ID.encode()
    layouts = [
        b'{"data":' + data + b"}",
        b'{"data":' + data + b"}\n",
        b'  {\n  "data" :  ' + data + b"  \n}  ",
    ]
    for body in layouts:
        assert only_row(normalize_bodies([(LLAMA_ID, body)]))["raw"] == data.decode()
    # keys besides `data` (no API does this): the object can't be cut out, so it is re-serialized
    row = only_row(normalize_bodies([(LLAMA_ID, b'{"data":' + data + b',"timestamp":"x"}')]))
    assert orjson.loads(row["raw"]) == orjson.loads(data)


def test_non_ascii_text_survives():
    row = only_row(normalize_one(llama_record(), external_user="José 🦙", origin="https://例え.jp"))
    assert (row["external_user"], row["origin"]) == ("José 🦙", "https://例え.jp")
    assert orjson.loads(row["raw"])["external_user"] == "José 🦙"


def test_a_large_batch_mixes_fast_and_careful_paths_in_order():
    good = llama_record()
    bodies = []
    for index in range(300):
        generation_id = f"gen-1771967973-{index:020d}"
        changes = {"id": generation_id}
        if index % 3 == 1:
            changes["tokens_prompt"] = float(index)  # careful path, fixed
        if index % 50 == 7:
            changes["tokens_prompt"] = index + 0.5  # careful path, rejected
        bodies.append((generation_id, body_of(good, **changes)))
    batch = normalize_bodies(bodies)
    rejected_ids = {generation_id for generation_id, _ in batch.rejected}
    assert rejected_ids == {f"gen-1771967973-{index:020d}" for index in range(300) if index % 50 == 7}
    kept = [generation_id for generation_id, _ in bodies if generation_id not in rejected_ids]
    assert batch.generations["id"].to_list() == kept
    assert batch.provider_responses["generation_id"].to_list() == kept
    tokens = dict(batch.generations.select("id", "tokens_prompt").rows())
    assert tokens["gen-1771967973-00000000000000000004"] == 4
    assert tokens["gen-1771967973-00000000000000000003"] == 65
    assert batch.generations["tokens_prompt"].dtype == pl.Int64

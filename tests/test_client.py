"""The client's retry policy, scripted response by response with httpx.MockTransport.

Nothing here sleeps: the client takes its sleep and clock from the test (FakeTime), so every
wait is recorded and asserted exactly instead of being waited for.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from email.utils import formatdate
from pathlib import Path

import httpx
import orjson
import pytest

from pipeline.client import (
    RETRIED_STATUSES,
    Failed,
    FatalAPIError,
    Loaded,
    MissingAPIKeyError,
    NotFound,
    OpenRouterClient,
    Outcome,
    RetryPolicy,
)

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
GEN_ID = "gen-1771967973-0hZ8J5kY7qLMOKbPx0u3"
NOW = 1_786_200_000.0  # 2026-08-08T13:20:00Z, before the reset in the free-tier 429 fixture

GENERATION_BODIES = sorted(FIXTURES.glob("generation_200_*.json"))
GOOD_BODY = (FIXTURES / "generation_200_real_llama4scout_deepinfra_cancelled.json").read_bytes()
DOCS_ERRORS = json.loads((FIXTURES / "errors_generation_endpoint_docs_openapi_examples.json").read_text())
CLOUDFLARE_524 = b"""<!DOCTYPE html>
<html lang="en-US"><head><title>openrouter.ai | 524: A timeout occurred</title>
<style>body{font-family:system-ui} .cf-error-details{margin:0}</style></head>
<body><div id="cf-wrapper"><h1>A timeout occurred</h1>""" + b"<p>padding</p>" * 500 + b"</div></body></html>"
NGINX_502 = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class FakeTime:
    """A clock that only moves when the client sleeps; records every sleep."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class TopOfRange:
    """Stands in for random.Random: full jitter always picks the top of its range."""

    def uniform(self, low: float, high: float) -> float:
        return high


Reply = httpx.Response | Exception


class Script:
    """Answers requests with the given replies in order; the last one repeats forever."""

    def __init__(self, replies: Iterable[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if isinstance(reply, Exception):
            raise reply
        return reply


def ok(body: bytes = GOOD_BODY) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "application/json"})


def error(status: int, body: bytes | dict = b"", **headers: str) -> httpx.Response:
    content = orjson.dumps(body) if isinstance(body, dict) else body
    return httpx.Response(status, content=content, headers={k.replace("_", "-"): v for k, v in headers.items()})


def make_client(script: Script, time: FakeTime, **kwargs) -> OpenRouterClient:
    kwargs.setdefault("rng", TopOfRange())
    return OpenRouterClient(
        KEY,
        base_url="https://openrouter.test/api/v1",
        transport=httpx.MockTransport(script),
        sleep=time.sleep,
        clock=time.clock,
        **kwargs,
    )


def fetch(replies: Iterable[Reply], *, time: FakeTime | None = None, **kwargs) -> tuple[Outcome, Script, FakeTime]:
    script, time = Script(replies), time or FakeTime()

    async def run() -> Outcome:
        async with make_client(script, time, **kwargs) as client:
            return await client.get_generation(GEN_ID)

    return asyncio.run(run()), script, time


# --- real bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", GENERATION_BODIES, ids=lambda p: p.stem)
def test_every_recorded_generation_body_is_loaded_byte_for_byte(path: Path) -> None:
    body = path.read_bytes()
    if "wrapped_by_app_proxy" in path.name:
        # The app's proxy wrapped OpenRouter's body in its own {"data": ..., "timestamp": ...}.
        body = orjson.dumps({"data": orjson.loads(body)["data"]["data"]})
    outcome, script, _ = fetch([ok(body)])
    assert outcome == Loaded(GEN_ID, body, attempts=1)
    assert len(script.requests) == 1


def test_content_endpoint_uses_its_own_path_and_loads_the_recorded_body() -> None:
    body = fixture("generation_content_200_docs_openapi_example.json")
    script, time = Script([ok(body)]), FakeTime()

    async def run() -> Outcome:
        async with make_client(script, time) as client:
            return await client.get_generation_content(GEN_ID)

    assert asyncio.run(run()) == Loaded(GEN_ID, body, attempts=1)
    assert script.requests[0].url == f"https://openrouter.test/api/v1/generation/content?id={GEN_ID}"


def test_request_carries_the_key_the_attribution_headers_and_both_timeouts() -> None:
    script, time = Script([ok()]), FakeTime()

    async def run() -> None:
        async with make_client(
            script, time, http_referer="https://example.org/", title="orusage tests",
            connect_timeout_s=3.0, read_timeout_s=7.0,
        ) as client:
            await client.get_generation(GEN_ID)

    asyncio.run(run())
    request = script.requests[0]
    assert request.method == "GET"
    assert request.url == f"https://openrouter.test/api/v1/generation?id={GEN_ID}"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["HTTP-Referer"] == "https://example.org/"
    assert request.headers["X-Title"] == "orusage tests"
    assert request.extensions["timeout"]["connect"] == 3.0
    assert request.extensions["timeout"]["read"] == 7.0


def test_key_and_base_url_come_from_the_environment_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    monkeypatch.setenv("OPENROUTER_BASE_URL", "http://127.0.0.1:9/api/v1/")
    client = OpenRouterClient(transport=httpx.MockTransport(Script([ok()])))
    assert client.base_url == "http://127.0.0.1:9/api/v1"
    monkeypatch.delenv("OPENROUTER_BASE_URL")
    assert OpenRouterClient(transport=httpx.MockTransport(Script([ok()]))).base_url == "https://openrouter.ai/api/v1"


def test_a_missing_key_is_refused_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="OPENROUTER_API_KEY"):
        OpenRouterClient()


# --- what is retried --------------------------------------------------------------------------


@pytest.mark.parametrize("status", sorted(RETRIED_STATUSES))
def test_each_retried_status_is_retried_then_loaded(status: int) -> None:
    body = DOCS_ERRORS.get(str(status), {"error": {"code": status, "message": "transient"}})
    outcome, script, time = fetch([error(status, body), ok()])
    assert outcome == Loaded(GEN_ID, GOOD_BODY, attempts=2)
    assert len(time.sleeps) == 1


def test_exactly_the_designed_statuses_are_retried() -> None:
    assert RETRIED_STATUSES == {408, 429, 500, 502, 503, 504, *range(520, 531)}


@pytest.mark.parametrize("status", [400, 405, 422, 501])
def test_other_statuses_fail_at_once_without_retrying(status: int) -> None:
    outcome, script, time = fetch([error(status, {"error": {"code": status, "message": "Bad request"}})])
    assert outcome == Failed(GEN_ID, attempts=1, last_status=status, last_error=f"HTTP {status}: Bad request")
    assert time.sleeps == []


def test_a_status_that_never_clears_fails_after_max_attempts_with_the_last_error() -> None:
    outcome, script, _ = fetch([error(500, DOCS_ERRORS["500"])], policy=RetryPolicy(max_attempts=4))
    assert outcome == Failed(GEN_ID, 4, 500, "HTTP 500: Internal Server Error (after 4 attempts)")
    assert len(script.requests) == 4


def test_a_truncated_200_is_retried() -> None:
    outcome, _, _ = fetch([ok(GOOD_BODY[: len(GOOD_BODY) // 2]), ok()])
    assert outcome == Loaded(GEN_ID, GOOD_BODY, attempts=2)


def test_a_200_that_is_not_json_or_lacks_data_is_retried_and_named_in_the_error() -> None:
    # The partial deepseek body is a bare record: JSON, but without the `data` envelope.
    bare = fixture("generation_partial_real_deepseek_atlascloud_usage_cache_field.json")
    outcome, _, _ = fetch([ok(b"<html>captive portal</html>"), ok(bare)], policy=RetryPolicy(max_attempts=2))
    assert outcome == Failed(GEN_ID, 2, 200, "HTTP 200 with JSON without a `data` object (after 2 attempts)")
    outcome, _, _ = fetch([ok(b"<html>captive portal</html>")], policy=RetryPolicy(max_attempts=1))
    assert isinstance(outcome, Failed) and outcome.last_error.startswith("HTTP 200 with a truncated or non-JSON body")


@pytest.mark.parametrize(
    ("status", "page", "summary"),
    [(524, CLOUDFLARE_524, "HTML page: openrouter.ai | 524: A timeout occurred"), (502, NGINX_502, "HTML page: 502 Bad Gateway")],
)
def test_html_error_pages_are_retried_and_summarised_by_their_title(status: int, page: bytes, summary: str) -> None:
    outcome, _, _ = fetch([error(status, page, content_type="text/html")], policy=RetryPolicy(max_attempts=2))
    assert outcome == Failed(GEN_ID, 2, status, f"HTTP {status}: {summary} (after 2 attempts)")
    outcome, _, _ = fetch([error(status, page, content_type="text/html"), ok()])
    assert outcome == Loaded(GEN_ID, GOOD_BODY, attempts=2)


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (httpx.ReadTimeout("timed out"), "timeout (ReadTimeout: timed out)"),
        (httpx.ConnectTimeout("timed out"), "timeout (ConnectTimeout: timed out)"),
        (httpx.ConnectError("[Errno 111] Connection refused"), "connection error (ConnectError: [Errno 111] Connection refused)"),
        (httpx.RemoteProtocolError("Server disconnected"), "connection error (RemoteProtocolError: Server disconnected)"),
        (httpx.ReadError("peer closed"), "connection error (ReadError: peer closed)"),
    ],
)
def test_timeouts_and_connection_errors_are_retried(exc: Exception, text: str) -> None:
    outcome, _, time = fetch([exc, ok()])
    assert outcome == Loaded(GEN_ID, GOOD_BODY, attempts=2)
    assert len(time.sleeps) == 1
    outcome, _, _ = fetch([exc], policy=RetryPolicy(max_attempts=3))
    assert outcome == Failed(GEN_ID, 3, None, f"{text} (after 3 attempts)")


# --- how long it waits ------------------------------------------------------------------------


def test_backoff_is_exponential_capped_and_fully_jittered() -> None:
    policy = RetryPolicy(max_attempts=6, backoff_initial_s=0.5, backoff_max_s=3.0)
    outcome, _, time = fetch([error(500)], policy=policy)
    assert isinstance(outcome, Failed)
    assert time.sleeps == [0.5, 1.0, 2.0, 3.0, 3.0]  # top of each jitter range

    class Bottom:
        def uniform(self, low: float, high: float) -> float:
            return low

    _, _, time = fetch([error(500)], policy=policy, rng=Bottom())
    assert time.sleeps == [0.0] * 5  # full jitter ranges start at zero


def test_retry_after_in_seconds_is_waited_exactly() -> None:
    outcome, _, time = fetch([error(429, fixture("error_429_free_tier_daily_high_balance_captured.json"), retry_after="7"), ok()])
    assert outcome == Loaded(GEN_ID, GOOD_BODY, attempts=2)
    assert time.sleeps == [7.0]


def test_retry_after_as_an_http_date_is_waited_until_that_date() -> None:
    outcome, _, time = fetch([error(503, retry_after=formatdate(NOW + 12, usegmt=True)), ok()])
    assert outcome == Loaded(GEN_ID, GOOD_BODY, attempts=2)
    assert time.sleeps == [12.0]


def test_rate_limit_reset_inside_the_error_body_is_waited_until() -> None:
    body = fixture("error_429_free_tier_daily_high_balance_captured.json")  # reset 1786233600000 ms
    outcome, _, time = fetch([error(429, body), ok()], time=FakeTime(now=1_786_233_600.0 - 30))
    assert outcome == Loaded(GEN_ID, GOOD_BODY, attempts=2)
    assert time.sleeps == [30.0]


def test_rate_limit_reset_header_in_epoch_milliseconds_is_waited_until() -> None:
    reset_ms = str(int((NOW + 42) * 1000))
    outcome, _, time = fetch([error(429, x_ratelimit_reset=reset_ms, x_ratelimit_remaining="0"), ok()])
    assert outcome == Loaded(GEN_ID, GOOD_BODY, attempts=2)
    assert time.sleeps == [42.0]


def test_a_reset_header_on_a_non_429_is_not_a_reason_to_wait_for_it() -> None:
    reset_ms = str(int((NOW + 42) * 1000))
    _, _, time = fetch([error(500, x_ratelimit_reset=reset_ms), ok()])
    assert time.sleeps == [0.5]  # plain backoff


def test_a_reset_already_past_falls_back_to_backoff() -> None:
    # The Google AI Studio 429 names a reset in April 2025, long gone by NOW.
    body = fixture("error_429_limit_rpd_google_ai_studio_with_user_id.json")
    outcome, _, time = fetch([error(429, body), ok()])
    assert outcome == Loaded(GEN_ID, GOOD_BODY, attempts=2)
    assert time.sleeps == [0.5]


def test_a_wait_hours_away_fails_the_id_at_once_and_later_ids_are_not_sent() -> None:
    body = fixture("error_429_free_tier_daily_high_balance_captured.json")  # resets 2026-08-09T00:00Z
    script, time = Script([error(429, body)]), FakeTime(now=1_786_233_600.0 - 5 * 3600)

    async def run() -> list[Outcome]:
        async with make_client(script, time) as client:
            return [await client.get_generation(GEN_ID), await client.get_generation("gen-1771967974-aaaaaaaaaaaaaaaaaaaa")]

    first, second = asyncio.run(run())
    assert isinstance(first, Failed) and first.attempts == 1 and first.last_status == 429
    assert first.last_error == (
        "HTTP 429: Rate limit exceeded: free-models-per-day-high-balance.; the API asks to wait "
        "5 h 00 min (until 2026-08-09T00:00:00Z), over the 60 s cap: left for a later run"
    )
    assert first.not_before is not None and first.not_before.timestamp() == 1_786_233_600.0
    assert isinstance(second, Failed) and second.attempts == 0 and second.last_error.startswith("not sent: HTTP 429")
    assert len(script.requests) == 1
    assert time.sleeps == []


def test_a_429_slows_every_later_request_not_only_its_own() -> None:
    script = Script([error(429, retry_after="5"), ok()])
    time = FakeTime()

    async def run() -> tuple[Outcome, Outcome]:
        async with make_client(script, time, policy=RetryPolicy(max_attempts=1, rate_limited_attempts=1)) as client:
            first = await client.get_generation(GEN_ID)  # out of attempts: Failed at once...
            second = await client.get_generation("gen-1771967974-aaaaaaaaaaaaaaaaaaaa")  # ...yet this one waits
            assert client.stats.shared_waits == 1 and client.stats.responses_429 == 1
            return first, second

    first, second = asyncio.run(run())
    assert isinstance(first, Failed) and first.last_status == 429
    assert isinstance(second, Loaded)
    assert time.sleeps == [5.0]


# --- 404 ---------------------------------------------------------------------------------------


def test_404_during_the_api_lag_is_retried_until_the_generation_appears() -> None:
    not_found = error(404, fixture("error_404_generation_not_found_test_fixture.json"))
    outcome, _, time = fetch([not_found, not_found, not_found, ok()])
    assert outcome == Loaded(GEN_ID, GOOD_BODY, attempts=4)
    assert time.sleeps == [0.5, 1.0, 2.0]


def test_404_forever_is_not_found_after_the_configured_attempts() -> None:
    not_found = error(404, fixture("error_404_generation_not_found_test_fixture.json"))
    assert RetryPolicy().not_found_attempts >= 4  # the design: at least 3 retries before not_found
    outcome, script, time = fetch([not_found])
    assert outcome == NotFound(GEN_ID, attempts=4)
    assert len(time.sleeps) == 3
    outcome, script, _ = fetch([not_found], policy=RetryPolicy(not_found_attempts=5))
    assert outcome == NotFound(GEN_ID, attempts=5) and len(script.requests) == 5


# --- fatal ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "api_message"),
    [
        (401, fixture("error_401_no_auth_credentials_found_captured.json"), "No auth credentials found"),
        (401, fixture("error_401_user_not_found.json"), "User not found."),
        (402, fixture("error_402_requires_more_credits_production_body.json"),
         orjson.loads(fixture("error_402_requires_more_credits_production_body.json"))["error"]["message"]),
        (403, b'{"error":{"message":"Only management keys can fetch this","code":403}}', "Only management keys can fetch this"),
    ],
)
def test_a_refused_key_raises_one_fatal_error_at_once(status: int, body: bytes, api_message: str) -> None:
    with pytest.raises(FatalAPIError) as raised:
        fetch([error(status, body), ok()])
    exc = raised.value
    assert exc.status == status and exc.api_message == api_message
    assert api_message in str(exc) and "OPENROUTER_API_KEY" in str(exc)
    assert KEY not in str(exc) and KEY not in repr(exc)


def test_a_fatal_error_is_not_retried() -> None:
    script, time = Script([error(401, fixture("error_401_user_not_found.json")), ok()]), FakeTime()

    async def run() -> None:
        async with make_client(script, time) as client:
            await client.get_generation(GEN_ID)

    with pytest.raises(FatalAPIError):
        asyncio.run(run())
    assert len(script.requests) == 1 and time.sleeps == []


# --- the key stays secret -----------------------------------------------------------------------


def test_the_key_appears_in_no_repr_url_error_or_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo = {"error": {"code": 400, "message": f"Malformed key {KEY}"}}
    script = Script([error(502, NGINX_502), httpx.ConnectError("refused"), error(400, echo)])
    time = FakeTime()

    async def run() -> tuple[str, Outcome]:
        async with make_client(script, time) as client:
            return repr(client), await client.get_generation(GEN_ID)

    client_repr, outcome = asyncio.run(run())
    assert isinstance(outcome, Failed)
    assert outcome.last_error == "HTTP 400: Malformed key [redacted]"
    assert KEY not in repr(outcome) and KEY not in client_repr
    assert all(KEY not in str(request.url) for request in script.requests)
    assert caplog.records and KEY not in caplog.text


def test_a_requests_per_second_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_rps"):
        OpenRouterClient(KEY, max_rps=0, transport=httpx.MockTransport(Script([ok()])))


def test_the_fatal_message_names_the_variable_the_key_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    script, time = Script([error(401, fixture("error_401_user_not_found.json"))]), FakeTime()

    async def run() -> None:
        client = OpenRouterClient(transport=httpx.MockTransport(script), sleep=time.sleep, clock=time.clock)
        async with client:
            await client.get_generation(GEN_ID)

    with pytest.raises(FatalAPIError) as raised:
        asyncio.run(run())
    assert str(raised.value) == "OpenRouter rejected the API key (HTTP 401: User not found.); check OPENROUTER_API_KEY"


def test_a_reset_that_has_just_passed_means_retry_now() -> None:
    reset_ms = str(int((NOW - 2) * 1000))
    outcome, _, time = fetch([error(429, x_ratelimit_reset=reset_ms), ok()])
    assert outcome == Loaded(GEN_ID, GOOD_BODY, attempts=2)
    assert time.sleeps == [0.0]  # the window turned over: no pause, for this id or any other


def test_retry_after_zero_is_taken_at_its_word() -> None:
    outcome, _, time = fetch([error(429, retry_after="0"), ok()])
    assert outcome == Loaded(GEN_ID, GOOD_BODY, attempts=2)
    assert time.sleeps == [0.0]

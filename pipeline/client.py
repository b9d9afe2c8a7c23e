"""The OpenRouter API client: one generation id in, one outcome out, with the retry policy.

Everything the design says about retrying lives in this module, in `RetryPolicy` and
`OpenRouterClient._get`:

- Retried: 408, 429, 500, 502, 503, 504, 520-530, connection errors, timeouts, and a 200 whose
  body is truncated, not JSON, or JSON without a `data` object.
- The wait before a retry is, in order: `Retry-After` (seconds or an HTTP date), else on a 429 an
  `X-RateLimit-Reset` (epoch milliseconds) from the response headers or from the body's
  `error.metadata.headers`, else exponential backoff with full jitter, capped at `backoff_max_s`.
  A wait the server asked for (and any 429) is applied to the whole client: every request waits
  for the shared "not before" time, not only the one that was told to wait. A 429 without a usable
  wait pauses the client by the backoff of the 429s it got in a row (reset by any 200), so a lone
  429 costs a short pause and a storm a growing one; a 404 or 5xx backs off only its own id. A
  wait of zero (`Retry-After: 0`, a reset already past) is taken at its word: retry now.
- A wait longer than `max_wait_s` (a daily quota that resets hours later) is not waited for: the
  id ends `Failed` at once with the time the API named, and until that time the client answers
  every further id with the same `Failed` without sending anything. One nightly run must not
  block for hours, nor hammer an API that has said no; the next run retries these ids.
- 404: generations appear with a lag, so an id is `NotFound` only after `not_found_attempts` 404s
  (at least 4, that is 3 retries with backoff).
- 429s spend a budget of their own (`rate_limited_attempts`), not `max_attempts`: a limit says
  "slower", and the client slows as a whole (`AdaptiveRate`: paced just under the rate the API
  let through once 429s pass a share of its recent answers; `--max-rps` stays a hard cap).
- Connection failures and timeouts while the whole client gets no answer spend no attempt; after
  `unreachable_after_s` of them (`unreachable_min_failures` in a row) `APIUnreachableError` stops
  the run. A 404 without the API's JSON error body, or 20 HTML pages with a 200 in a row, mean
  the base URL is not the API: `APIUnusableError` stops the run, and no id is marked.
- 401, 402, 403: `FatalAPIError` at once. The key is wrong or out of credit; retrying cannot help.
- Any other status (400, 405, 501...) is `Failed` at once: asking again gets the same answer.

Outcomes are values, so one bad id never stops a batch; only `FatalAPIError` stops a run.

The retry loop is hand-written rather than built on stamina or tenacity: three of its four wait
sources come from the response, the wait is shared across requests (a limiter, not a per-call
sleep), 404 has its own attempt budget, and the result is a value rather than an exception.
Expressed in tenacity that is a custom stop, a custom wait, a custom predicate and exceptions used
as control flow, which is longer than the loop and hides it. The standard parts come from
libraries: the requests-per-second limit is aiolimiter's leaky bucket, HTTP dates are parsed by
the standard library, and the backoff formula is one line (full jitter: uniform(0, capped exp)).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import re
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import httpx
import orjson
from aiolimiter import AsyncLimiter
from httpx_aiohttp import AiohttpTransport

from pipeline import __version__, config

log = logging.getLogger(__name__)


RETRIED_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504, *range(520, 531)})
FATAL_STATUSES: Final = frozenset({401, 402, 403})
_ERROR_TEXT_MAX_CHARS: Final = 300
_HTML_PAGES_UNUSABLE: Final = 20
_LONGEST_WAIT_S: Final = 366 * 86_400.0  # what a wait the server names is capped at: a year


@dataclass(frozen=True, slots=True)
class Loaded:
    """A 200 whose body is JSON with a `data` object; `body` is the raw bytes as received."""

    generation_id: str
    body: bytes
    attempts: int


@dataclass(frozen=True, slots=True)
class NotFound:
    """The API answered 404 `not_found_attempts` times (the id may still appear later)."""

    generation_id: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Failed:
    """No usable answer this run; the next run retries the id.

    `not_before` is set when the API named a time before which asking again is pointless.
    """

    generation_id: str
    attempts: int
    last_status: int | None
    last_error: str
    not_before: datetime | None = None


Outcome = Loaded | NotFound | Failed


class FatalAPIError(Exception):
    """The API refused the key (401, 402, 403): stop the run; retrying would only hammer it."""

    def __init__(self, status: int, api_message: str, *, key_hint: str = f"check {config.API_KEY_VARIABLE}") -> None:
        self.status = status
        self.api_message = api_message
        what = {
            401: "rejected the API key",
            402: "refused the request for lack of credit on the API key",
            403: "forbade the request with this API key",
        }.get(status, "refused the API key")
        super().__init__(f"OpenRouter {what} (HTTP {status}: {api_message}); {key_hint}")


class ActivityError(Exception):
    """/activity gave no usable answer after the retries (one line, naming the URL without a key)."""


class APIUnreachableError(Exception):
    """No answer from the API for a while, every request failing to connect or timing out: stop
    the run (a circuit breaker) rather than mark every id failed against an API that is down."""


class APIUnusableError(Exception):
    """The server at the base URL is not the API: a 404 without the API's JSON error body (a wrong
    path or host). Stop the run: marking every id `not_found` would hide them for a week."""


MissingAPIKeyError = config.ApiKeyError  # no key given and OPENROUTER_API_KEY unset or empty, or unusable


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one id. Defaults suit the real API; tests shrink the waits."""

    # Two budgets, spent separately: 404s count toward `not_found_attempts` (a new generation
    # can take seconds to minutes to appear), every other retried answer toward `max_attempts`.
    max_attempts: int = 6
    not_found_attempts: int = 4
    # 429s spend a budget of their own: a rate limit says "slower", not "this id is broken", and the
    # adaptive rate (below) slows the whole client down; the budget only bounds a pathological API.
    rate_limited_attempts: int = 40
    # The circuit breaker: no answer at all (connection failures, timeouts) for this long, over at
    # least this many requests in a row, stops the run with APIUnreachableError.
    unreachable_after_s: float = 30.0
    unreachable_min_failures: int = 20
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    # Longest server-requested wait honoured; longer ones end the id as Failed (see module doc).
    max_wait_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.not_found_attempts < 1 or self.rate_limited_attempts < 1:
            raise ValueError("max_attempts, not_found_attempts and rate_limited_attempts must be at least 1")
        if self.backoff_initial_s < 0 or self.backoff_max_s < 0 or self.max_wait_s < 0:
            raise ValueError("waits must not be negative")

    def backoff_s(self, retry_number: int, rng: random.Random) -> float:
        """Full jitter: uniform over [0, min(cap, initial * 2^(n-1))] for the n-th retry."""
        ceiling_s = min(self.backoff_max_s, self.backoff_initial_s * 2 ** (retry_number - 1))
        return rng.uniform(0.0, ceiling_s)


@dataclass
class ClientStats:
    """Counters for progress displays and run summaries; one instance per client."""

    requests: int = 0
    retries: int = 0
    responses_429: int = 0
    responses_404: int = 0
    transport_errors: int = 0
    invalid_bodies: int = 0
    # Requests that had to wait for the shared "not before" time set by a 429 / Retry-After.
    shared_waits: int = 0
    # Ids answered Failed without a request because the API asked for a wait over max_wait_s.
    refused_locally: int = 0
    # The requests-per-second the adaptive rate settled at; None while no 429 has set one.
    adaptive_rps: float | None = None
    by_status: Counter[int] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What one attempt amounted to, before the policy decides what to do next."""

    kind: str  # "loaded" | "not_found" | "retry" | "fail" | "fatal"
    status: int | None
    error: str = ""
    body: bytes = b""
    server_wait_s: float | None = None


Sleep = Callable[[float], Awaitable[object]]


class OpenRouterClient:
    """Async client for `/generation` and `/generation/content`; use as `async with`.

    `sleep` and `clock` (epoch seconds) exist so tests run the retry policy without waiting;
    `rng` fixes the jitter. `transport` defaults to aiohttp's pool behind httpx's interface,
    the fastest correct option measured by bench/http_clients.py.
    """

    def __init__(
        self,
        api_key: str | config.ApiKey | None = None,
        *,
        base_url: str | None = None,
        http_referer: str | None = None,
        title: str | None = None,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 30.0,
        policy: RetryPolicy = RetryPolicy(),
        max_rps: float | None = None,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        key = api_key if isinstance(api_key, config.ApiKey) else config.api_key(api_key)
        api_key = self._api_key = key.value
        self._key_source = key.source
        self._key_hint = key.hint
        self.base_url = config.check_base_url(
            base_url or os.environ.get(config.BASE_URL_VARIABLE) or config.DEFAULT_BASE_URL).rstrip("/")
        self.policy = policy
        self.stats = ClientStats()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._limiter = _limiter(max_rps) if max_rps is not None else None
        self._adaptive = AdaptiveRate(clock=time.monotonic if clock is time.time else clock, sleep=sleep)
        self._breaker = _Breaker(unreachable_after_s=policy.unreachable_after_s,
                                 min_failures=policy.unreachable_min_failures)
        self._not_before = 0.0  # shared across requests: set by 429s and Retry-After
        self._consecutive_429s = 0  # across the client, since its last 200
        self._html_pages_in_a_row = 0  # 200s with an HTML page, across the client
        self._fatal: FatalAPIError | None = None
        self._refuse_until = 0.0  # set by a wait over policy.max_wait_s
        self._refusal: Failed | None = None

        headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": f"orusage/{__version__}",
        }
        if http_referer:
            headers["HTTP-Referer"] = http_referer
        if title:
            headers["X-Title"] = title
        self._headers = httpx.Headers(headers)
        self._extensions = {
            "timeout": {"connect": connect_timeout_s, "read": read_timeout_s, "write": read_timeout_s, "pool": None}
        }
        # Requests go straight to the transport, with httpx's Request and Response: httpx.AsyncClient
        # would add URL merging, cookies, auth and redirect bookkeeping that this client does not
        # use, at ~0.15 ms of CPU per request (half the transport's own cost; bench/http_clients.py).
        if transport is None:
            transport = AiohttpTransport(limits=httpx.Limits(max_connections=max_connections))
        self._transport = transport
        self._generation_url = f"{self.base_url}/generation?id="
        self._content_url = f"{self.base_url}/generation/content?id="

    def __repr__(self) -> str:
        return f"OpenRouterClient(base_url={self.base_url!r}, api_key=<from {self._key_source}>)"

    async def __aenter__(self) -> OpenRouterClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def get_generation(self, generation_id: str, *, slots: asyncio.Semaphore | None = None) -> Outcome:
        """`GET /generation?id=`: the generation's metadata (cost, tokens, latency...).

        `slots`, when given, is held only while a request is on the wire, not during the waits
        between attempts, so ids waiting out a backoff do not keep others from being fetched.
        """
        return await self._get(self._generation_url, generation_id, slots)

    async def get_generation_content(self, generation_id: str, *, slots: asyncio.Semaphore | None = None) -> Outcome:
        """`GET /generation/content?id=`: stored prompt and completion, when the account logs them."""
        return await self._get(self._content_url, generation_id, slots)

    async def get_activity(self, day: date | None = None) -> list[dict[str, Any]]:
        """`GET /activity` (a management key): the billed usage per UTC day, model and provider
        endpoint, of the last 30 completed days or of `day`; retried as a generation is. Raises
        FatalAPIError when the key is refused (403: not a management key), ActivityError when the
        answer stays unusable."""
        url = f"{self.base_url}/activity" + ("?date=" if day is not None else "")
        outcome = await self._get(url, day.isoformat() if day is not None else "", data_type=list)
        if isinstance(outcome, Loaded):
            return orjson.loads(outcome.body)["data"]
        what = "not found (404)" if isinstance(outcome, NotFound) else outcome.last_error
        raise ActivityError(f"{self.base_url}/activity: {what}")

    async def _get(self, url: str, generation_id: str, slots: asyncio.Semaphore | None = None,
                   data_type: type = dict) -> Outcome:
        """The retry policy of the design, in one loop (see the module docstring). A 200 is usable
        when its JSON has a `data` of `data_type` (an object; /activity's is a list)."""
        policy = self.policy
        attempts = 0
        not_found = 0  # attempts answered 404; they spend not_found_attempts
        rate_limited = 0  # attempts answered 429; they spend rate_limited_attempts; the rest max_attempts
        while_down = 0  # connection failures while the whole client got no answer: they spend nothing
        while True:
            if self._refusal is not None and self._clock() < self._refuse_until:
                self.stats.refused_locally += 1
                refusal = self._refusal
                error = f"not sent: {refusal.last_error}"
                return Failed(generation_id, attempts, refusal.last_status, error, refusal.not_before)
            await self._wait_turn()
            attempts += 1
            if slots is None:
                verdict = await self._attempt(url, generation_id, data_type)
            else:
                async with slots:
                    verdict = await self._attempt(url, generation_id, data_type)

            if verdict.status is None:
                self._breaker.failed(self._clock())
                if self._breaker.failures >= policy.unreachable_min_failures:
                    while_down += 1  # the API looks down, not this id: the breaker decides
            else:
                self._breaker.answered()
                self._adaptive.answered(rate_limited=verdict.status == 429)
            if verdict.kind == "loaded":
                self._consecutive_429s = 0
                return Loaded(generation_id, verdict.body, attempts)
            if verdict.kind == "unusable":
                raise APIUnusableError(
                    f"{self.base_url} answered {verdict.error[:120]!r} without the API's JSON error: not the "
                    f"OpenRouter API (check --base-url / {config.BASE_URL_VARIABLE}); no id was marked")
            if verdict.kind == "fatal":
                self._fatal = FatalAPIError(verdict.status or 0, verdict.error, key_hint=self._key_hint)
                raise self._fatal
            if verdict.kind == "fail":
                return Failed(generation_id, attempts, verdict.status, verdict.error)
            if verdict.kind == "not_found":
                not_found += 1
                if not_found >= policy.not_found_attempts:
                    return NotFound(generation_id, attempts)

            server_wait_s = verdict.server_wait_s
            if server_wait_s is not None and server_wait_s > policy.max_wait_s:
                return self._refuse(generation_id, attempts, verdict, server_wait_s)
            if verdict.status == 429:
                self._consecutive_429s += 1
                rate_limited += 1
                self.stats.adaptive_rps = self._adaptive.rps
            if server_wait_s is not None:
                # The server named the time (a reset already past, or `Retry-After: 0`, means now).
                wait_s, shared = server_wait_s, server_wait_s > 0
            elif verdict.status == 429:
                # No usable wait from the server: the pause grows with the 429s the client got in a
                # row (any success resets it), not with this id's attempts, so an isolated 429 costs
                # every request a short pause and a burst of them a growing one.
                wait_s, shared = policy.backoff_s(self._consecutive_429s, self._rng), True
            else:
                wait_s, shared = policy.backoff_s(attempts, self._rng), False
            if shared:
                # The server spoke to the client, not to this id: every request waits (in
                # _wait_turn), even when this id has no attempts left.
                self._not_before = max(self._not_before, self._clock() + wait_s)
            if (verdict.kind != "not_found" and verdict.status != 429
                    and attempts - not_found - rate_limited - while_down >= policy.max_attempts) or (
                    rate_limited >= policy.rate_limited_attempts):
                return Failed(generation_id, attempts, verdict.status, f"{verdict.error} (after {attempts} attempts)")
            if (down_since := self._breaker.down_since()) is not None:
                raise APIUnreachableError(
                    f"API unreachable since {datetime.fromtimestamp(down_since, timezone.utc):%Y-%m-%d %H:%M:%S} UTC "
                    f"({self._breaker.failures:,} connection failures or timeouts in a row, no answer for "
                    f"{self._clock() - down_since:.0f} s): stopped; the ids not loaded stay queued for the next run")
            self.stats.retries += 1
            log.debug("retrying %s in %.2f s after %s (attempt %d)", generation_id, wait_s, verdict.error, attempts)
            if not shared:
                await self._sleep(wait_s)

    async def _wait_turn(self) -> None:
        """Wait for the shared "not before" time, then for a slot of the requests-per-second limit."""
        while (delay_s := self._not_before - self._clock()) > 0:
            self.stats.shared_waits += 1
            await self._sleep(min(delay_s, self.policy.max_wait_s))
        if self._limiter is not None:
            await self._limiter.acquire()

    async def _attempt(self, url: str, generation_id: str, data_type: type = dict) -> _Verdict:
        if self._fatal is not None:  # the key was refused: no request of this client may follow
            raise self._fatal
        # Paced here, right before sending (a request slot held): paced earlier, the ids that passed
        # while the rate was still unlimited would all go out together once slots freed up.
        await self._adaptive.acquire()
        self.stats.requests += 1
        request = httpx.Request("GET", url + quote(generation_id, safe=""), headers=self._headers, extensions=self._extensions)
        try:
            response = await self._transport.handle_async_request(request)
            try:
                body = await response.aread()
            finally:
                await response.aclose()
        except (httpx.RequestError, aiohttp.ClientError, OSError) as exc:
            self.stats.transport_errors += 1
            return _Verdict("retry", None, self._redact(_transport_error_text(exc)))
        status = response.status_code
        self.stats.by_status[status] += 1
        if status == 200:
            # An HTML page is retried (a captive portal passes), but only so many in a row: then a web
            # server, not the API, is at the base URL.
            self._html_pages_in_a_row = self._html_pages_in_a_row + 1 if body.lstrip()[:1] == b"<" else 0
            if self._html_pages_in_a_row >= _HTML_PAGES_UNUSABLE:
                return _Verdict("unusable", 200, f"HTTP 200 with an HTML page: {self._redact(_error_summary(body, None))}")
            problem = _body_problem(body, data_type)
            if problem is None:
                return _Verdict("loaded", 200, body=body)
            self.stats.invalid_bodies += 1
            return _Verdict("retry", 200, f"HTTP 200 with {problem}")
        error_json = _json_or_none(body)
        text = self._redact(_error_summary(body, error_json))
        if status == 404:
            self.stats.responses_404 += 1
            if not (isinstance(error_json, dict) and isinstance(error_json.get("error"), dict)):
                return _Verdict("unusable", 404, f"HTTP 404: {text}")
            return _Verdict("not_found", 404, f"HTTP 404: {text}")
        if status in FATAL_STATUSES:
            return _Verdict("fatal", status, text)
        if status in RETRIED_STATUSES:
            if status == 429:
                self.stats.responses_429 += 1
            wait_s = _server_wait_s(status, response.headers, error_json, self._clock())
            return _Verdict("retry", status, f"HTTP {status}: {text}", server_wait_s=wait_s)
        return _Verdict("fail", status, f"HTTP {status}: {text}")

    def _refuse(self, generation_id: str, attempts: int, verdict: _Verdict, wait_s: float) -> Failed:
        """Give up on a wait over the cap, and answer later ids the same until that time."""
        if not math.isfinite(wait_s) or wait_s > _LONGEST_WAIT_S:  # a server's `Retry-After: 1e12`
            wait_s = _LONGEST_WAIT_S
        until_epoch_s = self._clock() + wait_s
        until = datetime.fromtimestamp(until_epoch_s, tz=timezone.utc)
        error = (
            f"{verdict.error}; the API asks to wait {_duration(wait_s)} (until {until:%Y-%m-%dT%H:%M:%SZ}), "
            f"over the {self.policy.max_wait_s:g} s cap: left for a later run"
        )
        failed = Failed(generation_id, attempts, verdict.status, error, until)
        if verdict.status == 429:
            self._refuse_until = max(self._refuse_until, until_epoch_s)
            self._refusal = failed
        log.warning("%s: %s", generation_id, error)
        return failed

    def _redact(self, text: str) -> str:
        """API error texts are echoed to users; never let them carry the key back out."""
        return text.replace(self._api_key, "[redacted]") if self._api_key in text else text


class AdaptiveRate:
    """The rate the API tolerates, found from its answers. Unlimited until 429s make up more than
    `rate_limited_share` of the last `window_answers` answers (within `window_s`): then the rate is set just under the rate at which the API answered
    anything but 429 over those answers (a server-side limit lets that many through, whatever we
    send), at most once per `decrease_every_s`; between 429s it grows by `increase_share_per_s`
    of itself (at least 1 request/s) per second, probing for more. A share, not any 429: an API
    that answers a few 429s at any rate (a flaky upstream) says nothing about speed, and the rate
    it sets is the rate of successes, so such 429s barely move it.
    OpenRouter documents no limit for `/generation`, so none is assumed; `--max-rps` stays a hard
    cap on top (aiolimiter). A pacer, not a bucket: requests are spaced 1/rate apart (no bursts,
    which a per-second server limit punishes), and a new rate applies at once, which aiolimiter's
    fixed rate cannot do; hence this small class."""

    def __init__(self, *, clock: Callable[[], float], sleep: Sleep, rate_limited_share: float = 0.15,
                 window_answers: int = 100, window_s: float = 10.0, rate_window_s: float = 2.0,
                 below_success_rate: float = 0.9, increase_share_per_s: float = 0.01,
                 decrease_every_s: float = 1.0, min_rps: float = 1.0) -> None:
        self._clock = clock
        self._sleep = sleep
        self._share = rate_limited_share
        self._window_answers = window_answers
        self._window_s = window_s
        self._rate_window_s = rate_window_s
        self._below = below_success_rate
        self._increase = increase_share_per_s
        self._decrease_every_s = decrease_every_s
        self._min_rps = min_rps
        self.rps: float | None = None  # None: unlimited
        self._decreased_at = -math.inf
        self._increased_at = 0.0
        self._next_send = 0.0
        self._answers: deque[tuple[float, bool]] = deque()  # (when, was a 429), oldest first
        self._rate_limited = 0
        self._let_through: deque[float] = deque()  # when each answer other than 429 came, last rate_window_s
        self._first_answer_at: float | None = None

    def answered(self, *, rate_limited: bool) -> None:
        now = self._clock()
        if self._first_answer_at is None:
            self._first_answer_at = now
        if not rate_limited:
            self._let_through.append(now)
        while self._let_through and now - self._let_through[0] > self._rate_window_s:
            self._let_through.popleft()
        self._answers.append((now, rate_limited))
        self._rate_limited += rate_limited
        while self._answers and (len(self._answers) > self._window_answers or now - self._answers[0][0] > self._window_s):
            self._rate_limited -= self._answers.popleft()[1]
        if rate_limited:
            # Judged on a full window (or half its time): a few random 429s in a small sample must
            # not read as a limit (at 6% random 429s, 15 of 100 happens less than once in 1,000).
            judged = len(self._answers) == self._window_answers or now - self._answers[0][0] >= self._window_s / 2
            if (judged and self._rate_limited > self._share * len(self._answers)
                    and now - self._decreased_at >= self._decrease_every_s):
                span_s = max(min(now - self._first_answer_at, self._rate_window_s), 0.05)
                let_through_rps = len(self._let_through) / span_s
                self.rps = max(self._min_rps, self._below * let_through_rps)
                self._decreased_at = self._increased_at = now
                self._answers.clear()  # judge the new rate by its own answers
                self._rate_limited = 0
        elif self.rps is not None:
            self.rps += max(1.0, self._increase * self.rps) * (now - self._increased_at)
            self._increased_at = now

    async def acquire(self) -> None:
        if self.rps is None:
            return
        now = self._clock()
        send_at = max(now, self._next_send)
        self._next_send = send_at + 1.0 / self.rps
        if send_at > now:
            await self._sleep(send_at - now)


class _Breaker:
    """Trips when every request for `unreachable_after_s` (and at least `min_failures` in a row)
    failed to connect or timed out: the API is down, not slow."""

    def __init__(self, *, unreachable_after_s: float, min_failures: int) -> None:
        self._after_s = unreachable_after_s
        self._min_failures = min_failures
        self.failures = 0
        self._first_failure_at: float | None = None
        self._last_failure_at = 0.0

    def failed(self, now: float) -> None:
        self.failures += 1
        if self._first_failure_at is None:
            self._first_failure_at = now
        self._last_failure_at = now

    def answered(self) -> None:
        self.failures = 0
        self._first_failure_at = None

    def down_since(self) -> float | None:
        if (self._first_failure_at is not None and self.failures >= self._min_failures
                and self._last_failure_at - self._first_failure_at >= self._after_s):
            return self._first_failure_at
        return None


def _limiter(max_rps: float) -> AsyncLimiter:
    """A leaky bucket of a tenth of a second's worth: smooth, yet not a timer per request."""
    if max_rps <= 0:
        raise ValueError("max_rps must be positive")
    burst = max(1.0, max_rps / 10)
    return AsyncLimiter(burst, burst / max_rps)


def _json_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _body_problem(body: bytes, data_type: type = dict) -> str | None:
    """Why a 200 body is unusable (truncated, HTML, JSON without `data`), or None when it is fine."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"a truncated or non-JSON body ({len(body)} bytes)"
    if not isinstance(parsed, dict) or not isinstance(parsed.get("data"), data_type):
        return f"JSON without a `data` {'list' if data_type is list else 'object'}"
    return None


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _error_summary(body: bytes, error_json: Any) -> str:
    """A short error text: the API's message, an HTML page's title, or the start of the body."""
    if isinstance(error_json, dict):
        error = error_json.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return _shorten(error["message"])
        if isinstance(error, str):
            return _shorten(error)
    head = body[:8192]
    if b"<html" in head.lower() or b"<!doctype" in head.lower():
        title = _TITLE.search(head)
        text = title.group(1) if title else head
        summary = _SPACE.sub(" ", _TAG.sub(" ", text.decode("utf-8", "replace"))).strip()
        return _shorten(f"HTML page: {summary}" if summary else "HTML page")
    text = _SPACE.sub(" ", head.decode("utf-8", "replace")).strip()
    return _shorten(text) if text else "empty body"


def _shorten(text: str) -> str:
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= _ERROR_TEXT_MAX_CHARS else text[: _ERROR_TEXT_MAX_CHARS - 1] + "…"


def _transport_error_text(exc: BaseException) -> str:
    # httpx-aiohttp maps aiohttp errors loosely (a dropped connection becomes ConnectTimeout);
    # the original exception, kept as the cause, names what really happened.
    root = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
    name = type(root).__name__
    timed_out = isinstance(root, (TimeoutError, httpx.TimeoutException)) or "Timeout" in name
    detail = str(root)
    return _shorten(f"{'timeout' if timed_out else 'connection error'} ({name}{': ' + detail if detail else ''})")


def _server_wait_s(
    status: int, headers: httpx.Headers, error_json: Any, now_epoch_s: float
) -> float | None:
    """Seconds the server asked us to wait, or None when it did not say.

    `Retry-After` counts on any retried status; `X-RateLimit-Reset` only on a 429, because on
    other responses it only says when a window ends, not that the window is exhausted. The body's
    `error.metadata.headers` (where OpenRouter puts an upstream's limits) is read like headers.
    """
    sources: list[Mapping[str, str]] = [headers]
    if isinstance(error_json, dict):
        error = error_json.get("error")
        if isinstance(error, dict) and isinstance(error.get("metadata"), dict):
            body_headers = error["metadata"].get("headers")
            if isinstance(body_headers, dict):
                sources.append({str(k).lower(): str(v) for k, v in body_headers.items()})
    for source in sources:
        value = source.get("retry-after")
        if value is not None and (wait_s := _parse_retry_after(value, now_epoch_s)) is not None:
            return wait_s
    if status == 429:
        for source in sources:
            value = source.get("x-ratelimit-reset")
            if value is not None and (wait_s := _parse_reset(value, now_epoch_s)) is not None:
                return wait_s
    return None


def _parse_retry_after(value: str, now_epoch_s: float) -> float | None:
    """RFC 9110: delay-seconds or an HTTP date."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now_epoch_s)


def _parse_reset(value: str, now_epoch_s: float) -> float | None:
    """OpenRouter sends epoch milliseconds; a value too small for that is taken as epoch seconds.

    A reset that has just passed means the window turned over: retry now (0). One long past (the
    captured Google AI Studio 429 names a day a year earlier) says nothing usable: None, backoff.
    """
    try:
        number = float(value.strip())
    except ValueError:
        return None
    epoch_s = number / 1000 if number > 1e11 else number
    if epoch_s < now_epoch_s - _RESET_STALE_AFTER_S:
        return None
    return max(0.0, epoch_s - now_epoch_s)


_RESET_STALE_AFTER_S: Final = 60.0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{seconds:.1f} s"

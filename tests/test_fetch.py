"""The fetcher against the real fake API on loopback: nothing lost, nothing twice, bounded.

The server runs in a background thread (pipeline.fake_api.start_server); the client talks real
HTTP to it through the production transport, wrapped only to count requests in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from pipeline.client import Failed, FatalAPIError, Loaded, NotFound, OpenRouterClient, Outcome, RetryPolicy
from pipeline.fake_api import Dataset, Faults, start_server
from pipeline.fetch import IDS_PER_REQUEST_SLOT, fetch_generations

KEY = "sk-or-v1-fetch-tests-0123456789abcdef"
# Small waits so a retried id costs milliseconds, and enough attempts that 20% faults never
# exhaust them (0.2^12); 404s keep the default budget of 4.
FAST = RetryPolicy(max_attempts=12, backoff_initial_s=0.002, backoff_max_s=0.02)


class CountingTransport(httpx.AsyncBaseTransport):
    """The production transport, counting requests (body included) in flight."""

    def __init__(self) -> None:
        self.inner = AiohttpTransport()
        self.in_flight = 0
        self.max_in_flight = 0
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.sent += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await self.inner.handle_async_request(request)
            await response.aread()
            return response
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


def client_for(base_url: str, transport: httpx.AsyncBaseTransport, **kwargs) -> OpenRouterClient:
    kwargs.setdefault("policy", FAST)
    return OpenRouterClient(KEY, base_url=base_url, transport=transport, **kwargs)


def fetcher_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("fetch-")]


def test_every_id_is_fetched_once_through_20_percent_faults_and_missing_ids_are_not_found() -> None:
    dataset = Dataset(300, seed=7)
    existing, missing = list(dataset.ids), dataset.missing_ids(20)
    faults = Faults.transient(0.2, not_found_first=2, seed=3)
    transport = CountingTransport()

    async def run() -> list[Outcome]:
        async with client_for(server.base_url, transport) as client:
            return [o async for o in fetch_generations(iter(existing + missing), client, concurrency=16)]

    with start_server(dataset, api_key=KEY, faults=faults) as server:
        outcomes = asyncio.run(run())
        stats = server.stats

    assert Counter(o.generation_id for o in outcomes) == Counter(existing + missing)  # nothing lost or doubled
    by_id = {o.generation_id: o for o in outcomes}
    assert all(by_id[i] == Loaded(i, dataset.body(i), by_id[i].attempts) for i in existing)
    assert all(isinstance(by_id[i], NotFound) for i in missing)
    assert stats.ok_by_id == Counter(existing)  # one complete 200 per existing id, no refetch
    assert {"429", "500", "502_html", "524_html", "529", "drop", "truncated", "not_found_lag"} <= set(stats.by_fault)
    assert transport.max_in_flight == 16


@pytest.mark.parametrize("concurrency", [1, 5])
def test_requests_in_flight_never_exceed_the_concurrency(concurrency: int) -> None:
    dataset = Dataset(60, seed=1)
    transport = CountingTransport()

    async def run() -> list[Outcome]:
        async with client_for(server.base_url, transport) as client:
            return [o async for o in fetch_generations(dataset.ids, client, concurrency=concurrency)]

    with start_server(dataset, api_key=KEY, faults=Faults(latency_ms=2)) as server:
        outcomes = asyncio.run(run())
    assert len(outcomes) == 60 and all(isinstance(o, Loaded) for o in outcomes)
    assert transport.max_in_flight == concurrency


def test_a_429_slows_down_every_worker_not_just_the_one_that_got_it() -> None:
    dataset = Dataset(200, seed=2)
    # Resets 100 ms ahead, given in the body's error.metadata.headers (as OpenRouter relays them).
    faults = Faults(rate_429=0.03, retry_after_s=0.1, rate_limit_in_body_share=1.0, seed=5)
    transport = CountingTransport()

    async def run() -> tuple[list[Outcome], int, int]:
        async with client_for(server.base_url, transport) as client:
            outcomes = [o async for o in fetch_generations(dataset.ids, client, concurrency=8)]
            return outcomes, client.stats.responses_429, client.stats.shared_waits

    with start_server(dataset, api_key=KEY, faults=faults) as server:
        outcomes, responses_429, shared_waits = asyncio.run(run())
    assert all(isinstance(o, Loaded) for o in outcomes) and len(outcomes) == 200
    assert responses_429 >= 1
    # Were only the 429'd ids to wait, there would be about one wait per 429; the whole client
    # waiting means the other workers' next requests wait too.
    assert shared_waits >= 3 * responses_429


def test_a_requests_per_second_limit_keeps_the_client_under_the_server_limit() -> None:
    dataset = Dataset(130, seed=10)
    # The server allows bursts of 100 then 100 per second, and answers 429 beyond; the client
    # holds itself to 80 per second, so no request is ever refused. Without the limit, the 64
    # workers would send all 130 at once and get ~30 429s.
    faults = Faults(max_rps=100)

    async def run() -> tuple[list[Outcome], int]:
        async with client_for(server.base_url, CountingTransport(), max_rps=80) as client:
            outcomes = [o async for o in fetch_generations(dataset.ids, client, concurrency=64)]
            return outcomes, client.stats.responses_429

    with start_server(dataset, api_key=KEY, faults=faults) as server:
        outcomes, responses_429 = asyncio.run(run())
        limited = server.stats.by_fault["rate_limited"]
    assert len(outcomes) == 130 and all(isinstance(o, Loaded) for o in outcomes)
    assert responses_429 == 0 and limited == 0


def test_cancelling_the_consumer_stops_every_worker_and_keeps_what_was_yielded() -> None:
    dataset = Dataset(2000, seed=3)
    received: list[Outcome] = []

    async def consume(client: OpenRouterClient, enough: asyncio.Event) -> None:
        async with contextlib.aclosing(fetch_generations(dataset.ids, client, concurrency=8)) as outcomes:
            async for outcome in outcomes:
                received.append(outcome)
                if len(received) == 50:
                    enough.set()

    async def run() -> tuple[int, int, list[asyncio.Task]]:
        async with client_for(server.base_url, CountingTransport()) as client:
            enough = asyncio.Event()
            consumer = asyncio.create_task(consume(client, enough))
            await enough.wait()
            consumer.cancel()  # what Ctrl-C does to asyncio.run's main task
            with pytest.raises(asyncio.CancelledError):
                await consumer
            left = fetcher_tasks()
            sent_at_cancel = client.stats.requests
            await asyncio.sleep(0.05)
            return sent_at_cancel, client.stats.requests, left

    with start_server(dataset, api_key=KEY, faults=Faults(latency_ms=5)) as server:
        sent_at_cancel, sent_later, left = asyncio.run(run())
    assert left == []  # every worker and the feeder are gone once the consumer is
    assert sent_later == sent_at_cancel  # and nothing is sent afterwards
    assert len(received) >= 50 and len({o.generation_id for o in received}) == len(received)
    assert all(o == Loaded(o.generation_id, dataset.body(o.generation_id), 1) for o in received)


def test_a_refused_key_stops_the_run_promptly_after_yielding_what_finished() -> None:
    dataset = Dataset(1000, seed=4)
    faults = Faults(fatal_after=100, fatal_status=402)
    received: list[Outcome] = []

    async def run() -> list[asyncio.Task]:
        async with client_for(server.base_url, CountingTransport()) as client:
            with pytest.raises(FatalAPIError) as raised:
                async for outcome in fetch_generations(dataset.ids, client, concurrency=8):
                    received.append(outcome)
            assert raised.value.status == 402 and KEY not in str(raised.value)
            return fetcher_tasks()

    with start_server(dataset, api_key=KEY, faults=faults) as server:
        left = asyncio.run(run())
        fatal_answers = server.stats.by_fault["fatal"]
    assert left == []
    assert 1 <= fatal_answers <= 8  # at most the requests already in flight; no hammering
    assert 90 <= len(received) <= 100 and all(isinstance(o, Loaded) for o in received)


def test_a_million_ids_never_means_a_million_tasks() -> None:
    dataset = Dataset(500, seed=5)
    pulled = 0
    concurrency = 16
    worst = {"read_ahead": 0, "tasks": 0}

    async def a_million_ids() -> AsyncIterator[str]:
        nonlocal pulled
        for generation_id in itertools.islice(itertools.cycle(dataset.ids), 1_000_000):
            pulled += 1
            yield generation_id

    async def run() -> int:
        yielded = 0
        async with client_for(server.base_url, CountingTransport()) as client:
            async with contextlib.aclosing(fetch_generations(a_million_ids(), client, concurrency=concurrency)) as outcomes:
                async for _ in outcomes:
                    yielded += 1
                    worst["read_ahead"] = max(worst["read_ahead"], pulled - yielded)
                    worst["tasks"] = max(worst["tasks"], len(asyncio.all_tasks()))
                    if yielded == 1500:
                        break
        return yielded

    with start_server(dataset, api_key=KEY) as server:
        assert asyncio.run(run()) == 1500
    workers = concurrency * IDS_PER_REQUEST_SLOT
    assert worst["tasks"] <= workers + 2  # the workers, the feeder, this test's main task
    assert worst["read_ahead"] <= workers + 2 * concurrency + 1  # ids queued + in progress + done, no more
    assert pulled <= 1500 + workers + 2 * concurrency + 1


def test_an_error_in_the_id_source_reaches_the_caller() -> None:
    dataset = Dataset(10, seed=6)

    def ids_then_a_bad_file() -> Iterator[str]:
        yield from dataset.ids
        raise ValueError("logs/app.log:12: unreadable")

    async def run() -> list[Outcome]:
        got: list[Outcome] = []
        async with client_for(server.base_url, CountingTransport()) as client:
            with pytest.raises(ValueError, match="app.log:12"):
                async for outcome in fetch_generations(ids_then_a_bad_file(), client, concurrency=4):
                    got.append(outcome)
        return got

    with start_server(dataset, api_key=KEY) as server:
        got = asyncio.run(run())
    assert all(isinstance(o, Loaded) for o in got)


def test_content_endpoint_is_fetched_when_asked() -> None:
    dataset = Dataset(20, seed=8)

    async def run() -> list[Outcome]:
        async with client_for(server.base_url, CountingTransport()) as client:
            return [o async for o in fetch_generations(dataset.ids, client, concurrency=4, content=True)]

    with start_server(dataset, api_key=KEY) as server:
        outcomes = asyncio.run(run())
        stats = server.stats
    assert all(isinstance(o, Loaded) for o in outcomes) and len(outcomes) == 20
    assert stats.content_ok_by_id == Counter(dataset.ids) and not stats.ok_by_id


def test_a_wrong_key_is_fatal_and_never_shown() -> None:
    dataset = Dataset(5, seed=9)

    async def run() -> None:
        async with OpenRouterClient("sk-or-v1-wrong-key-123456", base_url=server.base_url, policy=FAST) as client:
            async for _ in fetch_generations(dataset.ids, client, concurrency=2):
                pass

    with start_server(dataset, api_key=KEY) as server, pytest.raises(FatalAPIError) as raised:
        asyncio.run(run())
    assert raised.value.status == 401 and "OPENROUTER_API_KEY" in str(raised.value)
    assert "sk-or-v1-wrong-key-123456" not in str(raised.value)



def test_an_unreachable_server_ends_each_id_failed_with_the_connection_error() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def run() -> list[Outcome]:
        policy = RetryPolicy(max_attempts=2, backoff_initial_s=0.001, backoff_max_s=0.001)
        async with OpenRouterClient(KEY, base_url=f"http://127.0.0.1:{port}/api/v1", policy=policy) as client:
            return [o async for o in fetch_generations(["gen-1771967973-0hZ8J5kY7qLMOKbPx0u3"], client)]

    [outcome] = asyncio.run(run())
    assert isinstance(outcome, Failed) and outcome.attempts == 2 and outcome.last_status is None
    assert outcome.last_error.startswith("connection error (ClientConnectorError: Cannot connect to host 127.0.0.1")

"""Many ids at once: a fixed pool of workers, outcomes streamed back as they finish.

Memory stays bounded whatever the number of ids: a fixed pool of workers pulls ids from a small
queue fed by one task reading the caller's (async) iterable, and hands outcomes back through a
small queue. So a million ids means a few hundred tasks at most, never a million tasks or
futures. When the caller is slow the workers wait for it (backpressure) instead of piling up
results.

`concurrency` bounds the requests on the wire, not the ids in progress: there are
`IDS_PER_REQUEST_SLOT` workers per slot, and a worker holds a slot only while its request is in
flight. An id waiting out a backoff (a 404 of a fresh generation, a 5xx) then does not idle a
slot: with one slot per id, 404 lag alone held a 3,000-id run to ~45 ids/s here; with eight
workers per slot the same run is bound by the requests, not by the waits.

Rate limits live in the client (its requests-per-second limiter and the shared "not before" time
a 429 sets), so every worker slows down together. Ids are not deduplicated here: the queue in the
warehouse already holds each id once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Final

from pipeline.client import OpenRouterClient, Outcome

IDS_PER_REQUEST_SLOT: Final = 8
_FIRST_GUESS_BODY_BYTES: Final = 256 * 1024  # see _BytesInHand
_NO_MORE_IDS: Final = object()  # the feeder ran out of ids
_WORKER_DONE: Final = object()  # a worker saw _NO_MORE_IDS and stopped


class _BytesInHand:
    """The bytes of bodies received and not yet handed to the caller, plus those expected from the
    requests in flight (at the running mean body size), against a budget: with big bodies fewer
    requests run at once, with small ones all of them. With nothing in hand nor in flight, one
    request may run, whatever its size."""

    def __init__(self, budget: int | None) -> None:
        self._budget = budget
        self._bytes = 0
        self._in_flight = 0
        self._mean_body = float(_FIRST_GUESS_BODY_BYTES)  # until bodies tell: so a first burst of workers cannot all start
        self._changed = asyncio.Event()

    def _full(self) -> bool:
        expected = self._bytes + (self._in_flight + 1) * self._mean_body
        idle = self._in_flight == 0 and self._bytes == 0  # then one request runs, whatever its size
        return self._budget is not None and not idle and expected > self._budget

    async def wait_for_room(self) -> None:
        while self._full():
            self._changed.clear()
            await self._changed.wait()
        self._in_flight += 1

    def add(self, outcome: Outcome) -> None:
        size = len(getattr(outcome, "body", b""))
        self._in_flight -= 1
        self._bytes += size
        self._mean_body += (size - self._mean_body) * 0.25
        self._changed.set()

    def remove(self, outcome: Outcome) -> None:
        self._bytes -= len(getattr(outcome, "body", b""))
        self._changed.set()


class _Raise:
    """An exception carried from a worker or the feeder to the caller, in order with outcomes."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


async def fetch_generations(
    ids: Iterable[str] | AsyncIterable[str],
    client: OpenRouterClient,
    *,
    concurrency: int = 32,
    content: bool = False,
    ids_per_slot: int = IDS_PER_REQUEST_SLOT,
    max_bytes_in_hand: int | None = None,
) -> AsyncIterator[Outcome]:
    """Yield one outcome per id, in completion order, with at most `concurrency` requests in flight.

    `max_bytes_in_hand` bounds the bodies received and not yet yielded, with those the requests in
    flight are expected to bring (content bodies can be megabytes): a request starts only if they
    fit. A body far over the mean may still overshoot it once.

    A `FatalAPIError` stops every worker and is raised to the caller once the outcomes finished
    before it have been yielded. Cancelling the caller (Ctrl-C) stops the workers at once; the
    outcomes yielded so far are the caller's. Use `contextlib.aclosing` when breaking out early,
    so the workers stop at once rather than when the generator is garbage-collected.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    get: Callable[..., Awaitable[Outcome]] = client.get_generation_content if content else client.get_generation
    workers_count = concurrency * ids_per_slot
    slots = asyncio.Semaphore(concurrency)
    todo: asyncio.Queue[object] = asyncio.Queue(maxsize=concurrency)
    done: asyncio.Queue[object] = asyncio.Queue(maxsize=concurrency)
    stopping = asyncio.Event()
    in_hand = _BytesInHand(max_bytes_in_hand)

    async def feed() -> None:
        try:
            if isinstance(ids, AsyncIterable):
                async for generation_id in ids:
                    await todo.put(generation_id)
            else:
                for generation_id in ids:
                    await todo.put(generation_id)
        except Exception as exc:  # a bad id source stops the run like a fatal error
            stopping.set()
            await done.put(_Raise(exc))
        for _ in range(workers_count):
            await todo.put(_NO_MORE_IDS)

    async def work() -> None:
        while not stopping.is_set():
            generation_id = await todo.get()
            if generation_id is _NO_MORE_IDS:
                break
            try:
                await in_hand.wait_for_room()
                outcome = await get(generation_id, slots=slots)  # type: ignore[arg-type]
                in_hand.add(outcome)
            except Exception as exc:  # FatalAPIError; anything else is a bug, stopped the same way
                stopping.set()
                await done.put(_Raise(exc))
                break
            await done.put(outcome)
        await done.put(_WORKER_DONE)

    feeder = asyncio.create_task(feed(), name="fetch-feeder")
    workers = [asyncio.create_task(work(), name=f"fetch-worker-{n}") for n in range(workers_count)]
    try:
        running = workers_count
        while running:
            item = await done.get()
            if item is _WORKER_DONE:
                running -= 1
            elif isinstance(item, _Raise):
                raise item.exc
            else:
                in_hand.remove(item)  # type: ignore[arg-type]
                yield item  # type: ignore[misc]
    finally:
        for task in (feeder, *workers):
            task.cancel()
        await asyncio.gather(feeder, *workers, return_exceptions=True)

"""Many ids at once: a fixed pool of workers, outcomes streamed back as they finish.

Memory stays bounded whatever the number of ids: `concurrency` workers pull ids from a small
queue fed by one task reading the caller's (async) iterable, and hand outcomes back through a
queue of the same size. So a million ids means `concurrency + 1` tasks and at most about
`3 * concurrency` ids read ahead, never a million tasks or futures. When the caller is slow the
workers wait for it (backpressure) instead of piling up results.

Rate limits live in the client (its requests-per-second limiter and the shared "not before" time
a 429 sets), so every worker slows down together. Ids are not deduplicated here: the queue in the
warehouse already holds each id once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Final

from pipeline.client import OpenRouterClient, Outcome

_NO_MORE_IDS: Final = object()  # the feeder ran out of ids
_WORKER_DONE: Final = object()  # a worker saw _NO_MORE_IDS and stopped


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
) -> AsyncIterator[Outcome]:
    """Yield one outcome per id, in completion order, with at most `concurrency` requests in flight.

    A `FatalAPIError` stops every worker and is raised to the caller once the outcomes finished
    before it have been yielded. Cancelling the caller (Ctrl-C) stops the workers at once; the
    outcomes yielded so far are the caller's. Use `contextlib.aclosing` when breaking out early,
    so the workers stop at once rather than when the generator is garbage-collected.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    get: Callable[[str], Awaitable[Outcome]] = client.get_generation_content if content else client.get_generation
    todo: asyncio.Queue[object] = asyncio.Queue(maxsize=concurrency)
    done: asyncio.Queue[object] = asyncio.Queue(maxsize=concurrency)
    stopping = asyncio.Event()

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
        for _ in range(concurrency):
            await todo.put(_NO_MORE_IDS)

    async def work() -> None:
        while not stopping.is_set():
            generation_id = await todo.get()
            if generation_id is _NO_MORE_IDS:
                break
            try:
                outcome = await get(generation_id)  # type: ignore[arg-type]
            except Exception as exc:  # FatalAPIError; anything else is a bug, stopped the same way
                stopping.set()
                await done.put(_Raise(exc))
                break
            await done.put(outcome)
        await done.put(_WORKER_DONE)

    feeder = asyncio.create_task(feed(), name="fetch-feeder")
    workers = [asyncio.create_task(work(), name=f"fetch-worker-{n}") for n in range(concurrency)]
    try:
        running = concurrency
        while running:
            item = await done.get()
            if item is _WORKER_DONE:
                running -= 1
            elif isinstance(item, _Raise):
                raise item.exc
            else:
                yield item  # type: ignore[misc]
    finally:
        for task in (feeder, *workers):
            task.cancel()
        await asyncio.gather(feeder, *workers, return_exceptions=True)

"""Many listings at once, never more than `concurrency` of them running."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Generic, Self, TypeVar

import attrs

from .aio import AsyncClosing
from .errors import ApiError

K = TypeVar("K")
R = TypeVar("R")


@attrs.frozen
class _Raise:
    """Put on the queue by a worker: the consumer raises it."""

    error: BaseException


_WORKER_DONE = object()
_CLOSED = object()


@attrs.frozen
class _Work(Generic[K, R]):
    """What the workers share; not the fan-out itself, so that a fan-out dropped
    without `aclose()` is collected, and its finalizer stops them."""

    run: Callable[[K], Awaitable[R]]
    on_error: Callable[[K, ApiError], R]
    keys: Iterator[K]
    queue: asyncio.Queue[object]
    fail_fast: bool


class FanOut(AsyncClosing, Generic[K, R]):
    """`run(key)` for every key, results in the order they complete.

    A fixed pool of `concurrency` workers takes the keys in turn; each runs one key at a
    time, so if `run` makes one request at a time, at most `concurrency` requests are in
    flight whatever the number of keys. Results wait in a queue of `concurrency` places:
    a slow consumer pauses the workers instead of piling results up. A key's `ApiError`
    becomes `on_error(key, error)`, its result; with `fail_fast`, the first error closes
    the fan-out and is raised. Use `async with` (or `aclose()`) to stop early with
    nothing left running; closing it from another task ends its iteration. One task
    at a time may iterate it.
    """

    def __init__(
        self,
        run: Callable[[K], Awaitable[R]],
        keys: list[K],
        *,
        on_error: Callable[[K, ApiError], R],
        concurrency: int,
        fail_fast: bool = False,
    ) -> None:
        self._work: _Work[K, R] = _Work(
            run, on_error, iter(keys), asyncio.Queue(maxsize=concurrency), fail_fast
        )
        self._total = len(keys)
        self._concurrency = concurrency
        self._workers: list[asyncio.Task[None]] = []
        self._running = 0
        self._started = False
        self._closed = False
        self._busy = False
        self._delivered = 0

    @property
    def total(self) -> int:
        """How many distinct keys are run."""
        return self._total

    @property
    def delivered(self) -> int:
        """How many results have been handed out so far."""
        return self._delivered

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<FanOut {state}, {self._delivered}/{self._total} done>"

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> R:
        if self._closed:
            raise StopAsyncIteration
        if self._busy:
            raise RuntimeError("this fan-out is already being iterated by another task")
        self._busy = True
        try:
            return await self._next()
        finally:
            self._busy = False

    async def _next(self) -> R:
        if not self._started:
            self._start()
        queue = self._work.queue
        while self._running or not queue.empty():
            try:
                item = await queue.get()
            except BaseException:
                await self.aclose()
                raise
            if item is _CLOSED or self._closed:
                raise StopAsyncIteration
            if item is _WORKER_DONE:
                self._running -= 1
                continue
            if isinstance(item, _Raise):
                await self.aclose()
                raise item.error
            self._delivered += 1
            return item  # type: ignore[return-value]
        await self.aclose()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop: cancel every worker and its request, and wait until they have stopped."""
        self._closed = True
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.cancel()
        if workers:
            await asyncio.wait(workers)
        with contextlib.suppress(asyncio.QueueFull):  # full: nobody is waiting on it
            self._work.queue.put_nowait(_CLOSED)  # wakes a consumer in another task

    def __del__(self) -> None:
        # A fan-out dropped without aclose(): stop its workers rather than leak them.
        for worker in getattr(self, "_workers", ()):
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                worker.cancel()

    def _start(self) -> None:
        self._started = True
        count = min(self._concurrency, self._total)
        self._running = count
        self._workers = [
            asyncio.create_task(_work(self._work), name=f"pg-backups-async fan-out worker {n}")
            for n in range(count)
        ]


async def _work(work: _Work[K, R]) -> None:
    """One worker: keys in turn until none is left (each key is taken by one worker)."""
    try:
        for key in work.keys:
            try:
                result = await work.run(key)
            except ApiError as error:
                if work.fail_fast:
                    await work.queue.put(_Raise(error))
                    return
                result = work.on_error(key, error)
            await work.queue.put(result)
    except Exception as error:  # noqa: BLE001 - a bug: the consumer raises it
        await work.queue.put(_Raise(error))
    await work.queue.put(_WORKER_DONE)

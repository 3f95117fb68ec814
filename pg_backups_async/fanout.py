"""Many clusters' backups at once, never more than `concurrency` requests in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Self

import attrs

from .errors import ApiError
from .models import Backup, ClusterBackups
from .paging import AsyncClosing

ListCluster = Callable[[str], Awaitable[tuple[Backup, ...]]]
"""Lists one cluster's backups, one request at a time."""


@attrs.frozen
class _WorkerFailed:
    error: BaseException


_WORKER_DONE = object()


class FanOut(AsyncClosing):
    """`ClusterBackups` for each cluster id, in the order they complete.

    A fixed pool of `concurrency` workers takes the ids in turn; each lists one cluster
    at a time, one page at a time, so at most `concurrency` requests are in flight
    whatever the number of ids. Results wait in a queue of `concurrency` places: a
    slow consumer pauses the workers instead of piling results up. One cluster's
    `ApiError` is its result's `error`; with `fail_fast`, the first error closes the
    fan-out and is raised. Use `async with` (or `aclose()`) to stop early with
    nothing left running.
    """

    def __init__(
        self,
        list_cluster: ListCluster,
        cluster_ids: list[str],
        *,
        concurrency: int,
        fail_fast: bool = False,
    ) -> None:
        self._list_cluster = list_cluster
        self._ids = iter(cluster_ids)
        self._total = len(cluster_ids)
        self._concurrency = concurrency
        self._fail_fast = fail_fast
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=concurrency)
        self._workers: list[asyncio.Task[None]] = []
        self._running = 0
        self._started = False
        self._closed = False
        self._delivered = 0

    @property
    def total(self) -> int:
        """How many distinct clusters are listed."""
        return self._total

    @property
    def delivered(self) -> int:
        """How many results have been handed out so far."""
        return self._delivered

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<FanOut {state}, {self._delivered}/{self._total} clusters>"

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ClusterBackups:
        if self._closed:
            raise StopAsyncIteration
        if not self._started:
            self._start()
        while self._running or not self._queue.empty():
            try:
                item = await self._queue.get()
            except BaseException:
                await self.aclose()
                raise
            if item is _WORKER_DONE:
                self._running -= 1
                continue
            if isinstance(item, _WorkerFailed):
                await self.aclose()
                raise item.error
            assert isinstance(item, ClusterBackups)
            if self._fail_fast and item.error is not None:
                await self.aclose()
                raise item.error
            self._delivered += 1
            return item
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

    def _start(self) -> None:
        self._started = True
        count = min(self._concurrency, self._total)
        self._running = count
        self._workers = [
            asyncio.create_task(self._work(), name=f"pg-backups-async fan-out worker {n}")
            for n in range(count)
        ]

    async def _work(self) -> None:
        try:
            for cluster_id in self._ids:  # shared: each id is taken by one worker
                try:
                    result = ClusterBackups(cluster_id, await self._list_cluster(cluster_id))
                except ApiError as error:
                    result = ClusterBackups(cluster_id, error=error)
                await self._queue.put(result)
        except Exception as error:  # noqa: BLE001 - a bug: the consumer raises it
            await self._queue.put(_WorkerFailed(error))
        await self._queue.put(_WORKER_DONE)

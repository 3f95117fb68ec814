"""A limit on the load clients put on the service: their request rate."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Awaitable, Callable

from .checks import check_positive


class RateLimiter:
    """At most `rate` requests a second, evenly spaced, for every caller sharing it.

    Each caller is given the next free slot. A caller cancelled while it waits gives
    its slot back, for the next caller to take; a caller that would wait longer than
    it may (`acquire(within=...)`) takes no slot. `clock` and `sleep` are seams for
    tests: time that takes no time.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = check_positive(rate, "requests_per_second")
        self._interval = 1 / self.rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._freed: list[float] = []  # slots given back by cancelled waiters, a heap
        self.acquired = 0
        """Slots granted so far."""

    async def acquire(self, within: float | None = None) -> bool:
        """Wait for this request's turn; True once it has come.

        With `within` (seconds), a turn that would come later is not waited for: False
        at once, and no slot is taken.
        """
        now = self._clock()
        freed = self._freed
        while freed and freed[0] < now:
            heapq.heappop(freed)  # a slot given back, but already past
        if freed:
            start = freed[0]
            if within is not None and start - now > within:
                return False
            heapq.heappop(freed)
        else:
            start = max(self._next, now)
            if within is not None and start - now > within:
                return False
            self._next = start + self._interval
        if start > now:
            try:
                await self._sleep(start - now)
            except asyncio.CancelledError:
                self._give_back(start)
                raise
        self.acquired += 1
        return True

    def _give_back(self, start: float) -> None:
        if start + self._interval == self._next:
            self._next = start  # the last slot taken: the next caller starts there
        else:
            heapq.heappush(self._freed, start)

    def __repr__(self) -> str:
        return f"<RateLimiter {self.rate:g}/s>"

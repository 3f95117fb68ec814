"""A limit on the load clients put on the service: their request rate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from .checks import check_positive


class RateLimiter:
    """At most `rate` requests a second, evenly spaced, for every caller sharing it."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = check_positive(rate, "requests_per_second")
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self.acquired = 0

    async def acquire(self) -> None:
        """Wait for this request's turn."""
        self.acquired += 1
        now = self._clock()
        start = max(self._next, now)
        self._next = start + 1 / self.rate
        if start > now:
            await self._sleep(start - now)

    def __repr__(self) -> str:
        return f"<RateLimiter {self.rate:g}/s>"

"""Limits on the load a client puts on the service: a shared retry budget, a request rate."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable

from .errors import ApiError, NetworkError

RETRY_COST = 5
NETWORK_RETRY_COST = 10  # timeouts and resets cost more: they tie up a connection
SUCCESS_REFUND = 1


class RetryBudget:
    """Retries cost tokens from one budget per client; successes earn some back.

    In the spirit of botocore's retry quota: while the service is healthy the budget
    stays full; during an outage it drains, and further failures are raised at once
    instead of being retried, so a fan-out degrades to fast failures rather than
    multiplying its load by the retry count.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.available = capacity
        self.refused = 0
        self._held: weakref.WeakKeyDictionary[BaseException, int] = weakref.WeakKeyDictionary()

    def acquire(self, error: ApiError) -> bool:
        """Take the cost of retrying after `error`; False when the budget cannot pay it."""
        cost = NETWORK_RETRY_COST if isinstance(error, NetworkError) else RETRY_COST
        if cost > self.available:
            self.refused += 1
            return False
        self.available -= cost
        self._held[error] = cost
        return True

    def unused(self, error: BaseException) -> None:
        """The retry paid for after `error` did not happen: give its cost back."""
        self.available = min(self.capacity, self.available + self._held.pop(error, 0))

    def succeeded(self, retried: bool) -> None:
        """A request succeeded, at once or after retries: refill a little."""
        refund = RETRY_COST if retried else SUCCESS_REFUND
        self.available = min(self.capacity, self.available + refund)

    def __repr__(self) -> str:
        return f"<RetryBudget {self.available}/{self.capacity}>"


class RateLimiter:
    """At most `rate` requests a second, evenly spaced, for every caller sharing it."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
            raise ValueError(f"requests_per_second must be a positive number, got {rate!r}")
        self.rate = float(rate)
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

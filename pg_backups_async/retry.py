"""Retrying idempotent requests: which failures, how long to wait, when to stop.

One `Retrying` loop serves one logical call. Every request the call makes (the token
exchange's and the API's) draws on its attempts and its single deadline, and every
retry is paid for from the client's shared `RetryBudget`. The waits come from
`backoff`'s exponential generator with full jitter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import attrs
import backoff

from .checks import check_int, check_optional_int, check_positive
from .errors import ApiError, NetworkError
from .sanitize import printable

log = logging.getLogger("pg_backups_async")
log.addHandler(logging.NullHandler())

_T = TypeVar("_T")

RETRY_COST = 5
NETWORK_RETRY_COST = 10  # timeouts and resets cost more: they tie up a connection
SUCCESS_REFUND = 1


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    check_positive(value, attribute.name)


def _attempts(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    check_int(value, attribute.name, minimum=1)


def _budget(instance: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    check_optional_int(value, attribute.name, minimum=1)


@attrs.frozen
class RetryPolicy:
    """When and how a failed request is repeated.

    Retried: HTTP 429, 500, 502, 503, 504 and failed connections, with exponential
    backoff and full jitter (a wait drawn from 0 to `base_delay * 2**n`, at most
    `max_delay`). A `Retry-After` header is honoured, clamped to `max_retry_after`.
    At most `max_attempts` attempts within `max_time` seconds for the whole call, the
    IAM token included; an attempt still running at `max_time` is cut off. A client's
    retries draw on one `budget` of tokens (a retry costs 5, or 10 after a timeout or
    reset; a success earns 1 back, or 5 after retries); when it runs dry, failures are
    raised at once. `budget=None` turns the budget off.
    """

    max_attempts: int = attrs.field(default=5, validator=_attempts)
    max_time: float = attrs.field(default=60.0, validator=_positive)
    base_delay: float = attrs.field(default=0.5, validator=_positive)
    max_delay: float = attrs.field(default=20.0, validator=_positive)
    max_retry_after: float = attrs.field(default=30.0, validator=_positive)
    budget: int | None = attrs.field(default=500, validator=_budget)

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """One attempt, no retries."""
        return cls(max_attempts=1)

    def ceilings(self) -> Iterator[float]:
        """The upper bounds of successive waits: `backoff.expo` from `base_delay`."""
        waits = backoff.expo(factor=self.base_delay, max_value=self.max_delay)
        next(waits)  # backoff's generators are primed before their first value
        return waits

    def wait(self, retry: int, error: BaseException | None) -> float:
        """Seconds to wait before retry number `retry` (from 1) after `error`."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(min(retry_after, self.max_retry_after))
        ceilings = self.ceilings()
        for _ in range(retry - 1):
            next(ceilings)
        return backoff.full_jitter(next(ceilings))


class RetryBudget:
    """Retries cost tokens from one budget per client; successes earn some back.

    In the spirit of botocore's retry quota: while the service is healthy the budget
    stays full; during an outage it drains, and further failures are raised at once
    instead of being retried, so a fan-out degrades to fast failures rather than
    multiplying its load by the retry count.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = check_int(capacity, "budget", minimum=1)
        self.available = capacity
        self.refused = 0

    def acquire(self, error: ApiError) -> bool:
        """Take the cost of retrying after `error`; False when the budget cannot pay it."""
        cost = NETWORK_RETRY_COST if isinstance(error, NetworkError) else RETRY_COST
        if cost > self.available:
            self.refused += 1
            return False
        self.available -= cost
        return True

    def succeeded(self, retried: bool) -> None:
        """A request succeeded, at once or after retries: refill a little."""
        refund = RETRY_COST if retried else SUCCESS_REFUND
        self.available = min(self.capacity, self.available + refund)

    def __repr__(self) -> str:
        return f"<RetryBudget {self.available}/{self.capacity}>"


def describe(error: ApiError) -> str:
    """An error for a log line: status, both request ids, message (control characters
    escaped, so that a server's text cannot forge a line)."""
    status = error.http_status if error.http_status is not None else "no answer"
    server = f", request id {error.request_id}" if error.request_id else ""
    return printable(
        f"status {status}, client request id {error.client_request_id}{server}: {error.message}"
    )


class Retrying:
    """One logical call's retry loop: its attempts, its waits and its deadline.

    `deadline` is on the `clock` (the event loop's by default); `sleep` waits, and
    tests pass their own so that retry timing takes no real time.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        budget: RetryBudget | None = None,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.policy = policy
        self._budget = budget
        self._clock = clock or asyncio.get_running_loop().time
        self._sleep = sleep
        self._ceilings: Iterator[float] | None = None  # made on the first retry
        self.deadline = self._clock() + policy.max_time
        self.attempts = 0
        """Attempts made so far, by every `run` of this call."""

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it has passed)."""
        return self.deadline - self._clock()

    async def run(
        self,
        attempt: Callable[[], Awaitable[_T]],
        *,
        retry: bool = True,
        report: Callable[[int, ApiError | None, float | None], None] | None = None,
    ) -> _T:
        """`attempt()` until it succeeds or the policy gives up; the last error is raised.

        The first attempt of a run is always made; only `ApiError`s that are
        `retryable` are retried, and cancellation never is. `retry=False` makes one
        attempt. `report(attempt, error, wait)` is told how each attempt ended, and the
        wait before the next (None when there is none).
        """
        retried = False
        while True:
            self.attempts += 1
            try:
                result = await attempt()
            except ApiError as error:
                wait = self._wait_before_retry(error) if retry else None
                if report is not None:
                    report(self.attempts, error, wait)
                if wait is None:
                    raise
                log.debug(
                    "retrying after attempt %d in %.2fs (%s)",
                    self.attempts,
                    wait,
                    describe(error),
                )
                retried = True
                await self._sleep(wait)
                continue
            if self._budget is not None:
                self._budget.succeeded(retried=retried)
            if report is not None:
                report(self.attempts, None, None)
            return result

    def _wait_before_retry(self, error: ApiError) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if not error.retryable:
            return None
        policy = self.policy
        if error.retry_after is not None:
            wait = policy.wait(self.attempts, error)  # Retry-After, clamped
        else:
            if self._ceilings is None:
                self._ceilings = policy.ceilings()
            wait = backoff.full_jitter(next(self._ceilings))
        if self.attempts >= policy.max_attempts:
            reason = ""
        elif wait >= self.remaining():
            reason = f": max_time ({policy.max_time:g} s) would pass before the next"
        elif self._budget is not None and not self._budget.acquire(error):
            reason = ": the retry budget is exhausted"
        else:
            return wait
        attempts = "1 attempt" if self.attempts == 1 else f"{self.attempts} attempts"
        log.warning("giving up after %s%s (%s)", attempts, reason, describe(error))
        return None

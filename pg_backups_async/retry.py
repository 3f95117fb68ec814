"""Retrying one idempotent request: which failures, how long to wait, when to stop."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Generator
from typing import Any, ParamSpec, TypeVar

import attrs
import backoff

from .errors import ApiError
from .limits import RetryBudget

log = logging.getLogger("pg_backups_async")
log.addHandler(logging.NullHandler())

_R = TypeVar("_R")
_P = ParamSpec("_P")


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{attribute.name} must be a positive number, got {value!r}")


def _attempts(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an int of at least 1, got {value!r}")


@attrs.frozen
class RetryPolicy:
    """When and how a failed request is repeated.

    Retried: HTTP 429, 500, 502, 503, 504 and failed connections, with exponential
    backoff and full jitter (a wait drawn from 0 to `base_delay * 2**n`, at most
    `max_delay`). A `Retry-After` header is honoured, clamped to `max_retry_after`.
    At most `max_attempts` attempts within `max_time` seconds in all. A client's
    retries draw on one `budget` of tokens (a retry costs 5, or 10 after a timeout or
    reset; a success earns 1 back, or 5 after retries); when it runs dry, failures are
    raised at once. `budget=None` turns the budget off.
    """

    max_attempts: int = attrs.field(default=5, validator=_attempts)
    max_time: float = attrs.field(default=60.0, validator=_positive)
    base_delay: float = attrs.field(default=0.5, validator=_positive)
    max_delay: float = attrs.field(default=20.0, validator=_positive)
    max_retry_after: float = attrs.field(default=30.0, validator=_positive)
    budget: int | None = attrs.field(default=500)

    @budget.validator
    def _check_budget(self, attribute: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"budget must be an int or None, got {value!r}")
        if value is not None and value < 1:
            raise ValueError(f"budget must be at least 1, got {value}")

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """One attempt, no retries."""
        return cls(max_attempts=1)

    def wait(self, retry: int, error: BaseException | None) -> float:
        """Seconds to wait before retry number `retry` (from 1) after `error`."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(min(retry_after, self.max_retry_after))
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (retry - 1)))


def _waits(policy: RetryPolicy) -> Generator[float, BaseException | None, None]:
    error = yield 0.0  # backoff primes the generator with None
    retry = 0
    while True:
        retry += 1
        error = yield policy.wait(retry, error)


def _describe(details: Any) -> str:
    error: ApiError = details["exception"]
    status = error.http_status if error.http_status is not None else "no answer"
    server = f", request id {error.request_id}" if error.request_id else ""
    return f"status {status}, client request id {error.client_request_id}{server}: {error.message}"


def _log_retry(details: Any) -> None:
    log.debug(
        "retrying after attempt %d in %.2fs (%s)",
        details["tries"],
        details["wait"],
        _describe(details),
    )


def _log_giveup(details: Any) -> None:
    if details["exception"].retryable:
        log.warning("giving up after %d attempts (%s)", details["tries"], _describe(details))


def with_retries(
    policy: RetryPolicy, attempt: Callable[_P, Awaitable[_R]], budget: RetryBudget | None = None
) -> Callable[_P, Awaitable[_R]]:
    """`attempt` wrapped to be repeated as `policy` says, paying for retries from `budget`.

    Cancellation is never retried.
    """
    if policy.max_attempts == 1:
        return attempt

    def give_up(error: Exception) -> bool:
        if not isinstance(error, ApiError) or not error.retryable:
            return True
        if budget is not None and not budget.acquire(error):
            log.warning(
                "retry budget exhausted: not retrying (%s)", _describe({"exception": error})
            )
            return True
        return False

    def gave_up(details: Any) -> None:
        if budget is not None:
            budget.unused(details["exception"])  # paid for a retry that will not happen
        _log_giveup(details)

    def succeeded(details: Any) -> None:
        if budget is not None:
            budget.succeeded(retried=details["tries"] > 1)

    retrying: Callable[_P, Awaitable[_R]] = backoff.on_exception(
        lambda: _waits(policy),
        ApiError,
        max_tries=policy.max_attempts,
        max_time=policy.max_time,
        jitter=None,
        giveup=give_up,
        on_backoff=_log_retry,
        on_giveup=gave_up,
        on_success=succeeded,
        logger=None,
    )(attempt)
    return retrying

"""Retrying one idempotent request: which failures, how long to wait, when to stop."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Generator
from typing import Any, ParamSpec, TypeVar

import attrs
import backoff

from .errors import ApiError

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
    At most `max_attempts` attempts within `max_time` seconds in all.
    """

    max_attempts: int = attrs.field(default=5, validator=_attempts)
    max_time: float = attrs.field(default=60.0, validator=_positive)
    base_delay: float = attrs.field(default=0.5, validator=_positive)
    max_delay: float = attrs.field(default=20.0, validator=_positive)
    max_retry_after: float = attrs.field(default=30.0, validator=_positive)

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
    return f"status {status}, client request id {error.client_request_id}: {error.message}"


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


def _not_retryable(error: Exception) -> bool:
    return not (isinstance(error, ApiError) and error.retryable)


def with_retries(
    policy: RetryPolicy, attempt: Callable[_P, Awaitable[_R]]
) -> Callable[_P, Awaitable[_R]]:
    """`attempt` wrapped to be repeated as `policy` says. Cancellation is never retried."""
    if policy.max_attempts == 1:
        return attempt
    retrying: Callable[_P, Awaitable[_R]] = backoff.on_exception(
        lambda: _waits(policy),
        ApiError,
        max_tries=policy.max_attempts,
        max_time=policy.max_time,
        jitter=None,
        giveup=_not_retryable,
        on_backoff=_log_retry,
        on_giveup=_log_giveup,
        logger=None,
    )(attempt)
    return retrying

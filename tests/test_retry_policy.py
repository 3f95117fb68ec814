"""The retry policy's arithmetic; no network."""

from __future__ import annotations

import pytest

import pg_backups_async as pba


def test_defaults() -> None:
    policy = pba.RetryPolicy()
    assert (policy.max_attempts, policy.max_time) == (5, 60.0)
    assert pba.RetryPolicy.disabled().max_attempts == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_time": 0},
        {"base_delay": -1},
        {"max_retry_after": float("nan")},
        {"max_time": float("inf")},
        {"max_delay": float("inf")},
        {"max_retry_after": float("inf")},
        {"budget": 0},
    ],
)
def test_bad_values_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        pba.RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 2.5},
        {"max_attempts": True},
        {"max_delay": "1"},
        {"budget": 1.5},
    ],
)
def test_values_of_the_wrong_type_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        pba.RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_full_jitter_grows_exponentially_and_is_capped() -> None:
    policy = pba.RetryPolicy(base_delay=1.0, max_delay=5.0)
    for retry, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (10, 5.0)]:
        waits = [policy.wait(retry, None) for _ in range(300)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # full jitter spans the range
        assert min(waits) < ceiling * 0.2


def test_retry_after_is_honoured_and_clamped() -> None:
    policy = pba.RetryPolicy(base_delay=100.0, max_retry_after=30.0)
    assert policy.wait(1, pba.ResourceExhaustedError("x", http_status=429, retry_after=2.0)) == 2.0
    assert policy.wait(1, pba.ResourceExhaustedError("x", retry_after=86400.0)) == 30.0
    assert policy.wait(3, pba.UnavailableError("x", retry_after=0.0)) == 0.0

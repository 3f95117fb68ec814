"""Faults a cloud API really produces, injected by the emulator, met over loopback."""

from __future__ import annotations

import asyncio
import gzip
import logging

import orjson
import pytest

import pg_backups_async as pba
from pg_backups_async.emulator import Emulator, Fault
from pg_backups_async.ratelimit import RateLimiter
from tests.conftest import TOKEN

GUARD = 10.0  # seconds: a hung test fails instead of hanging; never a measurement
QUICK = pba.RetryPolicy(
    max_attempts=6, base_delay=0.001, max_delay=0.005, max_retry_after=0.01, max_time=20
)


def _client(emulator: Emulator, **kwargs: object) -> pba.BackupsClient:
    kwargs.setdefault("retry", QUICK)
    return pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url, **kwargs)  # type: ignore[arg-type]


async def _page(client: pba.BackupsClient, cluster: str) -> pba.BackupsPage:
    return await asyncio.wait_for(client.get_backups_page(cluster), GUARD)


@pytest.mark.parametrize(
    "fault",
    [
        Fault(drop=True, times=3),
        Fault(status=None, truncate=True, times=2),
        Fault(status=503, times=2),
        Fault(status=502, times=2),
        Fault(status=504, times=2),
        Fault(status=429, times=2),
        Fault(status=429, retry_after="0", times=2),
        Fault(status=429, retry_after="86400", times=2),
        Fault(status=503, retry_after="Fri, 01 Jan 2100 00:00:00 GMT", times=2),
    ],
    ids=lambda f: (
        f"{f.status}-{'drop' if f.drop else ''}{'truncate' if f.truncate else ''}-{f.retry_after}"
    ),
)
async def test_transient_faults_are_survived(emulator: Emulator, fault: Fault) -> None:
    emulator.inject(fault)
    async with _client(emulator) as client:
        page = await _page(client, emulator.cluster_ids[1])
    assert page.backups == tuple(emulator.backups(emulator.cluster_ids[1]))
    assert emulator.pending_faults == 0


async def test_a_stalled_body_times_out_and_is_retried(emulator: Emulator) -> None:
    emulator.inject(Fault(status=None, stall=True))
    async with _client(emulator, timeout=0.3) as client:
        page = await _page(client, emulator.cluster_ids[1])
    assert len(page.backups) == 40
    assert emulator.faults_served["stalled body"] == 1
    assert len({r.peer for r in emulator.requests}) == 2  # the stalled connection was dropped


async def test_a_stall_with_retries_off_raises_instead_of_hanging(emulator: Emulator) -> None:
    emulator.inject(Fault(status=None, stall=True))
    async with _client(emulator, timeout=0.3, retry=pba.RetryPolicy.disabled()) as client:
        with pytest.raises(pba.NetworkError, match=r"the request to 127\.0\.0\.1:\d+ timed out"):
            await _page(client, emulator.cluster_ids[1])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"<html><body>Please wait</body></html>", "$"),
        (b'{"backups": [{"id": "c9q:x", "size": "1', "$"),
        (b'{"backups": {"id": "c9q:x"}}', "backups"),
        (b'{"backups": [{"id": "c9q:x", "size": "lots"}]}', "backups[0].size"),
        (b'{"backups": [{"id": "c9q:x", "createdAt": "yesterday"}]}', "backups[0].createdAt"),
        (b'{"nextPageToken": "' + b"t" * 101 + b'"}', "nextPageToken"),
    ],
)
async def test_bodies_that_are_not_the_promised_json(
    emulator: Emulator, body: bytes, field: str
) -> None:
    emulator.inject(Fault(status=200, body=body))
    async with _client(emulator) as client:
        with pytest.raises(pba.ResponseFormatError) as caught:
            await _page(client, emulator.cluster_ids[1])
    assert caught.value.field == field
    assert len(emulator.requests) == 1  # not retried: the same request gets the same body


async def test_in_a_fan_out_only_that_cluster_fails(emulator: Emulator) -> None:
    bad = emulator.cluster_ids[1]
    emulator.inject(Fault(status=200, body=b"<html>proxy</html>", cluster_id=bad))
    async with _client(emulator) as client:
        results = {r.cluster_id: r async for r in client.list_backups_many(emulator.cluster_ids)}
    assert isinstance(results[bad].error, pba.ResponseFormatError)
    assert all(results[c].ok for c in emulator.cluster_ids if c != bad)


def _body(ids: list[int], token: str | None) -> bytes:
    page: dict[str, object] = {"backups": [{"id": f"c9q:{i}"} for i in ids]}
    if token is not None:
        page["nextPageToken"] = token
    return orjson.dumps(page)


async def test_page_tokens_that_repeat_end_in_an_error(emulator: Emulator) -> None:
    cluster = emulator.cluster_ids[0]
    emulator.inject(
        *(
            Fault(status=200, body=_body(ids, token), cluster_id=cluster)
            for ids, token in (([1], "A"), ([2], "B"), ([3], "A"), ([4], "B"))
        )
    )
    got = []
    async with _client(emulator) as client, client.list_backups(cluster) as stream:
        with pytest.raises(pba.ResponseFormatError, match="repeated page token"):
            async for backup in stream:
                got.append(backup.id)
    assert got == ["c9q:1", "c9q:2", "c9q:3"]
    assert [r.query.get("pageToken") for r in emulator.requests] == [None, "A", "B"]


async def test_an_empty_page_with_a_token_is_not_the_end(emulator: Emulator) -> None:
    cluster = emulator.cluster_ids[0]
    emulator.inject(
        Fault(status=200, body=_body([], "A"), cluster_id=cluster),
        Fault(status=200, body=_body([7], None), cluster_id=cluster),
    )
    async with _client(emulator) as client:
        assert [b.id async for b in client.list_backups(cluster)] == ["c9q:7"]


async def test_a_huge_answer_is_refused(emulator: Emulator) -> None:
    async with _client(emulator, max_response_bytes=4096) as client:
        with pytest.raises(pba.ResponseFormatError, match="cap on responses") as caught:
            await _page(client, emulator.cluster_ids[1])  # 40 backups: about 16 KB
        assert caught.value.http_status == 200
        assert len((await _page(client, emulator.cluster_ids[2])).backups) == 7  # 3 KB


async def test_a_decompression_bomb_is_refused(emulator: Emulator) -> None:
    bomb = gzip.compress(b'{"backups": [' + b" " * 10_000_000 + b"]}")
    assert len(bomb) < 20_000
    emulator.inject(Fault(status=200, body=bomb, headers={"Content-Encoding": "gzip"}))
    async with _client(emulator, max_response_bytes=1_000_000) as client:
        with pytest.raises(pba.ResponseFormatError, match="cap on responses"):
            await _page(client, emulator.cluster_ids[1])


async def test_a_compressed_answer_under_the_cap_is_read(emulator: Emulator) -> None:
    body = gzip.compress(_body([1, 2], None))
    emulator.inject(Fault(status=200, body=body, headers={"Content-Encoding": "gzip"}))
    async with _client(emulator) as client:
        page = await _page(client, emulator.cluster_ids[1])
    assert [b.id for b in page.backups] == ["c9q:1", "c9q:2"]


# The retry budget


async def test_an_outage_drains_the_budget_into_fast_failures() -> None:
    async with Emulator(clusters=10, backups_per_cluster=3) as emulator:
        emulator.inject(Fault(status=503, times=1000))
        policy = pba.RetryPolicy(max_attempts=5, base_delay=0.001, max_delay=0.001, budget=20)
        async with _client(emulator, retry=policy) as client:
            results = [
                r async for r in client.list_backups_many(emulator.cluster_ids, concurrency=1)
            ]
            assert all(isinstance(r.error, pba.UnavailableError) for r in results)
            # The first cluster's retries spend the 20 tokens (4 retries at 5 each) and
            # its fifth attempt is its last anyway; the other nine are refused a retry
            # and fail at their first attempt instead of making five each.
            assert len(emulator.requests) == 5 + 9
            assert client.retry_budget is not None
            assert client.retry_budget.available == 0
            assert client.retry_budget.refused == 9


async def test_the_budget_refills_as_requests_succeed(emulator: Emulator) -> None:
    policy = pba.RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.001, budget=10)
    async with _client(emulator, retry=policy) as client:
        budget = client.retry_budget
        assert budget is not None
        emulator.inject(Fault(status=503, times=2))
        await _page(client, emulator.cluster_ids[2])  # two retries: 10 tokens, 5 back
        assert budget.available == 5
        emulator.inject(Fault(status=503, times=2))
        with pytest.raises(pba.UnavailableError):
            await _page(client, emulator.cluster_ids[2])  # one retry (5), then refused
        assert budget.available == 0
        for _ in range(3):
            await _page(client, emulator.cluster_ids[2])
        assert budget.available == 3
        emulator.inject(Fault(status=503))
        with pytest.raises(pba.UnavailableError):
            await _page(client, emulator.cluster_ids[2])  # 3 < 5: no retry


async def test_the_last_attempt_does_not_keep_the_budget(emulator: Emulator) -> None:
    policy = pba.RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001, budget=100)
    async with _client(emulator, retry=policy) as client:
        emulator.inject(Fault(status=503, times=2))
        with pytest.raises(pba.UnavailableError):
            await _page(client, emulator.cluster_ids[2])
        assert client.retry_budget is not None
        assert client.retry_budget.available == 95  # one retry paid; the second refunded


async def test_no_budget(emulator: Emulator) -> None:
    async with _client(emulator, retry=pba.RetryPolicy(budget=None)) as client:
        assert client.retry_budget is None


# The rate limit


async def test_rate_limiter_spaces_requests() -> None:
    now = 100.0
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    limiter = RateLimiter(10, clock=lambda: now, sleep=sleep)
    for _ in range(4):
        await limiter.acquire()
    assert waits == pytest.approx([0.1, 0.2, 0.3])
    now = 101.0  # later than every slot handed out: no wait
    await limiter.acquire()
    assert len(waits) == 3


@pytest.mark.parametrize(
    ("rate", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (True, TypeError),
        ("5", TypeError),
    ],
)
def test_rate_must_be_a_finite_positive_number(rate: float, error: type[Exception]) -> None:
    with pytest.raises(error, match="requests_per_second"):
        RateLimiter(rate)
    with pytest.raises(error, match="requests_per_second"):
        pba.BackupsClient(pba.IamToken(TOKEN), requests_per_second=rate)


async def test_client_rate_limit_covers_every_request(emulator: Emulator) -> None:
    async with _client(emulator, requests_per_second=1000) as client:
        emulator.inject(Fault(status=503))
        results = [r async for r in client.list_backups_many(emulator.cluster_ids)]
        assert all(r.ok for r in results)
    # Every attempt went through the limiter: one page of 1000 per cluster, one retry.
    assert client.rate_limiter is not None
    assert client.rate_limiter.acquired == len(emulator.requests) == len(emulator.cluster_ids) + 1


# Logging


async def test_retries_and_give_ups_are_logged_with_ids(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pg_backups_async")
    emulator.inject(Fault(status=503, times=10))
    policy = pba.RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001)
    async with _client(emulator, retry=policy) as client:
        with pytest.raises(pba.UnavailableError):
            await _page(client, emulator.cluster_ids[2])
    retry, give_up = caplog.records
    assert retry.levelno == logging.DEBUG
    assert give_up.levelno == logging.WARNING
    client_ids = [r.headers["x-client-request-id"] for r in emulator.requests]
    assert f"client request id {client_ids[0]}, request id " in retry.getMessage()
    assert "retrying after attempt 1 in " in retry.getMessage()
    assert "status 503" in retry.getMessage()
    assert f"giving up after 2 attempts (status 503, client request id {client_ids[1]}" in (
        give_up.getMessage()
    )
    assert TOKEN not in caplog.text

"""Many clusters at once: the in-flight bound, isolation, early exit, memory."""

from __future__ import annotations

import asyncio

import pytest

import pg_backups_async as pba
from pg_backups_async.emulator import Emulator, Fault
from tests.conftest import ANCHOR, TOKEN, our_tasks

pytestmark = pytest.mark.collect_garbage

GUARD = 10.0  # seconds: a hung test fails instead of hanging; never a measurement


@pytest.fixture
async def many() -> Emulator:
    async with Emulator(anchor=ANCHOR, clusters=60, backups_per_cluster=30) as emu:
        yield emu  # type: ignore[misc]


async def test_every_cluster_once_in_completion_order(many: Emulator) -> None:
    ids = many.cluster_ids
    async with (
        pba.BackupsClient(pba.IamToken(TOKEN), endpoint=many.url) as client,
        client.list_backups_many(ids + ids[:10], concurrency=8, page_size=10) as results,
    ):
        got = {r.cluster_id: r async for r in results}
    assert set(got) == set(ids)
    assert all(r.ok and r.backups == tuple(many.backups(r.cluster_id)) for r in got.values())
    assert len(many.requests) == 60 * 3


async def test_in_flight_requests_never_exceed_concurrency_under_a_slow_server(
    many: Emulator,
) -> None:
    many.latency = 0.01
    async with (
        pba.BackupsClient(pba.IamToken(TOKEN), endpoint=many.url) as client,
        client.list_backups_many(many.cluster_ids, concurrency=7, page_size=10) as results,
    ):
        async for _ in results:
            assert len(our_tasks()) <= 2 * 7  # 7 workers, each with one request
    assert many.max_in_flight == 7  # the bound, and reached: the fan-out is concurrent
    assert len({r.peer for r in many.requests}) <= 7  # connections reused, not re-opened


async def test_one_clusters_failure_does_not_stop_the_others(many: Emulator) -> None:
    broken, missing = many.cluster_ids[5], "c9qnosuchcluster0000"
    many.inject(Fault(status=403, cluster_id=broken))
    ids = [*many.cluster_ids[:10], missing]
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=many.url) as client:
        results = {r.cluster_id: r async for r in client.list_backups_many(ids, concurrency=3)}
    assert isinstance(results[broken].error, pba.PermissionDeniedError)
    assert isinstance(results[missing].error, pba.NotFoundError)
    assert results[broken].backups == ()
    assert sum(r.ok for r in results.values()) == 9


async def test_exhausted_retries_are_a_clusters_error(many: Emulator) -> None:
    flaky = many.cluster_ids[0]
    many.inject(Fault(status=503, cluster_id=flaky, times=100))
    policy = pba.RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001)
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=many.url, retry=policy) as c:
        results = {r.cluster_id: r async for r in c.list_backups_many(many.cluster_ids[:4])}
    assert isinstance(results[flaky].error, pba.UnavailableError)
    assert all(results[i].ok for i in many.cluster_ids[1:4])


async def test_fail_fast_raises_and_cancels_the_rest(many: Emulator) -> None:
    many.latency = 0.005
    many.inject(Fault(status=404, cluster_id=many.cluster_ids[2]))
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=many.url) as client:
        fanout = client.list_backups_many(many.cluster_ids, concurrency=4, fail_fast=True)
        with pytest.raises(pba.NotFoundError):
            async for _ in fanout:
                pass
        assert our_tasks() == []
    assert len(many.requests) < 60


async def test_break_cancels_every_request_in_flight(many: Emulator) -> None:
    many.inject(*[Fault(status=None) for _ in range(4)], Fault(status=None, delay=60, times=50))
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=many.url) as client:
        async with client.list_backups_many(many.cluster_ids, concurrency=4) as results:
            async for _ in results:
                await asyncio.wait_for(many.wait_for_requests(8), GUARD)  # 4 stalled in flight
                break
        assert our_tasks() == []
    assert len(many.requests) == 8


async def test_cancelling_the_caller_leaves_nothing_behind(many: Emulator) -> None:
    many.inject(Fault(status=None, delay=60, times=100))
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=many.url) as client:
        fanout = client.list_backups_many(many.cluster_ids, concurrency=5)

        async def consume() -> None:
            async for _ in fanout:
                pass

        task = asyncio.create_task(consume())
        await asyncio.wait_for(many.wait_for_requests(5), GUARD)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert our_tasks() == []
    assert len(many.requests) == 5


async def test_a_slow_consumer_pauses_the_workers(many: Emulator) -> None:
    concurrency = 4
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=many.url) as client:
        fanout = client.list_backups_many(many.cluster_ids, concurrency=concurrency)
        async for _ in fanout:
            # Let the workers run as far as they can get before taking the next result.
            target = min(60, fanout.delivered + concurrency)
            await asyncio.wait_for(many.wait_for_requests(target), GUARD)
            # Finished results wait in the queue or in a worker: the rest is not fetched.
            assert len(many.requests) <= fanout.delivered + 3 * concurrency
        assert fanout.delivered == 60


async def test_ids_are_checked_before_any_request(client: pba.BackupsClient) -> None:
    with pytest.raises(ValueError, match="cluster_id"):
        client.list_backups_many(["c9qfine", "../../etc"])
    with pytest.raises(ValueError, match="concurrency"):
        client.list_backups_many(["c9qfine"], concurrency=0)
    with pytest.raises(TypeError, match="iterable of ids"):
        client.list_backups_many("c9qfine")


async def test_no_ids_no_results(client: pba.BackupsClient) -> None:
    assert [r async for r in client.list_backups_many([])] == []


async def test_a_hundred_thousand_ids_make_no_more_tasks_than_workers(
    emulator: Emulator,
) -> None:
    ids = [f"c9qmissing{n:010d}" for n in range(100_000)]
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url) as client:
        async with client.list_backups_many(ids, concurrency=16) as results:
            async for result in results:
                assert isinstance(result.error, pba.NotFoundError)
                assert len(our_tasks()) <= 2 * 16
                if results.delivered == 300:
                    break
        assert results.total == 100_000

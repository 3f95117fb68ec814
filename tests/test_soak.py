"""A soak: 5,000 clusters, about 5% of requests failing at random in every way the
emulator knows. Nothing may be lost, invented or duplicated. Run by `nox -s soak`;
the default test run skips it."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest

import pg_backups_async as pba
from pg_backups_async.emulator import DEFAULT_FOLDER_ID, Emulator
from tests.conftest import ANCHOR, TOKEN, our_tasks

CLUSTERS = 5000
FAULT_RATE = 0.05
CONCURRENCY = 32
POLICY = pba.RetryPolicy(
    max_attempts=6, base_delay=0.01, max_delay=0.2, max_retry_after=0.2, max_time=30.0
)


class Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.retries = 0
        self.give_ups = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.retries += message.startswith("retrying after")
        self.give_ups += message.startswith(("giving up", "retry budget exhausted"))


@pytest.mark.soak
async def test_soak() -> None:
    counter = Retries()
    log = logging.getLogger("pg_backups_async")
    log.addHandler(counter)
    log.setLevel(logging.DEBUG)
    try:
        async with (
            Emulator(anchor=ANCHOR, clusters=CLUSTERS, fault_rate=FAULT_RATE, fault_seed=7) as emu,
            pba.BackupsClient(
                pba.IamToken(TOKEN), endpoint=emu.url, retry=POLICY, timeout=1.0
            ) as client,
        ):
            async with asyncio.timeout(300):
                ids = [c.id async for c in client.list_clusters(DEFAULT_FOLDER_ID, page_size=1000)]
                results = {
                    r.cluster_id: r
                    async for r in client.list_backups_many(ids, concurrency=CONCURRENCY)
                }
            assert our_tasks() == []
            budget_left = client.retry_budget.available if client.retry_budget else None
    finally:
        log.removeHandler(counter)
        log.setLevel(logging.NOTSET)

    # Every cluster accounted for, once: backups or an explicit error.
    assert sorted(ids) == sorted(emu.cluster_ids)
    assert sorted(results) == sorted(emu.cluster_ids)
    failed = {c: r.error for c, r in results.items() if r.error is not None}
    assert all(isinstance(e, pba.ApiError) for e in failed.values())
    # For every cluster without an error: exactly the emulator's backups, in order.
    lost = invented = 0
    for cluster_id, result in results.items():
        if result.error is None:
            expected = emu.backups(cluster_id)
            got_ids = [b.id for b in result.backups]
            assert len(set(got_ids)) == len(got_ids), f"duplicates in {cluster_id}"
            lost += len(set(b.id for b in expected) - set(got_ids))
            invented += len(set(got_ids) - set(b.id for b in expected))
            assert list(result.backups) == expected
    listed = sum(len(r.backups) for r in results.values() if r.error is None)
    own = sum(emu.backup_count(c) for c in results if c not in failed)
    assert (lost, invented, listed) == (0, 0, own)

    faulted = {c for r in emu.requests if r.fault for c in emu.cluster_ids if f"/{c}/" in r.path}
    recovered = len(faulted - set(failed))
    connections = len({r.peer for r in emu.requests})
    dropped = sum(
        n
        for kind, n in emu.faults_served.items()
        if kind in ("reset before the answer", "body cut off", "stalled body")
    )
    # Connections are reused: new ones only replace those the faults killed.
    assert connections <= CONCURRENCY + dropped + 1
    print(
        "\nsoak:",
        f"{CLUSTERS} clusters, {len(emu.requests)} requests, "
        f"{sum(emu.faults_served.values())} faults injected, {counter.retries} retries, "
        f"{recovered} clusters recovered after faults, {len(failed)} reported failed, "
        f"{listed} backups listed = the emulator's {own}, lost 0, duplicated 0; "
        f"{connections} connections for {dropped} killed by faults; "
        f"retry budget left {budget_left}",
    )
    print("faults by kind:", dict(sorted(emu.faults_served.items())))
    print("errors reported:", dict(Counter(type(e).__name__ for e in failed.values())))

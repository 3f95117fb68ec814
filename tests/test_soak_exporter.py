"""A soak of the exporter: a 1 s interval against the emulator with random faults, and
clusters added and deleted between collections. Run by `nox -s soak` (ten minutes;
PG_BACKUPS_SOAK_SECONDS sets another duration); the default test run skips it.

After every collection a scrape must show every series of each cluster that was ever
listed and still exists; a deleted cluster's series must be gone after the next
successful collection; the exporter's RSS must stay flat after the warm-up.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

import pg_backups_async as pba
from pg_backups_async.emulator import DEFAULT_FOLDER_ID, Emulator
from pg_backups_async.emulator.seed import resource_id, synthetic_backups
from pg_backups_async.exporter import Exporter
from pg_backups_async.exposition import RequestCounter
from tests.conftest import TOKEN

SECONDS = float(os.environ.get("PG_BACKUPS_SOAK_SECONDS", "600"))
CLUSTERS = 100
FAULT_RATE = 0.1
WARM_UP = 0.25  # of the duration: RSS is compared from there on
RSS_SLACK = 5 << 20
GUARD = 60.0  # seconds without a collection: the soak fails instead of hanging
POLICY = pba.RetryPolicy(
    max_attempts=4, base_delay=0.01, max_delay=0.1, max_retry_after=0.1, max_time=5.0
)
ALWAYS = (
    "pg_backups_cluster_info",
    "pg_backups_cluster_up",
    "pg_backups_cluster_last_success_timestamp_seconds",
    "pg_backups_done_size_bytes",
    "pg_backups_stale",
)


@pytest.mark.soak
async def test_exporter_soak() -> None:
    rng = random.Random(11)
    counter = RequestCounter()
    collected: asyncio.Queue[int] = asyncio.Queue()
    ever_listed: dict[str, set[str]] = {}  # cluster -> series names it must keep
    deleted_after: dict[str, int] = {}  # cluster -> the collection after which it went
    must_be_gone: set[str] = set()
    tally: Counter[str] = Counter()

    async with (
        Emulator(clusters=CLUSTERS, fault_rate=FAULT_RATE, fault_seed=3) as emulator,
        pba.BackupsClient(
            pba.IamToken(TOKEN), endpoint=emulator.url, retry=POLICY, timeout=1.0,
            on_attempt=counter,
        ) as client,
    ):  # fmt: skip

        def after_collection(exporter: Exporter) -> None:
            # Runs between collections: what changes here, the next collection sees.
            number = exporter.collections
            if exporter.last_error is None:
                tally["successful collections"] += 1
                for cluster_id, deleted in deleted_after.items():
                    if deleted < number:
                        must_be_gone.add(cluster_id)
                for cluster_id, kept in exporter.clusters.items():
                    tally["cluster listings failed, values kept"] += not kept.up
                    if kept.up:
                        names = set(ALWAYS)
                        if kept.line.newest_done_at is not None:
                            names |= {
                                "pg_backups_last_done_timestamp_seconds",
                                "pg_backups_last_done_age_seconds",
                            }
                        ever_listed[cluster_id] = names
            else:
                tally["failed collections"] += 1
            emulator.requests.clear()  # the emulator's own record would grow the RSS
            existing = [c for c in emulator.cluster_ids if c not in deleted_after]
            if rng.random() < 0.3 and len(existing) > CLUSTERS // 2:
                gone = rng.choice(existing)
                emulator.remove_cluster(gone)
                deleted_after[gone] = number
                ever_listed.pop(gone, None)
                tally["clusters deleted"] += 1
            if rng.random() < 0.3:
                cluster = pba.Cluster(
                    id=resource_id(rng), folder_id=DEFAULT_FOLDER_ID, name="added"
                )
                newest = datetime.now(UTC) - timedelta(hours=1)
                count = rng.choice((0, 3, 40))
                backups = synthetic_backups(cluster, count, rng=rng, newest_start=newest)
                emulator.add_cluster(cluster, backups)
                tally["clusters added"] += 1
            collected.put_nowait(number)

        served = Exporter(
            client,
            folder_ids=[DEFAULT_FOLDER_ID],
            interval=1.0,
            requests=counter,
            on_collected=after_collection,
        )
        url = await served.start("127.0.0.1", 0)
        started = time.monotonic()
        baseline: float | None = None
        rss: list[float] = []
        try:
            async with aiohttp.ClientSession() as session:
                while time.monotonic() - started < SECONDS:
                    await asyncio.wait_for(collected.get(), GUARD)
                    async with session.get(f"{url}/metrics") as response:
                        text = await response.text()
                    shown: dict[str, set[str]] = {}
                    for family in text_string_to_metric_families(text):
                        for sample in family.samples:
                            if "cluster_id" in sample.labels:
                                shown.setdefault(sample.labels["cluster_id"], set()).add(
                                    sample.name
                                )
                            elif sample.name == "process_resident_memory_bytes":
                                memory = sample.value
                    for cluster_id, names in ever_listed.items():
                        missing = names - shown.get(cluster_id, set())
                        assert not missing, f"{cluster_id} lost {sorted(missing)}"
                    reappeared = must_be_gone & set(shown)
                    assert not reappeared, f"deleted clusters still shown: {reappeared}"
                    tally["scrapes checked"] += 1
                    if time.monotonic() - started >= WARM_UP * SECONDS:
                        baseline = memory if baseline is None else baseline
                        rss.append(memory)
        finally:
            await served.stop()

    assert baseline is not None
    growth = max(rss) - baseline
    requests = sum(counter.counts.values())
    failed = sum(n for (_, code), n in counter.counts.items() if code != "200")
    print(
        f"\nexporter soak: {SECONDS:g} s, {dict(tally)}; {requests} requests counted, "
        f"{failed} not 200; RSS after warm-up {baseline / 2**20:.1f} MB, "
        f"at most +{growth / 2**20:.2f} MB; {len(must_be_gone)} deleted clusters gone"
    )
    assert growth <= RSS_SLACK
    assert tally["scrapes checked"] >= 3
    assert must_be_gone or SECONDS < 30

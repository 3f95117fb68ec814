"""The Prometheus exporter: scraped with a real HTTP client, parsed with prometheus_client."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

import pg_backups_async as pba
from pg_backups_async.emulator import DEFAULT_FOLDER_ID, Emulator, Fault, emulator_process
from pg_backups_async.exporter import Exporter, parse_listen
from tests.conftest import TOKEN, run_cli

GUARD = 20.0  # seconds: a hung test fails instead of hanging; never a measurement


@pytest.fixture
async def exporter(emulator: Emulator, client: pba.BackupsClient) -> AsyncIterator[Exporter]:
    collected = asyncio.Event()
    served = Exporter(
        client,
        folder_ids=[DEFAULT_FOLDER_ID],
        interval=3600,
        on_collected=lambda _: collected.set(),
    )
    await served.start("127.0.0.1", 0)
    await asyncio.wait_for(collected.wait(), GUARD)
    yield served
    await served.stop()


async def _scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = (
                sample.value
            )
    return samples


def _one(samples: dict[str, Any], name: str, **labels: str) -> float:
    value: float = samples[name][tuple(sorted(labels.items()))]
    return value


async def test_every_metric_matches_the_emulators_data(
    emulator: Emulator, exporter: Exporter
) -> None:
    samples = await _scrape(exporter.url)
    ids = emulator.cluster_ids
    assert len(samples["pg_backups_cluster_info"]) == len(ids)
    for cluster_id in ids:
        cluster = emulator.clusters[cluster_id]
        info = _one(
            samples,
            "pg_backups_cluster_info",
            cluster_id=cluster_id,
            cluster_name=cluster.name,
            folder_id=DEFAULT_FOLDER_ID,
            environment=cluster.environment.name,
        )
        assert info == 1
        assert _one(samples, "pg_backups_cluster_up", cluster_id=cluster_id) == 1
        backups = emulator.backups(cluster_id)
        done = [b for b in backups if b.status is pba.BackupStatus.DONE]
        for status in {b.status.name for b in backups}:
            count = sum(b.status.name == status for b in backups)
            assert (
                _one(samples, "pg_backups_backups", cluster_id=cluster_id, status=status) == count
            )
        assert _one(samples, "pg_backups_done_size_bytes", cluster_id=cluster_id) == sum(
            b.size for b in done
        )
        if not done:
            assert (("cluster_id", cluster_id),) not in samples[
                "pg_backups_last_done_timestamp_seconds"
            ]
            assert _one(samples, "pg_backups_stale", cluster_id=cluster_id) == 1
            continue
        newest = max(done, key=lambda b: b.created_at)  # type: ignore[arg-type,return-value]
        oldest = min(done, key=lambda b: b.created_at)  # type: ignore[arg-type,return-value]
        assert newest.created_at is not None
        assert oldest.created_at is not None
        assert newest.started_at is not None
        last = _one(samples, "pg_backups_last_done_timestamp_seconds", cluster_id=cluster_id)
        assert last == pytest.approx(newest.created_at.timestamp())
        took = _one(samples, "pg_backups_last_done_duration_seconds", cluster_id=cluster_id)
        assert took == pytest.approx((newest.created_at - newest.started_at).total_seconds())
        first = _one(samples, "pg_backups_oldest_done_timestamp_seconds", cluster_id=cluster_id)
        assert first == pytest.approx(oldest.created_at.timestamp())
    assert samples["pg_backups_collect_errors_total"][()] == 0
    assert samples["pg_backups_collect_timestamp_seconds"][()] > 0
    assert samples["pg_backups_collect_duration_seconds"][()] >= 0


async def test_a_stale_cluster_is_stale() -> None:
    # Anchored at this hour: cluster 5's backups stopped three days ago, the others are fresh.
    async with (
        Emulator(clusters=6) as emulator,
        pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url) as client,
    ):
        served = Exporter(client, cluster_ids=emulator.cluster_ids, interval=3600)
        await served.collect()
        stale = {
            labels[0][1]: value for labels, value in _samples(served)["pg_backups_stale"].items()
        }
    assert stale[emulator.cluster_ids[5]] == 1
    assert stale[emulator.cluster_ids[0]] == 0


def _samples(served: Exporter) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in served.collect_metrics():
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = (
                sample.value
            )
    return samples


async def test_scrapes_cost_no_api_request(emulator: Emulator, exporter: Exporter) -> None:
    before = len(emulator.requests)
    first = await _scrape(exporter.url)
    second = await _scrape(exporter.url)
    assert len(emulator.requests) == before
    assert first == second


async def test_a_failed_collection_keeps_the_last_snapshot(
    emulator: Emulator, exporter: Exporter
) -> None:
    good = await _scrape(exporter.url)
    emulator.inject(Fault(status=403))  # Cluster.list is refused: the collection fails
    await exporter.collect()
    after = await _scrape(exporter.url)
    assert after["pg_backups_collect_errors_total"][()] == 1
    for name in ("pg_backups_cluster_up", "pg_backups_backups", "pg_backups_stale"):
        assert after[name] == good[name]
    assert (
        after["pg_backups_collect_timestamp_seconds"]
        == good["pg_backups_collect_timestamp_seconds"]
    )
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{exporter.url}/healthz") as response,
    ):
        assert response.status == 503
        assert "PermissionDeniedError" in await response.text()
    await exporter.collect()
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{exporter.url}/healthz") as response,
    ):
        assert (response.status, await response.text()) == (200, "ok\n")


async def test_a_cluster_that_fails_is_down_not_a_failed_collection(
    emulator: Emulator, client: pba.BackupsClient
) -> None:
    emulator.inject(Fault(status=404, cluster_id=emulator.cluster_ids[1]))
    served = Exporter(client, folder_ids=[DEFAULT_FOLDER_ID], interval=3600)
    await served.collect()
    samples = _samples(served)
    assert _one(samples, "pg_backups_cluster_up", cluster_id=emulator.cluster_ids[1]) == 0
    assert _one(samples, "pg_backups_cluster_up", cluster_id=emulator.cluster_ids[0]) == 1
    assert samples["pg_backups_collect_errors_total"][()] == 0


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:10183") == ("127.0.0.1", 10183)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    for bad in ("10183", "host:", ":80", "h:99999"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_listen(bad)


def test_the_command_serves_and_stops_cleanly_on_sigterm() -> None:
    with emulator_process("--clusters", "4") as (url, clusters), _free_port() as port:
        env = {k: v for k, v in os.environ.items() if not k.startswith("YC_")}
        env["YC_IAM_TOKEN"] = TOKEN
        command = [
            sys.executable, "-m", "pg_backups_async.cli", "exporter", "--endpoint", url,
            "--folder-id", DEFAULT_FOLDER_ID, "--listen", f"127.0.0.1:{port}",
        ]  # fmt: skip
        with subprocess.Popen(
            command, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        ) as served:
            assert served.stderr is not None
            try:
                serving = served.stderr.readline()
                assert serving.startswith(f"pg-backups: serving http://127.0.0.1:{port}/metrics")
                assert served.stderr.readline().startswith("pg-backups: collected 4 clusters")
                samples = asyncio.run(_scrape(f"http://127.0.0.1:{port}"))
                assert len(samples["pg_backups_cluster_info"]) == 4
                listed = {
                    dict(labels)["cluster_id"] for labels in samples["pg_backups_cluster_info"]
                }
                assert listed == set(clusters)
            finally:
                served.send_signal(signal.SIGTERM)
                code = served.wait(timeout=GUARD)
            rest = served.stderr.read()
    assert code == 0
    assert "Traceback" not in rest


class _free_port:
    def __enter__(self) -> int:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        return None


def test_the_command_needs_something_to_watch() -> None:
    result = run_cli("exporter", "--endpoint", "http://127.0.0.1:1")
    assert result.returncode == 2
    assert "nothing to check" in result.stderr


def test_without_prometheus_client_the_command_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pg_backups_async import exporter

    monkeypatch.setattr(exporter, "MISSING", "the exporter needs prometheus_client: pip ...")
    result = run_cli("exporter", "--endpoint", "http://127.0.0.1:1", "--folder-id", "b1g")
    assert result.returncode == 2
    assert "the exporter needs prometheus_client" in result.stderr


async def test_a_bug_in_a_collection_is_counted_and_the_next_one_runs(
    emulator: Emulator, client: pba.BackupsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    async def broken(**kwargs: object) -> list[pba.ClusterInventory]:
        calls.append(kwargs)
        if len(calls) == 1:
            raise ZeroDivisionError("a bug")
        stop.set()
        return []

    stop = asyncio.Event()
    monkeypatch.setattr(client, "inventory", broken)
    served = Exporter(client, folder_ids=[DEFAULT_FOLDER_ID], interval=0.001)
    await served.start("127.0.0.1", 0)
    try:
        await asyncio.wait_for(stop.wait(), GUARD)
    finally:
        await served.stop()
    assert served.errors == 1
    assert len(calls) == 2

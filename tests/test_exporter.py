"""The Prometheus exporter: scraped with a real HTTP client, parsed with prometheus_client."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import attrs
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

import pg_backups_async as pba
from pg_backups_async.emulator import DEFAULT_FOLDER_ID, Emulator, Fault, emulator_process
from pg_backups_async.exporter import Exporter, parse_listen
from pg_backups_async.exposition import (
    ClusterState,
    RequestCounter,
    carry,
    cluster_families,
    prerender,
    scrape_time_text,
)
from pg_backups_async.logformat import JsonFormatter, log_handler
from tests.conftest import FAST_RETRY, TOKEN, run_cli

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
            cluster_environment=cluster.environment.name,
            cloud_id="",
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
    # Ages are taken at scrape time and the process metrics are live: the rest is the same.
    for samples in (first, second):
        assert samples.pop("pg_backups_last_done_age_seconds")
        for name in [n for n in samples if n.startswith(("process_", "python_"))]:
            del samples[name]
    assert first == second


async def test_a_failed_collection_keeps_the_last_snapshot(
    emulator: Emulator, exporter: Exporter
) -> None:
    good = await _scrape(exporter.url)
    emulator.inject(Fault(status=403))  # Cluster.list is refused: the collection fails in part
    await exporter.collect()
    after = await _scrape(exporter.url)
    assert after["pg_backups_collect_errors_total"][()] == 1
    for name in ("pg_backups_backups", "pg_backups_stale"):
        assert after[name] == good[name]  # the folder's clusters keep their last values
    assert after["pg_backups_cluster_up"] == dict.fromkeys(good["pg_backups_cluster_up"], 0.0)
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

    async def broken(**kwargs: object) -> pba.Inventory:
        calls.append(kwargs)
        if len(calls) == 1:
            raise ZeroDivisionError("a bug")
        stop.set()
        return pba.Inventory()

    stop = asyncio.Event()
    monkeypatch.setattr(client, "inventory", broken)
    served = Exporter(client, folder_ids=[DEFAULT_FOLDER_ID], interval=1.0)
    await served.start("127.0.0.1", 0)
    try:
        await asyncio.wait_for(stop.wait(), GUARD)
    finally:
        await served.stop()
    assert served.errors == 1
    assert len(calls) == 2


# Issue 20: what the exporter shows, keeps and says.


async def _get(url: str, **kwargs: Any) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as session, session.get(url, **kwargs) as response:
        return response.status, dict(response.headers), await response.text()


async def test_the_landing_page_links_metrics_and_healthz(exporter: Exporter) -> None:
    status, headers, body = await _get(f"{exporter.url}/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert 'href="metrics"' in body
    assert 'href="healthz"' in body


async def test_build_info_process_metrics_and_help_texts(exporter: Exporter) -> None:
    samples = await _scrape(exporter.url)
    assert samples["pg_backups_build_info"] == {(("version", pba.__version__),): 1}
    assert samples["process_resident_memory_bytes"][()] > 0
    assert samples["pg_backups_collect_interval_seconds"][()] == 3600
    _, _, text = await _get(f"{exporter.url}/metrics")
    helps = [line for line in text.splitlines() if line.startswith("# HELP pg_backups_")]
    per_cluster = [
        line
        for line in helps
        if not line.startswith(("# HELP pg_backups_collect", "# HELP pg_backups_build"))
        and not line.startswith("# HELP pg_backups_api_requests")
    ]
    assert len(per_cluster) == 12
    assert all(line.endswith("From the last collection.") for line in per_cluster)


async def test_age_restore_window_and_newest_by_type(
    emulator: Emulator, exporter: Exporter
) -> None:
    before = time.time()
    samples = await _scrape(exporter.url)
    after = time.time()
    checked = 0
    for cluster_id in emulator.cluster_ids:
        done = [b for b in emulator.backups(cluster_id) if b.status is pba.BackupStatus.DONE]
        key = (("cluster_id", cluster_id),)
        if not done:
            assert key not in samples["pg_backups_last_done_age_seconds"]
            assert key not in samples["pg_backups_restore_window_seconds"]
            continue
        stamps = [b.created_at.timestamp() for b in done if b.created_at is not None]
        age = samples["pg_backups_last_done_age_seconds"][key]
        assert before - max(stamps) <= age <= after - max(stamps)
        window = samples["pg_backups_restore_window_seconds"][key]
        assert window == pytest.approx(max(stamps) - min(stamps))
        newest_by_type: dict[str, float] = {}
        for backup in done:
            assert backup.created_at is not None
            at = backup.created_at.timestamp()
            newest_by_type[backup.type.name] = max(newest_by_type.get(backup.type.name, 0), at)
        shown = {
            dict(labels)["type"]: value
            for labels, value in samples["pg_backups_last_done_by_type_timestamp_seconds"].items()
            if dict(labels)["cluster_id"] == cluster_id
        }
        assert shown == pytest.approx(newest_by_type)
        checked += 1
    assert checked >= 2
    # The emulator seeds a manual backup now and then: both types are shown somewhere.
    types = {dict(k)["type"] for k in samples["pg_backups_last_done_by_type_timestamp_seconds"]}
    assert types == {"AUTOMATED", "MANUAL"}


async def test_requests_are_counted_by_call_and_code(emulator: Emulator) -> None:
    counter = RequestCounter()
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), endpoint=emulator.url, retry=FAST_RETRY, on_attempt=counter
    ) as client:
        served = Exporter(client, folder_ids=[DEFAULT_FOLDER_ID], requests=counter)
        assert served.on_attempt is counter
        emulator.inject(Fault(status=503, cluster_id=emulator.cluster_ids[0]))
        emulator.inject(Fault(drop=True, cluster_id=emulator.cluster_ids[1], times=2))
        await served.collect()
    samples = _samples(served)["pg_backups_api_requests_total"]
    answered = sum(1 for r in emulator.requests if r.path.endswith("/backups") and not r.fault)
    assert samples[(("call", "Cluster.listBackups"), ("code", "503"))] == 1
    # aiohttp itself retries a request once on a dropped keep-alive connection: the
    # hooks see one of the two drops or both.
    assert samples[(("call", "Cluster.listBackups"), ("code", "error"))] >= 1
    assert samples[(("call", "Cluster.listBackups"), ("code", "200"))] == answered
    assert samples[(("call", "Cluster.list"), ("code", "200"))] == 1


async def test_a_cluster_whose_listing_fails_keeps_its_last_values(
    emulator: Emulator, client: pba.BackupsClient
) -> None:
    served = Exporter(client, folder_ids=[DEFAULT_FOLDER_ID])
    await served.collect()
    good = _samples(served)
    failing = emulator.cluster_ids[0]  # 250 backups, fresh
    emulator.inject(Fault(status=403, cluster_id=failing, times=10**6))
    await served.collect()
    await served.collect()
    kept = _samples(served)
    key = (("cluster_id", failing),)
    assert kept["pg_backups_cluster_up"][key] == 0
    assert (
        kept["pg_backups_cluster_last_success_timestamp_seconds"][key]
        == good["pg_backups_cluster_last_success_timestamp_seconds"][key]
    )
    for name, series in good.items():
        if name in ("pg_backups_cluster_up", "pg_backups_last_done_age_seconds"):
            continue
        if name.startswith(("pg_backups_collect", "pg_backups_api")):
            continue
        mine = {labels: v for labels, v in series.items() if ("cluster_id", failing) in labels}
        assert mine == {
            labels: v for labels, v in kept[name].items() if ("cluster_id", failing) in labels
        }, name
    assert key in kept["pg_backups_last_done_age_seconds"]
    assert kept["pg_backups_collect_errors_total"][()] == 0


async def test_a_cluster_never_listed_is_down_without_a_last_success(
    emulator: Emulator, client: pba.BackupsClient
) -> None:
    failing = emulator.cluster_ids[2]
    emulator.inject(Fault(status=403, cluster_id=failing, times=10**6))
    served = Exporter(client, folder_ids=[DEFAULT_FOLDER_ID])
    await served.collect()
    samples = _samples(served)
    key = (("cluster_id", failing),)
    assert samples["pg_backups_cluster_up"][key] == 0
    assert key not in samples["pg_backups_cluster_last_success_timestamp_seconds"]
    assert key not in samples["pg_backups_stale"]
    assert len(samples["pg_backups_cluster_last_success_timestamp_seconds"]) == 3


async def test_a_deleted_cluster_loses_its_series_at_the_next_collection(
    emulator: Emulator, client: pba.BackupsClient
) -> None:
    served = Exporter(client, folder_ids=[DEFAULT_FOLDER_ID])
    await served.collect()
    gone = emulator.cluster_ids[1]
    assert any(("cluster_id", gone) in k for k in _samples(served)["pg_backups_cluster_up"])
    emulator.remove_cluster(gone)
    await served.collect()
    for name, series in _samples(served).items():
        assert not any(("cluster_id", gone) in labels for labels in series), name


async def test_clusters_of_a_folder_that_cannot_be_listed_keep_their_values(
    emulator: Emulator, client: pba.BackupsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder that cannot be listed is a line of the inventory, with no cluster id.
    served = Exporter(client, folder_ids=[DEFAULT_FOLDER_ID])
    await served.collect()
    before = _samples(served)
    real = client.inventory

    async def partial(**kwargs: Any) -> pba.Inventory:
        lines = [line for line in await real(**kwargs) if line.cluster_id in kept]
        denied = pba.PermissionDeniedError("denied", http_status=403)
        return pba.Inventory(
            [*lines, pba.ClusterInventory("", folder_id=DEFAULT_FOLDER_ID, error=denied)]
        )

    kept = set(emulator.cluster_ids[:1])
    monkeypatch.setattr(client, "inventory", partial)
    await served.collect()
    after = _samples(served)
    assert len(after["pg_backups_cluster_info"]) == len(emulator.cluster_ids)
    for cluster_id in emulator.cluster_ids:
        key = (("cluster_id", cluster_id),)
        assert after["pg_backups_cluster_up"][key] == (1 if cluster_id in kept else 0)
        assert (
            after["pg_backups_done_size_bytes"][key] == before["pg_backups_done_size_bytes"][key]
        )
    # Once the folder is listed again, a cluster absent from it is gone.
    monkeypatch.setattr(client, "inventory", real)
    emulator.remove_cluster(emulator.cluster_ids[3])
    await served.collect()
    assert len(_samples(served)["pg_backups_cluster_info"]) == len(emulator.cluster_ids)


async def test_a_failed_collection_and_its_recovery_are_one_warning_each(
    emulator: Emulator, client: pba.BackupsClient, caplog: pytest.LogCaptureFixture
) -> None:
    served = Exporter(client, folder_ids=[DEFAULT_FOLDER_ID])
    caplog.set_level(logging.WARNING, logger="pg_backups_async")
    await served.collect()
    assert caplog.records == []
    emulator.inject(Fault(status=403))  # Cluster.list refused: the folder is not listed
    await served.collect()
    failing = emulator.cluster_ids[1]
    body = b'{"code": 7, "message": "denied\\u001b[2J"}'
    emulator.inject(Fault(status=403, cluster_id=failing, body=body, times=2))
    await served.collect()
    await served.collect()
    await served.collect()  # healthy again: no warning
    mine = [r for r in caplog.records if r.name == "pg_backups_async.exporter"]
    assert [r.levelno for r in mine] == [logging.WARNING] * 4
    messages = [r.getMessage() for r in mine]
    assert messages[0].startswith(
        "collection incomplete, keeping the last values: folders not listed: "
        f"{DEFAULT_FOLDER_ID} (PermissionDeniedError"
    )
    assert messages[1].startswith("collection incomplete, keeping the last values: 1 of 4")
    assert failing in messages[1]
    assert "denied\\x1b[2J" in messages[1]
    assert messages[2].startswith("collection incomplete, keeping the last values: 1 of 4")
    assert messages[3] == "collection recovered: all 4 clusters listed"


def test_the_log_handler_leaves_out_retry_details_unless_verbose() -> None:
    def emit(handler: logging.Handler) -> list[str]:
        stream = io.StringIO()
        handler.setStream(stream)  # type: ignore[attr-defined]
        for name, path, level, text in (
            (
                "pg_backups_async.exporter",
                "exporter.py",
                logging.WARNING,
                "collection failed: a\nb",
            ),
            ("pg_backups_async", "retry.py", logging.WARNING, "giving up after 3 attempts"),
            ("pg_backups_async", "retry.py", logging.DEBUG, "retrying after 0.1 s"),
            ("pg_backups_async", "auth.py", logging.WARNING, "keeping the current IAM token"),
        ):
            record = logging.LogRecord(name, level, f"/x/{path}", 1, text, None, None)
            if level >= handler.level:
                handler.handle(record)
        return stream.getvalue().splitlines()

    assert emit(log_handler()) == [
        "pg-backups: collection failed: a\\nb",
        "pg-backups: keeping the current IAM token",
    ]
    assert len(emit(log_handler(verbose=True))) == 4
    lines = emit(log_handler(fmt="json"))
    assert len(lines) == 2
    entry = json.loads(lines[0])
    assert entry["level"] == "warning"
    assert entry["logger"] == "pg_backups_async.exporter"
    assert entry["message"] == "collection failed: a\\nb"
    assert entry["time"].endswith("+00:00")


def test_the_json_formatter_writes_one_object_a_line_with_the_exception() -> None:
    def fail() -> None:
        raise ValueError("bad\nthing")

    try:
        fail()
    except ValueError:
        record = logging.LogRecord(
            "pg_backups_async", logging.ERROR, __file__, 1, "x %s", ("\x1b[31m",), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "x \\x1b[31m"
    assert "ValueError: bad\\nthing" in entry["exception"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"interval": 0}, "interval"),
        ({"interval": "60"}, "interval"),
        ({"interval": True}, "interval"),
        ({"interval": float("inf")}, "interval"),
        ({"concurrency": 2.5}, "concurrency"),
        ({"max_pages": 0}, "max_pages"),
        ({"stale_after": 3600}, "stale_after"),
        ({"folder_ids": DEFAULT_FOLDER_ID}, "folder_ids"),
        ({"folder_ids": ["../x"]}, "folder_id"),
        ({"folder_ids": [], "cluster_ids": [""]}, "cluster_id"),
        ({"folder_ids": []}, "nothing to watch"),
        ({"all_clouds": "yes"}, "all_clouds"),
        ({"organization_id": "bpf1"}, "all_clouds"),
        ({"on_collected": "print"}, "on_collected"),
        ({"requests": {}}, "requests"),
        ({"interval": 0.5}, "interval"),
        ({"interval": float("nan")}, "interval"),
        ({"concurrency": 0}, "concurrency"),
        ({"stale_after": timedelta(0)}, "stale_after"),
    ],
)
async def test_the_exporter_checks_its_arguments(
    client: pba.BackupsClient, kwargs: dict[str, Any], match: str
) -> None:
    """Issue 22.12: every argument, its type and its value, when the exporter is built."""
    kwargs = {"folder_ids": [DEFAULT_FOLDER_ID], **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        Exporter(client, **kwargs)
    with pytest.raises(TypeError, match="client"):
        Exporter("client", folder_ids=[DEFAULT_FOLDER_ID])  # type: ignore[arg-type]


def test_kept_values_turn_stale_at_scrape_time() -> None:
    done = datetime(2026, 12, 1, tzinfo=UTC)
    line = pba.ClusterInventory("c1", newest_done_at=done, oldest_done_at=done, stale=False)
    kept = [ClusterState(line, False, done.timestamp())]

    def stale(now: datetime) -> float:
        families = cluster_families(kept, now=now.timestamp(), stale_after=timedelta(hours=26))
        family = next(f for f in families if f.name == "pg_backups_stale")
        value: float = family.samples[0].value
        return value

    assert stale(done + timedelta(hours=25)) == 0
    assert stale(done + timedelta(hours=27)) == 1


def test_carry_keeps_drops_and_marks_down() -> None:
    now = 1000.0
    ok = pba.ClusterInventory("a", folder_id="f1", done_size=1)
    other = pba.ClusterInventory("b", folder_id="f2", done_size=2)
    state = carry({}, [ok, other], set(), now)
    assert {k: (v.up, v.last_success) for k, v in state.items()} == {
        "a": (True, now),
        "b": (True, now),
    }
    error = pba.ApiError("refused")
    failed = pba.ClusterInventory("a", folder_id="f1", error=error)
    later = carry(state, [failed], {"f2"}, now + 1)
    assert later["a"] == ClusterState(ok, False, now)
    assert later["b"] == ClusterState(other, False, now)
    assert carry(later, [failed], set(), now + 2) == {"a": ClusterState(ok, False, now)}
    assert carry({}, [failed], set(), now) == {"a": ClusterState(failed, False, None)}


def test_carry_keeps_the_clusters_of_a_cloud_that_cannot_be_listed() -> None:
    @attrs.frozen
    class _Line(pba.ClusterInventory):
        cloud_id: str = ""

    listed = _Line("a", folder_id="f1", cloud_id="cloud1")
    other = _Line("b", folder_id="f2", cloud_id="cloud2")
    state = carry({}, [listed, other], set(), 1.0)
    later = carry(state, [], set(), 2.0, failed_clouds={"cloud1"})
    assert later == {"a": ClusterState(listed, False, 1.0)}


def test_the_info_metric_carries_a_cloud_id_when_lines_have_one() -> None:
    @attrs.frozen
    class _Line(pba.ClusterInventory):
        cloud_id: str = ""

    line = _Line("c1", name="n", folder_id="f", cloud_id="b1gcloud")
    family = next(cluster_families([ClusterState(line, True, 1.0)], now=2.0))
    assert family.samples[0].labels == {
        "cluster_id": "c1",
        "cluster_name": "n",
        "folder_id": "f",
        "cluster_environment": "UNSPECIFIED",
        "cloud_id": "b1gcloud",
    }


async def test_a_large_scrape_renders_off_the_event_loop(
    exporter: Exporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rendering waits for a callback it hands the event loop: were it rendering on
    # the loop, the callback could not run until it returned. (Every scrape counts as
    # large here; a small one renders on the loop, see the next test.)
    from pg_backups_async import exporter as exporter_module

    monkeypatch.setattr(exporter_module, "RENDER_IN_THREAD_FROM", 0)
    loop = asyncio.get_running_loop()
    render = exporter.collect_metrics
    blocked = []

    def waiting(**kwargs: Any) -> Any:
        loop_ran = threading.Event()
        loop.call_soon_threadsafe(loop_ran.set)
        if not loop_ran.wait(5.0):
            blocked.append(True)
        return render(**kwargs)

    monkeypatch.setattr(exporter, "collect_metrics", waiting)
    samples = await _scrape(exporter.url)
    assert samples["pg_backups_cluster_up"]
    assert blocked == []


async def test_a_small_scrape_renders_on_the_loop(
    exporter: Exporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker thread keeps memory of its own allocator: for a few clusters (well under
    # a tenth of a second of rendering) the loop is the better place.
    render = exporter.collect_metrics
    threads = []

    def recorded(**kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return render(**kwargs)

    monkeypatch.setattr(exporter, "collect_metrics", recorded)
    assert (await _scrape(exporter.url))["pg_backups_cluster_up"]
    assert threads == [threading.get_ident()]


def _parsed(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_prerendered_text_is_what_the_families_give() -> None:
    done = datetime(2026, 12, 1, tzinfo=UTC)
    odd = 'c"1\\\n'  # a quote, a backslash and a line break: escaped alike
    lines = [
        pba.ClusterInventory(
            odd,
            name='n"\\',
            newest_done_at=done,
            oldest_done_at=done - timedelta(days=3),
            newest_done_at_by_type={"AUTOMATED": done},
            status_counts={"DONE": 3},
            done_size=7,
        ),
        pba.ClusterInventory("never", error=pba.ApiError("refused")),
        pba.ClusterInventory("none", stale=True),
    ]
    state = carry({}, lines, set(), done.timestamp()).values()
    now = (done + timedelta(hours=27)).timestamp()
    fast = scrape_time_text(prerender(state), now=now, stale_after=timedelta(hours=26))

    class _Families:
        def collect(self) -> Any:
            return cluster_families(state, now=now, stale_after=timedelta(hours=26))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families())  # type: ignore[arg-type]
    slow = generate_latest(registry)
    assert _parsed(fast.decode()) == _parsed(slow.decode())
    assert sorted(fast.splitlines()) == sorted(slow.splitlines())
    assert _parsed(fast.decode())["pg_backups_stale", (("cluster_id", odd),)] == 1


async def test_malformed_requests_get_400_and_log_nothing(
    exporter: Exporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    host, port = exporter.url.removeprefix("http://").split(":")
    for request in (
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\n\r\n",
    ):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), GUARD)
        writer.close()
        await writer.wait_closed()
        assert answer.startswith(b"HTTP/1.0 400 Bad Request")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    status, _, _ = await _get(f"{exporter.url}/healthz")
    assert status == 200


# Issue 22.7: connections that never finish their headers cannot lock scrapes out


async def _half_sent(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that sends part of a request's headers, and never the rest."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    return reader, writer


@pytest.fixture
async def guarded(client: pba.BackupsClient) -> AsyncIterator[Exporter]:
    served = Exporter(client, folder_ids=[DEFAULT_FOLDER_ID], interval=3600)
    yield served
    await served.stop()


async def test_half_sent_requests_cannot_take_every_connection(guarded: Exporter) -> None:
    url = await guarded.start("127.0.0.1", 0, max_connections=8, header_timeout=3600)
    await guarded.collect()
    held = [await _half_sent(url) for _ in range(30)]
    for _ in range(3):  # each scrape gets in, closing the oldest idle connection
        samples = await asyncio.wait_for(_scrape(url), GUARD)
        assert samples["pg_backups_cluster_up"]
    closed = 0
    for reader, writer in held:
        answer = await asyncio.wait_for(reader.read(), GUARD) if closed < 22 else b""
        closed += answer == b"" and reader.at_eof()
        writer.close()
    assert closed >= 22  # 30 + 3 scrapes through 8 places: 25 closed, the newest kept


async def test_a_connection_that_never_finishes_its_headers_is_closed(guarded: Exporter) -> None:
    url = await guarded.start("127.0.0.1", 0, header_timeout=0.5)
    reader, writer = await _half_sent(url)
    assert await asyncio.wait_for(reader.read(), GUARD) == b""  # closed, without an answer
    writer.close()
    status, _, _ = await _get(f"{url}/healthz")
    assert status in (200, 503)  # the server answers on


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"max_connections": 0}, "max_connections"), ({"header_timeout": 0}, "header_timeout")],
)
async def test_the_server_bounds_are_checked(
    guarded: Exporter, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        await guarded.start("127.0.0.1", 0, **kwargs)


# Issue 22.14: a scrape renders the clusters' series once a collection, off the loop


async def test_scrapes_reuse_the_rendering_of_their_collection(
    exporter: Exporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pg_backups_async import exporter as exporter_module

    renders = []
    real = exporter_module.prerender

    def counted(states: Any) -> Any:
        renders.append(threading.get_ident())
        return real(states)

    monkeypatch.setattr(exporter_module, "prerender", counted)
    monkeypatch.setattr(exporter_module, "RENDER_IN_THREAD_FROM", 0)  # as if it were large
    await exporter.collect()
    for _ in range(3):
        assert (await _scrape(exporter.url))["pg_backups_cluster_up"]
    assert len(renders) == 1  # once for the collection, not once a scrape
    assert renders[0] != threading.get_ident()  # in a worker thread


# Issue 22.2: the exporter bounds each listing


async def test_the_exporter_bounds_each_listing() -> None:
    async with (
        Emulator(backups_page_size=2) as emulator,
        pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url, retry=FAST_RETRY) as client,
    ):
        assert emulator.backup_count(emulator.cluster_ids[0]) > 2
        served = Exporter(
            client, cluster_ids=[emulator.cluster_ids[0]], interval=3600, max_pages=1
        )
        await served.collect()
    assert served.snapshot is not None
    [line] = served.snapshot.lines
    assert isinstance(line.error, pba.ResponseFormatError)
    assert "max_pages=1" in str(line.error)


# Issue 22.5: a server's long message stays short on /healthz and in the log


async def test_a_huge_server_message_is_cut_on_healthz_and_in_the_log(
    emulator: Emulator, client: pba.BackupsClient, caplog: pytest.LogCaptureFixture
) -> None:
    huge = json.dumps({"code": 7, "message": "x" * 5_000_000}).encode()
    emulator.inject(Fault(status=403, body=huge))
    caplog.set_level(logging.DEBUG)
    collected = asyncio.Event()
    served = Exporter(
        client,
        folder_ids=[DEFAULT_FOLDER_ID],
        interval=3600,
        on_collected=lambda _: collected.set(),
    )
    url = await served.start("127.0.0.1", 0)
    try:
        await asyncio.wait_for(collected.wait(), GUARD)
        status, _, text = await _get(f"{url}/healthz")
    finally:
        await served.stop()
    assert status == 503
    assert "characters, cut" in text
    assert len(text) <= 3 * pba.ApiError.max_text
    assert max(len(r.getMessage()) for r in caplog.records) <= 4 * pba.ApiError.max_text

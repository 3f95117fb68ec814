"""The emulator speaks the service's format; raw HTTP, no client in between."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys

import aiohttp
import attrs
import orjson
import pytest

from pg_backups_async import Backup, wire
from pg_backups_async.emulator import DEFAULT_FOLDER_ID, Emulator, Fault, emulator_process
from tests.conftest import ANCHOR, run_cli

AUTH = {"Authorization": "Bearer x"}


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, orjson.loads(await response.read())


def _backups_url(emulator: Emulator, cluster: str, query: str = "") -> str:
    return f"{emulator.url}/managed-postgresql/v1/clusters/{cluster}/backups{query}"


async def test_seeding_is_deterministic() -> None:
    first, second = Emulator(anchor=ANCHOR, seed=7), Emulator(anchor=ANCHOR, seed=7)
    assert first.cluster_ids == second.cluster_ids
    assert all(first.backups(c) == second.backups(c) for c in first.cluster_ids)
    assert Emulator(anchor=ANCHOR, seed=8).cluster_ids != first.cluster_ids
    assert [first.backup_count(c) for c in first.cluster_ids] == [250, 40, 7, 0]
    assert all(re.fullmatch(r"[a-z0-9]{20}", c) for c in first.cluster_ids)


async def test_pages_in_the_services_encoding(emulator: Emulator) -> None:
    cluster = emulator.cluster_ids[1]
    status, body = await _get(_backups_url(emulator, cluster, "?pageSize=2"), AUTH)
    assert status == 200
    assert body["nextPageToken"] == "Mg=="
    backups = body["backups"]
    assert isinstance(backups, list)
    assert len(backups) == 2
    first = backups[1]  # only the newest can still be CREATING, without a size
    assert first["size"].isdigit()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?Z", first["startedAt"])
    assert set(first) <= {wire.camel(a.name) for a in attrs.fields(Backup)}
    status, last = await _get(_backups_url(emulator, cluster, "?pageSize=100"), AUTH)
    assert "nextPageToken" not in last


async def test_empty_cluster_is_an_empty_object(emulator: Emulator) -> None:
    assert await _get(_backups_url(emulator, emulator.cluster_ids[3]), AUTH) == (200, {})


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [("?pageSize=1001", 400, 3), ("?pageSize=-1", 400, 3), ("?pageToken=bm9wZQ==", 400, 3)],
)
async def test_invalid_arguments(emulator: Emulator, query: str, status: int, code: int) -> None:
    got_status, body = await _get(_backups_url(emulator, emulator.cluster_ids[0], query), AUTH)
    assert (got_status, body["code"]) == (status, code)


async def test_errors_are_google_rpc_status(emulator: Emulator) -> None:
    status, body = await _get(_backups_url(emulator, "c9qnosuchcluster0000"), AUTH)
    assert status == 404
    assert body["code"] == 5
    assert body["message"] == "Cluster c9qnosuchcluster0000 not found"
    [detail] = body["details"]  # type: ignore[misc]
    assert detail["@type"] == "type.googleapis.com/google.rpc.RequestInfo"


async def test_authorization_is_required(emulator: Emulator) -> None:
    status, body = await _get(_backups_url(emulator, emulator.cluster_ids[0]))
    assert (status, body["code"]) == (401, 16)
    emulator.tokens = {"good"}
    status, _ = await _get(_backups_url(emulator, emulator.cluster_ids[0]), AUTH)
    assert status == 401


async def test_scripted_faults_and_max_in_flight(emulator: Emulator) -> None:
    emulator.inject(Fault(status=429, retry_after="5", cluster_id=emulator.cluster_ids[1]))
    other = _backups_url(emulator, emulator.cluster_ids[0])
    assert (await _get(other, AUTH))[0] == 200  # the fault waits for its cluster
    async with aiohttp.ClientSession() as session:
        url = _backups_url(emulator, emulator.cluster_ids[1])
        async with session.get(url, headers=AUTH) as response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "5"
            assert (await response.json())["code"] == 8
    assert emulator.pending_faults == 0
    assert emulator.max_in_flight == 1


def test_serves_from_the_command_line() -> None:
    import urllib.request

    with emulator_process("--clusters", "2") as (url, clusters):
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        assert len(clusters) == 2
        request = urllib.request.Request(
            f"{url}/managed-postgresql/v1/clusters/{clusters[0]}/backups?pageSize=3",
            headers=AUTH,
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert len(orjson.loads(response.read())["backups"]) == 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_readme_command_serves_on_the_port_it_names() -> None:
    port = _free_port()
    command = [sys.executable, "-m", "pg_backups_async.emulator", "--port", str(port)]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as served:
        try:
            assert served.stdout is not None
            banner = [served.stdout.readline() for _ in range(8)]
            assert banner[0] == f"emulator serving on http://127.0.0.1:{port}\n"
            assert f"folder {DEFAULT_FOLDER_ID}: 4 clusters\n" in banner
            [hint] = [line for line in banner if line.startswith("try: ")]
            from pg_backups_async.emulator.__main__ import cli_command

            assert hint == (
                f"try: YC_IAM_TOKEN=any {cli_command()} inventory "
                f"--endpoint http://127.0.0.1:{port} --folder-id {DEFAULT_FOLDER_ID}\n"
            )
            # The command it suggests works as written (here in-process).
            args = hint.split(" inventory ", 1)[1].split()
            args.insert(0, "inventory")
            result = run_cli(*args, token="any")
            assert result.returncode in (0, 1), result.stderr
            assert "4 clusters:" in result.stderr
            # A second emulator on the same port fails clearly.
            taken = subprocess.run(
                command, capture_output=True, text=True, timeout=30, check=False
            )
            assert taken.returncode == 1
            assert taken.stderr.startswith(f"emulator: cannot serve on 127.0.0.1:{port}:")
        finally:
            served.terminate()
            served.wait(timeout=10)


def test_the_folder_id_is_chosen_and_the_data_stays_deterministic() -> None:
    with (
        emulator_process("--folder-id", "b1gmyfolder", "--seed", "7") as (url, first),
        emulator_process("--seed", "7") as (_, second),
    ):
        assert first == second  # the same seed, the same clusters
        result = run_cli(
            "clusters", "--endpoint", url, "--folder-id", "b1gmyfolder", "--format", "jsonl"
        )
        assert result.returncode == 0, result.stderr
        assert [orjson.loads(line)["id"] for line in result.stdout.splitlines()] == first


async def test_listing_size_repeats_the_backups() -> None:
    async with Emulator(
        anchor=ANCHOR, clusters=2, backups_per_cluster=7, listing_size=2500
    ) as emu:
        import pg_backups_async as pba

        async with pba.BackupsClient(pba.IamToken("t"), endpoint=emu.url) as client:
            listed = [b async for b in client.list_backups(emu.cluster_ids[0], page_size=1000)]
        assert len(listed) == 2500
        assert listed[:7] == emu.backups(emu.cluster_ids[0])
        assert listed[7:14] == listed[:7]
        assert len(emu.requests) == 3


def test_complete_backups_have_every_field_and_nanoseconds() -> None:
    emulator = Emulator(anchor=ANCHOR, clusters=1, backups_per_cluster=10, complete=True)
    raw = emulator.store.encoded_backups(emulator.cluster_ids[0])
    assert raw is not None
    done = [b for b in raw if b.get("status") == "DONE"]
    assert done
    assert all(len(b) == 13 for b in done)  # every one of the 13 fields present
    assert all(b["createdAt"].endswith("123Z") for b in raw[1::2])
    assert all(len(b["createdAt"]) == len("2026-11-28T00:00:00.123456789Z") for b in raw[1::2])
    parsed = emulator.backups(emulator.cluster_ids[0])  # structured as the client would
    assert all(b.retain_until is not None for b in parsed if b.created_at is not None)


GUARD = 10.0  # seconds: a hung test fails instead of hanging; never a measurement


async def test_a_client_that_goes_away_is_no_error(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 22.18: a disconnect before the answer is written logs nothing."""
    import asyncio
    import logging

    caplog.set_level(logging.DEBUG)
    async with Emulator() as emulator:
        path = f"/managed-postgresql/v1/clusters/{emulator.cluster_ids[0]}/backups"
        host, port = emulator.url.removeprefix("http://").split(":")
        faults = [
            Fault(status=None, truncate=True, delay=0.05),
            Fault(status=None, stall=True, delay=0.05),
            Fault(status=503, delay=0.05),
            Fault(status=None, delay=0.05),
        ]
        for number, fault in enumerate(faults, start=1):
            emulator.inject(fault)
            _, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n".encode()
            )
            await writer.drain()
            await asyncio.wait_for(emulator.wait_for_requests(number), GUARD)
            writer.transport.abort()
            await asyncio.wait_for(emulator.wait_until_idle(), GUARD)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_serving_beyond_loopback_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 22.18: it accepts any token, and says so when others can reach it."""
    import logging

    caplog.set_level(logging.WARNING, logger="pg_backups_async.emulator")
    async with Emulator() as emulator:
        pass
    assert caplog.records == []
    emulator = Emulator()
    await emulator.start("0.0.0.0", 0)  # noqa: S104 - what the test is about
    await emulator.stop()
    [record] = caplog.records
    assert "beyond this machine" in record.getMessage()
    assert "accepts any token" in record.getMessage()


def test_the_try_line_runs_as_printed() -> None:
    """Issue 21: the banner's command works without activating the environment."""
    import os
    import shlex

    process = subprocess.Popen(
        [sys.executable, "-m", "pg_backups_async.emulator", "--port", "0", "--host", "0.0.0.0"],  # noqa: S104
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        line = next(line for line in process.stdout if line.startswith("try: "))
        words = shlex.split(line.removeprefix("try: "))
        assert words[0] == "YC_IAM_TOKEN=any"
        assert words[1] != "pg-backups"  # not a bare name that needs the venv on PATH
        env = {k: v for k, v in os.environ.items() if not k.startswith("YC_")}
        env["PATH"] = "/usr/bin:/bin"  # as a shell without the venv activated has it
        result = subprocess.run(
            words[1:],
            env={**env, "YC_IAM_TOKEN": "any"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode in (0, 1), result.stderr  # fresh or stale: it ran
        assert "4 clusters" in result.stderr
    finally:
        process.terminate()
        process.wait(timeout=10)
        warnings = process.stderr.read()  # all of it, once the process has ended
        process.stdout.close()
        process.stderr.close()
    assert warnings.startswith("emulator: warning: serving on http://0.0.0.0:")
    assert "accepts any token" in warnings


async def test_a_stalled_answer_lets_go_when_its_client_goes_away() -> None:
    # Held until the emulator stopped, each stalled answer kept its connection's buffers:
    # the exporter soak grew 15 MB in ten minutes of random faults.
    import pg_backups_async as pba

    async with Emulator() as emulator:
        emulator.inject(Fault(status=None, stall=True))
        async with pba.BackupsClient(
            pba.IamToken("t1.token"),
            endpoint=emulator.url,
            retry=pba.RetryPolicy.disabled(),
            timeout=0.2,
        ) as client:
            with pytest.raises(pba.NetworkError):
                await client.get_backups_page(emulator.cluster_ids[0])
        async with asyncio.timeout(10):  # a guard: without the fix, until the emulator stops
            await emulator.wait_until_idle()
        assert emulator.in_flight == 0

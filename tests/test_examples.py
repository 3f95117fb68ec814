"""The web-backend examples, run as users run them: real HTTP, many callers, a shutdown
with requests in flight under `python -X dev` (no unclosed session, no destroyed task)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

import pg_backups_async as pba
from pg_backups_async.emulator import DEFAULT_FOLDER_ID, Emulator
from tests.conftest import TOKEN

EXAMPLES = Path(__file__).parent.parent / "examples"
GUARD = 30.0  # seconds: a hung test fails instead of hanging; never a measurement
WARNINGS = ("Unclosed", "Task was destroyed", "was never awaited", "ResourceWarning", "Traceback")

sys.path.insert(0, str(EXAMPLES))
import aiohttp_app  # noqa: E402 - the example, imported as its users would run it


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _get_all(url: str, count: int) -> list[tuple[int, object]]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=count)) as session:

        async def get() -> tuple[int, object]:
            async with session.get(url) as response:
                return response.status, await response.json()

        return await asyncio.gather(*(get() for _ in range(count)))


async def _check_answers(base: str, emulator: Emulator) -> None:
    cluster = emulator.cluster_ids[0]
    expected = [pba.to_dict(b) for b in emulator.backups(cluster)[:50]]
    answers = await _get_all(f"{base}/clusters/{cluster}/backups?limit=50", 200)
    assert all(status == 200 for status, _ in answers)
    assert all(body == expected for _, body in answers)
    [(status, _)] = await _get_all(f"{base}/clusters/c9qnosuchcluster0000/backups", 1)
    assert status == 404
    [(status, body)] = await _get_all(f"{base}/clusters/bad!id/backups", 1)
    assert status == 400
    assert "cluster_id" in str(body)
    [(status, lines)] = await _get_all(f"{base}/inventory?folder_id={DEFAULT_FOLDER_ID}", 1)
    assert status == 200
    assert isinstance(lines, list)
    assert [line["cluster_id"] for line in lines] == emulator.cluster_ids


async def test_the_aiohttp_app_in_process(emulator: Emulator) -> None:
    app = aiohttp_app.make_app(pba.IamToken(TOKEN), endpoint=emulator.url)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        await _check_answers(str(server.make_url("")).rstrip("/"), emulator)
    finally:
        await server.close()
    assert app[aiohttp_app.CLIENT]._state == "closed"  # closed with the app


@pytest.fixture
async def served_emulator() -> AsyncIterator[Emulator]:
    async with Emulator(clusters=4) as emulator:
        yield emulator


@pytest.mark.parametrize("framework", ["aiohttp", "fastapi"])
async def test_the_examples_serve_and_shut_down_cleanly(
    served_emulator: Emulator, framework: str
) -> None:
    emulator, port = served_emulator, _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("YC_")}
    env.update(
        YC_IAM_TOKEN=TOKEN, YC_ENDPOINT=emulator.url, PORT=str(port), PYTHONWARNINGS="default"
    )
    if framework == "aiohttp":
        command = [sys.executable, "-X", "dev", str(EXAMPLES / "aiohttp_app.py")]
        ready = "Running on"
    else:
        command = [
            sys.executable, "-X", "dev", "-m", "uvicorn", "--app-dir", str(EXAMPLES),
            "fastapi_app:app", "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        ready = "Uvicorn running on"
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        while not any(ready in line for line in output):
            line = await asyncio.wait_for(process.stdout.readline(), GUARD)
            assert line, "".join(output)
            output.append(line.decode())
        base = f"http://127.0.0.1:{port}"
        await asyncio.wait_for(_check_answers(base, emulator), GUARD)
        # Now stop it with requests in flight: each waits half a second at the service.
        emulator.latency = 0.5
        arrived = len(emulator.requests)
        in_flight = asyncio.create_task(
            _get_all(f"{base}/clusters/{emulator.cluster_ids[1]}/backups", 20)
        )
        await asyncio.wait_for(emulator.wait_for_requests(arrived + 20), GUARD)
        process.send_signal(signal.SIGINT)
        finished = await asyncio.wait_for(asyncio.gather(in_flight, return_exceptions=True), GUARD)
        code = await asyncio.wait_for(process.wait(), GUARD)
        output.append((await process.stdout.read()).decode())
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = "".join(output)
    assert code == 0, text
    assert not [warning for warning in WARNINGS if warning in text], text
    [answers] = finished
    assert not isinstance(answers, BaseException), answers
    assert [status for status, _ in answers] == [200] * 20  # in flight, answered, then closed

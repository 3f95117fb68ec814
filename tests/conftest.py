"""Shared fixtures: an emulator on loopback and a client pointed at it."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import pg_backups_async as pba
from pg_backups_async.emulator import Emulator

FIXTURES = Path(__file__).parent / "fixtures"
ANCHOR = datetime(2026, 11, 28, tzinfo=UTC)
TOKEN = "t1.9euelZqSecretTokenValue"
FAST_RETRY = pba.RetryPolicy(max_attempts=5, base_delay=0.001, max_delay=0.01, max_time=10.0)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def our_tasks() -> list[asyncio.Task[Any]]:
    """Tasks this library started that have not finished."""
    return [
        t
        for t in asyncio.all_tasks()
        if t.get_name().startswith("pg-backups-async") and not t.done()
    ]


@pytest.fixture(autouse=True)
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """Fail a test that leaves a task of ours running or makes the loop report an error
    ("Task was destroyed but it is pending", "exception was never retrieved")."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield errors
    gc.collect()
    assert our_tasks() == []
    assert errors == []


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(anchor=ANCHOR) as emu:
        yield emu


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[pba.BackupsClient]:
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), endpoint=emulator.url, retry=FAST_RETRY
    ) as c:
        yield c


def run_cli(
    *args: str, token: str | None = TOKEN, folder: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`pg-backups ARGS` in a subprocess, with only the YC_ variables given here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YC_")}
    if token is not None:
        env["YC_IAM_TOKEN"] = token
    if folder is not None:
        env["YC_FOLDER_ID"] = folder
    return subprocess.run(
        [sys.executable, "-m", "pg_backups_async.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

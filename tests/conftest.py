"""Shared fixtures: an emulator on loopback and a client pointed at it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import pg_backups_async as pba
from pg_backups_async import cli
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "collect_garbage: collect garbage after the test, so that a task or stream it "
        "dropped is reported (leaks of streams and fan-outs)",
    )


@pytest.fixture(autouse=True)
async def loop_errors(request: pytest.FixtureRequest) -> AsyncIterator[list[dict[str, Any]]]:
    """Fail a test that leaves a task of ours running or makes the loop report an error
    ("Task was destroyed but it is pending", "exception was never retrieved"). Tests
    marked `collect_garbage` also collect garbage first, so that what they dropped is
    finalized and reported; it costs a third of the suite's time, so only they do."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield errors
    if request.node.get_closest_marker("collect_garbage"):
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


def _yc_variables(token: str | None, folder: str | None) -> dict[str, str]:
    variables = {}
    if token is not None:
        variables["YC_IAM_TOKEN"] = token
    if folder is not None:
        variables["YC_FOLDER_ID"] = folder
    return variables


@contextlib.contextmanager
def _only_these_yc_variables(variables: dict[str, str]) -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("YC_")}
    for name in saved:
        del os.environ[name]
    os.environ.update(variables)
    try:
        yield
    finally:
        for name in [k for k in os.environ if k.startswith("YC_")]:
            del os.environ[name]
        os.environ.update(saved)


class CliResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def run_cli(
    *args: str,
    token: str | None = TOKEN,
    folder: str | None = None,
    env: dict[str, str] | None = None,
) -> CliResult:
    """`pg-backups ARGS` in this process (`cli.main`), with only the YC_ variables given
    here (`env` adds more); call it where no event loop is running (a plain test, or a
    worker thread)."""
    out, err = io.StringIO(), io.StringIO()
    with (
        _only_these_yc_variables({**_yc_variables(token, folder), **(env or {})}),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = cli.main(list(args))
        except SystemExit as exit:  # argparse's usage errors
            code = exit.code if isinstance(exit.code, int) else 2
    return CliResult(code, out.getvalue(), err.getvalue())


def run_cli_process(
    *args: str, token: str | None = TOKEN, folder: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`pg-backups ARGS` in a subprocess, with only the YC_ variables given here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YC_")}
    env.update(_yc_variables(token, folder))
    return subprocess.run(
        [sys.executable, "-m", "pg_backups_async.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

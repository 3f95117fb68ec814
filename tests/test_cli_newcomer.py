"""The command line as a new user meets it: version, help, messages in its own words,
filters, a streamed table, a well-formed document after an error, and an exact resume."""

from __future__ import annotations

import argparse
import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from importlib.metadata import version

import orjson
import pytest

import pg_backups_async as pba
from pg_backups_async import cli
from pg_backups_async.emulator import DEFAULT_FOLDER_ID, Emulator, Fault
from tests.conftest import run_cli

GUARD = 10.0  # seconds: a hung test fails instead of hanging; never a measurement


def test_version() -> None:
    assert pba.__version__ == version("pg-backups-async")
    result = run_cli("--version")
    assert (result.returncode, result.stdout) == (0, f"pg-backups {pba.__version__}\n")


def test_every_option_says_its_default() -> None:
    parser = cli.build_parser()
    formatter = cli.HelpFormatter("pg-backups")
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == {
        "list",
        "clouds",
        "folders",
        "clusters",
        "inventory",
        "demo",
        "exporter",
    }
    for name, command in commands.choices.items():
        for action in command._actions:
            if not action.option_strings or action.dest == "help":
                continue
            shown = (formatter._get_help_string(action) or "") % {"default": action.default}
            assert shown.count("(default: ") == 1, (name, action.option_strings, shown)
            assert "(default: None)" not in shown


async def test_verbose_before_or_after_the_command(emulator: Emulator) -> None:
    for args in (("-v", "list"), ("list", "-v")):
        emulator.inject(Fault(status=503, retry_after="0"))
        result = await asyncio.to_thread(
            run_cli, *args, emulator.cluster_ids[2], "--endpoint", emulator.url
        )
        assert result.returncode == 0, result.stderr
        assert "pg-backups: retrying after attempt 1" in result.stderr


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("127.0.0.1:8080", "'127.0.0.1:8080' has no scheme: write https://127.0.0.1:8080"),
        ("", "--endpoint is empty"),
    ],
)
def test_an_endpoint_without_a_scheme_or_empty_is_a_clear_error(
    endpoint: str, message: str
) -> None:
    result = run_cli("list", "c9q", "--endpoint", endpoint)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert message in line


async def test_an_oauth_token_from_the_environment_gets_a_notice(emulator: Emulator) -> None:
    result = await asyncio.to_thread(
        run_cli,
        "list",
        emulator.cluster_ids[2],
        "--endpoint",
        emulator.url,
        "--iam-endpoint",
        emulator.url,
        token=None,
        env={"YC_OAUTH_TOKEN": "y0_unknown"},
    )
    assert "pg-backups: notice: OAuth tokens are being retired" in result.stderr.splitlines()[0]
    assert result.returncode == 2  # the emulator knows no such OAuth token


async def test_an_inventory_that_finds_no_cluster_exits_1(emulator: Emulator) -> None:
    result = await asyncio.to_thread(
        run_cli, "inventory", "--endpoint", emulator.url, "--folder-id", "b1gmistyped"
    )
    assert result.returncode == 1
    assert "pg-backups: no cluster found in folder b1gmistyped" in result.stderr


async def test_inventory_only_some_states(emulator: Emulator) -> None:
    common = ("inventory", "--endpoint", emulator.url, "--format", "jsonl")
    every = await asyncio.to_thread(run_cli, *common, "--folder-id", DEFAULT_FOLDER_ID)
    only = await asyncio.to_thread(
        run_cli, *common, "--folder-id", DEFAULT_FOLDER_ID, "--only", "no-backups,error"
    )
    states = [orjson.loads(line)["state"] for line in every.stdout.splitlines()]
    kept = [orjson.loads(line)["state"] for line in only.stdout.splitlines()]
    assert kept == [state for state in states if state in ("no backups", "error")]
    assert kept  # the emulator's fourth cluster has no backups
    assert only.returncode == every.returncode  # the exit status counts every cluster


async def test_list_filters(emulator: Emulator) -> None:
    cluster = emulator.cluster_ids[0]
    backups = emulator.backups(cluster)
    created = sorted(b.created_at for b in backups if b.created_at is not None)
    since, until = created[10], created[60]
    result = await asyncio.to_thread(
        run_cli,
        "list",
        cluster,
        "--endpoint",
        emulator.url,
        "--format",
        "jsonl",
        "--status",
        "done",
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
    )
    assert result.returncode == 0, result.stderr
    ids = [orjson.loads(line)["id"] for line in result.stdout.splitlines()]
    expected = [
        b.id
        for b in backups
        if b.status is pba.BackupStatus.DONE
        and b.created_at is not None
        and since <= b.created_at < until
    ]
    assert ids == expected
    assert 0 < len(ids) < 60
    limited = await asyncio.to_thread(
        run_cli,
        "list",
        cluster,
        "--endpoint",
        emulator.url,
        "--format",
        "jsonl",
        "--status",
        "creating,done",
        "--max-items",
        "3",
    )
    assert len(limited.stdout.splitlines()) == 3


async def test_a_table_is_written_as_the_backups_arrive() -> None:
    release, waiting = asyncio.Event(), asyncio.Event()

    async def two_then_wait() -> AsyncIterator[pba.Backup]:
        yield pba.Backup(id="c9q:first")
        yield pba.Backup(id="c9q:second")
        waiting.set()  # the writer has asked for the third: it has written the second
        await release.wait()
        yield pba.Backup(id="c9q:third")

    out = io.StringIO()
    writing = asyncio.create_task(cli.write_items(two_then_wait(), out, "table", cli.BACKUPS))
    await asyncio.wait_for(waiting.wait(), GUARD)
    assert [line.split()[0] for line in out.getvalue().splitlines()] == [
        "ID",
        "c9q:first",
        "c9q:second",
    ]
    release.set()
    assert await asyncio.wait_for(writing, GUARD) == 3
    lines = out.getvalue().splitlines()
    assert len({line.index("CREATED") if i == 0 else 0 for i, line in enumerate(lines)}) <= 2
    assert all(len(line) <= len(lines[0]) + 10 for line in lines)


async def test_json_stays_well_formed_and_the_listing_resumes_exactly(
    emulator: Emulator,
) -> None:
    cluster = emulator.cluster_ids[0]
    emulator.inject(Fault(status=None), Fault(status=None), Fault(status=403))
    common = ("list", cluster, "--endpoint", emulator.url, "--page-size", "20")
    failed = await asyncio.to_thread(run_cli, *common, "--format", "json")
    assert failed.returncode == 2
    first = orjson.loads(failed.stdout)  # a whole document: the backups received
    assert len(first) == 40
    error, hint = failed.stderr.splitlines()
    assert error.startswith("pg-backups: PermissionDeniedError: HTTP 403")
    assert hint == (
        "pg-backups: to carry on from there, run the same command with --page-token '~0~NDA='"
    )
    resumed = await asyncio.to_thread(
        run_cli, *common, "--format", "json", "--page-token", "~0~NDA="
    )
    rest = orjson.loads(resumed.stdout)
    assert [b["id"] for b in first + rest] == [b.id for b in emulator.backups(cluster)]
    # A resume point in the middle of a page, from the command line too.
    middle = await asyncio.to_thread(
        run_cli, *common, "--format", "jsonl", "--page-token", "~5~NDA=", "--max-items", "2"
    )
    assert [orjson.loads(line)["id"] for line in middle.stdout.splitlines()] == [
        b.id for b in emulator.backups(cluster)[45:47]
    ]


def test_demo_json_is_one_document_and_clusters_must_be_positive() -> None:
    result = run_cli("demo", "--format", "json", token=None)
    assert result.returncode == 0, result.stderr
    document = orjson.loads(result.stdout)
    # The seeded organization's 18 clusters, and its folder that cannot be listed.
    assert (len(document["backups"]), len(document["inventory"])) == (5, 19)
    for count in ("0", "-1"):
        refused = run_cli("demo", "--clusters", count, token=None)
        assert refused.returncode == 2
        assert "argument --clusters" in refused.stderr
        assert "Traceback" not in refused.stderr


def test_polish() -> None:
    assert cli.human_size(1015 * 1024**3) == "0.99 TiB"
    assert cli.human_size(999 * 1024**3) == "999.0 GiB"
    assert cli.human_size(512) == "512 B"
    assert cli.human_age(timedelta(days=1, minutes=7)) == "1d0h07m"
    one = [pba.ClusterInventory("c9q", newest_done_age=timedelta(hours=1))]
    assert cli.inventory_summary(one).startswith("1 cluster: 1 ok")
    failed = [pba.ClusterInventory("c9q", error=pba.NotFoundError("gone"))]
    assert cli.inventory_summary(failed).endswith("1 error")
    assert cli.csv_cell(True) == "true"
    assert cli.csv_cell(False) == "false"
    states = [cli.INVENTORY.row(line)[-1] for line in one + failed]
    assert states == ["ok", "error: NotFoundError: gone"]


# Issue 21's new-user list


async def test_list_says_where_to_carry_on_after_max_items(emulator: Emulator) -> None:
    cluster = emulator.cluster_ids[0]
    common = ("list", cluster, "--endpoint", emulator.url, "--page-size", "20")
    first = await asyncio.to_thread(run_cli, *common, "--max-items", "25", "--format", "jsonl")
    assert first.returncode == 0
    hint = first.stderr.splitlines()[-1]
    assert hint.startswith("pg-backups: to carry on from there, run the same command with ")
    token = hint.rsplit(" ", 1)[-1].strip("'")
    rest = await asyncio.to_thread(run_cli, *common, "--page-token", token, "--format", "jsonl")
    ids = [orjson.loads(line)["id"] for line in (first.stdout + rest.stdout).splitlines()]
    assert ids == [b.id for b in emulator.backups(cluster)]
    assert "carry on" not in rest.stderr  # it ran to the end


async def test_list_says_where_to_carry_on_after_ctrl_c(emulator: Emulator) -> None:
    import os
    import signal
    import sys

    from tests.conftest import TOKEN

    cluster = emulator.cluster_ids[0]
    emulator.inject(Fault(status=None), Fault(status=None, stall=True))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pg_backups_async.cli",
        "list",
        cluster,
        "--endpoint",
        emulator.url,
        "--page-size",
        "20",
        "--format",
        "jsonl",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "YC_IAM_TOKEN": TOKEN},
    )
    await asyncio.wait_for(emulator.wait_for_requests(2), GUARD)
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), GUARD)
    assert process.returncode == 130
    assert len(out.decode().splitlines()) == 20
    assert err.decode().splitlines()[-1] == (
        "pg-backups: to carry on from there, run the same command with --page-token '~0~MjA='"
    )


async def test_clusters_in_an_empty_folder_says_so_and_exits_1(emulator: Emulator) -> None:
    result = await asyncio.to_thread(
        run_cli, "clusters", "--endpoint", emulator.url, "--folder-id", "b1gmistyped"
    )
    assert result.returncode == 1
    assert "pg-backups: no cluster found in folder b1gmistyped" in result.stderr
    found = await asyncio.to_thread(
        run_cli, "clusters", "--endpoint", emulator.url, "--folder-id", DEFAULT_FOLDER_ID
    )
    assert found.returncode == 0


def test_the_missing_extra_error_gives_both_install_commands() -> None:
    from pg_backups_async import exporter

    if not exporter.MISSING:  # installed here: the message is the fallback's text
        import inspect

        source = inspect.getsource(exporter)
    else:
        source = exporter.MISSING
    assert "pip install -e '.[exporter]'" in source
    assert "pip install 'pg-backups-async[exporter]'" in source


def test_the_docs_name_what_the_emulator_has_and_the_footer_has_a_holder() -> None:
    import re
    import runpy
    from pathlib import Path

    docs = Path(__file__).parent.parent / "docs"
    page = (docs / "getting-started.md").read_text()
    named = set(re.findall(r"\bc9q[a-z0-9]{17}\b", page))
    assert named
    assert named <= set(Emulator().cluster_ids)
    api = (docs / "api.md").read_text()
    assert "autoclass:: pg_backups_async.emulator.Emulator" in api
    testing = (docs / "guides" / "testing.md").read_text()
    for name in (DEFAULT_FOLDER_ID, *Emulator().cluster_ids, "bpfemulatororg000000"):
        assert name in testing
    conf = runpy.run_path(str(docs / "conf.py"))
    assert conf["copyright"].strip()  # furo's footer: "Copyright © <this>"

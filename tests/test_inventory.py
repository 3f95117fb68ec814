"""Inventories: the pure summary, the client's discovery + fan-out, the CLI's exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

import pg_backups_async as pba
from pg_backups_async.cli import human_age, inventory_exit_code, parse_duration
from pg_backups_async.emulator import DEFAULT_FOLDER_ID, Emulator, Fault, emulator_process
from pg_backups_async.inventory import summarize
from tests.conftest import ANCHOR, TOKEN, CliResult, run_cli

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
GIB = 1 << 30


def _backup(hours_ago: float, **kwargs: object) -> pba.Backup:
    created = NOW - timedelta(hours=hours_ago)
    defaults: dict[str, object] = {
        "created_at": created,
        "status": pba.BackupStatus.DONE,
        "method": pba.BackupMethod.INCREMENTAL,
        "size": GIB,
    }
    defaults.update(kwargs)
    return pba.Backup(id=f"c:{hours_ago}", **defaults)  # type: ignore[arg-type]


def test_summary_of_a_healthy_cluster() -> None:
    backups = (
        _backup(2, method=pba.BackupMethod.BASE, size=10 * GIB),
        _backup(26.5),
        _backup(50.5),
    )
    line = summarize(pba.ClusterBackups("c", backups), None, now=NOW)
    assert line.backup_count == 3
    assert (line.total_size, line.base_size, line.incremental_size) == (
        12 * GIB,
        10 * GIB,
        2 * GIB,
    )
    assert line.newest_created_at == NOW - timedelta(hours=2)
    assert line.oldest_created_at == NOW - timedelta(hours=50.5)
    assert line.newest_done_age == timedelta(hours=2)
    assert (line.stale, line.state) == (False, "ok")


def test_a_backup_still_being_created_does_not_count_as_fresh() -> None:
    backups = (
        _backup(1, status=pba.BackupStatus.CREATING, created_at=None),
        _backup(30),
        _backup(3, status=pba.BackupStatus.UNKNOWN),
    )
    line = summarize(pba.ClusterBackups("c", backups), None, now=NOW)
    assert line.newest_done_age == timedelta(hours=30)
    assert (line.stale, line.state) == (True, "stale")
    line = summarize(
        pba.ClusterBackups("c", backups), None, now=NOW, stale_after=timedelta(hours=31)
    )
    assert line.state == "ok"


def test_legacy_backups_without_a_status_count_as_completed() -> None:
    line = summarize(
        pba.ClusterBackups("c", (_backup(5, status=pba.BackupStatus.UNSPECIFIED),)), None, now=NOW
    )
    assert line.newest_done_age == timedelta(hours=5)


def test_no_backups_and_errors() -> None:
    cluster = pba.Cluster(id="c", name="billing", folder_id="f")
    empty = summarize(pba.ClusterBackups("c", ()), cluster, now=NOW)
    assert (empty.state, empty.stale, empty.name, empty.folder_id) == (
        "no backups",
        True,
        "billing",
        "f",
    )
    error = pba.NotFoundError("gone", http_status=404)
    failed = summarize(pba.ClusterBackups("c", error=error), cluster, now=NOW)
    assert (failed.state, failed.error, failed.backup_count) == ("error", error, 0)


async def test_inventory_of_a_folder_and_named_clusters() -> None:
    now = ANCHOR
    async with Emulator(anchor=ANCHOR, clusters=12) as emulator:
        missing = "c9qnosuchcluster0000"
        progress: list[tuple[int, int]] = []
        async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url) as client:
            lines = await client.inventory(
                folder_ids=[DEFAULT_FOLDER_ID],
                cluster_ids=[emulator.cluster_ids[0], missing],
                concurrency=4,
                now=now,
                on_progress=lambda done, total: progress.append((done, total)),
            )
        assert [line.cluster_id for line in lines] == [*emulator.cluster_ids, missing]
        by_id = {line.cluster_id: line for line in lines}
        for cluster_id in emulator.cluster_ids:
            backups = emulator.backups(cluster_id)
            line = by_id[cluster_id]
            assert line.name == emulator.clusters[cluster_id].name
            assert line.backup_count == len(backups)
            assert line.total_size == sum(b.size for b in backups)
        assert [line.state for line in lines[:6]] == [
            "ok",
            "ok",
            "ok",
            "no backups",
            "ok",
            "stale",
        ]
        assert isinstance(by_id[missing].error, pba.NotFoundError)
        assert progress[-1] == (13, 13)
        assert [done for done, _ in progress] == list(range(1, 14))


async def test_inventory_needs_something_to_check(client: pba.BackupsClient) -> None:
    with pytest.raises(ValueError, match="folder_ids, cluster_ids"):
        await client.inventory()
    with pytest.raises(ValueError, match="stale_after"):
        await client.inventory(cluster_ids=["c9q"], stale_after=timedelta(0))


async def test_a_folder_that_cannot_be_listed_is_a_line_not_the_end(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    emulator.tokens = {"someone-else"}
    lines = await client.inventory(folder_ids=[DEFAULT_FOLDER_ID])
    [line] = lines
    assert (line.scope, line.folder_id, line.cluster_id) == ("folder", DEFAULT_FOLDER_ID, "")
    assert isinstance(line.error, pba.UnauthenticatedError)
    assert line.state == "error"
    assert lines.failures == [line]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("26h", timedelta(hours=26)),
        ("90m", timedelta(minutes=90)),
        ("1d12h", timedelta(hours=36)),
        ("3600", timedelta(hours=1)),
        ("1w", timedelta(days=7)),
        ("2.5h", timedelta(hours=2.5)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "h", "26x", "-5h", "0", "1h-1m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(Exception, match="duration"):
        parse_duration(text)


def test_human_age() -> None:
    assert human_age(None) == "-"
    assert human_age(timedelta(minutes=42)) == "42m"
    assert human_age(timedelta(hours=5, minutes=3)) == "5h03m"
    assert human_age(timedelta(days=3, hours=4, minutes=59)) == "3d4h59m"
    assert human_age(timedelta(days=1, minutes=5)) == "1d0h05m"


def test_exit_codes() -> None:
    ok = pba.ClusterInventory("a", newest_done_age=timedelta(hours=1))
    stale = pba.ClusterInventory("b", newest_done_age=timedelta(days=3), stale=True)
    none = pba.ClusterInventory("c", stale=True)
    failed = pba.ClusterInventory("d", error=pba.NotFoundError("x"))
    assert inventory_exit_code([ok]) == 0
    assert inventory_exit_code([ok, stale]) == 1
    assert inventory_exit_code([ok, none]) == 1
    assert inventory_exit_code([ok, stale, failed]) == 2
    assert inventory_exit_code([]) == 0


# The command line, against an emulator process of 12 clusters (3 empty, 1 stale).


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, list[str]]]:
    with emulator_process("--clusters", "12") as served:
        yield served


def run(*args: str, folder: str | None = None) -> CliResult:
    return run_cli(*args, folder=folder)


def test_inventory_exit_status_1_when_stale(served: tuple[str, list[str]]) -> None:
    url, _ = served
    result = run("inventory", "--endpoint", url, folder=DEFAULT_FOLDER_ID)
    assert result.returncode == 1, result.stderr
    assert len(result.stdout.splitlines()) == 13
    assert "12 clusters: 8 ok, 1 stale, 3 without a completed backup, 0 errors" in result.stderr
    assert "[#" not in result.stderr  # no progress bar when stderr is not a terminal


def test_inventory_exit_status_0_when_fresh(served: tuple[str, list[str]]) -> None:
    url, clusters = served
    result = run("inventory", "--endpoint", url, "--cluster-id", clusters[0], "--format", "json")
    assert result.returncode == 0, result.stderr
    assert '"state":"ok"' in result.stdout


def test_inventory_stale_after(served: tuple[str, list[str]]) -> None:
    url, clusters = served
    common = ("inventory", "--endpoint", url, "--cluster-id", clusters[5])
    assert run(*common).returncode == 1
    assert run(*common, "--stale-after", "5d").returncode == 0


def test_inventory_exit_status_2_on_errors(served: tuple[str, list[str]]) -> None:
    url, clusters = served
    result = run(
        "inventory",
        "--endpoint",
        url,
        "--cluster-id",
        clusters[0],
        "--cluster-id",
        "c9qnosuchcluster0000",
        "--format",
        "csv",
    )
    assert result.returncode == 2
    assert "NotFoundError" in result.stdout


def test_inventory_usage(served: tuple[str, list[str]]) -> None:
    url, _ = served
    result = run("inventory", "--endpoint", url)
    assert result.returncode == 2
    assert "nothing to check" in result.stderr
    assert run("inventory", "--stale-after", "soon", "--cluster-id", "c9q").returncode == 2


def test_clusters_command(served: tuple[str, list[str]]) -> None:
    url, clusters = served
    result = run("clusters", "--endpoint", url, "--format", "jsonl", folder=DEFAULT_FOLDER_ID)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 12
    assert clusters[3] in result.stdout
    named = run(
        "clusters",
        "--endpoint",
        url,
        "--folder-id",
        DEFAULT_FOLDER_ID,
        "--filter",
        'name="cluster-0004"',
    )
    assert named.stdout.splitlines()[1].startswith(clusters[4])
    assert run("clusters", "--endpoint", url).returncode == 2


def test_progress_is_drawn_only_on_a_terminal() -> None:
    import io

    from pg_backups_async.cli.render import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress(stream, "inventory")
        progress(1, 4)
        progress(4, 4)
        progress.clear()
    assert "inventory [#######" in terminal.getvalue()
    assert "4/4 clusters" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\x1b[K")
    assert pipe.getvalue() == ""


async def test_named_clusters_learn_their_name_folder_and_environment(
    emulator: Emulator,
) -> None:
    named = emulator.cluster_ids[:3]
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url) as client:
        lines = await client.inventory(cluster_ids=named, concurrency=2, now=ANCHOR)
    for line in lines:
        cluster = emulator.clusters[line.cluster_id]
        assert line.name == cluster.name != ""
        assert line.folder_id == cluster.folder_id == DEFAULT_FOLDER_ID
        assert line.environment is cluster.environment
        assert line.error is None
    gets = [r for r in emulator.requests if not r.path.endswith("/backups")]
    assert len(gets) == len(named)  # one Cluster.get each, in the same fan-out


async def test_a_named_cluster_whose_get_fails_keeps_its_line(emulator: Emulator) -> None:
    cluster_id = emulator.cluster_ids[0]
    emulator.inject(Fault(status=403, cluster_id=cluster_id))  # Cluster.get comes first
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url) as client:
        [line] = await client.inventory(cluster_ids=[cluster_id], now=ANCHOR)
    assert line.error is None
    assert line.name == ""
    assert line.backup_count == len(emulator.backups(cluster_id))


def test_inventory_names_a_cluster_given_by_id(served: tuple[str, list[str]]) -> None:
    url, clusters = served
    result = run("inventory", "--endpoint", url, "--cluster-id", clusters[0], "--format", "json")
    [line] = json.loads(result.stdout)
    assert line["name"] not in ("", "-")

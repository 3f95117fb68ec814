"""`pg-backups` as a user runs it, against the emulator in another process.

The commands run in this process through `cli.main(argv)`; one smoke test runs the
real thing in a subprocess.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import orjson
import pytest

from pg_backups_async.emulator import emulator_process
from tests.conftest import CliResult, run_cli, run_cli_process

SECRET = "t1.secret-token-value"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, list[str]]]:
    """An emulator process: its URL and cluster ids (250, 40, 7 and 0 backups)."""
    with emulator_process() as served:
        yield served


def run(*args: str, token: str | None = SECRET) -> CliResult:
    return run_cli(*args, token=token)


def test_smoke_in_a_subprocess(served: tuple[str, list[str]]) -> None:
    url, clusters = served
    result = run_cli_process("list", clusters[1], "--endpoint", url, "-v", "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 40
    assert SECRET not in result.stdout + result.stderr


def test_table(served: tuple[str, list[str]]) -> None:
    url, clusters = served
    result = run("list", clusters[1], "--endpoint", url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "CREATED",
        "(UTC)",
        "TYPE",
        "METHOD",
        "STATUS",
        "SIZE",
        "JOURNAL",
    ]
    assert len(lines) == 41
    assert all(line.startswith(clusters[1] + ":") for line in lines[1:])


def test_json_formats_agree(served: tuple[str, list[str]]) -> None:
    url, clusters = served
    common = ("list", clusters[0], "--endpoint", url, "--page-size", "100")
    as_json = orjson.loads(run(*common, "--format", "json").stdout)
    as_jsonl = [
        orjson.loads(line) for line in run(*common, "--format", "jsonl").stdout.splitlines()
    ]
    as_csv = list(csv.DictReader(io.StringIO(run(*common, "--format", "csv").stdout)))
    assert len(as_json) == 250
    assert as_json == as_jsonl
    assert [row["id"] for row in as_csv] == [item["id"] for item in as_json]
    first = as_json[0]
    assert isinstance(first["size"], int)
    assert first["type"] in ("AUTOMATED", "MANUAL")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", first["started_at"])


def test_empty_json_is_an_empty_array(served: tuple[str, list[str]]) -> None:
    url, clusters = served
    result = run("list", clusters[3], "--endpoint", url, "--format", "json")
    assert orjson.loads(result.stdout) == []


def test_max_items(served: tuple[str, list[str]]) -> None:
    url, clusters = served
    result = run("list", clusters[0], "--endpoint", url, "--max-items", "3", "--format", "jsonl")
    assert len(result.stdout.splitlines()) == 3


@pytest.mark.parametrize(
    ("args", "token", "code", "message"),
    [
        (("list", "c9qnosuchcluster0000"), SECRET, 2, "NotFoundError: HTTP 404 NOT_FOUND"),
        (("list", "../etc"), SECRET, 2, "cluster_id '../etc' contains '/'"),
        (
            ("list", "c9q"),
            None,
            2,
            "no credentials: pass --iam-token or --service-account-key FILE, or set one of",
        ),
        (("list", "c9q"), "two words", 2, "IAM token contains whitespace"),
    ],
)
def test_errors_are_one_line_without_traceback(
    served: tuple[str, list[str]],
    args: tuple[str, ...],
    token: str | None,
    code: int,
    message: str,
) -> None:
    url, _ = served
    result = run(*args, "--endpoint", url, token=token)
    assert result.returncode == code
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert message in line
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--page-size", "0"), "argument --page-size: 0 is not between 1 and 1000"),
        (("--max-items", "-1"), "argument --max-items: -1 is not at least 1"),
        (("--status", "done,lost"), "argument --status: 'lost' is not a status"),
        (("--since", "yesterday"), "argument --since: 'yesterday' is neither a time"),
    ],
)
def test_bad_options_are_named_as_the_shell_user_typed_them(
    args: tuple[str, ...], message: str
) -> None:
    result = run("list", "c9q", *args)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith("usage: pg-backups list")
    assert message in result.stderr.splitlines()[-1]


def test_plain_http_elsewhere_is_refused() -> None:
    result = run("list", "c9q", "--endpoint", "http://mdb.api.cloud.yandex.net")
    assert result.returncode == 2
    assert "unencrypted" in result.stderr


def test_the_token_never_appears_in_output(served: tuple[str, list[str]]) -> None:
    url, clusters = served
    for args in (
        ("list", clusters[1], "--endpoint", url, "-v"),
        ("list", "c9qnosuchcluster0000", "--endpoint", url, "-v"),
        ("list", clusters[1], "--endpoint", url, "--iam-token", SECRET, "-v"),
    ):
        result = run(*args)
        assert SECRET not in result.stdout + result.stderr


def test_demo() -> None:
    result = run("demo", token=None)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ID ")
    assert lines[6].startswith("CLUSTER ")
    # The whole seeded organization: the default folder's 12 clusters, 6 more in the
    # other ACTIVE folders, and one line for the folder whose clusters cannot be listed.
    assert len(lines) == 1 + 5 + 1 + 12 + 6 + 1
    assert lines[-1].startswith("-  ")
    assert "folder b1gemulatorfolder004" in lines[-1]
    assert (
        "18 clusters: 14 ok, 1 stale, 3 without a completed backup, 0 errors; not listed: 1 folder"
    ) in result.stderr
    assert "skipped 1 folder not ACTIVE: b1gemulatorfolder002 (PENDING_DELETION)" in result.stderr
    assert "would exit 2" in result.stderr

"""Data out: one definition of each model as JSON, used by the library and the CLI."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pg_backups_async as pba
from pg_backups_async.emulator import DEFAULT_FOLDER_ID, Emulator
from tests.conftest import ANCHOR, TOKEN, run_cli


def test_a_backup_as_json() -> None:
    backup = pba.Backup(
        id="c9q:b1",
        created_at=datetime(2026, 11, 28, 1, 2, 3, 456789, tzinfo=UTC),
        size=5_368_709_120,
        type=pba.BackupType.AUTOMATED,
        status=pba.BackupStatus.DONE,
    )
    data = orjson.loads(pba.to_json(backup))
    assert data == pba.to_dict(backup)
    assert data["created_at"] == "2026-11-28T01:02:03.456789Z"
    assert data["started_at"] is None
    assert data["size"] == 5_368_709_120
    assert (data["type"], data["method"], data["status"]) == ("AUTOMATED", "UNSPECIFIED", "DONE")
    assert list(data) == [a.name for a in pba.Backup.__attrs_attrs__]


def test_an_inventory_line_with_an_error_says_nothing_secret() -> None:
    error = pba.UnavailableError("down", http_status=503, code=14, request_id="r-1")
    error.client_request_id = "c-1"
    line = pba.ClusterInventory(
        "c9q", newest_done_age=timedelta(hours=26, microseconds=5), error=error
    )
    data = pba.to_dict(line)
    assert data["error"] == {
        "type": "UnavailableError",
        "message": "down",
        "http_status": 503,
        "code": 14,
        "request_id": "r-1",
    }
    assert data["newest_done_age"] == 93600.000005  # seconds
    assert data["state"] == "error"
    orjson.dumps(data)  # JSON-ready as it is


async def test_every_model_round_trips(emulator: Emulator, client: pba.BackupsClient) -> None:
    cluster_id = emulator.cluster_ids[0]
    page = await client.get_backups_page(cluster_id, page_size=50)
    clusters = await client.get_clusters_page(DEFAULT_FOLDER_ID)
    lines = await client.inventory(folder_ids=[DEFAULT_FOLDER_ID], now=ANCHOR)
    results = [r async for r in client.list_backups_many([cluster_id, "c9qnosuchcluster0000"])]
    for obj in (page, *page.backups, clusters, *clusters.clusters, *lines, *results):
        data = pba.to_dict(obj)
        back = pba.from_dict(type(obj), orjson.loads(orjson.dumps(data)))
        assert pba.to_dict(back) == data
        if getattr(obj, "error", None) is None:
            assert back == obj
    missing = next(r for r in results if r.error is not None)
    back = pba.from_dict(pba.ClusterBackups, pba.to_dict(missing))
    assert isinstance(back.error, pba.NotFoundError)
    assert back.error.http_status == 404


@given(
    st.builds(
        pba.Backup,
        id=st.text(max_size=20),
        created_at=st.none() | st.datetimes(timezones=st.just(UTC)),
        size=st.integers(0, 2**63 - 1),
        status=st.sampled_from(pba.BackupStatus),
        method=st.sampled_from(pba.BackupMethod),
    )
)
def test_any_backup_round_trips(backup: pba.Backup) -> None:
    assert pba.from_dict(pba.Backup, orjson.loads(pba.to_json(backup))) == backup


def test_what_is_not_a_model_is_refused() -> None:
    with pytest.raises(TypeError, match="to_dict takes Backup"):
        pba.to_dict({"id": "x"})
    with pytest.raises(TypeError, match="from_dict takes"):
        pba.from_dict(dict, {})  # type: ignore[type-var]
    with pytest.raises(ValueError, match="not a Backup"):
        pba.from_dict(pba.Backup, {"id": "x", "status": "LOST"})


async def test_the_cli_writes_the_same_json(emulator: Emulator) -> None:
    cluster_id = emulator.cluster_ids[1]
    result = await asyncio.to_thread(
        run_cli, "list", cluster_id, "--endpoint", emulator.url, "--format", "jsonl", token=TOKEN
    )
    written = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert written == [pba.to_dict(b) for b in emulator.backups(cluster_id)]


@pytest.mark.parametrize("cls", [pba.NetworkError, pba.AuthError, pba.ResponseFormatError])
def test_an_error_read_back_is_whole(cls: type[pba.ApiError]) -> None:
    data = {"type": cls.__name__, "message": "m", "http_status": 503, "code": 14}
    error = pba.from_dict(pba.ClusterBackups, {"cluster_id": "c", "error": data}).error
    assert type(error) is cls
    assert (error.message, error.http_status, error.code) == ("m", 503, 14)
    assert isinstance(error.retryable, bool)  # every attribute its class reads is there
    assert str(error).startswith("HTTP 503 UNAVAILABLE: m")


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (pba.Backup, "size", "5"),
        (pba.Backup, "size", 1.9),
        (pba.Backup, "size", True),
        (pba.Backup, "id", None),
        (pba.Backup, "id", 5),
        (pba.Backup, "folder_id", ["b1g"]),
        (pba.ClusterInventory, "backup_count", "3"),
        (pba.ClusterInventory, "newest_done_age", "3600"),
        (pba.ClusterInventory, "newest_done_age", True),
        (pba.ClusterInventory, "status_counts", {"DONE": "3"}),
        (pba.ClusterInventory, "error", {"type": "NotFoundError", "message": 404}),
        (pba.ClusterInventory, "error", {"message": "gone", "http_status": "404"}),
        (pba.Cluster, "labels", {"env": 1}),
        (pba.Cluster, "labels", {"env": None}),
    ],
)
def test_from_dict_coerces_nothing(cls: type[object], field: str, value: object) -> None:
    """Issue 22.15: a value of the wrong type is refused, never converted."""
    sample = {
        pba.Backup: pba.Backup(id="c9q:b1"),
        pba.ClusterInventory: pba.ClusterInventory("c9q"),
        pba.Cluster: pba.Cluster(id="c9q", folder_id="b1g"),
    }[cls]
    data = pba.to_dict(sample)
    assert pba.from_dict(cls, data) == sample
    data[field] = value
    with pytest.raises(ValueError, match=field):
        pba.from_dict(cls, data)


def test_from_dict_takes_what_to_dict_gives_with_every_type() -> None:
    error = pba.NotFoundError("gone", http_status=404, code=5, request_id="r")
    line = pba.ClusterInventory(
        "c9q",
        backup_count=3,
        newest_done_age=timedelta(seconds=90),
        status_counts={"DONE": 3},
        error=error,
    )
    back = pba.from_dict(pba.ClusterInventory, pba.to_dict(line))
    assert back.newest_done_age == timedelta(seconds=90)
    assert back.status_counts == {"DONE": 3}
    assert isinstance(back.error, pba.NotFoundError)
    assert (back.error.http_status, back.error.code) == (404, 5)
    data = pba.to_dict(line)
    data["newest_done_age"] = 90  # whole seconds are a number too
    assert pba.from_dict(pba.ClusterInventory, data).newest_done_age == timedelta(seconds=90)

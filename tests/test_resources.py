"""Clusters, folder backups and single backups, over HTTP against the emulator."""

from __future__ import annotations

import orjson
import pytest

import pg_backups_async as pba
from pg_backups_async import calls, protocol, wire
from pg_backups_async.emulator import DEFAULT_FOLDER_ID, Emulator, encoding
from tests.conftest import fixture_bytes


def test_clusters_sample() -> None:
    page = wire.parse_page(fixture_bytes("clusters-list.json"), pba.ClustersPage)
    prod, scratch = page.clusters
    assert prod.name == "billing-prod"
    assert prod.labels == {"team": "billing"}
    assert prod.environment is pba.ClusterEnvironment.PRODUCTION
    assert prod.health is pba.ClusterHealth.ALIVE
    assert prod.status is pba.ClusterStatus.RUNNING
    assert prod.deletion_protection is True
    assert scratch.description == ""
    assert scratch.labels == {}
    assert scratch.deletion_protection is False
    assert scratch.health is pba.ClusterHealth.DEGRADED
    raw = orjson.loads(fixture_bytes("clusters-list.json"))["clusters"]
    assert [encoding.to_wire(c) for c in page.clusters] == raw


def test_cluster_enums_are_tolerant() -> None:
    cluster = wire.structure(
        {"id": "c", "health": "HEALTH_UNKNOWN", "status": "HIBERNATING", "environment": "QA"},
        pba.Cluster,
    )
    assert cluster.health is pba.ClusterHealth.UNSPECIFIED
    assert cluster.status is pba.ClusterStatus.UNKNOWN
    assert cluster.environment is pba.ClusterEnvironment.UNKNOWN


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"clusters": [{"id": "c", "labels": {"a": 1}}]}', "clusters[0].labels"),
        (b'{"clusters": [{"id": "c", "labels": ["a"]}]}', "clusters[0].labels"),
        (
            b'{"clusters": [{"id": "c", "deletionProtection": "yes"}]}',
            "clusters[0].deletionProtection",
        ),
        (b'{"clusters": 3}', "clusters"),
    ],
)
def test_malformed_clusters(body: bytes, field: str) -> None:
    with pytest.raises(pba.ResponseFormatError) as caught:
        wire.parse_page(body, pba.ClustersPage)
    assert caught.value.field == field


def test_backup_get_sample() -> None:
    backup = wire.parse(fixture_bytes("backup-get.json"), pba.Backup)
    assert backup.id == "c9qk2b1dn8hbg7r0cvf4:base_000000010000000A000000C3"
    assert backup.retention_policy_name == "monthly-keep-12"


def test_requests() -> None:
    arguments = {"folder_id": "b1g", "page_size": 10, "page_token": "Mg==", "filter": 'name="x"'}
    assert calls.LIST_CLUSTERS.request(arguments) == protocol.Request(
        calls.MANAGED_POSTGRESQL,
        "/managed-postgresql/v1/clusters",
        (("folderId", "b1g"), ("pageSize", "10"), ("pageToken", "Mg=="), ("filter", 'name="x"')),
    )
    assert calls.LIST_FOLDER_BACKUPS.request({"folder_id": "b1g"}).query == (("folderId", "b1g"),)
    assert calls.GET_BACKUP.request({"backup_id": "c9q:base_00A_D"}).path == (
        "/managed-postgresql/v1/backups/c9q:base_00A_D"
    )


@pytest.mark.parametrize("backup_id", ["", "a/b", "c9q:../x/..", "..", "c9q:base?x", "a" * 257])
def test_hostile_backup_ids(backup_id: str) -> None:
    with pytest.raises(ValueError, match="backup_id"):
        calls.GET_BACKUP.request({"backup_id": backup_id})


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: calls.LIST_CLUSTERS.request({"folder_id": ""}), "folder_id"),
        (lambda: calls.LIST_CLUSTERS.request({"folder_id": "b1g/x"}), "folder_id"),
        (
            lambda: calls.LIST_CLUSTERS.request({"folder_id": "b1g", "filter": "x" * 1001}),
            "filter",
        ),
        (
            lambda: calls.LIST_FOLDER_BACKUPS.request({"folder_id": "b1g", "page_size": 0}),
            "page_size",
        ),
    ],
)
def test_bad_arguments(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


async def test_list_clusters(client: pba.BackupsClient, emulator: Emulator) -> None:
    async with client.list_clusters(DEFAULT_FOLDER_ID, page_size=3) as stream:
        clusters = [c async for c in stream]
    assert [c.id for c in clusters] == emulator.cluster_ids
    assert clusters[1] == emulator.clusters[emulator.cluster_ids[1]]
    assert [r.query.get("pageToken") for r in emulator.requests] == [None, "Mw=="]


async def test_list_clusters_by_name(client: pba.BackupsClient, emulator: Emulator) -> None:
    found = [
        c async for c in client.list_clusters(DEFAULT_FOLDER_ID, filter='name="cluster-0002"')
    ]
    assert [c.id for c in found] == [emulator.cluster_ids[2]]
    assert emulator.requests[0].query["filter"] == 'name="cluster-0002"'


async def test_unsupported_filter_is_the_services_error(client: pba.BackupsClient) -> None:
    with pytest.raises(pba.InvalidArgumentError, match="only name"):
        await client.get_clusters_page(DEFAULT_FOLDER_ID, filter="status=RUNNING")


async def test_another_folder_is_empty(client: pba.BackupsClient) -> None:
    assert [c async for c in client.list_clusters("b1gotherfolder000000")] == []


async def test_list_folder_backups(client: pba.BackupsClient, emulator: Emulator) -> None:
    backups = [b async for b in client.list_folder_backups(DEFAULT_FOLDER_ID, page_size=1000)]
    expected = [b for c in emulator.cluster_ids for b in emulator.backups(c)]
    assert backups == expected
    assert len(backups) == 297
    assert emulator.requests[0].path == "/managed-postgresql/v1/backups"
    assert emulator.requests[0].query == {"folderId": DEFAULT_FOLDER_ID, "pageSize": "1000"}


async def test_get_backup_sends_the_colon_as_is(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    expected = emulator.backups(emulator.cluster_ids[2])[3]
    assert await client.get_backup(expected.id) == expected
    assert emulator.requests[0].path == f"/managed-postgresql/v1/backups/{expected.id}"
    with pytest.raises(pba.NotFoundError, match="Backup c9q:nope not found"):
        await client.get_backup("c9q:nope")

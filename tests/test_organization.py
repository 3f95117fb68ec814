"""Resource Manager's calls, and discovery across an organization: clouds, their folders,
the folders' clusters, in one inventory."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import orjson
import pytest

import pg_backups_async as pba
from pg_backups_async.emulator import (
    DEFAULT_CLOUD_ID,
    DEFAULT_FOLDER_ID,
    DEFAULT_ORGANIZATION_ID,
    FORBIDDEN_FOLDER_ID,
    Emulator,
)
from tests.conftest import ANCHOR, FAST_RETRY, TOKEN, fixture_bytes, run_cli

STAGING_CLOUD = "b1gemulatorcloud0001"
RETIRED_FOLDER = "b1gemulatorfolder002"


@pytest.fixture
async def org() -> AsyncIterator[Emulator]:
    """The seeded organization, with pages of at most two items."""
    async with Emulator(anchor=ANCHOR, organization=True, max_page_size=2) as emulator:
        yield emulator


@pytest.fixture
async def org_client(org: Emulator) -> AsyncIterator[pba.BackupsClient]:
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=org.url, retry=FAST_RETRY) as c:
        yield c


def _listable_clusters(emulator: Emulator) -> set[str]:
    """The clusters of every ACTIVE folder whose clusters can be listed."""
    return {
        cluster.id
        for cluster in emulator.clusters.values()
        if emulator.folders[cluster.folder_id].status is pba.FolderStatus.ACTIVE
        and cluster.folder_id != FORBIDDEN_FOLDER_ID
    }


# The calls


def test_the_samples_structure() -> None:
    from pg_backups_async import wire

    clouds = wire.parse_page(fixture_bytes("clouds-list.json"), pba.CloudsPage)
    assert [c.name for c in clouds.clouds] == ["prod", "staging"]
    assert clouds.clouds[0].labels == {"owner": "platform"}
    assert clouds.next_page_token == "b1gcloudstage0000002"
    folders = wire.parse_page(fixture_bytes("folders-list.json"), pba.FoldersPage)
    assert [f.status for f in folders.folders] == [
        pba.FolderStatus.ACTIVE,
        pba.FolderStatus.PENDING_DELETION,
    ]
    unknown = wire.parse(b'{"id": "b1g", "status": "ARCHIVED"}', pba.Folder)
    assert unknown.status is pba.FolderStatus.UNKNOWN


async def test_clouds_and_folders_are_paged_and_resumed(
    org: Emulator, org_client: pba.BackupsClient
) -> None:
    clouds = [c.id async for c in org_client.list_clouds()]
    assert clouds == [DEFAULT_CLOUD_ID, STAGING_CLOUD]
    folders = [f.id async for f in org_client.list_folders(DEFAULT_CLOUD_ID)]
    assert folders == [DEFAULT_FOLDER_ID, "b1gemulatorfolder001", RETIRED_FOLDER]
    assert len([r for r in org.requests if r.path.endswith("/folders")]) == 2  # pages of two
    by_one = [f.id async for f in org_client.list_folders(DEFAULT_CLOUD_ID, page_size=1)]
    assert by_one == folders
    # A stream stopped after one folder resumes exactly there.
    async with org_client.list_folders(DEFAULT_CLOUD_ID, max_items=1) as stream:
        assert [f.id async for f in stream] == [DEFAULT_FOLDER_ID]
        point = stream.resume_point
    rest = [f.id async for f in org_client.list_folders(DEFAULT_CLOUD_ID, resume=point)]
    assert rest == folders[1:]


async def test_get_cloud_and_folder(org: Emulator, org_client: pba.BackupsClient) -> None:
    cloud = await org_client.get_cloud(STAGING_CLOUD)
    assert (cloud.name, cloud.organization_id) == ("staging", DEFAULT_ORGANIZATION_ID)
    folder = await org_client.get_folder(RETIRED_FOLDER)
    assert folder.status is pba.FolderStatus.PENDING_DELETION
    with pytest.raises(pba.NotFoundError):
        await org_client.get_cloud("b1gnosuchcloud")
    with pytest.raises(pba.NotFoundError):
        await org_client.get_folders_page("b1gnosuchcloud")
    with pytest.raises(ValueError, match="cloud_id"):
        await org_client.get_cloud("../x")
    page = await org_client.get_clouds_page(DEFAULT_ORGANIZATION_ID, page_size=1)
    assert [c.id for c in page.clouds] == [DEFAULT_CLOUD_ID]
    assert page.next_page_token is not None


async def test_resource_manager_goes_where_it_is_told(org: Emulator) -> None:
    credentials = pba.IamToken(TOKEN)
    default = pba.BackupsClient(credentials)
    assert default.resource_manager_endpoint == "https://resource-manager.api.cloud.yandex.net"
    assert pba.BackupsClient(credentials, endpoint=org.url).resource_manager_endpoint == org.url
    async with Emulator(anchor=ANCHOR) as other:
        async with pba.BackupsClient(
            credentials, endpoint=other.url, resource_manager_endpoint=org.url
        ) as client:
            assert len([c async for c in client.list_clouds()]) == 2  # the organization's
            await client.get_backups_page(other.cluster_ids[0])
        assert [r.path for r in other.requests if "resource-manager" in r.path] == []
    assert all(r.path.startswith("/resource-manager/") for r in org.requests)
    with pytest.raises(ValueError, match=r"refusing plain http:// to example\.com"):
        pba.BackupsClient(credentials, resource_manager_endpoint="http://example.com")
    with pytest.raises(ValueError, match="resource_manager_endpoint must look like"):
        pba.BackupsClient(credentials, resource_manager_endpoint="ftp://example.com")


# Discovery and the inventory


async def test_an_inventory_of_clouds(org: Emulator, org_client: pba.BackupsClient) -> None:
    lines = await org_client.inventory(cloud_ids=[DEFAULT_CLOUD_ID, STAGING_CLOUD], now=ANCHOR)
    clusters = [line for line in lines if line.cluster_id]
    assert {line.cluster_id for line in clusters} == _listable_clusters(org)
    assert len(clusters) == len(_listable_clusters(org))
    for line in clusters:
        cluster = org.clusters[line.cluster_id]
        assert line.folder_id == cluster.folder_id
        assert line.cloud_id == org.folders[cluster.folder_id].cloud_id
    # The folder whose clusters cannot be listed is one line; the retired one is skipped.
    [failure] = lines.failures
    assert (failure.scope, failure.folder_id, failure.cloud_id) == (
        "folder",
        FORBIDDEN_FOLDER_ID,
        STAGING_CLOUD,
    )
    assert isinstance(failure.error, pba.PermissionDeniedError)
    assert lines[-1] is failure
    assert [f.id for f in lines.skipped_folders] == [RETIRED_FOLDER]
    assert not any("folderId=" + RETIRED_FOLDER in str(r.query) for r in org.requests)
    assert all(r.query.get("folderId") != RETIRED_FOLDER for r in org.requests)


async def test_a_cluster_reached_twice_is_reported_once(
    org: Emulator, org_client: pba.BackupsClient
) -> None:
    named = org.cluster_ids[0]
    lines = await org_client.inventory(
        cloud_ids=[DEFAULT_CLOUD_ID, DEFAULT_CLOUD_ID],
        folder_ids=[DEFAULT_FOLDER_ID],
        cluster_ids=[named],
        now=ANCHOR,
    )
    counts = Counter(line.cluster_id for line in lines)
    assert counts[named] == 1
    assert max(counts.values()) == 1
    line = next(line for line in lines if line.cluster_id == named)
    assert line.cloud_id == DEFAULT_CLOUD_ID  # found through its cloud, not only by name


async def test_all_clouds_with_and_without_an_organization(
    org: Emulator, org_client: pba.BackupsClient
) -> None:
    everything = await org_client.inventory(all_clouds=True, now=ANCHOR)
    assert {line.cluster_id for line in everything if line.cluster_id} == _listable_clusters(org)
    of_org = await org_client.inventory(
        all_clouds=True, organization_id=DEFAULT_ORGANIZATION_ID, now=ANCHOR
    )
    assert [line.cluster_id for line in of_org] == [line.cluster_id for line in everything]
    clouds_asked = [r.query for r in org.requests if r.path.endswith("/clouds")]
    assert {"organizationId": DEFAULT_ORGANIZATION_ID} in [
        {k: v for k, v in q.items() if k == "organizationId"} for q in clouds_asked
    ]
    none = await org_client.inventory(all_clouds=True, organization_id="bpfotherorg0000000")
    assert list(none) == []
    with pytest.raises(ValueError, match="organization_id goes with all_clouds"):
        await org_client.inventory(organization_id=DEFAULT_ORGANIZATION_ID, folder_ids=["b1g"])


async def test_a_cloud_that_cannot_be_listed_is_a_line(org: Emulator) -> None:
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), endpoint=org.url, retry=FAST_RETRY
    ) as client:
        lines = await client.inventory(cloud_ids=["b1gnosuchcloud", STAGING_CLOUD])
    [missing] = [line for line in lines.failures if line.scope == "cloud"]
    assert (missing.cloud_id, type(missing.error)) == ("b1gnosuchcloud", pba.NotFoundError)
    assert {line.folder_id for line in lines if line.cluster_id} == {"b1gemulatorfolder003"}


async def test_discovery_under_chaos_loses_no_cluster() -> None:
    policy = pba.RetryPolicy(
        max_attempts=4, base_delay=0.001, max_delay=0.01, max_retry_after=0.01, max_time=5.0
    )
    async with (
        Emulator(
            anchor=ANCHOR,
            organization=True,
            max_page_size=2,
            backups_per_cluster=3,
            fault_rate=0.15,
            fault_seed=3,
        ) as emulator,
        pba.BackupsClient(
            pba.IamToken(TOKEN), endpoint=emulator.url, retry=policy, timeout=1.0
        ) as client,
    ):
        async with asyncio.timeout(120):
            lines = await client.inventory(all_clouds=True, concurrency=8, now=ANCHOR)
    assert sum(emulator.faults_served.values()) > 10
    failed_folders = {line.folder_id for line in lines.failures if line.scope == "folder"}
    failed_clouds = {line.cloud_id for line in lines.failures if line.scope == "cloud"}
    listed = Counter(line.cluster_id for line in lines if line.cluster_id)
    assert max(listed.values()) == 1
    for cluster_id in _listable_clusters(emulator):
        folder = emulator.folders[emulator.clusters[cluster_id].folder_id]
        lost_with = folder.id in failed_folders or folder.cloud_id in failed_clouds
        assert listed[cluster_id] == (0 if lost_with else 1), cluster_id
    assert FORBIDDEN_FOLDER_ID in failed_folders
    assert set(listed) <= _listable_clusters(emulator)


# The command line


async def test_the_cli_lists_clouds_folders_and_clusters_of_clouds(org: Emulator) -> None:
    common = ("--endpoint", org.url, "--format", "jsonl")
    clouds = await asyncio.to_thread(run_cli, "clouds", *common)
    assert clouds.returncode == 0, clouds.stderr
    assert [orjson.loads(x)["id"] for x in clouds.stdout.splitlines()] == [
        DEFAULT_CLOUD_ID,
        STAGING_CLOUD,
    ]
    folders = await asyncio.to_thread(run_cli, "folders", "--cloud-id", STAGING_CLOUD, *common)
    assert [orjson.loads(x)["status"] for x in folders.stdout.splitlines()] == ["ACTIVE"] * 3
    table = await asyncio.to_thread(
        run_cli, "folders", "--cloud-id", DEFAULT_CLOUD_ID, "--endpoint", org.url
    )
    assert "PENDING_DELETION" in table.stdout
    assert table.stdout.startswith("ID ")
    clusters = await asyncio.to_thread(run_cli, "clusters", "--all-clouds", *common)
    assert clusters.returncode == 2  # a folder's clusters could not be listed
    ids = {orjson.loads(x)["id"] for x in clusters.stdout.splitlines()}
    assert ids == _listable_clusters(org)
    assert f"cannot list the clusters of folder {FORBIDDEN_FOLDER_ID}" in clusters.stderr
    assert f"skipped 1 folder not ACTIVE: {RETIRED_FOLDER}" in clusters.stderr
    one_cloud = await asyncio.to_thread(
        run_cli, "clusters", "--cloud-id", DEFAULT_CLOUD_ID, *common
    )
    assert one_cloud.returncode == 0, one_cloud.stderr
    for fmt in ("csv", "json", "table"):
        result = await asyncio.to_thread(run_cli, "clouds", "--endpoint", org.url, "--format", fmt)
        assert result.returncode == 0
        assert STAGING_CLOUD in result.stdout


async def test_the_cli_inventory_of_the_organization(org: Emulator) -> None:
    result = await asyncio.to_thread(
        run_cli,
        "inventory",
        "--all-clouds",
        "--organization-id",
        DEFAULT_ORGANIZATION_ID,
        "--endpoint",
        org.url,
        "--format",
        "jsonl",
    )
    assert result.returncode == 2  # the folder that cannot be listed
    assert "0 errors; not listed: 1 folder" in result.stderr
    lines = [orjson.loads(x) for x in result.stdout.splitlines()]
    assert {x["cluster_id"] for x in lines if x["scope"] == "cluster"} == _listable_clusters(org)
    [failure] = [x for x in lines if x["scope"] == "folder"]
    assert failure["folder_id"] == FORBIDDEN_FOLDER_ID
    assert failure["error"]["type"] == "PermissionDeniedError"
    only_default = await asyncio.to_thread(
        run_cli, "inventory", "--cloud-id", DEFAULT_CLOUD_ID, "--endpoint", org.url
    )
    assert only_default.returncode == 1  # fresh, but a cluster without a completed backup
    assert "error" not in only_default.stdout
    misuse = await asyncio.to_thread(
        run_cli, "inventory", "--organization-id", DEFAULT_ORGANIZATION_ID, "--endpoint", org.url
    )
    assert (misuse.returncode, misuse.stderr) == (
        2,
        "pg-backups: error: --organization-id goes with --all-clouds\n",
    )


async def test_the_cli_takes_a_resource_manager_endpoint(org: Emulator) -> None:
    async with Emulator(anchor=ANCHOR) as other:
        result = await asyncio.to_thread(
            run_cli,
            "clouds",
            "--endpoint",
            other.url,
            "--resource-manager-endpoint",
            org.url,
            "--format",
            "jsonl",
        )
    assert len(result.stdout.splitlines()) == 2
    assert other.requests == []


def test_the_emulator_command_serves_an_organization() -> None:
    from pg_backups_async.emulator import emulator_process

    with emulator_process("--organization") as (url, _):
        result = run_cli("clusters", "--all-clouds", "--endpoint", url, "--format", "jsonl")
    assert result.returncode == 2  # the folder whose clusters answer 403
    assert len(result.stdout.splitlines()) == 4 + 6

"""The exporter over a whole organization: it discovers again at every collection."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import pg_backups_async as pba
from pg_backups_async.emulator import DEFAULT_CLOUD_ID, FORBIDDEN_FOLDER_ID, Emulator
from pg_backups_async.exporter import Exporter
from tests.conftest import ANCHOR, FAST_RETRY, TOKEN


def _clusters(served: Exporter) -> dict[str, dict[str, str]]:
    """`pg_backups_cluster_info`'s labels, by cluster id."""
    found: dict[str, dict[str, str]] = {}
    for family in served.collect_metrics():
        for sample in family.samples:
            if sample.name == "pg_backups_cluster_info":
                found[sample.labels["cluster_id"]] = dict(sample.labels)
    return found


@pytest.fixture
async def org() -> AsyncIterator[Emulator]:
    async with Emulator(anchor=ANCHOR, organization=True, max_page_size=2) as emulator:
        yield emulator


async def test_a_new_folder_and_cluster_show_and_a_deleted_one_goes(org: Emulator) -> None:
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=org.url, retry=FAST_RETRY) as c:
        served = Exporter(c, all_clouds=True, interval=3600)
        await served.collect()
        first = _clusters(served)
        assert set(first) == {
            cluster.id
            for cluster in org.clusters.values()
            if org.folders[cluster.folder_id].status is pba.FolderStatus.ACTIVE
            and cluster.folder_id != FORBIDDEN_FOLDER_ID  # never listed: no series
        }
        assert {labels["cloud_id"] for labels in first.values()} == {
            DEFAULT_CLOUD_ID,
            "b1gemulatorcloud0001",
        }
        # A folder created in a cloud, with a cluster; a cluster deleted.
        org.store.add_folder(
            pba.Folder(
                id="b1gnewfolder00000001",
                cloud_id=DEFAULT_CLOUD_ID,
                status=pba.FolderStatus.ACTIVE,
            )
        )
        new = org.add_cluster(
            pba.Cluster(id="c9qnewcluster0000001", folder_id="b1gnewfolder00000001")
        )
        gone = next(iter(first))
        org.remove_cluster(gone)
        await served.collect()
        second = _clusters(served)
    assert new.id in second
    assert second[new.id]["cloud_id"] == DEFAULT_CLOUD_ID
    assert gone not in second
    assert set(second) == (set(first) - {gone}) | {new.id}

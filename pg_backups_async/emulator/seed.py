"""Deterministic synthetic clusters and backups for the emulator."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from ..models import (
    Backup,
    BackupMethod,
    BackupStatus,
    BackupType,
    Cloud,
    Cluster,
    ClusterEnvironment,
    ClusterHealth,
    ClusterStatus,
    Folder,
    FolderStatus,
)
from .encoding import to_wire

DEFAULT_FOLDER_ID = "b1gemulatorfolder000"
DEFAULT_CLOUD_ID = "b1gemulatorcloud0000"
DEFAULT_ORGANIZATION_ID = "bpfemulatororg000000"
FORBIDDEN_FOLDER_ID = "b1gemulatorfolder004"
"""In the seeded organization, the folder whose `Cluster.list` answers 403."""
_ID_ALPHABET = string.ascii_lowercase + string.digits
_GIB = 1 << 30
# Several pages, one page, a few, none: the shapes a listing takes.
_DEFAULT_COUNTS = (250, 40, 7, 0)
# Every sixth cluster stopped taking backups three days before the anchor.
_STALE_EVERY = 6
_STALE_GAP = timedelta(days=3)


def this_hour() -> datetime:
    """Now, to the hour: the default anchor, so the data is stable for an hour."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def resource_id(rng: random.Random, prefix: str = "c9q") -> str:
    """A 20-character id of lowercase letters and digits, like the service's."""
    return prefix + "".join(rng.choices(_ID_ALPHABET, k=20 - len(prefix)))


def synthetic_backups(
    cluster: Cluster, count: int, *, rng: random.Random, newest_start: datetime
) -> list[Backup]:
    """`count` daily backups, newest first, the newest started at `newest_start`.

    A weekly base backup with daily incrementals, an occasional manual one, the newest
    sometimes still being created, and retention fields on the most recent ones.
    """
    backups: list[Backup] = []
    base_size = rng.randint(2, 40) * _GIB
    for day in range(count):
        started = newest_start - timedelta(days=day)
        creating = day == 0 and count > 1 and rng.random() < 0.5
        method = BackupMethod.BASE if day % 7 == count % 7 else BackupMethod.INCREMENTAL
        kind = BackupType.MANUAL if rng.random() < 0.05 else BackupType.AUTOMATED
        segment = f"{1:08X}{(count - day) // 256:08X}{(count - day) % 256:08X}"
        name = f"base_{segment}" if method is BackupMethod.BASE else f"base_{segment}_D"
        duration = timedelta(seconds=rng.randint(60, 3000), microseconds=rng.randint(0, 999_999))
        size = base_size if method is BackupMethod.BASE else rng.randint(1, 512) << 20
        retained = day < 30
        backups.append(
            Backup(
                id=f"{cluster.id}:{name}",
                folder_id=cluster.folder_id,
                created_at=None if creating else started + duration,
                source_cluster_id=cluster.id,
                started_at=started,
                size=0 if creating else size,
                type=kind,
                method=method,
                journal_size=0 if creating else rng.randint(0, 64) << 20,
                status=BackupStatus.CREATING if creating else BackupStatus.DONE,
                retention_policy_id="c9qpolicy0000000000a" if retained else "",
                retention_policy_name="daily-keep-30" if retained else "",
                retain_until=started + duration + timedelta(days=30) if retained else None,
            )
        )
    return backups


def synthetic_clusters(
    count: int,
    *,
    seed: int,
    folder_id: str,
    anchor: datetime,
    backups_per_cluster: int | None,
    name_prefix: str = "cluster",
) -> list[tuple[Cluster, list[Backup]]]:
    """`count` clusters and their backups, the same for the same arguments.

    Backup counts cycle through 250, 40, 7 and 0 unless `backups_per_cluster` is given.
    A cluster's newest backup started an hour before `anchor`, except every sixth
    cluster's, three days earlier: stale against a daily schedule.
    """
    rng = random.Random(seed)
    result = []
    for index in range(count):
        cluster = Cluster(
            id=resource_id(rng),
            folder_id=folder_id,
            created_at=anchor - timedelta(days=400 + index),
            name=f"{name_prefix}-{index:04d}",
            labels={"team": ("billing", "search", "ads")[index % 3]},
            environment=ClusterEnvironment.PRODUCTION
            if index % 2
            else ClusterEnvironment.PRESTABLE,
            network_id=resource_id(rng, "enp"),
            health=ClusterHealth.ALIVE,
            status=ClusterStatus.RUNNING,
            deletion_protection=index % 2 == 1,
        )
        n = backups_per_cluster if backups_per_cluster is not None else _DEFAULT_COUNTS[index % 4]
        newest = anchor - timedelta(hours=1)
        if index % _STALE_EVERY == _STALE_EVERY - 1:
            newest -= _STALE_GAP
        result.append((cluster, synthetic_backups(cluster, n, rng=rng, newest_start=newest)))
    return result


def complete_backups(backups: list[Backup]) -> list[dict[str, Any]]:
    """The backups encoded with every field present (retention on all completed ones),
    every other one with nanosecond timestamps."""
    encoded = []
    for index, backup in enumerate(backups):
        if backup.created_at is not None:
            backup = attrs.evolve(
                backup,
                retention_policy_id=backup.retention_policy_id or "c9qpolicy0000000000a",
                retention_policy_name=backup.retention_policy_name or "daily-keep-30",
                retain_until=backup.retain_until or backup.created_at + timedelta(days=30),
            )
        wire_backup = to_wire(backup)
        if index % 2:
            for key in ("createdAt", "startedAt", "retainUntil"):
                if key in wire_backup:
                    wire_backup[key] = _nanoseconds(wire_backup[key])
        encoded.append(wire_backup)
    return encoded


def _nanoseconds(text: str) -> str:
    """An RFC 3339 timestamp ending in `Z`, with nine fraction digits."""
    seconds, _, fraction = text[:-1].partition(".")
    return f"{seconds}.{fraction.ljust(6, '0')}123Z"


@attrs.frozen
class Organization:
    """A seeded organization: its clouds, their folders, and each folder's clusters."""

    clouds: tuple[Cloud, ...]
    folders: tuple[Folder, ...]
    clusters: tuple[tuple[Cluster, list[Backup]], ...]
    forbidden_folder_ids: frozenset[str]


def default_cloud(anchor: datetime) -> Cloud:
    """The cloud that holds the default folder."""
    return Cloud(
        id=DEFAULT_CLOUD_ID,
        created_at=anchor - timedelta(days=900),
        name="production",
        organization_id=DEFAULT_ORGANIZATION_ID,
    )


def default_folder(folder_id: str, anchor: datetime) -> Folder:
    """The folder `clusters=` seeds, in the default cloud."""
    return Folder(
        id=folder_id,
        cloud_id=DEFAULT_CLOUD_ID,
        created_at=anchor - timedelta(days=800),
        name="default",
        status=FolderStatus.ACTIVE,
    )


# (cloud index, folder name, status, clusters): the shapes discovery meets.
_LAYOUT = (
    (0, "databases", FolderStatus.ACTIVE, 3),
    (0, "retired", FolderStatus.PENDING_DELETION, 2),
    (1, "staging", FolderStatus.ACTIVE, 3),
    (1, "restricted", FolderStatus.ACTIVE, 2),
    (1, "sandbox", FolderStatus.ACTIVE, 0),
)


def organization(*, seed: int, anchor: datetime) -> Organization:
    """Two clouds beside the default folder: five more folders, one of them not
    `ACTIVE`, one (`FORBIDDEN_FOLDER_ID`) whose clusters cannot be listed, one empty."""
    clouds = (
        default_cloud(anchor),
        Cloud(
            id="b1gemulatorcloud0001",
            created_at=anchor - timedelta(days=600),
            name="staging",
            organization_id=DEFAULT_ORGANIZATION_ID,
        ),
    )
    folders = []
    clusters: list[tuple[Cluster, list[Backup]]] = []
    for index, (cloud, name, status, count) in enumerate(_LAYOUT, start=1):
        folder = Folder(
            id=f"b1gemulatorfolder{index:03d}",
            cloud_id=clouds[cloud].id,
            created_at=anchor - timedelta(days=500 - index),
            name=name,
            status=status,
        )
        folders.append(folder)
        clusters += synthetic_clusters(
            count,
            seed=seed + index,
            folder_id=folder.id,
            anchor=anchor,
            backups_per_cluster=None,
            name_prefix=name,
        )
    return Organization(clouds, tuple(folders), tuple(clusters), frozenset({FORBIDDEN_FOLDER_ID}))


def organization_of_shape(
    clouds: int,
    folders_per_cloud: int,
    clusters_per_folder: int,
    *,
    seed: int,
    anchor: datetime,
    backups_per_cluster: int | None,
) -> Organization:
    """An organization of that shape, every folder `ACTIVE` (for benchmarks); its clouds
    come after the default one."""
    cloud_list = tuple(
        Cloud(
            id=f"b1gemulatorcloud{n:04d}",
            created_at=anchor - timedelta(days=600),
            name=f"cloud-{n:04d}",
            organization_id=DEFAULT_ORGANIZATION_ID,
        )
        for n in range(1, clouds + 1)
    )
    folders = []
    clusters: list[tuple[Cluster, list[Backup]]] = []
    for c, cloud in enumerate(cloud_list):
        for f in range(folders_per_cloud):
            index = c * folders_per_cloud + f
            folder = Folder(
                id=f"b1gemulatorfolder{1000 + index:03d}",
                cloud_id=cloud.id,
                name=f"folder-{index:04d}",
                status=FolderStatus.ACTIVE,
            )
            folders.append(folder)
            clusters += synthetic_clusters(
                clusters_per_folder,
                seed=seed * 100_000 + index + 1,
                folder_id=folder.id,
                anchor=anchor,
                backups_per_cluster=backups_per_cluster,
                name_prefix=folder.name,
            )
    return Organization(cloud_list, tuple(folders), tuple(clusters), frozenset())

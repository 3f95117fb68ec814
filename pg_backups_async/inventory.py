"""Summing up a cluster's backups for an inventory: pure functions, no I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from .errors import ApiError
from .models import (
    Backup,
    BackupMethod,
    BackupStatus,
    Cluster,
    ClusterBackups,
    ClusterEnvironment,
    ClusterInventory,
)

DEFAULT_STALE_AFTER = timedelta(hours=26)


def summarize(
    result: ClusterBackups,
    cluster: Cluster | None,
    *,
    now: datetime,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> ClusterInventory:
    """One cluster's inventory line from its fan-out result.

    A backup counts as completed when its status is DONE, or when it has no status (as
    backups taken before the service reported one) but has a completion time.
    """
    tally = Tally()
    tally.add(result.backups)
    return tally.line(result.cluster_id, cluster, result.error, now=now, stale_after=stale_after)


class Tally:
    """A cluster's backups summed up as they come, a page at a time: what an inventory
    line needs, in memory that does not grow with the number of backups."""

    def __init__(self) -> None:
        self.count = 0
        self.total_size = self.base_size = self.incremental_size = self.done_size = 0
        self.newest_created: datetime | None = None
        self.oldest_created: datetime | None = None
        self.newest_done: Backup | None = None
        self.oldest_done_at: datetime | None = None
        self.statuses: Counter[str] = Counter()
        self.newest_by_type: dict[str, datetime] = {}

    def add(self, backups: Iterable[Backup]) -> None:
        """Count these backups in."""
        for backup in backups:
            self.count += 1
            self.total_size += backup.size
            if backup.method is BackupMethod.BASE:
                self.base_size += backup.size
            elif backup.method is BackupMethod.INCREMENTAL:
                self.incremental_size += backup.size
            self.statuses[backup.status.name] += 1
            at = backup.created_at
            if at is None:
                continue
            if self.newest_created is None or at > self.newest_created:
                self.newest_created = at
            if self.oldest_created is None or at < self.oldest_created:
                self.oldest_created = at
            if backup.status is not BackupStatus.DONE and (
                backup.status is not BackupStatus.UNSPECIFIED
            ):
                continue
            self.done_size += backup.size
            newest = self.newest_done
            if newest is None or at > _completion(newest):
                self.newest_done = backup
            if self.oldest_done_at is None or at < self.oldest_done_at:
                self.oldest_done_at = at
            kind = backup.type.name
            if kind not in self.newest_by_type or at > self.newest_by_type[kind]:
                self.newest_by_type[kind] = at

    def line(
        self,
        cluster_id: str,
        cluster: Cluster | None,
        error: ApiError | None = None,
        *,
        now: datetime,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        cloud_id: str = "",
    ) -> ClusterInventory:
        """The inventory line: the backups counted, or `error` when the listing failed;
        `cloud_id` where the cluster was found through its cloud."""
        name = cluster.name if cluster is not None else ""
        folder_id = cluster.folder_id if cluster is not None else ""
        environment = (
            cluster.environment if cluster is not None else ClusterEnvironment.UNSPECIFIED
        )
        if error is not None:
            return ClusterInventory(
                cluster_id,
                name=name,
                folder_id=folder_id,
                error=error,
                environment=environment,
                cloud_id=cloud_id,
            )
        newest = self.newest_done
        newest_at = newest.created_at if newest is not None else None
        age = now - newest_at if newest_at is not None else None
        took = None
        if newest is not None and newest.created_at is not None and newest.started_at is not None:
            took = newest.created_at - newest.started_at
        return ClusterInventory(
            cluster_id,
            name=name,
            folder_id=folder_id,
            backup_count=self.count,
            total_size=self.total_size,
            base_size=self.base_size,
            incremental_size=self.incremental_size,
            newest_created_at=self.newest_created,
            oldest_created_at=self.oldest_created,
            newest_done_age=age,
            stale=age is None or age > stale_after,
            newest_done_at=newest_at,
            newest_done_duration=took,
            oldest_done_at=self.oldest_done_at,
            done_size=self.done_size,
            status_counts=dict(self.statuses),
            environment=environment,
            newest_done_at_by_type=dict(self.newest_by_type),
            cloud_id=cloud_id,
        )


def _completion(backup: Backup) -> datetime:
    assert backup.created_at is not None  # only completed backups are compared
    return backup.created_at

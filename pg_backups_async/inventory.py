"""Summing up a cluster's backups for an inventory: pure functions, no I/O."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

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
    name = cluster.name if cluster is not None else ""
    folder_id = cluster.folder_id if cluster is not None else ""
    environment = cluster.environment if cluster is not None else ClusterEnvironment.UNSPECIFIED
    if result.error is not None:
        return ClusterInventory(
            result.cluster_id,
            name=name,
            folder_id=folder_id,
            error=result.error,
            environment=environment,
        )
    backups = result.backups
    created = [b.created_at for b in backups if b.created_at is not None]
    completed = [
        b
        for b in backups
        if b.created_at is not None
        and (b.status is BackupStatus.DONE or b.status is BackupStatus.UNSPECIFIED)
    ]
    newest = max(completed, key=_completion) if completed else None
    oldest = min(completed, key=_completion) if completed else None
    newest_at = newest.created_at if newest is not None else None
    age = now - newest_at if newest_at is not None else None
    took = None
    if newest is not None and newest.created_at is not None and newest.started_at is not None:
        took = newest.created_at - newest.started_at
    return ClusterInventory(
        result.cluster_id,
        name=name,
        folder_id=folder_id,
        backup_count=len(backups),
        total_size=sum(b.size for b in backups),
        base_size=sum(b.size for b in backups if b.method is BackupMethod.BASE),
        incremental_size=sum(b.size for b in backups if b.method is BackupMethod.INCREMENTAL),
        newest_created_at=max(created) if created else None,
        oldest_created_at=min(created) if created else None,
        newest_done_age=age,
        stale=age is None or age > stale_after,
        newest_done_at=newest_at,
        newest_done_duration=took,
        oldest_done_at=oldest.created_at if oldest is not None else None,
        done_size=sum(b.size for b in completed),
        status_counts=dict(Counter(b.status.name for b in backups)),
        environment=environment,
        newest_done_at_by_type=_newest_by_type(completed),
    )


def _newest_by_type(completed: list[Backup]) -> dict[str, datetime]:
    newest: dict[str, datetime] = {}
    for backup in completed:
        at = _completion(backup)
        name = backup.type.name
        if name not in newest or at > newest[name]:
            newest[name] = at
    return newest


def _completion(backup: Backup) -> datetime:
    assert backup.created_at is not None  # only completed backups are compared
    return backup.created_at

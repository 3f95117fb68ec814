"""Resources of the Managed PostgreSQL API as plain, frozen data.

The models know nothing of JSON: `wire` maps them to and from the service's encoding.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta

import attrs

from .errors import ApiError


class BackupType(enum.StrEnum):
    """How a backup was created (`BackupCreationType` on the wire)."""

    UNSPECIFIED = "BACKUP_CREATION_TYPE_UNSPECIFIED"
    AUTOMATED = "AUTOMATED"
    MANUAL = "MANUAL"
    UNKNOWN = "UNKNOWN"
    """A value this version of the library does not know."""


class BackupMethod(enum.StrEnum):
    """How a backup was taken."""

    UNSPECIFIED = "BACKUP_METHOD_UNSPECIFIED"
    BASE = "BASE"
    INCREMENTAL = "INCREMENTAL"
    UNKNOWN = "UNKNOWN"
    """A value this version of the library does not know."""


class BackupStatus(enum.StrEnum):
    """Whether a backup has completed."""

    UNSPECIFIED = "BACKUP_STATUS_UNSPECIFIED"
    DONE = "DONE"
    CREATING = "CREATING"
    UNKNOWN = "UNKNOWN"
    """A value this version of the library does not know."""


@attrs.frozen
class Backup:
    """One PostgreSQL backup. Sizes are bytes; timestamps are aware UTC datetimes."""

    id: str
    folder_id: str = ""
    created_at: datetime | None = None
    source_cluster_id: str = ""
    started_at: datetime | None = None
    size: int = 0
    type: BackupType = BackupType.UNSPECIFIED
    method: BackupMethod = BackupMethod.UNSPECIFIED
    journal_size: int = 0
    status: BackupStatus = BackupStatus.UNSPECIFIED
    retention_policy_id: str = ""
    retention_policy_name: str = ""
    retain_until: datetime | None = None


@attrs.frozen
class BackupsPage:
    """One page of `Cluster.listBackups`; `next_page_token` is None on the last page."""

    backups: tuple[Backup, ...] = ()
    next_page_token: str | None = None

    @property
    def items(self) -> tuple[Backup, ...]:
        """The page's resources, under the name every page type shares."""
        return self.backups

    def head(self, count: int) -> BackupsPage:
        """The page with only its first `count` backups."""
        return attrs.evolve(self, backups=self.backups[:count])

    def skip(self, count: int) -> BackupsPage:
        """The page without its first `count` backups."""
        return attrs.evolve(self, backups=self.backups[count:])


class ClusterEnvironment(enum.StrEnum):
    """The cluster's deployment environment."""

    UNSPECIFIED = "ENVIRONMENT_UNSPECIFIED"
    PRODUCTION = "PRODUCTION"
    PRESTABLE = "PRESTABLE"
    UNKNOWN = "UNKNOWN"
    """A value this version of the library does not know."""


class ClusterHealth(enum.StrEnum):
    """The cluster's health as the service sees it (`HEALTH_UNKNOWN` is the zero value)."""

    UNSPECIFIED = "HEALTH_UNKNOWN"
    ALIVE = "ALIVE"
    DEAD = "DEAD"
    DEGRADED = "DEGRADED"
    UNKNOWN = "UNKNOWN"
    """A value this version of the library does not know."""


class ClusterStatus(enum.StrEnum):
    """The cluster's lifecycle status (`STATUS_UNKNOWN` is the zero value)."""

    UNSPECIFIED = "STATUS_UNKNOWN"
    CREATING = "CREATING"
    RUNNING = "RUNNING"
    ERROR = "ERROR"
    UPDATING = "UPDATING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    UNKNOWN = "UNKNOWN"
    """A value this version of the library does not know."""


@attrs.frozen
class Cluster:
    """A PostgreSQL cluster: the fields an inventory needs (others are ignored)."""

    id: str
    folder_id: str = ""
    created_at: datetime | None = None
    name: str = ""
    description: str = ""
    labels: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    environment: ClusterEnvironment = ClusterEnvironment.UNSPECIFIED
    network_id: str = ""
    health: ClusterHealth = ClusterHealth.UNSPECIFIED
    status: ClusterStatus = ClusterStatus.UNSPECIFIED
    deletion_protection: bool = False


@attrs.frozen
class ClustersPage:
    """One page of `Cluster.list`; `next_page_token` is None on the last page."""

    clusters: tuple[Cluster, ...] = ()
    next_page_token: str | None = None

    @property
    def items(self) -> tuple[Cluster, ...]:
        """The page's resources, under the name every page type shares."""
        return self.clusters

    def head(self, count: int) -> ClustersPage:
        """The page with only its first `count` clusters."""
        return attrs.evolve(self, clusters=self.clusters[:count])

    def skip(self, count: int) -> ClustersPage:
        """The page without its first `count` clusters."""
        return attrs.evolve(self, clusters=self.clusters[count:])


@attrs.frozen
class ClusterBackups:
    """One cluster's result in a fan-out: its backups, or the error that stopped them."""

    cluster_id: str
    backups: tuple[Backup, ...] = ()
    error: ApiError | None = None

    @property
    def ok(self) -> bool:
        """Whether every page was listed."""
        return self.error is None


class InventoryState(enum.StrEnum):
    """Where a cluster stands in an inventory; each compares equal to its text."""

    OK = "ok"
    STALE = "stale"
    NO_BACKUPS = "no backups"
    """No completed backup at all."""
    ERROR = "error"


@attrs.frozen
class ClusterInventory:
    """A cluster's backups summed up: counts, sizes (bytes), the newest and the oldest.

    `newest_done_age` is the age of the newest completed backup; `stale` is true when
    there is none younger than the inventory's threshold. On an error, only the
    cluster's identity and `error` are set. A backup counts as completed when its status
    is `DONE`, or when it has a completion time but no status, as older backups do.
    """

    cluster_id: str
    name: str = ""
    folder_id: str = ""
    backup_count: int = 0
    total_size: int = 0
    base_size: int = 0
    incremental_size: int = 0
    newest_created_at: datetime | None = None
    oldest_created_at: datetime | None = None
    newest_done_age: timedelta | None = None
    stale: bool = False
    error: ApiError | None = None
    newest_done_at: datetime | None = None
    """When the newest completed backup completed."""
    newest_done_duration: timedelta | None = None
    """How long the newest completed backup took (`created_at - started_at`)."""
    oldest_done_at: datetime | None = None
    """When the oldest completed backup completed: where the restore window starts."""
    done_size: int = 0
    """The bytes of the completed backups."""
    status_counts: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    """How many backups in each status, by the status's name (`DONE`, `CREATING`, ...)."""
    environment: ClusterEnvironment = ClusterEnvironment.UNSPECIFIED
    """The cluster's environment, when it was found by `Cluster.list`."""
    newest_done_at_by_type: Mapping[str, datetime] = attrs.field(factory=dict, hash=False)
    """When the newest completed backup of each type completed, by the type's name
    (`AUTOMATED`, `MANUAL`): a manual backup cannot hide a broken schedule."""

    @property
    def state(self) -> InventoryState:
        """`ok`, `stale`, `no backups` or `error`."""
        if self.error is not None:
            return InventoryState.ERROR
        if self.newest_done_age is None:
            return InventoryState.NO_BACKUPS
        return InventoryState.STALE if self.stale else InventoryState.OK

"""Resources of the Managed PostgreSQL API as plain, frozen data.

The models know nothing of JSON: `wire` maps them to and from the service's encoding.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, Self, TypeVar

import attrs

from .errors import ApiError

T = TypeVar("T")


class Page(Generic[T]):
    """What every list call's page has: its items, under the call's own name (such as
    `backups`), the next page's token (None on the last page), and trimmed copies."""

    __slots__ = ()
    items_field: ClassVar[str]
    """The attribute, and the JSON key, that holds the page's items."""
    next_page_token: str | None

    @property
    def items(self) -> tuple[T, ...]:
        """The page's resources, under the name every page type shares."""
        items: tuple[T, ...] = getattr(self, self.items_field)
        return items

    def head(self, count: int) -> Self:
        """The page with only its first `count` items."""
        changes: dict[str, Any] = {self.items_field: self.items[:count]}
        return attrs.evolve(self, **changes)  # type: ignore[misc]

    def skip(self, count: int) -> Self:
        """The page without its first `count` items."""
        changes: dict[str, Any] = {self.items_field: self.items[count:]}
        return attrs.evolve(self, **changes)  # type: ignore[misc]


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
class BackupsPage(Page[Backup]):
    """One page of `Cluster.listBackups` or `Backup.list`; `next_page_token` is None on
    the last page."""

    items_field: ClassVar[str] = "backups"
    backups: tuple[Backup, ...] = ()
    next_page_token: str | None = None


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
class ClustersPage(Page[Cluster]):
    """One page of `Cluster.list`; `next_page_token` is None on the last page."""

    items_field: ClassVar[str] = "clusters"
    clusters: tuple[Cluster, ...] = ()
    next_page_token: str | None = None


@attrs.frozen
class Cloud:
    """A cloud of an organization (Resource Manager)."""

    id: str
    created_at: datetime | None = None
    name: str = ""
    description: str = ""
    organization_id: str = ""
    labels: Mapping[str, str] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class CloudsPage(Page[Cloud]):
    """One page of `Cloud.list`; `next_page_token` is None on the last page."""

    items_field: ClassVar[str] = "clouds"
    clouds: tuple[Cloud, ...] = ()
    next_page_token: str | None = None


class FolderStatus(enum.StrEnum):
    """A folder's lifecycle status; only `ACTIVE` folders hold clusters to check."""

    UNSPECIFIED = "STATUS_UNSPECIFIED"
    ACTIVE = "ACTIVE"
    DELETING = "DELETING"
    PENDING_DELETION = "PENDING_DELETION"
    UNKNOWN = "UNKNOWN"
    """A value this version of the library does not know."""


@attrs.frozen
class Folder:
    """A folder of a cloud (Resource Manager)."""

    id: str
    cloud_id: str = ""
    created_at: datetime | None = None
    name: str = ""
    description: str = ""
    labels: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    status: FolderStatus = FolderStatus.UNSPECIFIED


@attrs.frozen
class FoldersPage(Page[Folder]):
    """One page of `Folder.list`; `next_page_token` is None on the last page."""

    items_field: ClassVar[str] = "folders"
    folders: tuple[Folder, ...] = ()
    next_page_token: str | None = None


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

    A line without a `cluster_id` stands for a folder, cloud or organization whose
    listing failed (see `scope`): its `error` says why, and the clusters behind it are
    not in the inventory.

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
    cloud_id: str = ""
    """The cluster's cloud, when it was found through its cloud."""

    @property
    def scope(self) -> str:
        """What the line is about: `cluster`; or, on a line with no `cluster_id` (which
        always has an `error`), the `folder`, `cloud` or `organization` that could not
        be listed."""
        if self.cluster_id:
            return "cluster"
        if self.folder_id:
            return "folder"
        return "cloud" if self.cloud_id else "organization"

    @property
    def state(self) -> InventoryState:
        """`ok`, `stale`, `no backups` or `error`."""
        if self.error is not None:
            return InventoryState.ERROR
        if self.newest_done_age is None:
            return InventoryState.NO_BACKUPS
        return InventoryState.STALE if self.stale else InventoryState.OK


class Inventory(list[ClusterInventory]):
    """What `BackupsClient.inventory` gives: a list of lines, one per cluster, then one
    per folder, cloud or organization that could not be listed (see
    `ClusterInventory.scope`); and the folders it skipped for not being `ACTIVE`."""

    def __init__(
        self, lines: Iterable[ClusterInventory] = (), *, skipped_folders: Iterable[Folder] = ()
    ) -> None:
        super().__init__(lines)
        self.skipped_folders: tuple[Folder, ...] = tuple(skipped_folders)

    @property
    def failures(self) -> list[ClusterInventory]:
        """The lines of the folders, clouds or organization that could not be listed."""
        return [line for line in self if not line.cluster_id]


def _declared(kind: type[Any]) -> tuple[Any, ...]:
    return tuple(
        value
        for value in list(globals().values())
        if isinstance(value, type) and value.__module__ == __name__ and issubclass(value, kind)
    )


ENUMS: tuple[type[enum.Enum], ...] = _declared(enum.Enum)
"""Every enum of the models, in the order declared."""
MODELS: tuple[type[Any], ...] = tuple(cls for cls in _declared(object) if attrs.has(cls))
"""Every attrs class of the models, in the order declared."""

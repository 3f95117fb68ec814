"""Resources of the Managed PostgreSQL API as plain, frozen data.

The models know nothing of JSON: `wire` maps them to and from the service's encoding.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs


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

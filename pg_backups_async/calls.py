"""The table of API calls: each declared once, as data. The client and the emulator
read it; adding a call is a row here, a model, and a typed method on the client."""

from __future__ import annotations

from typing import Any

from .models import Backup, BackupsPage, Cluster, ClustersPage
from .protocol import (
    FILTER,
    PAGE_SIZE,
    PAGE_TOKEN,
    Call,
    Param,
    Service,
    id_check,
    validate_backup_id,
)

MANAGED_POSTGRESQL = Service("Managed PostgreSQL", "https://mdb.api.cloud.yandex.net")

_MDB = "/managed-postgresql/v1"

LIST_BACKUPS = Call(
    "Cluster.listBackups",
    MANAGED_POSTGRESQL,
    _MDB + "/clusters/{cluster_id}/backups",
    (Param("cluster_id", id_check("cluster_id")), PAGE_SIZE, PAGE_TOKEN),
    BackupsPage,
)
LIST_CLUSTERS = Call(
    "Cluster.list",
    MANAGED_POSTGRESQL,
    _MDB + "/clusters",
    (Param("folder_id", id_check("folder_id"), "folderId"), PAGE_SIZE, PAGE_TOKEN, FILTER),
    ClustersPage,
)
GET_CLUSTER = Call(
    "Cluster.get",
    MANAGED_POSTGRESQL,
    _MDB + "/clusters/{cluster_id}",
    (Param("cluster_id", id_check("cluster_id")),),
    Cluster,
)
LIST_FOLDER_BACKUPS = Call(
    "Backup.list",
    MANAGED_POSTGRESQL,
    _MDB + "/backups",
    (Param("folder_id", id_check("folder_id"), "folderId"), PAGE_SIZE, PAGE_TOKEN),
    BackupsPage,
)
GET_BACKUP = Call(
    "Backup.get",
    MANAGED_POSTGRESQL,
    _MDB + "/backups/{backup_id}",
    (Param("backup_id", validate_backup_id, safe=":"),),
    Backup,
)

CALLS: tuple[Call[Any], ...] = (
    LIST_BACKUPS,
    LIST_CLUSTERS,
    GET_CLUSTER,
    LIST_FOLDER_BACKUPS,
    GET_BACKUP,
)
"""Every call the client makes, by the service's own names."""

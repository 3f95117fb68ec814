"""The table of API calls: each declared once, as data. The client and the emulator
read it; adding a call is a row here, a model, and a typed method on the client."""

from __future__ import annotations

from typing import Any

from .models import (
    Backup,
    BackupsPage,
    Cloud,
    CloudsPage,
    Cluster,
    ClustersPage,
    Folder,
    FoldersPage,
)
from .protocol import (
    FILTER,
    PAGE_SIZE,
    PAGE_TOKEN,
    Call,
    Param,
    Service,
    id_check,
    optional_id_check,
    validate_backup_id,
)

MANAGED_POSTGRESQL = Service("Managed PostgreSQL", "https://mdb.api.cloud.yandex.net")
RESOURCE_MANAGER = Service("Resource Manager", "https://resource-manager.api.cloud.yandex.net")

_MDB = "/managed-postgresql/v1"
_RM = "/resource-manager/v1"

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

LIST_CLOUDS = Call(
    "Cloud.list",
    RESOURCE_MANAGER,
    _RM + "/clouds",
    (
        PAGE_SIZE,
        PAGE_TOKEN,
        FILTER,
        Param("organization_id", optional_id_check("organization_id"), "organizationId"),
    ),
    CloudsPage,
)
GET_CLOUD = Call(
    "Cloud.get",
    RESOURCE_MANAGER,
    _RM + "/clouds/{cloud_id}",
    (Param("cloud_id", id_check("cloud_id")),),
    Cloud,
)
LIST_FOLDERS = Call(
    "Folder.list",
    RESOURCE_MANAGER,
    _RM + "/folders",
    (Param("cloud_id", id_check("cloud_id"), "cloudId"), PAGE_SIZE, PAGE_TOKEN, FILTER),
    FoldersPage,
)
GET_FOLDER = Call(
    "Folder.get",
    RESOURCE_MANAGER,
    _RM + "/folders/{folder_id}",
    (Param("folder_id", id_check("folder_id")),),
    Folder,
)

CALLS: tuple[Call[Any], ...] = (
    LIST_BACKUPS,
    LIST_CLUSTERS,
    GET_CLUSTER,
    LIST_FOLDER_BACKUPS,
    GET_BACKUP,
    LIST_CLOUDS,
    GET_CLOUD,
    LIST_FOLDERS,
    GET_FOLDER,
)
"""Every call the client makes, by the service's own names."""

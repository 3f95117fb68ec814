"""What the emulator serves: its resources, held as the service would encode them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .. import wire
from ..models import Backup, Cloud, Cluster, Folder
from .encoding import to_wire
from .seed import DEFAULT_FOLDER_ID

Encoded = dict[str, Any]


class Store:
    """Clouds, folders, clusters and their backups; backups are kept encoded, served as
    they are. `forbidden_folders` are the folders whose clusters cannot be listed."""

    def __init__(self) -> None:
        self.clouds: dict[str, Cloud] = {}
        self.folders: dict[str, Folder] = {}
        self.forbidden_folders: set[str] = set()
        self.clusters: dict[str, Cluster] = {}
        self._backups: dict[str, list[Encoded]] = {}
        self._backups_by_id: dict[str, Encoded] = {}
        self._by_folder: dict[str, tuple[list[Encoded], list[Encoded]]] = {}

    def add_cloud(self, cloud: Cloud) -> Cloud:
        """Add (or replace) a cloud."""
        self.clouds[cloud.id] = cloud
        return cloud

    def add_folder(self, folder: Folder) -> Folder:
        """Add (or replace) a folder."""
        self.folders[folder.id] = folder
        return folder

    def add_cluster(
        self, cluster: Cluster | str, backups: Iterable[Backup | Mapping[str, Any]] = ()
    ) -> Cluster:
        """Add (or replace) a cluster; backups are models or wire JSON objects, served as is."""
        if isinstance(cluster, str):
            cluster = Cluster(id=cluster, folder_id=DEFAULT_FOLDER_ID, name=cluster)
        for old in self._backups.get(cluster.id, ()):
            self._backups_by_id.pop(old.get("id", ""), None)
        self.clusters[cluster.id] = cluster
        encoded = [to_wire(b) if isinstance(b, Backup) else dict(b) for b in backups]
        self._backups[cluster.id] = encoded
        for backup in encoded:
            self._backups_by_id[backup.get("id", "")] = backup
        self._by_folder.clear()
        return cluster

    def remove_cluster(self, cluster_id: str) -> None:
        """Delete a cluster and its backups."""
        del self.clusters[cluster_id]
        for backup in self._backups.pop(cluster_id):
            self._backups_by_id.pop(backup.get("id", ""), None)
        self._by_folder.clear()

    def backups(self, cluster_id: str) -> list[Backup]:
        """The cluster's backups as the client should see them."""
        return [wire.structure(b, Backup) for b in self._backups[cluster_id]]

    def encoded_backups(self, cluster_id: str) -> list[Encoded] | None:
        """The cluster's backups as served, or None for no such cluster."""
        return self._backups.get(cluster_id)

    def backup(self, backup_id: str) -> Encoded | None:
        """One backup as served, or None."""
        return self._backups_by_id.get(backup_id)

    def folder(self, folder_id: str) -> tuple[list[Encoded], list[Encoded]]:
        """The folder's clusters and all their backups, encoded; cached until a change."""
        cached = self._by_folder.get(folder_id)
        if cached is None:
            clusters = [c for c in self.clusters.values() if c.folder_id == folder_id]
            backups = [b for c in clusters for b in self._backups[c.id]]
            cached = self._by_folder[folder_id] = ([to_wire(c) for c in clusters], backups)
        return cached

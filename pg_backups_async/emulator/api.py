"""The emulator's answers to the table's calls, with the service's paging and checks."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from ..limits import (
    MAX_FILTER_LENGTH,
    MAX_ID_LENGTH,
    MAX_PAGE_SIZE,
    MAX_PAGE_TOKEN_LENGTH,
    SERVER_DEFAULT_PAGE_SIZE,
)
from .encoding import dumps, to_wire
from .faults import ApiFailure
from .store import Encoded, Store

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Api:
    """Handlers for the calls of the table, by the call's name, over a `Store`.

    `listing_size`, when set, makes every cluster's listing repeat its backups to that
    many, so that a benchmark can stream millions without the emulator holding them.
    A request without `pageSize` gets `default_page_size` items; no page holds more
    than `max_page_size` (the API's limit stays 1000): small values make every listing
    span several pages.
    """

    def __init__(
        self,
        store: Store,
        *,
        listing_size: int | None = None,
        default_page_size: int = SERVER_DEFAULT_PAGE_SIZE,
        max_page_size: int = MAX_PAGE_SIZE,
        backups_page_size: int | None = None,
    ) -> None:
        self.store = store
        self.backups_page_size = backups_page_size
        self.listing_size = listing_size
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size

    def handlers(self) -> dict[str, Handler]:
        """The handler of each call, by its name in the table."""
        return {
            "Cluster.listBackups": self.list_backups,
            "Cluster.list": self.list_clusters,
            "Cluster.get": self.get_cluster,
            "Backup.list": self.list_folder_backups,
            "Backup.get": self.get_backup,
            "Cloud.list": self.list_clouds,
            "Cloud.get": self.get_cloud,
            "Folder.list": self.list_folders,
            "Folder.get": self.get_folder,
        }

    async def list_backups(self, request: web.Request) -> web.Response:
        cluster_id = request.match_info["cluster_id"]
        if len(cluster_id) > MAX_ID_LENGTH:
            raise ApiFailure(400, f"clusterId: the length must be at most {MAX_ID_LENGTH}")
        page_size, offset = self._paging(request)
        page_size = min(page_size, self.backups_page_size or page_size)
        backups = self.store.encoded_backups(cluster_id)
        if backups is None:
            raise ApiFailure(404, f"Cluster {cluster_id} not found")
        if self.listing_size is not None and backups:
            end = min(offset + page_size, self.listing_size)
            window = [backups[i % len(backups)] for i in range(offset, end)]
            return page("backups", window, 0, page_size, more=end < self.listing_size, end=end)
        return page("backups", backups, offset, page_size)

    async def get_cluster(self, request: web.Request) -> web.Response:
        return _resource("Cluster", self.store.clusters, request.match_info["cluster_id"])

    async def list_clusters(self, request: web.Request) -> web.Response:
        folder_id = required_id(request, "folderId")
        if folder_id in self.store.forbidden_folders:
            raise ApiFailure(403, f"Permission denied to folder {folder_id}")
        page_size, offset = self._paging(request)
        clusters, _ = self.store.folder(folder_id)
        name = _name_filter(request.query.get("filter"))
        if name is not None:
            clusters = [c for c in clusters if c.get("name") == name]
        return page("clusters", clusters, offset, page_size)

    async def list_folder_backups(self, request: web.Request) -> web.Response:
        folder_id = required_id(request, "folderId")
        page_size, offset = self._paging(request)
        return page("backups", self.store.folder(folder_id)[1], offset, page_size)

    async def list_clouds(self, request: web.Request) -> web.Response:
        page_size, offset = self._paging(request)
        organization_id = request.query.get("organizationId")
        name = _name_filter(request.query.get("filter"))
        clouds = [
            to_wire(cloud)
            for cloud in self.store.clouds.values()
            if organization_id in (None, cloud.organization_id) and name in (None, cloud.name)
        ]
        return page("clouds", clouds, offset, page_size)

    async def get_cloud(self, request: web.Request) -> web.Response:
        return _resource("Cloud", self.store.clouds, request.match_info["cloud_id"])

    async def list_folders(self, request: web.Request) -> web.Response:
        cloud_id = required_id(request, "cloudId")
        if cloud_id not in self.store.clouds:
            raise ApiFailure(404, f"Cloud {cloud_id} not found")
        page_size, offset = self._paging(request)
        name = _name_filter(request.query.get("filter"))
        folders = [
            to_wire(folder)
            for folder in self.store.folders.values()
            if folder.cloud_id == cloud_id and name in (None, folder.name)
        ]
        return page("folders", folders, offset, page_size)

    async def get_folder(self, request: web.Request) -> web.Response:
        return _resource("Folder", self.store.folders, request.match_info["folder_id"])

    def _paging(self, request: web.Request) -> tuple[int, int]:
        size = _page_size(request.query.get("pageSize"), self.default_page_size)
        return min(size, self.max_page_size), _page_offset(request.query.get("pageToken"))

    async def get_backup(self, request: web.Request) -> web.Response:
        backup_id = request.match_info["backup_id"]
        backup = self.store.backup(backup_id)
        if backup is None:
            raise ApiFailure(404, f"Backup {backup_id} not found")
        return web.Response(body=dumps(backup), content_type="application/json")


def page(
    key: str,
    items: list[Encoded],
    offset: int,
    page_size: int,
    *,
    more: bool | None = None,
    end: int | None = None,
) -> web.Response:
    """One page of `items` from `offset`, with a token when more follow."""
    stop = offset + page_size
    body: dict[str, Any] = {}
    if items[offset:stop]:
        body[key] = items[offset:stop]
    if more if more is not None else stop < len(items):
        body["nextPageToken"] = _token_for(end if end is not None else stop)
    return web.Response(body=dumps(body), content_type="application/json")


def _resource(kind: str, resources: Mapping[str, Any], key: str) -> web.Response:
    """One resource by its id, as the service encodes it, or its 404."""
    resource = resources.get(key)
    if resource is None:
        raise ApiFailure(404, f"{kind} {key} not found")
    return web.Response(body=dumps(to_wire(resource)), content_type="application/json")


def required_id(request: web.Request, key: str) -> str:
    """A required id in the query, checked as the service checks it."""
    value = request.query.get(key, "")
    if not value:
        raise ApiFailure(400, f"{key}: a value is required")
    if len(value) > MAX_ID_LENGTH:
        raise ApiFailure(400, f"{key}: the length must be at most {MAX_ID_LENGTH}")
    return value


def _name_filter(text: str | None) -> str | None:
    """The name in a `name="..."` filter, the only form the service supports."""
    if not text:
        return None
    if len(text) > MAX_FILTER_LENGTH:
        raise ApiFailure(400, f"filter: the length must be at most {MAX_FILTER_LENGTH}")
    field, _, value = text.partition("=")
    value = value.strip()
    if field.strip() != "name" or len(value) < 2 or value[0] != '"' or value[-1] != '"':
        raise ApiFailure(400, 'filter: only name="..." is supported')
    return value[1:-1]


def _page_size(value: str | None, default: int) -> int:
    if value is None or value == "0":
        return default
    if not value.isdigit():
        raise ApiFailure(400, "pageSize: invalid value")
    size = int(value)
    if size > MAX_PAGE_SIZE:
        raise ApiFailure(400, f"pageSize: the value must be at most {MAX_PAGE_SIZE}")
    return size


def _token_for(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


def _page_offset(token: str | None) -> int:
    if not token:
        return 0
    if len(token) > MAX_PAGE_TOKEN_LENGTH:
        raise ApiFailure(400, f"pageToken: the length must be at most {MAX_PAGE_TOKEN_LENGTH}")
    try:
        text = base64.b64decode(token, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    if not text.isdigit():
        raise ApiFailure(400, "Invalid page token")
    return int(text)

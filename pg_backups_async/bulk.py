"""Use cases over many listings: backups of many clusters at once, discovery across an
organization, and the inventory.

Each runs on a `Pipeline`, with the bounded fan-out, so that its requests share the
client's concurrency, retry budget and rate limit. Discovery goes by levels (clouds,
their folders, the folders' clusters), each level one fan-out of at most `concurrency`
listings; a cloud or folder that cannot be listed becomes a line, never the end.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs

from . import calls, protocol
from .aio import AsyncClosing
from .checks import check_int, check_iterable
from .errors import ApiError, ResponseFormatError
from .fanout import FanOut
from .inventory import Tally
from .models import (
    Backup,
    Cluster,
    ClusterBackups,
    ClusterInventory,
    Folder,
    FolderStatus,
    Inventory,
)
from .pipeline import Pipeline
from .protocol import Call

K = TypeVar("K")

Track = Callable[[AsyncClosing], None]
"""Given each stream and fan-out, for the client to close them if it closes first."""


def check_ids(ids: Iterable[str], name: str = "cluster_ids") -> list[str]:
    """The ids, each checked, duplicates dropped, in their order."""
    unique = list(dict.fromkeys(check_iterable(ids, name)))
    for value in unique:
        protocol.validate_id(value, name=name.removesuffix("s"))
    return unique


def check_stale_after(stale_after: timedelta) -> timedelta:
    """A positive timedelta."""
    if not isinstance(stale_after, timedelta):
        raise TypeError(f"stale_after must be a timedelta, not {type(stale_after).__name__}")
    if stale_after <= timedelta(0):
        raise ValueError(f"stale_after must be a positive timedelta, got {stale_after!r}")
    return stale_after


def check_listing(concurrency: int, page_size: int | None, max_pages: int | None) -> None:
    check_int(concurrency, "concurrency", minimum=1)
    protocol.validate_page_size(page_size)
    protocol.validate_max_pages(max_pages)


async def _cluster_or_none(pipeline: Pipeline, cluster_id: str) -> Cluster | None:
    """The cluster (`Cluster.get`), or None when it cannot be had: its listing says why."""
    try:
        cluster: Cluster = await pipeline.call(calls.GET_CLUSTER, {"cluster_id": cluster_id})
    except ApiError:
        return None
    return cluster if cluster.id == cluster_id else None


async def _each_page(
    pipeline: Pipeline,
    call: Call[Any],
    arguments: Mapping[str, Any],
    page_size: int | None,
    max_pages: int | None,
    take: Callable[[tuple[Any, ...]], object],
) -> None:
    """`take(items)` for each page of one listing, with no page fetched ahead."""
    stream = pipeline.stream(
        call, arguments, page_size=page_size, max_pages=max_pages, prefetch=False
    )
    async with stream.pages() as pages:
        async for page in pages:
            take(page.items)


async def _collect(
    pipeline: Pipeline,
    call: Call[Any],
    arguments: Mapping[str, Any],
    page_size: int | None,
    max_pages: int | None,
) -> tuple[Any, ...]:
    """Every item of one listing."""
    items: list[Any] = []
    await _each_page(pipeline, call, arguments, page_size, max_pages, items.extend)
    return tuple(items)


def list_backups_many(
    pipeline: Pipeline,
    cluster_ids: list[str],
    *,
    concurrency: int,
    page_size: int | None,
    fail_fast: bool,
    max_pages: int | None,
) -> FanOut[str, ClusterBackups]:
    """Every cluster's backups, listed under one bound of `concurrency` (see
    `BackupsClient.list_backups_many`); the ids are checked already."""
    check_listing(concurrency, page_size, max_pages)

    async def list_cluster(cluster_id: str) -> ClusterBackups:
        arguments = {"cluster_id": cluster_id}
        backups: tuple[Backup, ...] = await _collect(
            pipeline, calls.LIST_BACKUPS, arguments, page_size, max_pages
        )
        return ClusterBackups(cluster_id, backups)

    return FanOut(
        list_cluster,
        cluster_ids,
        on_error=lambda cluster_id, error: ClusterBackups(cluster_id, error=error),
        concurrency=concurrency,
        fail_fast=fail_fast,
    )


@attrs.frozen
class _Listed:
    """One listing of a level of discovery: what it found, or why it failed."""

    key: str
    items: tuple[Any, ...] = ()
    error: ApiError | None = None


async def _list_each(
    pipeline: Pipeline,
    track: Track,
    call: Call[Any],
    keys: list[str],
    argument: str,
    *,
    concurrency: int,
    page_size: int | None,
    max_pages: int | None,
) -> list[_Listed]:
    """`call` for each key (as `argument`), at most `concurrency` at once; the results
    in the order of the keys."""

    async def run(key: str) -> _Listed:
        return _Listed(key, await _collect(pipeline, call, {argument: key}, page_size, max_pages))

    fanout = FanOut(
        run, keys, on_error=lambda key, error: _Listed(key, error=error), concurrency=concurrency
    )
    track(fanout)
    found: dict[str, _Listed] = {}
    async with fanout:
        async for listed in fanout:
            found[listed.key] = listed
    return [found[key] for key in keys]


def _unusable(call: str, name: str, value: str) -> ResponseFormatError | None:
    """The error for an id a listing gave that cannot be sent back in a request."""
    try:
        protocol.validate_id(value, name=name)
    except ValueError as error:
        return ResponseFormatError(f"{call} gave an unusable {name.replace('_', ' ')}: {error}")
    return None


@attrs.frozen
class Discovery:
    """What discovery found: the clusters (each once, in the order found), the `ACTIVE`
    folders they were listed from, the folders skipped for not being `ACTIVE`, and one
    line (as in an inventory) for each cloud, folder or organization that could not be
    listed."""

    clusters: tuple[Cluster, ...] = ()
    folders: tuple[Folder, ...] = ()
    skipped_folders: tuple[Folder, ...] = ()
    failures: tuple[ClusterInventory, ...] = ()


def check_targets(
    folder_ids: Iterable[str],
    cloud_ids: Iterable[str],
    all_clouds: bool,
    organization_id: str | None,
) -> tuple[list[str], list[str]]:
    """The folder and cloud ids, checked, with `all_clouds` and `organization_id`."""
    folders = check_ids(folder_ids, "folder_ids")
    clouds = check_ids(cloud_ids, "cloud_ids")
    if not isinstance(all_clouds, bool):
        raise TypeError(f"all_clouds must be a bool, not {type(all_clouds).__name__}")
    if organization_id is not None:
        protocol.validate_id(organization_id, name="organization_id")
        if not all_clouds:
            raise ValueError("organization_id goes with all_clouds=True")
    return folders, clouds


async def discover(
    pipeline: Pipeline,
    track: Track,
    *,
    folder_ids: list[str],
    cloud_ids: list[str],
    all_clouds: bool,
    organization_id: str | None,
    concurrency: int,
    page_size: int | None,
    max_pages: int | None,
) -> Discovery:
    """The clusters of the folders named, of every `ACTIVE` folder of the clouds named,
    and, with `all_clouds`, of every cloud the credentials can list (of
    `organization_id` when given); the arguments are checked already."""
    failures: list[ClusterInventory] = []
    list_each = functools.partial(
        _list_each,
        pipeline,
        track,
        concurrency=concurrency,
        page_size=page_size,
        max_pages=max_pages,
    )
    clouds = list(cloud_ids)
    if all_clouds:
        arguments = {"organization_id": organization_id}
        stream = pipeline.stream(
            calls.LIST_CLOUDS, arguments, page_size=page_size, max_pages=max_pages
        )
        track(stream)
        try:
            async with stream:
                async for cloud in stream:
                    unusable = _unusable("Cloud.list", "cloud_id", cloud.id)
                    if unusable is not None:
                        failures.append(ClusterInventory("", error=unusable))
                    elif cloud.id not in clouds:
                        clouds.append(cloud.id)
        except ApiError as error:
            failures.append(ClusterInventory("", error=error))
    folders: dict[str, Folder] = {folder_id: Folder(folder_id) for folder_id in folder_ids}
    skipped: list[Folder] = []
    for listed in await list_each(calls.LIST_FOLDERS, clouds, "cloud_id"):
        if listed.error is not None:
            failures.append(ClusterInventory("", cloud_id=listed.key, error=listed.error))
            continue
        for folder in listed.items:
            unusable = _unusable("Folder.list", "folder_id", folder.id)
            if unusable is not None:
                failures.append(ClusterInventory("", cloud_id=listed.key, error=unusable))
            elif folder.status is not FolderStatus.ACTIVE:
                skipped.append(folder)
            elif not folders.get(folder.id, Folder("")).cloud_id:  # new, or named bare
                folders[folder.id] = attrs.evolve(folder, cloud_id=listed.key)
    clusters: dict[str, Cluster] = {}
    for listed in await list_each(calls.LIST_CLUSTERS, list(folders), "folder_id"):
        cloud_id = folders[listed.key].cloud_id
        if listed.error is not None:
            failures.append(
                ClusterInventory("", folder_id=listed.key, cloud_id=cloud_id, error=listed.error)
            )
            continue
        for cluster in listed.items:
            clusters.setdefault(cluster.id, cluster)
    return Discovery(
        clusters=tuple(clusters.values()),
        folders=tuple(folders.values()),
        skipped_folders=tuple(skipped),
        failures=tuple(failures),
    )


async def inventory(
    pipeline: Pipeline,
    track: Track,
    *,
    folder_ids: Iterable[str],
    cluster_ids: Iterable[str],
    cloud_ids: Iterable[str],
    all_clouds: bool,
    organization_id: str | None,
    concurrency: int,
    page_size: int | None,
    stale_after: timedelta,
    now: datetime | None,
    on_progress: Callable[[int, int], None] | None,
    max_pages: int | None,
) -> Inventory:
    """The inventory (see `BackupsClient.inventory`)."""
    folder_ids, cloud_ids = check_targets(folder_ids, cloud_ids, all_clouds, organization_id)
    cluster_ids = check_ids(cluster_ids, "cluster_ids")
    if not (folder_ids or cluster_ids or cloud_ids or all_clouds):
        raise ValueError("inventory needs folder_ids, cluster_ids, cloud_ids or all_clouds=True")
    check_stale_after(stale_after)
    check_listing(concurrency, page_size, max_pages)
    now = now or datetime.now(UTC)
    found = await discover(
        pipeline,
        track,
        folder_ids=folder_ids,
        cloud_ids=cloud_ids,
        all_clouds=all_clouds,
        organization_id=organization_id,
        concurrency=concurrency,
        page_size=page_size,
        max_pages=max_pages,
    )
    known: dict[str, Cluster | None] = {cluster.id: cluster for cluster in found.clusters}
    for cluster_id in cluster_ids:
        known.setdefault(cluster_id, None)
    lines: dict[str, ClusterInventory] = {}
    cloud_of = {folder.id: folder.cloud_id for folder in found.folders}

    def line(cluster_id: str, tally: Tally, error: ApiError | None) -> ClusterInventory:
        cluster = known[cluster_id]
        cloud_id = cloud_of.get(cluster.folder_id, "") if cluster is not None else ""
        return tally.line(
            cluster_id, cluster, error, now=now, stale_after=stale_after, cloud_id=cloud_id
        )

    for cluster_id in known:
        error = _unusable("Cluster.list", "cluster_id", cluster_id)
        if error is not None:  # from Cluster.list: that cluster's line, not the end
            lines[cluster_id] = line(cluster_id, Tally(), error)

    async def summarize_cluster(cluster_id: str) -> ClusterInventory:
        if known[cluster_id] is None:  # named, not found: learn its name, folder, environment
            known[cluster_id] = await _cluster_or_none(pipeline, cluster_id)
        tally = Tally()  # a page at a time: no cluster's backups are held
        arguments = {"cluster_id": cluster_id}
        await _each_page(pipeline, calls.LIST_BACKUPS, arguments, page_size, max_pages, tally.add)
        return line(cluster_id, tally, None)

    fanout = FanOut(
        summarize_cluster,
        [cluster_id for cluster_id in known if cluster_id not in lines],
        on_error=lambda cluster_id, error: line(cluster_id, Tally(), error),
        concurrency=concurrency,
    )
    track(fanout)
    async with fanout as results:
        async for result in results:
            lines[result.cluster_id] = result
            if on_progress is not None:
                on_progress(len(lines), len(known))
    return Inventory(
        [*(lines[cluster_id] for cluster_id in known), *found.failures],
        skipped_folders=found.skipped_folders,
    )

"""Use cases over many listings: backups of many clusters at once, and the inventory.

Each runs on a `Pipeline`, with the bounded fan-out, so that its requests share the
client's concurrency, retry budget and rate limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from . import calls, protocol
from .aio import AsyncClosing
from .checks import check_int, check_iterable
from .errors import ResponseFormatError
from .fanout import FanOut
from .inventory import summarize
from .models import Backup, Cluster, ClusterBackups, ClusterInventory
from .pipeline import Pipeline


def check_cluster_ids(cluster_ids: Iterable[str], name: str = "cluster_ids") -> list[str]:
    """The ids, each checked, duplicates dropped, in their order."""
    ids = list(dict.fromkeys(check_iterable(cluster_ids, name)))
    for cluster_id in ids:
        protocol.validate_id(cluster_id)
    return ids


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
    check_int(concurrency, "concurrency", minimum=1)
    protocol.validate_page_size(page_size)
    protocol.validate_max_pages(max_pages)

    async def list_cluster(cluster_id: str) -> ClusterBackups:
        backups: list[Backup] = []
        stream = pipeline.stream(
            calls.LIST_BACKUPS,
            {"cluster_id": cluster_id},
            page_size=page_size,
            max_pages=max_pages,
            prefetch=False,
        )
        async with stream.pages() as pages:
            async for page in pages:
                backups.extend(page.backups)
        return ClusterBackups(cluster_id, tuple(backups))

    return FanOut(
        list_cluster,
        cluster_ids,
        on_error=lambda cluster_id, error: ClusterBackups(cluster_id, error=error),
        concurrency=concurrency,
        fail_fast=fail_fast,
    )


def check_stale_after(stale_after: timedelta) -> timedelta:
    """A positive timedelta."""
    if not isinstance(stale_after, timedelta):
        raise TypeError(f"stale_after must be a timedelta, not {type(stale_after).__name__}")
    if stale_after <= timedelta(0):
        raise ValueError(f"stale_after must be a positive timedelta, got {stale_after!r}")
    return stale_after


async def inventory(
    pipeline: Pipeline,
    track: Callable[[AsyncClosing], None],
    *,
    folder_ids: Iterable[str],
    cluster_ids: Iterable[str],
    concurrency: int,
    page_size: int | None,
    stale_after: timedelta,
    now: datetime | None,
    on_progress: Callable[[int, int], None] | None,
    max_pages: int | None,
) -> list[ClusterInventory]:
    """The inventory (see `BackupsClient.inventory`); `track` is given each stream and
    fan-out, for the client to close them if the client closes first."""
    folder_ids = check_iterable(folder_ids, "folder_ids")
    cluster_ids = check_iterable(cluster_ids, "cluster_ids")
    if not folder_ids and not cluster_ids:
        raise ValueError("inventory needs folder_ids, cluster_ids, or both")
    for folder_id in folder_ids:
        protocol.validate_id(folder_id, name="folder_id")
    for cluster_id in cluster_ids:
        protocol.validate_id(cluster_id)
    check_stale_after(stale_after)
    check_int(concurrency, "concurrency", minimum=1)
    now = now or datetime.now(UTC)
    known: dict[str, Cluster | None] = {}
    for folder_id in folder_ids:
        stream = pipeline.stream(
            calls.LIST_CLUSTERS, {"folder_id": folder_id}, page_size=page_size, max_pages=max_pages
        )
        track(stream)
        async with stream as clusters:
            async for cluster in clusters:
                known.setdefault(cluster.id, cluster)
    for cluster_id in cluster_ids:
        known.setdefault(cluster_id, None)
    lines: dict[str, ClusterInventory] = {}
    for cluster_id, found in known.items():
        error = _invalid_listed_id(cluster_id)
        if error is not None:  # from Cluster.list: that cluster's line, not the end
            lines[cluster_id] = summarize(ClusterBackups(cluster_id, error=error), found, now=now)
    fanout = list_backups_many(
        pipeline,
        [cluster_id for cluster_id in known if cluster_id not in lines],
        concurrency=concurrency,
        page_size=page_size,
        fail_fast=False,
        max_pages=max_pages,
    )
    track(fanout)
    async with fanout as results:
        async for result in results:
            lines[result.cluster_id] = summarize(
                result, known[result.cluster_id], now=now, stale_after=stale_after
            )
            if on_progress is not None:
                on_progress(len(lines), len(known))
    return [lines[cluster_id] for cluster_id in known]


def _invalid_listed_id(cluster_id: str) -> ResponseFormatError | None:
    """The error for a cluster id from `Cluster.list` that cannot be sent back in a path."""
    try:
        protocol.validate_id(cluster_id)
    except ValueError as error:
        return ResponseFormatError(f"Cluster.list gave an unusable cluster id: {error}")
    return None

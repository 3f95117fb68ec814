"""`pg-backups exporter`: backup freshness as Prometheus metrics.

A collection runs the inventory (bounded fan-out, retry budget, rate limit) every
`interval` seconds in the background; a scrape of `/metrics` serves the last snapshot
and never calls the API. A collection that fails as a whole keeps the last good values
and counts the failure. Needs `prometheus_client` (the `exporter` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from aiohttp import web

from .aio import serve
from .client import BackupsClient
from .errors import ApiError
from .inventory import DEFAULT_STALE_AFTER
from .models import ClusterInventory
from .sanitize import printable

log = logging.getLogger("pg_backups_async")

DEFAULT_LISTEN = "127.0.0.1:10183"
"""Outside 9100-9999, the range Prometheus allocates to exporters, which is full."""
DEFAULT_INTERVAL = 300.0

try:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.registry import CollectorRegistry
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    MISSING = "the exporter needs prometheus_client: pip install 'pg-backups-async[exporter]'"
else:
    MISSING = ""


@attrs.frozen
class Snapshot:
    """One collection's result, as the metrics serve it."""

    lines: tuple[ClusterInventory, ...]
    finished_at: float  # seconds since the epoch
    duration: float  # seconds


def _seconds(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def metric_families(snapshot: Snapshot | None, errors: int) -> Iterator[Any]:
    """The metric families for a snapshot (none before the first) and the error count."""
    failures = CounterMetricFamily(
        "pg_backups_collect_errors", "Collections that failed as a whole.", value=errors
    )
    if snapshot is None:
        yield failures
        return
    per_cluster = {
        "info": GaugeMetricFamily(
            "pg_backups_cluster_info",
            "1 for each cluster found.",
            labels=["cluster_id", "cluster_name", "folder_id", "environment"],
        ),
        "up": GaugeMetricFamily(
            "pg_backups_cluster_up",
            "1 if the cluster's backups were listed in the last collection, else 0.",
            labels=["cluster_id"],
        ),
        "backups": GaugeMetricFamily(
            "pg_backups_backups", "Backups by status.", labels=["cluster_id", "status"]
        ),
        "done_size": GaugeMetricFamily(
            "pg_backups_done_size_bytes",
            "Total size of the completed backups.",
            labels=["cluster_id"],
        ),
        "last_done": GaugeMetricFamily(
            "pg_backups_last_done_timestamp_seconds",
            "When the newest completed backup completed.",
            labels=["cluster_id"],
        ),
        "last_duration": GaugeMetricFamily(
            "pg_backups_last_done_duration_seconds",
            "How long the newest completed backup took.",
            labels=["cluster_id"],
        ),
        "oldest_done": GaugeMetricFamily(
            "pg_backups_oldest_done_timestamp_seconds",
            "When the oldest completed backup completed: where the restore window starts.",
            labels=["cluster_id"],
        ),
        "stale": GaugeMetricFamily(
            "pg_backups_stale",
            "1 if there is no completed backup younger than --stale-after, else 0.",
            labels=["cluster_id"],
        ),
    }
    for line in snapshot.lines:
        cluster = [line.cluster_id]
        per_cluster["info"].add_metric(
            [line.cluster_id, line.name, line.folder_id, line.environment.name], 1
        )
        per_cluster["up"].add_metric(cluster, 0 if line.error is not None else 1)
        if line.error is not None:
            continue
        for status, count in sorted(line.status_counts.items()):
            per_cluster["backups"].add_metric([line.cluster_id, status], count)
        per_cluster["done_size"].add_metric(cluster, line.done_size)
        optional = (
            ("last_done", _seconds(line.newest_done_at)),
            ("oldest_done", _seconds(line.oldest_done_at)),
            (
                "last_duration",
                line.newest_done_duration.total_seconds()
                if line.newest_done_duration is not None
                else None,
            ),
        )
        for key, value in optional:
            if value is not None:
                per_cluster[key].add_metric(cluster, value)
        per_cluster["stale"].add_metric(cluster, 1 if line.stale else 0)
    yield from per_cluster.values()
    yield GaugeMetricFamily(
        "pg_backups_collect_timestamp_seconds",
        "When the last collection finished.",
        value=snapshot.finished_at,
    )
    yield GaugeMetricFamily(
        "pg_backups_collect_duration_seconds",
        "How long the last collection took.",
        value=snapshot.duration,
    )
    yield failures


class Exporter:
    """Collects an inventory every `interval` seconds and serves it as metrics.

    `collect()` runs one collection; `start(host, port)` serves `/metrics` and
    `/healthz` and collects in the background until `stop()`.
    """

    def __init__(
        self,
        client: BackupsClient,
        *,
        folder_ids: Sequence[str] = (),
        cluster_ids: Sequence[str] = (),
        interval: float = DEFAULT_INTERVAL,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        concurrency: int = 16,
        on_collected: Callable[[Exporter], object] | None = None,
    ) -> None:
        if MISSING:
            raise RuntimeError(MISSING)
        self._client = client
        self._folder_ids = list(folder_ids)
        self._cluster_ids = list(cluster_ids)
        self._interval = interval
        self._stale_after = stale_after
        self._concurrency = concurrency
        self.snapshot: Snapshot | None = None
        self.errors = 0
        self.last_error: str | None = None
        self._on_collected = on_collected
        self.collections = 0
        """Collections finished, successful or not."""
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def collect(self) -> None:
        """One collection: a new snapshot, or (on failure) the old one and one more error."""
        started = time.monotonic()
        try:
            lines = await self._client.inventory(
                folder_ids=self._folder_ids,
                cluster_ids=self._cluster_ids,
                concurrency=self._concurrency,
                stale_after=self._stale_after,
                now=datetime.now(UTC),
            )
            failure = next((line.error for line in lines if not line.cluster_id), None)
        except ApiError as error:
            failure = error
        if failure is not None:  # a folder or cloud could not be listed
            self.errors += 1
            self.last_error = f"{type(failure).__name__}: {failure}"
            log.warning(
                "collection failed, keeping the last values: %s", printable(self.last_error)
            )
        else:
            self.last_error = None
            self.snapshot = Snapshot(tuple(lines), time.time(), time.monotonic() - started)
        self.collections += 1
        if self._on_collected is not None:
            self._on_collected(self)

    def collect_metrics(self) -> Iterable[Any]:
        """What a scrape shows (a prometheus_client collector's `collect`)."""
        return metric_families(self.snapshot, self.errors)

    def app(self) -> web.Application:
        """The web application: `/metrics` and `/healthz`."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self))

        async def metrics(request: web.Request) -> web.Response:
            return web.Response(
                body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )

        async def healthz(request: web.Request) -> web.Response:
            if self.snapshot is None and self.last_error is None:
                return web.Response(status=503, text="no collection yet\n")
            if self.last_error is not None:
                return web.Response(
                    status=503, text=f"last collection failed: {self.last_error}\n"
                )
            return web.Response(text="ok\n")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/healthz", healthz)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 10183) -> str:
        """Serve on host:port (0: a free port) and collect in the background; the URL."""
        self._runner, self.url = await serve(self.app(), host, port)
        self._loop_task = asyncio.create_task(self._run(), name="pg-backups-async exporter")
        return self.url

    async def stop(self) -> None:
        """Stop collecting and serving."""
        self._stopping.set()
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.collect()
            except Exception:  # a bug: counted and logged, and the next collection runs
                self.errors += 1
                self.last_error = "an unexpected error (see the log)"
                log.exception("collection failed unexpectedly, keeping the last values")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)


class _Collector:
    """A prometheus_client collector over the exporter's last snapshot."""

    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter

    def collect(self) -> Iterable[Any]:
        return self._exporter.collect_metrics()


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 in brackets) as a host and a port, or `ValueError`."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536 or not host:
        raise ValueError(f"--listen takes HOST:PORT, such as {DEFAULT_LISTEN}; got {text!r}")
    return host.strip("[]"), int(port)

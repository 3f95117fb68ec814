"""`pg-backups exporter`: backup freshness as Prometheus metrics.

A collection runs the inventory (bounded fan-out, retry budget, rate limit) every
`interval` seconds in the background; a scrape of `/metrics` serves the last values
and never calls the API. A collection that fails as a whole keeps the last values and
counts the failure; a cluster whose listing fails keeps its last values, marked down.
Each failed collection, and the recovery, is one warning in the log. Needs
`prometheus_client` (the `exporter` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs
from aiohttp import web

from .bulk import check_ids, check_targets
from .checks import check_int, check_optional_int, check_positive
from .client import BackupsClient
from .errors import ApiError
from .exposition import (
    ClusterState,
    Prerendered,
    RequestCounter,
    build_info,
    carry,
    cluster_families,
    prerender,
    scrape_time_text,
)
from .inventory import DEFAULT_STALE_AFTER
from .limits import (
    DEFAULT_CONCURRENCY,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_INTERVAL,
    DEFAULT_LISTEN,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PAGES,
    MIN_INTERVAL,
    RENDER_IN_THREAD_FROM,
)
from .logformat import EXPORTER_LOGGER
from .models import ClusterInventory
from .sanitize import printable
from .webconfig import WebConfig, basic_auth

log = logging.getLogger(EXPORTER_LOGGER)
_http_log = logging.getLogger(f"{EXPORTER_LOGGER}.http")
"""The web server's own log: a client's malformed request is no error of ours."""

_SHOWN = 3  # failed clusters named in a warning

try:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.platform_collector import PlatformCollector
    from prometheus_client.process_collector import ProcessCollector
    from prometheus_client.registry import CollectorRegistry
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    MISSING = (
        "the exporter needs prometheus_client: from a checkout, pip install -e '.[exporter]'; "
        "from a package index, pip install 'pg-backups-async[exporter]'"
    )
else:
    MISSING = ""

_LANDING = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>pg-backups exporter</title></head>
<body><h1>pg-backups exporter</h1>
<p>Backup freshness of Managed PostgreSQL clusters, version {version}.</p>
<ul><li><a href="metrics">/metrics</a>: the metrics</li>
<li><a href="healthz">/healthz</a>: 200 once a collection has succeeded, 503 while the
last one failed</li></ul></body></html>
"""


@attrs.frozen
class Snapshot:
    """The last successful collection: its lines, as the inventory gave them."""

    lines: tuple[ClusterInventory, ...]
    finished_at: float  # seconds since the epoch
    duration: float  # seconds


def metric_families(
    clusters: Iterable[ClusterState] | None,
    snapshot: Snapshot | None,
    errors: int,
    *,
    now: float,
    interval: float,
    stale_after: timedelta | None = None,
    requests: RequestCounter | None = None,
) -> Iterator[Any]:
    """What a scrape shows besides the process metrics, with ages taken at `now`; the
    per-cluster families only with `clusters`."""
    if snapshot is not None and clusters is not None:
        yield from cluster_families(clusters, now=now, stale_after=stale_after)
    if snapshot is not None:
        yield GaugeMetricFamily(
            "pg_backups_collect_timestamp_seconds",
            "When the last successful collection finished.",
            value=snapshot.finished_at,
        )
        yield GaugeMetricFamily(
            "pg_backups_collect_duration_seconds",
            "How long the last successful collection took.",
            value=snapshot.duration,
        )
    yield GaugeMetricFamily(
        "pg_backups_collect_interval_seconds", "The time between collections.", value=interval
    )
    yield CounterMetricFamily(
        "pg_backups_collect_errors",
        "Collections that failed, as a whole or in part (a folder or cloud not listed).",
        value=errors,
    )
    if requests is not None:
        yield requests.family()
    yield build_info()


class Exporter:
    """Collects an inventory every `interval` seconds and serves it as metrics.

    Every argument is checked when it is built (`TypeError`, `ValueError`): an interval
    under `MIN_INTERVAL`, nothing to watch, an id that is not one, a `str` where ids go.
    `max_pages` bounds each listing of a collection (`limits.DEFAULT_MAX_PAGES`).

    Its clusters are found as `BackupsClient.inventory` finds them, again at every
    collection (`folder_ids`, `cloud_ids`, `all_clouds` with `organization_id`, and
    `cluster_ids`): a new folder or cluster shows at the next collection, and a deleted
    cluster's series go then. `collect()` runs one collection; `start(host, port)`
    serves `/`, `/metrics` and `/healthz` and collects in the background until `stop()`.
    `requests` (or a new
    `RequestCounter`, at `on_attempt`) counts the client's HTTP attempts when the
    client was made with `on_attempt=` it.
    """

    def __init__(
        self,
        client: BackupsClient,
        *,
        folder_ids: Sequence[str] = (),
        cluster_ids: Sequence[str] = (),
        cloud_ids: Sequence[str] = (),
        all_clouds: bool = False,
        organization_id: str | None = None,
        interval: float = DEFAULT_INTERVAL,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_pages: int | None = DEFAULT_MAX_PAGES,
        on_collected: Callable[[Exporter], object] | None = None,
        requests: RequestCounter | None = None,
    ) -> None:
        if MISSING:
            raise RuntimeError(MISSING)
        if not isinstance(client, BackupsClient):
            raise TypeError(f"client must be a BackupsClient, not {type(client).__name__}")
        folders, clouds = check_targets(folder_ids, cloud_ids, all_clouds, organization_id)
        clusters = check_ids(cluster_ids, "cluster_ids")
        if not (folders or clusters or clouds or all_clouds):
            raise ValueError(
                "nothing to watch: give folder_ids, cluster_ids, cloud_ids or all_clouds=True"
            )
        self._targets: dict[str, Any] = {
            "folder_ids": folders,
            "cluster_ids": clusters,
            "cloud_ids": clouds,
            "all_clouds": all_clouds,
            "organization_id": organization_id,
        }
        interval = check_positive(interval, "interval")
        if interval < MIN_INTERVAL:
            raise ValueError(f"interval must be at least {MIN_INTERVAL:g} s, not {interval!r}")
        if not isinstance(stale_after, timedelta):
            raise TypeError(f"stale_after must be a timedelta, not {type(stale_after).__name__}")
        if stale_after <= timedelta(0):
            raise ValueError(f"stale_after must be positive, not {stale_after}")
        check_int(concurrency, "concurrency", minimum=1)
        check_optional_int(max_pages, "max_pages", minimum=1)
        if on_collected is not None and not callable(on_collected):
            raise TypeError(f"on_collected must be callable, not {type(on_collected).__name__}")
        if requests is not None and not isinstance(requests, RequestCounter):
            raise TypeError(f"requests must be a RequestCounter, not {type(requests).__name__}")
        self._client = client
        self._interval = interval
        self._stale_after = stale_after
        self._concurrency = concurrency
        self._max_pages = max_pages
        self.snapshot: Snapshot | None = None
        self.clusters: dict[str, ClusterState] = {}
        """What the metrics show of each cluster: last known values stay."""
        self._prerendered: Prerendered | None = None
        self.errors = 0
        self.last_error: str | None = None
        self.requests = requests if requests is not None else RequestCounter()
        self._on_collected = on_collected
        self._failing = False  # whether the last collection failed in any part
        self.collections = 0
        """Collections finished, successful or not."""
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._connections: _Connections | None = None
        self.url = ""

    @property
    def on_attempt(self) -> RequestCounter:
        """The hook to pass as `BackupsClient(on_attempt=...)`."""
        return self.requests

    async def collect(self) -> None:
        """One collection: new values, or (on failure) the old ones and one more error."""
        started = time.monotonic()
        try:
            result = await self._client.inventory(
                **self._targets,
                concurrency=self._concurrency,
                max_pages=self._max_pages,
                stale_after=self._stale_after,
                now=datetime.now(UTC),
            )
        except ApiError as error:
            self.errors += 1
            self.last_error = printable(f"{type(error).__name__}: {error}")
            self._failing = True
            log.warning("collection failed, keeping the last values: %s", self.last_error)
        else:
            now = time.time()
            # After discovery across clouds, inventory() says which folders, or whole
            # clouds, could not be listed: their clusters keep their last values.
            failures = result.failures
            failed_folders = {f.folder_id for f in failures if f.scope == "folder"}
            failed_clouds = {f.cloud_id for f in failures if f.scope == "cloud"}
            if any(f.scope == "organization" for f in failures):  # Cloud.list itself failed
                failed_clouds |= {kept.line.cloud_id for kept in self.clusters.values()}
            lines = tuple(line for line in result if line.cluster_id)
            self.clusters = carry(self.clusters, lines, failed_folders, now, failed_clouds)
            # Rendered once a collection (a large one in a thread): a scrape adds only
            # the ages.
            kept = tuple(self.clusters.values())
            self._prerendered = await _off_the_loop_if_large(len(kept), prerender, kept)
            # A folder or cloud not listed: the collection counts as failed in part.
            self.last_error = _describe_failures(failures)
            if self.last_error is not None:
                self.errors += 1
            self.snapshot = Snapshot(lines, now, time.monotonic() - started)
            self._report(lines, failures)
        self.collections += 1
        if self._on_collected is not None:
            self._on_collected(self)

    def _report(
        self, lines: Sequence[ClusterInventory], failures: Sequence[ClusterInventory]
    ) -> None:
        failed = [line for line in lines if line.error is not None]
        if not failed and not failures:
            if self._failing:
                log.warning("collection recovered: all %d clusters listed", len(lines))
            self._failing = False
            return
        self._failing = True
        parts = []
        if failed:
            named = _named(failed, lambda line: line.cluster_id)
            parts.append(f"{len(failed)} of {len(lines)} clusters not listed: {named}")
        for scope in ("folder", "cloud", "organization"):
            missed = [line for line in failures if line.scope == scope]
            if missed:
                named = _named(
                    missed, lambda line: line.folder_id or line.cloud_id or "Cloud.list"
                )
                parts.append(f"{scope}s not listed: {named}")
        log.warning(
            "collection incomplete, keeping the last values: %s", printable("; ".join(parts))
        )

    def collect_metrics(self, *, clusters: bool = True) -> Iterable[Any]:
        """What a scrape shows (a prometheus_client collector's `collect`), the process
        metrics aside; without the per-cluster families unless `clusters`."""
        return metric_families(
            self.clusters.values() if clusters else None,
            self.snapshot,
            self.errors,
            now=time.time(),
            interval=self._interval,
            stale_after=self._stale_after,
            requests=self.requests,
        )

    def registry(self) -> CollectorRegistry:
        """A registry with the exporter's own metrics and process metrics; the
        per-cluster ones are rendered once a collection (`scrape`)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self))
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        return registry

    def app(self, users: Mapping[str, bytes] | None = None) -> web.Application:
        """The web application: `/`, `/metrics` and `/healthz`, behind basic auth when
        `users` (names to bcrypt hashes) are given."""
        from . import __version__

        registry = self.registry()

        async def landing(request: web.Request) -> web.Response:
            return web.Response(
                text=_LANDING.format(version=html.escape(__version__)), content_type="text/html"
            )

        async def metrics(request: web.Request) -> web.Response:
            # Rendering takes ~0.13 ms a cluster: a large one in a thread, so that
            # collections and other requests go on meanwhile. What it reads is
            # replaced, never changed.
            body = await _off_the_loop_if_large(len(self.clusters), self.scrape, registry)
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

        async def healthz(request: web.Request) -> web.Response:
            if self.snapshot is None and self.last_error is None:
                return web.Response(status=503, text="no collection yet\n")
            if self.last_error is not None:
                return web.Response(
                    status=503, text=f"last collection failed: {self.last_error}\n"
                )
            return web.Response(text="ok\n")

        app = web.Application(middlewares=[basic_auth(users)] if users else [])
        app.router.add_get("/", landing)
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/healthz", healthz)
        return app

    def scrape(self, registry: CollectorRegistry) -> bytes:
        """The body of a scrape: `registry`'s metrics, then the per-cluster ones."""
        body = generate_latest(registry)
        prerendered = self._prerendered
        if prerendered is not None:
            body += scrape_time_text(prerendered, now=time.time(), stale_after=self._stale_after)
        return body

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 10183,
        *,
        web_config: WebConfig | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    ) -> str:
        """Serve on host:port (0: a free port) and collect in the background; the URL.

        `web_config` (from `load_web_config`) adds TLS and basic auth; without it, plain
        HTTP. At most `max_connections` are open at once: a new connection closes the
        oldest one with no request in progress (and is refused when every one has one),
        so idle or half-sent connections cannot lock scrapes out. A connection that has
        not sent a request's headers within `header_timeout` seconds of opening, or of
        its last answer, is closed.
        """
        check_int(max_connections, "max_connections", minimum=1)
        header_timeout = check_positive(header_timeout, "header_timeout")
        config = web_config if web_config is not None else WebConfig()
        connections = _Connections(max_connections)
        app = self.app(config.users)
        app.middlewares.insert(0, connections.middleware)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            logger=_http_log,
            # aiohttp closes a connection that has sent no complete request this long
            # after it opened or after its last answer: the header deadline.
            keepalive_timeout=header_timeout,
        )
        await runner.setup()
        handlers = runner.server
        assert handlers is not None
        try:
            self._server = await asyncio.get_running_loop().create_server(
                lambda: _Guarded(handlers(), connections), host, port, ssl=config.ssl_context
            )
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._connections = connections
        bound_host, bound_port = self._server.sockets[0].getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        scheme = "https" if config.ssl_context is not None else "http"
        self.url = f"{scheme}://{shown}:{bound_port}"
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
        server, self._server = self._server, None
        if server is not None:
            server.close()  # no new connections
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self._connections is not None:
            self._connections.close_all()
        if server is not None:
            await server.wait_closed()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.collect()
            except Exception:  # a bug: counted and logged, and the next collection runs
                self.errors += 1
                self.last_error = "an unexpected error (see the log)"
                self._failing = True
                log.exception("collection failed unexpectedly, keeping the last values")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)


class _Connections:
    """The server's open connections, oldest first, with their requests in progress."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: dict[asyncio.BaseTransport, int] = {}

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        """Whether a new connection may stay, after closing the oldest idle one if the
        limit is reached."""
        if len(self.open) >= self.limit:
            idle = next((t for t, busy in self.open.items() if not busy), None)
            if idle is None:
                return False
            del self.open[idle]
            _abort(idle)
        self.open[transport] = 0
        return True

    def gone(self, transport: asyncio.BaseTransport) -> None:
        self.open.pop(transport, None)

    def close_all(self) -> None:
        for transport in list(self.open):
            _abort(transport)
        self.open.clear()

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        """Marks a connection busy while one of its requests is handled."""
        transport = request.transport
        if transport in self.open:
            self.open[transport] += 1
        try:
            response: web.StreamResponse = await handler(request)
            return response
        finally:
            if transport in self.open:
                self.open[transport] -= 1


def _abort(transport: asyncio.BaseTransport) -> None:
    if isinstance(transport, asyncio.Transport):
        transport.abort()
    else:
        transport.close()


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, admitted by `_Connections` first."""

    def __init__(self, inner: asyncio.Protocol, connections: _Connections) -> None:
        self._inner = inner
        self._connections = connections
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._connections.admit(transport):
            self._transport = transport
            self._inner.connection_made(transport)
        else:
            _abort(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._connections.gone(self._transport)
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._transport is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._transport is not None else None

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._inner.resume_writing()


class _NoBadRequests(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, HttpProcessingError)


_http_log.addFilter(_NoBadRequests())


_T = TypeVar("_T")


async def _off_the_loop_if_large(size: int, render: Callable[..., _T], *args: Any) -> _T:
    """`render(*args)` in a worker thread when `size` clusters would hold the event loop
    for long; on the loop otherwise, sparing the memory each thread's allocator keeps."""
    if size < RENDER_IN_THREAD_FROM:
        return render(*args)
    return await asyncio.to_thread(render, *args)


def _named(lines: Sequence[ClusterInventory], name: Callable[[ClusterInventory], str]) -> str:
    """The first few failed lines, each named with its error, and how many more."""
    named = ", ".join(
        f"{name(line)} ({type(line.error).__name__}: {line.error})" for line in lines[:_SHOWN]
    )
    more = f" and {len(lines) - _SHOWN} more" if len(lines) > _SHOWN else ""
    return named + more


def _describe_failures(failures: Sequence[ClusterInventory]) -> str | None:
    """The first failure of discovery, for `/healthz`; None when there was none."""
    if not failures:
        return None
    first = failures[0]
    where = first.folder_id or first.cloud_id or "the clouds"
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    return printable(
        f"{first.scope} {where} not listed: {type(first.error).__name__}: {first.error}{more}"
    )


class _Collector:
    """A prometheus_client collector over the exporter's last snapshot."""

    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter

    def collect(self) -> Iterable[Any]:
        return self._exporter.collect_metrics(clusters=False)


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 in brackets) as a host and a port, or `ValueError`."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536 or not host:
        raise ValueError(f"--listen takes HOST:PORT, such as {DEFAULT_LISTEN}; got {text!r}")
    return host.strip("[]"), int(port)

"""`BackupsClient`: the API's calls as typed methods, over one request pipeline.

Each method is a thin wrapper over a call of the table (`calls`): one call is sent by
`Pipeline.call`, one listing is streamed by `Pipeline.stream`; the use cases over many
listings are in `bulk`.
"""

from __future__ import annotations

import copy
import enum
import os
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from ssl import SSLContext
from typing import Any, Self, TypeVar

import aiohttp
import attrs
from yarl import URL

from . import bulk, calls, protocol
from .aio import AsyncClosing
from .auth import Credentials, credentials_from_env
from .bulk import Discovery
from .checks import check_int, check_positive
from .fanout import FanOut
from .inventory import DEFAULT_STALE_AFTER
from .limits import (
    DEFAULT_CONCURRENCY,
    DEFAULT_CONNECTION_LIMIT,
    DEFAULT_MAX_PAGES,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    MAX_CONNECT_TIMEOUT,
)
from .models import (
    Backup,
    BackupsPage,
    Cloud,
    CloudsPage,
    Cluster,
    ClusterBackups,
    ClustersPage,
    Folder,
    FoldersPage,
    Inventory,
)
from .observe import AttemptHook, check_hooks
from .paging import PageStream, ResumePoint
from .pipeline import Pipeline, Settings
from .ratelimit import RateLimiter
from .retry import RetryBudget, RetryPolicy
from .transport import AiohttpTransport, Transport, check_proxy, check_ssl
from .transport import user_agent as user_agent_header

API_ENDPOINT = calls.MANAGED_POSTGRESQL.default_endpoint
RESOURCE_MANAGER_ENDPOINT = calls.RESOURCE_MANAGER.default_endpoint

_S = TypeVar("_S", bound=AsyncClosing)


class _Lifecycle(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class BackupsClient(AsyncClosing):
    """A session with the Managed PostgreSQL API; use it as `async with BackupsClient(...)`.

    `credentials` gives the IAM token for each call (default: `credentials_from_env()`);
    `endpoint` is the Managed PostgreSQL API's base URL (`http://` only for loopback
    hosts, such as the emulator), and `resource_manager_endpoint` Resource Manager's (by
    default its public host; `endpoint` when only that is given, so that one emulator or
    test server serves both); `retry` says how failed requests are repeated; `timeout` bounds each
    attempt as a whole, in seconds (connecting within at most 10 of them), or is an
    `aiohttp.ClientTimeout`; `connection_limit` caps the pool of connections, and so a
    fan-out; `requests_per_second` spaces every request, retries included; an answer
    over `max_response_bytes` (counted after decompression; 8 MiB by default, eight
    times a page of 1000 backups) is refused.

    The HTTP session: `trust_env` (default True) sends https requests through the proxy
    that `HTTPS_PROXY` names, except to hosts in `NO_PROXY`, as read when the client
    opens (`http://` endpoints, loopback hosts only, never go through it); `proxy` (a URL, `http://user:password@host:port`)
    carries every request instead. An https request always crosses a proxy inside a
    `CONNECT` tunnel, so the proxy never sees the token. `ssl` is an `ssl.SSLContext`,
    or the path of a CA bundle (PEM) to trust instead of the system's. `user_agent` (an
    app's `name/version`) is appended to the library's own `User-Agent`. `session` is
    an `aiohttp.ClientSession` the caller owns and closes: the client sends through it
    (with its own timeout, proxy, TLS and headers per request) and never closes it; a
    session made with `trust_env=True` is refused (pass `trust_env` here); its
    connector and cookie jar are the session's (the client's own session keeps no
    cookies: use `aiohttp.DummyCookieJar()` for the same). `transport` replaces the
    HTTP session altogether (for tests: `MockTransport`); the client closes it.

    `on_attempt` is a function (or several) called with an `Attempt` after every HTTP
    attempt, for the caller's logs, metrics and traces. `rate_limiter` (instead of
    `requests_per_second`) and `retry_budget` (instead of the one `retry.budget` makes)
    may be shared by several clients, so that together they keep one rate and one budget.
    `with_options()` makes a client that differs in its timeout and retries only.

    Raises `TypeError` or `ValueError`, naming the argument, for a bad one.
    """

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        endpoint: str | None = None,
        resource_manager_endpoint: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        connection_limit: int = DEFAULT_CONNECTION_LIMIT,
        requests_per_second: float | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        transport: Transport | None = None,
        on_attempt: AttemptHook | Sequence[AttemptHook] | None = None,
        rate_limiter: RateLimiter | None = None,
        retry_budget: RetryBudget | None = None,
        trust_env: bool = True,
        proxy: str | URL | None = None,
        ssl: SSLContext | str | os.PathLike[str] | None = None,
        user_agent: str | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if credentials is None:
            credentials = credentials_from_env()
        if not isinstance(credentials, Credentials):
            raise TypeError(
                "credentials must provide async token() and invalidate(), such as "
                f"IamToken(...); got {type(credentials).__name__}"
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy or None, not {type(retry).__name__}")
        if transport is not None and not isinstance(transport, Transport):
            raise TypeError(
                f"transport must provide send() and aclose(), not {type(transport).__name__}"
            )
        if not isinstance(trust_env, bool):
            raise TypeError(f"trust_env must be a bool, not {type(trust_env).__name__}")
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"session must be an aiohttp.ClientSession, not {type(session).__name__}"
            )
        self._proxy = check_proxy(proxy)
        self._ssl = check_ssl(ssl)
        self._user_agent = user_agent_header(user_agent)
        self._trust_env = trust_env
        self._session = session
        if transport is not None:
            given = [
                name
                for name, value in (
                    ("session", session),
                    ("proxy", proxy),
                    ("ssl", ssl),
                    ("user_agent", user_agent),
                )
                if value is not None
            ]
            if given:
                raise ValueError(
                    f"transport replaces the HTTP session; {', '.join(given)} cannot go with it"
                )
        self._credentials = credentials
        self._base_url = protocol.validate_endpoint(endpoint or API_ENDPOINT)
        self._resource_manager_url = protocol.validate_endpoint(
            resource_manager_endpoint or endpoint or RESOURCE_MANAGER_ENDPOINT,
            "resource_manager_endpoint",
        )
        retry = retry or RetryPolicy()
        self._timeout = _client_timeout(timeout)
        self._connection_limit = check_int(connection_limit, "connection_limit", minimum=1)
        self._transport = transport
        self._state = _Lifecycle.NEW
        self._parent: BackupsClient | None = None
        self._own_timeout = False  # a client of with_options(timeout=...)
        self._views: dict[int, Transport] = {}
        self._streams: weakref.WeakSet[AsyncClosing] = weakref.WeakSet()
        self._pipeline = Pipeline(
            Settings(
                credentials=credentials,
                base_urls={
                    calls.MANAGED_POSTGRESQL: self._base_url,
                    calls.RESOURCE_MANAGER: self._resource_manager_url,
                },
                retry=retry,
                retry_budget=_retry_budget(retry_budget, retry),
                rate_limiter=_rate_limiter(rate_limiter, requests_per_second),
                max_response_bytes=check_int(max_response_bytes, "max_response_bytes", minimum=1),
                hooks=check_hooks(on_attempt),
            ),
            self._require_open,
        )

    def with_options(
        self,
        *,
        timeout: float | aiohttp.ClientTimeout | None = None,
        retry: RetryPolicy | None = None,
        max_response_bytes: int | None = None,
        on_attempt: AttemptHook | Sequence[AttemptHook] | None = None,
    ) -> BackupsClient:
        """A client that differs from this one only in the settings given (None: this
        one's; `on_attempt=()` for no hooks), for a call or a part of an app:
        `await client.with_options(timeout=5, retry=RetryPolicy.disabled()).get_cluster(...)`.

        It shares this client's HTTP session, credentials, endpoints, rate limiter and
        retry budget (whatever `retry.budget` says), and is open while this one is.
        Closing it closes its own streams only; closing this one closes its streams too.
        `timeout` needs the client's own HTTP session (not `transport=`).

        Raises `TypeError` or `ValueError`, naming the argument, for a bad one.
        """
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy or None, not {type(retry).__name__}")
        client_timeout = None if timeout is None else _client_timeout(timeout)
        if (
            client_timeout is not None
            and self._transport is not None
            and not isinstance(self._transport, AiohttpTransport)
        ):
            raise ValueError(
                "timeout cannot be changed for a client made with transport=; "
                "pass it to that transport"
            )
        settings = self._pipeline.settings
        changes: dict[str, Any] = {}
        if retry is not None:
            changes["retry"] = retry
        if max_response_bytes is not None:
            changes["max_response_bytes"] = check_int(
                max_response_bytes, "max_response_bytes", minimum=1
            )
        if on_attempt is not None:
            changes["hooks"] = check_hooks(on_attempt)
        child = copy.copy(self)
        child._parent = self._root()
        child._state = _Lifecycle.OPEN if self._state is not _Lifecycle.CLOSED else self._state
        child._streams = weakref.WeakSet()
        child._views = {}
        if client_timeout is not None:
            child._timeout, child._own_timeout = client_timeout, True
        child._pipeline = Pipeline(attrs.evolve(settings, **changes), child._require_open)
        return child

    def _root(self) -> BackupsClient:
        return self if self._parent is None else self._parent

    @property
    def endpoint(self) -> str:
        """The API's base URL."""
        return str(self._base_url)

    @property
    def resource_manager_endpoint(self) -> str:
        """Resource Manager's base URL: where clouds and folders are listed."""
        return str(self._resource_manager_url)

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy in force."""
        return self._pipeline.settings.retry

    @property
    def rate_limiter(self) -> RateLimiter | None:
        """The limiter spacing this client's requests, if any."""
        return self._pipeline.settings.rate_limiter

    @property
    def retry_budget(self) -> RetryBudget | None:
        """The budget this client's retries draw on, if any."""
        return self._pipeline.settings.retry_budget

    def __repr__(self) -> str:
        return (
            f"<BackupsClient {self.endpoint} {self._state}, "
            f"credentials={type(self._credentials).__name__}>"
        )

    async def __aenter__(self) -> Self:
        if self._parent is not None:  # a client of with_options(): open with its parent
            self._require_open()
            return self
        if self._state is not _Lifecycle.NEW:
            raise RuntimeError(
                f"this BackupsClient is {self._state}; a client is entered once, "
                "so create a new one"
            )
        if self._transport is None:
            self._transport = AiohttpTransport(
                timeout=self._timeout,
                connection_limit=self._connection_limit,
                session=self._session,
                proxy=self._proxy,
                trust_env=self._trust_env,
                ssl=self._ssl,
                user_agent=self._user_agent,
            )
        self._state = _Lifecycle.OPEN
        return self

    async def aclose(self) -> None:
        """Close every stream still open, then the transport (never a `session=` of the
        caller's; for a client of `with_options()`, only its own streams)."""
        if self._state is _Lifecycle.CLOSED:
            return
        was_open = self._state is _Lifecycle.OPEN
        self._state = _Lifecycle.CLOSED
        for stream in list(self._streams):
            await stream.aclose()
        if was_open and self._parent is None and self._transport is not None:
            await self._transport.aclose()

    # The calls: each a thin wrapper over a call of the table.

    async def get_backups_page(
        self, cluster_id: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> BackupsPage:
        """One page of the cluster's backups (`Cluster.listBackups`).

        `page_size` is 1..1000 (None: the server's default, 100); `page_token` is a
        previous page's `next_page_token` (None: the first page).

        Raises `ValueError` (or `TypeError`) for a bad argument, before any request,
        and an `ApiError` subclass when the service gives no good answer.
        """
        return await self._pipeline.call(
            calls.LIST_BACKUPS,
            {"cluster_id": cluster_id, "page_size": page_size, "page_token": page_token},
        )

    def list_backups(
        self,
        cluster_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        max_items: int | None = None,
        max_pages: int | None = DEFAULT_MAX_PAGES,
        resume: ResumePoint | str | None = None,
    ) -> PageStream[BackupsPage, Backup]:
        """Stream the cluster's backups, fetching each next page ahead.

        Arguments are checked now, before any request. Pages hold `page_size` backups
        (None: 1000, the fewest requests); `max_items` stops after that many backups,
        asking only for as many as it still needs. A listing that has not ended after
        `max_pages` pages (10,000 by default; None, asked for, is no bound) raises
        `ResponseFormatError`. `resume` (a stream's `resume_point`, or its text)
        carries on exactly where one stopped.

        Raises `ValueError` (or `TypeError`) for a bad argument now; iterating raises an
        `ApiError` subclass when a page cannot be had.
        """
        return self._stream(
            self._pipeline.stream(
                calls.LIST_BACKUPS,
                {"cluster_id": cluster_id},
                page_size=page_size,
                page_token=page_token,
                max_items=max_items,
                max_pages=max_pages,
                resume=resume,
            )
        )

    async def get_clusters_page(
        self,
        folder_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        filter: str | None = None,
    ) -> ClustersPage:
        """One page of the folder's clusters (`Cluster.list`); `filter` as `name="..."`.

        Raises `ValueError` (or `TypeError`) for a bad argument, before any request,
        and an `ApiError` subclass when the service gives no good answer.
        """
        return await self._pipeline.call(
            calls.LIST_CLUSTERS,
            {
                "folder_id": folder_id,
                "page_size": page_size,
                "page_token": page_token,
                "filter": filter,
            },
        )

    def list_clusters(
        self,
        folder_id: str,
        *,
        filter: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        max_items: int | None = None,
        max_pages: int | None = DEFAULT_MAX_PAGES,
        resume: ResumePoint | str | None = None,
    ) -> PageStream[ClustersPage, Cluster]:
        """Stream the folder's clusters, fetching each next page ahead; `page_size`,
        `max_items`, `max_pages` and `resume` as in `list_backups`.

        Raises `ValueError` (or `TypeError`) for a bad argument now; iterating raises an
        `ApiError` subclass when a page cannot be had.
        """
        return self._stream(
            self._pipeline.stream(
                calls.LIST_CLUSTERS,
                {"folder_id": folder_id, "filter": filter},
                page_size=page_size,
                page_token=page_token,
                max_items=max_items,
                max_pages=max_pages,
                resume=resume,
            )
        )

    async def get_cluster(self, cluster_id: str) -> Cluster:
        """One cluster by its id (`Cluster.get`).

        Raises `ValueError` (or `TypeError`) for a bad argument, before any request,
        and an `ApiError` subclass when the service gives no good answer.
        """
        return await self._pipeline.call(calls.GET_CLUSTER, {"cluster_id": cluster_id})

    async def get_folder_backups_page(
        self, folder_id: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> BackupsPage:
        """One page of every backup in the folder (`Backup.list`).

        Raises `ValueError` (or `TypeError`) for a bad argument, before any request,
        and an `ApiError` subclass when the service gives no good answer.
        """
        return await self._pipeline.call(
            calls.LIST_FOLDER_BACKUPS,
            {"folder_id": folder_id, "page_size": page_size, "page_token": page_token},
        )

    def list_folder_backups(
        self,
        folder_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        max_items: int | None = None,
        max_pages: int | None = DEFAULT_MAX_PAGES,
        resume: ResumePoint | str | None = None,
    ) -> PageStream[BackupsPage, Backup]:
        """Stream every backup in the folder (`Backup.list`), fetching each next page
        ahead; `page_size`, `max_items`, `max_pages` and `resume` as in `list_backups`.

        Raises `ValueError` (or `TypeError`) for a bad argument now; iterating raises an
        `ApiError` subclass when a page cannot be had.
        """
        return self._stream(
            self._pipeline.stream(
                calls.LIST_FOLDER_BACKUPS,
                {"folder_id": folder_id},
                page_size=page_size,
                page_token=page_token,
                max_items=max_items,
                max_pages=max_pages,
                resume=resume,
            )
        )

    async def get_backup(self, backup_id: str) -> Backup:
        """One backup by its id, `<clusterId>:<name>` (`Backup.get`).

        Raises `ValueError` (or `TypeError`) for a bad argument, before any request,
        and an `ApiError` subclass when the service gives no good answer.
        """
        return await self._pipeline.call(calls.GET_BACKUP, {"backup_id": backup_id})

    async def get_clouds_page(
        self,
        organization_id: str | None = None,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        filter: str | None = None,
    ) -> CloudsPage:
        """One page of the clouds these credentials may see (`Cloud.list`), all of the
        organization's with `organization_id`; `filter` as `name="..."`.

        Raises `ValueError` (or `TypeError`) for a bad argument, before any request,
        and an `ApiError` subclass when the service gives no good answer.
        """
        return await self._pipeline.call(
            calls.LIST_CLOUDS,
            {
                "organization_id": organization_id,
                "page_size": page_size,
                "page_token": page_token,
                "filter": filter,
            },
        )

    def list_clouds(
        self,
        organization_id: str | None = None,
        *,
        filter: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        max_items: int | None = None,
        max_pages: int | None = DEFAULT_MAX_PAGES,
        resume: ResumePoint | str | None = None,
    ) -> PageStream[CloudsPage, Cloud]:
        """Stream the clouds these credentials may see (`Cloud.list`), all of the
        organization's with `organization_id`, fetching each next page ahead;
        `page_size`, `max_items`, `max_pages` and `resume` as in `list_backups`.

        Raises `ValueError` (or `TypeError`) for a bad argument now; iterating raises an
        `ApiError` subclass when a page cannot be had.
        """
        return self._stream(
            self._pipeline.stream(
                calls.LIST_CLOUDS,
                {"organization_id": organization_id, "filter": filter},
                page_size=page_size,
                page_token=page_token,
                max_items=max_items,
                max_pages=max_pages,
                resume=resume,
            )
        )

    async def get_cloud(self, cloud_id: str) -> Cloud:
        """One cloud by its id (`Cloud.get`).

        Raises `ValueError` (or `TypeError`) for a bad argument, before any request,
        and an `ApiError` subclass when the service gives no good answer.
        """
        return await self._pipeline.call(calls.GET_CLOUD, {"cloud_id": cloud_id})

    async def get_folders_page(
        self,
        cloud_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        filter: str | None = None,
    ) -> FoldersPage:
        """One page of the cloud's folders (`Folder.list`); `filter` as `name="..."`.

        Raises `ValueError` (or `TypeError`) for a bad argument, before any request,
        and an `ApiError` subclass when the service gives no good answer.
        """
        return await self._pipeline.call(
            calls.LIST_FOLDERS,
            {
                "cloud_id": cloud_id,
                "page_size": page_size,
                "page_token": page_token,
                "filter": filter,
            },
        )

    def list_folders(
        self,
        cloud_id: str,
        *,
        filter: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        max_items: int | None = None,
        max_pages: int | None = DEFAULT_MAX_PAGES,
        resume: ResumePoint | str | None = None,
    ) -> PageStream[FoldersPage, Folder]:
        """Stream the cloud's folders (`Folder.list`), fetching each next page ahead;
        `page_size`, `max_items`, `max_pages` and `resume` as in `list_backups`.

        Raises `ValueError` (or `TypeError`) for a bad argument now; iterating raises an
        `ApiError` subclass when a page cannot be had.
        """
        return self._stream(
            self._pipeline.stream(
                calls.LIST_FOLDERS,
                {"cloud_id": cloud_id, "filter": filter},
                page_size=page_size,
                page_token=page_token,
                max_items=max_items,
                max_pages=max_pages,
                resume=resume,
            )
        )

    async def get_folder(self, folder_id: str) -> Folder:
        """One folder by its id (`Folder.get`).

        Raises `ValueError` (or `TypeError`) for a bad argument, before any request,
        and an `ApiError` subclass when the service gives no good answer.
        """
        return await self._pipeline.call(calls.GET_FOLDER, {"folder_id": folder_id})

    # Many listings at once

    def list_backups_many(
        self,
        cluster_ids: Iterable[str],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        page_size: int | None = None,
        fail_fast: bool = False,
        max_pages: int | None = DEFAULT_MAX_PAGES,
    ) -> FanOut[str, ClusterBackups]:
        """List many clusters' backups at once: `ClusterBackups` in completion order.

        At most `concurrency` requests are in flight, across all clusters and pages.
        Duplicated ids are listed once; every id is checked now, before any request.
        A cluster's error is captured in its result unless `fail_fast`. Pages hold
        `page_size` backups (None: 1000). A cluster whose listing has not ended after
        `max_pages` pages (10,000 by default; None: no bound) fails with
        `ResponseFormatError`.

        Raises `ValueError` (or `TypeError`) for a bad argument now; a cluster's `ApiError`
        is its result's `error`, or, with `fail_fast`, raised by the iteration.
        """
        ids = bulk.check_ids(cluster_ids)
        fanout = bulk.list_backups_many(
            self._pipeline,
            ids,
            concurrency=concurrency,
            page_size=page_size,
            fail_fast=fail_fast,
            max_pages=max_pages,
        )
        self._require_open()
        return self._stream(fanout)

    async def discover_clusters(
        self,
        *,
        folder_ids: Iterable[str] = (),
        cloud_ids: Iterable[str] = (),
        all_clouds: bool = False,
        organization_id: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        page_size: int | None = None,
        max_pages: int | None = DEFAULT_MAX_PAGES,
    ) -> Discovery:
        """Find the clusters of the folders named, of every `ACTIVE` folder of the clouds
        named, and with `all_clouds` of every cloud these credentials can list (all of
        `organization_id`'s when given).

        Each level (clouds, folders, clusters) is one bounded fan-out of at most
        `concurrency` listings. A cloud or folder that cannot be listed is one of the
        result's `failures`, never the end; folders that are not `ACTIVE` are skipped
        and listed as such; a cluster found twice is there once.

        Raises `ValueError` (or `TypeError`) for a bad argument, before any request.
        """
        folders, clouds = bulk.check_targets(folder_ids, cloud_ids, all_clouds, organization_id)
        bulk.check_listing(concurrency, page_size, max_pages)
        self._require_open()
        return await bulk.discover(
            self._pipeline,
            self._track,
            folder_ids=folders,
            cloud_ids=clouds,
            all_clouds=all_clouds,
            organization_id=organization_id,
            concurrency=concurrency,
            page_size=page_size,
            max_pages=max_pages,
        )

    async def inventory(
        self,
        *,
        folder_ids: Iterable[str] = (),
        cluster_ids: Iterable[str] = (),
        cloud_ids: Iterable[str] = (),
        all_clouds: bool = False,
        organization_id: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        page_size: int | None = None,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        now: datetime | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        max_pages: int | None = DEFAULT_MAX_PAGES,
    ) -> Inventory:
        """Summarize the backups of every cluster found, as `discover_clusters` finds
        them, and of the clusters named; any combination of the four.

        Discovery and the listings of backups are bounded fan-outs under the same
        `concurrency`, retry budget and rate limit. A cluster with no completed backup
        younger than `stale_after` is stale. One line per cluster, in the order found
        (discovered clusters first), then one line per cloud, folder or organization
        that could not be listed; a cluster's error is in its line. The result also
        says which folders were skipped for not being `ACTIVE`. `on_progress(done,
        total)` is called as clusters complete. `page_size` and `max_pages` apply to
        each listing, as in `list_backups_many`. A cluster named in `cluster_ids` and
        not discovered is looked up (`Cluster.get`) by the same worker, for its name,
        folder and environment; a failed lookup leaves them empty, not the line in
        error. Each cluster's backups are summed up a page at a time, never held.

        Returns the lines; raises `ValueError` (or `TypeError`) for a bad argument.
        """
        self._require_open()
        return await bulk.inventory(
            self._pipeline,
            self._track,
            folder_ids=folder_ids,
            cluster_ids=cluster_ids,
            cloud_ids=cloud_ids,
            all_clouds=all_clouds,
            organization_id=organization_id,
            concurrency=concurrency,
            page_size=page_size,
            stale_after=stale_after,
            now=now,
            on_progress=on_progress,
            max_pages=max_pages,
        )

    def _stream(self, stream: _S) -> _S:
        """A stream or fan-out of the caller's: closing the client closes it."""
        self._streams.add(stream)
        if self._parent is not None:
            self._parent._streams.add(stream)
        return stream

    def _track(self, stream: AsyncClosing) -> None:
        self._stream(stream)

    def _require_open(self) -> Transport:
        if self._parent is not None and self._state is not _Lifecycle.CLOSED:
            transport = self._parent._require_open()
            if not self._own_timeout or not isinstance(transport, AiohttpTransport):
                return transport
            view = self._views.get(id(transport))
            if view is None:
                view = self._views[id(transport)] = transport.with_timeout(self._timeout)
            return view
        if self._state is _Lifecycle.OPEN and self._transport is not None:
            return self._transport
        if self._state is _Lifecycle.CLOSED:
            raise RuntimeError("this BackupsClient is closed")
        raise RuntimeError(
            "this BackupsClient is not open: use it as 'async with BackupsClient(...) as client:'"
        )


def _rate_limiter(
    limiter: RateLimiter | None, requests_per_second: float | None
) -> RateLimiter | None:
    if limiter is None:
        return None if requests_per_second is None else RateLimiter(requests_per_second)
    if not isinstance(limiter, RateLimiter):
        raise TypeError(f"rate_limiter must be a RateLimiter, not {type(limiter).__name__}")
    if requests_per_second is not None:
        raise ValueError("pass rate_limiter or requests_per_second, not both")
    return limiter


def _retry_budget(budget: RetryBudget | None, retry: RetryPolicy) -> RetryBudget | None:
    if budget is None:
        return None if retry.budget is None else RetryBudget(retry.budget)
    if not isinstance(budget, RetryBudget):
        raise TypeError(f"retry_budget must be a RetryBudget, not {type(budget).__name__}")
    return budget


def _client_timeout(timeout: float | aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    if isinstance(timeout, aiohttp.ClientTimeout):
        return timeout
    seconds = check_positive(timeout, "timeout")
    return aiohttp.ClientTimeout(total=seconds, sock_connect=min(MAX_CONNECT_TIMEOUT, seconds))

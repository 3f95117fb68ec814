"""`BackupsClient`: the API's calls over one transport, with auth, retries and streams.

A call goes: get a token (exchanging it through the same transport and retry loop if
need be), send under the call's retry loop, and on a 401 drop the token and send once
more with a fresh one. One deadline, `RetryPolicy.max_time`, bounds it all.
"""

from __future__ import annotations

import asyncio
import enum
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self, TypeVar

import aiohttp
import attrs

from . import protocol
from .aio import AsyncClosing
from .auth import (
    Credentials,
    Exchange,
    ExchangedCredentials,
    IamToken,
    check_token,
    credentials_from_env,
)
from .checks import check_int, check_iterable, check_positive
from .errors import ApiError, AuthError, ResponseFormatError, UnauthenticatedError
from .fanout import FanOut
from .inventory import DEFAULT_STALE_AFTER, summarize
from .limits import RateLimiter
from .models import (
    Backup,
    BackupsPage,
    Cluster,
    ClusterBackups,
    ClusterInventory,
    ClustersPage,
)
from .observe import (
    Attempt,
    AttemptHook,
    attempt_span,
    call_span,
    check_hooks,
    emit,
    end_attempt_span,
)
from .paging import P, PageStream, ResumePoint
from .protocol import Endpoint
from .retry import RetryBudget, Retrying, RetryPolicy
from .sanitize import redact_error
from .transport import AiohttpTransport, HttpRequest, Transport
from .wire import MAX_PAGE_SIZE

_T = TypeVar("_T")


class _Lifecycle(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class BackupsClient(AsyncClosing):
    """A session with the Managed PostgreSQL API; use it as `async with BackupsClient(...)`.

    `credentials` gives the IAM token for each call (default: `credentials_from_env()`);
    `endpoint` is the API's base URL (`http://` only for loopback hosts, such as the
    emulator); `retry` says how failed requests are repeated; `timeout` bounds each
    attempt as a whole, in seconds (connecting within at most 10 of them), or is an
    `aiohttp.ClientTimeout`; `connection_limit` caps the pool of connections, and so a
    fan-out; `requests_per_second` spaces every request, retries included; an answer
    over `max_response_bytes` (counted after decompression) is refused. `transport`
    replaces the aiohttp session (for tests: `MockTransport`); the client closes it.
    `on_attempt` is a function (or several) called with an `Attempt` after every HTTP
    attempt, for the caller's logs, metrics and traces.
    """

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        endpoint: str = protocol.API_ENDPOINT,
        retry: RetryPolicy | None = None,
        timeout: float | aiohttp.ClientTimeout = 30.0,
        connection_limit: int = 100,
        requests_per_second: float | None = None,
        max_response_bytes: int = 64 * 1024 * 1024,
        transport: Transport | None = None,
        on_attempt: AttemptHook | Sequence[AttemptHook] | None = None,
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
        self._credentials = credentials
        self._base_url = protocol.validate_endpoint(endpoint)
        self._retry = retry or RetryPolicy()
        self._timeout = _client_timeout(timeout)
        self._connection_limit = check_int(connection_limit, "connection_limit", minimum=1)
        self._max_response_bytes = check_int(max_response_bytes, "max_response_bytes", minimum=1)
        self._transport = transport
        self._hooks = check_hooks(on_attempt)
        self._state = _Lifecycle.NEW
        self._streams: weakref.WeakSet[PageStream[Any, Any] | FanOut[Any, Any]] = weakref.WeakSet()
        self.rate_limiter = (
            RateLimiter(requests_per_second) if requests_per_second is not None else None
        )
        self.retry_budget = (
            RetryBudget(self._retry.budget) if self._retry.budget is not None else None
        )

    @property
    def endpoint(self) -> str:
        """The API's base URL."""
        return str(self._base_url)

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy in force."""
        return self._retry

    def __repr__(self) -> str:
        return (
            f"<BackupsClient {self.endpoint} {self._state}, "
            f"credentials={type(self._credentials).__name__}>"
        )

    async def __aenter__(self) -> Self:
        if self._state is not _Lifecycle.NEW:
            raise RuntimeError(
                f"this BackupsClient is {self._state}; a client is entered once, "
                "so create a new one"
            )
        if self._transport is None:
            self._transport = AiohttpTransport(
                timeout=self._timeout, connection_limit=self._connection_limit
            )
        self._state = _Lifecycle.OPEN
        return self

    async def aclose(self) -> None:
        """Close every stream still open, then the transport."""
        if self._state is _Lifecycle.CLOSED:
            return
        was_open = self._state is _Lifecycle.OPEN
        self._state = _Lifecycle.CLOSED
        for stream in list(self._streams):
            await stream.aclose()
        if was_open and self._transport is not None:
            await self._transport.aclose()

    # The calls: each is an endpoint declared in `protocol`.

    async def get_backups_page(
        self, cluster_id: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> BackupsPage:
        """One page of the cluster's backups (`Cluster.listBackups`).

        `page_size` is 1..1000 (None: the server's default, 100); `page_token` is a
        previous page's `next_page_token` (None: the first page).

        Raises `ValueError` (or `TypeError`) for a bad argument, before any request,
        and an `ApiError` subclass when the service gives no good answer.
        """
        return await self._get(
            protocol.LIST_BACKUPS, cluster_id, page_size=page_size, page_token=page_token
        )

    def list_backups(
        self,
        cluster_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        max_items: int | None = None,
        max_pages: int | None = None,
        resume: ResumePoint | str | None = None,
    ) -> PageStream[BackupsPage, Backup]:
        """Stream the cluster's backups, fetching each next page ahead.

        Arguments are checked now, before any request; `max_items` stops after that
        many backups, asking only for as many as it still needs. A listing that has
        not ended after `max_pages` pages raises `ResponseFormatError`. `resume` (a
        stream's `resume_point`, or its text) carries on exactly where one stopped.

        Raises `ValueError` (or `TypeError`) for a bad argument now; iterating raises an
        `ApiError` subclass when a page cannot be had.
        """
        return self._list(
            protocol.LIST_BACKUPS,
            cluster_id,
            page_size=page_size,
            page_token=page_token,
            max_items=max_items,
            max_pages=max_pages,
            resume=resume,
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
        return await self._get(
            protocol.LIST_CLUSTERS,
            folder_id,
            page_size=page_size,
            page_token=page_token,
            filter=filter,
        )

    def list_clusters(
        self,
        folder_id: str,
        *,
        filter: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        max_items: int | None = None,
        max_pages: int | None = None,
        resume: ResumePoint | str | None = None,
    ) -> PageStream[ClustersPage, Cluster]:
        """Stream the folder's clusters, fetching each next page ahead.

        Raises `ValueError` (or `TypeError`) for a bad argument now; iterating raises an
        `ApiError` subclass when a page cannot be had.
        """
        return self._list(
            protocol.LIST_CLUSTERS,
            folder_id,
            page_size=page_size,
            page_token=page_token,
            max_items=max_items,
            max_pages=max_pages,
            resume=resume,
            filter=filter,
        )

    async def get_cluster(self, cluster_id: str) -> Cluster:
        """One cluster by its id (`Cluster.get`).

        Raises `ValueError` (or `TypeError`) for a bad argument, before any request,
        and an `ApiError` subclass when the service gives no good answer.
        """
        return await self._get(protocol.GET_CLUSTER, cluster_id)

    async def get_folder_backups_page(
        self, folder_id: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> BackupsPage:
        """One page of every backup in the folder (`Backup.list`).

        Raises `ValueError` (or `TypeError`) for a bad argument, before any request,
        and an `ApiError` subclass when the service gives no good answer.
        """
        return await self._get(
            protocol.LIST_FOLDER_BACKUPS, folder_id, page_size=page_size, page_token=page_token
        )

    def list_folder_backups(
        self,
        folder_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        max_items: int | None = None,
        max_pages: int | None = None,
        resume: ResumePoint | str | None = None,
    ) -> PageStream[BackupsPage, Backup]:
        """Stream every backup in the folder (`Backup.list`), fetching each next page ahead.

        Raises `ValueError` (or `TypeError`) for a bad argument now; iterating raises an
        `ApiError` subclass when a page cannot be had.
        """
        return self._list(
            protocol.LIST_FOLDER_BACKUPS,
            folder_id,
            page_size=page_size,
            page_token=page_token,
            max_items=max_items,
            max_pages=max_pages,
            resume=resume,
        )

    async def get_backup(self, backup_id: str) -> Backup:
        """One backup by its id, `<clusterId>:<name>` (`Backup.get`).

        Raises `ValueError` (or `TypeError`) for a bad argument, before any request,
        and an `ApiError` subclass when the service gives no good answer.
        """
        return await self._get(protocol.GET_BACKUP, backup_id)

    def list_backups_many(
        self,
        cluster_ids: Iterable[str],
        *,
        concurrency: int = 16,
        page_size: int | None = None,
        fail_fast: bool = False,
        max_pages: int | None = None,
    ) -> FanOut[str, ClusterBackups]:
        """List many clusters' backups at once: `ClusterBackups` in completion order.

        At most `concurrency` requests are in flight, across all clusters and pages.
        Duplicated ids are listed once; every id is checked now, before any request.
        A cluster's error is captured in its result unless `fail_fast`. A cluster whose
        listing has not ended after `max_pages` pages fails with `ResponseFormatError`.

        Raises `ValueError` (or `TypeError`) for a bad argument now; a cluster's `ApiError`
        is its result's `error`, or, with `fail_fast`, raised by the iteration.
        """
        ids = list(dict.fromkeys(check_iterable(cluster_ids, "cluster_ids")))
        for cluster_id in ids:
            protocol.validate_id(cluster_id)
        check_int(concurrency, "concurrency", minimum=1)
        protocol.validate_page_size(page_size)
        protocol.validate_max_pages(max_pages)
        self._require_open()

        async def list_cluster(cluster_id: str) -> ClusterBackups:
            backups: list[Backup] = []
            stream = self._list(
                protocol.LIST_BACKUPS,
                cluster_id,
                page_size=page_size,
                max_pages=max_pages,
                prefetch=False,
                owned=False,  # the fan-out closes it; closing it apart would cut it short
            )
            async with stream.pages() as pages:
                async for page in pages:
                    backups.extend(page.backups)
            return ClusterBackups(cluster_id, tuple(backups))

        fanout = FanOut(
            list_cluster,
            ids,
            on_error=lambda cluster_id, error: ClusterBackups(cluster_id, error=error),
            concurrency=concurrency,
            fail_fast=fail_fast,
        )
        self._streams.add(fanout)
        return fanout

    async def inventory(
        self,
        *,
        folder_ids: Iterable[str] = (),
        cluster_ids: Iterable[str] = (),
        concurrency: int = 16,
        page_size: int | None = None,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        now: datetime | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        max_pages: int | None = None,
    ) -> list[ClusterInventory]:
        """Summarize the backups of every cluster in the folders and of the clusters named.

        Clusters are discovered with `Cluster.list`, then listed with the bounded
        fan-out. A cluster with no completed backup younger than `stale_after` is
        stale. One line per cluster, folders' clusters first, in the order found;
        a cluster's error is in its line, while a folder that cannot be listed raises.
        `on_progress(done, total)` is called as clusters complete. `max_pages` bounds
        each listing, as in `list_backups_many`.

        Returns the lines; raises `ValueError` (or `TypeError`) for a bad argument, and
        the `ApiError` of a folder that cannot be listed.
        """
        folder_ids = check_iterable(folder_ids, "folder_ids")
        cluster_ids = check_iterable(cluster_ids, "cluster_ids")
        if not folder_ids and not cluster_ids:
            raise ValueError("inventory needs folder_ids, cluster_ids, or both")
        for folder_id in folder_ids:
            protocol.validate_id(folder_id, name="folder_id")
        for cluster_id in cluster_ids:
            protocol.validate_id(cluster_id)
        if not isinstance(stale_after, timedelta):
            raise TypeError(f"stale_after must be a timedelta, not {type(stale_after).__name__}")
        if stale_after <= timedelta(0):
            raise ValueError(f"stale_after must be a positive timedelta, got {stale_after!r}")
        check_int(concurrency, "concurrency", minimum=1)
        now = now or datetime.now(UTC)
        known: dict[str, Cluster | None] = {}
        for folder_id in folder_ids:
            async with self.list_clusters(
                folder_id, page_size=page_size, max_pages=max_pages
            ) as clusters:
                async for cluster in clusters:
                    known.setdefault(cluster.id, cluster)
        for cluster_id in cluster_ids:
            known.setdefault(cluster_id, None)
        lines: dict[str, ClusterInventory] = {}
        for cluster_id, found in known.items():
            error = _invalid_listed_id(cluster_id)
            if error is not None:  # from Cluster.list: that cluster's line, not the end
                lines[cluster_id] = summarize(
                    ClusterBackups(cluster_id, error=error), found, now=now
                )
        async with self.list_backups_many(
            [cluster_id for cluster_id in known if cluster_id not in lines],
            concurrency=concurrency,
            page_size=page_size,
            max_pages=max_pages,
        ) as results:
            async for result in results:
                lines[result.cluster_id] = summarize(
                    result, known[result.cluster_id], now=now, stale_after=stale_after
                )
                if on_progress is not None:
                    on_progress(len(lines), len(known))
        return [lines[cluster_id] for cluster_id in known]

    # The request path

    def _list(
        self,
        endpoint: Endpoint[P],
        resource_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        max_items: int | None = None,
        max_pages: int | None = None,
        resume: ResumePoint | str | None = None,
        prefetch: bool = True,
        owned: bool = True,
        **arguments: Any,
    ) -> PageStream[P, Any]:
        """A stream over a list call; its arguments are checked now. An `owned` stream is
        the caller's, and closing the client closes it."""
        skip = 0
        if resume is not None:
            if page_token is not None:
                raise ValueError("pass page_token or resume, not both")
            if isinstance(resume, str):
                resume = ResumePoint.parse(resume)
            if not isinstance(resume, ResumePoint):
                raise TypeError(
                    f"resume must be a ResumePoint or str, not {type(resume).__name__}"
                )
            page_token, skip = resume.page_token, resume.skip
            if not 0 <= skip < MAX_PAGE_SIZE:
                raise ValueError(f"a resume point skips 0 to 999 items, not {skip}")
        endpoint.build(resource_id, page_size=page_size, page_token=page_token, **arguments)
        protocol.validate_max_items(max_items)
        protocol.validate_max_pages(max_pages)
        self._require_open()

        async def fetch(token: str | None, size: int | None) -> P:
            return await self._get(
                endpoint, resource_id, page_size=size, page_token=token, **arguments
            )

        stream: PageStream[P, Any] = PageStream(
            fetch,
            page_size=page_size,
            page_token=protocol.validate_page_token(page_token),
            skip=skip,
            max_items=max_items,
            max_pages=max_pages,
            prefetch=prefetch,
            default_page_size=protocol.SERVER_DEFAULT_PAGE_SIZE,
            name=f"{endpoint.name}({resource_id})",
        )
        if owned:
            self._streams.add(stream)
        return stream

    async def _get(self, endpoint: Endpoint[_T], *arguments: Any, **keywords: Any) -> _T:
        """One call: its request built (and so checked), then sent with auth and retries."""
        request = endpoint.build(*arguments, **keywords)
        transport = self._require_open()
        retrying = Retrying(self._retry, self.retry_budget)
        parse = endpoint.parser(keywords.get("page_size"))
        outcome = _Outcome()

        async def attempt() -> _T:
            return await self._attempt(transport, request, parse, token, retrying, outcome)

        def report(number: int, error: ApiError | None, wait: float | None) -> None:
            emit(
                self._hooks,
                Attempt(
                    endpoint.name,
                    "GET",
                    request.path,
                    number,
                    outcome.status,
                    outcome.duration,
                    wait,
                    outcome.client_request_id,
                    outcome.request_id,
                    error,
                ),
            )

        reporting = report if self._hooks else None
        with call_span(endpoint.name):
            token = await self._token(transport, retrying)
            try:
                return await retrying.run(attempt, report=reporting)
            except UnauthenticatedError:
                if not self._credentials.invalidate(token):
                    raise
            token = await self._token(transport, retrying)  # a fresh one, sent once more
            return await retrying.run(attempt, report=reporting)

    async def _token(self, transport: Transport, retrying: Retrying) -> str:
        """A token for this call, within its deadline; `AuthError` if none can be had."""
        credentials = self._credentials
        if isinstance(credentials, IamToken):
            return await credentials.token()  # checked when made; nothing to wait for
        if isinstance(credentials, ExchangedCredentials):
            return await credentials.token_via(Exchange(transport, retrying))
        try:
            async with asyncio.timeout_at(retrying.deadline):
                token = await credentials.token()
        except TimeoutError:
            failure = AuthError(
                f"{type(credentials).__name__}.token() gave no token within the call's max_time",
                retryable=False,
            )
        else:
            try:
                return check_token(token, name="the token from credentials")
            except (TypeError, ValueError) as error:
                failure = AuthError(str(error), retryable=False)
        raise failure

    async def _attempt(
        self,
        transport: Transport,
        request: protocol.Request,
        parse: Callable[[bytes], _T],
        token: str,
        retrying: Retrying,
        outcome: _Outcome,
    ) -> _T:
        """One request: a 2xx answer's body parsed, or the `ApiError` for anything else."""
        if self.rate_limiter is not None:
            await self.rate_limiter.acquire()
        client_request_id = str(uuid.uuid4())
        url = request.url(self._base_url)
        outcome.begin(client_request_id)
        with attempt_span(
            "GET", url, self._base_url.host or "", self._base_url.port, retrying.attempts
        ) as span:
            try:
                response = await transport.send(
                    HttpRequest("GET", url, protocol.request_headers(token, client_request_id)),
                    max_bytes=self._max_response_bytes,
                    deadline=retrying.deadline,
                )
                outcome.answered(response.status, response.headers.get("x-request-id"))
                result = protocol.read_response(
                    response.status,
                    response.headers,
                    response.body,
                    parse,
                    client_request_id=client_request_id,
                )
            except ApiError as error:
                redact_error(error, (token,))  # a server or proxy may echo the request
                outcome.failed(error)
                end_attempt_span(span, outcome.status, error)
                raise
            outcome.ended()
            end_attempt_span(span, outcome.status, None)
            return result

    def _require_open(self) -> Transport:
        if self._state is _Lifecycle.OPEN and self._transport is not None:
            return self._transport
        if self._state is _Lifecycle.CLOSED:
            raise RuntimeError("this BackupsClient is closed")
        raise RuntimeError(
            "this BackupsClient is not open: use it as 'async with BackupsClient(...) as client:'"
        )


@attrs.define
class _Outcome:
    """How the latest attempt of a call went, for the `on_attempt` hooks."""

    started: float = 0.0
    duration: float = 0.0
    status: int | None = None
    client_request_id: str | None = None
    request_id: str | None = None

    def begin(self, client_request_id: str) -> None:
        self.started = time.perf_counter()
        self.status = self.request_id = None
        self.client_request_id = client_request_id

    def answered(self, status: int, request_id: str | None) -> None:
        self.status, self.request_id = status, request_id

    def failed(self, error: ApiError) -> None:
        self.status = error.http_status
        self.request_id = error.request_id
        self.ended()

    def ended(self) -> None:
        self.duration = time.perf_counter() - self.started


def _invalid_listed_id(cluster_id: str) -> ResponseFormatError | None:
    """The error for a cluster id from `Cluster.list` that cannot be sent back in a path."""
    try:
        protocol.validate_id(cluster_id)
    except ValueError as error:
        return ResponseFormatError(f"Cluster.list gave an unusable cluster id: {error}")
    return None


def _client_timeout(timeout: float | aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    if isinstance(timeout, aiohttp.ClientTimeout):
        return timeout
    seconds = check_positive(timeout, "timeout")
    return aiohttp.ClientTimeout(total=seconds, sock_connect=min(10.0, seconds))

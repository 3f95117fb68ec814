"""`BackupsClient`: one aiohttp session, requests with retries, streams over pages."""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp

from . import protocol, wire
from .auth import Credentials, credentials_from_env
from .errors import NetworkError, ResponseFormatError, UnauthenticatedError
from .fanout import FanOut
from .inventory import DEFAULT_STALE_AFTER, summarize
from .limits import RateLimiter, RetryBudget
from .models import Backup, BackupsPage, Cluster, ClusterInventory, ClustersPage
from .paging import PageStream
from .retry import RetryPolicy, with_retries

try:
    _VERSION = version("pg-backups-async")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    _VERSION = "0"

_T = TypeVar("_T")

USER_AGENT = f"pg-backups-async/{_VERSION} aiohttp/{aiohttp.__version__}"

# Failures where a new attempt meets the same wall: TLS trust and malformed URLs.
_PERMANENT_CLIENT_ERRORS = (
    aiohttp.ClientSSLError,
    aiohttp.ServerFingerprintMismatch,
    aiohttp.InvalidURL,
)


class BackupsClient:
    """A session with the Managed PostgreSQL API; use it as `async with BackupsClient(...)`.

    `credentials` gives the IAM token for each request (default: `credentials_from_env()`);
    `endpoint` is the API's base URL (`http://` only for loopback hosts, such as the
    emulator); `retry` says how failed requests are repeated; `timeout` bounds each
    attempt as a whole, in seconds (connecting within at most 10 of them), or is an
    `aiohttp.ClientTimeout`; `connection_limit` caps the pool of connections, and so a
    fan-out; `requests_per_second` spaces every request, retries included; an answer
    over `max_response_bytes` (counted after decompression) is refused.
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
        if isinstance(connection_limit, bool) or not isinstance(connection_limit, int):
            raise TypeError("connection_limit must be an int")
        if connection_limit < 1:
            raise ValueError(f"connection_limit must be at least 1, got {connection_limit}")
        self._credentials = credentials
        self._base_url = protocol.validate_endpoint(endpoint)
        self._retry = retry or RetryPolicy()
        self._timeout = _client_timeout(timeout)
        self._connection_limit = connection_limit
        self._session: aiohttp.ClientSession | None = None
        self._state = "new"
        self._streams: weakref.WeakSet[PageStream[Any, Any] | FanOut] = weakref.WeakSet()
        if isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int):
            raise TypeError("max_response_bytes must be an int")
        if max_response_bytes < 1:
            raise ValueError(f"max_response_bytes must be positive, got {max_response_bytes}")
        self._max_response_bytes = max_response_bytes
        self.rate_limiter = (
            RateLimiter(requests_per_second) if requests_per_second is not None else None
        )
        self.retry_budget = (
            RetryBudget(self._retry.budget) if self._retry.budget is not None else None
        )
        self._send_with_retries = with_retries(self._retry, self._attempt, self.retry_budget)

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
        if self._state != "new":
            raise RuntimeError(
                f"this BackupsClient is {self._state}; a client is entered once, "
                "so create a new one"
            )
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._connection_limit),
            timeout=self._timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            raise_for_status=False,
        )
        self._state = "open"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every stream still open, then the HTTP session."""
        if self._state == "closed":
            return
        self._state = "closed"
        for stream in list(self._streams):
            await stream.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get_backups_page(
        self, cluster_id: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> BackupsPage:
        """One page of the cluster's backups (`Cluster.listBackups`).

        `page_size` is 1..1000 (None: the server's default, 100); `page_token` is a
        previous page's `next_page_token` (None: the first page).
        """
        request = protocol.list_backups_request(cluster_id, page_size, page_token)
        self._require_open()
        return await self._send(request, wire.parse_backups_page)

    def list_backups(
        self,
        cluster_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        max_items: int | None = None,
    ) -> PageStream[BackupsPage, Backup]:
        """Stream the cluster's backups, fetching each next page ahead.

        Arguments are checked now, before any request; `max_items` stops after that
        many backups, asking only for as many as it still needs.
        """
        protocol.list_backups_request(cluster_id, page_size, page_token)

        async def fetch(token: str | None, size: int | None) -> BackupsPage:
            return await self.get_backups_page(cluster_id, page_size=size, page_token=token)

        return self._stream(fetch, f"listBackups({cluster_id})", page_size, page_token, max_items)

    async def get_clusters_page(
        self,
        folder_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        filter: str | None = None,
    ) -> ClustersPage:
        """One page of the folder's clusters (`Cluster.list`); `filter` as `name="..."`."""
        request = protocol.list_clusters_request(folder_id, page_size, page_token, filter)
        self._require_open()
        return await self._send(request, wire.parse_clusters_page)

    def list_clusters(
        self,
        folder_id: str,
        *,
        filter: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        max_items: int | None = None,
    ) -> PageStream[ClustersPage, Cluster]:
        """Stream the folder's clusters, fetching each next page ahead."""
        protocol.list_clusters_request(folder_id, page_size, page_token, filter)

        async def fetch(token: str | None, size: int | None) -> ClustersPage:
            return await self.get_clusters_page(
                folder_id, page_size=size, page_token=token, filter=filter
            )

        return self._stream(fetch, f"Cluster.list({folder_id})", page_size, page_token, max_items)

    async def get_folder_backups_page(
        self, folder_id: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> BackupsPage:
        """One page of every backup in the folder (`Backup.list`)."""
        request = protocol.list_folder_backups_request(folder_id, page_size, page_token)
        self._require_open()
        return await self._send(request, wire.parse_backups_page)

    def list_folder_backups(
        self,
        folder_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        max_items: int | None = None,
    ) -> PageStream[BackupsPage, Backup]:
        """Stream every backup in the folder (`Backup.list`), fetching each next page ahead."""
        protocol.list_folder_backups_request(folder_id, page_size, page_token)

        async def fetch(token: str | None, size: int | None) -> BackupsPage:
            return await self.get_folder_backups_page(folder_id, page_size=size, page_token=token)

        return self._stream(fetch, f"Backup.list({folder_id})", page_size, page_token, max_items)

    async def get_backup(self, backup_id: str) -> Backup:
        """One backup by its id, `<clusterId>:<name>` (`Backup.get`)."""
        request = protocol.get_backup_request(backup_id)
        self._require_open()
        return await self._send(request, wire.parse_backup)

    def list_backups_many(
        self,
        cluster_ids: Iterable[str],
        *,
        concurrency: int = 16,
        page_size: int | None = None,
        fail_fast: bool = False,
    ) -> FanOut:
        """List many clusters' backups at once: `ClusterBackups` in completion order.

        At most `concurrency` requests are in flight, across all clusters and pages.
        Duplicated ids are listed once; every id is checked now, before any request.
        A cluster's error is captured in its result unless `fail_fast`.
        """
        if isinstance(cluster_ids, str):
            raise TypeError("cluster_ids must be an iterable of ids, not one str")
        ids = list(dict.fromkeys(cluster_ids))
        for cluster_id in ids:
            protocol.validate_id(cluster_id)
        _check_concurrency(concurrency)
        protocol.validate_page_size(page_size)
        self._require_open()

        async def list_cluster(cluster_id: str) -> tuple[Backup, ...]:
            async def fetch(token: str | None, size: int | None) -> BackupsPage:
                return await self.get_backups_page(cluster_id, page_size=size, page_token=token)

            stream: PageStream[BackupsPage, Backup] = PageStream(
                fetch, page_size=page_size, prefetch=False, name=f"listBackups({cluster_id})"
            )
            backups: list[Backup] = []
            async with stream.pages() as pages:
                async for page in pages:
                    backups.extend(page.backups)
            return tuple(backups)

        fanout = FanOut(list_cluster, ids, concurrency=concurrency, fail_fast=fail_fast)
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
    ) -> list[ClusterInventory]:
        """Summarize the backups of every cluster in the folders and of the clusters named.

        Clusters are discovered with `Cluster.list`, then listed with the bounded
        fan-out. A cluster with no completed backup younger than `stale_after` is
        stale. One line per cluster, folders' clusters first, in the order found;
        a cluster's error is in its line, while a folder that cannot be listed raises.
        `on_progress(done, total)` is called as clusters complete.
        """
        folder_ids = [folder_ids] if isinstance(folder_ids, str) else list(folder_ids)
        cluster_ids = [cluster_ids] if isinstance(cluster_ids, str) else list(cluster_ids)
        if not folder_ids and not cluster_ids:
            raise ValueError("inventory needs folder_ids, cluster_ids, or both")
        for folder_id in folder_ids:
            protocol.validate_id(folder_id, name="folder_id")
        for cluster_id in cluster_ids:
            protocol.validate_id(cluster_id)
        if not isinstance(stale_after, timedelta) or stale_after <= timedelta(0):
            raise ValueError(f"stale_after must be a positive timedelta, got {stale_after!r}")
        _check_concurrency(concurrency)
        now = now or datetime.now(UTC)
        known: dict[str, Cluster | None] = {}
        for folder_id in folder_ids:
            async with self.list_clusters(folder_id, page_size=page_size) as clusters:
                async for cluster in clusters:
                    known.setdefault(cluster.id, cluster)
        for cluster_id in cluster_ids:
            known.setdefault(cluster_id, None)
        lines: dict[str, ClusterInventory] = {}
        async with self.list_backups_many(
            known, concurrency=concurrency, page_size=page_size
        ) as results:
            async for result in results:
                lines[result.cluster_id] = summarize(
                    result, known[result.cluster_id], now=now, stale_after=stale_after
                )
                if on_progress is not None:
                    on_progress(len(lines), results.total)
        return [lines[cluster_id] for cluster_id in known]

    def _stream(
        self,
        fetch: Callable[[str | None, int | None], Awaitable[Any]],
        name: str,
        page_size: int | None,
        page_token: str | None,
        max_items: int | None,
    ) -> PageStream[Any, Any]:
        protocol.validate_max_items(max_items)
        self._require_open()
        stream: PageStream[Any, Any] = PageStream(
            fetch,
            page_size=page_size,
            page_token=protocol.validate_page_token(page_token),
            max_items=max_items,
            name=name,
        )
        self._streams.add(stream)
        return stream

    async def _send(self, request: protocol.Request, parse: Callable[[bytes], _T]) -> _T:
        """The request with retries; after a 401, once more if a fresh token can be had."""
        try:
            return await self._send_with_retries(request, parse)
        except UnauthenticatedError as error:
            if not error._token_refreshable:
                raise
            return await self._send_with_retries(request, parse)

    def _require_open(self) -> aiohttp.ClientSession:
        if self._session is None:
            if self._state == "closed":
                raise RuntimeError("this BackupsClient is closed")
            raise RuntimeError(
                "this BackupsClient is not open: use it as "
                "'async with BackupsClient(...) as client:'"
            )
        return self._session

    async def _attempt(self, request: protocol.Request, parse: Callable[[bytes], _T]) -> _T:
        """One GET: a 2xx answer's body parsed, or the `ApiError` for anything else."""
        session = self._require_open()
        if self.rate_limiter is not None:
            await self.rate_limiter.acquire()
        token = await self._credentials.token()
        client_request_id = str(uuid.uuid4())
        url = self._base_url.with_path(request.path, encoded=True).with_query(request.query)
        headers = {"Authorization": f"Bearer {token}", "x-client-request-id": client_request_id}
        try:
            async with session.get(url, headers=headers, allow_redirects=False) as response:
                status, response_headers = response.status, response.headers
                body = await self._read(response, client_request_id)
        except aiohttp.ClientResponseError as exc:
            # Its repr carries the request's headers, token included: never chain it.
            raise NetworkError(
                f"{type(exc).__name__}: {exc.message}", client_request_id=client_request_id
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NetworkError(
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                client_request_id=client_request_id,
                retryable=not isinstance(exc, _PERMANENT_CLIENT_ERRORS),
            ) from exc
        if 200 <= status < 300:
            try:
                return parse(body)
            except ResponseFormatError as exc:
                exc.http_status = status
                exc.request_id = response_headers.get("x-request-id")
                exc.client_request_id = client_request_id
                raise
        error = protocol.error_from_response(
            status, body, response_headers, client_request_id=client_request_id
        )
        if isinstance(error, UnauthenticatedError):
            error._token_refreshable = self._credentials.invalidate(token)
        raise error

    async def _read(self, response: aiohttp.ClientResponse, client_request_id: str) -> bytes:
        """The body, or `ResponseFormatError` once it passes `max_response_bytes`."""
        cap = self._max_response_bytes
        length = response.content_length
        if length is not None and "Content-Encoding" not in response.headers:
            if length <= cap:
                return await response.read()
        else:
            chunks, total = [], 0
            async for chunk in response.content.iter_chunked(1 << 16):
                total += len(chunk)
                if total > cap:
                    break
                chunks.append(chunk)
            else:
                return b"".join(chunks)
        raise ResponseFormatError(
            f"the answer is over the {cap:,}-byte cap on responses (max_response_bytes)",
            http_status=response.status,
            request_id=response.headers.get("x-request-id"),
            client_request_id=client_request_id,
        )


def _check_concurrency(concurrency: int) -> None:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise TypeError(f"concurrency must be an int, not {type(concurrency).__name__}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")


def _client_timeout(timeout: float | aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    if isinstance(timeout, aiohttp.ClientTimeout):
        return timeout
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return aiohttp.ClientTimeout(total=timeout, sock_connect=min(10.0, float(timeout)))

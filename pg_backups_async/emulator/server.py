"""An aiohttp.web server that speaks the Managed PostgreSQL API, with knobs for tests."""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import secrets
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Self

import attrs
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from .. import wire
from ..aio import AsyncClosing, serve
from ..auth import IAM_TOKENS_PATH, JWT_AUDIENCE, JWT_LIFETIME, METADATA_TOKEN_PATH
from ..errors import GRPC_CODE_NAMES
from ..models import Backup, Cluster
from ..protocol import API_PREFIX, MAX_FILTER_LENGTH, MAX_ID_LENGTH, SERVER_DEFAULT_PAGE_SIZE
from ..wire import MAX_PAGE_SIZE
from .encoding import dumps, format_timestamp, to_wire
from .seed import DEFAULT_FOLDER_ID, synthetic_clusters, this_hour

_GRPC_CODE_FOR_STATUS = {
    400: 3,
    401: 16,
    403: 7,
    404: 5,
    409: 10,
    429: 8,
    499: 1,
    500: 13,
    501: 12,
    503: 14,
    504: 4,
}
# What a proxy in front of the service sends: not a google.rpc.Status.
_PROXY_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"
)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.define
class Fault:
    """A scripted answer that replaces the real one, `times` times.

    `status` with a `google.rpc.Status` body (or `body` as given), `retry_after` as the
    header's text, extra `headers`; or `drop` to close the connection without answering;
    or `status=None` for the real answer, whole, or cut off half way through its body
    (`truncate`), or stalled there until the client gives up (`stall`). `delay` seconds
    pass first. `cluster_id` limits it to that cluster's requests.
    """

    status: int | None = 503
    delay: float = 0.0
    truncate: bool = False
    stall: bool = False
    body: bytes | None = None
    retry_after: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    drop: bool = False
    cluster_id: str | None = None
    times: int = 1


@attrs.frozen
class RecordedRequest:
    """A request the emulator received, as it arrived."""

    method: str
    path: str
    """As it arrived, still percent-encoded."""
    query: Mapping[str, str]
    headers: Mapping[str, str]
    peer: tuple[str, int] | None
    """The client's address and port: one per connection."""
    fault: str | None = None
    """The kind of fault it met, if any."""


class ApiFailure(Exception):
    """An answer in the service's error format."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Emulator(AsyncClosing):
    """The Managed PostgreSQL API on loopback, seeded with deterministic synthetic data.

    `clusters` clusters in `folder_id` (backup counts cycle 250, 40, 7, 0 unless
    `backups_per_cluster` is given; every sixth cluster's backups stopped three days
    ago), reproducible from `seed` and `anchor` (an hour after the newest backups
    started; default this hour). `latency` delays every answer, in seconds; `tokens`,
    when given, are the only IAM tokens accepted (tokens it issues itself are added).
    `listing_size` makes every cluster's listing repeat its backups to that many, so a
    benchmark can stream millions without the emulator holding them. `complete` gives
    every completed backup all 13 fields, and every other one timestamps with nine
    fraction digits, as the heaviest answers of the service are. `fault_rate` makes
    that share of API requests fail at random (seeded by `fault_seed`) in every way
    `CHAOS` lists; `faults_served` counts them.

    It also plays the IAM token exchange (`POST /iam/v1/tokens`: a JWT signed by a key
    given to `add_service_account_key`, verified in full, or an OAuth token in
    `oauth_tokens`) and the VM metadata service, issuing tokens that live
    `token_lifetime` seconds. `/_emulator/stats` reports what it served, for
    benchmarks that run it in another process.

    Use `async with Emulator() as emulator:` and point a client at `emulator.url`, or
    mount `emulator.app()` in a test server.
    """

    def __init__(
        self,
        *,
        clusters: int = 4,
        seed: int = 0,
        folder_id: str = DEFAULT_FOLDER_ID,
        backups_per_cluster: int | None = None,
        anchor: datetime | None = None,
        latency: float = 0.0,
        tokens: Iterable[str] | None = None,
        listing_size: int | None = None,
        fault_rate: float = 0.0,
        fault_seed: int = 0,
        complete: bool = False,
    ) -> None:
        self.latency = latency
        self.listing_size = listing_size
        self.fault_rate = fault_rate
        self._chaos = random.Random(fault_seed)
        self.faults_served: Counter[str] = Counter()
        self._stalls = asyncio.Event()  # set on stop: stalled answers then end
        """How many of each fault it served, scripted or random, by kind."""
        self.tokens: set[str] | None = set(tokens) if tokens is not None else None
        self.clusters: dict[str, Cluster] = {}
        self._backups: dict[str, list[dict[str, Any]]] = {}
        self._backups_by_id: dict[str, dict[str, Any]] = {}
        self._by_folder: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: deque[Fault] = deque()
        self._arrivals = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.token_lifetime = 12 * 3600.0
        self.clock: Callable[[], float] = time.time
        """Seconds since the epoch, for issuing tokens and checking JWT times."""
        self.oauth_tokens: set[str] = set()
        self.issued_tokens: list[str] = []
        self.exchanges: list[str] = []
        """How each issued token was had: "jwt", "oauth" or "metadata"."""
        self._service_account_keys: dict[str, tuple[str, rsa.RSAPublicKey]] = {}
        for cluster, backups in synthetic_clusters(
            clusters,
            seed=seed,
            folder_id=folder_id,
            anchor=anchor or this_hour(),
            backups_per_cluster=backups_per_cluster,
        ):
            self.add_cluster(cluster, complete_backups(backups) if complete else backups)

    # State and knobs

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
        """Delete a cluster and its backups, as if it had been deleted mid-inventory."""
        del self.clusters[cluster_id]
        for backup in self._backups.pop(cluster_id):
            self._backups_by_id.pop(backup.get("id", ""), None)
        self._by_folder.clear()

    @property
    def cluster_ids(self) -> list[str]:
        """The clusters' ids, in the order they were added."""
        return list(self.clusters)

    def backups(self, cluster_id: str) -> list[Backup]:
        """The cluster's backups as the client should see them."""
        return [wire.structure(b, Backup) for b in self._backups[cluster_id]]

    def backup_count(self, cluster_id: str) -> int:
        """How many backups the cluster has."""
        return len(self._backups[cluster_id])

    def add_service_account_key(
        self, key_id: str, service_account_id: str, public_key: rsa.RSAPublicKey
    ) -> None:
        """Accept JWTs signed by this key's private half, for this service account."""
        self._service_account_keys[key_id] = (service_account_id, public_key)

    def revoke(self, token: str) -> None:
        """Refuse `token` from now on (as if it had expired); others stay accepted."""
        if self.tokens is None:
            self.tokens = set(self.issued_tokens)
        self.tokens.discard(token)

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each matching request takes the first one still in the queue."""
        self._faults.extend(faults)

    @property
    def pending_faults(self) -> int:
        """Faults queued and not yet served."""
        return sum(f.times for f in self._faults)

    async def wait_for_requests(self, count: int) -> None:
        """Return once at least `count` requests have arrived."""
        async with self._arrivals:
            await self._arrivals.wait_for(lambda: len(self.requests) >= count)

    # Serving

    def stats(self) -> dict[str, float]:
        """What it has served: requests, the most at once, connections (distinct peers),
        and the CPU seconds its process has used (for benchmarks that run it apart)."""
        return {
            "requests": len(self.requests),
            "maxInFlight": self.max_in_flight,
            "connections": len({r.peer for r in self.requests}),
            "cpuSeconds": time.process_time(),
        }

    def app(self) -> web.Application:
        """The aiohttp application serving the API."""
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get(f"{API_PREFIX}/clusters", self._list_clusters)
        app.router.add_get(f"{API_PREFIX}/clusters/{{cluster_id}}", self._get_cluster)
        app.router.add_get(f"{API_PREFIX}/clusters/{{cluster_id}}/backups", self._list_backups)
        app.router.add_get(f"{API_PREFIX}/backups", self._list_folder_backups)
        app.router.add_get(f"{API_PREFIX}/backups/{{backup_id}}", self._get_backup)
        app.router.add_get("/_emulator/stats", self._stats)
        app.router.add_post(IAM_TOKENS_PATH, self._exchange_token)
        app.router.add_get(METADATA_TOKEN_PATH, self._metadata_token)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on `host:port` (0: a free port); returns the base URL."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already serving")
        self._runner, self.url = await serve(self.app(), host, port, shutdown_timeout=0.25)
        return self.url

    async def stop(self) -> None:
        """Stop serving and close every connection."""
        runner, self._runner = self._runner, None
        self._stalls.set()
        if runner is not None:
            await runner.cleanup()

    aclose = stop

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    @web.middleware
    async def _middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path.startswith("/_emulator/"):
            return await handler(request)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(
            RecordedRequest(
                request.method,
                request.rel_url.raw_path,
                dict(request.query),
                dict(request.headers),
                tuple(peer[:2]) if peer else None,
            )
        )
        index = len(self.requests) - 1
        async with self._arrivals:
            self._arrivals.notify_all()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        request_id = str(uuid.uuid4())
        try:
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            fault = self._take_fault(request) or self._random_fault(request)
            if fault is not None:
                kind = _fault_kind(fault)
                self.faults_served[kind] += 1
                self.requests[index] = attrs.evolve(self.requests[index], fault=kind)
            if fault is not None and fault.delay > 0:
                await asyncio.sleep(fault.delay)
            if fault is not None and fault.drop:
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError
            if fault is not None and fault.status is not None:
                return self._serve_fault(fault, fault.status, request_id)
            try:
                if not request.path.startswith((IAM_TOKENS_PATH, "/computeMetadata/")):
                    self._authenticate(request)
                response = await handler(request)
            except ApiFailure as failure:
                response = _status_response(failure.status, failure.message, request_id)
            response.headers["x-request-id"] = request_id
            response.headers["x-server-trace-id"] = uuid.uuid4().hex
            if fault is not None and (fault.truncate or fault.stall):
                await _cut_off(request, response, until=self._stalls if fault.stall else None)
            return response
        finally:
            self.in_flight -= 1

    def _take_fault(self, request: web.Request) -> Fault | None:
        cluster_id = request.match_info.get("cluster_id")
        for fault in self._faults:
            if fault.cluster_id is None or fault.cluster_id == cluster_id:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _random_fault(self, request: web.Request) -> Fault | None:
        if self.fault_rate <= 0 or not request.path.startswith(API_PREFIX):
            return None
        if self._chaos.random() >= self.fault_rate:
            return None
        return self._chaos.choice(CHAOS)

    def _serve_fault(self, fault: Fault, status: int, request_id: str) -> web.Response:
        if fault.body is not None:
            response = web.Response(status=status, body=fault.body)
        elif status == 502:
            response = web.Response(status=502, body=_PROXY_PAGE, content_type="text/html")
        else:
            response = _status_response(status, _fault_message(status), request_id)
        response.headers.update(fault.headers)
        if fault.retry_after is not None:
            response.headers["Retry-After"] = fault.retry_after
        response.headers["x-request-id"] = request_id
        return response

    def _authenticate(self, request: web.Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            raise ApiFailure(401, "The token is missing or is not a Bearer token")
        if self.tokens is not None and token not in self.tokens:
            raise ApiFailure(401, "The token is invalid or has expired")

    # The API

    async def _list_backups(self, request: web.Request) -> web.Response:
        cluster_id = request.match_info["cluster_id"]
        if len(cluster_id) > MAX_ID_LENGTH:
            raise ApiFailure(400, f"clusterId: the length must be at most {MAX_ID_LENGTH}")
        page_size, offset = _paging(request)
        backups = self._backups.get(cluster_id)
        if backups is None:
            raise ApiFailure(404, f"Cluster {cluster_id} not found")
        if self.listing_size is not None and backups:
            end = min(offset + page_size, self.listing_size)
            window = [backups[i % len(backups)] for i in range(offset, end)]
            return _page("backups", window, 0, page_size, more=end < self.listing_size, end=end)
        return _page("backups", backups, offset, page_size)

    async def _get_cluster(self, request: web.Request) -> web.Response:
        cluster_id = request.match_info["cluster_id"]
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            raise ApiFailure(404, f"Cluster {cluster_id} not found")
        return web.Response(body=dumps(to_wire(cluster)), content_type="application/json")

    async def _list_clusters(self, request: web.Request) -> web.Response:
        folder_id = _folder_id(request)
        page_size, offset = _paging(request)
        clusters, _ = self._folder(folder_id)
        name = _name_filter(request.query.get("filter"))
        if name is not None:
            clusters = [c for c in clusters if c.get("name") == name]
        return _page("clusters", clusters, offset, page_size)

    async def _list_folder_backups(self, request: web.Request) -> web.Response:
        folder_id = _folder_id(request)
        page_size, offset = _paging(request)
        return _page("backups", self._folder(folder_id)[1], offset, page_size)

    async def _get_backup(self, request: web.Request) -> web.Response:
        backup_id = request.match_info["backup_id"]
        backup = self._backups_by_id.get(backup_id)
        if backup is None:
            raise ApiFailure(404, f"Backup {backup_id} not found")
        return web.Response(body=dumps(backup), content_type="application/json")

    async def _stats(self, request: web.Request) -> web.Response:
        return web.Response(body=dumps(self.stats()), content_type="application/json")

    async def _exchange_token(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            raise ApiFailure(400, "the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise ApiFailure(400, "the body must be a JSON object")
        if "jwt" in body:
            self._verify_jwt(body["jwt"])
            kind = "jwt"
        elif "yandexPassportOauthToken" in body:
            if body["yandexPassportOauthToken"] not in self.oauth_tokens:
                raise ApiFailure(401, "The OAuth token is invalid or has expired")
            kind = "oauth"
        else:
            raise ApiFailure(400, "one of jwt or yandexPassportOauthToken is required")
        token, expires = self._issue(kind)
        answer = {"iamToken": token, "expiresAt": format_timestamp(expires)}
        return web.Response(body=dumps(answer), content_type="application/json")

    async def _metadata_token(self, request: web.Request) -> web.Response:
        if request.headers.get("Metadata-Flavor") != "Google":
            return web.Response(status=403, text="Missing Metadata-Flavor:Google header.")
        token, _ = self._issue("metadata")
        answer = {
            "access_token": token,
            "expires_in": int(self.token_lifetime),
            "token_type": "Bearer",
        }
        return web.Response(body=dumps(answer), content_type="application/json")

    def _issue(self, kind: str) -> tuple[str, datetime]:
        token = f"t1.emulator.{secrets.token_urlsafe(24)}"
        self.issued_tokens.append(token)
        self.exchanges.append(kind)
        if self.tokens is not None:
            self.tokens.add(token)
        expires = datetime.fromtimestamp(self.clock() + self.token_lifetime).astimezone()
        return token, expires

    def _verify_jwt(self, token: object) -> None:
        """Check a JWT as the IAM service does: header, signature, claims, lifetime."""
        if not isinstance(token, str):
            raise ApiFailure(400, "jwt must be a string")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise ApiFailure(401, "The JWT is malformed") from None
        if header.get("alg") != "PS256":
            raise ApiFailure(401, "The JWT must be signed with PS256")
        known = self._service_account_keys.get(str(header.get("kid")))
        if known is None:
            raise ApiFailure(401, "The JWT's key id is unknown")
        service_account_id, public_key = known
        try:
            claims = jwt.decode(
                token,
                public_key,
                algorithms=["PS256"],
                audience=JWT_AUDIENCE,
                issuer=service_account_id,
                options={
                    "require": ["iss", "aud", "iat", "exp"],
                    "verify_exp": False,  # checked below, against self.clock
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise ApiFailure(401, f"The JWT is invalid: {exc}") from None
        now, leeway = self.clock(), 30
        if not isinstance(claims["iat"], int | float) or not isinstance(
            claims["exp"], int | float
        ):
            raise ApiFailure(401, "The JWT's iat and exp must be numbers")
        if claims["iat"] > now + leeway:
            raise ApiFailure(401, "The JWT was issued in the future")
        if claims["exp"] < now - leeway:
            raise ApiFailure(401, "The JWT has expired")
        if claims["exp"] - claims["iat"] > JWT_LIFETIME:
            raise ApiFailure(401, "The JWT may live at most one hour")

    def _folder(self, folder_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The folder's clusters and all their backups, encoded; cached until a change."""
        cached = self._by_folder.get(folder_id)
        if cached is None:
            clusters = [c for c in self.clusters.values() if c.folder_id == folder_id]
            backups = [b for c in clusters for b in self._backups[c.id]]
            cached = self._by_folder[folder_id] = ([to_wire(c) for c in clusters], backups)
        return cached


def complete_backups(backups: list[Backup]) -> list[dict[str, Any]]:
    """The backups encoded with every field present (retention on all completed ones),
    every other one with nanosecond timestamps."""
    encoded = []
    for index, backup in enumerate(backups):
        if backup.created_at is not None:
            backup = attrs.evolve(
                backup,
                retention_policy_id=backup.retention_policy_id or "c9qpolicy0000000000a",
                retention_policy_name=backup.retention_policy_name or "daily-keep-30",
                retain_until=backup.retain_until or backup.created_at + timedelta(days=30),
            )
        wire_backup = to_wire(backup)
        if index % 2:
            for key in ("createdAt", "startedAt", "retainUntil"):
                if key in wire_backup:
                    wire_backup[key] = _nanoseconds(wire_backup[key])
        encoded.append(wire_backup)
    return encoded


def _nanoseconds(text: str) -> str:
    """An RFC 3339 timestamp ending in `Z`, with nine fraction digits."""
    seconds, _, fraction = text[:-1].partition(".")
    return f"{seconds}.{fraction.ljust(6, '0')}123Z"


CHAOS: tuple[Fault, ...] = (
    Fault(status=503),
    Fault(status=502),
    Fault(status=504),
    Fault(status=500),
    Fault(status=429),
    Fault(status=429, retry_after="0"),
    Fault(status=429, retry_after="Thu, 01 Jan 1970 00:00:00 GMT"),
    Fault(status=429, retry_after="86400"),
    Fault(drop=True),
    Fault(status=None, truncate=True),
    Fault(status=None, stall=True),
    Fault(status=200, body=b"<html><body>Please wait while we check your browser</body></html>"),
    Fault(status=200, body=b'{"backups": [{"id": "c9q:x", "size": "1'),
)
"""The faults a random request may meet: every kind a cloud API and its proxies produce."""


def _fault_kind(fault: Fault) -> str:
    if fault.drop:
        return "reset before the answer"
    if fault.stall:
        return "stalled body"
    if fault.truncate:
        return "body cut off"
    if fault.status is None:
        return "delay"
    if fault.status == 200:
        return "200 that is not the JSON promised"
    if fault.retry_after is not None:
        return f"{fault.status} with Retry-After"
    return str(fault.status)


async def _cut_off(
    request: web.Request, response: web.StreamResponse, *, until: asyncio.Event | None
) -> None:
    """Send the answer's headers and half its body; then close the connection, at once
    or once `until` is set (the client gives up first)."""
    body = b""
    if isinstance(response, web.Response) and isinstance(response.body, bytes):
        body = response.body
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    if until is not None:
        await until.wait()
    if request.transport is not None:
        request.transport.close()
    raise asyncio.CancelledError


def _paging(request: web.Request) -> tuple[int, int]:
    return _page_size(request.query.get("pageSize")), _page_offset(request.query.get("pageToken"))


def _page(
    key: str,
    items: list[dict[str, Any]],
    offset: int,
    page_size: int,
    *,
    more: bool | None = None,
    end: int | None = None,
) -> web.Response:
    stop = offset + page_size
    body: dict[str, Any] = {}
    if items[offset:stop]:
        body[key] = items[offset:stop]
    if more if more is not None else stop < len(items):
        body["nextPageToken"] = _token_for(end if end is not None else stop)
    return web.Response(body=dumps(body), content_type="application/json")


def _folder_id(request: web.Request) -> str:
    folder_id = request.query.get("folderId", "")
    if not folder_id:
        raise ApiFailure(400, "folderId: a value is required")
    if len(folder_id) > MAX_ID_LENGTH:
        raise ApiFailure(400, f"folderId: the length must be at most {MAX_ID_LENGTH}")
    return folder_id


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


def _page_size(value: str | None) -> int:
    if value is None or value == "0":
        return SERVER_DEFAULT_PAGE_SIZE
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
    if len(token) > 100:
        raise ApiFailure(400, "pageToken: the length must be at most 100")
    try:
        text = base64.b64decode(token, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    if not text.isdigit():
        raise ApiFailure(400, "Invalid page token")
    return int(text)


def _fault_message(status: int) -> str:
    name = GRPC_CODE_NAMES.get(_GRPC_CODE_FOR_STATUS.get(status, 2), "UNKNOWN")
    return f"Scripted fault: {name}"


def _status_response(status: int, message: str, request_id: str) -> web.Response:
    body = {
        "code": _GRPC_CODE_FOR_STATUS.get(status, 2),
        "message": message,
        "details": [
            {"@type": "type.googleapis.com/google.rpc.RequestInfo", "requestId": request_id}
        ],
    }
    return web.Response(status=status, body=dumps(body), content_type="application/json")

"""The emulator: an aiohttp.web server that speaks the API, with knobs for tests.

It routes the table of calls (`calls.CALLS`) to `api.Api`, the token exchange and the
metadata service to `iam.Iam`, and puts scripted or random faults in front of both.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Self

import attrs
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from ..aio import AsyncClosing, serve
from ..auth import IAM_TOKENS_PATH, METADATA_TOKEN_PATH
from ..calls import CALLS
from ..limits import MAX_PAGE_SIZE, SERVER_DEFAULT_PAGE_SIZE
from ..models import Backup, Cloud, Cluster, Folder
from ..protocol import is_loopback
from .api import Api
from .encoding import dumps
from .faults import CHAOS, ApiFailure, Fault, cut_off, status_response
from .iam import Iam
from .seed import (
    DEFAULT_FOLDER_ID,
    complete_backups,
    default_cloud,
    default_folder,
    organization_of_shape,
    synthetic_clusters,
    this_hour,
)
from .seed import organization as seed_organization
from .store import Store

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_API_PREFIXES = tuple({"/" + call.path.split("/")[1] + "/" for call in CALLS})
log = logging.getLogger("pg_backups_async.emulator")
EXPOSED = "it accepts any token, and anyone who can reach it gets its made-up data"
"""What serving beyond loopback means."""


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


class Emulator(AsyncClosing):
    """The API on loopback, seeded with deterministic synthetic data.

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

    It plays Resource Manager too: the folder is in a cloud, `DEFAULT_CLOUD_ID`. With
    `organization`, two clouds of `DEFAULT_ORGANIZATION_ID` hold five more folders with
    clusters of their own: one folder not `ACTIVE`, one (`FORBIDDEN_FOLDER_ID`) whose
    `Cluster.list` answers 403, one empty. A list request without `pageSize` gets
    `default_page_size` items, and no page holds more than `max_page_size` (nor, of
    backups, than `backups_page_size`). `organization_shape`, (clouds, folders per
    cloud, clusters per folder), seeds an organization of that shape instead, every
    folder `ACTIVE`, beside the default folder.

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
        organization: bool = False,
        organization_shape: tuple[int, int, int] | None = None,
        default_page_size: int = SERVER_DEFAULT_PAGE_SIZE,
        max_page_size: int = MAX_PAGE_SIZE,
        backups_page_size: int | None = None,
    ) -> None:
        self.latency = latency
        self.fault_rate = fault_rate
        self._chaos = random.Random(fault_seed)
        self.faults_served: Counter[str] = Counter()
        """How many of each fault it served, scripted or random, by kind."""
        self._stalls = asyncio.Event()  # set on stop: stalled answers then end
        self.store = Store()
        self.iam = Iam(tokens)
        self.api = Api(
            self.store,
            listing_size=listing_size,
            default_page_size=default_page_size,
            max_page_size=max_page_size,
            backups_page_size=backups_page_size,
        )
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: deque[Fault] = deque()
        self._arrivals = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""
        anchor = anchor or this_hour()
        seeded = synthetic_clusters(
            clusters,
            seed=seed,
            folder_id=folder_id,
            anchor=anchor,
            backups_per_cluster=backups_per_cluster,
        )
        self.store.add_cloud(default_cloud(anchor))
        self.store.add_folder(default_folder(folder_id, anchor))
        if organization or organization_shape is not None:
            org = (
                seed_organization(seed=seed, anchor=anchor)
                if organization_shape is None
                else organization_of_shape(
                    *organization_shape,
                    seed=seed,
                    anchor=anchor,
                    backups_per_cluster=backups_per_cluster,
                )
            )
            for cloud in org.clouds:
                self.store.add_cloud(cloud)
            for folder in org.folders:
                self.store.add_folder(folder)
            self.store.forbidden_folders |= org.forbidden_folder_ids
            seeded += org.clusters
        for cluster, backups in seeded:
            self.add_cluster(cluster, complete_backups(backups) if complete else backups)

    # State and knobs

    @property
    def clusters(self) -> dict[str, Cluster]:
        """The clusters served, by id."""
        return self.store.clusters

    @property
    def clouds(self) -> dict[str, Cloud]:
        """The clouds served, by id."""
        return self.store.clouds

    @property
    def folders(self) -> dict[str, Folder]:
        """The folders served, by id."""
        return self.store.folders

    @property
    def cluster_ids(self) -> list[str]:
        """The clusters' ids, in the order they were added."""
        return list(self.store.clusters)

    def add_cluster(
        self, cluster: Cluster | str, backups: Iterable[Backup | Mapping[str, Any]] = ()
    ) -> Cluster:
        """Add (or replace) a cluster; backups are models or wire JSON objects, served as is."""
        return self.store.add_cluster(cluster, backups)

    def remove_cluster(self, cluster_id: str) -> None:
        """Delete a cluster and its backups, as if it had been deleted mid-inventory."""
        self.store.remove_cluster(cluster_id)

    def backups(self, cluster_id: str) -> list[Backup]:
        """The cluster's backups as the client should see them."""
        return self.store.backups(cluster_id)

    def backup_count(self, cluster_id: str) -> int:
        """How many backups the cluster has."""
        return len(self.store.encoded_backups(cluster_id) or ())

    @property
    def tokens(self) -> set[str] | None:
        """The only IAM tokens accepted, or None for any."""
        return self.iam.tokens

    @tokens.setter
    def tokens(self, tokens: set[str] | None) -> None:
        self.iam.tokens = tokens

    @property
    def oauth_tokens(self) -> set[str]:
        """OAuth tokens the exchange accepts."""
        return self.iam.oauth_tokens

    @oauth_tokens.setter
    def oauth_tokens(self, tokens: set[str]) -> None:
        self.iam.oauth_tokens = tokens

    @property
    def issued_tokens(self) -> list[str]:
        """The IAM tokens it issued, in order."""
        return self.iam.issued_tokens

    @property
    def exchanges(self) -> list[str]:
        """How each issued token was had: "jwt", "oauth" or "metadata"."""
        return self.iam.exchanges

    @property
    def clock(self) -> Callable[[], float]:
        """Seconds since the epoch, for issuing tokens and checking JWT times."""
        return self.iam.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.iam.clock = clock

    @property
    def token_lifetime(self) -> float:
        """Seconds an issued token lives."""
        return self.iam.token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: float) -> None:
        self.iam.token_lifetime = seconds

    @property
    def listing_size(self) -> int | None:
        """Each cluster's listing repeated to this many backups, or None."""
        return self.api.listing_size

    def add_service_account_key(
        self, key_id: str, service_account_id: str, public_key: rsa.RSAPublicKey
    ) -> None:
        """Accept JWTs signed by this key's private half, for this service account."""
        self.iam.add_service_account_key(key_id, service_account_id, public_key)

    def revoke(self, token: str) -> None:
        """Refuse `token` from now on (as if it had expired); others stay accepted."""
        self.iam.revoke(token)

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

    async def wait_until_idle(self) -> None:
        """Return once no request is being answered (written, failed or cut off)."""
        async with self._arrivals:
            await self._arrivals.wait_for(lambda: self.in_flight == 0)

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
        """The aiohttp application serving the API, routed from the table of calls."""
        app = web.Application(middlewares=[self._middleware])
        handlers = self.api.handlers()
        for call in CALLS:
            app.router.add_get(call.path, handlers[call.name])
        app.router.add_get("/_emulator/stats", self._stats)
        app.router.add_post(IAM_TOKENS_PATH, self.iam.exchange_token)
        app.router.add_get(METADATA_TOKEN_PATH, self.iam.metadata_token)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on `host:port` (0: a free port); returns the base URL.

        A host other than a loopback one is served with a warning in the log: the
        emulator accepts any token, and anyone who can reach it gets its data.
        """
        if self._runner is not None:
            raise RuntimeError("the emulator is already serving")
        # A client that goes away cancels its handler: a stalled answer then lets go of
        # its request and buffers instead of holding them until the emulator stops.
        self._runner, self.url = await serve(
            self.app(), host, port, shutdown_timeout=0.25, handler_cancellation=True
        )
        if not is_loopback(host):
            log.warning(
                "the emulator is serving on %s, beyond this machine: %s", self.url, EXPOSED
            )
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
            return await self._answer(request, handler, index, request_id)
        except ConnectionResetError:
            # The client went away before its answer was written: nothing to answer
            # and nothing to log (aiohttp logs a handler's exception with a traceback).
            raise asyncio.CancelledError from None
        finally:
            self.in_flight -= 1
            async with self._arrivals:
                self._arrivals.notify_all()

    async def _answer(
        self, request: web.Request, handler: _Handler, index: int, request_id: str
    ) -> web.StreamResponse:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        fault = self._take_fault(request) or self._random_fault(request)
        if fault is not None:
            self.faults_served[fault.kind] += 1
            self.requests[index] = attrs.evolve(self.requests[index], fault=fault.kind)
        if fault is not None and fault.delay > 0:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.drop:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        if fault is not None and fault.status is not None:
            return fault.response(request_id)
        try:
            if not request.path.startswith((IAM_TOKENS_PATH, METADATA_TOKEN_PATH)):
                self.iam.authenticate(request)
            response = await handler(request)
        except ApiFailure as failure:
            response = status_response(failure.status, failure.message, request_id)
        response.headers["x-request-id"] = request_id
        response.headers["x-server-trace-id"] = uuid.uuid4().hex
        if fault is not None and (fault.truncate or fault.stall):
            await cut_off(request, response, until=self._stalls if fault.stall else None)
        return response

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
        if self.fault_rate <= 0 or not request.path.startswith(_API_PREFIXES):
            return None
        if self._chaos.random() >= self.fault_rate:
            return None
        return self._chaos.choice(CHAOS)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.Response(body=dumps(self.stats()), content_type="application/json")

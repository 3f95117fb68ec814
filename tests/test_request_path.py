"""The request path: transport seam, auth flow, one retry loop and one deadline per call.

Most tests drive the client through `MockTransport` (no server); the ones about real
connections and the IAM exchange run against the emulator over loopback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

import pg_backups_async as pba
from pg_backups_async import auth
from pg_backups_async.emulator import Emulator, Fault
from pg_backups_async.retry import Retrying
from tests.conftest import ANCHOR, TOKEN

GUARD = 10.0  # seconds: a hung test fails instead of hanging; never a measurement
QUICK = pba.RetryPolicy(max_attempts=5, base_delay=0.001, max_delay=0.002, max_time=10.0)
CLUSTER = "c9qk2b1dn8hbg7r0cvf4"
KEY_ID = "ajekeyid000000000001"
SA_ID = "ajeserviceaccount001"
OAUTH = "y0_AgAAAAsecretOAuthTokenValue"


def _json(status: int, body: object, **headers: str) -> pba.HttpResponse:
    return pba.HttpResponse(
        status, {"Content-Type": "application/json", **headers}, orjson.dumps(body)
    )


PAGE = _json(200, {"backups": [{"id": f"{CLUSTER}:b1", "size": "5"}]})
UNAVAILABLE = _json(503, {"code": 14, "message": "try again"})


def _client(
    handler: Any, credentials: pba.Credentials | None = None, **kwargs: Any
) -> pba.BackupsClient:
    kwargs.setdefault("retry", QUICK)
    return pba.BackupsClient(
        credentials or pba.IamToken(TOKEN),
        endpoint="https://mdb.example.com",
        transport=pba.MockTransport(handler),
        **kwargs,
    )


def _chain(error: BaseException | None) -> list[BaseException]:
    """The error and everything reachable from it as cause or context."""
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


# The transport seam


async def test_the_client_runs_over_a_mock_transport() -> None:
    transport = pba.MockTransport(lambda request: PAGE)
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), endpoint="https://mdb.example.com", transport=transport
    ) as client:
        page = await client.get_backups_page(CLUSTER, page_size=10)
    assert [b.size for b in page.backups] == [5]
    [request] = transport.requests
    assert request.method == "GET"
    assert str(request.url) == (
        f"https://mdb.example.com/managed-postgresql/v1/clusters/{CLUSTER}/backups?pageSize=10"
    )
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.client_request_id is not None


async def test_a_transient_failure_is_retried_over_the_seam() -> None:
    answers = [UNAVAILABLE, UNAVAILABLE, PAGE]
    transport = pba.MockTransport(lambda request: answers.pop(0))
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), endpoint="https://x.example.com", transport=transport, retry=QUICK
    ) as client:
        page = await client.get_backups_page(CLUSTER)
    assert len(page.backups) == 1
    ids = [r.client_request_id for r in transport.requests]
    assert len(ids) == len(set(ids)) == 3  # a fresh request id per attempt


async def test_a_network_error_from_the_handler_is_retried() -> None:
    answers: list[pba.HttpResponse | Exception] = [pba.NetworkError("reset"), PAGE]

    def handler(request: pba.HttpRequest) -> pba.HttpResponse:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async with _client(handler) as client:
        assert len((await client.get_backups_page(CLUSTER)).backups) == 1
    assert answers == []


async def test_the_size_cap_applies_over_the_seam() -> None:
    async with _client(lambda r: PAGE, max_response_bytes=10) as client:
        with pytest.raises(pba.ResponseFormatError, match="cap on responses"):
            await client.get_backups_page(CLUSTER)


async def test_a_handler_that_returns_something_else_is_a_type_error() -> None:
    async with _client(lambda r: {"backups": []}) as client:
        with pytest.raises(TypeError, match="HttpResponse"):
            await client.get_backups_page(CLUSTER)


def test_the_transport_must_be_a_transport() -> None:
    with pytest.raises(TypeError, match="transport"):
        pba.BackupsClient(pba.IamToken(TOKEN), transport=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        pba.MockTransport("not a function")  # type: ignore[arg-type]


async def test_the_client_closes_the_transport_it_was_given() -> None:
    closed = asyncio.Event()

    class Recording(pba.MockTransport):
        async def aclose(self) -> None:
            closed.set()

    async with pba.BackupsClient(pba.IamToken(TOKEN), transport=Recording(lambda r: PAGE)):
        assert not closed.is_set()
    assert closed.is_set()


# No aiohttp exception is ever reachable from a raised error


@pytest.mark.parametrize(
    "fault",
    [
        Fault(drop=True, times=10),
        Fault(status=None, truncate=True, times=10),
        Fault(status=None, stall=True, times=10),
    ],
    ids=["reset", "cut-off", "stalled"],
)
async def test_no_aiohttp_exception_behind_a_network_error(
    emulator: Emulator, fault: Fault
) -> None:
    emulator.inject(fault)
    policy = pba.RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001)
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), endpoint=emulator.url, retry=policy, timeout=0.3
    ) as client:
        with pytest.raises(pba.NetworkError) as caught:
            await asyncio.wait_for(client.get_backups_page(emulator.cluster_ids[2]), GUARD)
    chain = _chain(caught.value)
    assert chain == [caught.value]
    assert not any(isinstance(e, aiohttp.ClientError) for e in chain)
    assert TOKEN not in repr(vars(caught.value))


async def test_no_aiohttp_exception_behind_an_auth_error() -> None:
    async with Emulator() as gone:
        address = gone.url.removeprefix("http://")
    credentials = pba.MetadataCredentials(address=address)
    policy = pba.RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001)
    async with pba.BackupsClient(credentials, endpoint=f"http://{address}", retry=policy) as c:
        with pytest.raises(
            pba.AuthError, match=r"could not connect to .*: connection refused"
        ) as caught:
            await c.get_backups_page(CLUSTER)
    assert not any(isinstance(e, aiohttp.ClientError) for e in _chain(caught.value))
    assert caught.value.retryable  # a refused connection is worth retrying later


# One deadline per call


async def test_an_attempt_in_flight_is_cut_at_the_deadline() -> None:
    never = asyncio.Event()

    async def stalled(request: pba.HttpRequest) -> pba.HttpResponse:
        await never.wait()
        raise AssertionError("unreachable")

    policy = pba.RetryPolicy(max_time=0.05)
    async with _client(stalled, retry=policy) as client:
        with pytest.raises(pba.NetworkError, match="deadline") as caught:
            await asyncio.wait_for(client.get_backups_page(CLUSTER), GUARD)
    assert caught.value.__context__ is None


async def test_over_the_network_too_an_attempt_is_cut_at_the_deadline(
    emulator: Emulator,
) -> None:
    emulator.inject(Fault(status=None, delay=3600.0))
    policy = pba.RetryPolicy(max_time=0.2)  # far inside the attempt's own 30 s timeout
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url, retry=policy) as c:
        with pytest.raises(pba.NetworkError, match="deadline"):
            await asyncio.wait_for(c.get_backups_page(emulator.cluster_ids[2]), GUARD)
    assert len(emulator.requests) == 1


async def test_custom_credentials_that_hang_end_at_the_deadline() -> None:
    class Hanging:
        async def token(self) -> str:
            await asyncio.Event().wait()
            return "never"

        def invalidate(self, token: str) -> bool:
            return False

    transport = pba.MockTransport(lambda r: PAGE)
    async with pba.BackupsClient(
        Hanging(), transport=transport, retry=pba.RetryPolicy(max_time=0.05)
    ) as client:
        with pytest.raises(pba.AuthError, match="max_time"):
            await asyncio.wait_for(client.get_backups_page(CLUSTER), GUARD)
    assert transport.requests == []


@pytest.mark.parametrize("token", ["has space", "line\r\nX-Injected: 1", "", 42])
async def test_a_token_that_cannot_travel_is_an_auth_error(token: object) -> None:
    class Bad:
        async def token(self) -> object:
            return token

        def invalidate(self, token: str) -> bool:
            return False

    transport = pba.MockTransport(lambda r: PAGE)
    async with pba.BackupsClient(Bad(), transport=transport) as client:  # type: ignore[arg-type]
        with pytest.raises(pba.AuthError) as caught:
            await client.get_backups_page(CLUSTER)
    assert transport.requests == []
    assert not isinstance(token, str) or not token or token not in str(caught.value)


# The retry loop, with its clock and sleep injected: no real time passes


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _failing(errors: list[pba.ApiError], result: str = "done") -> Callable[[], Any]:
    async def attempt() -> str:
        if errors:
            raise errors.pop(0)
        return result

    return attempt


async def test_retrying_waits_with_full_jitter_and_honours_retry_after() -> None:
    time = FakeTime()
    policy = pba.RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=3.0, max_retry_after=5.0)
    retrying = Retrying(policy, clock=time.clock, sleep=time.sleep)
    errors = [
        pba.UnavailableError("x", http_status=503),
        pba.ResourceExhaustedError("x", http_status=429, retry_after=60.0),
        pba.UnavailableError("x", http_status=503),
    ]
    assert await retrying.run(_failing(errors)) == "done"
    first, clamped, third = time.slept
    assert 0 <= first <= 1.0
    assert clamped == 5.0  # Retry-After, clamped to max_retry_after
    assert 0 <= third <= 3.0  # the third ceiling is 4.0, capped at max_delay
    assert retrying.attempts == 4


async def test_retrying_gives_up_rather_than_wait_past_the_deadline() -> None:
    time = FakeTime()
    policy = pba.RetryPolicy(max_attempts=10, max_time=10.0, max_retry_after=30.0)
    retrying = Retrying(policy, clock=time.clock, sleep=time.sleep)
    errors = [pba.ResourceExhaustedError("x", http_status=429, retry_after=4.0) for _ in range(10)]
    with pytest.raises(pba.ResourceExhaustedError):
        await retrying.run(_failing(errors))
    assert time.slept == [4.0, 4.0]  # a third wait would end past the 10 s deadline
    assert retrying.attempts == 3


async def test_the_budget_pays_only_for_retries_that_happen() -> None:
    time = FakeTime()
    budget = pba.RetryBudget(100)
    retrying = Retrying(
        pba.RetryPolicy(max_attempts=3), budget, clock=time.clock, sleep=time.sleep
    )
    errors = [pba.UnavailableError("x", http_status=503) for _ in range(3)]
    with pytest.raises(pba.UnavailableError):
        await retrying.run(_failing(errors))
    assert budget.available == 90  # two retries; the third failure was the last attempt
    assert budget.refused == 0


async def test_attempts_are_counted_across_the_runs_of_one_call() -> None:
    time = FakeTime()
    retrying = Retrying(pba.RetryPolicy(max_attempts=3), clock=time.clock, sleep=time.sleep)
    assert await retrying.run(_failing([pba.InternalError("x", http_status=500)])) == "done"
    errors = [pba.InternalError("x", http_status=500) for _ in range(5)]
    with pytest.raises(pba.InternalError):
        await retrying.run(_failing(errors))  # its first attempt, and no retry left
    assert retrying.attempts == 3


async def test_cancellation_is_never_retried() -> None:
    time = FakeTime()
    retrying = Retrying(pba.RetryPolicy(), clock=time.clock, sleep=time.sleep)

    async def cancelled() -> str:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await retrying.run(cancelled)
    assert retrying.attempts == 1
    assert time.slept == []


# The auth flow and the token exchange


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def key(private_key: rsa.RSAPrivateKey) -> dict[str, str]:
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {"id": KEY_ID, "service_account_id": SA_ID, "private_key": pem}


def _exchange_then_api(iam_answer: Callable[[], pba.HttpResponse]) -> pba.MockTransport:
    """IAM answers with `iam_answer()`; the API with a page."""

    def handler(request: pba.HttpRequest) -> pba.HttpResponse:
        if request.url.path == "/iam/v1/tokens":
            return iam_answer()
        return PAGE

    return pba.MockTransport(handler)


def _iam_requests(transport: pba.MockTransport) -> list[pba.HttpRequest]:
    return [r for r in transport.requests if r.url.path == "/iam/v1/tokens"]


async def test_under_a_persistent_iam_500_one_call_sends_at_most_max_attempts_exchanges(
    key: dict[str, str],
) -> None:
    transport = _exchange_then_api(lambda: _json(500, {"code": 13, "message": "internal"}))
    credentials = pba.ServiceAccountKey.from_dict(key, iam_endpoint="https://iam.example.com")
    async with pba.BackupsClient(credentials, transport=transport, retry=QUICK) as client:
        with pytest.raises(pba.AuthError, match="internal") as caught:
            await client.get_backups_page(CLUSTER)
    assert caught.value.http_status == 500
    assert len(_iam_requests(transport)) == QUICK.max_attempts
    assert len(transport.requests) == QUICK.max_attempts  # the API was never asked


async def test_exchange_retries_and_api_retries_share_the_calls_attempts(
    key: dict[str, str],
) -> None:
    iam = [_json(500, {"message": "internal"}), _json(200, {"iamToken": "t1.fresh"})]
    api = [UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, PAGE]

    def handler(request: pba.HttpRequest) -> pba.HttpResponse:
        return (iam if request.url.path == "/iam/v1/tokens" else api).pop(0)

    transport = pba.MockTransport(handler)
    credentials = pba.ServiceAccountKey.from_dict(key, iam_endpoint="https://iam.example.com")
    policy = pba.RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.001)
    async with pba.BackupsClient(credentials, transport=transport, retry=policy) as client:
        with pytest.raises(pba.UnavailableError):
            await client.get_backups_page(CLUSTER)
    # Two exchange attempts, then the two the call has left for the API.
    assert len(transport.requests) == 4
    assert api == [UNAVAILABLE, PAGE]


async def test_a_failed_exchange_is_shared_by_every_caller_waiting_on_it(
    key: dict[str, str],
) -> None:
    transport = _exchange_then_api(lambda: _json(503, {"message": "down"}))
    credentials = pba.ServiceAccountKey.from_dict(key, iam_endpoint="https://iam.example.com")
    async with pba.BackupsClient(credentials, transport=transport, retry=QUICK) as client:
        results = await asyncio.gather(
            *(client.get_backups_page(CLUSTER) for _ in range(16)), return_exceptions=True
        )
    assert all(isinstance(r, pba.AuthError) for r in results)
    assert len({id(r) for r in results}) == 16  # each caller has its own error object
    assert len(_iam_requests(transport)) == QUICK.max_attempts  # one exchange, not 16


async def test_a_fan_out_against_a_stalled_metadata_service_ends_within_its_deadline() -> None:
    async with Emulator(anchor=ANCHOR, clusters=16, backups_per_cluster=1) as emulator:
        emulator.inject(Fault(status=None, delay=3600.0, times=1000))  # nothing answers
        credentials = pba.MetadataCredentials(address=emulator.url.removeprefix("http://"))
        policy = pba.RetryPolicy(max_attempts=5, max_time=0.5, base_delay=0.01, max_delay=0.02)
        async with pba.BackupsClient(
            credentials, endpoint=emulator.url, retry=policy, timeout=0.2
        ) as client:
            results = await asyncio.wait_for(
                _collect(client.list_backups_many(emulator.cluster_ids, concurrency=16)), GUARD
            )
        metadata = [r for r in emulator.requests if r.path.startswith("/computeMetadata/")]
    assert len(results) == 16
    assert all(isinstance(r.error, pba.AuthError) for r in results)
    # One exchange served all 16 waiting calls: its attempts, not 16 times as many.
    assert 1 <= len(metadata) <= policy.max_attempts
    assert len(emulator.requests) == len(metadata)


async def _collect(fanout: pba.FanOut[str, pba.ClusterBackups]) -> list[pba.ClusterBackups]:
    async with fanout:
        return [result async for result in fanout]


async def test_a_401_invalidates_and_sends_once_more_with_a_fresh_token(
    key: dict[str, str],
) -> None:
    issued = iter(["t1.first", "t1.second"])
    api = [_json(401, {"code": 16, "message": "expired"}), PAGE]

    def handler(request: pba.HttpRequest) -> pba.HttpResponse:
        if request.url.path == "/iam/v1/tokens":
            return _json(200, {"iamToken": next(issued), "expiresAt": "2999-01-01T00:00:00Z"})
        return api.pop(0)

    transport = pba.MockTransport(handler)
    credentials = pba.ServiceAccountKey.from_dict(key, iam_endpoint="https://iam.example.com")
    async with pba.BackupsClient(credentials, transport=transport, retry=QUICK) as client:
        await client.get_backups_page(CLUSTER)
    sent = [r.headers.get("Authorization") for r in transport.requests]
    assert sent == [None, "Bearer t1.first", None, "Bearer t1.second"]


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (pba.HttpResponse(200, {}, b"<html>proxy</html>"), "not a JSON object"),
        (pba.HttpResponse(200, {}, b"[" * 8_000 + b"]" * 8_000), "not a JSON object"),
        (_json(200, ["iamToken"]), "not a JSON object"),
        (_json(200, {"iamToken": 5}), "without a token"),
        (_json(200, {"iamToken": ""}), "without a token"),
        (_json(200, {"iamToken": "t1.a\r\nX-Injected: yes"}), "cannot travel in a header"),
        (_json(200, {"iamToken": "t1.a", "expiresAt": 5}), "valid expiresAt"),
        (_json(200, {"iamToken": "t1.a", "expiresAt": "tomorrow"}), "valid expiresAt"),
        (_json(200, {"iamToken": "t1.a", "expiresAt": "9999-12-31T23:59:59-05:00"}), "valid"),
        (_json(200, {"iamToken": "t1.a", "expiresAt": "2020-01-01T00:00:00Z"}), "expired"),
        (pba.HttpResponse(200, {}, b'{"iamToken": "' + b"a" * 20_000 + b'"}'), "cap"),
        (_json(500, {"code": 13, "message": "IAM is down"}), "IAM is down"),
        (pba.HttpResponse(403, {}, b"Forbidden"), "HTTP 403"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_every_malformed_exchange_answer_is_an_auth_error(
    key: dict[str, str], monkeypatch: pytest.MonkeyPatch, answer: pba.HttpResponse, message: str
) -> None:
    monkeypatch.setattr(auth, "_now", lambda: NOW)
    transport = _exchange_then_api(lambda: answer)
    credentials = pba.ServiceAccountKey.from_dict(key, iam_endpoint="https://iam.example.com")
    async with pba.BackupsClient(credentials, transport=transport, retry=QUICK) as client:
        with pytest.raises(pba.AuthError, match=message) as caught:
            await client.get_backups_page(CLUSTER)
    jwt = orjson.loads(transport.requests[0].body or b"{}")["jwt"]
    assert jwt not in str(caught.value)
    assert jwt not in repr(caught.value)
    assert not any(r.headers.get("Authorization") for r in transport.requests)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"access_token": "t1.m", "expires_in": "3600"}, "not a number"),
        ({"access_token": "t1.m", "expires_in": True}, "not a number"),
        ({"access_token": "t1.m", "expires_in": -5}, "expired"),
        ({"access_token": None, "expires_in": 3600}, "without a token"),
        (b'{"access_token": "t1.m", "expires_in": 1' + b"0" * 400 + b"}", "not a JSON object"),
    ],
)
async def test_malformed_metadata_answers_are_auth_errors(
    answer: dict[str, Any] | bytes, message: str
) -> None:
    body = answer if isinstance(answer, bytes) else orjson.dumps(answer)
    transport = pba.MockTransport(lambda request: pba.HttpResponse(200, {}, body))
    credentials = pba.MetadataCredentials(address="169.254.169.254")
    async with pba.BackupsClient(credentials, transport=transport, retry=QUICK) as client:
        with pytest.raises(pba.AuthError, match=message):
            await client.get_backups_page(CLUSTER)


@pytest.mark.parametrize(
    "answer",
    [
        {"access_token": "t1.m", "expires_in": 10**18},
        {"access_token": "t1.m"},
        {"iamToken": "t1.m", "expiresAt": "9000-01-01T00:00:00Z"},
    ],
    ids=["huge-expires-in", "no-expiry", "far-future"],
)
async def test_unknown_or_far_future_expiries_are_clamped_to_12_hours(
    monkeypatch: pytest.MonkeyPatch, key: dict[str, str], answer: dict[str, Any]
) -> None:
    clock = [NOW]
    monkeypatch.setattr(auth, "_now", lambda: clock[0])
    exchanges = []

    def handler(request: pba.HttpRequest) -> pba.HttpResponse:
        if request.url.path.startswith(("/iam/", "/computeMetadata/")):
            exchanges.append(request)
            return _json(200, answer)
        return PAGE

    credentials: pba.Credentials
    if "iamToken" in answer:
        credentials = pba.ServiceAccountKey.from_dict(key, iam_endpoint="https://iam.example.com")
    else:
        credentials = pba.MetadataCredentials()
    async with pba.BackupsClient(credentials, transport=pba.MockTransport(handler)) as client:
        await client.get_backups_page(CLUSTER)
        clock[0] += 6 * 3600 - 1  # under half of 12 hours: still cached
        await client.get_backups_page(CLUSTER)
        assert len(exchanges) == 1
        clock[0] += 0.6 * 12 * 3600  # past six tenths of 12 hours: refreshed
        await client.get_backups_page(CLUSTER)
        assert len(exchanges) == 2


async def test_standalone_token_has_retries_of_its_own(key: dict[str, str]) -> None:
    async with Emulator(anchor=ANCHOR, tokens=()) as emulator:
        public = serialization.load_pem_private_key(key["private_key"].encode(), None)
        emulator.add_service_account_key(KEY_ID, SA_ID, public.public_key())  # type: ignore[union-attr,arg-type]
        emulator.inject(Fault(status=503, times=2))
        credentials = pba.ServiceAccountKey.from_dict(key, iam_endpoint=emulator.url)
        assert await credentials.token() == emulator.issued_tokens[0]
        assert len(emulator.requests) == auth.STANDALONE_RETRY.max_attempts


# Endpoints: Cluster.get, declared and served


async def test_get_cluster_end_to_end(client: pba.BackupsClient, emulator: Emulator) -> None:
    cluster_id = emulator.cluster_ids[1]
    cluster = await client.get_cluster(cluster_id)
    assert cluster == emulator.clusters[cluster_id]
    assert emulator.requests[0].path == f"/managed-postgresql/v1/clusters/{cluster_id}"
    with pytest.raises(pba.NotFoundError, match="c9qnosuchcluster0000 not found"):
        await client.get_cluster("c9qnosuchcluster0000")
    with pytest.raises(ValueError, match="cluster_id"):
        await client.get_cluster("../backups")
    with pytest.raises(TypeError, match="cluster_id"):
        await client.get_cluster(5)  # type: ignore[arg-type]
    assert len(emulator.requests) == 2


# Argument checks: TypeError for a type, ValueError for a value


async def test_an_id_where_ids_are_expected_is_a_type_error(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    with pytest.raises(TypeError, match="cluster_ids"):
        await client.inventory(cluster_ids=emulator.cluster_ids[0])
    with pytest.raises(TypeError, match="folder_ids"):
        await client.inventory(folder_ids="b1gfolder")
    with pytest.raises(TypeError, match="cluster_ids"):
        client.list_backups_many(emulator.cluster_ids[0])
    with pytest.raises(TypeError, match="stale_after"):
        await client.inventory(cluster_ids=["c9q"], stale_after=3600)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="concurrency"):
        client.list_backups_many(["c9q"], concurrency=2.0)  # type: ignore[arg-type]
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": float("inf")}, ValueError),
        ({"timeout": float("nan")}, ValueError),
        ({"timeout": 0}, ValueError),
        ({"timeout": "30"}, TypeError),
        ({"connection_limit": 0}, ValueError),
        ({"connection_limit": 1.5}, TypeError),
        ({"max_response_bytes": 0}, ValueError),
        ({"max_response_bytes": "1"}, TypeError),
    ],
)
def test_client_settings_are_checked(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        pba.BackupsClient(pba.IamToken(TOKEN), **kwargs)


def test_inventory_state_is_a_str_enum() -> None:
    line = pba.ClusterInventory("c9q", newest_done_age=None)
    assert line.state is pba.InventoryState.NO_BACKUPS
    assert line.state == "no backups"
    assert json.dumps({"state": line.state}) == '{"state": "no backups"}'


async def test_an_exchange_that_echoes_the_secret_has_it_redacted(key: dict[str, str]) -> None:
    def echo(request: pba.HttpRequest) -> pba.HttpResponse:
        signed = orjson.loads(request.body or b"{}")["jwt"]
        return _json(400, {"code": 3, "message": f"bad jwt {signed} (try again)"})

    transport = pba.MockTransport(echo)
    credentials = pba.ServiceAccountKey.from_dict(key, iam_endpoint="https://iam.example.com")
    async with pba.BackupsClient(credentials, transport=transport) as client:
        with pytest.raises(pba.AuthError, match=r"bad jwt <redacted> \(try again\)") as caught:
            await client.get_backups_page(CLUSTER)
    signed = orjson.loads(transport.requests[0].body or b"{}")["jwt"]
    assert signed not in str(caught.value)
    assert signed not in repr(caught.value)


def test_a_requests_repr_hides_the_token_and_the_body() -> None:
    request = pba.HttpRequest(
        "POST",
        URL("https://iam.example.com/iam/v1/tokens"),
        {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
        b'{"jwt": "eyJsecret"}',
    )
    text = repr(request)
    assert TOKEN not in text
    assert "eyJsecret" not in text
    assert "'Authorization': '<redacted>'" in text
    assert "<20 bytes>" in text
    assert "'Accept': 'application/json'" in text

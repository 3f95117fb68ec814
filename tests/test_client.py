"""The client over real loopback HTTP against the emulator."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid

import pytest

import pg_backups_async as pba
from pg_backups_async.emulator import Emulator, Fault
from tests.conftest import FAST_RETRY, TOKEN


async def test_one_page_and_what_was_sent(client: pba.BackupsClient, emulator: Emulator) -> None:
    cluster = emulator.cluster_ids[1]
    page = await client.get_backups_page(cluster, page_size=15)
    assert page.backups == tuple(emulator.backups(cluster)[:15])
    assert page.next_page_token == "MTU="  # base64("15"), like the service's "Mg=="
    [request] = emulator.requests
    assert request.method == "GET"
    assert request.path == f"/managed-postgresql/v1/clusters/{cluster}/backups"
    assert request.query == {"pageSize": "15"}
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert uuid.UUID(request.headers["x-client-request-id"])
    assert request.headers["User-Agent"].startswith("pg-backups-async/")


async def test_next_page_by_token(client: pba.BackupsClient, emulator: Emulator) -> None:
    cluster = emulator.cluster_ids[1]
    first = await client.get_backups_page(cluster, page_size=30)
    second = await client.get_backups_page(cluster, page_size=30, page_token=first.next_page_token)
    assert second.next_page_token is None
    assert first.backups + second.backups == tuple(emulator.backups(cluster))
    assert emulator.requests[1].query == {"pageSize": "30", "pageToken": "MzA="}


async def test_empty_cluster(client: pba.BackupsClient, emulator: Emulator) -> None:
    page = await client.get_backups_page(emulator.cluster_ids[3])
    assert page == pba.BackupsPage(backups=(), next_page_token=None)


async def test_one_session_reuses_one_connection(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    for _ in range(5):
        await client.get_backups_page(emulator.cluster_ids[2])
    assert len({r.peer for r in emulator.requests}) == 1


async def test_not_found(client: pba.BackupsClient, emulator: Emulator) -> None:
    with pytest.raises(pba.NotFoundError) as caught:
        await client.get_backups_page("c9qnosuchcluster0000")
    error = caught.value
    assert (error.http_status, error.code) == (404, 5)
    assert error.message == "Cluster c9qnosuchcluster0000 not found"
    assert error.request_id is not None
    assert error.client_request_id == emulator.requests[0].headers["x-client-request-id"]
    assert len(emulator.requests) == 1  # never retried


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, pba.InvalidArgumentError),
        (401, pba.UnauthenticatedError),
        (403, pba.PermissionDeniedError),
        (404, pba.NotFoundError),
        (409, pba.ApiError),
        (501, pba.ApiError),
    ],
)
async def test_client_errors_are_not_retried(
    client: pba.BackupsClient, emulator: Emulator, status: int, cls: type[pba.ApiError]
) -> None:
    emulator.inject(Fault(status=status, times=5))
    with pytest.raises(cls) as caught:
        await client.get_backups_page(emulator.cluster_ids[0])
    assert caught.value.http_status == status
    assert len(emulator.requests) == 1


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_transient_errors_are_retried(
    client: pba.BackupsClient, emulator: Emulator, status: int
) -> None:
    emulator.inject(Fault(status=status, times=2))
    page = await client.get_backups_page(emulator.cluster_ids[2])
    assert len(page.backups) == 7
    assert len(emulator.requests) == 3
    ids = [r.headers["x-client-request-id"] for r in emulator.requests]
    assert len(set(ids)) == 3  # a fresh request id per attempt


async def test_retry_after_in_seconds_and_http_date_are_retried(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    emulator.inject(
        Fault(status=429, retry_after="0"),
        Fault(status=503, retry_after="Thu, 01 Jan 1970 00:00:00 GMT"),
    )
    page = await client.get_backups_page(emulator.cluster_ids[2])
    assert len(page.backups) == 7
    assert len(emulator.requests) == 3


async def test_retries_are_exhausted(emulator: Emulator) -> None:
    emulator.inject(Fault(status=503, times=10))
    policy = pba.RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.001)
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url, retry=policy) as c:
        with pytest.raises(pba.UnavailableError) as caught:
            await c.get_backups_page(emulator.cluster_ids[0])
    assert caught.value.code == 14
    assert len(emulator.requests) == 3


async def test_retries_can_be_turned_off(emulator: Emulator) -> None:
    emulator.inject(Fault(status=503, times=10))
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), endpoint=emulator.url, retry=pba.RetryPolicy.disabled()
    ) as c:
        with pytest.raises(pba.UnavailableError):
            await c.get_backups_page(emulator.cluster_ids[0])
    assert len(emulator.requests) == 1


async def test_dropped_connections_are_retried(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    emulator.inject(Fault(drop=True, times=3))
    page = await client.get_backups_page(emulator.cluster_ids[2])
    assert len(page.backups) == 7
    assert emulator.pending_faults == 0


async def test_connection_refused_is_a_network_error() -> None:
    async with Emulator() as emulator:
        url = emulator.url
    policy = pba.RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001)
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=url, retry=policy) as c:
        with pytest.raises(pba.NetworkError) as caught:
            await c.get_backups_page("c9qk2b1dn8hbg7r0cvf4")
    assert caught.value.http_status is None
    # One sentence in the library's words: what failed, where, attempts and time spent.
    port = url.rsplit(":", 1)[1]
    assert re.fullmatch(
        rf"could not connect to 127\.0\.0\.1:{port}: connection refused "
        r"\(2 attempts in \d+ ms\)",
        str(caught.value),
    ), str(caught.value)
    assert "Client" not in str(caught.value)
    assert "ssl:" not in str(caught.value)
    # Never chained, nor left as context: an aiohttp exception's repr carries the headers.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


@pytest.mark.parametrize(
    "slow",
    [
        Fault(status=503, retry_after="30", times=3),  # cancelled while waiting to retry
        Fault(status=None, delay=30.0),  # cancelled while the request is in flight
    ],
    ids=["waiting-to-retry", "in-flight"],
)
async def test_a_cancelled_caller_is_never_retried(emulator: Emulator, slow: Fault) -> None:
    emulator.inject(slow)
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url) as c:
        task = asyncio.create_task(c.get_backups_page(emulator.cluster_ids[0]))
        await emulator.wait_for_requests(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(emulator.requests) == 1


async def test_redirects_are_not_followed(client: pba.BackupsClient, emulator: Emulator) -> None:
    emulator.inject(Fault(status=302, headers={"Location": f"{emulator.url}/elsewhere"}))
    with pytest.raises(pba.ApiError) as caught:
        await client.get_backups_page(emulator.cluster_ids[0])
    assert caught.value.http_status == 302
    assert [r.path for r in emulator.requests] == [
        f"/managed-postgresql/v1/clusters/{emulator.cluster_ids[0]}/backups"
    ]


async def test_success_with_a_non_json_body(client: pba.BackupsClient, emulator: Emulator) -> None:
    emulator.inject(Fault(status=200, body=b"<html>Welcome to our proxy</html>"))
    with pytest.raises(pba.ResponseFormatError) as caught:
        await client.get_backups_page(emulator.cluster_ids[0])
    error = caught.value
    assert error.field == "$"
    assert error.http_status == 200
    assert error.request_id is not None
    assert error.client_request_id == emulator.requests[0].headers["x-client-request-id"]
    assert len(emulator.requests) == 1


async def test_hostile_ids_never_reach_the_server(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    from tests.test_protocol import HOSTILE_IDS

    for cluster_id in HOSTILE_IDS:
        with pytest.raises(ValueError, match="cluster_id"):
            await client.get_backups_page(cluster_id)
        with pytest.raises(ValueError, match="cluster_id"):
            client.list_backups(cluster_id)
    assert emulator.requests == []


async def test_bad_arguments_are_refused_before_any_request(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    cluster = emulator.cluster_ids[0]
    with pytest.raises(ValueError, match="page_size"):
        await client.get_backups_page(cluster, page_size=1001)
    with pytest.raises(ValueError, match="page_token"):
        client.list_backups(cluster, page_token="x" * 101)
    with pytest.raises(ValueError, match="max_items"):
        client.list_backups(cluster, max_items=0)
    assert emulator.requests == []


async def test_the_token_never_leaks(emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    emulator.tokens = {"the-right-token"}
    emulator.inject(Fault(status=503), Fault(status=502, times=2))
    policy = pba.RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.001)
    credentials = pba.IamToken(TOKEN)
    texts = [repr(credentials), str(credentials)]
    async with pba.BackupsClient(credentials, endpoint=emulator.url, retry=policy) as client:
        texts.append(repr(client))
        for expected in (pba.UnavailableError, pba.UnauthenticatedError):
            with pytest.raises(expected) as caught:
                await client.get_backups_page(emulator.cluster_ids[0])
            error: BaseException | None = caught.value
            while error is not None:
                texts += [str(error), repr(error), repr(vars(error))]
                error = error.__cause__ or error.__context__
    texts += [r.getMessage() for r in caplog.records]
    texts += [repr(r.args) for r in caplog.records]
    assert any("giving up" in r.getMessage() for r in caplog.records)
    assert all(TOKEN not in text for text in texts)
    assert "Bearer" not in " ".join(texts)


@pytest.mark.parametrize("token", ["", "two words", "line\nbreak", "tab\t", "caf\u00e9"])
def test_malformed_tokens_are_refused_without_echo(token: str) -> None:
    with pytest.raises(ValueError, match="IAM token") as caught:
        pba.IamToken(token)
    assert (token not in str(caught.value)) or token == ""


def test_tokens_cannot_be_pickled() -> None:
    import pickle

    with pytest.raises(TypeError, match="secret"):
        pickle.dumps(pba.IamToken(TOKEN))


async def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ValueError, match="unencrypted"):
        pba.BackupsClient(pba.IamToken(TOKEN), endpoint="http://mdb.api.cloud.yandex.net")


async def test_credentials_must_be_credentials() -> None:
    with pytest.raises(TypeError, match="credentials"):
        pba.BackupsClient(TOKEN)  # type: ignore[arg-type]


async def test_use_outside_async_with_says_so(emulator: Emulator) -> None:
    client = pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url)
    with pytest.raises(RuntimeError, match="async with"):
        await client.get_backups_page(emulator.cluster_ids[0])
    with pytest.raises(RuntimeError, match="async with"):
        client.list_backups(emulator.cluster_ids[0])
    async with client:
        with pytest.raises(RuntimeError, match="entered once"):
            await client.__aenter__()
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_backups_page(emulator.cluster_ids[0])
    with pytest.raises(RuntimeError, match="closed"):
        async with client:
            pass
    assert emulator.requests == []


async def test_custom_credentials_are_asked_before_each_request(emulator: Emulator) -> None:
    class Rotating:
        def __init__(self) -> None:
            self.issued = 0
            self.invalidated: list[str] = []

        async def token(self) -> str:
            self.issued += 1
            return f"token-{self.issued}"

        def invalidate(self, token: str) -> bool:
            self.invalidated.append(token)
            return False  # a 401 is then final

    credentials = Rotating()
    emulator.tokens = {"token-1", "token-2"}
    async with pba.BackupsClient(credentials, endpoint=emulator.url, retry=FAST_RETRY) as c:
        await c.get_backups_page(emulator.cluster_ids[2])
        await c.get_backups_page(emulator.cluster_ids[2])
        with pytest.raises(pba.UnauthenticatedError):
            await c.get_backups_page(emulator.cluster_ids[2])
    sent = [r.headers["Authorization"] for r in emulator.requests]
    assert sent == ["Bearer token-1", "Bearer token-2", "Bearer token-3"]
    assert credentials.invalidated == ["token-3"]

"""Issue 21: the transport options of `BackupsClient` and `with_options`, over real HTTP.

A recording proxy on loopback sees what crosses it; an HTTPS server with a CA made
here serves the emulator's app; sessions are real `aiohttp.ClientSession`s.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

import pg_backups_async as pba
from pg_backups_async.emulator import Emulator, Fault
from pg_backups_async.transport import USER_AGENT
from tests.conftest import ANCHOR, FAST_RETRY, TOKEN

GUARD = 20.0  # seconds: a hung test fails instead of hanging; never a measurement


class RecordingProxy:
    """An HTTP proxy on loopback: `CONNECT` tunnels and absolute-form requests, with
    every byte the client sent through it kept in `seen`."""

    def __init__(self) -> None:
        self.seen = bytearray()
        self.first_lines: list[str] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._streams: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> RecordingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for stream in list(self._streams):  # the handlers end as their connections close
            stream.close()
        if self._handlers:
            await asyncio.wait(self._handlers)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._streams.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.seen += head
            first, _, rest = head.partition(b"\r\n")
            self.first_lines.append(first.decode())
            method, target, version = first.decode().split(" ")
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                up_reader, upstream = await asyncio.open_connection(host, int(port))
                self._streams.add(upstream)
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                url = URL(target)
                up_reader, upstream = await asyncio.open_connection(url.host, url.port)
                self._streams.add(upstream)
                upstream.write(f"{method} {url.path_qs} {version}\r\n".encode() + rest)
            await asyncio.gather(
                self._pipe(reader, upstream, record=True), self._pipe(up_reader, writer)
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for stream in (writer, upstream):
                if stream is not None:
                    stream.close()
            self._handlers.discard(task)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bool = False
    ) -> None:
        with contextlib.suppress(OSError):
            while chunk := await reader.read(1 << 16):
                if record:
                    self.seen += chunk
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()


def _certificates(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA and a certificate it signed for `localhost`: the CA's path, and the
    server's TLS context."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (directory / n for n in ("ca.pem", "server.pem", "key.pem"))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context


class Https:
    """The emulator's app served over HTTPS on loopback, as `https://localhost:port`."""

    def __init__(self, emulator: Emulator, ca_file: Path, url: str) -> None:
        self.emulator, self.ca_file, self.url = emulator, ca_file, url


@pytest.fixture
async def https(tmp_path: Path) -> AsyncIterator[Https]:
    ca_file, context = _certificates(tmp_path)
    emulator = Emulator(anchor=ANCHOR)
    runner = web.AppRunner(emulator.app(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = runner.addresses[0][1]
        yield Https(emulator, ca_file, f"https://localhost:{port}")
    finally:
        await runner.cleanup()


@pytest.fixture
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


# Proxies


async def test_an_explicit_proxy_carries_every_request(emulator: Emulator) -> None:
    async with (
        RecordingProxy() as proxy,
        pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url, proxy=proxy.url) as client,
    ):
        page = await client.get_backups_page(emulator.cluster_ids[1])
    assert len(page.backups) == 40
    path = f"/managed-postgresql/v1/clusters/{emulator.cluster_ids[1]}/backups"
    assert proxy.first_lines == [f"GET {emulator.url}{path} HTTP/1.1"]


async def test_environment_proxies_are_honoured_and_never_see_the_token(
    https: Https, no_proxy_variables: pytest.MonkeyPatch
) -> None:
    async with RecordingProxy() as proxy:
        no_proxy_variables.setenv("HTTPS_PROXY", proxy.url)
        async with pba.BackupsClient(
            pba.IamToken(TOKEN), endpoint=https.url, ssl=https.ca_file
        ) as client:
            page = await client.get_backups_page(https.emulator.cluster_ids[1])
    assert len(page.backups) == 40
    port = URL(https.url).port
    assert proxy.first_lines == [f"CONNECT localhost:{port} HTTP/1.1"]
    # What crossed the proxy was the CONNECT and TLS records: no token, no path.
    assert TOKEN.encode() not in proxy.seen
    assert b"Bearer" not in proxy.seen
    assert b"/managed-postgresql" not in proxy.seen
    [request] = https.emulator.requests
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_proxy_credentials_go_to_the_proxy_only(
    https: Https, no_proxy_variables: pytest.MonkeyPatch
) -> None:
    async with RecordingProxy() as proxy:
        proxied = URL(proxy.url).with_user("me").with_password("secret")
        async with pba.BackupsClient(
            pba.IamToken(TOKEN), endpoint=https.url, ssl=https.ca_file, proxy=str(proxied)
        ) as client:
            await client.get_backups_page(https.emulator.cluster_ids[1])
    assert b"Proxy-Authorization: Basic bWU6c2VjcmV0" in proxy.seen
    assert "Proxy-Authorization" not in https.emulator.requests[0].headers


@pytest.mark.parametrize(
    "setting", [{"trust_env": False}, {"no_proxy": "localhost"}, {"no_proxy": ".localhost"}]
)
async def test_environment_proxies_can_be_turned_off(
    https: Https, no_proxy_variables: pytest.MonkeyPatch, setting: dict[str, object]
) -> None:
    async with RecordingProxy() as proxy:
        no_proxy_variables.setenv("HTTPS_PROXY", proxy.url)
        if "no_proxy" in setting:
            no_proxy_variables.setenv("NO_PROXY", str(setting["no_proxy"]))
        trust_env = setting.get("trust_env", True)
        assert isinstance(trust_env, bool)
        async with pba.BackupsClient(
            pba.IamToken(TOKEN), endpoint=https.url, ssl=https.ca_file, trust_env=trust_env
        ) as client:
            await client.get_backups_page(https.emulator.cluster_ids[1])
    assert proxy.first_lines == []
    assert len(https.emulator.requests) == 1


async def test_an_environment_proxy_never_carries_a_loopback_http_request(
    emulator: Emulator, no_proxy_variables: pytest.MonkeyPatch
) -> None:
    # http:// is for loopback hosts only; through a proxy, the token would be in clear.
    async with RecordingProxy() as proxy:
        no_proxy_variables.setenv("HTTP_PROXY", proxy.url)
        async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url) as client:
            await client.get_backups_page(emulator.cluster_ids[1])
    assert proxy.seen == b""


async def test_a_proxy_that_refuses_connections_is_named() -> None:
    async with Emulator() as gone:
        dead = gone.url
    async with pba.BackupsClient(
        pba.IamToken(TOKEN),
        endpoint="https://localhost:1",
        proxy=dead,
        retry=pba.RetryPolicy.disabled(),
    ) as client:
        with pytest.raises(pba.NetworkError) as caught:
            await client.get_backups_page("c9qk2b1dn8hbg7r0cvf4")
    port = URL(dead).port
    assert str(caught.value).startswith(
        f"could not connect to the proxy 127.0.0.1:{port}: connection refused (1 attempt in "
    )


@pytest.mark.parametrize(
    ("proxy", "error"),
    [(5, TypeError), ("socks5://127.0.0.1:1080", ValueError), ("127.0.0.1:3128", ValueError)],
)
def test_a_bad_proxy_is_refused_by_name(proxy: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="proxy"):
        pba.BackupsClient(pba.IamToken(TOKEN), proxy=proxy)  # type: ignore[arg-type]


# TLS


async def test_ssl_takes_a_ca_bundle_path_or_a_context(https: Https) -> None:
    context = ssl.create_default_context(cafile=https.ca_file)
    for option in (https.ca_file, str(https.ca_file), context):
        async with pba.BackupsClient(
            pba.IamToken(TOKEN), endpoint=https.url, ssl=option, trust_env=False
        ) as client:
            page = await client.get_backups_page(https.emulator.cluster_ids[1])
            assert len(page.backups) == 40


async def test_an_untrusted_certificate_is_refused_in_the_library_s_words(https: Https) -> None:
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), endpoint=https.url, retry=FAST_RETRY, trust_env=False
    ) as client:
        with pytest.raises(pba.NetworkError) as caught:
            await client.get_backups_page(https.emulator.cluster_ids[1])
    port = URL(https.url).port
    message = str(caught.value)
    assert message.startswith(
        f"TLS with localhost:{port} failed: its certificate is not trusted ("
    ), message
    assert "pass ssl= with the CA bundle that signed it (1 attempt in " in message
    assert "Client" not in message
    assert "ssl:default" not in message
    assert not caught.value.retryable
    assert https.emulator.requests == []


@pytest.mark.parametrize(("value", "error"), [(3, TypeError), (True, TypeError)])
def test_a_bad_ssl_is_refused_by_name(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="ssl"):
        pba.BackupsClient(pba.IamToken(TOKEN), ssl=value)  # type: ignore[arg-type]


def test_a_missing_ca_bundle_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ssl: cannot load a CA bundle from .*nothing\.pem"):
        pba.BackupsClient(pba.IamToken(TOKEN), ssl=tmp_path / "nothing.pem")


# The user agent


async def test_user_agent_is_appended_to_the_library_s(emulator: Emulator) -> None:
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), endpoint=emulator.url, user_agent="backup-checker/2.1"
    ) as client:
        await client.get_backups_page(emulator.cluster_ids[1])
    assert emulator.requests[0].headers["User-Agent"] == f"{USER_AGENT} backup-checker/2.1"


@pytest.mark.parametrize(
    ("value", "error"), [(5, TypeError), ("", ValueError), ("a\r\nX-Evil: 1", ValueError)]
)
def test_a_bad_user_agent_is_refused_by_name(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="user_agent"):
        pba.BackupsClient(pba.IamToken(TOKEN), user_agent=value)  # type: ignore[arg-type]


# A session of the caller's


async def test_an_injected_session_is_used_and_left_open(emulator: Emulator) -> None:
    async with aiohttp.ClientSession(headers={"X-App": "mine"}) as session:
        async with pba.BackupsClient(
            pba.IamToken(TOKEN), endpoint=emulator.url, session=session
        ) as client:
            await client.get_backups_page(emulator.cluster_ids[1])
        assert not session.closed
        async with session.get(f"{emulator.url}/_emulator/stats") as response:
            assert response.status == 200
    [request] = [r for r in emulator.requests if "backups" in r.path]
    assert request.headers["X-App"] == "mine"  # it went through the caller's session
    assert request.headers["User-Agent"].startswith("pg-backups-async/")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_a_closed_or_foreign_session_is_refused(emulator: Emulator) -> None:
    session = aiohttp.ClientSession()
    await session.close()
    client = pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url, session=session)
    with pytest.raises(ValueError, match="session is closed"):
        await client.__aenter__()
    async with aiohttp.ClientSession(trust_env=True) as trusting:
        client = pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url, session=trusting)
        with pytest.raises(ValueError, match=r"session must not trust the environment"):
            await client.__aenter__()
    with pytest.raises(TypeError, match=r"session must be an aiohttp\.ClientSession"):
        pba.BackupsClient(pba.IamToken(TOKEN), session=object())  # type: ignore[arg-type]


@pytest.mark.parametrize("option", ["session", "proxy", "ssl", "user_agent"])
def test_transport_replaces_the_session_options(option: str) -> None:
    values: dict[str, object] = {
        "session": None,
        "proxy": "http://127.0.0.1:3128",
        "ssl": ssl.create_default_context(),
        "user_agent": "me/1",
    }
    transport = pba.MockTransport(lambda r: pba.HttpResponse(200))
    with pytest.raises(ValueError, match=f"transport replaces the HTTP session; {option}"):
        if option == "session":
            pba.BackupsClient(
                pba.IamToken(TOKEN),
                transport=transport,
                session=aiohttp.ClientSession.__new__(aiohttp.ClientSession),
            )
        else:
            pba.BackupsClient(pba.IamToken(TOKEN), transport=transport, **{option: values[option]})  # type: ignore[arg-type]


def test_trust_env_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="trust_env"):
        pba.BackupsClient(pba.IamToken(TOKEN), trust_env="no")  # type: ignore[arg-type]


# with_options


async def test_with_options_retries_less_than_its_parent(emulator: Emulator) -> None:
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), endpoint=emulator.url, retry=FAST_RETRY
    ) as client:
        once = client.with_options(retry=pba.RetryPolicy.disabled())
        emulator.inject(Fault(status=503, times=2))
        with pytest.raises(pba.UnavailableError):
            await once.get_backups_page(emulator.cluster_ids[1])
        assert len(emulator.requests) == 1
        page = await client.get_backups_page(emulator.cluster_ids[1])  # retried past the 503
        assert len(page.backups) == 40
        assert len(emulator.requests) == 3
        assert client.retry is FAST_RETRY
        assert once.retry == pba.RetryPolicy.disabled()


async def test_with_options_shares_session_limiter_and_budget(emulator: Emulator) -> None:
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), endpoint=emulator.url, requests_per_second=1000
    ) as client:
        other = client.with_options(retry=FAST_RETRY, max_response_bytes=10_000)
        assert other.rate_limiter is client.rate_limiter
        assert other.retry_budget is client.retry_budget
        await client.get_backups_page(emulator.cluster_ids[1])
        await other.get_backups_page(emulator.cluster_ids[3])  # empty: under the cap
        assert len({r.peer for r in emulator.requests}) == 1  # one pool of connections
        assert client.rate_limiter is not None
        assert client.rate_limiter.acquired == 2
        with pytest.raises(pba.ResponseFormatError, match="10,000-byte cap"):
            await other.get_backups_page(emulator.cluster_ids[0], page_size=1000)


async def test_closing_a_with_options_client_leaves_its_parent_open(emulator: Emulator) -> None:
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url) as client:
        async with client.with_options(timeout=5) as other:
            stream = other.list_backups(emulator.cluster_ids[0], page_size=10)
            await anext(aiter(stream))
        assert stream.closed  # its own streams are closed with it
        with pytest.raises(RuntimeError, match="closed"):
            await other.get_backups_page(emulator.cluster_ids[1])
        page = await client.get_backups_page(emulator.cluster_ids[1])
        assert len(page.backups) == 40
        kept = client.with_options(retry=FAST_RETRY).list_backups(emulator.cluster_ids[0])
        await anext(aiter(kept))
    assert kept.closed  # closing the parent closes its children's streams
    with pytest.raises(RuntimeError, match="closed"):
        await other.get_backups_page(emulator.cluster_ids[1])


async def test_with_options_timeout_applies_to_its_calls_only(emulator: Emulator) -> None:
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), endpoint=emulator.url, retry=pba.RetryPolicy.disabled()
    ) as client:
        quick = client.with_options(timeout=0.2)
        emulator.inject(Fault(status=None, delay=1.0))
        with pytest.raises(pba.NetworkError, match="timed out"):
            await asyncio.wait_for(quick.get_backups_page(emulator.cluster_ids[1]), GUARD)
        emulator.inject(Fault(status=None, delay=0.4))
        page = await asyncio.wait_for(client.get_backups_page(emulator.cluster_ids[1]), GUARD)
        assert len(page.backups) == 40


async def test_with_options_checks_its_arguments() -> None:
    client = pba.BackupsClient(pba.IamToken(TOKEN))
    with pytest.raises(TypeError, match="retry"):
        client.with_options(retry=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        client.with_options(timeout=0)
    with pytest.raises(ValueError, match="max_response_bytes"):
        client.with_options(max_response_bytes=0)
    mocked = pba.BackupsClient(
        pba.IamToken(TOKEN), transport=pba.MockTransport(lambda r: pba.HttpResponse(200))
    )
    with pytest.raises(ValueError, match="timeout cannot be changed"):
        mocked.with_options(timeout=5)
    with pytest.raises(RuntimeError, match="not open"):
        await client.with_options(retry=FAST_RETRY).get_cluster("c9qk2b1dn8hbg7r0cvf4")


# Network errors in the library's words


@pytest.mark.parametrize(
    ("fault", "sentence"),
    [
        (
            Fault(drop=True, times=6),  # aiohttp itself resends once on a reused connection
            r"reading the answer from 127\.0\.0\.1:\d+ failed: the server closed the "
            r"connection \(2 attempts in \d+ ms\)",
        ),
        (
            Fault(status=None, truncate=True, times=2),
            r"reading the answer from 127\.0\.0\.1:\d+ failed: the body was cut off or "
            r"malformed \(2 attempts in \d+ ms\)",
        ),
    ],
    ids=["reset", "cut off"],
)
async def test_read_failures_are_one_sentence(
    emulator: Emulator, fault: Fault, sentence: str
) -> None:
    emulator.inject(fault)
    retry = pba.RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001)
    async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url, retry=retry) as c:
        with pytest.raises(pba.NetworkError) as caught:
            await c.get_backups_page(emulator.cluster_ids[1])
    assert re.fullmatch(sentence, str(caught.value)), str(caught.value)

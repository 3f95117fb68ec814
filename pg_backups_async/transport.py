"""The transport: send one HTTP request, get its status, headers and body back.

This is the only module that does network I/O for the client, and the one place where
aiohttp's exceptions become `NetworkError`. An aiohttp exception is never chained to,
nor left in the context of, an error raised from here: its repr carries the request's
headers, the token among them. `MockTransport` answers from a function, for tests that
need no server.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import os
import ssl
import urllib.request
from base64 import b64encode
from collections.abc import Awaitable, Callable, Mapping
from ssl import SSLContext
from typing import Protocol, runtime_checkable

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from . import __version__
from .checks import check_str
from .errors import ApiError, NetworkError, ResponseFormatError
from .limits import DEFAULT_CONNECTION_LIMIT, DEFAULT_TIMEOUT, MAX_CONNECT_TIMEOUT
from .sanitize import REDACTED, redact

USER_AGENT = f"pg-backups-async/{__version__} aiohttp/{aiohttp.__version__}"

# Failures where a new attempt meets the same wall: TLS trust and malformed URLs.
_PERMANENT_CLIENT_ERRORS = (
    aiohttp.ClientSSLError,
    aiohttp.ServerFingerprintMismatch,
    aiohttp.InvalidURL,
)


def _headers(value: Mapping[str, str]) -> CIMultiDictProxy[str]:
    if isinstance(value, CIMultiDictProxy):
        return value
    return CIMultiDictProxy(CIMultiDict(value))


_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def _headers_repr(headers: Mapping[str, str]) -> str:
    shown = {
        name: REDACTED if name.lower() in _SECRET_HEADERS else value
        for name, value in headers.items()
    }
    return repr(shown)


def _body_repr(body: bytes | None) -> str:
    return "None" if body is None else f"<{len(body)} bytes>"


@attrs.frozen
class HttpRequest:
    """One HTTP request, as the transport sends it.

    Its repr shows neither the `Authorization` header nor the body (a token exchange's
    body carries a secret).
    """

    method: str
    url: URL
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=_headers_repr)
    body: bytes | None = attrs.field(default=None, repr=_body_repr)

    @property
    def client_request_id(self) -> str | None:
        """The `x-client-request-id` this request carries, if any."""
        return self.headers.get("x-client-request-id")


@attrs.frozen
class HttpResponse:
    """An HTTP answer: status, headers (case-insensitive) and the whole body."""

    status: int
    headers: CIMultiDictProxy[str] = attrs.field(factory=dict, converter=_headers)
    body: bytes = b""


@runtime_checkable
class Transport(Protocol):
    """What the client sends requests through."""

    async def send(
        self, request: HttpRequest, *, max_bytes: int, deadline: float | None = None
    ) -> HttpResponse:
        """The answer to `request`, or `NetworkError` when none came.

        A body over `max_bytes` (after decompression) raises `ResponseFormatError`;
        `deadline` (event-loop time) cuts the request off, with `NetworkError`.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; the transport is not used again."""
        ...


def too_large(request: HttpRequest, status: int, headers: Mapping[str, str], cap: int) -> ApiError:
    """The error for an answer over the cap on response bodies."""
    return ResponseFormatError(
        f"the answer is over the {cap:,}-byte cap on responses",
        http_status=status,
        request_id=redact(headers.get("x-request-id") or "", request_secrets(request)) or None,
        client_request_id=request.client_request_id,
    )


def _where(request: HttpRequest) -> str:
    url = request.url
    host = url.host or ""
    return f"[{host}]:{url.port}" if ":" in host else f"{host}:{url.port}"


def _timed_out(request: HttpRequest, deadline_passed: bool) -> NetworkError:
    return NetworkError(
        f"the call's deadline (max_time) passed while waiting for {_where(request)}"
        if deadline_passed
        else f"the request to {_where(request)} timed out (the attempt's timeout)",
        client_request_id=request.client_request_id,
    )


def request_secrets(request: HttpRequest) -> tuple[str, ...]:
    """The credentials a request carries in its headers, never to be shown."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return (credentials,) if scheme and credentials else ()


def _os_reason(error: OSError | None) -> str:
    """An OS error in words: `connection refused`, not `[Errno 111] Connect call failed`."""
    if error is None:
        return "no reason given"
    if error.errno:
        return os.strerror(error.errno).lower()
    return str(error) or type(error).__name__


def _describe(request: HttpRequest, exc: aiohttp.ClientError) -> str:
    """What failed, in the library's words: never an aiohttp class name."""
    where = _where(request)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = getattr(exc.certificate_error, "verify_message", "") or "not trusted"
        return (
            f"TLS with {where} failed: its certificate is not trusted ({reason}); "
            "pass ssl= with the CA bundle that signed it"
        )
    if isinstance(exc, aiohttp.ClientSSLError):
        reason = getattr(exc.os_error, "reason", None) or _os_reason(exc.os_error)
        return f"TLS with {where} failed: {str(reason).lower().replace('_', ' ')}"
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        return f"TLS with {where} failed: the certificate's fingerprint does not match"
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return f"could not connect to the proxy {exc.host}:{exc.port}: {_os_reason(exc.os_error)}"
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return f"the proxy refused the tunnel to {where}: HTTP {exc.status} {exc.message}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if type(exc).__name__ == "ClientConnectorDNSError":
            return f"could not resolve {exc.host}: {_os_reason(exc.os_error)}"
        return f"could not connect to {where}: {_os_reason(exc.os_error)}"
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return f"the request to {where} timed out ({exc})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"reading the answer from {where} failed: the server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"reading the answer from {where} failed: the body was cut off or malformed"
    if isinstance(exc, aiohttp.ClientOSError):
        return f"the connection to {where} failed: {_os_reason(exc)}"
    if isinstance(exc, aiohttp.InvalidURL):
        return f"the URL for {where} is not valid"
    if isinstance(exc, aiohttp.ClientResponseError):
        # Its message is the server's reason phrase, which may echo the request.
        return f"the answer from {where} is not valid HTTP: {exc.message}"
    return f"the request to {where} failed" + (f": {exc}" if str(exc) else "")


def _network_error(request: HttpRequest, exc: aiohttp.ClientError) -> NetworkError:
    return NetworkError(
        redact(_describe(request, exc), request_secrets(request)),
        client_request_id=request.client_request_id,
        retryable=not isinstance(exc, _PERMANENT_CLIENT_ERRORS),
    )


def user_agent(suffix: str | None) -> str:
    """The `User-Agent`: the library's own, then `suffix` (an app's `name/version`)."""
    if suffix is None:
        return USER_AGENT
    check_str(suffix, "user_agent")
    if not suffix.strip() or not suffix.isprintable() or not suffix.isascii():
        raise ValueError("user_agent must be printable ASCII, such as 'my-app/1.2'")
    return f"{USER_AGENT} {suffix.strip()}"


def check_ssl(value: SSLContext | str | os.PathLike[str] | None) -> SSLContext | None:
    """An `ssl.SSLContext`, or one that trusts the CA bundle at a path (PEM)."""
    if value is None or isinstance(value, SSLContext):
        return value
    if isinstance(value, bool) or not isinstance(value, str | os.PathLike):
        raise TypeError(
            f"ssl must be an ssl.SSLContext or a CA bundle's path, not {type(value).__name__}"
        )
    path = os.fspath(value)
    try:
        return ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as error:
        reason = error.strerror or str(error) if isinstance(error, OSError) else str(error)
        raise ValueError(f"ssl: cannot load a CA bundle from {path!r}: {reason}") from None


def check_proxy(value: str | URL | None) -> URL | None:
    """A proxy's URL: `http://` or `https://`, host and port, perhaps user and password."""
    if value is None:
        return None
    if not isinstance(value, str | URL):
        raise TypeError(f"proxy must be a str or yarl.URL, not {type(value).__name__}")
    url = URL(value)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("proxy must look like http://host:port (or https://)")
    if not url.host.isprintable() or any(c.isspace() for c in url.host):
        raise ValueError("proxy must look like http://host:port (or https://)")
    return url


def _split_auth(proxy: URL | None) -> tuple[URL | None, Mapping[str, str] | None]:
    """The proxy without its user and password, and the header that carries them."""
    if proxy is None or proxy.user is None:
        return proxy, None
    pair = f"{proxy.user}:{proxy.password or ''}".encode()
    return proxy.with_user(None), {"Proxy-Authorization": f"Basic {b64encode(pair).decode()}"}


class _Proxies:
    """Which proxy each request goes through: the explicit one, else the environment's
    (`HTTPS_PROXY` and `NO_PROXY`, read once) for https requests. An http:// endpoint is
    a loopback host (`protocol.validate_endpoint`): no environment proxy carries its
    requests, which would show the proxy the token."""

    def __init__(self, proxy: URL | None, trust_env: bool) -> None:
        self.explicit = proxy
        self.environment: dict[str, str] = {}
        if proxy is None and trust_env:
            found = urllib.request.getproxies_environment()
            self.environment = {k: v for k, v in found.items() if k in ("https", "no")}
        self._chosen: dict[tuple[str, str, int | None], URL | None] = {}

    def for_url(self, scheme: str, host: str, port: int | None) -> URL | None:
        """The proxy for a request to this scheme, host and port, or None."""
        if self.explicit is not None or not self.environment:
            return self.explicit
        key = (scheme, host, port)
        if key not in self._chosen:
            if len(self._chosen) > 64:  # a client talks to two or three hosts
                self._chosen.clear()
            self._chosen[key] = self._choose(scheme, host, port)
        return self._chosen[key]

    def _choose(self, scheme: str, host: str, port: int | None) -> URL | None:
        chosen = self.environment.get(scheme) if scheme == "https" else None
        if not chosen or _bypassed(host, port, self.environment):
            return None
        try:
            return check_proxy(chosen if "://" in chosen else f"http://{chosen}")
        except ValueError:
            return None  # as urllib and aiohttp do: an unusable variable is not a proxy


def _bypassed(host: str, port: int | None, environment: Mapping[str, str]) -> bool:
    """Whether `NO_PROXY` names the host: `*`, the host, a domain it is in (`.example.com`
    or `example.com`), each perhaps with `:port`; as curl and urllib read it."""
    host = host.lower().strip("[]")
    for entry in environment.get("no", "").lower().split(","):
        entry = entry.strip()
        if entry == "*":
            return True
        name, _, wanted = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if wanted and str(port) != wanted:
            continue
        name = name.strip("[]").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


class AiohttpTransport:
    """A transport over one `aiohttp.ClientSession`: pooled connections, no redirects,
    no cookies.

    Create it inside a running event loop. `session` is one the caller owns (its
    connector, cookie jar and defaults are its own; not one made with `trust_env=True`):
    `aclose()` then leaves it open;
    otherwise the transport makes one, with no cookie jar, and `aclose()` closes it.
    `proxy` (a URL) carries every request; else, with `trust_env`, the environment's
    `HTTPS_PROXY` and `NO_PROXY`, read now, say which https requests a proxy carries
    (http:// endpoints are loopback hosts: never through a proxy of the environment).
    An https request through a proxy is always tunnelled (`CONNECT`): the proxy never
    sees its headers. `ssl` is the TLS context for https requests
    (None: the system's trust store); `user_agent` is the whole `User-Agent`.
    """

    def __init__(
        self,
        *,
        timeout: aiohttp.ClientTimeout | None = None,
        connection_limit: int = DEFAULT_CONNECTION_LIMIT,
        session: aiohttp.ClientSession | None = None,
        proxy: str | URL | None = None,
        trust_env: bool = True,
        ssl: SSLContext | str | os.PathLike[str] | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        proxy, ssl = check_proxy(proxy), check_ssl(ssl)
        check_str(user_agent, "user_agent")
        timeout = timeout or aiohttp.ClientTimeout(
            total=DEFAULT_TIMEOUT, sock_connect=MAX_CONNECT_TIMEOUT
        )
        self._timeout = timeout
        self._attempt_time = timeout.total
        self._ssl: SSLContext | bool = True if ssl is None else ssl
        self._proxies = _Proxies(proxy, trust_env)
        self._headers = {"User-Agent": user_agent}
        self._owned = session is None
        if session is None:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=connection_limit),
                timeout=timeout,
                headers=self._headers,
                raise_for_status=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # proxies are chosen here; never ~/.netrc over our token
            )
        elif not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"session must be an aiohttp.ClientSession, not {type(session).__name__}"
            )
        elif session.closed:
            raise ValueError("session is closed; pass an open aiohttp.ClientSession")
        elif session.trust_env:
            # It would add ~/.netrc credentials beside the token, and send http:// requests
            # (the token in clear) through the environment's proxy.
            raise ValueError(
                "session must not trust the environment (trust_env=True): pass "
                "trust_env to the client instead, which applies HTTPS_PROXY and NO_PROXY"
            )
        self._session = session

    def with_timeout(self, timeout: aiohttp.ClientTimeout) -> AiohttpTransport:
        """A transport over the same session and settings with another timeout per
        attempt; closing it leaves the session open."""
        other = copy.copy(self)
        other._timeout = timeout
        other._attempt_time = timeout.total
        other._owned = False
        return other

    async def send(
        self, request: HttpRequest, *, max_bytes: int, deadline: float | None = None
    ) -> HttpResponse:
        """The answer to `request`; see `Transport.send`."""
        cut = None
        if deadline is not None and (
            self._attempt_time is None
            or asyncio.get_running_loop().time() + self._attempt_time > deadline
        ):
            cut = asyncio.timeout_at(deadline)  # else the attempt's own timeout comes first
        failure: NetworkError
        try:
            if cut is None:
                return await self._send(request, max_bytes)
            async with cut:
                return await self._send(request, max_bytes)
        except aiohttp.ClientError as exc:
            failure = _network_error(request, exc)
        except TimeoutError:
            failure = _timed_out(request, cut is not None and cut.expired())
        raise failure  # outside the except block: no aiohttp exception in its context

    async def _send(self, request: HttpRequest, max_bytes: int) -> HttpResponse:
        url = request.url
        chosen = self._proxies.for_url(url.scheme, url.host or "", url.port)
        proxy, proxy_headers = _split_auth(chosen)
        headers = request.headers
        if not self._owned:  # a session of the caller's, or shared: its defaults are not ours
            headers = {**self._headers, **headers}
        async with self._session.request(
            request.method,
            url,
            headers=headers,
            data=request.body,
            allow_redirects=False,
            proxy=proxy,
            proxy_headers=proxy_headers,
            ssl=self._ssl,
            timeout=self._timeout,
        ) as response:
            body = await _read(request, response, max_bytes)
            return HttpResponse(response.status, response.headers, body)

    async def aclose(self) -> None:
        """Close the session and its connections, unless the session is the caller's."""
        if self._owned:
            await self._session.close()


async def _read(request: HttpRequest, response: aiohttp.ClientResponse, cap: int) -> bytes:
    """The body, or `ResponseFormatError` once it passes `cap` bytes."""
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
    raise too_large(request, response.status, response.headers, cap)


Handler = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]
"""A function (plain or async) that answers a request, for `MockTransport`."""


class MockTransport:
    """A transport that answers every request with `handler(request)`: no network.

    For tests of code that uses a client: the handler may return an `HttpResponse` or
    raise `NetworkError` as a failed connection would. `requests` lists what was sent.
    The cap on bodies and the deadline apply as they do over the network.
    """

    def __init__(self, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        self._handler = handler
        self.requests: list[HttpRequest] = []

    async def send(
        self, request: HttpRequest, *, max_bytes: int, deadline: float | None = None
    ) -> HttpResponse:
        """The handler's answer to `request`; see `Transport.send`."""
        self.requests.append(request)
        cut = asyncio.timeout_at(deadline)
        try:
            async with cut:
                answer = self._handler(request)
                if inspect.isawaitable(answer):
                    answer = await answer
        except TimeoutError:
            failure = _timed_out(request, cut.expired())
        else:
            if not isinstance(answer, HttpResponse):
                raise TypeError(
                    f"a MockTransport handler must return an HttpResponse, "
                    f"not {type(answer).__name__}"
                )
            if len(answer.body) > max_bytes:
                raise too_large(request, answer.status, answer.headers, max_bytes)
            return answer
        raise failure

    async def aclose(self) -> None:
        """Nothing to release."""

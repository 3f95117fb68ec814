"""The transport: send one HTTP request, get its status, headers and body back.

This is the only module that does network I/O for the client, and the one place where
aiohttp's exceptions become `NetworkError`. An aiohttp exception is never chained to,
nor left in the context of, an error raised from here: its repr carries the request's
headers, the token among them. `MockTransport` answers from a function, for tests that
need no server.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, runtime_checkable

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from . import __version__
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


def _timed_out(request: HttpRequest, deadline_passed: bool) -> NetworkError:
    return NetworkError(
        "TimeoutError: the call's deadline (max_time) passed"
        if deadline_passed
        else "TimeoutError",
        client_request_id=request.client_request_id,
    )


def request_secrets(request: HttpRequest) -> tuple[str, ...]:
    """The credentials a request carries in its headers, never to be shown."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return (credentials,) if scheme and credentials else ()


def _network_error(request: HttpRequest, exc: aiohttp.ClientError) -> NetworkError:
    if isinstance(exc, aiohttp.ClientResponseError):
        # Its str() names the URL and status only; its repr would carry the headers.
        # Its message is the server's reason phrase, which may echo the request.
        text = f"{type(exc).__name__}: {exc.message}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return NetworkError(
        redact(text, request_secrets(request)),
        client_request_id=request.client_request_id,
        retryable=not isinstance(exc, _PERMANENT_CLIENT_ERRORS),
    )


class AiohttpTransport:
    """A transport over one `aiohttp.ClientSession`: pooled connections, no redirects.

    Create it inside a running event loop; `aclose()` closes the session.
    """

    def __init__(
        self,
        *,
        timeout: aiohttp.ClientTimeout | None = None,
        connection_limit: int = DEFAULT_CONNECTION_LIMIT,
    ) -> None:
        timeout = timeout or aiohttp.ClientTimeout(
            total=DEFAULT_TIMEOUT, sock_connect=MAX_CONNECT_TIMEOUT
        )
        self._attempt_time = timeout.total
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connection_limit),
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
            raise_for_status=False,
        )

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
        async with self._session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.body,
            allow_redirects=False,
        ) as response:
            body = await _read(request, response, max_bytes)
            return HttpResponse(response.status, response.headers, body)

    async def aclose(self) -> None:
        """Close the session and its connections."""
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

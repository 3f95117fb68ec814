"""Faults the emulator serves in place of an answer, and the service's error format."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import attrs
from aiohttp import web

from ..errors import GRPC_CODE_NAMES
from .encoding import dumps

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


class ApiFailure(Exception):
    """An answer in the service's error format."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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

    @property
    def kind(self) -> str:
        """What kind of fault it is, for counts and records."""
        if self.drop:
            return "reset before the answer"
        if self.stall:
            return "stalled body"
        if self.truncate:
            return "body cut off"
        if self.status is None:
            return "delay"
        if self.status == 200:
            return "200 that is not the JSON promised"
        if self.retry_after is not None:
            return f"{self.status} with Retry-After"
        return str(self.status)

    def response(self, request_id: str) -> web.Response:
        """The answer this fault gives in place of the real one (`status` is set)."""
        status = self.status or 200
        if self.body is not None:
            response = web.Response(status=status, body=self.body)
        elif status == 502:
            response = web.Response(status=502, body=_PROXY_PAGE, content_type="text/html")
        else:
            response = status_response(status, _fault_message(status), request_id)
        response.headers.update(self.headers)
        if self.retry_after is not None:
            response.headers["Retry-After"] = self.retry_after
        response.headers["x-request-id"] = request_id
        return response


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


async def cut_off(
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


def _fault_message(status: int) -> str:
    name = GRPC_CODE_NAMES.get(_GRPC_CODE_FOR_STATUS.get(status, 2), "UNKNOWN")
    return f"Scripted fault: {name}"


def status_response(status: int, message: str, request_id: str) -> web.Response:
    """An error answer with a `google.rpc.Status` body, as the service sends."""
    body = {
        "code": _GRPC_CODE_FOR_STATUS.get(status, 2),
        "message": message,
        "details": [
            {"@type": "type.googleapis.com/google.rpc.RequestInfo", "requestId": request_id}
        ],
    }
    return web.Response(status=status, body=dumps(body), content_type="application/json")

"""The exceptions the service's answers turn into, all rooted at `ApiError`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar, Self

from .limits import MAX_SERVER_TEXT

# google.rpc.Code names, for messages.
GRPC_CODE_NAMES = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}

RETRYABLE_HTTP_STATUSES = frozenset({429, 500, 502, 503, 504})


def clip(text: str, limit: int = MAX_SERVER_TEXT) -> str:
    """`text` cut to at most `limit` characters, saying how many were cut; idempotent."""
    if len(text) <= limit:
        return text
    note = f"... ({len(text):,} characters, cut)"
    return text[: max(0, limit - len(note))] + note


class ApiError(Exception):
    """The service, or the way to it, did not give the answer asked for.

    `http_status` is None when no answer arrived; `code` is the gRPC code from the
    body when it had one; `request_id` is the service's id for the request and
    `client_request_id` the one this client sent; `page_token` is, for a list call's
    request, the token of the page asked for: where to resume from.

    The message and the request id hold at most `max_text` characters (2000 by
    default; set `ApiError.max_text` to change it): a server's text is cut there, so
    that no answer can make an error, a log line or an exporter's `/healthz` large.
    """

    max_text: ClassVar[int] = MAX_SERVER_TEXT

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: int | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
        retry_after: float | None = None,
        page_token: str | None = None,
    ) -> None:
        message = clip(message, self.max_text)
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.request_id = None if request_id is None else clip(request_id, self.max_text)
        self.client_request_id = client_request_id
        self.retry_after = retry_after
        self.page_token = page_token

    def _fields(self) -> dict[str, Any]:
        """The constructor's keywords that give this error."""
        return {
            "http_status": self.http_status,
            "code": self.code,
            "request_id": self.request_id,
            "client_request_id": self.client_request_id,
            "retry_after": self.retry_after,
            "page_token": self.page_token,
        }

    def evolve(self, **changes: Any) -> Self:
        """A new error of the same class, with `changes` to its keywords (the message
        too); this one is left as it is."""
        fields = {"message": self.message, **self._fields(), **changes}
        return type(self)(fields.pop("message"), **fields)

    @property
    def retryable(self) -> bool:
        """Whether repeating the same idempotent request may succeed."""
        return self.http_status in RETRYABLE_HTTP_STATUSES

    def __str__(self) -> str:
        parts = []
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.code is not None:
            parts.append(GRPC_CODE_NAMES.get(self.code, f"code {self.code}"))
        head = " ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, http_status={self.http_status!r}, "
            f"code={self.code!r}, request_id={self.request_id!r})"
        )


class InvalidArgumentError(ApiError):
    """HTTP 400: the service refused the request's arguments."""


class UnauthenticatedError(ApiError):
    """HTTP 401: the IAM token is missing, malformed or expired."""


class PermissionDeniedError(ApiError):
    """HTTP 403: the credentials may not read this resource."""


class NotFoundError(ApiError):
    """HTTP 404: no such resource (or it is hidden from these credentials)."""


class ResourceExhaustedError(ApiError):
    """HTTP 429: a quota or rate limit was hit."""


class InternalError(ApiError):
    """HTTP 500: the service failed."""


class UnavailableError(ApiError):
    """HTTP 502, 503 or 504: the service or a proxy in front of it is unavailable."""


class NetworkError(ApiError):
    """No answer arrived: the connection failed, was reset or timed out.

    It takes `ApiError`'s keywords, and `retryable`."""

    def __init__(self, message: str, *, retryable: bool = True, **fields: Any) -> None:
        super().__init__(message, **fields)
        self._retryable = retryable

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "retryable": self._retryable}

    @property
    def retryable(self) -> bool:
        """Whether a new attempt may get an answer (not after a TLS or URL failure)."""
        return self._retryable


class AuthError(ApiError):
    """No IAM token could be had: the exchange failed, or no credentials were found.

    It takes `ApiError`'s keywords, and `retryable` (None: by the HTTP status)."""

    def __init__(self, message: str, *, retryable: bool | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self._retryable = retryable

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "retryable": self._retryable}

    @property
    def retryable(self) -> bool:
        """Whether the exchange may succeed if tried again (429, 5xx, no answer)."""
        return super().retryable if self._retryable is None else self._retryable


class ResponseFormatError(ApiError):
    """The answer is not the JSON the API promises; `field` names where, when known.

    It takes `ApiError`'s keywords, and `field`."""

    def __init__(self, message: str, *, field: str | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.field = None if field is None else clip(field, self.max_text)

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "field": self.field}

    @property
    def retryable(self) -> bool:
        """Never: the same request gets the same answer."""
        return False


_CLASS_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidArgumentError,
    401: UnauthenticatedError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: ResourceExhaustedError,
    500: InternalError,
    502: UnavailableError,
    503: UnavailableError,
    504: UnavailableError,
}


def error_class_for_status(http_status: int) -> type[ApiError]:
    """The `ApiError` subclass for a non-2xx HTTP status."""
    return _CLASS_BY_STATUS.get(http_status, ApiError)


def status_phrase(http_status: int) -> str:
    """The reason phrase for an HTTP status, or an empty string."""
    try:
        return HTTPStatus(http_status).phrase
    except ValueError:
        return ""

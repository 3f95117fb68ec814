"""The API's requests and answers as pure functions: validate, build, interpret. No I/O.

A `Call` declares one API call as data (`calls` holds them all); `Call.request` checks
the arguments and builds its `Request`; `read_response` turns an answer into the call's
result or a complete `ApiError`.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import attrs
from yarl import URL

from . import wire
from .checks import check_optional_int, check_str
from .errors import ApiError, ResponseFormatError, error_class_for_status, status_phrase
from .limits import (
    MAX_BACKUP_ID_LENGTH,
    MAX_FILTER_LENGTH,
    MAX_ID_LENGTH,
    MAX_PAGE_SIZE,
    MAX_PAGE_TOKEN_LENGTH,
)
from .models import Page
from .sanitize import redact

R = TypeVar("R")

# RFC 3986 unreserved characters: nothing in an id can be read as path syntax.
_ID_PATTERN = re.compile(r"[A-Za-z0-9._~-]+")
# Backup ids add ':' (a path character that separates nothing), sent as is, as the
# service's gateway would not decode "%3A" back into the id.
_BACKUP_ID_PATTERN = re.compile(r"[A-Za-z0-9._~:-]+")


@attrs.frozen
class Service:
    """An API host: its name, for messages, and its public base URL."""

    name: str
    default_endpoint: str


@attrs.frozen
class Request:
    """A GET request to a service: a percent-encoded path, and query pairs."""

    service: Service
    path: str
    query: tuple[tuple[str, str], ...] = ()

    def url(self, base: URL) -> URL:
        """The full URL under the service's base URL."""
        return base.with_path(self.path, encoded=True).with_query(self.query)


@attrs.frozen
class Param:
    """One argument of a call: its keyword, its check, and where and how it is sent.

    `check(value)` gives the value to send (None: leave it out) or raises `ValueError`
    or `TypeError`. `query` is its query-string key; None makes it the path's `{name}`,
    percent-encoded but for the characters in `safe`.
    """

    name: str
    check: Callable[[Any], Any]
    query: str | None = None
    encode: Callable[[Any], str] = str
    safe: str = ""


@attrs.frozen
class Call(Generic[R]):
    """One API call, declared: its name, service, path, arguments and result.

    A call whose result is a `Page` is a list call: its answer holds at most as many
    items as were asked for (`page_size`), and at most the API's 1000.
    """

    name: str
    service: Service
    path: str
    """A template: `/managed-postgresql/v1/clusters/{cluster_id}/backups`."""
    params: tuple[Param, ...]
    result: type[R]
    _names: frozenset[str] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_names", frozenset(p.name for p in self.params))

    @property
    def paged(self) -> bool:
        """Whether it is a list call, answered a page at a time."""
        return issubclass(self.result, Page)

    def request(self, arguments: Mapping[str, Any]) -> Request:
        """The request for these arguments, each checked; `ValueError` or `TypeError`
        for a bad or unknown one, before anything is sent."""
        unknown = arguments.keys() - self._names
        if unknown:
            raise TypeError(f"{self.name} takes no argument {sorted(unknown)[0]!r}")
        segments: dict[str, str] = {}
        query: list[tuple[str, str]] = []
        for param in self.params:
            value = param.check(arguments.get(param.name))
            if param.query is None:
                segments[param.name] = quote(param.encode(value), safe=param.safe)
            elif value is not None:
                query.append((param.query, param.encode(value)))
        return Request(self.service, self.path.format_map(segments), tuple(query))

    def parser(self, page_size: int | None = None) -> Callable[[bytes], R]:
        """The answer's parser; a list call's refuses more items than `page_size` (more
        than the API's 1000 when None)."""
        if self.paged:
            return functools.partial(
                wire.parse_page, cls=self.result, max_items=page_size or MAX_PAGE_SIZE
            )
        return functools.partial(wire.parse, cls=self.result)


def validate_endpoint(endpoint: str, name: str = "endpoint") -> URL:
    """A service's base URL; `http://` is refused unless the host is loopback.

    The host is a DNS name (letters, digits, `-`, `_` and `.`; an internationalized
    name in its ASCII form), an IPv4 address or an IPv6 address in brackets: no
    whitespace, control or format character anywhere in the URL.
    """
    check_str(endpoint, name)
    odd = next((c for c in endpoint if c.isspace() or not c.isprintable()), None)
    if odd is not None:
        raise ValueError(
            f"{name} contains {odd!r}: a URL holds no whitespace, control or format character"
        )
    shape = f"{name} must look like https://host[:port], got {endpoint!r}"
    try:
        url = URL(endpoint)
        host = url.raw_host  # an internationalized name in its ASCII (IDNA) form
    except (ValueError, UnicodeError):
        raise ValueError(shape) from None
    if host is None or url.scheme not in ("https", "http") or not _is_host(host):
        raise ValueError(shape)
    if url.user is not None or url.password is not None:
        raise ValueError(f"{name} must not carry credentials; pass them as credentials=")
    if url.path not in ("", "/") or url.query_string or url.fragment:
        raise ValueError(f"{name} must be scheme://host[:port] only, got {endpoint!r}")
    if url.scheme == "http" and not is_loopback(url.host or host):
        raise ValueError(
            f"refusing plain http:// to {url.host}: tokens would travel unencrypted; "
            "use https:// (http:// is allowed only for loopback hosts such as the emulator)"
        )
    return url.with_path("")


# Letters, digits, '-' inside a label, and '_' (which container networks use).
_DNS_NAME = re.compile(
    r"(?=.{1,253}\.?$)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
    r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?"
)


def _is_host(host: str) -> bool:
    """Whether `host` (yarl's raw host) is a DNS name or an IP address."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return _DNS_NAME.fullmatch(host) is not None
    return True


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine: `localhost`, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def validate_id(
    value: str,
    *,
    name: str = "cluster_id",
    max_length: int = MAX_ID_LENGTH,
    pattern: re.Pattern[str] = _ID_PATTERN,
) -> str:
    """A resource id that is safe as one URL path segment, or `ValueError`."""
    if not check_str(value, name):
        raise ValueError(f"{name} must not be empty")
    if len(value) > max_length:
        raise ValueError(f"{name} is {len(value)} characters long; the API allows {max_length}")
    if not pattern.fullmatch(value) or value in (".", ".."):
        bad = next((c for c in value if not pattern.fullmatch(c)), value)
        allowed = "letters, digits and " + ", ".join(
            repr(c) for c in "-_.~:" if pattern.fullmatch(c)
        )
        raise ValueError(f"{name} {value!r} contains {bad!r}: ids are {allowed}")
    return value


def id_check(name: str) -> Callable[[Any], str]:
    """The check of a required id argument called `name`."""
    return functools.partial(validate_id, name=name)


def optional_id_check(name: str) -> Callable[[Any], str | None]:
    """The check of an optional id argument called `name` (None or "" leave it out)."""

    def check(value: Any) -> str | None:
        return None if value is None or value == "" else validate_id(value, name=name)

    return check


def validate_backup_id(backup_id: str) -> str:
    """A backup id (`<clusterId>:<name>`) safe as one URL path segment."""
    return validate_id(
        backup_id, name="backup_id", max_length=MAX_BACKUP_ID_LENGTH, pattern=_BACKUP_ID_PATTERN
    )


def validate_filter(filter: str | None) -> str | None:
    """A list call's filter of at most 1000 characters, such as `name="prod"`."""
    if filter is None or filter == "":
        return None
    if not isinstance(filter, str):
        raise TypeError(f"filter must be a str or None, not {type(filter).__name__}")
    if len(filter) > MAX_FILTER_LENGTH:
        raise ValueError(
            f"filter is {len(filter)} characters long; the API allows {MAX_FILTER_LENGTH}"
        )
    return filter


def validate_page_size(page_size: int | None) -> int | None:
    """`page_size` in 1..1000, or None for the server's default."""
    checked = check_optional_int(page_size, "page_size")
    if checked is None:
        return None
    if not 1 <= checked <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    return page_size


def validate_page_token(page_token: str | None) -> str | None:
    """A page token of at most 100 characters; None or "" both mean the first page."""
    if page_token is None or page_token == "":
        return None
    if not isinstance(page_token, str):
        raise TypeError(f"page_token must be a str or None, not {type(page_token).__name__}")
    if len(page_token) > MAX_PAGE_TOKEN_LENGTH:
        raise ValueError(
            f"page_token is {len(page_token)} characters long; "
            f"the API allows {MAX_PAGE_TOKEN_LENGTH}"
        )
    return page_token


def validate_max_items(max_items: int | None) -> int | None:
    """`max_items` of at least 1, or None for no limit."""
    return check_optional_int(max_items, "max_items", minimum=1)


def validate_max_pages(max_pages: int | None) -> int | None:
    """`max_pages` of at least 1, or None for no limit."""
    return check_optional_int(max_pages, "max_pages", minimum=1)


PAGE_SIZE = Param("page_size", validate_page_size, query="pageSize")
PAGE_TOKEN = Param("page_token", validate_page_token, query="pageToken")
FILTER = Param("filter", validate_filter, query="filter")


def request_headers(token: str, client_request_id: str) -> dict[str, str]:
    """The headers of an API request: the token travels only in `Authorization`."""
    return {
        "Accept": "application/json",
        "Authorization": f"Bearer {token}",
        "x-client-request-id": client_request_id,
    }


@attrs.frozen
class Context:
    """What an error of one attempt says besides the answer: the request's ids, the
    page asked for, and the secrets its text must not show."""

    client_request_id: str | None = None
    page_token: str | None = None
    secrets: tuple[str, ...] = ()


def read_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    parse: Callable[[bytes], R],
    context: Context = Context(),
) -> R:
    """A 2xx answer's body parsed, or the complete `ApiError` for anything else."""
    if 200 <= status < 300:
        try:
            return parse(body)
        except ResponseFormatError as error:
            failure = ResponseFormatError(
                redact(error.message, context.secrets),
                field=error.field,
                http_status=status,
                code=error.code,
                request_id=_request_id(headers.get("x-request-id"), context),
                client_request_id=context.client_request_id,
                page_token=context.page_token,
            )
        raise failure
    raise error_from_response(status, body, headers, context)


def _request_id(value: str | None, context: Context) -> str | None:
    return None if value is None else redact(value, context.secrets)


_RETRY_AFTER_SECONDS = re.compile(r"[0-9]{1,10}")  # ASCII only: isdigit() takes "²"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (seconds or an HTTP date), or None.

    Total: whatever the header holds, the answer is None or a finite number of seconds
    of at least 0, never an exception (a header is the server's, and hostile until read).
    """
    if not value or not isinstance(value, str):
        return None
    value = value.strip()
    if _RETRY_AFTER_SECONDS.fullmatch(value):
        return float(value)
    if not value.isascii() or len(value) > 64:  # an HTTP date is 29 characters
        return None
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def error_from_response(
    http_status: int,
    body: bytes,
    headers: Mapping[str, str],
    context: Context = Context(),
) -> ApiError:
    """The `ApiError` for a non-2xx answer, from its status, `google.rpc.Status` and headers."""
    code, message, detail_request_id = wire.parse_status(body)
    if message is None:
        content_type = headers.get("Content-Type", "no content type")
        phrase = status_phrase(http_status)
        message = f"{phrase or 'error'} ({len(body)} bytes of {content_type.split(';')[0]})"
    return error_class_for_status(http_status)(
        redact(message, context.secrets),
        http_status=http_status,
        code=code,
        request_id=_request_id(headers.get("x-request-id") or detail_request_id, context),
        client_request_id=context.client_request_id,
        retry_after=parse_retry_after(headers.get("Retry-After")),
        page_token=context.page_token,
    )

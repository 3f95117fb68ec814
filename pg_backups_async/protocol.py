"""The API's requests and answers as pure functions: validate, build, interpret. No I/O."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Generic, TypeVar
from urllib.parse import quote

import attrs
from yarl import URL

from . import wire
from .checks import check_optional_int, check_str
from .errors import ApiError, ResponseFormatError, error_class_for_status, status_phrase
from .models import Backup, BackupsPage, Cluster, ClustersPage
from .wire import MAX_PAGE_SIZE, MAX_PAGE_TOKEN_LENGTH, parse_status

_T = TypeVar("_T")

API_ENDPOINT = "https://mdb.api.cloud.yandex.net"
API_PREFIX = "/managed-postgresql/v1"
MAX_ID_LENGTH = 50
MAX_BACKUP_ID_LENGTH = 256  # no limit is declared; backup ids are "<clusterId>:<name>"
MAX_FILTER_LENGTH = 1000
SERVER_DEFAULT_PAGE_SIZE = 100

# RFC 3986 unreserved characters: nothing in an id can be read as path syntax.
_ID_PATTERN = re.compile(r"[A-Za-z0-9._~-]+")
# Backup ids add ':' (a path character that separates nothing), sent as is, as the
# service's gateway would not decode "%3A" back into the id.
_BACKUP_ID_PATTERN = re.compile(r"[A-Za-z0-9._~:-]+")


@attrs.frozen
class Request:
    """A GET request: a percent-encoded path under the endpoint, and query pairs."""

    path: str
    query: tuple[tuple[str, str], ...] = ()

    def url(self, base: URL) -> URL:
        """The full URL under the API's base URL."""
        return base.with_path(self.path, encoded=True).with_query(self.query)


@attrs.frozen
class Endpoint(Generic[_T]):
    """One API call, declared: its name, how to build its request, how to read its answer.

    `build` checks its arguments and raises `ValueError` or `TypeError` before anything
    is sent. A `paged` call's builder takes `page_size` and `page_token` keywords, and
    its parser a `max_items` that refuses a page larger than was asked for.
    """

    name: str
    build: Callable[..., Request]
    parse: Callable[..., _T]
    paged: bool = False

    def parser(self, page_size: int | None = None) -> Callable[[bytes], _T]:
        """The answer's parser; for a paged call, one refusing more than `page_size` items
        (more than the API's 1000 when None)."""
        if not self.paged:
            return self.parse
        return functools.partial(self.parse, max_items=page_size or MAX_PAGE_SIZE)


def validate_endpoint(endpoint: str) -> URL:
    """The API base URL; `http://` is refused unless the host is loopback."""
    url = URL(check_str(endpoint, "endpoint"))
    if url.scheme not in ("https", "http") or not url.host:
        raise ValueError(f"endpoint must look like https://host[:port], got {endpoint!r}")
    if url.user is not None or url.password is not None:
        raise ValueError("endpoint must not carry credentials; pass them as credentials=")
    if url.path not in ("", "/") or url.query_string or url.fragment:
        raise ValueError(f"endpoint must be scheme://host[:port] only, got {endpoint!r}")
    if url.scheme == "http" and not is_loopback(url.host):
        raise ValueError(
            f"refusing plain http:// to {url.host}: tokens would travel unencrypted; "
            "use https:// (http:// is allowed only for loopback hosts such as the emulator)"
        )
    return url.with_path("")


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


def validate_backup_id(backup_id: str) -> str:
    """A backup id (`<clusterId>:<name>`) safe as one URL path segment."""
    return validate_id(
        backup_id, name="backup_id", max_length=MAX_BACKUP_ID_LENGTH, pattern=_BACKUP_ID_PATTERN
    )


def validate_filter(filter: str | None) -> str | None:
    """A `Cluster.list` filter of at most 1000 characters, such as `name="prod"`."""
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


def _page_query(page_size: int | None, page_token: str | None) -> tuple[tuple[str, str], ...]:
    query: list[tuple[str, str]] = []
    if page_size is not None:
        query.append(("pageSize", str(page_size)))
    if page_token is not None:
        query.append(("pageToken", page_token))
    return tuple(query)


def list_backups_request(
    cluster_id: str, page_size: int | None = None, page_token: str | None = None
) -> Request:
    """`Cluster.listBackups`: GET /managed-postgresql/v1/clusters/{clusterId}/backups."""
    segment = quote(validate_id(cluster_id), safe="")
    return Request(
        path=f"{API_PREFIX}/clusters/{segment}/backups",
        query=_page_query(validate_page_size(page_size), validate_page_token(page_token)),
    )


def list_clusters_request(
    folder_id: str,
    page_size: int | None = None,
    page_token: str | None = None,
    filter: str | None = None,
) -> Request:
    """`Cluster.list`: GET /managed-postgresql/v1/clusters?folderId=..."""
    query: tuple[tuple[str, str], ...] = (("folderId", validate_id(folder_id, name="folder_id")),)
    query += _page_query(validate_page_size(page_size), validate_page_token(page_token))
    checked = validate_filter(filter)
    if checked is not None:
        query += (("filter", checked),)
    return Request(path=f"{API_PREFIX}/clusters", query=query)


def list_folder_backups_request(
    folder_id: str, page_size: int | None = None, page_token: str | None = None
) -> Request:
    """`Backup.list`: GET /managed-postgresql/v1/backups?folderId=..."""
    query: tuple[tuple[str, str], ...] = (("folderId", validate_id(folder_id, name="folder_id")),)
    query += _page_query(validate_page_size(page_size), validate_page_token(page_token))
    return Request(path=f"{API_PREFIX}/backups", query=query)


def get_backup_request(backup_id: str) -> Request:
    """`Backup.get`: GET /managed-postgresql/v1/backups/{backupId}."""
    segment = quote(validate_backup_id(backup_id), safe=":")
    return Request(path=f"{API_PREFIX}/backups/{segment}")


def get_cluster_request(cluster_id: str) -> Request:
    """`Cluster.get`: GET /managed-postgresql/v1/clusters/{clusterId}."""
    return Request(path=f"{API_PREFIX}/clusters/{quote(validate_id(cluster_id), safe='')}")


LIST_BACKUPS = Endpoint[BackupsPage](
    "Cluster.listBackups", list_backups_request, wire.parse_backups_page, paged=True
)
LIST_CLUSTERS = Endpoint[ClustersPage](
    "Cluster.list", list_clusters_request, wire.parse_clusters_page, paged=True
)
GET_CLUSTER = Endpoint[Cluster]("Cluster.get", get_cluster_request, wire.parse_cluster)
LIST_FOLDER_BACKUPS = Endpoint[BackupsPage](
    "Backup.list", list_folder_backups_request, wire.parse_backups_page, paged=True
)
GET_BACKUP = Endpoint[Backup]("Backup.get", get_backup_request, wire.parse_backup)


def request_headers(token: str, client_request_id: str) -> dict[str, str]:
    """The headers of an API request: the token travels only in `Authorization`."""
    return {
        "Accept": "application/json",
        "Authorization": f"Bearer {token}",
        "x-client-request-id": client_request_id,
    }


def read_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    parse: Callable[[bytes], _T],
    *,
    client_request_id: str | None = None,
) -> _T:
    """A 2xx answer's body parsed, or the `ApiError` for anything else."""
    if 200 <= status < 300:
        try:
            return parse(body)
        except ResponseFormatError as error:
            error.http_status = status
            error.request_id = headers.get("x-request-id")
            error.client_request_id = client_request_id
            raise
    raise error_from_response(status, body, headers, client_request_id=client_request_id)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_from_response(
    http_status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    client_request_id: str | None = None,
) -> ApiError:
    """The `ApiError` for a non-2xx answer, from its status, `google.rpc.Status` and headers."""
    code, message, detail_request_id = parse_status(body)
    if message is None:
        content_type = headers.get("Content-Type", "no content type")
        phrase = status_phrase(http_status)
        message = f"{phrase or 'error'} ({len(body)} bytes of {content_type.split(';')[0]})"
    return error_class_for_status(http_status)(
        message,
        http_status=http_status,
        code=code,
        request_id=headers.get("x-request-id") or detail_request_id,
        client_request_id=client_request_id,
        retry_after=parse_retry_after(headers.get("Retry-After")),
    )

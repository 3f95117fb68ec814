"""Requests and answers as pure functions: validation, paths, error mapping; no network."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import pg_backups_async as pba
from pg_backups_async import calls, protocol
from tests.conftest import fixture_bytes


def list_backups_request(
    cluster_id: str, page_size: int | None = None, page_token: str | None = None
) -> protocol.Request:
    """`Cluster.listBackups`' request, from the table."""
    arguments = {"cluster_id": cluster_id, "page_size": page_size, "page_token": page_token}
    return calls.LIST_BACKUPS.request(arguments)


HOSTILE_IDS = [
    "",
    "a" * 51,
    "abc/def",
    "../../clusters",
    ".",
    "..",
    "abc?pageSize=1",
    "abc#frag",
    "abc%2Fdef",
    "abc def",
    "abc\tdef",
    "abc\r\nX-Injected: 1",
    "abc\x00",
    "abc\\def",
    "clusters\u2215evil",  # a division slash that looks like '/'
    "abc;x",
]


@pytest.mark.parametrize("cluster_id", HOSTILE_IDS)
def test_hostile_cluster_ids_are_refused(cluster_id: str) -> None:
    with pytest.raises(ValueError, match="cluster_id"):
        list_backups_request(cluster_id)


def test_cluster_id_of_fifty_characters_is_accepted() -> None:
    request = list_backups_request("a" * 50)
    assert request.path == f"/managed-postgresql/v1/clusters/{'a' * 50}/backups"


def test_request_path_and_query() -> None:
    request = list_backups_request("c9qk2b1dn8hbg7r0cvf4", 100, "Mg==")
    assert request.path == "/managed-postgresql/v1/clusters/c9qk2b1dn8hbg7r0cvf4/backups"
    assert request.query == (("pageSize", "100"), ("pageToken", "Mg=="))
    assert list_backups_request("c9q").query == ()


@pytest.mark.parametrize("page_size", [0, -1, 1001, 10**9])
def test_page_size_out_of_range(page_size: int) -> None:
    with pytest.raises(ValueError, match="page_size"):
        list_backups_request("c9q", page_size)


@pytest.mark.parametrize("page_size", [True, 1.5, "10"])
def test_page_size_of_wrong_type(page_size: object) -> None:
    with pytest.raises(TypeError, match="page_size"):
        list_backups_request("c9q", page_size)  # type: ignore[arg-type]


def test_page_token_limits() -> None:
    assert list_backups_request("c9q", None, "x" * 100).query == (("pageToken", "x" * 100),)
    assert list_backups_request("c9q", None, "").query == ()
    with pytest.raises(ValueError, match="page_token"):
        list_backups_request("c9q", None, "x" * 101)


@pytest.mark.parametrize("max_items", [0, -5])
def test_max_items_must_be_positive(max_items: int) -> None:
    with pytest.raises(ValueError, match="max_items"):
        protocol.validate_max_items(max_items)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://mdb.api.cloud.yandex.net",
        "https://mdb.api.cloud.yandex.net/",
        "https://localhost:8443",
        "http://127.0.0.1:8080",
        "http://127.5.6.7",
        "http://localhost:1234",
        "http://[::1]:8080",
    ],
)
def test_endpoints_accepted(endpoint: str) -> None:
    assert str(protocol.validate_endpoint(endpoint)).rstrip("/") == endpoint.rstrip("/")


@pytest.mark.parametrize(
    ("endpoint", "match"),
    [
        ("http://mdb.api.cloud.yandex.net", "unencrypted"),
        ("http://10.0.0.1:8080", "unencrypted"),
        ("http://localhost.example.com", "unencrypted"),
        ("ftp://mdb.api.cloud.yandex.net", "https://host"),
        ("mdb.api.cloud.yandex.net", "https://host"),
        ("https://user:pw@mdb.api.cloud.yandex.net", "credentials"),
        ("https://mdb.api.cloud.yandex.net/managed-postgresql", "host"),
        ("https://mdb.api.cloud.yandex.net?x=1", "host"),
    ],
)
def test_endpoints_refused(endpoint: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        protocol.validate_endpoint(endpoint)


NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("86400", 86400.0),
        ("Sat, 28 Nov 2026 12:00:30 GMT", 30.0),
        ("Sat, 28 Nov 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("-3", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert protocol.parse_retry_after(header, NOW) == seconds


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, pba.InvalidArgumentError),
        (401, pba.UnauthenticatedError),
        (403, pba.PermissionDeniedError),
        (404, pba.NotFoundError),
        (409, pba.ApiError),
        (429, pba.ResourceExhaustedError),
        (500, pba.InternalError),
        (501, pba.ApiError),
        (502, pba.UnavailableError),
        (503, pba.UnavailableError),
        (504, pba.UnavailableError),
        (302, pba.ApiError),
    ],
)
def test_error_class_by_status(status: int, cls: type[pba.ApiError]) -> None:
    error = protocol.error_from_response(status, b"", {})
    assert type(error) is cls
    assert error.http_status == status
    assert error.retryable is (status in (429, 500, 502, 503, 504))


def test_error_from_a_status_body() -> None:
    error = protocol.error_from_response(
        404,
        fixture_bytes("error-404-not-found.json"),
        {"Content-Type": "application/json"},
        protocol.Context(client_request_id="ours"),
    )
    assert isinstance(error, pba.NotFoundError)
    assert error.code == 5
    assert error.message == "Cluster c9qk2b1dn8hbg7r0cvf4x not found"
    assert error.request_id == "8d4b0ab2-1c5e-4c43-9b24-7f0c3f1f5e11"
    assert error.client_request_id == "ours"
    assert str(error) == (
        "HTTP 404 NOT_FOUND: Cluster c9qk2b1dn8hbg7r0cvf4x not found "
        "(request id 8d4b0ab2-1c5e-4c43-9b24-7f0c3f1f5e11)"
    )


def test_x_request_id_header_wins_and_retry_after_is_read() -> None:
    error = protocol.error_from_response(
        429,
        fixture_bytes("error-429-resource-exhausted.json"),
        {"x-request-id": "srv-1", "Retry-After": "3"},
    )
    assert isinstance(error, pba.ResourceExhaustedError)
    assert (error.code, error.request_id, error.retry_after) == (8, "srv-1", 3.0)


def test_non_json_error_body_is_described_not_echoed() -> None:
    body = b"<html><body>Bad Gateway: upstream said Authorization: Bearer leaked</body></html>"
    error = protocol.error_from_response(502, body, {"Content-Type": "text/html; charset=utf-8"})
    assert isinstance(error, pba.UnavailableError)
    assert error.code is None
    assert error.message == f"Bad Gateway ({len(body)} bytes of text/html)"
    assert "leaked" not in str(error)

"""A hostile server and careless input: nothing leaks, nothing hangs, nothing explodes.

The server here is written for these tests (an aiohttp.web app on 127.0.0.1): it
echoes secrets, sends terminal escapes and spreadsheet formulas, hands out endless
listings, oversized pages and numbers out of range, or stalls. Each test names the
item of the issue it proves.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import pg_backups_async as pba
from pg_backups_async import cli
from tests.conftest import TOKEN, our_tasks, run_cli

GUARD = 10.0  # seconds: a hung test fails instead of hanging; never a measurement
QUICK = pba.RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001)
CLUSTER = "c9qk2b1dn8hbg7r0cvf4"
OAUTH = "y0_AgAAAAsecretOAuthTokenValue"

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Hostile:
    """A server that answers every request with `answer(request)`."""

    def __init__(self) -> None:
        self.url = ""
        self.answer: Answer = _empty_page
        self.requests: list[web.Request] = []
        self.release = asyncio.Event()  # set at the end: stalled answers return
        self._arrivals = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        async with self._arrivals:
            self._arrivals.notify_all()
        return await self.answer(request)

    async def wait_for_requests(self, count: int) -> None:
        """Return once `count` requests have arrived."""
        async with self._arrivals:
            await self._arrivals.wait_for(lambda: len(self.requests) >= count)


async def _empty_page(request: web.Request) -> web.Response:
    return _json({})


def _json(body: object, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    server_state = Hostile()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server_state.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    server_state.url = str(server.make_url("")).rstrip("/")
    yield server_state
    server_state.release.set()
    await server.close()


def _client(
    hostile: Hostile, credentials: pba.Credentials | None = None, **kwargs: Any
) -> pba.BackupsClient:
    kwargs.setdefault("retry", QUICK)
    return pba.BackupsClient(credentials or pba.IamToken(TOKEN), endpoint=hostile.url, **kwargs)


def _bearer(request: web.Request) -> str:
    return request.headers.get("Authorization", "")


@pytest.fixture(scope="module")
def key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _key(pem: str) -> dict[str, str]:
    return {"id": "ajekey", "service_account_id": "ajesa", "private_key": pem}


# 1. A service-account key is never printed in an error


def _key_body(pem: str) -> str:
    return pem.splitlines()[3]  # a line from the middle of the key's base64


@pytest.mark.parametrize(
    "shape",
    ["pem", "quoted-json", "json-in-a-list", "json-with-junk", "one-line-base64"],
)
def test_1_key_material_in_the_environment_is_never_repeated(key_pem: str, shape: str) -> None:
    as_json = json.dumps(_key(key_pem))
    value = {
        "pem": key_pem,
        "quoted-json": json.dumps(as_json),
        "json-in-a-list": f"[{as_json}]",
        "json-with-junk": as_json + "}",
        "one-line-base64": "".join(key_pem.splitlines()[1:-1]),
    }[shape]
    with pytest.raises(
        ValueError, match=r"YC_SERVICE_ACCOUNT_KEY_FILE|service account key"
    ) as caught:
        pba.credentials_from_env({"YC_SERVICE_ACCOUNT_KEY_FILE": value})
    assert _key_body(key_pem) not in str(caught.value)
    assert len(str(caught.value)) < 200
    result = run_cli("list", CLUSTER, "--service-account-key", value, token=None)
    assert result.returncode == 2
    assert _key_body(key_pem) not in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_1_key_json_with_a_byte_order_mark_is_read(key_pem: str, tmp_path: Any) -> None:
    value = "\ufeff" + json.dumps(_key(key_pem))
    assert isinstance(
        pba.credentials_from_env({"YC_SERVICE_ACCOUNT_KEY_FILE": value}), pba.ServiceAccountKey
    )
    path = tmp_path / "key.json"
    path.write_text(value, encoding="utf-8")
    path.chmod(0o600)
    assert pba.ServiceAccountKey.from_file(path).key_id == "ajekey"


def test_1_a_plain_path_is_still_named(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match=r"file '.*missing\.json': No such file"):
        pba.ServiceAccountKey.from_file(tmp_path / "missing.json")


# 2. Secrets echoed by a server reach no error, log line or CLI output


async def _echo_everywhere(request: web.Request) -> web.Response:
    """A proxy that echoes what it got into the message, the request id, the content type."""
    echoed = _bearer(request)
    if request.method == "POST":
        echoed += " " + (await request.text())
    return web.Response(
        status=503,
        body=f"upstream said: {echoed}".encode(),
        headers={
            "x-request-id": echoed,
            "Content-Type": f"text/plain; note={echoed}",
            "Retry-After": "0",  # retried at once: the CLI's retries take no time
        },
    )


async def test_2_an_echoed_bearer_token_is_redacted(
    hostile: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pg_backups_async")

    async def echo_in_json(request: web.Request) -> web.Response:
        return _json(
            {"code": 14, "message": f"bad {_bearer(request)}"},
            503,
            **{"x-request-id": _bearer(request)},
        )

    for answer in (echo_in_json, _echo_everywhere):
        hostile.answer = answer
        async with _client(hostile) as client:
            with pytest.raises(pba.ApiError) as caught:
                await client.get_backups_page(CLUSTER)
        texts = [str(caught.value), repr(caught.value), repr(vars(caught.value))]
        texts += [repr(caught.value.args)]
        texts += [r.getMessage() for r in caplog.records]
        assert all(TOKEN not in text for text in texts), texts
        assert "<redacted>" in str(caught.value)


async def test_2_an_echoed_jwt_or_oauth_token_is_redacted(
    hostile: Hostile, key_pem: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pg_backups_async")

    async def echo_in_json(request: web.Request) -> web.Response:
        body = await request.text()
        echo = {"code": 3, "message": f"cannot use {body}", "details": [{"requestId": body}]}
        return _json(echo, 400)

    key = pba.ServiceAccountKey.from_dict(_key(key_pem), iam_endpoint=hostile.url)
    with pytest.warns(DeprecationWarning, match="retired"):
        oauth = pba.OAuthToken(OAUTH, iam_endpoint=hostile.url)
    for answer in (echo_in_json, _echo_everywhere):
        hostile.answer = answer
        for credentials in (key, oauth):
            async with _client(hostile, credentials) as client:
                with pytest.raises(pba.AuthError) as caught:
                    await client.get_backups_page(CLUSTER)
            body = await hostile.requests[-1].text()
            secret = orjson.loads(body).popitem()[1]
            texts = [str(caught.value), repr(caught.value), str(caught.value.request_id)]
            texts += [r.getMessage() for r in caplog.records]
            assert all(secret not in text for text in texts)


async def test_2_echoed_secrets_reach_neither_the_cli_log_nor_the_inventory(
    hostile: Hostile,
) -> None:
    hostile.answer = _echo_everywhere
    result = await asyncio.to_thread(
        run_cli, "inventory", "--cluster-id", CLUSTER, "--endpoint", hostile.url, "-v"
    )
    assert result.returncode == 2
    assert "error: UnavailableError" in result.stdout  # the STATE column
    assert "retrying after attempt 1" in result.stderr  # -v logs reached stderr
    assert TOKEN not in result.stdout + result.stderr


# 3. Terminal injection: server strings are escaped on a terminal and in log lines

ESCAPES = [
    "\x1b[2J",
    "\x1b]52;c;aGVsbG8=\x07",
    "\x1b]8;;https://evil.example\x1b\\",
    "\r",
    "\n",
    "\x9b",
]


async def _backups_with_escapes(request: web.Request) -> web.Response:
    backups = [
        {"id": f"{CLUSTER}:{i}{escape}forged", "size": "1"} for i, escape in enumerate(ESCAPES)
    ]
    return _json({"backups": backups})


async def test_3_a_table_shows_server_strings_escaped(hostile: Hostile) -> None:
    hostile.answer = _backups_with_escapes
    result = await asyncio.to_thread(run_cli, "list", CLUSTER, "--endpoint", hostile.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 + len(ESCAPES)  # no forged row
    assert not any(c in result.stdout for c in "\x1b\r\x07\x9b")
    assert "\\x1b[2J" in result.stdout
    assert "\\n" in result.stdout


async def test_3_json_keeps_server_strings_exact(hostile: Hostile) -> None:
    hostile.answer = _backups_with_escapes
    result = await asyncio.to_thread(
        run_cli, "list", CLUSTER, "--endpoint", hostile.url, "--format", "json"
    )
    ids = [item["id"] for item in orjson.loads(result.stdout)]
    assert ids == [f"{CLUSTER}:{i}{escape}forged" for i, escape in enumerate(ESCAPES)]


async def test_3_error_lines_and_log_lines_are_escaped(
    hostile: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    async def escapes_in_errors(request: web.Request) -> web.Response:
        # aiohttp sends no control character in a header (nor reads one): the body only.
        message = "down\x1b[2J\npg-backups: all fresh\r\x1b]52;c;eA==\x07"
        return _json({"code": 14, "message": message}, 503, **{"Retry-After": "0"})

    hostile.answer = escapes_in_errors
    result = await asyncio.to_thread(run_cli, "list", CLUSTER, "--endpoint", hostile.url, "-v")
    assert result.returncode == 2
    assert not any(c in result.stderr for c in "\x1b\r\x07")
    error_lines = [line for line in result.stderr.splitlines() if "UnavailableError" in line]
    assert len(error_lines) == 1
    assert "down\\x1b[2J\\npg-backups: all fresh\\r\\x1b]52;c;eA==\\x07" in error_lines[0]
    caplog.set_level(logging.DEBUG, logger="pg_backups_async")
    async with _client(hostile) as client:
        with pytest.raises(pba.UnavailableError):
            await client.get_backups_page(CLUSTER)
    assert caplog.records
    assert all("\x1b" not in r.getMessage() and "\n" not in r.getMessage() for r in caplog.records)


# 4. CSV: formulas neutralised, a bare CR quoted, a strict reader round-trips

FORMULAS = ["=HYPERLINK(1)", "+1+2", "-2+3", "@SUM(A1)", "\tlead", "\rlead", "mid\rdle", "ok"]


async def test_4_csv_neutralises_formulas_and_round_trips(hostile: Hostile) -> None:
    async def formulas(request: web.Request) -> web.Response:
        backups = [
            {"id": f"{CLUSTER}:{i}", "retentionPolicyName": text}
            for i, text in enumerate(FORMULAS)
        ]
        return _json({"backups": backups})

    hostile.answer = formulas
    result = await asyncio.to_thread(
        run_cli, "list", CLUSTER, "--endpoint", hostile.url, "--format", "csv"
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout, newline=""), strict=True))
    names = [row["retention_policy_name"] for row in rows]
    assert names == ["'" + t if t[0] in "=+-@\t\r" else t for t in FORMULAS]
    assert all(
        not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
        for row in rows
        for cell in row.values()
    )


# 5. Listings that never end


async def test_5_endless_empty_pages_end_in_an_error(hostile: Hostile) -> None:
    async def new_token_empty_page(request: web.Request) -> web.Response:
        return _json({"nextPageToken": f"t{len(hostile.requests)}"})

    hostile.answer = new_token_empty_page
    async with _client(hostile) as client:
        with pytest.raises(pba.ResponseFormatError, match="100 empty pages in a row"):
            await asyncio.wait_for(_drain(client.list_backups(CLUSTER, max_items=10)), GUARD)
    assert len(hostile.requests) == 100


async def test_5_endless_full_pages_end_at_max_pages(hostile: Hostile) -> None:
    async def new_token_full_page(request: web.Request) -> web.Response:
        n = len(hostile.requests)
        return _json({"backups": [{"id": f"{CLUSTER}:{n}"}], "nextPageToken": f"t{n}"})

    hostile.answer = new_token_full_page
    async with _client(hostile) as client:
        fanout = client.list_backups_many([CLUSTER, "c9qother"], max_pages=5)
        results = await asyncio.wait_for(_drain(fanout), GUARD)
        with pytest.raises(pba.ResponseFormatError, match="within max_pages=3 pages"):
            await _drain(client.list_backups(CLUSTER, max_pages=3))
    assert all(isinstance(r.error, pba.ResponseFormatError) for r in results)
    assert len(hostile.requests) == 5 + 5 + 3
    with pytest.raises(ValueError, match="max_pages"):
        client.list_backups(CLUSTER, max_pages=0)


async def _drain(items: Any) -> list[Any]:
    async with items:
        return [item async for item in items]


# 6. A page far larger than asked is refused before its items are structured


@pytest.mark.parametrize(("page_size", "sent"), [(10, 11), (None, 1001)])
async def test_6_a_page_larger_than_asked_is_refused(
    hostile: Hostile, page_size: int | None, sent: int
) -> None:
    async def oversized(request: web.Request) -> web.Response:
        return _json({"backups": [{"id": "x"}] * sent})

    hostile.answer = oversized
    async with _client(hostile) as client:
        with pytest.raises(pba.ResponseFormatError, match=f"{sent} items in a page") as caught:
            await client.get_backups_page(CLUSTER, page_size=page_size)
    assert caught.value.field == "backups"
    assert len(hostile.requests) == 1  # not retried


# 7. Numbers out of range


@pytest.mark.parametrize("size", [str(2**64), str(2**63), "1" + "0" * 400, 2**63, -(2**63) - 1])
async def test_7_sizes_outside_int64_are_refused(hostile: Hostile, size: object) -> None:
    async def huge(request: web.Request) -> web.Response:
        if isinstance(size, int):  # a JSON number orjson cannot write: the raw text
            body = b'{"backups": [{"id": "x", "size": ' + str(size).encode() + b"}]}"
            return web.Response(body=body, content_type="application/json")
        return _json({"backups": [{"id": "x", "journalSize": size}]})

    hostile.answer = huge
    async with _client(hostile) as client:
        with pytest.raises(pba.ResponseFormatError) as caught:
            await client.get_backups_page(CLUSTER)
    assert caught.value.field in ("backups[0].size", "backups[0].journalSize")
    for fmt in ("json", "table"):
        result = await asyncio.to_thread(
            run_cli, "list", CLUSTER, "--endpoint", hostile.url, "--format", fmt
        )
        assert result.returncode == 2
        assert "ResponseFormatError" in result.stderr
        assert "Traceback" not in result.stderr


async def test_7_the_largest_int64_is_read(hostile: Hostile) -> None:
    async def largest(request: web.Request) -> web.Response:
        return _json({"backups": [{"id": "x", "size": str(2**63 - 1), "journalSize": "-5"}]})

    hostile.answer = largest
    async with _client(hostile) as client:
        [backup] = (await client.get_backups_page(CLUSTER)).backups
    assert (backup.size, backup.journal_size) == (2**63 - 1, -5)


# 8. Closing from another task, two consumers, a dropped fan-out


async def _first_page_then_stall(hostile: Hostile) -> Answer:
    async def answer(request: web.Request) -> web.Response:
        if len(hostile.requests) == 1:
            return _json({"backups": [{"id": "x"}], "nextPageToken": "next"})
        await hostile.release.wait()
        return _json({})

    return answer


async def test_8_closing_a_stream_from_another_task_ends_its_consumer(hostile: Hostile) -> None:
    hostile.answer = await _first_page_then_stall(hostile)
    got_one = asyncio.Event()
    async with _client(hostile) as client:
        stream = client.list_backups(CLUSTER)

        async def consume() -> list[pba.Backup]:
            got = []
            async for backup in stream:
                got.append(backup)
                got_one.set()
            return got

        consumer = asyncio.create_task(consume())
        await asyncio.wait_for(got_one.wait(), GUARD)
        await stream.aclose()
        got = await asyncio.wait_for(consumer, GUARD)  # ends; no CancelledError
    assert [b.id for b in got] == ["x"]


async def test_8_closing_a_fan_out_or_the_client_from_another_task_ends_its_consumer(
    hostile: Hostile,
) -> None:
    async def stall(request: web.Request) -> web.Response:
        await hostile.release.wait()
        return _json({})

    hostile.answer = stall
    for close in ("fan-out", "client"):
        client = _client(hostile)
        async with client:
            fanout = client.list_backups_many([CLUSTER, "c9qother"])
            consumer = asyncio.create_task(_drain(fanout))
            await asyncio.wait_for(hostile.wait_for_requests(2), GUARD)
            await (fanout.aclose() if close == "fan-out" else client.aclose())
            assert await asyncio.wait_for(consumer, GUARD) == []
        hostile.requests.clear()


async def test_8_a_second_consumer_is_refused_at_once(hostile: Hostile) -> None:
    async def stall(request: web.Request) -> web.Response:
        await hostile.release.wait()
        return _json({})

    hostile.answer = stall
    async with _client(hostile) as client:
        stream = client.list_backups(CLUSTER)
        first = asyncio.create_task(stream.__anext__())
        await asyncio.wait_for(hostile.wait_for_requests(1), GUARD)
        with pytest.raises(RuntimeError, match="another task"):
            await stream.__anext__()
        fanout = client.list_backups_many([CLUSTER])
        other = asyncio.create_task(fanout.__anext__())
        await asyncio.wait_for(hostile.wait_for_requests(2), GUARD)
        with pytest.raises(RuntimeError, match="another task"):
            await fanout.__anext__()
        await stream.aclose()
        await fanout.aclose()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(first, GUARD)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(other, GUARD)


async def test_8_a_dropped_fan_out_stops_its_workers(hostile: Hostile) -> None:
    async def one_answers_one_stalls(request: web.Request) -> web.Response:
        if CLUSTER not in request.path:
            await hostile.release.wait()
        return _json({})

    hostile.answer = one_answers_one_stalls
    async with _client(hostile) as client:
        fanout = client.list_backups_many([CLUSTER, "c9qother"])
        first = await asyncio.wait_for(fanout.__anext__(), GUARD)
        assert first.cluster_id == CLUSTER
        await asyncio.wait_for(hostile.wait_for_requests(2), GUARD)
        workers = [task for task in our_tasks() if "fan-out worker" in task.get_name()]
        assert len(workers) == 1  # the one waiting on the stalled cluster
        del fanout  # dropped without aclose()
        gc.collect()
        await asyncio.wait_for(asyncio.wait(workers), GUARD)
        assert all(worker.cancelled() for worker in workers)
        assert our_tasks() == []  # their requests too


# 9. Configuration accepted and then misbehaving (the rest: test_request_path, test_auth)


def test_9_a_small_rsa_key_is_refused_at_construction() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    pem = small.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(ValueError, match="1024 bits; at least 2048"):
        pba.ServiceAccountKey.from_dict(_key(pem))


# 10. The CLI's exit codes on unexpected errors; an inventory goes on past a bad id


async def test_10_an_unexpected_error_is_one_line_and_exit_2(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli.commands, "write_items", broken)
    args = ("list", CLUSTER, "--endpoint", hostile.url)
    result = await asyncio.to_thread(run_cli, *args)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("pg-backups: internal error: ZeroDivisionError: a bug")
    debug = await asyncio.to_thread(run_cli, *args, "--debug")
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr


async def test_10_an_inventory_goes_on_past_a_cluster_it_cannot_use(hostile: Hostile) -> None:
    good = CLUSTER

    async def folder(request: web.Request) -> web.Response:
        if request.path.endswith("/clusters"):
            clusters = [{"id": "../../etc", "name": "bad"}, {"id": good, "name": "good"}]
            return _json({"clusters": clusters})
        assert request.path.endswith(f"/clusters/{good}/backups")
        done = {"id": f"{good}:1", "status": "DONE", "createdAt": "2026-11-29T00:00:00Z"}
        return _json({"backups": [done]})

    hostile.answer = folder
    result = await asyncio.to_thread(
        run_cli,
        "inventory",
        "--folder-id",
        "b1gfolder",
        "--endpoint",
        hostile.url,
        "--format",
        "jsonl",
    )
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [line["cluster_id"] for line in lines] == ["../../etc", good]
    assert lines[0]["state"] == "error"
    assert "unusable cluster id" in lines[0]["error"]["message"]
    assert lines[0]["error"]["type"] == "ResponseFormatError"
    assert lines[1]["backup_count"] == 1
    assert result.returncode == 2
    assert [r.path for r in hostile.requests][1:] == [
        f"/managed-postgresql/v1/clusters/{good}/backups"
    ]


# Round two (issue 22). Each test names the item of issue 22 it proves.


# 22.3 Whatever a Retry-After header holds, a failed call is an ApiError


@pytest.mark.parametrize(
    "value", ["\u00b2", "\u0661", "1\u00b2", "9" * 400, "1e400", "nan", "-5", "Thu, 01 Jan 99999"]
)
async def test_22_3_an_odd_retry_after_is_an_api_error(hostile: Hostile, value: str) -> None:
    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=503, headers={"Retry-After": value})

    hostile.answer = busy
    async with _client(hostile, retry=pba.RetryPolicy.disabled()) as client:
        with pytest.raises(pba.UnavailableError) as caught:
            await client.get_backups_page(CLUSTER)
    assert caught.value.retry_after is None


async def test_22_3_an_inventory_goes_on_past_an_odd_retry_after(hostile: Hostile) -> None:
    async def one_odd(request: web.Request) -> web.Response:
        if CLUSTER in request.path:
            return web.Response(status=429, headers={"Retry-After": "\u00b2"})
        return _json({"backups": []})

    hostile.answer = one_odd
    async with _client(hostile) as client:
        lines = await client.inventory(cluster_ids=[CLUSTER, "c9qother"])
    assert [type(line.error) for line in lines] == [pba.ResourceExhaustedError, type(None)]


# 22.5 A server's text is bounded wherever it goes: the error, the log, stderr


async def test_22_5_a_huge_error_message_is_cut(
    hostile: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    huge = "x" * 3_000_000  # twice: 6 MB, under the default cap on answers (8 MiB)

    async def enormous(request: web.Request) -> web.Response:
        return _json({"code": 13, "message": huge, "details": [{"requestId": huge}]}, status=500)

    hostile.answer = enormous
    caplog.set_level(logging.DEBUG, logger="pg_backups_async")
    async with _client(hostile) as client:
        with pytest.raises(pba.InternalError) as caught:
            await client.get_backups_page(CLUSTER)
    error = caught.value
    limit = pba.ApiError.max_text
    assert len(error.message) <= limit
    assert "characters, cut" in error.message
    assert len(error.request_id or "") <= limit
    assert len(str(error)) <= 3 * limit
    assert max(len(record.getMessage()) for record in caplog.records) <= 4 * limit
    result = await asyncio.to_thread(run_cli, "list", CLUSTER, "-v", "--endpoint", hostile.url)
    assert result.returncode == 2
    assert len(result.stderr) <= 20 * limit


def test_22_5_the_cut_is_configurable_and_idempotent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pba.ApiError, "max_text", 100)
    error = pba.NotFoundError("y" * 1000, request_id="r" * 1000)
    assert len(error.message) == 100
    assert len(error.request_id or "") == 100
    assert error.evolve().message == error.message


# 22.4 Credentials serve one asyncio.run() job after another


def test_22_4_exchanged_credentials_serve_successive_event_loops(key_pem: str) -> None:
    import threading

    from pg_backups_async.emulator import Emulator

    started: list[Emulator] = []
    ready, done = threading.Event(), threading.Event()

    async def serve() -> None:
        async with Emulator(tokens=()) as emulator:
            private = serialization.load_pem_private_key(key_pem.encode(), password=None)
            assert isinstance(private, rsa.RSAPrivateKey)
            emulator.add_service_account_key("ajekey", "ajesa", private.public_key())
            started.append(emulator)
            ready.set()
            await asyncio.to_thread(done.wait)

    server = threading.Thread(target=asyncio.run, args=(serve(),))
    server.start()
    try:
        assert ready.wait(GUARD)
        credentials = pba.ServiceAccountKey.from_dict(_key(key_pem), iam_endpoint=started[0].url)

        async def job() -> None:
            # Two callers at once: the second waits on the exchange's lock.
            first, second = await asyncio.gather(credentials.token(), credentials.token())
            assert first == second
            credentials.invalidate(first)

        for _ in range(3):
            asyncio.run(job())
    finally:
        done.set()
        server.join(GUARD)
    assert started[0].exchanges == ["jwt"] * 3  # one exchange a job, for both callers


# 22.8 Only a regular key file of a sane size is read; one others can read is warned of


async def test_22_8_a_fifo_a_device_and_a_huge_file_are_refused_unread(tmp_path: Any) -> None:
    import os

    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # no writer: reading it would wait for ever
    huge = tmp_path / "huge.json"
    with huge.open("wb") as file:
        file.truncate(100 * 1024 * 1024)  # 100 MiB, sparse
    for path, reason in [
        (fifo, "not a regular file"),
        ("/dev/null", "not a regular file"),
        (tmp_path, "Is a directory|not a regular file"),
        (huge, "over the 65,536"),
    ]:
        reading = asyncio.create_task(asyncio.to_thread(pba.ServiceAccountKey.from_file, path))
        done, _ = await asyncio.wait([reading], timeout=GUARD)
        if not done and path == fifo:  # hung: a writer that closes at once releases it
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        with pytest.raises(ValueError, match=reason):
            await reading
        assert done, f"reading {path} hung"


def test_22_8_a_key_file_others_can_read_is_warned_of(key_pem: str, tmp_path: Any) -> None:
    from pg_backups_async.auth import KeyFilePermissionsWarning

    path = tmp_path / "key.json"
    path.write_text(json.dumps(_key(key_pem)))
    path.chmod(0o644)
    with pytest.warns(KeyFilePermissionsWarning, match="may be read by other users.*chmod 600"):
        pba.ServiceAccountKey.from_file(path)
    result = run_cli(
        "list",
        CLUSTER,
        "--service-account-key",
        str(path),
        "--endpoint",
        "http://127.0.0.1:9",
        token=None,
    )
    assert "pg-backups: notice: the service account key file" in result.stderr
    path.chmod(0o600)
    pba.ServiceAccountKey.from_file(path)  # no warning: the suite turns warnings into errors


# 22.9 An endpoint's host is a host name or an address, nothing else


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://exa mple.com",
        "https://example.com\t",
        " https://example.com",
        "https://example.com:443\n",
        "https://ex\x00ample.com",
        "https://ex\u202eample.com",
        "https://ex\u200bample.com",
        "https://exa%20mple.com",
        "https://ex%0aample.com",
        "https://-example.com",
    ],
)
def test_22_9_an_endpoint_with_an_odd_host_is_refused(endpoint: str) -> None:
    for build in (
        lambda: pba.BackupsClient(pba.IamToken(TOKEN), endpoint=endpoint),
        lambda: pba.BackupsClient(pba.IamToken(TOKEN), resource_manager_endpoint=endpoint),
        lambda: pba.OAuthToken(OAUTH, iam_endpoint=endpoint),
    ):
        with pytest.raises(ValueError, match="endpoint"):
            build()


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://mdb.api.cloud.yandex.net",
        "http://127.0.0.1:8080",
        "http://[::1]:1",
        "https://api_gw.internal",
        "https://b\u00fccher.example",
    ],
)
def test_22_9_real_endpoints_are_taken(endpoint: str) -> None:
    assert pba.BackupsClient(pba.IamToken(TOKEN), endpoint=endpoint).endpoint


# 22.1 The resume hint is one shell word, whatever the server's page token holds


def _paged(hostile: Hostile, token: str) -> Answer:
    """Page one: a backup and `token`; page two (asked for with it): two backups, last."""

    async def answer(request: web.Request) -> web.Response:
        if request.query.get("pageToken") == token:
            backups = [{"id": f"{CLUSTER}:2"}, {"id": f"{CLUSTER}:3"}]
            return _json({"backups": backups})
        return _json({"backups": [{"id": f"{CLUSTER}:1"}], "nextPageToken": token})

    return answer


@pytest.mark.parametrize(
    "token", ["'; touch /tmp/pwned; echo '", "$(id)`id`", "a b\\\"c'", "~root", "!x&y|z>w"]
)
async def test_22_1_the_resume_hint_quotes_the_page_token(hostile: Hostile, token: str) -> None:
    import shlex

    hostile.answer = _paged(hostile, token)
    common = ("list", CLUSTER, "--endpoint", hostile.url, "--format", "jsonl")
    result = await asyncio.to_thread(run_cli, *common, "--max-items", "1")
    assert result.returncode == 0, result.stderr
    hint = result.stderr.splitlines()[-1]
    prefix = "pg-backups: to carry on from there, run the same command with --page-token "
    assert hint.startswith(prefix)
    [word] = shlex.split(hint.removeprefix(prefix))  # one word, with nothing to run in it
    assert word == f"~0~{token}"
    resumed = await asyncio.to_thread(run_cli, *common, "--page-token", word)
    ids = [orjson.loads(line)["id"] for line in resumed.stdout.splitlines()]
    assert ids == [f"{CLUSTER}:2", f"{CLUSTER}:3"]


async def test_22_1_a_token_a_shell_line_cannot_carry_gets_no_hint(hostile: Hostile) -> None:
    hostile.answer = _paged(hostile, "a\nrm -rf ~\n\u202e")
    result = await asyncio.to_thread(
        run_cli, "list", CLUSTER, "--endpoint", hostile.url, "--max-items", "1"
    )
    assert result.returncode == 0
    assert result.stderr.splitlines()[-1].endswith("characters a shell line cannot carry)")
    assert "rm -rf" not in result.stderr


# 22.2 The command line bounds every listing: --max-pages, on by default


async def test_22_2_the_command_line_ends_an_endless_listing(hostile: Hostile) -> None:
    async def endless(request: web.Request) -> web.Response:
        n = len(hostile.requests)
        return _json({"backups": [{"id": f"{CLUSTER}:{n}"}], "nextPageToken": f"t{n}"})

    hostile.answer = endless
    for command in (("list", CLUSTER), ("inventory", "--cluster-id", CLUSTER)):
        hostile.requests.clear()
        result = await asyncio.to_thread(
            run_cli, *command, "--endpoint", hostile.url, "--max-pages", "4", "--format", "json"
        )
        assert result.returncode == 2
        assert "max_pages=4" in result.stderr or "max_pages=4" in result.stdout
        # (an inventory also asks Cluster.get for a cluster it only has the id of)
        assert len([r for r in hostile.requests if r.path.endswith("/backups")]) == 4


def test_22_2_every_listing_command_has_a_bound_by_default() -> None:
    from pg_backups_async.limits import DEFAULT_MAX_PAGES

    parser = cli.build_parser()
    for command in (
        ["list", CLUSTER],
        ["clouds"],
        ["folders", "--cloud-id", "b1g"],
        ["clusters"],
        ["inventory"],
        ["exporter"],
        ["demo"],
    ):
        assert parser.parse_args(command).max_pages == DEFAULT_MAX_PAGES


# 22.16 No number the user types ends in a traceback


@pytest.mark.parametrize(
    "args",
    [
        ("inventory", "--cluster-id", CLUSTER, "--stale-after", "99999999999d"),
        ("inventory", "--cluster-id", CLUSTER, "--stale-after", "9" * 400),
        ("exporter", "--cluster-id", CLUSTER, "--interval", "9999999999999w"),
        ("list", CLUSTER, "--since", "99999999999999d"),
        ("list", CLUSTER, "--until", "1" + "0" * 30 + "s"),
        ("demo", "--clusters", "10001"),
        ("list", CLUSTER, "--max-items", "9" * 5000),
    ],
)
def test_22_16_large_numbers_are_usage_errors(args: tuple[str, ...]) -> None:
    result = (
        run_cli(*args, "--endpoint", "http://127.0.0.1:9")
        if args[0] != "demo"
        else (run_cli(*args, token=None))
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("pg-backups ")  # argparse's error line


# 22.10 A success status with an error body is an error, never an empty last page


@pytest.mark.parametrize(
    "body",
    [
        {"code": 7, "message": "Permission denied"},
        {"code": 14, "message": "upstream unavailable", "details": []},
        {"code": 5},
    ],
)
async def test_22_10_a_200_with_an_rpc_status_is_an_error(
    hostile: Hostile, body: dict[str, Any]
) -> None:
    async def status_as_success(request: web.Request) -> web.Response:
        return _json(body)

    hostile.answer = status_as_success
    async with _client(hostile) as client:
        for call in (
            lambda: _drain(client.list_backups(CLUSTER)),
            lambda: client.get_backups_page(CLUSTER),
            lambda: client.get_cluster(CLUSTER),
            lambda: _drain(client.list_clusters("b1gfolder")),
        ):
            with pytest.raises(pba.ResponseFormatError, match="success status with an error") as e:
                await call()
            assert (e.value.http_status, e.value.code) == (200, body["code"])
        lines = await client.inventory(cluster_ids=[CLUSTER])
    assert isinstance(lines[0].error, pba.ResponseFormatError)  # not "no backups"


async def test_22_10_an_empty_object_is_still_an_empty_last_page(hostile: Hostile) -> None:
    async with _client(hostile) as client:
        assert await _drain(client.list_backups(CLUSTER)) == []

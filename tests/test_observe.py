"""Observability: a hook per attempt, and OpenTelemetry spans when it is installed."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import pg_backups_async as pba
from tests.conftest import TOKEN

CLUSTER = "c9qk2b1dn8hbg7r0cvf4"
PAGE = pba.HttpResponse(
    200, {"x-request-id": "srv-2"}, orjson.dumps({"backups": [{"id": f"{CLUSTER}:1"}]})
)
DOWN = pba.HttpResponse(503, {"x-request-id": "srv-1"}, orjson.dumps({"code": 14, "message": "x"}))
QUICK = pba.RetryPolicy(base_delay=0.001, max_delay=0.002)


def _flaky() -> pba.MockTransport:
    answers = [DOWN, PAGE]
    return pba.MockTransport(lambda request: answers.pop(0))


async def test_every_attempt_reaches_the_hooks() -> None:
    seen: list[pba.Attempt] = []
    transport = _flaky()
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), transport=transport, retry=QUICK, on_attempt=seen.append
    ) as client:
        await client.get_backups_page(CLUSTER, page_size=5)
    first, second = seen
    assert (first.call, first.method, first.attempt, first.status) == (
        "Cluster.listBackups",
        "GET",
        1,
        503,
    )
    assert first.path == f"/managed-postgresql/v1/clusters/{CLUSTER}/backups"
    assert isinstance(first.error, pba.UnavailableError)
    assert first.retry_wait is not None
    assert 0 <= first.retry_wait <= 0.001
    assert (second.attempt, second.status, second.retry_wait, second.error) == (2, 200, None, None)
    assert [a.client_request_id for a in seen] == [r.client_request_id for r in transport.requests]
    assert [a.request_id for a in seen] == ["srv-1", "srv-2"]
    assert all(a.duration >= 0 for a in seen)
    assert TOKEN not in repr(seen)


async def test_a_hook_that_raises_never_fails_the_call(caplog: pytest.LogCaptureFixture) -> None:
    def broken(attempt: pba.Attempt) -> None:
        raise RuntimeError("a bug in the hook")

    seen: list[pba.Attempt] = []
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), transport=_flaky(), retry=QUICK, on_attempt=[broken, seen.append]
    ) as client:
        page = await client.get_backups_page(CLUSTER)
    assert len(page.backups) == 1
    assert len(seen) == 2  # the other hook still ran
    assert "an on_attempt hook raised" in caplog.text


def test_hooks_must_be_functions() -> None:
    with pytest.raises(TypeError, match="on_attempt"):
        pba.BackupsClient(pba.IamToken(TOKEN), on_attempt=["not a function"])  # type: ignore[list-item]


async def test_a_connection_that_fails_is_an_attempt_without_status() -> None:
    def refuse(request: pba.HttpRequest) -> pba.HttpResponse:
        raise pba.NetworkError("refused", client_request_id=request.client_request_id)

    seen: list[pba.Attempt] = []
    async with pba.BackupsClient(
        pba.IamToken(TOKEN),
        transport=pba.MockTransport(refuse),
        retry=pba.RetryPolicy.disabled(),
        on_attempt=seen.append,
    ) as client:
        with pytest.raises(pba.NetworkError):
            await client.get_backups_page(CLUSTER)
    [attempt] = seen
    assert (attempt.status, attempt.retry_wait) == (None, None)
    assert isinstance(attempt.error, pba.NetworkError)


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()


async def test_a_span_per_call_and_per_attempt(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    spans.clear()
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), endpoint="https://mdb.example.com", transport=_flaky(), retry=QUICK
    ) as client:
        await client.get_backups_page(CLUSTER)
    finished = {span.name: span for span in spans.get_finished_spans() if span.name != "GET"}
    attempts = [span for span in spans.get_finished_spans() if span.name == "GET"]
    call = finished["Cluster.listBackups"]
    assert call.kind is trace.SpanKind.CLIENT
    assert len(attempts) == 2
    assert all(
        span.parent is not None and span.parent.span_id == call.context.span_id
        for span in attempts
    )
    first, second = (dict(span.attributes or {}) for span in attempts)
    assert first["http.request.method"] == "GET"
    assert first["url.full"] == (
        f"https://mdb.example.com/managed-postgresql/v1/clusters/{CLUSTER}/backups"
    )
    assert first["server.address"] == "mdb.example.com"
    assert first["http.response.status_code"] == 503
    assert first["error.type"] == "503"
    assert second["http.response.status_code"] == 200
    assert second["http.request.resend_count"] == 1
    assert "error.type" not in second
    everything = repr([dict(span.attributes or {}) for span in spans.get_finished_spans()])
    assert TOKEN not in everything


async def test_without_opentelemetry_nothing_happens(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pg_backups_async import observe

    monkeypatch.setattr(observe, "_trace", None)
    observe._tracer.cache_clear()
    spans.clear()
    try:
        async with pba.BackupsClient(pba.IamToken(TOKEN), transport=_flaky(), retry=QUICK) as c:
            assert len((await c.get_backups_page(CLUSTER)).backups) == 1
    finally:
        observe._tracer.cache_clear()
    assert spans.get_finished_spans() == ()

"""What the client tells the user's logs, metrics and traces: one record per attempt.

`BackupsClient(on_attempt=...)` calls each hook with an `Attempt` once an attempt has
ended (and, when it failed, once the wait before the next one is decided). When
`opentelemetry-api` is installed, each call and each attempt is also a span with the
standard HTTP client attributes; without it, nothing happens.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import attrs

from .errors import ApiError

log = logging.getLogger("pg_backups_async")

_trace: Any
try:  # an optional extra: pip install 'pg-backups-async[otel]'
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    _trace = None


@attrs.frozen
class Attempt:
    """One HTTP attempt of a call, as it ended.

    `call` is the API call (`Cluster.listBackups`); `path` the request's path (never a
    token); `status` the HTTP status (None when no answer came); `attempt` counts from
    1 within the call; `duration` is in seconds; `retry_wait` is the wait before the
    next attempt (None when there is none); `error` is the `ApiError` it ended with.
    """

    call: str
    method: str
    path: str
    attempt: int
    status: int | None
    duration: float
    retry_wait: float | None
    client_request_id: str | None
    request_id: str | None
    error: ApiError | None = None


class AttemptHook(Protocol):
    """What `on_attempt=` takes: a function called with every `Attempt`.

    It runs in the event loop, once an attempt has ended: keep it quick. What it
    returns is ignored; an exception it raises is logged and never fails the call.
    """

    def __call__(self, attempt: Attempt, /) -> object:
        """Take note of one attempt."""


def check_hooks(hooks: AttemptHook | Sequence[AttemptHook] | None) -> tuple[AttemptHook, ...]:
    """The hooks as a tuple; `TypeError` for anything that is not callable."""
    if hooks is None:
        return ()
    items = (hooks,) if callable(hooks) else tuple(hooks)
    for hook in items:
        if not callable(hook):
            raise TypeError(f"on_attempt takes functions, not {type(hook).__name__}")
    return items


def emit(hooks: tuple[AttemptHook, ...], attempt: Attempt) -> None:
    """Call each hook; one that raises is logged and skipped, never failing the call."""
    for hook in hooks:
        try:
            hook(attempt)
        except Exception:  # observability never breaks a call
            log.exception("an on_attempt hook raised; carrying on")


_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()


@functools.cache
def _tracer() -> Any:
    """The library's tracer, or None without OpenTelemetry."""
    if _trace is None:
        return None
    from . import __version__

    return _trace.get_tracer("pg_backups_async", __version__)


def active_tracer() -> Any:
    """The tracer while an OpenTelemetry SDK is set up; None without one, so that an
    installed API with nothing behind it costs no span per call. (Asking costs an
    environment lookup: a call asks once, for itself and its attempts.)"""
    if _trace is None or isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider):
        return None
    return _tracer()


def call_span(tracer: Any, call: str) -> AbstractContextManager[Any]:
    """A span around one call, when there is a tracer (`active_tracer()`)."""
    if tracer is None:
        return _NO_SPAN
    span: AbstractContextManager[Any] = tracer.start_as_current_span(
        call, kind=_trace.SpanKind.CLIENT, attributes={"rpc.method": call}
    )
    return span


def attempt_span(
    tracer: Any, method: str, url: object, host: str, port: int | None, attempt: int
) -> AbstractContextManager[Any]:
    """A span around one HTTP attempt, with the standard HTTP client attributes; it
    gives the span (None when there is none). `url` is made a string only for a span."""
    if tracer is None:
        return _NO_SPAN
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.full": str(url),
        "server.address": host,
    }
    if port is not None:
        attributes["server.port"] = port
    if attempt > 1:
        attributes["http.request.resend_count"] = attempt - 1
    span: AbstractContextManager[Any] = tracer.start_as_current_span(
        method, kind=_trace.SpanKind.CLIENT, attributes=attributes
    )
    return span


def end_attempt_span(span: Any, status: int | None, error: ApiError | None) -> None:
    """Record an attempt's outcome on its span (if there is one)."""
    if span is None:
        return
    if status is not None:
        span.set_attribute("http.response.status_code", status)
    if error is not None:
        span.set_attribute("error.type", str(status) if status else type(error).__name__)
        span.set_status(_trace.Status(_trace.StatusCode.ERROR))

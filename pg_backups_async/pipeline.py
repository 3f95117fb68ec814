"""The request pipeline: one call of the table, with auth, retries, a deadline and hooks.

A call goes: get a token (exchanging it through the same transport and retry loop if
need be), send under the call's retry loop, and on a 401 drop the token and send once
more with a fresh one. One deadline, `RetryPolicy.max_time`, bounds it all. Every HTTP
attempt of the API call is reported to the hooks, numbered from 1 within the call; the
token exchange's own requests are not counted there.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
from yarl import URL

from . import protocol
from .auth import Credentials, Exchange, ExchangedCredentials, IamToken, check_token
from .errors import ApiError, AuthError, NetworkError, UnauthenticatedError
from .limits import DEFAULT_MAX_PAGES, SERVER_DEFAULT_PAGE_SIZE, STREAM_PAGE_SIZE
from .observe import (
    Attempt,
    AttemptHook,
    active_tracer,
    attempt_span,
    call_span,
    emit,
    end_attempt_span,
)
from .paging import PageStream, ResumePoint
from .protocol import Call, Context, Service
from .ratelimit import RateLimiter
from .retry import RetryBudget, Retrying, RetryPolicy
from .transport import HttpRequest, Transport

R = TypeVar("R")


@attrs.frozen
class Settings:
    """What a pipeline sends with: credentials, where each service is, retries, limits
    and hooks."""

    credentials: Credentials
    base_urls: Mapping[Service, URL]
    retry: RetryPolicy
    retry_budget: RetryBudget | None
    rate_limiter: RateLimiter | None
    max_response_bytes: int
    hooks: tuple[AttemptHook, ...]


class Pipeline:
    """Sends the table's calls through a transport, as `settings` say.

    `transport()` gives the open transport, or raises `RuntimeError` when there is none.
    """

    def __init__(self, settings: Settings, transport: Callable[[], Transport]) -> None:
        self.settings = settings
        self._transport = transport

    async def call(self, call: Call[R], arguments: Mapping[str, Any]) -> R:
        """One call: its request built (and so checked), then sent with auth and retries."""
        request = call.request(arguments)
        transport = self._transport()
        settings = self.settings
        retrying = Retrying(settings.retry, settings.retry_budget)
        parse = call.parser(arguments.get("page_size"))
        page_token = arguments.get("page_token") or None
        outcome = _Outcome()
        token = ""

        async def attempt() -> R:
            return await self._attempt(
                transport, request, parse, token, retrying, outcome, page_token, tracer
            )

        def report(_: int, error: ApiError | None, wait: float | None) -> None:
            emit(
                settings.hooks,
                Attempt(
                    call.name,
                    "GET",
                    request.path,
                    outcome.number,
                    outcome.status,
                    outcome.duration,
                    wait,
                    outcome.client_request_id,
                    outcome.request_id,
                    error,
                ),
            )

        reporting = report if settings.hooks else None
        tracer = active_tracer()
        with call_span(tracer, call.name):
            try:
                token = await self._token(transport, retrying, page_token)
                try:
                    return await retrying.run(attempt, report=reporting)
                except UnauthenticatedError:
                    if not settings.credentials.invalidate(token):
                        raise
                token = await self._token(transport, retrying, page_token)  # a fresh one
                return await retrying.run(attempt, report=reporting)
            except NetworkError as error:
                failure = _spent(error, retrying)
            raise failure  # outside the except block: nothing in its context

    def stream(
        self,
        call: Call[Any],
        arguments: Mapping[str, Any],
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        max_items: int | None = None,
        max_pages: int | None = DEFAULT_MAX_PAGES,
        resume: ResumePoint | str | None = None,
        prefetch: bool = True,
    ) -> PageStream[Any, Any]:
        """A stream over a list call, its arguments all checked now, before any request.

        No `page_size` asks for pages of `STREAM_PAGE_SIZE` (1000): the fewest requests.
        """
        if page_size is None:
            page_size = STREAM_PAGE_SIZE
        skip = 0
        if resume is not None:
            if page_token is not None:
                raise ValueError("pass page_token or resume, not both")
            if isinstance(resume, str):
                resume = ResumePoint.parse(resume)
            if not isinstance(resume, ResumePoint):
                raise TypeError(
                    f"resume must be a ResumePoint or str, not {type(resume).__name__}"
                )
            page_token, skip = resume.page_token, resume.skip  # checked when it was made
        checked = dict(arguments, page_size=page_size, page_token=page_token)
        call.request(checked)  # every argument checked, before the first page is asked for
        protocol.validate_max_items(max_items)
        protocol.validate_max_pages(max_pages)
        self._transport()

        async def fetch(token: str | None, size: int | None) -> Any:
            return await self.call(call, {**arguments, "page_size": size, "page_token": token})

        return PageStream(
            fetch,
            page_size=page_size,
            page_token=protocol.validate_page_token(page_token),
            skip=skip,
            max_items=max_items,
            max_pages=max_pages,
            prefetch=prefetch,
            default_page_size=SERVER_DEFAULT_PAGE_SIZE,
            name=f"{call.name}({', '.join(str(v) for v in arguments.values() if v)})",
        )

    async def _token(
        self, transport: Transport, retrying: Retrying, page_token: str | None
    ) -> str:
        """A token for this call, within its deadline; `AuthError` if none can be had."""
        credentials = self.settings.credentials
        if isinstance(credentials, IamToken):
            return await credentials.token()  # checked when made; nothing to wait for
        if isinstance(credentials, ExchangedCredentials):
            try:
                return await credentials.token_via(Exchange(transport, retrying))
            except AuthError as error:
                failure = error if page_token is None else error.evolve(page_token=page_token)
            raise failure  # outside the except block: nothing in its context
        try:
            async with asyncio.timeout_at(retrying.deadline):
                token = await credentials.token()
        except TimeoutError:
            failure = AuthError(
                f"{type(credentials).__name__}.token() gave no token within the call's max_time",
                retryable=False,
                page_token=page_token,
            )
        else:
            try:
                return check_token(token, name="the token from credentials")
            except (TypeError, ValueError) as error:
                failure = AuthError(str(error), retryable=False, page_token=page_token)
        raise failure

    async def _attempt(
        self,
        transport: Transport,
        request: protocol.Request,
        parse: Callable[[bytes], R],
        token: str,
        retrying: Retrying,
        outcome: _Outcome,
        page_token: str | None,
        tracer: Any,
    ) -> R:
        """One request: a 2xx answer's body parsed, or the `ApiError` for anything else."""
        settings = self.settings
        limiter = settings.rate_limiter
        if limiter is not None and not await limiter.acquire(within=retrying.remaining()):
            outcome.begin(None)
            refused = NetworkError(
                f"the call's deadline (max_time, {settings.retry.max_time:g} s) would pass "
                "waiting for its turn under the rate limit",
                retryable=False,
                page_token=page_token,
            )
            outcome.failed(refused)
            raise refused
        client_request_id = str(uuid.uuid4())
        base = settings.base_urls[request.service]
        url = request.url(base)
        outcome.begin(client_request_id)
        context = Context(client_request_id, page_token, (token,))
        with attempt_span(tracer, "GET", url, base.host or "", base.port, outcome.number) as span:
            try:
                headers = protocol.request_headers(token, client_request_id)
                failure: ApiError | None = None
                try:
                    response = await transport.send(
                        HttpRequest("GET", url, headers),
                        max_bytes=settings.max_response_bytes,
                        deadline=retrying.deadline,
                    )
                except ApiError as error:  # the transport's: add the page it was asking for
                    failure = error if page_token is None else error.evolve(page_token=page_token)
                if failure is not None:
                    raise failure  # outside the except block: nothing in its context
                outcome.answered(response.status, response.headers.get("x-request-id"))
                result = protocol.read_response(
                    response.status, response.headers, response.body, parse, context
                )
            except ApiError as error:
                outcome.failed(error)
                end_attempt_span(span, outcome.status, error)
                raise
            outcome.ended()
            end_attempt_span(span, outcome.status, None)
            return result


def _spent(error: NetworkError, retrying: Retrying) -> NetworkError:
    """The error, its sentence ending with the attempts made and the time spent."""
    attempts = "1 attempt" if retrying.attempts == 1 else f"{retrying.attempts} attempts"
    spent = max(0.0, retrying.policy.max_time - retrying.remaining())
    took = f"{spent * 1000:.0f} ms" if spent < 0.1 else f"{spent:.1f} s"
    return error.evolve(message=f"{error.message} ({attempts} in {took})")


@attrs.define
class _Outcome:
    """How the latest attempt of a call went, for the `on_attempt` hooks."""

    number: int = 0
    started: float = 0.0
    duration: float = 0.0
    status: int | None = None
    client_request_id: str | None = None
    request_id: str | None = None

    def begin(self, client_request_id: str | None) -> None:
        self.number += 1
        self.started = time.perf_counter()
        self.status = self.request_id = None
        self.client_request_id = client_request_id

    def answered(self, status: int, request_id: str | None) -> None:
        self.status, self.request_id = status, request_id

    def failed(self, error: ApiError) -> None:
        self.status = error.http_status
        self.request_id = error.request_id
        self.ended()

    def ended(self) -> None:
        self.duration = time.perf_counter() - self.started

"""One prefetching page stream for every list call: "fetch a page by token" is all it needs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from .errors import ApiError, ResponseFormatError
from .protocol import SERVER_DEFAULT_PAGE_SIZE

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Page(Protocol[T_co]):
    """What a stream needs of a page: its items, the next token, and a trimmed copy."""

    @property
    def items(self) -> tuple[T_co, ...]: ...

    @property
    def next_page_token(self) -> str | None: ...

    def head(self, count: int) -> Self: ...


P = TypeVar("P", bound=Page[object])

FetchPage = Callable[[str | None, int | None], Awaitable[P]]
"""`fetch(page_token, page_size)` -> the page; None asks for the first page / default size."""


class AsyncClosing:
    """`async with` for anything with `aclose()`: leaving the block closes it."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _retrieve(task: asyncio.Task[object]) -> None:
    # Mark a failed prefetch's exception as retrieved even if nobody awaits it.
    if not task.cancelled():
        task.exception()


class PageStream(AsyncClosing, Generic[P, T]):
    """Items of a paged listing, fetching the next page while the caller works on this one.

    At most one page is fetched ahead (none with `prefetch=False`: each page is asked
    for only when it is needed). Use it with `async for`; use `async with` (or
    `aclose()`) to stop early with nothing left running. `pages()` iterates pages
    instead of items. `next_page_token` is the token to resume from later: the page
    after the last one fully handed out, None once the listing is complete.
    """

    def __init__(
        self,
        fetch: FetchPage[P],
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        max_items: int | None = None,
        prefetch: bool = True,
        name: str = "listing",
    ) -> None:
        self._fetch = fetch
        self._prefetch = prefetch
        self._page_size = page_size
        self._max_items = max_items
        self._name = name
        self._request_token = page_token
        self._resume_token = page_token
        self._seen_tokens: set[str] = set() if page_token is None else {page_token}
        self._received = 0
        self._task: asyncio.Task[P] | None = None
        self._task_token: str | None = None
        self._fetch_when_needed = True
        self._exhausted = False
        self._closed = False
        self._deferred_error: ApiError | None = None
        self._mode: str | None = None
        self._items: tuple[T, ...] = ()
        self._index = 0
        self._after_page: str | None = None

    @property
    def next_page_token(self) -> str | None:
        """The token to resume from: the page after the last one fully handed out."""
        return self._resume_token

    @property
    def closed(self) -> bool:
        """Whether the stream has ended, by exhaustion, error or `aclose()`."""
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<PageStream {self._name} {state}, {self._received} items received>"

    def __aiter__(self) -> Self:
        self._claim("items")
        return self

    async def __anext__(self) -> T:
        self._claim("items")
        while self._index >= len(self._items):
            page = await self._next_page()
            self._items = page.items  # type: ignore[assignment]
            self._index = 0
            if not self._items:
                self._resume_token = self._after_page
        item = self._items[self._index]
        self._index += 1
        if self._index == len(self._items):
            self._resume_token = self._after_page
        return item

    def pages(self) -> PageIterator[P]:
        """Iterate whole pages instead of items (with the same prefetch and limits)."""
        self._claim("pages")
        return PageIterator(self)

    async def aclose(self) -> None:
        """Stop: cancel the page being fetched ahead and wait until it has stopped."""
        self._closed = True
        self._items = ()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    def __del__(self) -> None:
        # A stream dropped without aclose(): stop its prefetch rather than leak it.
        task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                task.cancel()

    def _claim(self, mode: str) -> None:
        if self._mode is None:
            self._mode = mode
        elif self._mode != mode:
            raise RuntimeError("a stream is iterated either by item or by pages(), not both")

    def _start_fetch(self) -> None:
        size = self._page_size
        if self._max_items is not None:
            remaining = self._max_items - self._received
            if remaining <= 0:
                self._exhausted = True
                return
            if size is None:
                size = remaining if remaining < SERVER_DEFAULT_PAGE_SIZE else None
            else:
                size = min(size, remaining)
        token = self._request_token
        self._task_token = token
        self._task = asyncio.create_task(
            self._fetch_page(self._fetch, token, size),
            name=f"pg-backups-async prefetch {self._name}",
        )
        self._task.add_done_callback(_retrieve)

    @staticmethod
    async def _fetch_page(fetch: FetchPage[P], token: str | None, size: int | None) -> P:
        # A static method, so the task holds no reference to the stream.
        return await fetch(token, size)

    async def _next_page(self) -> P:
        """The next page, the one after it already requested; StopAsyncIteration at the end."""
        if self._closed:
            raise StopAsyncIteration
        if self._deferred_error is not None:
            error, self._deferred_error = self._deferred_error, None
            await self.aclose()
            raise error
        if self._fetch_when_needed:
            self._fetch_when_needed = False
            self._start_fetch()
        task = self._task
        if task is None:
            await self.aclose()
            raise StopAsyncIteration
        try:
            page = await task
        except ApiError as error:
            error.page_token = self._task_token
            await self.aclose()
            raise
        except BaseException:
            await self.aclose()
            raise
        self._task = None
        return self._accept(page)

    def _accept(self, page: P) -> P:
        count = len(page.items)
        if self._max_items is not None and self._received + count > self._max_items:
            # The server sent more than asked: hand out exactly max_items, and resume
            # from this page's own token, since it was not handed out in full.
            page = page.head(self._max_items - self._received)
            self._received = self._max_items
            self._after_page = self._task_token
            self._exhausted = True
            return page
        self._received += count
        token = page.next_page_token
        self._after_page = token
        if token is None:
            self._exhausted = True
        elif token in self._seen_tokens:
            self._exhausted = True
            self._deferred_error = ResponseFormatError(
                f"the service repeated page token {token[:20]!r} in one {self._name}; "
                "stopping instead of looping",
                field="nextPageToken",
            )
        else:
            self._seen_tokens.add(token)
            self._request_token = token
            if self._prefetch:
                self._start_fetch()
            else:
                self._fetch_when_needed = True
        return page


class PageIterator(AsyncClosing, Generic[P]):
    """Pages of a `PageStream`; closing it closes the stream."""

    def __init__(self, stream: PageStream[P, Any]) -> None:
        self._stream = stream

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> P:
        page = await self._stream._next_page()
        self._stream._resume_token = self._stream._after_page
        return page

    async def aclose(self) -> None:
        """Close the underlying stream."""
        await self._stream.aclose()

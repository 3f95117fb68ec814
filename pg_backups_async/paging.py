"""One prefetching page stream for every list call: "fetch a page by token" is all it needs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, Self, TypeVar

import attrs

from .aio import AsyncClosing, retrieve_exception
from .errors import ApiError, ResponseFormatError
from .limits import (
    DEFAULT_MAX_PAGES,
    MAX_EMPTY_PAGES,
    MAX_PAGE_SIZE,
    MAX_RESUME_SKIP,
    SERVER_DEFAULT_PAGE_SIZE,
)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Page(Protocol[T_co]):
    """What a stream needs of a page: its items, the next token, and a trimmed copy."""

    @property
    def items(self) -> tuple[T_co, ...]: ...

    @property
    def next_page_token(self) -> str | None: ...

    def head(self, count: int) -> Self: ...

    def skip(self, count: int) -> Self: ...


P = TypeVar("P", bound=Page[object])

FetchPage = Callable[[str | None, int | None], Awaitable[P]]
"""`fetch(page_token, page_size)` -> the page; None asks for the first page / default size."""


_RESUME_MARK = "~"


def _check_token(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"page_token must be a str or None, not {type(value).__name__}")


def _check_skip(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"skip must be an int, not {type(value).__name__}")
    if not 0 <= value <= MAX_RESUME_SKIP:
        raise ValueError(f"a resume point skips 0 to {MAX_RESUME_SKIP} items, not {value}")


@attrs.frozen
class ResumePoint:
    """Where a listing stopped, to the item: a page's token, and how many of that page's
    items were already handed out.

    `str()` gives a short text (`~3~MTAw`) that `parse()` and the list calls'
    `resume=` (and the CLI's `--page-token`) take back. A `skip` that is not an int
    from 0 to `MAX_RESUME_SKIP` (999) is refused when the point is made.
    """

    page_token: str | None = attrs.field(default=None, validator=_check_token)
    skip: int = attrs.field(default=0, validator=_check_skip)

    def __str__(self) -> str:
        return f"{_RESUME_MARK}{self.skip}{_RESUME_MARK}{self.page_token or ''}"

    @classmethod
    def parse(cls, text: str) -> ResumePoint:
        """A resume point from its text, or `ValueError`."""
        if not isinstance(text, str):
            raise TypeError(f"a resume point must be a str, not {type(text).__name__}")
        head, rest = text[: len(_RESUME_MARK)], text[len(_RESUME_MARK) :]
        skip, mark, token = rest.partition(_RESUME_MARK)
        valid = head == mark == _RESUME_MARK and skip.isascii() and skip.isdigit()
        if not valid or len(skip) > 4:
            raise ValueError("not a resume point (such as ~3~MTAw)")
        return cls(page_token=token or None, skip=int(skip))

    @staticmethod
    def looks_like(text: str) -> bool:
        """Whether `text` is a resume point's text rather than a service page token."""
        return text.startswith(_RESUME_MARK)


@attrs.define
class _Request(Generic[P]):
    """The next page to fetch: its token and, once asked for, the task fetching it."""

    token: str | None
    task: asyncio.Task[P] | None = None


@attrs.frozen
class _Handout(Generic[P]):
    """A page as handed out, with what is needed to say where the listing stands."""

    page: P
    token: str | None  # the page's own token (None: the first page)
    offset: int  # how many of the page's items were skipped (a resumed stream's first)
    after: str | None  # the next page's token
    trimmed: bool  # cut short by max_items: the rest of the page is not handed out


class PageStream(AsyncClosing, Generic[P, T]):
    """Items of a paged listing, fetching the next page while the caller works on this one.

    At most one page is fetched ahead (none with `prefetch=False`: each page is asked
    for only when it is needed). Use it with `async for`; use `async with` (or
    `aclose()`) to stop early with nothing left running. `pages()` iterates pages
    instead of items. `next_page_token` is the service's token of the page after the
    last one fully handed out (None once the listing is complete), while
    `resume_point` is exact to the item: resuming from it repeats and loses nothing,
    wherever the caller stopped. `skip` drops that many items of the first page.
    Closing it from another task ends its iteration; one task at a time may iterate it.
    `default_page_size` is the service's page size when none is asked for, so that
    `max_items` can ask for less when it needs less.

    A listing that never ends is cut off with `ResponseFormatError`: a repeated page
    token, `MAX_EMPTY_PAGES` empty pages in a row, or more than `max_pages` pages.
    """

    def __init__(
        self,
        fetch: FetchPage[P],
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        skip: int = 0,
        max_items: int | None = None,
        max_pages: int | None = DEFAULT_MAX_PAGES,
        prefetch: bool = True,
        default_page_size: int = SERVER_DEFAULT_PAGE_SIZE,
        name: str = "listing",
    ) -> None:
        self._fetch = fetch
        self._page_size = page_size
        self._default_page_size = default_page_size
        self._max_items = max_items
        self._prefetch = prefetch
        self._name = name
        # What comes after the pages received: a page to fetch, an error to raise once
        # the page before it is handed out, or None at the end of the listing.
        self._next: _Request[P] | ApiError | None = _Request(page_token)
        self._seen_tokens: set[str] = set() if page_token is None else {page_token}
        self._max_pages = max_pages
        self._skip = skip  # items of the first page to drop (a resumed listing)
        self._received = 0  # items received, counted against max_items
        self._pages = 0  # pages received, counted against max_pages
        self._empty_in_a_row = 0
        # Where the listing stands: the page being handed out (None before the first),
        # and how many of its items are handed out already.
        self._current: _Handout[P] | None = None
        self._index = 0
        self._items: tuple[T, ...] = ()  # the current page's items, while iterated by item
        self._start_point = ResumePoint(page_token, skip)
        self._mode: str | None = None
        self._closed = False
        self._busy = False  # a task is waiting for a page

    @property
    def next_page_token(self) -> str | None:
        """The service's token of the page after the last one fully handed out."""
        point = self.resume_point
        return None if point is None else point.page_token

    @property
    def resume_point(self) -> ResumePoint | None:
        """Where to resume so as to repeat and lose nothing; None once complete."""
        current = self._current
        if current is None:
            return self._start_point
        if self._index < len(current.page.items) or current.trimmed:
            return ResumePoint(current.token, current.offset + self._index)
        return None if current.after is None else ResumePoint(current.after)

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
        # Runs per item, so kept to the least: `_items` is the page being handed out
        # by item, and empty in every other state (pages mode, closed, not started).
        index = self._index
        items = self._items
        if index < len(items):
            self._index = index + 1
            return items[index]
        return await self._next_item()

    async def _next_item(self) -> T:
        self._claim("items")
        if self._closed:
            raise StopAsyncIteration
        while self._current is None or self._index >= len(self._current.page.items):
            self._current, self._index = await self._next_page(), 0
            self._items = self._current.page.items  # type: ignore[assignment]
        item = self._items[self._index]
        self._index += 1
        return item

    def pages(self) -> PageIterator[P]:
        """Iterate whole pages instead of items (with the same prefetch and limits)."""
        self._claim("pages")
        return PageIterator(self)

    async def aclose(self) -> None:
        """Stop: cancel the page being fetched ahead and wait until it has stopped."""
        self._closed = True
        self._items = ()
        request, self._next = self._next, None
        if isinstance(request, _Request) and request.task is not None:
            request.task.cancel()
            await asyncio.wait([request.task])

    def __del__(self) -> None:
        # A stream dropped without aclose(): stop its prefetch rather than leak it.
        request = self._next
        if isinstance(request, _Request) and request.task is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                request.task.cancel()

    def _claim(self, mode: str) -> None:
        if self._mode is None:
            self._mode = mode
        elif self._mode != mode:
            raise RuntimeError("a stream is iterated either by item or by pages(), not both")

    async def _next_page_for_pages(self) -> P:
        self._current = await self._next_page()
        self._index = len(self._current.page.items)
        return self._current.page

    async def _next_page(self) -> _Handout[P]:
        """The next page, with where it stands in the listing.

        The page after it is asked for at once (with prefetch); StopAsyncIteration at
        the end of the listing, and the stream closes on any error.
        """
        request = self._next
        if self._closed or request is None:
            await self.aclose()
            raise StopAsyncIteration
        if isinstance(request, ApiError):
            await self.aclose()
            raise request
        if self._busy:
            raise RuntimeError("this stream is already being iterated by another task")
        task = request.task or self._start(request)
        self._busy = True
        try:
            page = await task
        except asyncio.CancelledError:
            if self._closed and not _cancelling():
                raise StopAsyncIteration from None  # aclose() from another task
            await self.aclose()
            raise
        except BaseException:
            await self.aclose()
            raise
        finally:
            self._busy = False
        return self._accept(page, request.token)

    def _start(self, request: _Request[P]) -> asyncio.Task[P]:
        size = self._page_size
        if self._max_items is not None:
            remaining = self._max_items - self._received
            if size is None:
                size = remaining if remaining < self._default_page_size else None
            else:
                size = min(size, remaining)
        if self._skip:  # the items to drop come on top of those wanted
            size = min(self._skip + (size or self._default_page_size), MAX_PAGE_SIZE)
        request.task = asyncio.create_task(
            _fetch_page(self._fetch, request.token, size),
            name=f"pg-backups-async prefetch {self._name}",
        )
        request.task.add_done_callback(retrieve_exception)
        return request.task

    def _accept(self, page: P, token: str | None) -> _Handout[P]:
        """Count the page in and decide what comes next."""
        offset, self._skip = self._skip, 0
        if offset:
            page = page.skip(offset)
        count = len(page.items)
        after = page.next_page_token
        if self._max_items is not None and self._received + count >= self._max_items:
            trimmed = self._received + count > self._max_items
            if trimmed:  # hand out exactly max_items; the rest of the page is not
                page = page.head(self._max_items - self._received)
            self._received = self._max_items
            self._next = None
            return _Handout(page, token, offset, after, trimmed)
        self._received += count
        self._pages += 1
        self._empty_in_a_row = 0 if count else self._empty_in_a_row + 1
        if after is None:
            self._next = None
        elif after in self._seen_tokens:
            self._next = self._endless(f"the service repeated page token {after[:20]!r}")
        elif self._empty_in_a_row >= MAX_EMPTY_PAGES:
            self._next = self._endless(f"the service sent {MAX_EMPTY_PAGES} empty pages in a row")
        elif self._max_pages is not None and self._pages >= self._max_pages:
            self._next = self._endless(
                f"the listing did not end within max_pages={self._pages} pages"
            )
        else:
            self._seen_tokens.add(after)
            self._next = _Request(after)
            if self._prefetch:
                self._start(self._next)
        return _Handout(page, token, offset, after, trimmed=False)

    def _endless(self, what: str) -> ResponseFormatError:
        return ResponseFormatError(
            f"{what} in one {self._name}; stopping instead of looping", field="nextPageToken"
        )


def _cancelling() -> bool:
    """Whether the current task is being cancelled (rather than what it awaits)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _fetch_page(fetch: FetchPage[P], token: str | None, size: int | None) -> P:
    # A module function, so the task holds no reference to the stream.
    return await fetch(token, size)


class PageIterator(AsyncClosing, Generic[P]):
    """Pages of a `PageStream`; closing it closes the stream."""

    def __init__(self, stream: PageStream[P, Any]) -> None:
        self._stream = stream

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> P:
        return await self._stream._next_page_for_pages()

    async def aclose(self) -> None:
        """Close the underlying stream."""
        await self._stream.aclose()

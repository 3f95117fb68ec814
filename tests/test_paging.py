"""The prefetching stream: over HTTP against the emulator, and over an in-memory fetch."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

import pg_backups_async as pba
from pg_backups_async.emulator import Emulator, Fault
from tests.conftest import our_tasks

pytestmark = pytest.mark.collect_garbage

GUARD = 5.0  # seconds: a hung test fails instead of hanging; never a measurement


async def test_streams_every_backup_in_order(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    cluster = emulator.cluster_ids[0]
    async with client.list_backups(cluster, page_size=40) as stream:
        backups = [b async for b in stream]
    assert backups == emulator.backups(cluster)
    assert len(backups) == 250
    assert len(emulator.requests) == 7
    assert stream.next_page_token is None
    assert stream.closed


async def test_default_page_size_and_plain_async_for(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    cluster = emulator.cluster_ids[0]
    backups = [b async for b in client.list_backups(cluster)]
    assert len(backups) == 250
    # A stream asks for pages of 1000 (issue 21): one request, not three of the
    # service's default 100; a single-page call keeps the service's default.
    assert [r.query.get("pageSize") for r in emulator.requests] == ["1000"]
    await client.get_backups_page(cluster)
    assert emulator.requests[-1].query.get("pageSize") is None


async def test_fan_outs_and_inventories_ask_for_pages_of_1000(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    [r async for r in client.list_backups_many(emulator.cluster_ids)]
    await client.inventory(cluster_ids=emulator.cluster_ids)
    listings = [r for r in emulator.requests if r.path.endswith("/backups")]
    assert len(listings) == 2 * len(emulator.cluster_ids)
    assert {r.query.get("pageSize") for r in listings} == {"1000"}


async def test_empty_cluster_streams_nothing(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    assert [b async for b in client.list_backups(emulator.cluster_ids[3])] == []


async def test_next_page_is_fetched_while_the_caller_works_on_this_one(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    async with client.list_backups(emulator.cluster_ids[0], page_size=50) as stream:
        seen = 0
        async for _ in stream:
            seen += 1
            page = (seen - 1) // 50 + 1
            if seen % 50 == 1 and page < 5:
                # Still on the first item of this page: the next one is already asked for.
                await asyncio.wait_for(emulator.wait_for_requests(page + 1), GUARD)
            # ...and never more than one page ahead.
            assert len(emulator.requests) <= page + 1
    assert seen == 250


async def test_break_inside_async_with_cancels_the_prefetch(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    # The first page comes at once; the second stalls on the server.
    emulator.inject(Fault(status=None), Fault(status=None, delay=60.0))
    async with client.list_backups(emulator.cluster_ids[0], page_size=50) as stream:
        async for _ in stream:
            await asyncio.wait_for(emulator.wait_for_requests(2), GUARD)
            break
    assert stream.closed
    assert our_tasks() == []
    assert len(emulator.requests) == 2
    assert stream.next_page_token is None  # nothing fully handed out: resume from the start
    assert [b async for b in stream] == []


async def test_closing_the_client_closes_streams_left_open(emulator: Emulator) -> None:
    emulator.inject(Fault(status=None), Fault(status=None, delay=60.0))
    async with pba.BackupsClient(pba.IamToken("t"), endpoint=emulator.url) as client:
        stream = client.list_backups(emulator.cluster_ids[0], page_size=50)
        async for _ in stream:
            await asyncio.wait_for(emulator.wait_for_requests(2), GUARD)
            break
        assert len(our_tasks()) == 1  # the prefetch, still running
    assert stream.closed
    assert our_tasks() == []


async def test_cancelling_the_consumer_cancels_the_prefetch(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    emulator.inject(Fault(status=None), Fault(status=None, delay=60.0))
    started = asyncio.Event()

    async def consume(stream: pba.PageStream[pba.BackupsPage, pba.Backup]) -> None:
        async for _ in stream:
            started.set()

    stream = client.list_backups(emulator.cluster_ids[0], page_size=50)
    task = asyncio.create_task(consume(stream))
    await asyncio.wait_for(started.wait(), GUARD)
    await asyncio.wait_for(emulator.wait_for_requests(2), GUARD)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stream.closed
    assert our_tasks() == []


async def test_an_error_on_the_next_page_comes_after_this_page_with_a_resume_token(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    cluster = emulator.cluster_ids[0]
    emulator.inject(Fault(status=None), Fault(status=403))
    got = []
    async with client.list_backups(cluster, page_size=50) as stream:
        with pytest.raises(pba.PermissionDeniedError) as caught:
            async for backup in stream:
                got.append(backup)
    assert got == emulator.backups(cluster)[:50]
    assert caught.value.page_token == "NTA="  # base64("50"): the page that failed
    assert stream.next_page_token == "NTA="
    resumed = [b async for b in client.list_backups(cluster, page_token=caught.value.page_token)]
    assert got + resumed == emulator.backups(cluster)


async def test_resuming_from_next_page_token(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    cluster = emulator.cluster_ids[0]
    async with client.list_backups(cluster, page_size=60, max_items=120) as stream:
        first = [b async for b in stream]
    assert stream.next_page_token == "MTIw"  # base64("120")
    rest = [b async for b in client.list_backups(cluster, page_token=stream.next_page_token)]
    assert first + rest == emulator.backups(cluster)


async def test_max_items_trims_exactly_and_shrinks_the_last_request(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    cluster = emulator.cluster_ids[0]
    backups = [b async for b in client.list_backups(cluster, page_size=50, max_items=120)]
    assert backups == emulator.backups(cluster)[:120]
    assert [r.query["pageSize"] for r in emulator.requests] == ["50", "50", "20"]


@pytest.mark.parametrize(
    ("max_items", "sizes"),
    [(5, ["5"]), (99, ["99"]), (100, ["100"]), (150, ["150"])],
)
async def test_max_items_with_the_default_page_size(
    client: pba.BackupsClient, emulator: Emulator, max_items: int, sizes: list[str | None]
) -> None:
    backups = [b async for b in client.list_backups(emulator.cluster_ids[0], max_items=max_items)]
    assert len(backups) == max_items
    assert [r.query.get("pageSize") for r in emulator.requests] == sizes


async def test_pages(client: pba.BackupsClient, emulator: Emulator) -> None:
    cluster = emulator.cluster_ids[0]
    stream = client.list_backups(cluster, page_size=100)
    tokens = []
    async with stream.pages() as pages:
        sizes = []
        async for page in pages:
            assert isinstance(page, pba.BackupsPage)
            sizes.append(len(page.backups))
            tokens.append(stream.next_page_token)
    assert sizes == [100, 100, 50]
    assert tokens == ["MTAw", "MjAw", None]
    with pytest.raises(RuntimeError, match="either by item or by pages"):
        stream.__aiter__()


async def test_pages_with_max_items(client: pba.BackupsClient, emulator: Emulator) -> None:
    stream = client.list_backups(emulator.cluster_ids[0], page_size=100, max_items=150)
    assert [len(p.backups) async for p in stream.pages()] == [100, 50]


# The stream alone, over an in-memory fetch (the service's misbehaviour, made to order).


def _page(ids: list[int], token: str | None) -> pba.BackupsPage:
    return pba.BackupsPage(tuple(pba.Backup(id=str(i)) for i in ids), token)


class Script:
    """A fetch that answers from a table of token -> page, and records its calls."""

    def __init__(self, pages: Mapping[str | None, pba.BackupsPage]) -> None:
        self.pages = pages
        self.calls: list[tuple[str | None, int | None]] = []

    async def __call__(self, token: str | None, size: int | None) -> pba.BackupsPage:
        self.calls.append((token, size))
        return self.pages[token]


def _ids(backups: list[pba.Backup]) -> list[str]:
    return [b.id for b in backups]


async def test_a_repeated_token_ends_in_an_error_not_a_loop() -> None:
    fetch = Script({None: _page([1, 2], "A"), "A": _page([3], "B"), "B": _page([4], "A")})
    got: list[pba.Backup] = []
    async with pba.PageStream(fetch) as stream:
        with pytest.raises(pba.ResponseFormatError, match="repeated page token") as caught:
            async for backup in stream:
                got.append(backup)
    assert _ids(got) == ["1", "2", "3", "4"]
    assert caught.value.field == "nextPageToken"
    assert [token for token, _ in fetch.calls] == [None, "A", "B"]


async def test_the_starting_token_counts_as_seen() -> None:
    fetch = Script({"S": _page([1], "S")})
    with pytest.raises(pba.ResponseFormatError):
        _ = [b async for b in pba.PageStream(fetch, page_token="S")]
    assert len(fetch.calls) == 1


async def test_an_empty_page_with_a_token_is_not_the_end() -> None:
    fetch = Script({None: _page([], "A"), "A": _page([], "B"), "B": _page([1], None)})
    stream: pba.PageStream[pba.BackupsPage, pba.Backup] = pba.PageStream(fetch)
    assert _ids([b async for b in stream]) == ["1"]
    assert len(fetch.calls) == 3


async def test_a_server_that_sends_more_than_asked_is_trimmed() -> None:
    fetch = Script({None: _page(list(range(10)), "A")})
    stream: pba.PageStream[pba.BackupsPage, pba.Backup] = pba.PageStream(fetch, max_items=3)
    assert _ids([b async for b in stream]) == ["0", "1", "2"]
    assert fetch.calls == [(None, 3)]
    assert stream.next_page_token is None  # that page was not handed out in full


async def test_a_trimmed_page_resumes_at_the_first_item_not_handed_out() -> None:
    fetch = Script({None: _page(list(range(10)), "A"), "A": _page([10], None)})
    stream: pba.PageStream[pba.BackupsPage, pba.Backup] = pba.PageStream(fetch, max_items=3)
    assert _ids([b async for b in stream]) == ["0", "1", "2"]
    assert stream.resume_point == pba.ResumePoint(None, 3)
    rest = pba.PageStream(fetch, page_token=None, skip=3)
    assert _ids([b async for b in rest]) == [str(i) for i in range(3, 11)]
    assert fetch.calls[-2:] == [(None, 103), ("A", None)]  # the skip is asked for on top


async def test_aclose_is_idempotent_and_ends_iteration() -> None:
    fetch = Script({None: _page([1, 2], "A"), "A": _page([3], None)})
    stream: pba.PageStream[pba.BackupsPage, pba.Backup] = pba.PageStream(fetch)
    assert (await stream.__anext__()).id == "1"
    await stream.aclose()
    await stream.aclose()
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_a_failed_prefetch_nobody_awaits_is_still_retrieved(
    loop_errors: list[dict[str, object]],
) -> None:
    async def fetch(token: str | None, size: int | None) -> pba.BackupsPage:
        if token is None:
            return _page([1, 2], "A")
        raise pba.UnavailableError("down", http_status=503)

    stream: pba.PageStream[pba.BackupsPage, pba.Backup] = pba.PageStream(fetch)
    assert (await stream.__anext__()).id == "1"
    prefetch = our_tasks()
    await asyncio.wait(prefetch)  # it failed, and nobody awaited it
    del stream, prefetch
    # the autouse fixture then collects garbage and asserts no "never retrieved" report


# An exact resume


@pytest.mark.parametrize("stop_after", [1, 19, 20, 21, 45, 249])
async def test_resuming_from_the_resume_point_repeats_and_loses_nothing(
    client: pba.BackupsClient, emulator: Emulator, stop_after: int
) -> None:
    cluster = emulator.cluster_ids[0]
    got: list[pba.Backup] = []
    async with client.list_backups(cluster, page_size=20) as stream:
        async for backup in stream:
            got.append(backup)
            if len(got) == stop_after:
                break
    point = stream.resume_point
    assert point is not None
    text = str(point)
    assert pba.ResumePoint.parse(text) == point
    rest = [b async for b in client.list_backups(cluster, page_size=20, resume=text)]
    assert got + rest == emulator.backups(cluster)  # 250 delivered, 250 unique


async def test_next_page_token_keeps_the_services_meaning(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    cluster = emulator.cluster_ids[0]
    got = []
    async with client.list_backups(cluster, page_size=20) as stream:
        async for backup in stream:
            got.append(backup)
            if len(got) == 45:
                break
    assert stream.next_page_token == "NDA="  # base64("40"): the page holding item 41
    assert stream.resume_point == pba.ResumePoint("NDA=", 5)


async def test_resume_points_at_the_edges(client: pba.BackupsClient, emulator: Emulator) -> None:
    cluster = emulator.cluster_ids[1]  # 40 backups
    stream = client.list_backups(cluster, page_size=15)
    assert stream.resume_point == pba.ResumePoint(None, 0)  # nothing handed out yet
    assert len([b async for b in stream]) == 40
    assert stream.resume_point is None  # complete
    # max_items in the middle of a page, then with a small page size and a skip.
    async with client.list_backups(cluster, page_size=15, max_items=20) as first:
        head = [b async for b in first]
    assert first.resume_point == pba.ResumePoint("MjA=")  # the second request asked for 5
    resumed = client.list_backups(cluster, page_size=3, max_items=4, resume="~2~MjA=")
    more = [b async for b in resumed]
    assert head + more == emulator.backups(cluster)[:20] + emulator.backups(cluster)[22:26]
    # by pages, too
    pages = client.list_backups(cluster, page_size=15, resume=pba.ResumePoint("MTU=", 5))
    sizes = [len(page.backups) async for page in pages.pages()]
    assert sizes == [15, 5]  # the first request asks for the 5 to skip on top of 15


def test_resume_point_text_is_checked() -> None:
    for text in ("MTU=", "~x~MTU=", "~~MTU=", "~12345~t", "3~MTU="):
        with pytest.raises(ValueError, match="resume point"):
            pba.ResumePoint.parse(text)
    assert pba.ResumePoint.parse("~0~") == pba.ResumePoint(None, 0)
    assert pba.ResumePoint.parse("~7~a~b") == pba.ResumePoint("a~b", 7)


async def test_resume_and_page_token_together_are_refused(
    client: pba.BackupsClient, emulator: Emulator
) -> None:
    with pytest.raises(ValueError, match="page_token or resume"):
        client.list_backups(emulator.cluster_ids[0], page_token="MTU=", resume="~1~MTU=")
    with pytest.raises(ValueError, match="0 to 999"):
        client.list_backups(emulator.cluster_ids[0], resume=pba.ResumePoint("MTU=", 1000))
    assert emulator.requests == []

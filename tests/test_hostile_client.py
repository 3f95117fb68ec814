"""Issue 22, the client's part: hostile servers and careless callers meet bounds.

Each test names the item of the issue it guards.
"""

from __future__ import annotations

import asyncio
import tracemalloc
import unicodedata
from typing import Any

import pytest

import pg_backups_async as pba
from pg_backups_async import limits
from pg_backups_async.emulator import Emulator, Fault
from pg_backups_async.models import BackupsPage
from pg_backups_async.paging import PageStream
from pg_backups_async.sanitize import printable, redact
from tests.conftest import ANCHOR, FAST_RETRY, TOKEN

# Item 2: listings are bounded by default; inventories summarize page by page.


async def _endless(token: str | None, size: int | None) -> BackupsPage:
    number = int(token or "0")
    return BackupsPage(backups=(pba.Backup(id=f"c:{number}"),), next_page_token=str(number + 1))


async def test_2_a_stream_is_bounded_by_default_pages() -> None:
    stream: PageStream[BackupsPage, pba.Backup] = PageStream(_endless)
    count = 0
    with pytest.raises(pba.ResponseFormatError, match="max_pages=10000"):
        async for _ in stream:
            count += 1
    assert count == limits.DEFAULT_MAX_PAGES == 10_000


async def test_2_max_pages_none_asked_for_is_no_bound() -> None:
    async with PageStream(_endless, max_pages=None) as stream:
        count = 0
        async for _ in stream:
            count += 1
            if count == limits.DEFAULT_MAX_PAGES + 5:
                break
    assert count == limits.DEFAULT_MAX_PAGES + 5


async def test_2_the_client_s_listings_default_to_the_bound(emulator: Emulator) -> None:
    for name in ("list_backups", "list_clusters", "list_folder_backups", "list_clouds"):
        method = getattr(pba.BackupsClient, name)
        assert method.__kwdefaults__["max_pages"] == limits.DEFAULT_MAX_PAGES, name
    for name in ("list_backups_many", "discover_clusters", "inventory"):
        method = getattr(pba.BackupsClient, name)
        assert method.__kwdefaults__["max_pages"] == limits.DEFAULT_MAX_PAGES, name


async def test_2_an_inventory_holds_one_page_not_the_cluster() -> None:
    # 40,000 backups in one listing: held, they would take tens of MB; summed up a page
    # at a time, the peak is a couple of pages.
    async with Emulator(anchor=ANCHOR, clusters=1, listing_size=40_000) as emulator:
        client = pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url)
        async with client:
            tracemalloc.start()
            try:
                inventory = await client.inventory(cluster_ids=emulator.cluster_ids)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    [line] = inventory
    assert line.backup_count == 40_000
    assert peak < 12_000_000, f"peak {peak:,} bytes"


# Item 6: the rate limiter gives a cancelled waiter's slot back, and honours deadlines.


class _Time:
    """The limiter's clock, frozen, and a sleep that records and then waits forever
    (or returns at once with `instant`)."""

    def __init__(self, instant: bool = False) -> None:
        self.now = 0.0
        self.waits: list[float] = []
        self.instant = instant

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if not self.instant:
            await asyncio.Event().wait()


async def test_6_a_cancelled_waiter_gives_its_slot_back() -> None:
    time = _Time()
    limiter = pba.RateLimiter(1.0, clock=time.clock, sleep=time.sleep)
    assert await limiter.acquire()  # slot 0: at once
    waiters = [asyncio.create_task(limiter.acquire()) for _ in range(50)]
    await asyncio.sleep(0)
    assert time.waits == [float(n) for n in range(1, 51)]
    for waiter in waiters:
        waiter.cancel()
    await asyncio.wait(waiters)
    time.instant = True
    assert await limiter.acquire()
    assert time.waits[-1] == 1.0  # the first slot given back, not the 51st
    assert limiter.acquired == 2


async def test_6_a_slot_given_back_in_the_middle_is_taken_by_the_next_caller() -> None:
    time = _Time()
    limiter = pba.RateLimiter(1.0, clock=time.clock, sleep=time.sleep)
    assert await limiter.acquire()
    first, second = (asyncio.create_task(limiter.acquire()) for _ in range(2))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.wait([first])
    time.instant = True
    assert await limiter.acquire()
    assert time.waits == [1.0, 2.0, 1.0]  # the freed slot at 1, not a new one at 3
    second.cancel()
    await asyncio.wait([second])


async def test_6_a_turn_beyond_within_is_not_waited_for_nor_taken() -> None:
    time = _Time(instant=True)
    limiter = pba.RateLimiter(1.0, clock=time.clock, sleep=time.sleep)
    for _ in range(5):
        assert await limiter.acquire()
    assert await limiter.acquire(within=2.0) is False
    assert await limiter.acquire(within=5.0) is True
    assert time.waits == [1.0, 2.0, 3.0, 4.0, 5.0]


async def test_6_waiting_for_a_slot_honours_the_call_s_deadline(emulator: Emulator) -> None:
    limiter = pba.RateLimiter(0.001)  # one request each 1000 s
    retry = pba.RetryPolicy(max_time=5.0)
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), endpoint=emulator.url, retry=retry, rate_limiter=limiter
    ) as client:
        await client.get_backups_page(emulator.cluster_ids[0])
        with pytest.raises(pba.NetworkError, match=r"max_time.*rate limit") as caught:
            await client.get_backups_page(emulator.cluster_ids[0])
    assert not caught.value.retryable
    assert len(emulator.requests) == 1
    assert limiter.acquired == 1


async def test_6_two_clients_sharing_a_limiter_hold_the_combined_rate(
    emulator: Emulator,
) -> None:
    time = _Time(instant=True)
    limiter = pba.RateLimiter(10.0, clock=time.clock, sleep=time.sleep)
    clients = [
        pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url, rate_limiter=limiter)
        for _ in range(2)
    ]
    async with clients[0] as one, clients[1] as two:
        assert one.rate_limiter is two.rate_limiter is limiter
        cluster = emulator.cluster_ids[0]
        await asyncio.gather(*(c.get_backups_page(cluster) for _ in range(10) for c in (one, two)))
    # The clock stands still: each request's turn is its wait from now. Twenty
    # requests from two clients take twenty distinct turns, 0.1 s apart: one rate.
    turns = sorted([0.0, *time.waits])
    assert turns == pytest.approx([n / 10 for n in range(20)])
    assert len(emulator.requests) == limiter.acquired == 20


# Item 11: the default response cap.


def test_11_the_default_response_cap_is_a_few_real_pages() -> None:
    cap = pba.BackupsClient.__init__.__kwdefaults__["max_response_bytes"]
    assert cap == limits.DEFAULT_MAX_RESPONSE_BYTES == 8 * 1024 * 1024


async def test_11_a_real_page_of_1000_is_well_under_the_cap() -> None:
    async with Emulator(anchor=ANCHOR, clusters=1, listing_size=1000) as emulator:
        async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url) as client:
            page = await client.get_backups_page(emulator.cluster_ids[0], page_size=1000)
            assert len(page.backups) == 1000
        async with pba.BackupsClient(
            pba.IamToken(TOKEN), endpoint=emulator.url, max_response_bytes=1_000_000
        ) as client:  # under 1 MB, as the issue measured
            await client.get_backups_page(emulator.cluster_ids[0], page_size=1000)


async def test_11_an_oversized_page_is_refused_by_default() -> None:
    async with Emulator(anchor=ANCHOR, clusters=1) as emulator:
        emulator.inject(Fault(status=200, body=b'{"backups": [' + b" " * (9 << 20) + b"]}"))
        async with pba.BackupsClient(pba.IamToken(TOKEN), endpoint=emulator.url) as client:
            with pytest.raises(pba.ResponseFormatError, match="8,388,608-byte cap"):
                await client.get_backups_page(emulator.cluster_ids[0])


# Item 13: cookies are never stored nor replayed, nor sent to IAM.


def _by_name(emulator: Emulator) -> str:
    """The emulator's URL by host name: aiohttp's default jar keeps no cookie of an IP."""
    return emulator.url.replace("127.0.0.1", "localhost")


async def test_13_cookies_the_api_sets_are_never_sent_back(emulator: Emulator) -> None:
    emulator.inject(Fault(status=503, headers={"Set-Cookie": "session=stolen; Path=/"}))
    async with pba.BackupsClient(
        pba.IamToken(TOKEN), endpoint=_by_name(emulator), retry=FAST_RETRY
    ) as client:
        await client.get_backups_page(emulator.cluster_ids[0])
        await client.get_cluster(emulator.cluster_ids[0])
    assert len(emulator.requests) == 3
    assert all("Cookie" not in r.headers for r in emulator.requests)


async def test_13_nor_to_the_iam_exchange(emulator: Emulator) -> None:
    emulator.oauth_tokens = {"y0_oauth"}
    emulator.inject(Fault(status=503, headers={"Set-Cookie": "session=stolen; Path=/"}))
    with pytest.warns(DeprecationWarning, match="OAuth"):
        credentials = pba.OAuthToken("y0_oauth", iam_endpoint=_by_name(emulator))
    async with pba.BackupsClient(
        credentials, endpoint=_by_name(emulator), retry=FAST_RETRY
    ) as client:
        await client.get_backups_page(emulator.cluster_ids[0])
        credentials.invalidate(await credentials.token())
        await client.get_backups_page(emulator.cluster_ids[0])
    assert len(emulator.exchanges) == 2
    assert [r.path for r in emulator.requests if "Cookie" in r.headers] == []


# Item 15: a ResumePoint is checked when it is made.


@pytest.mark.parametrize(
    ("skip", "error"),
    [("3", TypeError), (1.5, TypeError), (True, TypeError), (-1, ValueError), (1000, ValueError)],
)
def test_15_a_resume_point_with_a_bad_skip_is_refused_when_made(
    skip: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="skip"):
        pba.ResumePoint("MTAw", skip=skip)


def test_15_a_resume_point_with_a_bad_token_is_refused_when_made() -> None:
    with pytest.raises(TypeError, match="page_token"):
        pba.ResumePoint(100, skip=0)  # type: ignore[arg-type]
    assert pba.ResumePoint("MTAw", skip=999).skip == 999
    with pytest.raises(ValueError, match="0 to 999"):
        pba.ResumePoint.parse("~5000~MTAw")


# Item 17: format characters are escaped.


@pytest.mark.parametrize(
    "char",
    ["\u202e", "\u202a", "\u2066", "\u2069", "\u200b", "\u200d", "\u2060", "\ufeff", "\U000e0041"],
)
def test_17_format_characters_are_escaped(char: str) -> None:
    shown = printable(f"backup{char}done")
    assert char not in shown
    assert shown.startswith("backup\\")
    assert shown.endswith("done")


def test_17_every_format_and_control_character_is_escaped_and_nothing_else() -> None:
    text = "".join(chr(c) for c in range(0x30000) if not 0xD800 <= c < 0xE000)
    shown = printable(text)
    assert not [c for c in shown if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    kept = "é日本\u00a0\u0301😀"
    assert printable(kept) == kept
    assert printable("a\ud800b") == "a\\ud800b"  # a lone surrogate: no encoding writes it


# Issue 21 item 4: short secrets are redacted as whole words only.


@pytest.mark.parametrize(
    ("text", "secret", "shown"),
    [
        (
            "Cluster c9qmanyclusters000000 not found",
            "any",
            "Cluster c9qmanyclusters000000 not found",
        ),
        ("ClientConnectorError", "o", "ClientConnectorError"),
        ("token any was refused", "any", "token <redacted> was refused"),
        ("Bearer any", "any", "Bearer <redacted>"),
        ("got 'any'.", "any", "got '<redacted>'."),
        ("xt1.9euelZqSecretTokenValuex", TOKEN, "x<redacted>x"),
    ],
)
def test_short_tokens_leave_messages_intact(text: str, secret: str, shown: str) -> None:
    assert redact(text, [secret]) == shown


async def test_a_short_token_does_not_garble_a_server_message(emulator: Emulator) -> None:
    async with pba.BackupsClient(pba.IamToken("any"), endpoint=emulator.url) as client:
        with pytest.raises(pba.NotFoundError) as caught:
            await client.get_backups_page("c9qmanyclusters000000")
    assert caught.value.message == "Cluster c9qmanyclusters000000 not found"

"""CPU per backup: this client against the aiohttp + orjson floor and two peers, same run.

Pages of 1000 backups at zero latency from the emulator (its own process), every field
present and half the timestamps with nine fraction digits. Rounds are many and short (a
few pages per path): every path starts each round from a collected heap, in an order
that rotates, so that a busy moment of the machine or a collection of the whole heap
lands on every path alike. For each path, client process CPU time per backup (median
over the rounds):
  floor     aiohttp GET + read + orjson.loads, nothing else
  client pages        BackupsClient.get_backups_page end to end (retries, ids, token, parse)
  client item stream  `async for` over client.list_backups, item by item
  aiohttp + our parser   the floor's requests, parsed by this client's parser
  pydantic  aiohttp + pydantic v2 models equivalent to ours (model_validate_json)
  pydantic item stream   a hand-written aiohttp + pydantic client: `async for` over
            an async generator that fetches page after page by token (the fair peer of
            the client's item stream)
  msgspec   aiohttp + msgspec Structs equivalent to ours (json.decode, strict=False)
  grpc item stream   the official SDK's path: grpc.aio with the `yandexcloud` stubs
            (`ClusterService.ListBackups`) against a local grpc.aio server (its own
            process) serving the same backups, each backup's timestamps turned into
            `datetime`s (skipped, and said so, when grpcio or yandexcloud is missing)
and the structuring step alone, from decoded JSON and from bytes, without HTTP.
Peers' enums are strict here (the data holds no unknown values); ours map unknown
values to UNKNOWN.

    python benchmarks/cpu.py [--requests 10] [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import orjson
import pydantic
from common import Target, emulator_process, report_targets, write_result
from pydantic.alias_generators import to_camel

import pg_backups_async as pba
from pg_backups_async import calls, wire
from pg_backups_async.models import BackupMethod, BackupStatus, BackupType

try:  # the official SDK's path: installed by `nox -s bench` only
    import grpc_peer
except ImportError as missing:
    grpc_peer = None
    GRPC_MISSING = f"{missing.name or missing} is not installed"
else:
    GRPC_MISSING = ""

PAGE_SIZE = 1000


class PBackup(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, alias_generator=to_camel, extra="ignore")
    id: str
    folder_id: str = ""
    created_at: datetime | None = None
    source_cluster_id: str = ""
    started_at: datetime | None = None
    size: int = 0
    type: BackupType = BackupType.UNSPECIFIED
    method: BackupMethod = BackupMethod.UNSPECIFIED
    journal_size: int = 0
    status: BackupStatus = BackupStatus.UNSPECIFIED
    retention_policy_id: str = ""
    retention_policy_name: str = ""
    retain_until: datetime | None = None


class PPage(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, alias_generator=to_camel, extra="ignore")
    backups: tuple[PBackup, ...] = ()
    next_page_token: str | None = None


class MBackup(msgspec.Struct, frozen=True, rename="camel"):
    id: str
    folder_id: str = ""
    created_at: datetime | None = None
    source_cluster_id: str = ""
    started_at: datetime | None = None
    size: int = 0
    type: BackupType = BackupType.UNSPECIFIED
    method: BackupMethod = BackupMethod.UNSPECIFIED
    journal_size: int = 0
    status: BackupStatus = BackupStatus.UNSPECIFIED
    retention_policy_id: str = ""
    retention_policy_name: str = ""
    retain_until: datetime | None = None


class MPage(msgspec.Struct, frozen=True, rename="camel"):
    backups: tuple[MBackup, ...] = ()
    next_page_token: str | None = None


def cpu_per_backup(run: Callable[[], Any], count: int) -> float:
    """Microseconds of this process's CPU per backup for `run()` over `count` backups."""
    started = time.process_time()
    run()
    return (time.process_time() - started) / count * 1e6


async def pydantic_stream(
    session: aiohttp.ClientSession, url: str, wanted: int
) -> AsyncIterator[PBackup]:
    """A hand-written client's item stream: page after page by token, item by item."""
    token, count = None, 0
    headers = {"Authorization": "Bearer bench"}
    while True:
        params = {"pageSize": str(PAGE_SIZE)}
        if token:
            params["pageToken"] = token
        async with session.get(url, params=params, headers=headers) as response:
            response.raise_for_status()
            page = PPage.model_validate_json(await response.read())
        for backup in page.backups:
            yield backup
            count += 1
            if count >= wanted:
                return
        token = page.next_page_token
        if not token:
            return


async def http_paths(
    url: str, cluster: str, requests: int, grpc_address: str | None
) -> dict[str, Callable[[], Awaitable[int]]]:
    page_url = f"{url}/managed-postgresql/v1/clusters/{cluster}/backups?pageSize={PAGE_SIZE}"
    headers = {"Authorization": "Bearer bench"}
    session = aiohttp.ClientSession()
    client = pba.BackupsClient(pba.IamToken("bench"), endpoint=url)
    await client.__aenter__()

    async def raw(decode: Callable[[bytes], Any]) -> int:
        count = 0
        for _ in range(requests):
            async with session.get(page_url, headers=headers) as response:
                page = decode(await response.read())
            count += PAGE_SIZE
            assert page is not None
        return count

    async def ours() -> int:
        for _ in range(requests):
            page = await client.get_backups_page(cluster, page_size=PAGE_SIZE)
            assert len(page.backups) == PAGE_SIZE
        return requests * PAGE_SIZE

    async def stream() -> int:
        count = 0
        wanted = requests * PAGE_SIZE
        async with client.list_backups(cluster, page_size=PAGE_SIZE, max_items=wanted) as items:
            async for _ in items:
                count += 1
        assert count == wanted
        return count

    async def peer_stream() -> int:
        count = 0
        listing = f"{url}/managed-postgresql/v1/clusters/{cluster}/backups"
        async for _ in pydantic_stream(session, listing, requests * PAGE_SIZE):
            count += 1
        assert count == requests * PAGE_SIZE
        return count

    decoder = msgspec.json.Decoder(MPage, strict=False)
    paths = {
        "floor": lambda: raw(orjson.loads),
        "client pages": ours,
        "client item stream": stream,
        "aiohttp + our parser": lambda: raw(calls.LIST_BACKUPS.parser()),
        "pydantic": lambda: raw(PPage.model_validate_json),
        "pydantic item stream": peer_stream,
        "msgspec": lambda: raw(decoder.decode),
    }
    channel = None
    if grpc_address is not None and grpc_peer is not None:
        channel, stub = grpc_peer.stub_for(grpc_address)

        async def grpc_stream() -> int:
            count = 0
            async for _ in grpc_peer.stream(stub, cluster, requests * PAGE_SIZE):
                count += 1
            assert count == requests * PAGE_SIZE
            return count

        paths["grpc item stream"] = grpc_stream
    paths["_close"] = lambda: _close(session, client, channel)  # type: ignore[assignment]
    return paths


async def _close(session: aiohttp.ClientSession, client: pba.BackupsClient, channel: Any) -> int:
    await session.close()
    await client.aclose()
    if channel is not None:
        await channel.close()
    return 0


async def measure_http(
    url: str, cluster: str, args: argparse.Namespace, grpc_address: str | None
) -> dict[str, list[float]]:
    paths = await http_paths(url, cluster, args.requests, grpc_address)
    close = paths.pop("_close")
    for run in paths.values():  # warm up every path: connections, caches, lazy imports
        await run()
    results: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for round_number in range(args.rounds):
        # Each path starts from a collected heap, in an order that rotates every round,
        # so that no path pays for the garbage another left behind.
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            started = time.process_time()
            count = await paths[name]()
            results[name].append((time.process_time() - started) / count * 1e6)
    await close()
    return results


def measure_structuring(body: bytes, rounds: int) -> dict[str, list[float]]:
    decoded = orjson.loads(body)
    parse = calls.LIST_BACKUPS.parser()
    count = len(decoded["backups"])
    decoder = msgspec.json.Decoder(MPage, strict=False)
    paths: dict[str, Callable[[], Any]] = {
        "orjson.loads": lambda: orjson.loads(body),
        "ours, from bytes": lambda: parse(body),
        "ours, structuring only": lambda: wire.structure(decoded, pba.BackupsPage),
        "pydantic, from bytes": lambda: PPage.model_validate_json(body),
        "pydantic, from decoded": lambda: PPage.model_validate(decoded),
        "msgspec, from bytes": lambda: decoder.decode(body),
        "msgspec, from decoded": lambda: msgspec.convert(decoded, MPage, strict=False),
    }
    results: dict[str, list[float]] = {name: [] for name in paths}
    for run in paths.values():
        run()
    names = list(paths)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            run = paths[name]
            results[name].append(cpu_per_backup(lambda run=run: _repeat(run, 10), count * 10))
    return results


def _repeat(run: Callable[[], Any], times: int) -> None:
    for _ in range(times):  # each result dropped before the next, as a consumer would
        run()


async def fetch_body(url: str, cluster: str) -> bytes:
    page_url = f"{url}/managed-postgresql/v1/clusters/{cluster}/backups?pageSize={PAGE_SIZE}"
    async with (
        aiohttp.ClientSession() as session,
        session.get(page_url, headers={"Authorization": "Bearer bench"}) as response,
    ):
        return await response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10, help="pages per path per round")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    listing = str(args.requests * PAGE_SIZE)
    with emulator_process(
        "--clusters",
        "1",
        "--backups-per-cluster",
        str(PAGE_SIZE),
        "--complete-backups",
        "--listing-size",
        listing,
    ) as (
        url,
        ids,
    ):
        body = asyncio.run(fetch_body(url, ids[0]))
        with _grpc_server(body, args.requests) as grpc_address:
            http = asyncio.run(measure_http(url, ids[0], args, grpc_address))
    if GRPC_MISSING:
        print(f"the official SDK's gRPC path is skipped: {GRPC_MISSING}")
    alone = measure_structuring(body, args.rounds)
    floor = statistics.median(http["floor"])
    print(
        f"pages of {PAGE_SIZE} backups ({len(body) / PAGE_SIZE:.0f} bytes each), zero latency, "
        f"median of {args.rounds} rounds of {args.requests} requests"
    )
    print(f"{'end to end (HTTP + JSON + models)':36} {'us/backup':>10} {'vs floor':>9}")
    for name, values in http.items():
        value = statistics.median(values)
        print(f"{name:36} {value:10.2f} {value / floor:8.2f}x")
    print(f"\n{'without HTTP':36} {'us/backup':>10} {'vs orjson':>9}")
    loads = statistics.median(alone["orjson.loads"])
    for name, values in alone.items():
        value = statistics.median(values)
        print(f"{name:36} {value:10.2f} {value / loads:8.2f}x")
    medians = {name: statistics.median(values) for name, values in http.items()}
    stream, pages, peer = (
        medians["client item stream"],
        medians["client pages"],
        medians["pydantic"],
    )
    peer_stream = medians["pydantic item stream"]
    print(f"\n{'the item stream against its peers':36} {'ratio':>10}")
    print(f"{'vs aiohttp + pydantic item stream':36} {stream / peer_stream:9.2f}x")
    if "grpc item stream" in medians:
        sdk = medians["grpc item stream"]
        print(f"{'vs official SDK (grpc.aio + stubs)':36} {stream / sdk:9.2f}x")
    targets = report_targets(
        [
            Target(
                "item stream / aiohttp + pydantic",
                f"{stream / peer:.2f}x",
                f"pydantic {peer:.2f} us/backup, stream {stream:.2f}",
                "<= 1.00x",
                stream / peer <= 1.0,
            ),
            Target(
                "pages / aiohttp + pydantic",
                f"{pages / peer:.2f}x",
                f"pydantic {peer:.2f} us/backup, pages {pages:.2f}",
                "<= 0.95x",
                pages / peer <= 0.95,
            ),
            Target(
                "item stream / aiohttp + orjson floor",
                f"{stream / floor:.2f}x",
                f"floor {floor:.2f} us/backup",
                "<= 2.40x",
                stream / floor <= 2.4,
            ),
        ]
    )
    path = write_result(
        "cpu",
        {
            "page_size": PAGE_SIZE,
            "bytes_per_backup": len(body) / PAGE_SIZE,
            "end_to_end_us_per_backup": medians,
            "structuring_us_per_backup": {k: statistics.median(v) for k, v in alone.items()},
            "targets": targets,
            "rounds": {"http": http, "structuring": alone},
        },
    )
    print(f"written to {path}")


@contextlib.contextmanager
def _grpc_server(body: bytes, pages: int) -> Iterator[str | None]:
    """The official SDK's peer server, serving `pages` pages of `body`; None without it."""
    if grpc_peer is None:
        yield None
        return
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "page.json"
        path.write_bytes(body)
        with grpc_peer.grpc_server(path, pages) as address:
            yield address


if __name__ == "__main__":
    main()

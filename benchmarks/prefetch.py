"""Prefetch overlap: the stream against a sequential page loop, in the same run.

One cluster of P pages; the emulator (its own process) takes L seconds per page; the
consumer spends C seconds of async work on each page. The sequential loop needs about
P*(L+C); the ideal with one page fetched ahead is P*max(L,C) + min(L,C).

    python benchmarks/prefetch.py [--pages 20] [--latency 0.02] [--work 0.02] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from common import emulator_process, median, write_result

import pg_backups_async as pba

PAGE_SIZE = 100


async def sequential(client: pba.BackupsClient, cluster: str, work: float) -> int:
    count, token = 0, None
    while True:
        page = await client.get_backups_page(cluster, page_size=PAGE_SIZE, page_token=token)
        count += len(page.backups)
        await asyncio.sleep(work)  # the caller's work on this page
        token = page.next_page_token
        if token is None:
            return count


async def streamed(client: pba.BackupsClient, cluster: str, work: float) -> int:
    count = 0
    async with client.list_backups(cluster, page_size=PAGE_SIZE) as stream:
        async for _ in stream:
            count += 1
            if count % PAGE_SIZE == 0:
                await asyncio.sleep(work)  # the caller's work on the page just finished
    return count


async def measure(url: str, cluster: str, args: argparse.Namespace) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"sequential": [], "stream": []}
    async with pba.BackupsClient(pba.IamToken("bench"), endpoint=url) as client:
        await sequential(client, cluster, 0.0)  # warm up: connection, caches
        for _ in range(args.repeat):
            for name, run in (("sequential", sequential), ("stream", streamed)):
                started = time.perf_counter()
                count = await run(client, cluster, args.work)
                times[name].append(time.perf_counter() - started)
                assert count == args.pages * PAGE_SIZE, count
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--work", type=float, default=0.02)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    emulator_args = ["--clusters", "1", "--backups-per-cluster", str(args.pages * PAGE_SIZE)]
    with emulator_process(*emulator_args, "--latency", str(args.latency)) as (url, clusters):
        times = asyncio.run(measure(url, clusters[0], args))
    p, lat, work = args.pages, args.latency, args.work
    ideal_sequential = p * (lat + work)
    ideal_stream = p * max(lat, work) + min(lat, work)
    seq, stream = median(times["sequential"]), median(times["stream"])
    print(
        f"P={p} pages of {PAGE_SIZE}, L={lat * 1000:.0f} ms, C={work * 1000:.0f} ms, "
        f"median of {args.repeat}"
    )
    print(f"{'':12} {'wall s':>8} {'ideal s':>8} {'vs ideal':>9}")
    print(f"{'sequential':12} {seq:8.3f} {ideal_sequential:8.3f} {seq / ideal_sequential:8.2f}x")
    print(f"{'stream':12} {stream:8.3f} {ideal_stream:8.3f} {stream / ideal_stream:8.2f}x")
    print(f"stream / sequential: {stream / seq:.2f}")
    path = write_result(
        "prefetch",
        {
            "pages": p,
            "page_size": PAGE_SIZE,
            "latency_s": lat,
            "work_s": work,
            "repeat": args.repeat,
            "times_s": times,
            "median_sequential_s": seq,
            "median_stream_s": stream,
            "ideal_sequential_s": ideal_sequential,
            "ideal_stream_s": ideal_stream,
            "stream_vs_ideal": stream / ideal_stream,
            "stream_vs_sequential": stream / seq,
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()

"""Fan-out: M clusters x P pages at latency L with concurrency K, against the ideal M*P*L/K.

Also reported: the same ideal computed from the per-request time measured in this run
(a sequential loop over one cluster's pages), the server-observed maximum of
concurrent requests, and the connections each run opened. The emulator runs in its own
process.

    python benchmarks/fanout.py [--clusters 200] [--pages 3] [--latency 0.02] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
from common import emulator_process, median, write_result

import pg_backups_async as pba
from pg_backups_async.emulator import DEFAULT_FOLDER_ID

PAGE_SIZE = 100


async def stats(url: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_emulator/stats") as r:
        result: dict[str, int] = await r.json()
        return result


async def per_request(url: str, cluster: str, repeat: int) -> float:
    """Median seconds per page request, one at a time."""
    times = []
    async with pba.BackupsClient(pba.IamToken("bench"), endpoint=url) as client:
        await client.get_backups_page(cluster, page_size=PAGE_SIZE)
        for _ in range(repeat):
            token = None
            while True:
                started = time.perf_counter()
                page = await client.get_backups_page(
                    cluster, page_size=PAGE_SIZE, page_token=token
                )
                times.append(time.perf_counter() - started)
                token = page.next_page_token
                if token is None:
                    break
    return median(times)


async def fan_out(url: str, clusters: list[str], concurrency: int) -> tuple[float, float, int]:
    async with pba.BackupsClient(pba.IamToken("bench"), endpoint=url) as client:
        started, cpu_started = time.perf_counter(), time.process_time()
        count = 0
        async with client.list_backups_many(
            clusters, concurrency=concurrency, page_size=PAGE_SIZE
        ) as results:
            async for result in results:
                assert result.error is None, result.error
                count += len(result.backups)
        return time.perf_counter() - started, time.process_time() - cpu_started, count


async def measure(url: str, args: argparse.Namespace) -> dict[str, object]:
    clusters = await _cluster_ids(url)
    assert len(clusters) == args.clusters, len(clusters)
    request_s = await per_request(url, clusters[0], 3)
    walls, cpus, connections, counts = [], [], [], []
    for _ in range(args.repeat):
        before = await stats(url)
        wall, cpu, count = await fan_out(url, clusters, args.concurrency)
        after = await stats(url)
        walls.append(wall)
        cpus.append(cpu)
        counts.append(count)
        connections.append(after["connections"] - before["connections"])
    final = await stats(url)
    return {
        "walls": walls,
        "client_cpu_s": cpus,
        "request_s": request_s,
        "connections": connections,
        "max_in_flight": final["maxInFlight"],
        "backups": counts[0],
    }


async def _cluster_ids(url: str) -> list[str]:
    async with pba.BackupsClient(pba.IamToken("bench"), endpoint=url) as client:
        return [c.id async for c in client.list_clusters(DEFAULT_FOLDER_ID, page_size=1000)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    m, p, lat, k = args.clusters, args.pages, args.latency, args.concurrency
    emulator_args = [
        "--clusters",
        str(m),
        "--backups-per-cluster",
        str(p * PAGE_SIZE),
        "--latency",
        str(lat),
    ]
    with emulator_process(*emulator_args) as (url, _):
        result = asyncio.run(measure(url, args))
    wall = median(result["walls"])  # type: ignore[arg-type]
    ideal = m * p * lat / k
    request_s = float(result["request_s"])  # type: ignore[arg-type]
    ideal_measured = m * p * request_s / k
    print(
        f"M={m} clusters x P={p} pages of {PAGE_SIZE}, L={lat * 1000:.0f} ms, K={k}, "
        f"median of {args.repeat}"
    )
    print(f"wall time                 {wall:8.3f} s")
    print(f"ideal M*P*L/K             {ideal:8.3f} s   wall/ideal {wall / ideal:.2f}x")
    print(f"measured request time     {request_s * 1000:8.1f} ms (one at a time, same run)")
    print(
        f"ideal from measured time  {ideal_measured:8.3f} s   "
        f"wall/ideal {wall / ideal_measured:.2f}x"
    )
    cpu = median(result["client_cpu_s"])  # type: ignore[arg-type]
    print(f"client CPU per run        {cpu:8.3f} s   ({cpu / wall:.0%} of the wall time)")
    print(f"server max in flight      {result['max_in_flight']:8d}   (bound {k})")
    print(f"connections per run       {result['connections']}")
    print(f"backups per run           {result['backups']}")
    path = write_result(
        "fanout",
        {
            "clusters": m,
            "pages": p,
            "page_size": PAGE_SIZE,
            "latency_s": lat,
            "concurrency": k,
            **result,
            "median_wall_s": wall,
            "ideal_s": ideal,
            "wall_vs_ideal": wall / ideal,
            "ideal_measured_s": ideal_measured,
            "wall_vs_ideal_measured": wall / ideal_measured,
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()

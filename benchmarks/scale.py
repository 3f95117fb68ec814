"""Scale: a fan-out over M clusters x P pages at latency L with concurrency K.

The consumer discards each result. Reported beside the ideal M*P*L/K: the wall time,
the peak RSS growth of this process during the fan-out (VmRSS sampled every 500
results), the most asyncio tasks alive at
once (against 2*K), this process's CPU, and the emulator's (its own process, which on
a 2-core machine competes with the client).

    python benchmarks/scale.py [--clusters 20000] [--pages 2] [--latency 0.02] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import aiohttp
from common import Target, emulator_process, report_targets, write_result

import pg_backups_async as pba
from pg_backups_async.emulator import DEFAULT_FOLDER_ID


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def stats(url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_emulator/stats") as r:
        result: dict[str, float] = await r.json()
        return result


async def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    async with pba.BackupsClient(pba.IamToken("bench"), endpoint=url) as client:
        ids = [c.id async for c in client.list_clusters(DEFAULT_FOLDER_ID, page_size=1000)]
        assert len(ids) == args.clusters, len(ids)
        before = await stats(url)
        rss_before = peak_kb = rss_kb()
        most_tasks, count = 0, 0
        started, cpu_started = time.perf_counter(), time.process_time()
        async with client.list_backups_many(
            ids, concurrency=args.concurrency, page_size=1
        ) as results:
            async for result in results:
                assert result.error is None, result.error
                count += len(result.backups)
                ours = [t for t in asyncio.all_tasks() if t.get_name().startswith("pg-backups")]
                most_tasks = max(most_tasks, len(ours))
                if count % 500 == 0:
                    peak_kb = max(peak_kb, rss_kb())
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        peak_kb = max(peak_kb, rss_kb())
        after = await stats(url)
    return {
        "wall_s": wall,
        "client_cpu_s": cpu,
        "emulator_cpu_s": after["cpuSeconds"] - before["cpuSeconds"],
        "peak_rss_growth_mb": (peak_kb - rss_before) / 1024,
        "most_tasks": most_tasks,
        "backups": count,
        "requests": after["requests"] - before["requests"],
        "max_in_flight": after["maxInFlight"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=20_000)
    parser.add_argument("--pages", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    m, p, lat, k = args.clusters, args.pages, args.latency, args.concurrency
    emulator_args = ["--clusters", str(m), "--backups-per-cluster", str(p)]
    with emulator_process(*emulator_args, "--latency", str(lat)) as (url, _):
        result = asyncio.run(measure(url, args))
    ideal = m * p * lat / k
    print(f"M={m} clusters x P={p} pages (of 1 backup), L={lat * 1000:.0f} ms, K={k}")
    print(f"wall time               {result['wall_s']:8.2f} s")
    print(f"ideal M*P*L/K           {ideal:8.2f} s   wall/ideal {result['wall_s'] / ideal:.2f}x")
    print(f"peak RSS growth         {result['peak_rss_growth_mb']:8.1f} MB (results discarded)")
    print(f"most tasks at once      {result['most_tasks']:8d}   (the library's; 2*K = {2 * k})")
    print(f"server max in flight    {result['max_in_flight']:8.0f}   (K = {k})")
    print(f"client CPU              {result['client_cpu_s']:8.2f} s")
    print(f"emulator CPU            {result['emulator_cpu_s']:8.2f} s")
    print(f"requests, backups       {result['requests']:8.0f}, {result['backups']}")
    wall, growth, tasks = result["wall_s"], result["peak_rss_growth_mb"], result["most_tasks"]
    targets = report_targets(
        [
            Target(
                "wall time / ideal",
                f"{wall / ideal:.2f}x",
                f"ideal M*P*L/K {ideal:.2f} s, wall {wall:.2f} s",
                "<= 1.20x",
                wall / ideal <= 1.2,
            ),
            Target(
                "peak RSS growth",
                f"{growth:.1f} MB",
                "results discarded",
                "< 100 MB",
                growth < 100,
            ),
            Target(
                "most tasks at once", f"{tasks}", f"2*K = {2 * k}", f"<= {2 * k}", tasks <= 2 * k
            ),
        ]
    )
    print(
        f"(on 2 cores, the emulator's {result['emulator_cpu_s']:.2f} s of CPU competes"
        f" with the client's {result['client_cpu_s']:.2f} s)"
    )
    path = write_result("scale", {"clusters": m, "pages": p, "latency_s": lat, "concurrency": k,
                                  "ideal_s": ideal, **result, "targets": targets})  # fmt: skip
    print(f"written to {path}")


if __name__ == "__main__":
    main()

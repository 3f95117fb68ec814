"""Organization: an inventory that finds its own clusters, C clouds x F folders x K
clusters, each cluster's backups in P pages, at latency L with concurrency N.

Reported beside the ideal for that shape, the discovery levels plus the listings at the
given concurrency, L * (1 + ceil(C/N) + ceil(C*F/N)) + C*F*K*P*L/N: the wall time, the
most asyncio tasks of the library alive at once (against 2*N), and the peak RSS growth
of this process (sampled every 10 ms).

    python benchmarks/organization.py [--clouds 5] [--folders 40] [--clusters 25]
        [--pages 2] [--latency 0.02] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import time

from common import Target, emulator_process, report_targets, write_result
from scale import rss_kb, stats

import pg_backups_async as pba


async def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    peak = {"tasks": 0, "rss_kb": rss_kb()}
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            ours = [t for t in asyncio.all_tasks() if t.get_name().startswith("pg-backups")]
            peak["tasks"] = max(peak["tasks"], len(ours))
            peak["rss_kb"] = max(peak["rss_kb"], rss_kb())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.01)

    async with pba.BackupsClient(pba.IamToken("bench"), endpoint=url) as client:
        before = await stats(url)
        rss_before = rss_kb()
        sampler = asyncio.create_task(sample(), name="benchmark sampler")
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            lines = await client.inventory(all_clouds=True, concurrency=args.concurrency)
        finally:
            done.set()
            await sampler
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        after = await stats(url)
    errors = [line for line in lines if line.error is not None]
    assert not errors, errors[:3]
    return {
        "wall_s": wall,
        "client_cpu_s": cpu,
        "emulator_cpu_s": after["cpuSeconds"] - before["cpuSeconds"],
        "peak_rss_growth_mb": (peak["rss_kb"] - rss_before) / 1024,
        "most_tasks": peak["tasks"],
        "clusters_listed": len(lines),
        "requests": after["requests"] - before["requests"],
        "max_in_flight": after["maxInFlight"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clouds", type=int, default=5)
    parser.add_argument("--folders", type=int, default=40)
    parser.add_argument("--clusters", type=int, default=25)
    parser.add_argument("--pages", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    c, f, k, p = args.clouds, args.folders, args.clusters, args.pages
    lat, n = args.latency, args.concurrency
    emulator_args = [
        "--clusters",
        "0",
        "--organization-shape",
        f"{c}x{f}x{k}",
        "--backups-per-cluster",
        str(p),
        "--backups-page-size",
        "1",
        "--latency",
        str(lat),
    ]
    with emulator_process(*emulator_args) as (url, _):
        result = asyncio.run(measure(url, args))
    clusters = c * f * k
    # The default cloud (with its empty default folder) comes on top of the C clouds.
    levels = 1 + math.ceil((c + 1) / n) + math.ceil((c * f + 1) / n)
    ideal = lat * levels + clusters * p * lat / n
    wall, growth, tasks = result["wall_s"], result["peak_rss_growth_mb"], result["most_tasks"]
    print(f"{c} clouds x {f} folders x {k} clusters = {clusters} clusters, {p} pages each,")
    print(f"L={lat * 1000:.0f} ms, concurrency {n}")
    print(f"wall time               {wall:8.2f} s")
    print(f"ideal                   {ideal:8.2f} s   wall/ideal {wall / ideal:.2f}x")
    print(f"peak RSS growth         {growth:8.1f} MB")
    print(f"most tasks at once      {tasks:8d}   (the library's; 2*N = {2 * n})")
    print(f"server max in flight    {result['max_in_flight']:8.0f}   (N = {n})")
    print(f"client CPU              {result['client_cpu_s']:8.2f} s")
    print(f"emulator CPU            {result['emulator_cpu_s']:8.2f} s")
    print(f"requests, clusters      {result['requests']:8.0f}, {result['clusters_listed']}")
    targets = report_targets(
        [
            Target(
                "wall time / ideal",
                f"{wall / ideal:.2f}x",
                f"ideal {ideal:.2f} s, wall {wall:.2f} s",
                "<= 1.30x",
                wall / ideal <= 1.3,
            ),
            Target(
                "most tasks at once", f"{tasks}", f"2*N = {2 * n}", f"<= {2 * n}", tasks <= 2 * n
            ),
            Target("peak RSS growth", f"{growth:.1f} MB", "", "< 100 MB", growth < 100),
        ]
    )
    path = write_result(
        "organization",
        {"clouds": c, "folders": f, "clusters": k, "pages": p, "latency_s": lat,
         "concurrency": n, "ideal_s": ideal, **result, "targets": targets},
    )  # fmt: skip
    print(f"written to {path}")


if __name__ == "__main__":
    main()

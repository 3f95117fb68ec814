"""The default page size: a plain `async for` over one cluster, the old default against
the new, in the same run.

One cluster of N backups from the emulator (its own process) at L seconds per request.
"before" is `list_backups(cluster_id, page_size=100)`, which is what a plain
`async for b in client.list_backups(cluster_id)` sent before issue 21 (the service's
default of 100); "after" is that plain `async for` now, pages of 1000. For each: the
wall time, requests sent, and this process's CPU per backup (medians of the repeats,
run alternately).

    python benchmarks/pagesize.py [--backups 5000] [--latency 0.02] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from common import emulator_process, median, write_result

import pg_backups_async as pba


async def one(url: str, cluster: str, page_size: int | None) -> tuple[float, float, int, int]:
    """Wall seconds, CPU seconds, backups and requests of one plain `async for`."""
    attempts: list[pba.Attempt] = []
    async with pba.BackupsClient(
        pba.IamToken("bench"), endpoint=url, on_attempt=attempts.append
    ) as client:
        await client.get_cluster(cluster)  # a warm connection, as in a long-lived app
        attempts.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        count = 0
        if page_size is None:
            async for _ in client.list_backups(cluster):
                count += 1
        else:
            async for _ in client.list_backups(cluster, page_size=page_size):
                count += 1
        return time.perf_counter() - wall, time.process_time() - cpu, count, len(attempts)


async def measure(url: str, cluster: str, repeat: int) -> dict[str, dict[str, float]]:
    runs: dict[str, list[tuple[float, float, int, int]]] = {"before": [], "after": []}
    for _ in range(repeat):
        runs["before"].append(await one(url, cluster, 100))
        runs["after"].append(await one(url, cluster, None))
    return {
        name: {
            "wall_s": median([r[0] for r in results]),
            "cpu_us_per_backup": median([r[1] / r[2] * 1e6 for r in results]),
            "backups": results[0][2],
            "requests": results[0][3],
        }
        for name, results in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backups", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with emulator_process(
        "--clusters",
        "1",
        "--listing-size",
        str(args.backups),
        "--latency",
        str(args.latency),
    ) as (url, ids):
        figures = asyncio.run(measure(url, ids[0], args.repeat))
    before, after = figures["before"], figures["after"]
    print(
        f"plain `async for` over {args.backups:,} backups at {args.latency * 1000:g} ms, "
        f"median of {args.repeat}"
    )
    print(f"{'':28} {'requests':>8} {'wall s':>8} {'CPU us/backup':>14}")
    for name, label in (("before", "before (pages of 100)"), ("after", "after (pages of 1000)")):
        f = figures[name]
        print(f"{label:28} {f['requests']:8.0f} {f['wall_s']:8.3f} {f['cpu_us_per_backup']:14.2f}")
    print(
        f"before / after: wall {before['wall_s'] / after['wall_s']:.1f}x, "
        f"CPU per backup {before['cpu_us_per_backup'] / after['cpu_us_per_backup']:.1f}x"
    )
    path = write_result("pagesize", {"backups": args.backups, "latency": args.latency, **figures})
    print(f"written to {path}")


if __name__ == "__main__":
    main()

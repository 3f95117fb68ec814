"""Memory: peak RSS growth while streaming a million backups, beside what they weigh.

One cluster listed as P pages of 1000 (the emulator, in its own process, repeats its
backups). Baselines from the same run: the JSON streamed, and the RSS one page of
backups takes when held (the stream holds about two: the page being handed out and
the one fetched ahead).

    python benchmarks/memory.py [--pages 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import tracemalloc

import aiohttp
from common import Target, emulator_process, report_targets, write_result

import pg_backups_async as pba

PAGE_SIZE = 1000
MB = 1024 * 1024


def rss() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def peak_rss() -> int:
    """This process's peak resident memory so far, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def run(url: str, cluster: str, pages: int) -> dict[str, float]:
    page_url = f"{url}/managed-postgresql/v1/clusters/{cluster}/backups?pageSize={PAGE_SIZE}"
    async with (
        aiohttp.ClientSession() as session,
        session.get(page_url, headers={"Authorization": "Bearer bench"}) as response,
    ):
        page_bytes = len(await response.read())
    async with pba.BackupsClient(pba.IamToken("bench"), endpoint=url) as client:
        # What one page of backups weighs, in Python allocations (and a warm-up).
        tracemalloc.start()
        page = await client.get_backups_page(cluster, page_size=PAGE_SIZE)
        one_page, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del page
        gc.collect()
        baseline_peak, baseline = peak_rss(), rss()
        samples, count = [], 0
        async with client.list_backups(cluster, page_size=PAGE_SIZE) as stream:
            async for _ in stream:
                count += 1
                if count % (PAGE_SIZE * max(1, pages // 20)) == 0:
                    samples.append((rss() - baseline) / MB)
        assert count == pages * PAGE_SIZE, count
    growth = max(0, peak_rss() - max(baseline_peak, baseline))
    return {
        "backups": count,
        "streamed_mb": page_bytes * pages / MB,
        "one_page_held_mb": one_page / MB,
        "all_held_mb": one_page * pages / MB,
        "baseline_rss_mb": baseline / MB,
        "peak_growth_mb": growth / MB,
        "rss_samples_mb": samples,  # type: ignore[dict-item]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    args = parser.parse_args()
    emulator_args = [
        "--clusters",
        "1",
        "--backups-per-cluster",
        str(PAGE_SIZE),
        "--listing-size",
        str(args.pages * PAGE_SIZE),
    ]
    with emulator_process(*emulator_args) as (url, ids):
        result = asyncio.run(run(url, ids[0], args.pages))
    samples = result.pop("rss_samples_mb")
    print(f"streamed {result['backups']:,} backups, {result['streamed_mb']:.0f} MB of JSON")
    print(f"one page of {PAGE_SIZE} backups held      {result['one_page_held_mb']:7.1f} MB")
    print(f"all of them held (one page x pages) {result['all_held_mb']:5.0f} MB")
    print(
        f"peak RSS growth while streaming   {result['peak_growth_mb']:7.1f} MB "
        f"({result['peak_growth_mb'] / result['streamed_mb']:.2%} of the data streamed)"
    )
    print("RSS over the run, MB above baseline:", " ".join(f"{s:.0f}" for s in samples))  # type: ignore[attr-defined]
    # Flat: the RSS of the last quarter of the run is no higher than that of the first
    # quarter (within 1 MB), so the memory does not grow with the backups streamed.
    quarter = max(1, len(samples) // 4)  # type: ignore[arg-type]
    early, late = max(samples[:quarter]), max(samples[-quarter:])  # type: ignore[index]
    targets = report_targets(
        [
            Target(
                "RSS, last quarter - first",
                f"{late - early:+.1f} MB",
                f"peak growth {result['peak_growth_mb']:.1f} MB; one page held "
                f"{result['one_page_held_mb']:.1f} MB, all {result['all_held_mb']:.0f} MB",
                "<= +1 MB",
                late - early <= 1.0,
            )
        ]
    )
    path = write_result(
        "memory",
        {**result, "rss_samples_mb": samples, "page_size": PAGE_SIZE, "targets": targets},
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()

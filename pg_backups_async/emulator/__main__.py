"""`python -m pg_backups_async.emulator`: serve the emulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from . import DEFAULT_FOLDER_ID, Emulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pg_backups_async.emulator",
        description="Serve an emulator of the Managed PostgreSQL API on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8080, help="port (default 8080; 0: any free port)"
    )
    parser.add_argument(
        "--clusters", type=int, default=4, help="synthetic clusters to seed (default 4)"
    )
    parser.add_argument(
        "--folder-id",
        default=DEFAULT_FOLDER_ID,
        help=f"the clusters' folder (default {DEFAULT_FOLDER_ID})",
    )
    parser.add_argument("--backups-per-cluster", type=int, default=None, metavar="N")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for the synthetic data (default 0)"
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to each answer (default 0)"
    )
    parser.add_argument(
        "--listing-size",
        type=int,
        default=None,
        metavar="N",
        help="repeat each cluster's backups to N in its listing (for benchmarks)",
    )
    parser.add_argument(
        "--complete-backups",
        action="store_true",
        help="every field on every completed backup, nanosecond timestamps on every other "
        "one: the heaviest answers (for benchmarks)",
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    emulator = Emulator(
        clusters=args.clusters,
        seed=args.seed,
        folder_id=args.folder_id,
        backups_per_cluster=args.backups_per_cluster,
        latency=args.latency,
        listing_size=args.listing_size,
        complete=args.complete_backups,
    )
    await emulator.start(args.host, args.port)
    try:
        print(f"emulator serving on {emulator.url}", flush=True)
        for cluster_id in emulator.cluster_ids[:10]:
            print(f"  cluster {cluster_id}: {emulator.backup_count(cluster_id)} backups")
        if len(emulator.cluster_ids) > 10:
            print(f"  ... and {len(emulator.cluster_ids) - 10} more clusters")
        print(f"folder {args.folder_id}: {len(emulator.cluster_ids)} clusters")
        print(
            "try: YC_IAM_TOKEN=any pg-backups inventory "
            f"--endpoint {emulator.url} --folder-id {args.folder_id}"
        )
        print("press Ctrl-C to stop", flush=True)
        await asyncio.Event().wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except OSError as exc:
        print(f"emulator: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())

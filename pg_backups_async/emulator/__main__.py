"""`python -m pg_backups_async.emulator`: serve the emulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import sys
from pathlib import Path

from ..protocol import is_loopback
from . import DEFAULT_FOLDER_ID, DEFAULT_ORGANIZATION_ID, Emulator
from .server import EXPOSED


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
        "--organization",
        action="store_true",
        help="seed an organization: two clouds, five more folders (one not ACTIVE, one "
        "whose clusters cannot be listed, one empty)",
    )
    parser.add_argument(
        "--organization-shape",
        type=_shape,
        default=None,
        metavar="CxFxK",
        help="seed C clouds of F folders of K clusters each instead (for benchmarks)",
    )
    parser.add_argument(
        "--backups-page-size",
        type=int,
        default=None,
        metavar="N",
        help="no page of backups holds more than N (for benchmarks: more pages)",
    )
    parser.add_argument(
        "--complete-backups",
        action="store_true",
        help="every field on every completed backup, nanosecond timestamps on every other "
        "one: the heaviest answers (for benchmarks)",
    )
    return parser


def _shape(text: str) -> tuple[int, int, int]:
    try:
        clouds, folders, clusters = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape such as 5x40x25") from None
    return clouds, folders, clusters


async def _serve(args: argparse.Namespace) -> None:
    emulator = Emulator(
        clusters=args.clusters,
        seed=args.seed,
        folder_id=args.folder_id,
        backups_per_cluster=args.backups_per_cluster,
        latency=args.latency,
        listing_size=args.listing_size,
        complete=args.complete_backups,
        organization=args.organization,
        organization_shape=args.organization_shape,
        backups_page_size=args.backups_page_size,
    )
    await emulator.start(args.host, args.port)
    try:
        print(f"emulator serving on {emulator.url}", flush=True)
        for cluster_id in emulator.cluster_ids[:10]:
            print(f"  cluster {cluster_id}: {emulator.backup_count(cluster_id)} backups")
        if len(emulator.cluster_ids) > 10:
            print(f"  ... and {len(emulator.cluster_ids) - 10} more clusters")
        if len(emulator.folders) > 1:
            print(
                f"organization {DEFAULT_ORGANIZATION_ID}: {len(emulator.clouds)} clouds, "
                f"{len(emulator.folders)} folders, {len(emulator.cluster_ids)} clusters"
            )
            where = "--all-clouds"
        else:
            print(f"folder {args.folder_id}: {len(emulator.cluster_ids)} clusters")
            where = f"--folder-id {args.folder_id}"
        url = emulator.url
        if args.host in ("0.0.0.0", "::", ""):  # noqa: S104 - every address: use loopback's
            url = url.replace(f"//{args.host}:", "//127.0.0.1:").replace("//[::]:", "//[::1]:")
        print(f"try: YC_IAM_TOKEN=any {cli_command()} inventory --endpoint {url} {where}")
        if not is_loopback(args.host):
            print(
                f"emulator: warning: serving on {emulator.url}, beyond this machine: {EXPOSED}",
                file=sys.stderr,
                flush=True,
            )
        print("press Ctrl-C to stop", flush=True)
        await asyncio.Event().wait()
    finally:
        await emulator.stop()


def cli_command() -> str:
    """`pg-backups` as this Python's environment has it, runnable without activating
    that environment: its script's path (relative when under the current directory),
    else `python -m pg_backups_async.cli` with this interpreter."""
    script = Path(sys.executable).with_name("pg-backups")
    if script.is_file() and os.access(script, os.X_OK):
        shown = os.path.relpath(script)
        if shown.startswith(".."):
            shown = str(script)
        elif os.sep not in shown:
            shown = os.curdir + os.sep + shown
        return shlex.quote(shown)
    return f"{shlex.quote(sys.executable)} -m pg_backups_async.cli"


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

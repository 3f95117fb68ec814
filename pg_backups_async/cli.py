"""`pg-backups`: list a cluster's backups from the command line."""

from __future__ import annotations

import argparse
import asyncio
import csv
import enum
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, TextIO

import attrs
import orjson

from .auth import IamToken
from .client import BackupsClient
from .errors import ApiError
from .models import Backup
from .protocol import API_ENDPOINT

FORMATS = ("table", "json", "jsonl", "csv")
FIELDS = tuple(a.name for a in attrs.fields(Backup))
EXIT_OK, EXIT_API_ERROR, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A problem with how the command was called."""


def backup_record(backup: Backup) -> dict[str, Any]:
    """A backup as flat JSON-ready data: snake_case keys, ISO timestamps, enum names."""
    record: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(backup, name)
        if isinstance(value, datetime):
            value = value.isoformat().replace("+00:00", "Z")
        elif isinstance(value, enum.Enum):
            value = value.name
        record[name] = value
    return record


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _table_row(backup: Backup) -> tuple[str, ...]:
    created = backup.created_at.strftime("%Y-%m-%d %H:%M:%S") if backup.created_at else "-"
    return (
        backup.id,
        created,
        backup.type.name,
        backup.method.name,
        backup.status.name,
        _human_size(backup.size),
        _human_size(backup.journal_size),
    )


_TABLE_HEADER = ("ID", "CREATED (UTC)", "TYPE", "METHOD", "STATUS", "SIZE", "JOURNAL")


async def write_backups(backups: AsyncIterator[Backup], out: TextIO, fmt: str) -> int:
    """Write backups to `out` as they arrive (a table waits for all); returns the count."""
    count = 0
    if fmt == "table":
        rows: list[tuple[str, ...]] = [_TABLE_HEADER]
        async for backup in backups:
            rows.append(_table_row(backup))
            count += 1
        widths = [max(len(row[i]) for row in rows) for i in range(len(_TABLE_HEADER))]
        for row in rows:
            cells = (cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            out.write("  ".join(cells).rstrip() + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        async for backup in backups:
            writer.writerow(backup_record(backup))
            count += 1
    elif fmt == "jsonl":
        async for backup in backups:
            out.write(orjson.dumps(backup_record(backup)).decode() + "\n")
            count += 1
    else:
        out.write("[")
        async for backup in backups:
            out.write(",\n  " if count else "\n  ")
            out.write(orjson.dumps(backup_record(backup)).decode())
            count += 1
        out.write("\n]\n" if count else "]\n")
    out.flush()
    return count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pg-backups",
        description="List the backups of Yandex Cloud Managed PostgreSQL clusters.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def output_options(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "-v", "--verbose", action="store_true", help="log retries and give-ups to stderr"
        )
        command.add_argument("--format", choices=FORMATS, default="table", help="default: table")
        command.add_argument("--page-size", type=int, metavar="N", help="backups per request")
        command.add_argument("--max-items", type=int, metavar="N", help="stop after N backups")

    listing = commands.add_parser("list", help="list a cluster's backups")
    listing.add_argument("cluster_id", metavar="CLUSTER_ID")
    output_options(listing)
    listing.add_argument("--endpoint", default=None, help=f"API base URL (default {API_ENDPOINT})")
    listing.add_argument(
        "--iam-token",
        default=None,
        help="IAM token (prefer the YC_IAM_TOKEN environment variable: "
        "arguments are visible to other users of the machine)",
    )
    demo = commands.add_parser("demo", help="list backups from the built-in emulator")
    output_options(demo)
    return parser


async def _list(args: argparse.Namespace, out: TextIO) -> int:
    token = args.iam_token or os.environ.get("YC_IAM_TOKEN")
    if not token:
        raise UsageError("no IAM token: pass --iam-token or set YC_IAM_TOKEN")
    endpoint = args.endpoint or os.environ.get("YC_ENDPOINT") or API_ENDPOINT
    if "://" not in endpoint:
        endpoint = f"https://{endpoint}"
    async with BackupsClient(IamToken(token), endpoint=endpoint) as client:
        stream = client.list_backups(
            args.cluster_id, page_size=args.page_size, max_items=args.max_items
        )
        async with stream:
            await write_backups(stream, out, args.format)
    return EXIT_OK


async def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from .emulator import Emulator

    async with Emulator() as emulator:
        cluster_id = emulator.cluster_ids[1]
        page_size = args.page_size or 10
        print(
            f"Listing cluster {cluster_id} from the built-in emulator at {emulator.url} "
            f"(pages of {page_size}, the next one fetched while this one prints)",
            file=sys.stderr,
        )
        started = time.perf_counter()
        async with (
            BackupsClient(IamToken("emulator-demo-token"), endpoint=emulator.url) as client,
            client.list_backups(cluster_id, page_size=page_size, max_items=args.max_items) as s,
        ):
            count = await write_backups(s, out, args.format)
        elapsed = time.perf_counter() - started
        print(
            f"{count} backups, {len(emulator.requests)} requests, {elapsed:.3f} s",
            file=sys.stderr,
        )
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], Any]] = {
    "list": _list,
    "demo": _demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="pg-backups: %(message)s")
        logging.getLogger("asyncio").setLevel(logging.WARNING)
    try:
        code: int = asyncio.run(_COMMANDS[args.command](args, sys.stdout))
    except (UsageError, ValueError) as exc:
        print(f"pg-backups: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ApiError as exc:
        print(f"pg-backups: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_API_ERROR
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

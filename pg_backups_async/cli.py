"""`pg-backups`: list backups and clusters, and check backup freshness, from the shell."""

from __future__ import annotations

import argparse
import asyncio
import csv
import enum
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TextIO, TypeVar

import attrs
import orjson

from .auth import IAM_ENDPOINT, Credentials, IamToken, ServiceAccountKey, credentials_from_env
from .client import BackupsClient
from .errors import ApiError
from .inventory import DEFAULT_STALE_AFTER
from .models import Backup, Cluster, ClusterInventory
from .protocol import API_ENDPOINT
from .sanitize import printable, redact

FORMATS = ("table", "json", "jsonl", "csv")
EXIT_OK, EXIT_STALE, EXIT_ERROR = 0, 1, 2

_T = TypeVar("_T")


class UsageError(Exception):
    """A problem with how the command was called."""


# Records and table rows


def record(obj: Any) -> dict[str, Any]:
    """An attrs instance as flat JSON-ready data: snake_case keys, ISO timestamps in UTC,
    enum names, durations in seconds and errors as their message."""
    result: dict[str, Any] = {}
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        if isinstance(value, datetime):
            value = value.isoformat().replace("+00:00", "Z")
        elif isinstance(value, enum.Enum):
            value = value.name
        elif isinstance(value, timedelta):
            value = int(value.total_seconds())
        elif isinstance(value, ApiError):
            value = f"{type(value).__name__}: {value}"
        elif isinstance(value, dict):
            value = dict(value)
        result[field.name] = value
    return result


def human_size(size: int) -> str:
    """Bytes in binary units: `512 B`, `1.5 GiB`."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def human_age(age: timedelta | None) -> str:
    """A duration as `3d4h`, `5h12m` or `42m`; `-` for none."""
    if age is None:
        return "-"
    minutes = max(0, int(age.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d{hours}h"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV field that a spreadsheet will not run: text that starts like a formula gets a
    leading `'`, as spreadsheet-safety guides (OWASP's "CSV injection") advise."""
    if isinstance(value, dict):
        value = orjson.dumps(value).decode()
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@attrs.frozen
class View(Generic[_T]):
    """How one kind of item is shown: a table's header and rows, and its record fields."""

    header: tuple[str, ...]
    row: Callable[[_T], tuple[str, ...]]
    fields: tuple[str, ...]


BACKUPS = View[Backup](
    header=("ID", "CREATED (UTC)", "TYPE", "METHOD", "STATUS", "SIZE", "JOURNAL"),
    row=lambda b: (
        b.id,
        _when(b.created_at),
        b.type.name,
        b.method.name,
        b.status.name,
        human_size(b.size),
        human_size(b.journal_size),
    ),
    fields=tuple(a.name for a in attrs.fields(Backup)),
)

CLUSTERS = View[Cluster](
    header=("ID", "NAME", "ENVIRONMENT", "STATUS", "HEALTH", "CREATED (UTC)"),
    row=lambda c: (
        c.id,
        c.name,
        c.environment.name,
        c.status.name,
        c.health.name,
        _when(c.created_at),
    ),
    fields=tuple(a.name for a in attrs.fields(Cluster)),
)


def _inventory_state(line: ClusterInventory) -> str:
    if line.error is not None:
        return f"ERROR {type(line.error).__name__}: {line.error}"
    return {"ok": "ok", "stale": "STALE", "no backups": "NO BACKUPS"}[line.state]


INVENTORY = View[ClusterInventory](
    header=("CLUSTER", "NAME", "BACKUPS", "SIZE", "BASE", "INCR", "NEWEST (UTC)", "AGE", "STATE"),
    row=lambda i: (
        i.cluster_id,
        i.name or "-",
        str(i.backup_count),
        human_size(i.total_size),
        human_size(i.base_size),
        human_size(i.incremental_size),
        _when(i.newest_created_at),
        human_age(i.newest_done_age),
        _inventory_state(i),
    ),
    fields=(*(a.name for a in attrs.fields(ClusterInventory)), "state"),
)


def _flat(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    data = record(obj)
    if "state" in fields:
        data["state"] = obj.state
    return data


async def write_items(items: AsyncIterator[_T], out: TextIO, fmt: str, view: View[_T]) -> int:
    """Write items as they arrive (a table waits for all, to size its columns); the count."""
    count = 0
    if fmt == "table":
        rows = [view.header]
        async for item in items:
            rows.append(tuple(printable(cell) for cell in view.row(item)))
            count += 1
        widths = [max(len(row[i]) for row in rows) for i in range(len(view.header))]
        for row in rows:
            cells = (cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            out.write("  ".join(cells).rstrip() + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=view.fields, lineterminator="\n")
        # csv quotes a field with LF (the line terminator) but not one with a bare CR.
        quoting_all = csv.DictWriter(
            out, fieldnames=view.fields, lineterminator="\n", quoting=csv.QUOTE_ALL
        )
        writer.writeheader()
        async for item in items:
            fields = {k: csv_cell(v) for k, v in _flat(item, view.fields).items()}
            has_cr = any(isinstance(v, str) and "\r" in v for v in fields.values())
            (quoting_all if has_cr else writer).writerow(fields)
            count += 1
    elif fmt == "jsonl":
        async for item in items:
            out.write(orjson.dumps(_flat(item, view.fields)).decode() + "\n")
            count += 1
    else:
        out.write("[")
        async for item in items:
            out.write(",\n  " if count else "\n  ")
            out.write(orjson.dumps(_flat(item, view.fields)).decode())
            count += 1
        out.write("\n]\n" if count else "]\n")
    out.flush()
    return count


async def _each(items: Iterable[_T]) -> AsyncIterator[_T]:
    for item in items:
        yield item


class Progress:
    """`done/total clusters` on one line of stderr, only when stderr is a terminal."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self._stream = stream
        self._label = label
        self._enabled = stream.isatty()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self._enabled or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        width = 30
        filled = width * done // total if total else width
        bar = "#" * filled + "." * (width - filled)
        self._stream.write(f"\r{self._label} [{bar}] {done}/{total} clusters")
        self._stream.flush()

    def clear(self) -> None:
        if self._enabled:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`26h`, `90m`, `1d12h`, `3600s` or plain seconds, as a timedelta."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        seconds = float(text)
    elif re.fullmatch(rf"(?:{_DURATION.pattern})+", text):
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(text))
    else:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 26h, 90m or 1d12h")
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the duration must be positive")
    return timedelta(seconds=seconds)


def inventory_exit_code(lines: Iterable[ClusterInventory]) -> int:
    """2 if any cluster failed, 1 if any is stale or has no backup, else 0."""
    states = {line.state for line in lines}
    if "error" in states:
        return EXIT_ERROR
    if states & {"stale", "no backups"}:
        return EXIT_STALE
    return EXIT_OK


def inventory_summary(lines: Sequence[ClusterInventory]) -> str:
    """One line: how many clusters are in each state."""
    counts = {state: 0 for state in ("ok", "stale", "no backups", "error")}
    for line in lines:
        counts[line.state] += 1
    return (
        f"{len(lines)} clusters: {counts['ok']} ok, {counts['stale']} stale, "
        f"{counts['no backups']} without a completed backup, {counts['error']} errors"
    )


# Commands


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pg-backups",
        description="List the backups of Yandex Cloud Managed PostgreSQL clusters.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--format", choices=FORMATS, default="table", help="default: table")
    output.add_argument("--page-size", type=int, metavar="N", help="items per request")
    output.add_argument(
        "-v", "--verbose", action="store_true", help="log retries and give-ups to stderr"
    )
    output.add_argument(
        "--debug", action="store_true", help="show the traceback of an unexpected error"
    )
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument(
        "--endpoint", default=None, help=f"API base URL (default $YC_ENDPOINT or {API_ENDPOINT})"
    )
    connection.add_argument(
        "--iam-token",
        default=None,
        help="IAM token (prefer the YC_IAM_TOKEN environment variable: "
        "arguments are visible to other users of the machine)",
    )
    connection.add_argument(
        "--service-account-key",
        default=None,
        metavar="FILE",
        help="a service account's authorized key file (or $YC_SERVICE_ACCOUNT_KEY_FILE)",
    )
    connection.add_argument(
        "--iam-endpoint", default=IAM_ENDPOINT, help=f"IAM token exchange (default {IAM_ENDPOINT})"
    )
    checking = argparse.ArgumentParser(add_help=False)
    checking.add_argument("--concurrency", type=int, default=16, metavar="N")
    checking.add_argument(
        "--stale-after",
        type=parse_duration,
        default=DEFAULT_STALE_AFTER,
        metavar="DURATION",
        help="a cluster whose newest completed backup is older is stale (default 26h)",
    )

    listing = commands.add_parser(
        "list", parents=[output, connection], help="list a cluster's backups"
    )
    listing.add_argument("cluster_id", metavar="CLUSTER_ID")
    listing.add_argument("--max-items", type=int, metavar="N", help="stop after N backups")

    clusters = commands.add_parser(
        "clusters", parents=[output, connection], help="list a folder's clusters"
    )
    clusters.add_argument("--folder-id", default=None, help="default $YC_FOLDER_ID")
    clusters.add_argument("--filter", default=None, help='only name="..." is supported')

    inventory = commands.add_parser(
        "inventory",
        parents=[output, connection, checking],
        help="check every cluster has a fresh backup (exit 0 fresh, 1 stale, 2 errors)",
    )
    inventory.add_argument(
        "--folder-id", action="append", default=[], help="repeatable; default $YC_FOLDER_ID"
    )
    inventory.add_argument("--cluster-id", action="append", default=[], help="repeatable")

    demo = commands.add_parser(
        "demo",
        parents=[output, checking],
        help="list backups and run an inventory against the built-in emulator",
    )
    demo.add_argument("--clusters", type=int, default=12, help="clusters to seed (default 12)")
    return parser


def _credentials(args: argparse.Namespace) -> Credentials:
    if args.iam_token:
        return IamToken(args.iam_token)
    if args.service_account_key:
        return ServiceAccountKey.from_file(
            args.service_account_key, iam_endpoint=args.iam_endpoint
        )
    return credentials_from_env(iam_endpoint=args.iam_endpoint)


def _client(args: argparse.Namespace) -> BackupsClient:
    credentials = _credentials(args)
    endpoint = args.endpoint or os.environ.get("YC_ENDPOINT") or API_ENDPOINT
    if "://" not in endpoint:
        endpoint = f"https://{endpoint}"
    return BackupsClient(credentials, endpoint=endpoint)


async def _list(args: argparse.Namespace, out: TextIO) -> int:
    async with (
        _client(args) as client,
        client.list_backups(
            args.cluster_id, page_size=args.page_size, max_items=args.max_items
        ) as stream,
    ):
        await write_items(stream, out, args.format, BACKUPS)
    return EXIT_OK


async def _clusters(args: argparse.Namespace, out: TextIO) -> int:
    folder_id = args.folder_id or os.environ.get("YC_FOLDER_ID")
    if not folder_id:
        raise UsageError("no folder: pass --folder-id or set YC_FOLDER_ID")
    async with (
        _client(args) as client,
        client.list_clusters(folder_id, filter=args.filter, page_size=args.page_size) as stream,
    ):
        await write_items(stream, out, args.format, CLUSTERS)
    return EXIT_OK


async def _run_inventory(
    client: BackupsClient,
    args: argparse.Namespace,
    out: TextIO,
    *,
    folder_ids: list[str],
    cluster_ids: list[str] | None = None,
) -> int:
    progress = Progress(sys.stderr, "inventory")
    try:
        lines = await client.inventory(
            folder_ids=folder_ids,
            cluster_ids=cluster_ids or [],
            concurrency=args.concurrency,
            page_size=args.page_size,
            stale_after=args.stale_after,
            now=datetime.now(UTC),
            on_progress=progress,
        )
    finally:
        progress.clear()
    await write_items(_each(lines), out, args.format, INVENTORY)
    print(inventory_summary(lines), file=sys.stderr)
    return inventory_exit_code(lines)


async def _inventory(args: argparse.Namespace, out: TextIO) -> int:
    folder_ids = args.folder_id
    if not folder_ids and not args.cluster_id and os.environ.get("YC_FOLDER_ID"):
        folder_ids = [os.environ["YC_FOLDER_ID"]]
    if not folder_ids and not args.cluster_id:
        raise UsageError("nothing to check: pass --folder-id, --cluster-id or set YC_FOLDER_ID")
    async with _client(args) as client:
        return await _run_inventory(
            client, args, out, folder_ids=folder_ids, cluster_ids=args.cluster_id
        )


async def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from .emulator import DEFAULT_FOLDER_ID, Emulator

    async with Emulator(clusters=args.clusters) as emulator:
        async with BackupsClient(IamToken("emulator-demo-token"), endpoint=emulator.url) as client:
            cluster_id = emulator.cluster_ids[0]
            print(
                f"The built-in emulator serves folder {DEFAULT_FOLDER_ID} at {emulator.url}.\n"
                f"The 5 newest backups of cluster {cluster_id}:",
                file=sys.stderr,
            )
            async with client.list_backups(
                cluster_id, page_size=args.page_size, max_items=5
            ) as stream:
                await write_items(stream, out, args.format, BACKUPS)
            print(f"\nAn inventory of the folder's {args.clusters} clusters:", file=sys.stderr)
            started = time.perf_counter()
            code = await _run_inventory(client, args, out, folder_ids=[DEFAULT_FOLDER_ID])
        print(
            f"{len(emulator.requests)} requests in {time.perf_counter() - started:.2f} s; "
            f"`pg-backups inventory` would exit {code} "
            "(0 all fresh, 1 stale or missing backups, 2 errors)",
            file=sys.stderr,
        )
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], Any]] = {
    "list": _list,
    "clusters": _clusters,
    "inventory": _inventory,
    "demo": _demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    logger = logging.getLogger("pg_backups_async")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrintableFormatter("pg-backups: %(message)s"))
    if args.verbose:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        return _run(args)
    finally:
        if args.verbose:
            logger.removeHandler(handler)
            logger.setLevel(logging.NOTSET)


class _PrintableFormatter(logging.Formatter):
    """Log lines with control characters escaped: a server's text cannot forge one."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def _error(text: str) -> None:
    print(f"pg-backups: {printable(text)}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    try:
        code: int = asyncio.run(_COMMANDS[args.command](args, sys.stdout))
    except (UsageError, ValueError, TypeError) as exc:
        _error(f"error: {exc}")
        return EXIT_ERROR
    except ApiError as exc:
        _error(f"{type(exc).__name__}: {exc}")
        return EXIT_ERROR
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: one line, unless --debug
        if args.debug:
            traceback.print_exc()
        _error(
            f"unexpected error: {type(exc).__name__}: {redact(str(exc))} "
            "(a bug: please report it; --debug shows the traceback)"
        )
        return EXIT_ERROR
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""`pg-backups`: list backups and clusters, and check backup freshness, from the shell."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import logging
import os
import re
import signal
import sys
import time
import traceback
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TextIO, TypeVar

import attrs
import orjson

from . import __version__
from .auth import (
    ENVIRONMENT_VARIABLES,
    IAM_ENDPOINT,
    Credentials,
    IamToken,
    ServiceAccountKey,
    credentials_from_env,
)
from .client import BackupsClient
from .errors import ApiError
from .exporter import DEFAULT_LISTEN
from .models import Backup, BackupStatus, Cluster, ClusterInventory, InventoryState
from .paging import ResumePoint
from .protocol import API_ENDPOINT
from .sanitize import printable, redact
from .serialize import to_dict

FORMATS = ("table", "json", "jsonl", "csv")
EXIT_OK, EXIT_STALE, EXIT_ERROR = 0, 1, 2

_T = TypeVar("_T")


class UsageError(Exception):
    """A problem with how the command was called."""


# Records and table rows


def human_size(size: int) -> str:
    """Bytes in binary units, at most four characters of number: `512 B`, `1.5 GiB`,
    `0.99 TiB` (a unit changes at 1000 of the one below, not 1024)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1000 or unit == "PiB":
            break
        value /= 1024
    if unit == "B":
        return f"{value:.0f} B"
    return f"{value:.2f} {unit}" if value < 1 else f"{value:.1f} {unit}"


def human_age(age: timedelta | None) -> str:
    """A duration as `3d4h05m`, `5h12m` or `42m`; `-` for none."""
    if age is None:
        return "-"
    minutes = max(0, int(age.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d{hours}h{minutes:02d}m"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def plural(count: int, noun: str) -> str:
    """`1 cluster`, `2 clusters`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV field that a spreadsheet will not run: text that starts like a formula gets a
    leading `'`, as spreadsheet-safety guides (OWASP's "CSV injection") advise."""
    if isinstance(value, dict):
        value = orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"  # as in json, not Python's True
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
    widths: tuple[int, ...] | None = None
    """Fixed column widths: the table is printed as items arrive. None: sized to fit."""


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
    widths=(54, 19, 9, 11, 8, 10, 10),
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
    widths=(20, 24, 11, 8, 8, 19),
)


def _inventory_state(line: ClusterInventory) -> str:
    if line.error is not None:
        return f"error: {type(line.error).__name__}: {line.error}"
    return str(line.state)


INVENTORY = View[ClusterInventory](
    header=(
        "CLUSTER",
        "NAME",
        "BACKUPS",
        "SIZE",
        "BASE",
        "INCR",
        "NEWEST DONE (UTC)",
        "AGE",
        "TOOK",
        "OLDEST DONE (UTC)",
        "STATE",
    ),
    row=lambda i: (
        i.cluster_id,
        i.name or "-",
        str(i.backup_count),
        human_size(i.total_size),
        human_size(i.base_size),
        human_size(i.incremental_size),
        _when(i.newest_done_at),
        human_age(i.newest_done_age),
        human_age(i.newest_done_duration),
        _when(i.oldest_done_at),
        _inventory_state(i),
    ),
    fields=(*(a.name for a in attrs.fields(ClusterInventory)), "state"),
)


def _table_line(row: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"


async def write_items(items: AsyncIterator[_T], out: TextIO, fmt: str, view: View[_T]) -> int:
    """Write items as they arrive; the count. A table with fixed widths is written line
    by line; one without waits for every item, to size its columns. `json` stays a
    well-formed document when the items stop with an error: it holds those received."""
    count = 0
    if fmt == "table" and view.widths is not None:
        async for item in items:
            if not count:  # the header with the first row: an error first shows neither
                out.write(_table_line(view.header, view.widths))
            out.write(_table_line([printable(c) for c in view.row(item)], view.widths))
            count += 1
        if not count:
            out.write(_table_line(view.header, view.widths))
    elif fmt == "table":
        rows = [view.header]
        async for item in items:
            rows.append(tuple(printable(cell) for cell in view.row(item)))
            count += 1
        widths = [max(len(row[i]) for row in rows) for i in range(len(view.header))]
        for row in rows:
            out.write(_table_line(row, widths))
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=view.fields, lineterminator="\n")
        # csv quotes a field with LF (the line terminator) but not one with a bare CR.
        quoting_all = csv.DictWriter(
            out, fieldnames=view.fields, lineterminator="\n", quoting=csv.QUOTE_ALL
        )
        writer.writeheader()
        async for item in items:
            fields = {k: csv_cell(v) for k, v in to_dict(item).items()}
            has_cr = any(isinstance(v, str) and "\r" in v for v in fields.values())
            (quoting_all if has_cr else writer).writerow(fields)
            count += 1
    elif fmt == "jsonl":
        async for item in items:
            out.write(orjson.dumps(to_dict(item)).decode() + "\n")
            count += 1
    else:
        out.write("[")
        try:
            async for item in items:
                out.write(",\n  " if count else "\n  ")
                out.write(orjson.dumps(to_dict(item)).decode())
                count += 1
        finally:
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
    counts = {state: 0 for state in InventoryState}
    for line in lines:
        counts[line.state] += 1
    return (
        f"{plural(len(lines), 'cluster')}: {counts[InventoryState.OK]} ok, "
        f"{counts[InventoryState.STALE]} stale, "
        f"{counts[InventoryState.NO_BACKUPS]} without a completed backup, "
        f"{plural(counts[InventoryState.ERROR], 'error')}"
    )


# Commands

_STATES = {state.value.replace(" ", "-"): state for state in InventoryState}


def _positive_int(low: int = 1, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{value} is not {span}")
        return value

    parse.__name__ = "number"
    return parse


def _choices(allowed: dict[str, _T], what: str) -> Callable[[str], frozenset[_T]]:
    def parse(text: str) -> frozenset[_T]:
        chosen = set()
        for name in text.split(","):
            key = name.strip().lower()
            if key not in allowed:
                raise argparse.ArgumentTypeError(
                    f"{name.strip()!r} is not a {what}: one of {', '.join(allowed)}"
                )
            chosen.add(allowed[key])
        return frozenset(chosen)

    parse.__name__ = what
    return parse


def parse_when(text: str) -> datetime:
    """A moment: an RFC 3339 time or a date (UTC), or a duration ago such as `7d`."""
    try:
        return datetime.now(UTC) - parse_duration(text)
    except argparse.ArgumentTypeError:
        pass
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a time such as 2026-11-01 or 2026-11-01T08:00:00Z "
            "nor a duration ago such as 7d"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _verbosity(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # On the top level and on each command, so that -v goes before or after the command.
    default = False if top else argparse.SUPPRESS
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="log retries and give-ups to stderr (default: off)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="show the traceback of an unexpected error (default: off)",
    )


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless it says it already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or not action.option_strings or action.default is argparse.SUPPRESS:
            return text
        return f"{text} (default: %(default)s)"


def _parser() -> argparse.ArgumentParser:
    formatter = HelpFormatter
    parser = argparse.ArgumentParser(
        prog="pg-backups",
        description="List the backups of Yandex Cloud Managed PostgreSQL clusters.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _verbosity(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--format", choices=FORMATS, default="table", help="output format")
    output.add_argument(
        "--page-size",
        type=_positive_int(1, 1000),
        metavar="N",
        help="items per request, 1 to 1000 (default: the service's, 100)",
    )
    _verbosity(output, top=False)
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument(
        "--endpoint",
        default=None,
        metavar="URL",
        help=f"the API's base URL (default: $YC_ENDPOINT, else {API_ENDPOINT})",
    )
    connection.add_argument(
        "--iam-token",
        default=None,
        metavar="TOKEN",
        help="an IAM token (default: $YC_IAM_TOKEN; prefer the variable: other users of "
        "the machine can see command arguments)",
    )
    connection.add_argument(
        "--service-account-key",
        default=None,
        metavar="FILE",
        help="a service account's authorized key file (default: $YC_SERVICE_ACCOUNT_KEY_FILE)",
    )
    connection.add_argument(
        "--iam-endpoint", default=IAM_ENDPOINT, metavar="URL", help="the IAM token exchange"
    )
    checking = argparse.ArgumentParser(add_help=False)
    checking.add_argument(
        "--concurrency",
        type=_positive_int(1),
        default=16,
        metavar="N",
        help="clusters listed at once (requests in flight at most)",
    )
    checking.add_argument(
        "--stale-after",
        type=parse_duration,
        default="26h",
        metavar="DURATION",
        help="a cluster whose newest completed backup is older is stale (26h, 90m, 1d12h)",
    )

    listing = commands.add_parser(
        "list",
        parents=[output, connection],
        help="list a cluster's backups",
        formatter_class=formatter,
    )
    listing.add_argument("cluster_id", metavar="CLUSTER_ID")
    listing.add_argument(
        "--max-items",
        type=_positive_int(1),
        metavar="N",
        help="stop after N backups (default: all)",
    )
    listing.add_argument(
        "--page-token",
        default=None,
        metavar="TOKEN",
        help="start from this page token, or from the resume point (~N~TOKEN) that an "
        "interrupted listing printed (default: the first page)",
    )
    listing.add_argument(
        "--status",
        type=_choices({s.name.lower(): s for s in BackupStatus}, "status"),
        default=None,
        metavar="STATUSES",
        help="only backups in these statuses, comma-separated: done, creating, "
        "unspecified, unknown (default: all)",
    )
    listing.add_argument(
        "--since",
        type=parse_when,
        default=None,
        metavar="WHEN",
        help="only backups completed at or after WHEN: 2026-11-01, 2026-11-01T08:00:00Z, "
        "or a duration ago such as 7d (default: no limit)",
    )
    listing.add_argument(
        "--until",
        type=parse_when,
        default=None,
        metavar="WHEN",
        help="only backups completed before WHEN, written as for --since (default: no limit)",
    )

    clusters = commands.add_parser(
        "clusters",
        parents=[output, connection],
        help="list a folder's clusters",
        formatter_class=formatter,
    )
    clusters.add_argument("--folder-id", default=None, help="the folder (default: $YC_FOLDER_ID)")
    clusters.add_argument(
        "--filter", default=None, help='only clusters so named: name="..." (default: all)'
    )

    inventory = commands.add_parser(
        "inventory",
        parents=[output, connection, checking],
        help="check every cluster has a fresh backup (exit 0 fresh, 1 stale, 2 errors)",
        formatter_class=formatter,
    )
    inventory.add_argument(
        "--folder-id",
        action="append",
        default=[],
        help="a folder whose clusters to check; repeatable (default: $YC_FOLDER_ID)",
    )
    inventory.add_argument(
        "--cluster-id",
        action="append",
        default=[],
        help="a cluster to check; repeatable (default: none)",
    )
    inventory.add_argument(
        "--only",
        type=_choices(_STATES, "state"),
        default=None,
        metavar="STATES",
        help=f"show only clusters in these states, comma-separated: {', '.join(_STATES)} "
        "(default: all; the exit status still counts every cluster)",
    )

    exporter = commands.add_parser(
        "exporter",
        parents=[connection, checking],
        help="serve backup freshness as Prometheus metrics (needs the exporter extra)",
        formatter_class=formatter,
    )
    _verbosity(exporter, top=False)
    exporter.add_argument(
        "--folder-id",
        action="append",
        default=[],
        help="a folder whose clusters to watch; repeatable (default: $YC_FOLDER_ID)",
    )
    exporter.add_argument(
        "--cluster-id",
        action="append",
        default=[],
        help="a cluster to watch; repeatable (default: none)",
    )
    exporter.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help="where to serve /metrics and /healthz",
    )
    exporter.add_argument(
        "--interval",
        type=parse_duration,
        default="300",
        metavar="DURATION",
        help="time between collections, in seconds or as 5m, 1h",
    )

    demo = commands.add_parser(
        "demo",
        parents=[output, checking],
        help="list backups and run an inventory against the built-in emulator",
        formatter_class=formatter,
    )
    demo.add_argument(
        "--clusters", type=_positive_int(1), default=12, metavar="N", help="clusters to seed"
    )
    return parser


_NO_CREDENTIALS = (
    "no credentials: pass --iam-token or --service-account-key FILE, or set one of "
    + ", ".join(ENVIRONMENT_VARIABLES)
)


def _credentials(args: argparse.Namespace) -> Credentials:
    if args.iam_token:
        return IamToken(args.iam_token)
    if args.service_account_key:
        return ServiceAccountKey.from_file(
            args.service_account_key, iam_endpoint=args.iam_endpoint
        )
    if not any(os.environ.get(name) for name in ENVIRONMENT_VARIABLES):
        raise UsageError(_NO_CREDENTIALS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DeprecationWarning)
        credentials = credentials_from_env(iam_endpoint=args.iam_endpoint)
    for warning in caught:  # Python hides DeprecationWarning; a shell user should see it
        print(f"pg-backups: notice: {warning.message}", file=sys.stderr)
    return credentials


def _endpoint(args: argparse.Namespace) -> str:
    endpoint: str = args.endpoint
    if endpoint is None:
        endpoint = os.environ.get("YC_ENDPOINT") or API_ENDPOINT
    if not endpoint.strip():
        raise UsageError(
            f"--endpoint is empty: give a URL such as {API_ENDPOINT}, or leave it out"
        )
    if "://" not in endpoint:
        raise UsageError(
            f"the endpoint {endpoint!r} has no scheme: write https://{endpoint} "
            f"(or http://{endpoint} for the emulator on this machine)"
        )
    return endpoint


def _client(args: argparse.Namespace) -> BackupsClient:
    endpoint = _endpoint(args)
    return BackupsClient(_credentials(args), endpoint=endpoint)


async def _matching(
    backups: AsyncIterator[Backup], args: argparse.Namespace
) -> AsyncIterator[Backup]:
    """The backups that pass --status, --since and --until, at most --max-items of them."""
    count = 0
    async for backup in backups:
        if args.status is not None and backup.status not in args.status:
            continue
        if args.since is not None or args.until is not None:
            done = backup.created_at
            if done is None:
                continue
            if (args.since is not None and done < args.since) or (
                args.until is not None and done >= args.until
            ):
                continue
        yield backup
        count += 1
        if args.max_items is not None and count >= args.max_items:
            return


async def _list(args: argparse.Namespace, out: TextIO) -> int:
    filtered = args.status is not None or args.since is not None or args.until is not None
    token, resume = args.page_token, None
    if token is not None and ResumePoint.looks_like(token):
        token, resume = None, token
    async with (
        _client(args) as client,
        client.list_backups(
            args.cluster_id,
            page_size=args.page_size,
            page_token=token,
            resume=resume,
            max_items=None if filtered else args.max_items,
        ) as stream,
    ):
        items = _matching(stream, args) if filtered else stream
        try:
            await write_items(items, out, args.format, BACKUPS)
        except ApiError:
            point = stream.resume_point
            if point is not None and point != ResumePoint.parse(resume or f"~0~{token or ''}"):
                args.resume_hint = f"the same command with --page-token '{point}'"
            raise
        finally:
            if filtered:
                await items.aclose()  # type: ignore[attr-defined]
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
    only: frozenset[InventoryState] | None = None,
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
    shown = [line for line in lines if only is None or line.state in only]
    await write_items(_each(shown), out, args.format, INVENTORY)
    if not lines:
        where = ", ".join(folder_ids)
        print(f"pg-backups: no cluster found in folder {printable(where)}", file=sys.stderr)
        return EXIT_STALE
    print(inventory_summary(lines), file=sys.stderr)
    return inventory_exit_code(lines)


async def _inventory(args: argparse.Namespace, out: TextIO) -> int:
    folder_ids, cluster_ids = _targets(args)
    async with _client(args) as client:
        return await _run_inventory(
            client, args, out, folder_ids=folder_ids, cluster_ids=cluster_ids, only=args.only
        )


def _targets(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    folder_ids: list[str] = args.folder_id
    if not folder_ids and not args.cluster_id and os.environ.get("YC_FOLDER_ID"):
        folder_ids = [os.environ["YC_FOLDER_ID"]]
    if not folder_ids and not args.cluster_id:
        raise UsageError("nothing to check: pass --folder-id, --cluster-id or set YC_FOLDER_ID")
    return folder_ids, args.cluster_id


async def _exporter(args: argparse.Namespace, out: TextIO) -> int:
    from .exporter import MISSING, Exporter, parse_listen

    if MISSING:
        raise UsageError(MISSING)
    host, port = parse_listen(args.listen)
    folder_ids, cluster_ids = _targets(args)

    def collected(exporter: Exporter) -> None:
        snapshot = exporter.snapshot
        if exporter.last_error is None and snapshot is not None:
            print(
                f"pg-backups: collected {plural(len(snapshot.lines), 'cluster')} "
                f"in {snapshot.duration:.2f} s",
                file=sys.stderr,
                flush=True,
            )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    try:
        async with _client(args) as client:
            exporter = Exporter(
                client,
                folder_ids=folder_ids,
                cluster_ids=cluster_ids,
                interval=args.interval.total_seconds(),
                stale_after=args.stale_after,
                concurrency=args.concurrency,
                on_collected=collected,
            )
            try:
                url = await exporter.start(host, port)
            except OSError as exc:
                raise UsageError(
                    f"cannot listen on {args.listen}: {exc.strerror or exc}"
                ) from None
            print(
                f"pg-backups: serving {url}/metrics and {url}/healthz, collecting every "
                f"{args.interval.total_seconds():g} s; stop with SIGTERM or Ctrl-C",
                file=sys.stderr,
                flush=True,
            )
            try:
                await stop.wait()
            finally:
                await exporter.stop()
    finally:
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signal_number)
    return EXIT_OK


async def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from .emulator import DEFAULT_FOLDER_ID, Emulator

    # json is one document: {"backups": [...], "inventory": [...]}.
    parts = (io.StringIO(), io.StringIO()) if args.format == "json" else (out, out)
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
                await write_items(stream, parts[0], args.format, BACKUPS)
            print(
                f"\nAn inventory of the folder's {plural(args.clusters, 'cluster')}:",
                file=sys.stderr,
            )
            started = time.perf_counter()
            code = await _run_inventory(client, args, parts[1], folder_ids=[DEFAULT_FOLDER_ID])
        if args.format == "json":
            backups, inventory = (part.getvalue().strip() for part in parts)  # type: ignore[attr-defined]
            out.write(f'{{"backups": {backups},\n "inventory": {inventory}}}\n')
        print(
            f"{plural(len(emulator.requests), 'request')} in "
            f"{time.perf_counter() - started:.2f} s; `pg-backups inventory` would exit {code} "
            "(0 all fresh, 1 stale or missing backups, 2 errors)",
            file=sys.stderr,
        )
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], Any]] = {
    "list": _list,
    "clusters": _clusters,
    "inventory": _inventory,
    "demo": _demo,
    "exporter": _exporter,
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
        hint = getattr(args, "resume_hint", None)
        if hint is not None:
            _error(f"to carry on from there, run {hint}")
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

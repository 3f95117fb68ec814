"""The command line's arguments: `build_parser()` and the types that check them."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from .. import __version__
from ..auth import IAM_ENDPOINT
from ..client import API_ENDPOINT, RESOURCE_MANAGER_ENDPOINT
from ..limits import (
    DEFAULT_CONCURRENCY,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_INTERVAL,
    DEFAULT_LISTEN,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PAGES,
    MAX_DEMO_CLUSTERS,
    MAX_DURATION_DAYS,
)
from ..models import BackupStatus, InventoryState
from .render import FORMATS

_T = TypeVar("_T")


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = timedelta(days=MAX_DURATION_DAYS)


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
    if not seconds <= MAX_DURATION.total_seconds():  # also inf, from a long run of digits
        raise argparse.ArgumentTypeError(
            f"{text!r} is over {MAX_DURATION.days}d, the longest duration taken"
        )
    return timedelta(seconds=seconds)


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


def _output(formats: tuple[str, ...]) -> argparse.ArgumentParser:
    """The options of a command that writes items: its formats, the page size, -v."""
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--format", choices=formats, default="table", help="output format")
    output.add_argument(
        "--page-size",
        type=_positive_int(1, 1000),
        metavar="N",
        help="items per request, 1 to 1000 (default: the service's, 100)",
    )
    _verbosity(output, top=False)
    return output


def build_parser() -> argparse.ArgumentParser:
    formatter = HelpFormatter
    parser = argparse.ArgumentParser(
        prog="pg-backups",
        description="List the backups of Yandex Cloud Managed PostgreSQL clusters.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _verbosity(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    output = _output(FORMATS)
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
        "--resource-manager-endpoint",
        default=None,
        metavar="URL",
        help="Resource Manager's base URL, where clouds and folders are listed (default: "
        f"--endpoint when it is given, else {RESOURCE_MANAGER_ENDPOINT})",
    )
    connection.add_argument(
        "--iam-endpoint", default=IAM_ENDPOINT, metavar="URL", help="the IAM token exchange"
    )
    connection.add_argument(
        "--max-pages",
        type=_positive_int(1),
        default=DEFAULT_MAX_PAGES,
        metavar="N",
        help="a listing that has not ended after N pages fails: a broken server's endless "
        f"listing ends instead of filling memory (default: {DEFAULT_MAX_PAGES}, 10 million "
        "items at 1000 a page)",
    )
    discovery = argparse.ArgumentParser(add_help=False)
    discovery.add_argument(
        "--folder-id",
        action="append",
        default=[],
        help="a folder whose clusters to take; repeatable (default: $YC_FOLDER_ID)",
    )
    discovery.add_argument(
        "--cloud-id",
        action="append",
        default=[],
        help="a cloud whose ACTIVE folders' clusters to take; repeatable (default: none)",
    )
    discovery.add_argument(
        "--all-clouds",
        action="store_true",
        help="every cloud these credentials can list (default: off)",
    )
    discovery.add_argument(
        "--organization-id",
        default=None,
        metavar="ID",
        help="with --all-clouds, only this organization's clouds (default: all it can see)",
    )
    named = argparse.ArgumentParser(add_help=False)
    named.add_argument(
        "--cluster-id",
        action="append",
        default=[],
        help="a cluster to take; repeatable (default: none)",
    )
    checking = argparse.ArgumentParser(add_help=False)
    checking.add_argument(
        "--concurrency",
        type=_positive_int(1),
        default=DEFAULT_CONCURRENCY,
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

    clouds = commands.add_parser(
        "clouds",
        parents=[output, connection],
        help="list the clouds these credentials can see",
        formatter_class=formatter,
    )
    clouds.add_argument(
        "--organization-id",
        default=None,
        metavar="ID",
        help="only this organization's clouds (default: all the credentials can see)",
    )

    folders = commands.add_parser(
        "folders",
        parents=[output, connection],
        help="list a cloud's folders",
        formatter_class=formatter,
    )
    folders.add_argument(
        "--cloud-id",
        action="append",
        default=[],
        required=True,
        help="the cloud; repeatable",
    )

    clusters = commands.add_parser(
        "clusters",
        parents=[output, connection, discovery],
        help="list the clusters of folders or clouds",
        formatter_class=formatter,
    )
    clusters.add_argument(
        "--filter",
        default=None,
        help='with one --folder-id, only clusters so named: name="..." (default: all)',
    )
    clusters.add_argument(
        "--concurrency",
        type=_positive_int(1),
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help="folders and clouds listed at once",
    )

    inventory = commands.add_parser(
        "inventory",
        parents=[_output((*FORMATS, "prometheus")), connection, checking, discovery, named],
        help="check every cluster has a fresh backup (exit 0 fresh, 1 stale, 2 errors)",
        formatter_class=formatter,
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
        parents=[connection, checking, discovery, named],
        help="serve backup freshness as Prometheus metrics (needs the exporter extra)",
        formatter_class=formatter,
    )
    _verbosity(exporter, top=False)
    exporter.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help="where to serve /metrics and /healthz",
    )
    exporter.add_argument(
        "--web-config-file",
        default=None,
        metavar="FILE",
        help="TLS and basic auth for /metrics, in the exporter-toolkit web config format "
        "(default: none, plain HTTP)",
    )
    exporter.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines as text, or one JSON object a line",
    )
    exporter.add_argument(
        "--max-connections",
        type=_positive_int(1),
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="connections served at once; a new one closes the oldest idle one",
    )
    exporter.add_argument(
        "--header-timeout",
        type=parse_duration,
        default=str(DEFAULT_HEADER_TIMEOUT),
        metavar="DURATION",
        help="time a connection has to send a request's headers, then it is closed",
    )
    exporter.add_argument(
        "--interval",
        type=parse_duration,
        default=f"{DEFAULT_INTERVAL:g}",
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
        "--clusters",
        type=_positive_int(1, MAX_DEMO_CLUSTERS),
        default=12,
        metavar="N",
        help=f"clusters to seed, at most {MAX_DEMO_CLUSTERS}",
    )
    demo.set_defaults(max_pages=DEFAULT_MAX_PAGES)
    return parser

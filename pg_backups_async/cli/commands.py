"""The commands: each takes the parsed arguments and an output, and gives an exit status."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shlex
import signal
import sys
import time
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO, TypeVar

import attrs

from ..auth import ENVIRONMENT_VARIABLES, Credentials, IamToken, resolve_credentials
from ..client import API_ENDPOINT, BackupsClient
from ..models import Backup, ClusterInventory, Folder, InventoryState
from ..observe import AttemptHook
from ..paging import ResumePoint
from ..protocol import validate_filter, validate_id, validate_page_token
from ..sanitize import printable
from .exits import EXIT_ERROR, EXIT_OK, EXIT_STALE, UsageError, inventory_exit_code
from .render import (
    BACKUPS,
    CLOUDS,
    CLUSTERS,
    FOLDERS,
    INVENTORY,
    Progress,
    each,
    inventory_summary,
    plural,
    write_items,
)

_T = TypeVar("_T")

_NO_CREDENTIALS = (
    "no credentials: pass --iam-token or --service-account-key FILE, or set one of "
    + ", ".join(ENVIRONMENT_VARIABLES)
)


def _credentials(args: argparse.Namespace) -> Credentials:
    explicit = args.iam_token or args.service_account_key
    if not explicit and not any(os.environ.get(name) for name in ENVIRONMENT_VARIABLES):
        raise UsageError(_NO_CREDENTIALS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # every warning of the library, as a notice
        credentials = resolve_credentials(
            iam_token=args.iam_token,
            service_account_key_file=args.service_account_key,
            iam_endpoint=args.iam_endpoint,
        )
    for warning in caught:  # Python hides DeprecationWarning; a shell user should see it all
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


def _folder_from_env() -> str:
    """$YC_FOLDER_ID, checked as --folder-id is ("" when unset)."""
    value = os.environ.get("YC_FOLDER_ID", "")
    return value and _argument(validate_id, value, name="YC_FOLDER_ID")


def _argument(check: Callable[..., _T], value: Any, **keywords: Any) -> _T:
    """`check(value)`, a library check of something the user typed: what it refuses is
    a usage error, not a failure of the library."""
    try:
        return check(value, **keywords)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def _client(args: argparse.Namespace, *, on_attempt: AttemptHook | None = None) -> BackupsClient:
    """The client the options describe; a credential, key file or endpoint the library
    refuses is the user's to fix: a usage error."""
    endpoint = _endpoint(args)
    try:
        return BackupsClient(
            _credentials(args),
            endpoint=endpoint,
            resource_manager_endpoint=args.resource_manager_endpoint,
            on_attempt=on_attempt,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


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
    _argument(validate_id, args.cluster_id, name="cluster_id")
    token, resume = args.page_token, None
    if token is not None and ResumePoint.looks_like(token):
        token, resume = None, _argument(ResumePoint.parse, token)
    else:
        _argument(validate_page_token, token)
    async with (
        _client(args) as client,
        client.list_backups(
            args.cluster_id,
            page_size=args.page_size,
            max_pages=args.max_pages,
            page_token=token,
            resume=resume,
            max_items=None if filtered else args.max_items,
        ) as stream,
    ):
        items = _matching(stream, args) if filtered else stream
        try:
            await write_items(items, out, args.format, BACKUPS)
        finally:
            # Stopped before the end (--max-items, Ctrl-C, an error): where to carry on.
            point = stream.resume_point
            if point is not None and point != (resume or ResumePoint(token)):
                args.resume_hint = resume_hint(point)
            if filtered:
                await items.aclose()  # type: ignore[attr-defined]
    return EXIT_OK


def resume_hint(point: ResumePoint) -> str:
    """How to carry on from `point`, as a shell line's words: the page token comes from
    the server, so it is quoted for the shell, and left out when a terminal line cannot
    carry it exactly (a control or format character)."""
    text = str(point)
    if not text.isprintable():
        return "(none: the service's page token holds characters a shell line cannot carry)"
    return f"the same command with --page-token {shlex.quote(text)}"


@attrs.frozen
class Targets:
    """What a command takes clusters from: folders, clouds, every cloud, and clusters."""

    folder_ids: list[str]
    cloud_ids: list[str]
    all_clouds: bool
    organization_id: str | None
    cluster_ids: list[str]

    def keywords(self, *, clusters: bool = True) -> dict[str, Any]:
        """The targets as the library's keywords (without `cluster_ids`, for discovery)."""
        return attrs.asdict(self, filter=lambda a, _: clusters or a.name != "cluster_ids")

    @property
    def discovers(self) -> bool:
        """Whether clusters are found through clouds."""
        return bool(self.cloud_ids) or self.all_clouds

    def describe(self) -> str:
        """Where clusters were looked for, for a message."""
        parts = []
        if self.all_clouds:
            org = self.organization_id
            parts.append(f"the clouds of organization {org}" if org else "every cloud")
        parts += [f"cloud {cloud_id}" for cloud_id in self.cloud_ids]
        parts += [f"folder {folder_id}" for folder_id in self.folder_ids]
        return printable(", ".join(parts))


def _targets(args: argparse.Namespace, *, clusters: bool = True) -> Targets:
    """The targets the options name ($YC_FOLDER_ID when they name none), checked."""
    if args.organization_id is not None and not args.all_clouds:
        raise UsageError("--organization-id goes with --all-clouds")
    cluster_ids: list[str] = args.cluster_id if clusters else []
    folder_ids: list[str] = args.folder_id
    named = folder_ids or args.cloud_id or args.all_clouds or cluster_ids
    if not named and _folder_from_env():
        folder_ids = [_folder_from_env()]
    if not (folder_ids or args.cloud_id or args.all_clouds or cluster_ids):
        more, verb = (", --cluster-id", "check") if clusters else ("", "list")
        raise UsageError(
            f"nothing to {verb}: pass --folder-id, --cloud-id, --all-clouds{more} "
            "or set YC_FOLDER_ID"
        )
    for name, values in (
        ("folder_id", folder_ids),
        ("cloud_id", args.cloud_id),
        ("cluster_id", cluster_ids),
        ("organization_id", [args.organization_id] if args.organization_id else []),
    ):
        for value in values:
            _argument(validate_id, value, name=name)
    return Targets(
        folder_ids=folder_ids,
        cloud_ids=args.cloud_id,
        all_clouds=args.all_clouds,
        organization_id=args.organization_id,
        cluster_ids=cluster_ids,
    )


async def _clouds(args: argparse.Namespace, out: TextIO) -> int:
    if args.organization_id is not None:
        _argument(validate_id, args.organization_id, name="organization_id")
    async with (
        _client(args) as client,
        client.list_clouds(
            args.organization_id, page_size=args.page_size, max_pages=args.max_pages
        ) as stream,
    ):
        await write_items(stream, out, args.format, CLOUDS)
    return EXIT_OK


async def _folders(args: argparse.Namespace, out: TextIO) -> int:
    for cloud_id in args.cloud_id:
        _argument(validate_id, cloud_id, name="cloud_id")

    async def folders(client: BackupsClient) -> AsyncIterator[Folder]:
        for cloud_id in args.cloud_id:
            async with client.list_folders(
                cloud_id, page_size=args.page_size, max_pages=args.max_pages
            ) as stream:
                async for folder in stream:
                    yield folder

    async with _client(args) as client:
        items = folders(client)
        try:
            await write_items(items, out, args.format, FOLDERS)
        finally:
            await items.aclose()  # type: ignore[attr-defined]
    return EXIT_OK


async def _clusters(args: argparse.Namespace, out: TextIO) -> int:
    targets = _targets(args, clusters=False)
    if not targets.discovers and len(targets.folder_ids) == 1:
        _argument(validate_filter, args.filter)
        async with (
            _client(args) as client,
            client.list_clusters(
                targets.folder_ids[0],
                filter=args.filter,
                page_size=args.page_size,
                max_pages=args.max_pages,
            ) as stream,
        ):
            count = await write_items(stream, out, args.format, CLUSTERS)
        return EXIT_OK if count else _none_found(targets)
    if args.filter is not None:
        raise UsageError("--filter goes with a single --folder-id")
    async with _client(args) as client:
        found = await client.discover_clusters(
            **targets.keywords(clusters=False),
            concurrency=args.concurrency,
            page_size=args.page_size,
            max_pages=args.max_pages,
        )
    await write_items(each(found.clusters), out, args.format, CLUSTERS)
    _tell_skipped(found.skipped_folders)
    for failure in found.failures:
        _tell_failure(failure)
    if found.failures:
        return EXIT_ERROR
    return EXIT_OK if found.clusters else _none_found(targets)


def _none_found(targets: Targets) -> int:
    """No cluster where the user looked: said on stderr, and exit 1, as `inventory` does."""
    print(f"pg-backups: no cluster found in {targets.describe()}", file=sys.stderr)
    return EXIT_STALE


def _tell_failure(line: ClusterInventory) -> None:
    where = line.folder_id or line.cloud_id
    print(
        f"pg-backups: cannot list the clusters of {line.scope} {printable(where)}: "
        f"{type(line.error).__name__}: {printable(str(line.error))}",
        file=sys.stderr,
    )


def _tell_skipped(folders: Sequence[Folder]) -> None:
    if folders:
        shown = ", ".join(f"{f.id} ({f.status.name})" for f in folders)
        print(
            f"pg-backups: skipped {plural(len(folders), 'folder')} not ACTIVE: {printable(shown)}",
            file=sys.stderr,
        )


async def _run_inventory(
    client: BackupsClient,
    args: argparse.Namespace,
    out: TextIO,
    targets: Targets,
    *,
    only: frozenset[InventoryState] | None = None,
) -> int:
    progress = Progress(sys.stderr, "inventory")
    try:
        lines = await client.inventory(
            **targets.keywords(),
            concurrency=args.concurrency,
            page_size=args.page_size,
            max_pages=args.max_pages,
            stale_after=args.stale_after,
            now=datetime.now(UTC),
            on_progress=progress,
        )
    finally:
        progress.clear()
    shown = [line for line in lines if only is None or line.state in only]
    if args.format == "prometheus":
        from ..exporter import MISSING
        from ..exposition import render_inventory

        if MISSING:
            raise UsageError(MISSING)
        out.write(render_inventory(shown, now=time.time()).decode())
        out.flush()
    else:
        await write_items(each(shown), out, args.format, INVENTORY)
    _tell_skipped(lines.skipped_folders)
    if not lines:
        return _none_found(targets)
    print(inventory_summary(lines), file=sys.stderr)
    return inventory_exit_code(lines)


async def _inventory(args: argparse.Namespace, out: TextIO) -> int:
    targets = _targets(args)
    async with _client(args) as client:
        return await _run_inventory(client, args, out, targets, only=args.only)


async def _exporter(args: argparse.Namespace, out: TextIO) -> int:
    from ..exporter import MISSING, Exporter, parse_listen
    from ..exposition import RequestCounter
    from ..webconfig import load_web_config

    if MISSING:
        raise UsageError(MISSING)
    try:
        host, port = parse_listen(args.listen)
        web_config = (
            None if args.web_config_file is None else load_web_config(args.web_config_file)
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    targets = _targets(args)
    requests = RequestCounter()

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
        async with _client(args, on_attempt=requests) as client:
            exporter = Exporter(
                client,
                **targets.keywords(),
                requests=requests,
                interval=args.interval.total_seconds(),
                stale_after=args.stale_after,
                concurrency=args.concurrency,
                max_pages=args.max_pages,
                on_collected=collected,
            )
            try:
                url = await exporter.start(
                    host,
                    port,
                    web_config=web_config,
                    max_connections=args.max_connections,
                    header_timeout=args.header_timeout.total_seconds(),
                )
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
    from ..emulator import DEFAULT_ORGANIZATION_ID, Emulator

    # json is one document: {"backups": [...], "inventory": [...]}.
    parts = (io.StringIO(), io.StringIO()) if args.format == "json" else (out, out)
    async with Emulator(clusters=args.clusters, organization=True) as emulator:
        async with BackupsClient(IamToken("emulator-demo-token"), endpoint=emulator.url) as client:
            cluster_id = emulator.cluster_ids[0]
            print(
                f"The built-in emulator serves organization {DEFAULT_ORGANIZATION_ID} at "
                f"{emulator.url}: {plural(len(emulator.clouds), 'cloud')}, "
                f"{plural(len(emulator.folders), 'folder')}, "
                f"{plural(len(emulator.cluster_ids), 'cluster')}.\n"
                f"The 5 newest backups of cluster {cluster_id}:",
                file=sys.stderr,
            )
            async with client.list_backups(
                cluster_id, page_size=args.page_size, max_items=5
            ) as stream:
                await write_items(stream, parts[0], args.format, BACKUPS)
            print(
                "\nAn inventory of the whole organization, found on its own "
                "(pg-backups inventory --all-clouds):",
                file=sys.stderr,
            )
            started = time.perf_counter()
            targets = Targets(
                folder_ids=[], cloud_ids=[], all_clouds=True, organization_id=None, cluster_ids=[]
            )
            code = await _run_inventory(client, args, parts[1], targets)
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


COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], Any]] = {
    "list": _list,
    "clouds": _clouds,
    "folders": _folders,
    "clusters": _clusters,
    "inventory": _inventory,
    "demo": _demo,
    "exporter": _exporter,
}

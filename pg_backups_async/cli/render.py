"""What the command line shows: tables, json, jsonl and csv, sizes, ages, progress."""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Generic, TextIO, TypeVar

import attrs
import orjson

from ..models import Backup, Cloud, Cluster, ClusterInventory, Folder, InventoryState
from ..sanitize import printable
from ..serialize import to_dict

FORMATS = ("table", "json", "jsonl", "csv")

_T = TypeVar("_T")


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


CLOUDS = View[Cloud](
    header=("ID", "NAME", "ORGANIZATION", "CREATED (UTC)"),
    row=lambda c: (c.id, c.name, c.organization_id or "-", _when(c.created_at)),
    fields=tuple(a.name for a in attrs.fields(Cloud)),
    widths=(20, 24, 20, 19),
)

FOLDERS = View[Folder](
    header=("ID", "NAME", "CLOUD", "STATUS", "CREATED (UTC)"),
    row=lambda f: (f.id, f.name, f.cloud_id, f.status.name, _when(f.created_at)),
    fields=tuple(a.name for a in attrs.fields(Folder)),
    widths=(20, 24, 20, 16, 19),
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
        i.cluster_id or "-",
        i.name or ("-" if i.cluster_id else f"{i.scope} {i.folder_id or i.cloud_id}".strip()),
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
    fields=(*(a.name for a in attrs.fields(ClusterInventory)), "state", "scope"),
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


async def each(items: Iterable[_T]) -> AsyncIterator[_T]:
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


def inventory_summary(lines: Sequence[ClusterInventory]) -> str:
    """One line: how many clusters are in each state, and the folders, clouds or
    organization that could not be listed."""
    counts = {state: 0 for state in InventoryState}
    clusters = [line for line in lines if line.cluster_id]
    for line in clusters:
        counts[line.state] += 1
    summary = (
        f"{plural(len(clusters), 'cluster')}: {counts[InventoryState.OK]} ok, "
        f"{counts[InventoryState.STALE]} stale, "
        f"{counts[InventoryState.NO_BACKUPS]} without a completed backup, "
        f"{plural(counts[InventoryState.ERROR], 'error')}"
    )
    unlisted = Counter(line.scope for line in lines if not line.cluster_id)
    if unlisted:
        parts = [plural(n, "organization" if scope == "organization" else scope)
                 for scope, n in sorted(unlisted.items())]  # fmt: skip
        summary += f"; not listed: {', '.join(parts)}"
    return summary

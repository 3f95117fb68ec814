"""The command line's exit statuses and its usage error: what both the commands and
the entry point speak of."""

from __future__ import annotations

from collections.abc import Iterable

from ..models import ClusterInventory

EXIT_OK, EXIT_STALE, EXIT_ERROR = 0, 1, 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A problem with how the command was called."""


def inventory_exit_code(lines: Iterable[ClusterInventory]) -> int:
    """2 if any cluster failed, 1 if any is stale or has no backup, else 0."""
    states = {line.state for line in lines}
    if "error" in states:
        return EXIT_ERROR
    if states & {"stale", "no backups"}:
        return EXIT_STALE
    return EXIT_OK

"""`pg-backups`: list backups, clusters and their freshness from the shell.

`main` is the entry point; `render`, `parser`, `commands` and `exits` hold what it shows,
what it takes, what it does and the statuses it ends with.
"""

from .exits import EXIT_ERROR, EXIT_OK, EXIT_STALE, UsageError, inventory_exit_code
from .main import main
from .parser import HelpFormatter, build_parser, parse_duration, parse_when
from .render import (
    BACKUPS,
    CLUSTERS,
    FORMATS,
    INVENTORY,
    csv_cell,
    human_age,
    human_size,
    inventory_summary,
    write_items,
)

__all__ = [
    "BACKUPS",
    "CLUSTERS",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_STALE",
    "FORMATS",
    "INVENTORY",
    "HelpFormatter",
    "UsageError",
    "build_parser",
    "csv_cell",
    "human_age",
    "human_size",
    "inventory_exit_code",
    "inventory_summary",
    "main",
    "parse_duration",
    "parse_when",
    "write_items",
]

"""Log lines for people and for log collectors: text or one JSON object a line.

Either way a server's text cannot forge a line: control characters are escaped as
`printable` does. `log_handler` is what the command line attaches for the exporter.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

import orjson

from .sanitize import printable

LogFormat = Literal["text", "json"]
EXPORTER_LOGGER = "pg_backups_async.exporter"


class TextFormatter(logging.Formatter):
    """`pg-backups: message`, with control characters escaped."""

    def __init__(self) -> None:
        super().__init__("pg-backups: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: `time` (RFC 3339, UTC), `level`, `logger`, `message`, and
    `exception` when there is one; text escaped as `printable` does."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": printable(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = printable(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


class _NoRetryDetails(logging.Filter):
    """Drops the retry layer's give-ups: the exporter's warning sums them up."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == EXPORTER_LOGGER or record.module != "retry"


def log_handler(
    stream: TextIO | None = None, *, fmt: LogFormat = "text", verbose: bool = False
) -> logging.Handler:
    """A handler for the `pg_backups_async` logger: to `stream` (stderr by default).

    Without `verbose`: warnings, such as a failed collection and its recovery, one line
    each; the retry layer's give-ups are left out, as the collection's warning names
    what failed. With it: every record, debug included (set the logger's level to
    DEBUG too).
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    if verbose:
        handler.setLevel(logging.DEBUG)
    else:
        handler.setLevel(logging.WARNING)
        handler.addFilter(_NoRetryDetails())
    return handler

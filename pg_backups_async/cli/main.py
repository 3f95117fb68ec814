"""The entry point, `pg-backups`, and its error policy: one line and an exit status for
every expected failure, `internal error` for anything else."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from ..errors import ApiError
from ..logformat import log_handler
from ..sanitize import printable, redact
from .commands import COMMANDS
from .exits import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, UsageError
from .parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    logger = logging.getLogger("pg_backups_async")
    # The exporter always logs (a failed collection is a warning); the other commands
    # only with -v, as their errors are their one line on stderr.
    logs = args.verbose or args.command == "exporter"
    handler = log_handler(fmt=getattr(args, "log_format", "text"), verbose=args.verbose)
    if logs:
        logger.addHandler(handler)
    if args.verbose:
        logger.setLevel(logging.DEBUG)
    try:
        return _run(args)
    finally:
        if logs:
            logger.removeHandler(handler)
        if args.verbose:
            logger.setLevel(logging.NOTSET)


def _error(text: str) -> None:
    print(f"pg-backups: {printable(text)}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    code = _outcome(args)
    # A command that stopped before the end of a listing (--max-items, Ctrl-C, an
    # error) says where to carry on; not when the reader went away (`| head`).
    hint = getattr(args, "resume_hint", None)
    if hint is not None and not getattr(args, "broken_pipe", False):
        _error(f"to carry on from there, run {hint}")
    return code


def _outcome(args: argparse.Namespace) -> int:
    try:
        code: int = asyncio.run(COMMANDS[args.command](args, sys.stdout))
    except UsageError as exc:
        _error(f"error: {exc}")
        return EXIT_ERROR
    except ApiError as exc:
        _error(f"{type(exc).__name__}: {exc}")
        return EXIT_ERROR
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        args.broken_pipe = True
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug: one line, unless --debug
        if args.debug:
            traceback.print_exc()
        _error(
            f"internal error: {type(exc).__name__}: {redact(str(exc))} "
            "(a bug: please report it; --debug shows the traceback)"
        )
        return EXIT_ERROR
    return code

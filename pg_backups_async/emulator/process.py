"""The emulator in a process of its own, for benchmarks and suites that keep CPUs apart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def emulator_process(*args: str) -> Iterator[tuple[str, list[str]]]:
    """Run `python -m pg_backups_async.emulator --port 0 ARGS` until the block ends.

    Yields its base URL and the ids of the clusters its banner lists (at most ten).
    """
    process = subprocess.Popen(  # noqa: S603 - our own module, with the caller's arguments
        [sys.executable, "-m", "pg_backups_async.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        first = process.stdout.readline()
        if not first.startswith("emulator serving on "):
            raise RuntimeError(f"the emulator did not start: {first.strip() or 'no output'}")
        clusters = []
        for line in process.stdout:
            if not line.startswith("  cluster "):
                break  # the banner's closing line
            clusters.append(line.split()[1].rstrip(":"))
        yield first.split()[-1], clusters
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()

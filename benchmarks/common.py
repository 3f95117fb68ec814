"""Shared by the benchmarks: an emulator in its own process, medians, result files."""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


@contextmanager
def emulator_process(*args: str) -> Iterator[tuple[str, list[str]]]:
    """Run `python -m pg_backups_async.emulator --port 0 ARGS`; yield its URL and clusters."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pg_backups_async.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        clusters = []
        for line in process.stdout:
            if not line.startswith("  cluster "):
                break  # the banner's closing line
            clusters.append(line.split()[1].rstrip(":"))
        yield url, clusters
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"python": platform.python_version(), "machine": platform.machine(), **data}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path

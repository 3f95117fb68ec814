"""Shared by the benchmarks: medians and result files. (The emulator runs in its own
process through `pg_backups_async.emulator.emulator_process`.)"""

from __future__ import annotations

import json
import platform
import statistics
from pathlib import Path
from typing import Any

from pg_backups_async.emulator import emulator_process

__all__ = ["emulator_process", "median", "write_result"]

RESULTS = Path(__file__).parent / "results"


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"python": platform.python_version(), "machine": platform.machine(), **data}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path

"""Shared by the benchmarks: medians and result files. (The emulator runs in its own
process through `pg_backups_async.emulator.emulator_process`.)"""

from __future__ import annotations

import json
import platform
import statistics
from pathlib import Path
from typing import Any, NamedTuple

from pg_backups_async.emulator import emulator_process

__all__ = ["Target", "emulator_process", "median", "report_targets", "write_result"]

RESULTS = Path(__file__).parent / "results"


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"python": platform.python_version(), "machine": platform.machine(), **data}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


class Target(NamedTuple):
    """One of issue 13's targets: a figure from this run, the baseline it is held to (also
    from this run), the limit, and whether it was met."""

    name: str
    value: str
    baseline: str
    limit: str
    met: bool


def report_targets(targets: list[Target]) -> list[dict[str, Any]]:
    """Print the targets as a table; give them as JSON-ready rows."""
    width = max(len(t.name) for t in targets)
    print(f"\n{'target':{width}}  {'this run':>12}  {'limit':>10}  met  baseline (same run)")
    for t in targets:
        met = "yes" if t.met else "NO "
        print(f"{t.name:{width}}  {t.value:>12}  {t.limit:>10}  {met}  {t.baseline}")
    return [t._asdict() for t in targets]

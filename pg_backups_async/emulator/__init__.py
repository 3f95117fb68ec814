"""A built-in emulator of the API, for demos and test suites.

`python -m pg_backups_async.emulator --port 8080` serves it; in tests, use
`async with Emulator() as emulator:` and point a client at `emulator.url`.
"""

from .faults import CHAOS, Fault
from .process import emulator_process
from .seed import (
    DEFAULT_CLOUD_ID,
    DEFAULT_FOLDER_ID,
    DEFAULT_ORGANIZATION_ID,
    FORBIDDEN_FOLDER_ID,
)
from .server import Emulator, RecordedRequest

__all__ = [
    "CHAOS",
    "DEFAULT_CLOUD_ID",
    "DEFAULT_FOLDER_ID",
    "DEFAULT_ORGANIZATION_ID",
    "FORBIDDEN_FOLDER_ID",
    "Emulator",
    "Fault",
    "RecordedRequest",
    "emulator_process",
]

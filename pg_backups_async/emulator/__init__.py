"""A built-in emulator of the Managed PostgreSQL API, for demos and test suites.

`python -m pg_backups_async.emulator --port 8080` serves it; in tests, use
`async with Emulator() as emulator:` and point a client at `emulator.url`.
"""

from .process import emulator_process
from .seed import DEFAULT_FOLDER_ID
from .server import CHAOS, Emulator, Fault, RecordedRequest

__all__ = [
    "CHAOS",
    "DEFAULT_FOLDER_ID",
    "Emulator",
    "Fault",
    "RecordedRequest",
    "emulator_process",
]

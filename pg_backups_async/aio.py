"""Small asyncio helpers shared by the streams, the fan-out and the client."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self


class AsyncClosing:
    """`async with` for anything with `aclose()`: leaving the block closes it."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def retrieve_exception(task: asyncio.Task[object]) -> None:
    """A done callback: mark a failed task's exception as retrieved even if nobody awaits it."""
    if not task.cancelled():
        task.exception()

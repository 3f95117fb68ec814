"""Small asyncio helpers shared by the streams, the fan-out and the client."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:  # the server side of aiohttp, imported only by what serves
    from aiohttp import web


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


async def serve(
    app: web.Application, host: str, port: int, **options: Any
) -> tuple[web.AppRunner, str]:
    """Serve `app` on `host:port` (0: a free port): its runner and base URL.

    `options` go to `web.AppRunner`; it never handles signals or logs access here.
    """
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, handle_signals=False, **options)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"http://{shown}:{bound_port}"

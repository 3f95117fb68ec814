"""An aiohttp.web app that shares one BackupsClient for its whole lifetime.

    YC_IAM_TOKEN=... python examples/aiohttp_app.py     # http://127.0.0.1:8081

`YC_ENDPOINT` points it at another API (the emulator: `http://127.0.0.1:8080`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from aiohttp import web

import pg_backups_async as pba

CLIENT = web.AppKey("client", pba.BackupsClient)


def _error(error: Exception) -> web.Response:
    """An API error (or a bad argument) as the HTTP answer a caller should get."""
    if isinstance(error, ValueError | TypeError):
        status = 400
    elif isinstance(error, pba.NotFoundError | pba.PermissionDeniedError):
        status = 404  # the service hides what these credentials may not see
    elif isinstance(error, pba.ResourceExhaustedError):
        status = 429
    else:
        status = 502  # the service failed, or no answer came
    return web.json_response({"error": str(error)}, status=status)


async def backups(request: web.Request) -> web.Response:
    """GET /clusters/{cluster_id}/backups?limit=N: the newest N backups (at most 1000)."""
    try:
        limit = min(int(request.query.get("limit", "100")), 1000)
        stream = request.app[CLIENT].list_backups(
            request.match_info["cluster_id"], max_items=limit
        )
        async with stream:
            found = [pba.to_dict(backup) async for backup in stream]
    except (pba.ApiError, ValueError, TypeError) as error:
        return _error(error)
    return web.json_response(found)


async def inventory(request: web.Request) -> web.Response:
    """GET /inventory?folder_id=F: one line per cluster of the folder."""
    try:
        lines = await request.app[CLIENT].inventory(folder_ids=[request.query["folder_id"]])
    except KeyError:
        return web.json_response({"error": "folder_id is required"}, status=400)
    except (pba.ApiError, ValueError, TypeError) as error:
        return _error(error)
    return web.json_response([pba.to_dict(line) for line in lines])


def make_app(
    credentials: pba.Credentials | None = None, endpoint: str | None = None
) -> web.Application:
    """The app; its client opens with the app and closes with it (`cleanup_ctx`)."""

    async def client_for_the_apps_lifetime(app: web.Application) -> AsyncIterator[None]:
        async with pba.BackupsClient(
            credentials,
            endpoint=endpoint
            or os.environ.get("YC_ENDPOINT")
            or "https://mdb.api.cloud.yandex.net",
        ) as client:
            app[CLIENT] = client
            yield

    app = web.Application()
    app.cleanup_ctx.append(client_for_the_apps_lifetime)
    app.router.add_get("/clusters/{cluster_id}/backups", backups)
    app.router.add_get("/inventory", inventory)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8081")))

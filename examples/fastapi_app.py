"""A FastAPI app that shares one BackupsClient for its whole lifetime.

    YC_IAM_TOKEN=... uvicorn examples.fastapi_app:app --port 8082

`YC_ENDPOINT` points it at another API (the emulator: `http://127.0.0.1:8080`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import pg_backups_async as pba


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The client opens with the app and closes with it: one per process, not per request."""
    endpoint = os.environ.get("YC_ENDPOINT") or "https://mdb.api.cloud.yandex.net"
    async with pba.BackupsClient(endpoint=endpoint) as client:
        app.state.client = client
        yield


app = FastAPI(lifespan=lifespan)


@app.exception_handler(pba.ApiError)
async def api_error(request: Request, error: pba.ApiError) -> JSONResponse:
    """An API error as the HTTP answer a caller should get."""
    status = 502  # the service failed, or no answer came
    if isinstance(error, pba.NotFoundError | pba.PermissionDeniedError):
        status = 404  # the service hides what these credentials may not see
    elif isinstance(error, pba.ResourceExhaustedError):
        status = 429
    return JSONResponse({"error": str(error)}, status_code=status)


@app.exception_handler(ValueError)
async def bad_argument(request: Request, error: ValueError) -> JSONResponse:
    """A bad cluster id or folder id, refused before any request."""
    return JSONResponse({"error": str(error)}, status_code=400)


@app.get("/clusters/{cluster_id}/backups")
async def backups(cluster_id: str, request: Request, limit: int = 100) -> list[dict[str, Any]]:
    """The cluster's newest `limit` backups (at most 1000)."""
    client: pba.BackupsClient = request.app.state.client
    async with client.list_backups(cluster_id, max_items=min(limit, 1000)) as stream:
        return [pba.to_dict(backup) async for backup in stream]


@app.get("/inventory")
async def inventory(folder_id: str, request: Request) -> list[dict[str, Any]]:
    """One line per cluster of the folder."""
    client: pba.BackupsClient = request.app.state.client
    return [pba.to_dict(line) for line in await client.inventory(folder_ids=[folder_id])]

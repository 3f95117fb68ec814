"""The official SDK's path, for `cpu.py`: grpc.aio with the `yandexcloud` package's stubs.

Run as a script, it serves `ClusterService.ListBackups` on 127.0.0.1 from a page of the
emulator's JSON (read from a file), `--pages` pages of it with a token each, and prints
its port; `cpu.py` runs it in its own process, as it runs the emulator, so that only
the client's CPU is counted. `stream()` is the client: the items of every page, each
backup's timestamps turned into `datetime`s, as a caller of the SDK would.

Needs `grpcio` and `yandexcloud`, which `nox -s bench` installs (never the library).

    python benchmarks/grpc_peer.py --body page.json --pages 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import orjson
from google.protobuf import json_format
from yandex.cloud.mdb.postgresql.v1 import cluster_service_pb2 as service
from yandex.cloud.mdb.postgresql.v1 import cluster_service_pb2_grpc as service_grpc

PAGE_SIZE = 1000


class _Servicer(service_grpc.ClusterServiceServicer):  # type: ignore[misc]
    def __init__(self, pages: list[bytes]) -> None:
        self._pages = pages

    async def ListBackups(self, request: Any, context: Any) -> Any:
        number = int(request.page_token or "0")
        return service.ListClusterBackupsResponse.FromString(self._pages[number])


async def _serve(body: bytes, pages: int) -> None:
    page = json_format.ParseDict(
        orjson.loads(body), service.ListClusterBackupsResponse(), ignore_unknown_fields=True
    )
    wire = []
    for number in range(pages):
        page.next_page_token = str(number + 1) if number + 1 < pages else ""
        wire.append(page.SerializeToString())
    server = grpc.aio.server()
    service_grpc.add_ClusterServiceServicer_to_server(_Servicer(wire), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"grpc serving on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


@contextlib.contextmanager
def grpc_server(body_file: Path, pages: int) -> Iterator[str]:
    """Serve in a process of its own until the block ends; yields `127.0.0.1:port`."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--body", str(body_file), "--pages", str(pages)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        if not line.startswith("grpc serving on "):
            raise RuntimeError(f"the gRPC server did not start: {line.strip() or 'no output'}")
        yield line.split()[-1]
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def _when(timestamp: Any) -> datetime:
    return timestamp.ToDatetime(tzinfo=UTC)


async def stream(
    stub: Any, cluster_id: str, wanted: int
) -> AsyncIterator[tuple[Any, datetime | None, datetime | None, datetime | None]]:
    """Each backup with its three timestamps as `datetime`s, page by page by token."""
    token, count = "", 0
    while True:
        page = await stub.ListBackups(
            service.ListClusterBackupsRequest(
                cluster_id=cluster_id, page_size=PAGE_SIZE, page_token=token
            ),
            metadata=(("authorization", "Bearer bench"),),
        )
        for backup in page.backups:
            yield (
                backup,
                _when(backup.created_at) if backup.HasField("created_at") else None,
                _when(backup.started_at) if backup.HasField("started_at") else None,
                _when(backup.retain_until) if backup.HasField("retain_until") else None,
            )
            count += 1
            if count >= wanted:
                return
        token = page.next_page_token
        if not token:
            return


def stub_for(address: str) -> tuple[Any, Any]:
    """A channel to `address` and the `ClusterService` stub on it."""
    channel = grpc.aio.insecure_channel(address)
    return channel, service_grpc.ClusterServiceStub(channel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--body", type=Path, required=True)
    parser.add_argument("--pages", type=int, default=10)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.body.read_bytes(), args.pages))


if __name__ == "__main__":
    main()

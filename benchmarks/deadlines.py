"""How long calls take, and how many requests they send, when a service misbehaves.

Each scenario runs the client's default RetryPolicy (5 attempts, max_time 60 s) and
timeout (30 s) unless --max-time and --timeout say otherwise, against the emulator in
this process:
  iam-500     IAM answers 500 forever: IAM requests sent by one get_backups_page
  metadata    the metadata service never answers: a fan-out of 16 clusters, wall time
  api         the API never answers: one get_backups_page, wall time and attempts
The bound each figure stands beside: max_attempts requests; max_time seconds.

    python benchmarks/deadlines.py [--max-time 60] [--timeout 30] [--only iam-500]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

from common import write_result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import pg_backups_async as pba
from pg_backups_async.emulator import Emulator, Fault

STALLED = Fault(status=None, delay=3600.0, times=100_000)


async def iam_500(policy: pba.RetryPolicy, attempt_timeout: float) -> dict[str, object]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    async with Emulator(tokens=()) as emulator:
        emulator.add_service_account_key("k1", "sa1", key.public_key())
        emulator.inject(Fault(status=500, times=100_000))
        credentials = pba.ServiceAccountKey.from_dict(
            {"id": "k1", "service_account_id": "sa1", "private_key": pem},
            iam_endpoint=emulator.url,
        )
        fast = pba.RetryPolicy(
            max_attempts=policy.max_attempts, max_time=policy.max_time, base_delay=0.01
        )
        async with pba.BackupsClient(
            credentials, endpoint=emulator.url, retry=fast, timeout=attempt_timeout
        ) as client:
            started = time.perf_counter()
            with contextlib.suppress(pba.AuthError):
                await client.get_backups_page(emulator.cluster_ids[0])
            took = time.perf_counter() - started
        sent = sum(r.path == "/iam/v1/tokens" for r in emulator.requests)
    print(f"iam-500: {sent} IAM requests in {took:.2f} s (bound: {policy.max_attempts} requests)")
    return {"iam_requests": sent, "seconds": took, "bound": policy.max_attempts}


async def metadata(policy: pba.RetryPolicy, attempt_timeout: float) -> dict[str, object]:
    async with Emulator(clusters=16, backups_per_cluster=1) as emulator:
        emulator.inject(STALLED)
        credentials = pba.MetadataCredentials(address=emulator.url.removeprefix("http://"))
        async with pba.BackupsClient(
            credentials, endpoint=emulator.url, retry=policy, timeout=attempt_timeout
        ) as client:
            started = time.perf_counter()
            async with client.list_backups_many(emulator.cluster_ids, concurrency=16) as results:
                errors = [type(r.error).__name__ async for r in results]
            took = time.perf_counter() - started
        sent = len(emulator.requests)
    print(
        f"metadata: {len(errors)} results ({', '.join(sorted(set(errors)))}) in {took:.1f} s, "
        f"{sent} metadata requests (bound: about max_time = {policy.max_time:g} s)"
    )
    return {"seconds": took, "metadata_requests": sent, "bound": policy.max_time}


async def api(policy: pba.RetryPolicy, attempt_timeout: float) -> dict[str, object]:
    async with Emulator() as emulator:
        emulator.inject(STALLED)
        async with pba.BackupsClient(
            pba.IamToken("t"), endpoint=emulator.url, retry=policy, timeout=attempt_timeout
        ) as client:
            started = time.perf_counter()
            with contextlib.suppress(pba.NetworkError):
                await client.get_backups_page(emulator.cluster_ids[0])
            took = time.perf_counter() - started
        attempts = len(emulator.requests)
    print(f"api: {took:.1f} s, {attempts} attempts (bound: max_time = {policy.max_time:g} s)")
    return {"seconds": took, "attempts": attempts, "bound": policy.max_time}


SCENARIOS = {"iam-500": iam_500, "metadata": metadata, "api": api}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-time", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--only", choices=SCENARIOS, action="append")
    args = parser.parse_args()
    policy = pba.RetryPolicy(max_time=args.max_time)
    results = {
        name: asyncio.run(SCENARIOS[name](policy, args.timeout)) for name in args.only or SCENARIOS
    }
    print(f"written to {write_result('deadlines', results)}")


if __name__ == "__main__":
    main()

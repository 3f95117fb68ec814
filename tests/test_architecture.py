"""The table of calls, the pipeline's attempt numbering, the sound structuring fast path,
and the command line's error policy."""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

import attrs
import cattrs
import pytest
from cattrs.strategies import include_subclasses

import pg_backups_async as pba
from pg_backups_async import calls, cli, wire
from pg_backups_async.emulator import Emulator, Fault
from tests.conftest import ANCHOR, FAST_RETRY, TOKEN, run_cli

# The table of calls


def test_every_call_is_served_by_the_emulator_and_declared_once() -> None:
    handlers = Emulator().api.handlers()
    names = [call.name for call in calls.CALLS]
    assert sorted(names) == sorted(set(names))
    assert set(names) <= set(handlers)
    for call in calls.CALLS:
        params = {param.name for param in call.params}
        if call.paged:
            assert {"page_size", "page_token"} <= params, call.name


def test_a_call_refuses_an_argument_it_does_not_declare() -> None:
    with pytest.raises(TypeError, match=r"Cluster\.get takes no argument 'page_size'"):
        calls.GET_CLUSTER.request({"cluster_id": "c9q", "page_size": 5})


def test_an_error_is_evolved_into_a_new_one_and_the_old_one_is_left_alone() -> None:
    error = pba.NetworkError("reset", client_request_id="ours", retryable=False)
    moved = error.evolve(page_token="MTA=")
    assert (moved.page_token, moved.client_request_id, moved.retryable) == ("MTA=", "ours", False)
    assert type(moved) is pba.NetworkError
    assert error.page_token is None


# Attempt numbering


async def test_attempts_are_numbered_from_one_when_the_token_exchange_failed_first() -> None:
    async with Emulator(anchor=ANCHOR) as emulator:
        cluster_id = emulator.cluster_ids[0]
        # The metadata service's first answer is a 503; then the API's first is a 503.
        emulator.inject(Fault(status=503), Fault(status=503, cluster_id=cluster_id))
        address = emulator.url.removeprefix("http://")
        seen: list[pba.Attempt] = []
        async with pba.BackupsClient(
            pba.MetadataCredentials(address=address),
            endpoint=emulator.url,
            retry=FAST_RETRY,
            on_attempt=seen.append,
        ) as client:
            await client.get_backups_page(cluster_id)
            await client.get_backups_page(cluster_id)
    assert [r.fault for r in emulator.requests[:3]] == ["503", None, "503"]
    assert [(a.call, a.attempt, a.status) for a in seen] == [
        ("Cluster.listBackups", 1, 503),
        ("Cluster.listBackups", 2, 200),
        ("Cluster.listBackups", 1, 200),
    ]


# The structuring fast path


def test_no_private_class_shows_on_the_models() -> None:
    wire.parse_page(b'{"backups": [{"id": "c9q:1"}]}', pba.BackupsPage)  # hooks made
    for cls in (pba.Backup, pba.Cluster, pba.BackupsPage, pba.ClustersPage):
        assert cls.__subclasses__() == []


def test_include_subclasses_works_on_a_users_own_converter() -> None:
    wire.parse_page(b'{"backups": [{"id": "c9q:1"}]}', pba.BackupsPage)
    converter = cattrs.Converter()
    include_subclasses(pba.Backup, converter)
    backup = converter.structure({"id": "c9q:1", "size": 5}, pba.Backup)
    assert backup == pba.Backup(id="c9q:1", size=5)


def test_a_traceback_through_generated_code_shows_its_line() -> None:
    hook = wire._converter.get_structure_hook(pba.Backup)
    with pytest.raises(TypeError) as caught:
        hook(5, pba.Backup)  # not an object: the generated code's first line refuses it
    text = "".join(traceback.format_exception(caught.value))
    assert "<wire structure pg_backups_async.models.Backup>" in text
    assert "if len(o) >= 13:" in text


def test_a_bug_in_structuring_is_not_blamed_on_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = wire._converter

    class Broken:
        def structure(self, obj: Any, cls: type[Any]) -> Any:
            if cls is pba.BackupsPage:
                raise KeyError("a bug in the library, not in the data")
            return real.structure(obj, cls)

    monkeypatch.setattr(wire, "_converter", Broken())
    with pytest.raises(KeyError, match="a bug in the library"):
        wire.structure({"backups": [{"id": "c9q:1"}]}, pba.BackupsPage)
    with pytest.raises(pba.ResponseFormatError, match=r"backups\[0\]\.size"):
        wire.structure({"backups": [{"id": "c9q:1", "size": "big"}]}, pba.BackupsPage)


def test_attrs_features_the_generated_hooks_cannot_honour_are_refused_by_name() -> None:
    @attrs.frozen
    class KwOnly:
        n: int = attrs.field(kw_only=True)

    @attrs.frozen
    class TakesSelf:
        n: int = 0
        m: int = attrs.field(default=attrs.Factory(lambda self: self.n, takes_self=True))

    @attrs.frozen
    class NotInit:
        n: int = attrs.field(init=False, default=0)

    @attrs.frozen
    class Aliased:
        n: int = attrs.field(alias="number")

    converter = wire._make_converter()
    for cls, feature in (
        (KwOnly, "kw_only"),
        (TakesSelf, r"Factory\(takes_self=True\)"),
        (NotInit, "init=False"),
        (Aliased, "alias"),
    ):
        attrs.resolve_types(cls)
        with pytest.raises(TypeError, match=f"{cls.__qualname__}.*{feature}"):
            wire._resource_hook(cls, converter, inline=True)


# Sharing a limiter and a budget


async def test_two_clients_sharing_a_limiter_and_a_budget(emulator: Emulator) -> None:
    limiter = pba.RateLimiter(10_000)
    budget = pba.RetryBudget(100)
    emulator.inject(Fault(status=503))
    clients = [
        pba.BackupsClient(
            pba.IamToken(TOKEN),
            endpoint=emulator.url,
            retry=FAST_RETRY,
            rate_limiter=limiter,
            retry_budget=budget,
        )
        for _ in range(2)
    ]
    async with clients[0] as first, clients[1] as second:
        assert first.rate_limiter is second.rate_limiter is limiter
        await asyncio.gather(
            first.get_backups_page(emulator.cluster_ids[0]),
            second.get_backups_page(emulator.cluster_ids[1]),
        )
    assert limiter.acquired == 3  # both clients' requests, the retry included
    assert budget.available == 100  # the retry's cost, earned back by the success after it
    with pytest.raises(ValueError, match="rate_limiter or requests_per_second"):
        pba.BackupsClient(pba.IamToken(TOKEN), rate_limiter=limiter, requests_per_second=5)
    with pytest.raises(TypeError, match="retry_budget must be a RetryBudget"):
        pba.BackupsClient(pba.IamToken(TOKEN), retry_budget=100)  # type: ignore[arg-type]


# The command line's error policy


async def test_a_library_bug_in_the_cli_is_an_internal_error(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> int:
        raise ValueError("a library bug that raises ValueError")

    monkeypatch.setattr(cli.commands, "write_items", broken)
    args = ("list", emulator.cluster_ids[0], "--endpoint", emulator.url)
    result = await asyncio.to_thread(run_cli, *args)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("pg-backups: internal error: ValueError: a library bug")
    assert "--debug shows the traceback" in line


def test_an_argument_the_library_refuses_is_a_usage_error() -> None:
    result = run_cli("list", "../etc", "--endpoint", "http://127.0.0.1:9", token=TOKEN)
    assert result.returncode == 2
    assert result.stderr == (
        "pg-backups: error: cluster_id '../etc' contains '/': ids are "
        "letters, digits and '-', '_', '.', '~'\n"
    )

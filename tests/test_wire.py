"""The wire format, driven by the service's canonical bodies; no network."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

import pg_backups_async as pba
from pg_backups_async import wire
from pg_backups_async.emulator import encoding
from tests.conftest import fixture_bytes

FIRST = "listBackups-first-page.json"
LAST = "listBackups-last-page.json"


@pytest.fixture(params=[True, False], ids=["fast", "reference"])
def fast(request: pytest.FixtureRequest) -> bool:
    """Structure on the fast path and on the reference path: they must agree."""
    result: bool = request.param
    return result


def parse(body: bytes, cls: type = pba.BackupsPage, *, fast: bool) -> object:
    return wire.structure(wire.loads(body), cls, fast=fast)


def test_first_page_has_all_thirteen_fields(fast: bool) -> None:
    page = parse(fixture_bytes(FIRST), fast=fast)
    assert isinstance(page, pba.BackupsPage)
    assert page.next_page_token == "Mg=="
    assert page.backups[0] == pba.Backup(
        id="c9qk2b1dn8hbg7r0cvf4:base_000000010000000A000000C3",
        folder_id="b1g0ijbfaqsn12345678",
        created_at=datetime(2025, 11, 27, 3, 5, 45, 241796, tzinfo=UTC),
        source_cluster_id="c9qk2b1dn8hbg7r0cvf4",
        started_at=datetime(2025, 11, 27, 3, 0, tzinfo=UTC),
        size=5368709120,
        type=pba.BackupType.AUTOMATED,
        method=pba.BackupMethod.BASE,
        journal_size=16777216,
        status=pba.BackupStatus.DONE,
        retention_policy_id="c9qpolicy0000000000a",
        retention_policy_name="monthly-keep-12",
        retain_until=datetime(2026, 11, 27, 3, 5, 45, 241796, tzinfo=UTC),
    )


def test_absent_fields_take_zero_values(fast: bool) -> None:
    page = parse(fixture_bytes(FIRST), fast=fast)
    assert isinstance(page, pba.BackupsPage)
    second = page.backups[1]
    assert second.journal_size == 0
    assert second.retention_policy_id == ""
    assert second.retain_until is None
    assert second.created_at == datetime(2025, 11, 28, 3, 5, 45, 123000, tzinfo=UTC)
    assert second.started_at == datetime(2025, 11, 28, 3, 0, 0, 5000, tzinfo=UTC)


def test_last_page_creating_and_legacy_backups(fast: bool) -> None:
    page = parse(fixture_bytes(LAST), fast=fast)
    assert isinstance(page, pba.BackupsPage)
    assert page.next_page_token is None
    creating, legacy = page.backups
    assert creating.status is pba.BackupStatus.CREATING
    assert creating.created_at is None
    assert creating.size == 0
    assert creating.started_at == datetime(2025, 11, 29, 3, 0, 0, 123456, tzinfo=UTC)
    assert legacy.type is pba.BackupType.UNSPECIFIED
    assert legacy.method is pba.BackupMethod.UNSPECIFIED
    assert legacy.status is pba.BackupStatus.UNSPECIFIED
    # nanoseconds are truncated, never rounded up into the next second
    assert legacy.started_at == datetime(2023, 11, 14, 22, 8, 20, 999999, tzinfo=UTC)


def test_empty_listing() -> None:
    assert (
        wire.parse_page(fixture_bytes("listBackups-empty.json"), pba.BackupsPage)
        == pba.BackupsPage()
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-26T14:44:20Z", datetime(2024, 3, 26, 14, 44, 20, tzinfo=UTC)),
        ("2024-03-26T14:44:20.1Z", datetime(2024, 3, 26, 14, 44, 20, 100000, tzinfo=UTC)),
        ("2024-03-26T14:44:20.241Z", datetime(2024, 3, 26, 14, 44, 20, 241000, tzinfo=UTC)),
        ("2024-03-26T14:44:20.241796Z", datetime(2024, 3, 26, 14, 44, 20, 241796, tzinfo=UTC)),
        ("2024-03-26T14:44:20.241796096Z", datetime(2024, 3, 26, 14, 44, 20, 241796, tzinfo=UTC)),
        ("2024-03-26T17:44:20+03:00", datetime(2024, 3, 26, 14, 44, 20, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_timestamps_with_zero_to_nine_fraction_digits(
    text: str, expected: datetime, fast: bool
) -> None:
    backup = wire.structure({"id": "b", "createdAt": text}, pba.Backup, fast=fast)
    assert backup.created_at == expected
    assert backup.created_at is not None
    assert backup.created_at.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "20240326T144420Z",  # ISO 8601 basic format
        "2024-W13-2T14:44:20Z",  # week date
        "2024-086T14:44:20Z",  # ordinal date
        "2024-03-26T14:44:20,241Z",  # comma fraction
        "2024-03-26 14:44:20Z",  # space separator
        "2024-03-26T14:44Z",  # no seconds
        "2024-03-26T14Z",  # hours only
        "2024-03-26T14:44:20.Z",  # a point without digits
        "2024-03-26T144420.241Z",  # basic time
        "2024-03-26T14:44:20",  # no offset
        "2024-03-26T14:44:20+0300",  # offset without a colon
        "2024-03-26T14:44:20+03",  # hours-only offset
        "2024-03-26",  # a date
        "2024-13-26T14:44:20Z",  # month 13
        "\uff12\uff10\uff12\uff14-03-26T14:44:20Z",  # non-ASCII digits
    ],
)
def test_timestamps_that_are_not_rfc_3339_are_refused(text: str, fast: bool) -> None:
    with pytest.raises(pba.ResponseFormatError) as caught:
        wire.structure({"id": "b", "createdAt": text}, pba.Backup, fast=fast)
    assert caught.value.field == "createdAt"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-26t14:44:20z", datetime(2024, 3, 26, 14, 44, 20, tzinfo=UTC)),
        ("2024-03-26T14:44:20.5-01:30", datetime(2024, 3, 26, 16, 14, 20, 500000, tzinfo=UTC)),
    ],
)
def test_rfc_3339_forms_the_service_does_not_send_are_still_read(
    text: str, expected: datetime, fast: bool
) -> None:
    assert wire.structure({"id": "b", "createdAt": text}, pba.Backup, fast=fast).created_at == (
        expected
    )


@pytest.mark.parametrize(
    ("value", "expected"), [("5368709120", 5368709120), (42, 42), (7.0, 7), ("-3", -3), (None, 0)]
)
def test_int64_as_string_or_number(value: object, expected: int, fast: bool) -> None:
    assert wire.structure({"id": "b", "size": value}, pba.Backup, fast=fast).size == expected


def test_unknown_fields_and_enum_values_are_tolerated(fast: bool) -> None:
    body = orjson.loads(fixture_bytes(FIRST))
    body["backups"][0].update(type="SCHEDULED", method="LOGICAL", status="DELETING", shiny=[1])
    body["backups"][1].update(type=7, method=0)
    body["somethingNew"] = {"nested": True}
    page = wire.structure(body, pba.BackupsPage, fast=fast)
    first = page.backups[0]
    assert first.type is pba.BackupType.UNKNOWN
    assert first.method is pba.BackupMethod.UNKNOWN
    assert first.status is pba.BackupStatus.UNKNOWN
    assert first.size == 5368709120  # the rest of the record is kept
    assert page.backups[1].type is pba.BackupType.UNKNOWN  # a number it does not know
    assert page.backups[1].method is pba.BackupMethod.UNSPECIFIED  # 0: the zero value


def test_wire_enum_unspecified_names(fast: bool) -> None:
    backup = wire.structure(
        {
            "id": "b",
            "type": "BACKUP_CREATION_TYPE_UNSPECIFIED",
            "method": "BACKUP_METHOD_UNSPECIFIED",
            "status": "BACKUP_STATUS_UNSPECIFIED",
        },
        pba.Backup,
        fast=fast,
    )
    assert (backup.type, backup.method, backup.status) == (
        pba.BackupType.UNSPECIFIED,
        pba.BackupMethod.UNSPECIFIED,
        pba.BackupStatus.UNSPECIFIED,
    )


def test_null_is_the_zero_value(fast: bool) -> None:
    backup = wire.structure(
        {"id": "b", "folderId": None, "size": None, "type": None, "createdAt": None},
        pba.Backup,
        fast=fast,
    )
    assert backup == pba.Backup(id="b")


def test_empty_next_page_token_means_last_page() -> None:
    assert wire.parse_page(b'{"nextPageToken": ""}', pba.BackupsPage).next_page_token is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "$"),
        (b"", "$"),
        (b'{"backups": [', "$"),
        (b"[]", "$"),
        (b'"backups"', "$"),
        (b'{"backups": {}}', "backups"),
        (b'{"backups": "abc"}', "backups"),
        (b'{"backups": ["x"]}', "backups[0]"),
        (b'{"backups": [{"folderId": "f"}]}', "backups[0].id"),
        (b'{"backups": [{"id": "a"}, {"id": "b", "size": "12a"}]}', "backups[1].size"),
        (b'{"backups": [{"id": "a", "size": true}]}', "backups[0].size"),
        (b'{"backups": [{"id": "a", "size": 1.5}]}', "backups[0].size"),
        ('{"backups": [{"id": "a", "size": "\u0663"}]}'.encode(), "backups[0].size"),
        ('{"backups": [{"id": "a", "size": "-\u0663"}]}'.encode(), "backups[0].size"),
        (b'{"backups": [{"id": "a", "size": " 12"}]}', "backups[0].size"),
        (
            b'{"backups": [{"id": "a", "createdAt": "2024-03-26T14:44:20"}]}',
            "backups[0].createdAt",
        ),
        (b'{"backups": [{"id": "a", "createdAt": "yesterday"}]}', "backups[0].createdAt"),
        (b'{"backups": [{"id": "a", "createdAt": "2024-03-26"}]}', "backups[0].createdAt"),
        (b'{"backups": [{"id": "a", "createdAt": 1700000000}]}', "backups[0].createdAt"),
        (b'{"backups": [{"id": "a", "status": {}}]}', "backups[0].status"),
        (b'{"backups": [{"id": "a", "method": false}]}', "backups[0].method"),  # False == 0
        (b'{"backups": [{"id": "a", "type": 0.0}]}', "backups[0].type"),
        (b'{"backups": [{"id": 5}]}', "backups[0].id"),
        (b'{"backups": [{"id": "a", "folderId": ["f"]}]}', "backups[0].folderId"),
        (b'{"nextPageToken": 5}', "nextPageToken"),
        (b'{"nextPageToken": "' + b"a" * 101 + b'"}', "nextPageToken"),
    ],
)
def test_malformed_bodies_name_the_field(body: bytes, field: str, fast: bool) -> None:
    with pytest.raises(pba.ResponseFormatError) as caught:
        parse(body, fast=fast)
    assert caught.value.field == field
    assert str(caught.value).startswith(field) or field == "$"


def test_encoding_round_trips_and_omits_zero_values() -> None:
    for name in (FIRST, LAST):
        page = wire.parse_page(fixture_bytes(name), pba.BackupsPage)
        for backup in page.backups:
            encoded = encoding.to_wire(backup)
            assert wire.structure(encoded, pba.Backup) == backup
    second = wire.parse_page(fixture_bytes(FIRST), pba.BackupsPage).backups[1]
    encoded = encoding.to_wire(second)
    assert "journalSize" not in encoded
    assert "retainUntil" not in encoded
    assert encoded["size"] == "104857600"
    assert encoded["createdAt"] == "2025-11-28T03:05:45.123Z"
    legacy = wire.parse_page(fixture_bytes(LAST), pba.BackupsPage).backups[1]
    assert "type" not in encoding.to_wire(legacy)


def test_years_before_1000_are_padded() -> None:
    assert encoding.format_timestamp(datetime(999, 1, 2, tzinfo=UTC)) == "0999-01-02T00:00:00Z"


def test_sample_encoding_matches_the_service_byte_for_byte() -> None:
    """The emulator's encoder prints what the service's printer printed (microsecond data)."""
    raw = orjson.loads(fixture_bytes(FIRST))["backups"][1]
    backup = wire.structure(raw, pba.Backup)
    assert encoding.to_wire(backup) == raw


def test_parse_status() -> None:
    assert wire.parse_status(fixture_bytes("error-404-not-found.json")) == (
        5,
        "Cluster c9qk2b1dn8hbg7r0cvf4x not found",
        "8d4b0ab2-1c5e-4c43-9b24-7f0c3f1f5e11",
    )
    assert wire.parse_status(fixture_bytes("error-429-resource-exhausted.json")) == (
        8,
        "The request limit exceeded",
        None,
    )
    assert wire.parse_status(b"<html>") == (None, None, None)
    assert wire.parse_status(b'{"code": "five", "message": 3}') == (None, None, None)


def test_a_fast_built_backup_is_indistinguishable_from_a_constructed_one() -> None:
    import copy
    import pickle
    import weakref

    import attrs

    body = fixture_bytes(FIRST)
    fast = wire.parse_page(body, pba.BackupsPage).backups[0]
    [reference] = [b for b in parse(body, fast=False).backups[:1]]  # type: ignore[attr-defined]
    made = pba.Backup(*(getattr(reference, f.name) for f in attrs.fields(pba.Backup)))
    for built in (fast, reference):
        assert type(built) is pba.Backup
        assert built == made
        assert hash(built) == hash(made)
        assert repr(built) == repr(made)
        assert pickle.loads(pickle.dumps(built)) == made  # noqa: S301 - our own bytes
        assert copy.copy(built) == made
        assert copy.deepcopy(built) == made
        assert attrs.evolve(built, size=1) == attrs.evolve(made, size=1)
        assert not hasattr(built, "__dict__")
        assert weakref.ref(built)() is built
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            built.size = 2  # type: ignore[misc]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            del built.size  # type: ignore[misc]


def test_only_plain_classes_are_built_without_their_init() -> None:
    import attrs

    @attrs.frozen
    class Checked:
        n: int = attrs.field(validator=attrs.validators.gt(0))

    @attrs.frozen
    class Converted:
        n: int = attrs.field(converter=abs)

    @attrs.frozen
    class Hooked:
        n: int

        def __attrs_post_init__(self) -> None:
            object.__setattr__(self, "n", self.n + 1)

    @attrs.frozen(cache_hash=True)
    class Cached:
        n: int

    @attrs.frozen
    class Base:
        n: int

    @attrs.frozen
    class Derived(Base):
        m: int = 0

    @attrs.frozen
    class Made:
        n: int

        def __new__(cls, *args: object, **kwargs: object) -> Made:
            return super().__new__(cls)

    @attrs.define
    class Plain:
        n: int

    for cls in (Checked, Converted, Hooked, Cached, Derived, Made):
        assert wire._slot_setters(cls) is None, cls
    for cls in (pba.Backup, pba.Cluster, Plain):
        assert wire._slot_setters(cls) is not None, cls

    # The hook of a class that keeps its constructor runs what the constructor runs.
    conv = wire._make_converter()

    def structure(cls: type, value: object) -> object:
        attrs.resolve_types(cls)
        return wire._resource_hook(cls, conv, inline=True)({"n": value}, cls)

    with pytest.raises(ValueError, match="must be > 0"):
        structure(Checked, "0")
    assert structure(Converted, -3) == Converted(3)
    assert structure(Hooked, "1").n == 2  # type: ignore[attr-defined]
    cached = structure(Cached, "5")
    assert hash(cached) == hash(Cached(5))
    assert structure(Derived, "1") == Derived(1)
    assert structure(Plain, "7") == Plain(7)
    assert type(structure(Plain, "7")) is Plain

"""Property-based tests of the wire module: what the service could send, and what it must not."""

from __future__ import annotations

import contextlib
import math
import os
import string
from datetime import UTC, datetime
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pg_backups_async as pba
from pg_backups_async import wire
from pg_backups_async.emulator import encoding

# The default run takes hypothesis' usual 100 examples; HYPOTHESIS_PROFILE=thorough
# takes ten times as many.
settings.register_profile(
    "wire", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", settings.get_profile("wire"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "wire"))

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
ID = st.text(string.ascii_lowercase + string.digits + ":_", min_size=1, max_size=60)
INT64 = st.integers(-(2**63), 2**63 - 1)
JSON = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
STRINGS = ("folder_id", "source_cluster_id", "retention_policy_id", "retention_policy_name")
TIMES = ("created_at", "started_at", "retain_until")
SIZES = ("size", "journal_size")
ENUMS = {"type": pba.BackupType, "method": pba.BackupMethod, "status": pba.BackupStatus}
KEYS = {wire.camel(a.name) for a in attrs.fields(pba.Backup)}


@st.composite
def timestamps(draw: st.DrawFn) -> tuple[str, datetime]:
    """An RFC 3339 text with 0, 3, 6 or 9 fraction digits, and the datetime it means."""
    moment = draw(
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))
    ).replace(tzinfo=UTC)
    base = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    micros = moment.microsecond
    digits = draw(st.sampled_from([0, 3, 6, 9]))
    if digits == 0:
        return f"{base}Z", moment.replace(microsecond=0)
    if digits == 3:
        return f"{base}.{micros // 1000:03d}Z", moment.replace(microsecond=micros // 1000 * 1000)
    if digits == 6:
        return f"{base}.{micros:06d}Z", moment
    return f"{base}.{micros:06d}{draw(st.integers(0, 999)):03d}Z", moment  # truncated


@st.composite
def enum_values(draw: st.DrawFn, cls: type[Any]) -> tuple[str, Any]:
    known = [m for m in cls if m.name != "UNKNOWN"]
    if draw(st.booleans()):
        member = draw(st.sampled_from(known))
        return member.value, member
    value = draw(st.from_regex(r"[A-Z][A-Z_]{0,20}", fullmatch=True))
    matching = [m for m in known if m.value == value]
    return value, matching[0] if matching else cls.UNKNOWN


@st.composite
def wire_backups(draw: st.DrawFn) -> tuple[dict[str, Any], pba.Backup]:
    """A backup as the service could send it, and the Backup it must become.

    Either every field is present (the structuring's one-call fetch), all but one (with
    unknown fields, the fetch falls back to a lookup per field), or each field at random.
    """
    names = [*STRINGS, *TIMES, *SIZES, *ENUMS]
    shape = draw(st.sampled_from(["every field", "all but one", "at random"]))
    left_out = draw(st.sampled_from(names)) if shape == "all but one" else None

    def present(name: str) -> bool:
        return name != left_out if left_out or shape == "every field" else draw(st.booleans())

    body: dict[str, Any] = {"id": draw(ID)}
    expected: dict[str, Any] = {"id": body["id"]}
    for name in STRINGS:
        if present(name) and (value := draw(TEXT)):  # empty strings are omitted
            body[wire.camel(name)] = expected[name] = value
    for name in TIMES:
        if present(name):
            body[wire.camel(name)], expected[name] = draw(timestamps())
    for name in SIZES:
        if present(name) and (number := draw(INT64)):  # 0 is omitted
            body[wire.camel(name)] = str(number) if draw(st.booleans()) else number
            expected[name] = number
    for name, cls in ENUMS.items():
        if present(name):
            body[name], expected[name] = draw(enum_values(cls))
    unknown = draw(st.dictionaries(TEXT.filter(lambda k: k not in KEYS), JSON, max_size=3))
    return {**unknown, **body}, pba.Backup(**expected)


@st.composite
def wire_pages(draw: st.DrawFn) -> tuple[dict[str, Any], pba.BackupsPage]:
    pairs = draw(st.lists(wire_backups(), max_size=5))
    body: dict[str, Any] = {}
    if pairs or draw(st.booleans()):
        body["backups"] = [b for b, _ in pairs]
    token = draw(st.none() | st.text(string.ascii_letters + string.digits + "+/=", max_size=100))
    if token:
        body["nextPageToken"] = token
    return body, pba.BackupsPage(tuple(e for _, e in pairs), token or None)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
@given(page=wire_pages())
def test_any_page_the_service_could_send_structures(
    fast: bool, page: tuple[dict[str, Any], pba.BackupsPage]
) -> None:
    body, expected = page
    assert wire.structure(body, pba.BackupsPage, fast=fast) == expected
    assert wire.parse_page(orjson.dumps(body), pba.BackupsPage) == expected


@given(pair=wire_backups())
def test_values_round_trip_through_the_encoder(pair: tuple[dict[str, Any], pba.Backup]) -> None:
    _, backup = pair
    if any(getattr(backup, name).name == "UNKNOWN" for name in ENUMS):
        backup = attrs.evolve(
            backup,
            **{n: ENUMS[n].UNSPECIFIED for n in ENUMS if getattr(backup, n).name == "UNKNOWN"},
        )  # UNKNOWN stands for a value this version cannot name: it has no wire form
    assert wire.structure(encoding.to_wire(backup), pba.Backup) == backup


BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "string": st.one_of(INT64, st.booleans(), st.lists(TEXT, max_size=2), st.just({"a": 1})),
    "int64": st.one_of(
        st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
        st.from_regex(r"[0-9]*[a-z .][0-9]*", fullmatch=True),
        st.booleans(),
        st.lists(INT64, max_size=2),
    ),
    "timestamp": st.one_of(
        INT64,
        st.booleans(),
        st.sampled_from(
            ["yesterday", "2024-03-26", "2024-03-26T14:44:20", "", "Z", "2024-13-01T00:00:00Z"]
        ),
    ),
    "enum": st.one_of(
        st.floats(allow_nan=False).filter(lambda f: not f.is_integer()),
        st.booleans(),
        st.lists(TEXT, max_size=2),
        st.just({}),
    ),
}
KIND = {
    **{wire.camel(n): "string" for n in (*STRINGS, "id")},
    **{wire.camel(n): "int64" for n in SIZES},
    **{wire.camel(n): "timestamp" for n in TIMES},
    **{n: "enum" for n in ENUMS},
}


@st.composite
def malformed_pages(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid page with one field of one backup made wrong, and that field's path."""
    body, _ = draw(wire_pages())
    backups = body.setdefault("backups", [])
    if not backups:
        backups.append({"id": "c9q:x"})
    index = draw(st.integers(0, len(backups) - 1))
    key = draw(st.sampled_from(sorted(KIND)))
    bad = draw(BAD_VALUES[KIND[key]])
    if bad is True and KIND[key] == "enum":
        bad = [True]
    backups[index][key] = bad
    for earlier in backups[:index]:  # the first bad field is the one named
        for name in KIND:
            earlier.pop(name, None)
        earlier["id"] = "c9q:fine"
    return body, f"backups[{index}].{key}"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
@given(case=malformed_pages())
def test_a_malformed_page_raises_only_response_format_error(
    fast: bool, case: tuple[dict[str, Any], str]
) -> None:
    body, field = case
    with pytest.raises(pba.ResponseFormatError) as caught:
        wire.structure(body, pba.BackupsPage, fast=fast)
    assert caught.value.field == field


@given(body=st.one_of(JSON, st.dictionaries(st.sampled_from(["backups", "nextPageToken"]), JSON)))
def test_any_json_at_all_structures_or_raises_response_format_error(body: Any) -> None:
    with contextlib.suppress(pba.ResponseFormatError):  # anything else fails the test
        assert isinstance(wire.structure(body, pba.BackupsPage), pba.BackupsPage)


@given(raw=st.binary(max_size=200))
def test_any_bytes_at_all_parse_or_raise_response_format_error(raw: bytes) -> None:
    with contextlib.suppress(pba.ResponseFormatError):
        assert isinstance(wire.parse_page(raw, pba.BackupsPage), pba.BackupsPage)


@given(st.text(max_size=80) | st.from_regex(r"\s*[0-9]{1,30}\s*", fullmatch=True))
def test_retry_after_is_total(value: str) -> None:
    """Issue 22.3: any header value gives None or finite seconds, never an exception."""
    from pg_backups_async.protocol import parse_retry_after

    seconds = parse_retry_after(value)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)

"""The service's JSON encoding in the other direction: what its JSON printer emits.

Only the emulator encodes; the client only decodes (`wire`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_unstructure_fn, override

from ..models import ENUMS, Page
from ..wire import camel, is_labels, is_wire_enum


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with `Z` and 0, 3 or 6 fraction digits, as the service prints."""
    value = value.astimezone(UTC)
    text = (  # not strftime: "%Y" does not pad years before 1000 on every platform
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    micros = value.microsecond
    if micros == 0:
        return text + "Z"
    if micros % 1000 == 0:
        return f"{text}.{micros // 1000:03d}Z"
    return f"{text}.{micros:06d}Z"


def _renames(cls: type[Any]) -> dict[str, Any]:
    return {a.name: override(rename=camel(a.name)) for a in attrs.fields(cls)}


def _unstructure_converter() -> cattrs.Converter:
    conv = cattrs.Converter()
    conv.register_unstructure_hook(int, str)
    conv.register_unstructure_hook(datetime, format_timestamp)
    for enum_cls in ENUMS:
        if is_wire_enum(enum_cls):
            conv.register_unstructure_hook(enum_cls, lambda member: member.value)
    conv.register_unstructure_hook(bool, lambda value: value)
    conv.register_unstructure_hook_func(is_labels, dict)
    conv.register_unstructure_hook_factory(
        lambda cls: attrs.has(cls) and not issubclass(cls, Page),
        lambda cls: make_dict_unstructure_fn(
            cls, conv, _cattrs_omit_if_default=True, **_renames(cls)
        ),
    )
    return conv


_encoder = _unstructure_converter()


def to_wire(resource: Any) -> dict[str, Any]:
    """A resource as the service encodes it, zero values omitted."""
    result: dict[str, Any] = _encoder.unstructure(resource, type(resource))
    return result


def dumps(obj: Mapping[str, Any]) -> bytes:
    """Encode a JSON object."""
    return orjson.dumps(obj)

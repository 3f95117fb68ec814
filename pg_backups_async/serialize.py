"""The library's data as plain JSON-ready values, and back: one converter for both.

snake_case keys; timestamps as RFC 3339 UTC strings with `Z`; byte counts as ints;
enums by name; durations as seconds; an error as `{type, message, http_status, code,
request_id}` (its text already redacted of the secrets the client held). The CLI's
json, jsonl and csv output are built from `to_dict`, so there is one answer to "what
does a backup look like as JSON".
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import cattrs
import orjson

from . import errors
from .errors import ApiError
from .models import ENUMS, MODELS, ClusterInventory

_T = TypeVar("_T")


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _error(error: ApiError) -> dict[str, Any]:
    return {
        "type": type(error).__name__,
        "message": error.message,
        "http_status": error.http_status,
        "code": error.code,
        "request_id": error.request_id,
    }


def _exactly(kind: type[_T], name: str) -> Any:
    """A structure hook that takes a value of `kind` only: no coercion (`"no"` is no
    bool, `None` no str, `1.9` no int)."""

    def structure(value: Any, _: object) -> _T:
        if type(value) is not kind:
            raise TypeError(f"expected {name}, got {type(value).__name__} {value!r:.40}")
        return value

    return structure


def _number(value: Any, _: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__} {value!r:.40}")
    return float(value)


def _seconds(value: Any, _: object) -> timedelta:
    return timedelta(seconds=_number(value, None))


def _optional(data: Mapping[str, Any], key: str, kind: type[Any]) -> Any:
    value = data.get(key)
    if value is not None and type(value) is not kind:
        raise TypeError(f"an error's {key} is {kind.__name__} or null, not {type(value).__name__}")
    return value


def _structure_error(data: Any, _: object) -> ApiError:
    if not isinstance(data, Mapping):
        raise TypeError(f"an error is an object, not {type(data).__name__}")
    cls = getattr(errors, _optional(data, "type", str) or "ApiError", ApiError)
    if not (isinstance(cls, type) and issubclass(cls, ApiError)):
        cls = ApiError
    message = _optional(data, "message", str) or ""
    return cls(
        message,
        http_status=_optional(data, "http_status", int),
        code=_optional(data, "code", int),
        request_id=_optional(data, "request_id", str),
    )


def _structure_mapping(value_kind: type[Any]) -> Any:
    def structure(value: Any, _: object) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"expected string keys, got {type(key).__name__}")
            if value_kind is not Any and type(item) is not value_kind:
                raise TypeError(
                    f"{key!r:.40}: expected {value_kind.__name__}, got {type(item).__name__}"
                )
        return dict(value)

    return structure


def _structure_timestamp(value: Any, _: object) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"a timestamp is a string, not {type(value).__name__}")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"a timestamp needs its offset: {value!r}")
    return parsed.astimezone(UTC)


def _structure_enum(value: Any, cls: type[enum.Enum]) -> enum.Enum:
    try:
        return cls[value]
    except KeyError:
        raise ValueError(f"{value!r} is not a {cls.__name__}") from None


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter()
    conv.register_unstructure_hook(datetime, _timestamp)
    conv.register_structure_hook(datetime, _structure_timestamp)
    conv.register_unstructure_hook(timedelta, timedelta.total_seconds)
    conv.register_structure_hook(timedelta, _seconds)
    # Nothing is coerced: a value of the wrong type is an error, not a conversion.
    conv.register_structure_hook(str, _exactly(str, "a string"))
    conv.register_structure_hook(int, _exactly(int, "an integer"))
    conv.register_structure_hook(bool, _exactly(bool, "true or false"))
    conv.register_structure_hook(float, _number)
    conv.register_unstructure_hook_func(
        lambda cls: isinstance(cls, type) and issubclass(cls, ApiError), _error
    )
    conv.register_structure_hook_func(
        lambda cls: isinstance(cls, type) and issubclass(cls, ApiError), _structure_error
    )
    for enum_cls in ENUMS:
        conv.register_unstructure_hook(enum_cls, lambda member: member.name)
        conv.register_structure_hook(enum_cls, _structure_enum)
    conv.register_unstructure_hook_func(lambda cls: cls == Mapping[str, str], dict)
    conv.register_structure_hook_func(
        lambda cls: cls == Mapping[str, str], _structure_mapping(str)
    )
    inventory = conv.get_unstructure_hook(ClusterInventory)

    def inventory_with_state(line: ClusterInventory) -> dict[str, Any]:
        data: dict[str, Any] = inventory(line)
        data["state"] = str(line.state)
        data["scope"] = line.scope
        return data

    conv.register_unstructure_hook(ClusterInventory, inventory_with_state)
    return conv


_converter = _make_converter()


def to_dict(obj: Any) -> dict[str, Any]:
    """A public model (`Backup`, `Cluster`, a page, `ClusterBackups`, `ClusterInventory`)
    as JSON-ready data; `TypeError` for anything else. An inventory line adds its `state`
    and `scope`.
    """
    if type(obj) not in MODELS:
        raise TypeError(
            f"to_dict takes {', '.join(cls.__name__ for cls in MODELS)}; not {type(obj).__name__}"
        )
    result: dict[str, Any] = _converter.unstructure(obj, type(obj))
    return result


def to_json(obj: Any) -> bytes:
    """`to_dict(obj)` as compact JSON (UTF-8 bytes)."""
    return orjson.dumps(to_dict(obj))


def from_dict(cls: type[_T], data: Mapping[str, Any]) -> _T:
    """The model `cls` back from what `to_dict` gave (`state` and `scope` are derived, so
    ignored).

    Nothing is coerced: a value of the wrong type (a string for a bool or a number,
    `None` for a string, `1.9` for an integer) raises `ValueError` naming what did not
    fit, as does any other wrong data.
    """
    if cls not in MODELS:
        raise TypeError(f"from_dict takes {', '.join(c.__name__ for c in MODELS)}; not {cls!r}")
    try:
        return _converter.structure(data, cls)
    except Exception as exc:  # noqa: BLE001 - cattrs' error groups, as one ValueError
        messages = (
            cattrs.transform_error(exc)
            if isinstance(exc, cattrs.BaseValidationError)
            else [str(exc)]
        )
        raise ValueError(f"not a {cls.__name__}: {'; '.join(messages)}") from None

"""The service's JSON encoding (the proto3 JSON mapping), and nothing else.

lowerCamelCase names; int64 as strings (numbers accepted); RFC 3339 timestamps with 0
to 9 fraction digits, truncated to microseconds; zero values omitted; unknown fields
ignored and unknown enum values mapped to `UNKNOWN`. Structuring runs on generated
cattrs hooks with no per-field validation wrappers; only when they fail does a slower
walk over the same hooks run, to name the bad field by its JSON path.
"""

from __future__ import annotations

import enum
import linecache
import operator
import re
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, override

from .errors import ResponseFormatError
from .limits import MAX_PAGE_SIZE, MAX_PAGE_TOKEN_LENGTH
from .models import ENUMS, Page

_E = TypeVar("_E", bound=enum.Enum)
_T = TypeVar("_T")


def camel(name: str) -> str:
    """`folder_id` -> `folderId`."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _structure_str(value: object, _: object) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    raise TypeError(f"expected a string, got {_describe(value)}")


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _structure_int64(value: object, _: object) -> int:
    number: int | None = None
    if type(value) is str:
        digits = value[1:] if value[:1] == "-" else value
        if digits.isdigit() and digits.isascii() and len(digits) <= 19:
            number = int(value)
    elif type(value) is int:
        number = value
    elif type(value) is float and value.is_integer() and abs(value) <= 2**53:
        number = int(value)  # beyond 2**53, a float is no longer the number that was sent
    elif value is None:
        return 0
    if number is not None and INT64_MIN <= number <= INT64_MAX:
        return number
    raise ValueError(f"expected an int64 (a string of digits or a number), got {_describe(value)}")


def _structure_bool(value: object, _: object) -> bool:
    if type(value) is bool:
        return value
    if value is None:
        return False
    raise TypeError(f"expected true or false, got {_describe(value)}")


def is_labels(cls: object) -> bool:
    """Whether `cls` is the type of `Cluster.labels`."""
    return cls == Mapping[str, str]


def _structure_labels(value: object, _: object) -> dict[str, str]:
    if value is None:
        return {}
    if type(value) is dict and all(type(v) is str for v in value.values()):
        return value
    raise TypeError(f"expected an object of strings, got {_describe(value)}")


def parse_timestamp(value: object) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime, or `ValueError`."""
    return _structure_timestamp(value, datetime)


def _structure_optional_timestamp(value: object, _: object) -> datetime | None:
    return None if value is None else _structure_timestamp(value, datetime)


def _is_optional_timestamp(cls: object) -> bool:
    return cls == datetime | None


# RFC 3339's date-time: `datetime.fromisoformat` also takes basic and week dates, comma
# fractions, a space separator and hours without minutes, which the service never sends.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
# The fast path's shape check: characters 7, 10, 13, 16 and 19 of "2024-03-26T14:44:20Z"
# or "2024-03-26T14:44:20.241796096Z". With `fromisoformat` accepting the rest, it
# admits only RFC 3339 UTC timestamps ("...:20.Z", of length 21, is refused apart).
_UTC_SHAPES = frozenset({"-T::Z", "-T::."})


def _structure_timestamp(value: object, _: object) -> datetime:
    if type(value) is str and _RFC3339.fullmatch(value):
        try:
            parsed = datetime.fromisoformat(value.upper())
        except ValueError:  # a day or hour out of range
            pass
        else:
            assert parsed.tzinfo is not None  # the pattern requires an offset
            return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)
    raise ValueError(f"expected an RFC 3339 timestamp, got {_describe(value)}")


def _enum_lookup(cls: type[_E]) -> dict[object, _E]:
    """Wire value -> member, for every value this version knows."""
    unspecified: _E = cls["UNSPECIFIED"]
    lookup: dict[object, _E] = {m.value: m for m in cls if m.name != "UNKNOWN"}
    lookup[0] = unspecified  # proto3 enums may be sent as numbers; 0 is always the zero value
    lookup[None] = unspecified
    return lookup


def _enum_hook(cls: type[_E]) -> Callable[[object, object], _E]:
    unknown: _E = cls["UNKNOWN"]
    lookup = _enum_lookup(cls)

    def structure(value: object, _: object) -> _E:
        kind = type(value)
        if kind is not str and kind is not int and value is not None:
            # bool and float compare equal to 0 and 1: never let them pass as enum numbers
            raise ValueError(f"expected an enum name, got {_describe(value)}")
        return lookup.get(value, unknown)

    return structure


def _structure_page_token(value: object, _: object) -> str | None:
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise TypeError(f"expected a string, got {_describe(value)}")
    if len(value) > MAX_PAGE_TOKEN_LENGTH:
        raise ValueError(
            f"page token of {len(value)} characters, over the API's limit of "
            f"{MAX_PAGE_TOKEN_LENGTH}"
        )
    return value


def _structure_items(
    item_cls: type[Any], structure_item: Callable[[Any, Any], Any]
) -> Callable[[object, object], tuple[Any, ...]]:
    def structure(value: object, _: object) -> tuple[Any, ...]:
        if value is None:
            return ()
        if type(value) is not list:
            raise TypeError(f"expected a list, got {_describe(value)}")
        return tuple([structure_item(item, item_cls) for item in value])

    return structure


def _require_object(hook: Callable[[Any, Any], _T]) -> Callable[[Any, Any], _T]:
    def structure(value: object, cls: object) -> _T:
        if type(value) is not dict:
            raise TypeError(f"expected a JSON object, got {_describe(value)}")
        return hook(value, cls)

    return structure


def _resource_hook(
    cls: type[Any], conv: cattrs.Converter, *, inline: bool
) -> Callable[[Any, Any], Any]:
    """A structuring hook for one resource class, generated for speed.

    Like cattrs' own generated hooks, it calls the converter's hook for each field. With
    `inline`, the common case of each field is inlined as a test and a C call (a string
    already a string, a known enum name, ASCII digits, a UTC timestamp), everything
    else (absent, null, numbers, offsets, garbage) goes to the field's full hook, and
    the instance is built without its `__init__` (see `_slot_setters`). An exception
    from the inlined code reaches `_explain` as the full hook's would: results and
    errors are the same. `inline=False` calls the full hook for every field and the
    class itself: the reference the tests hold the fast path to.
    """
    check_supported(cls)
    namespace: dict[str, Any] = {"__cl": cls}
    fetch: list[str] = []  # each field's value, or None when absent
    lines: list[str] = []  # each value checked and converted
    arguments = []
    for index, field in enumerate(attrs.fields(cls)):
        key, var = camel(field.name), f"v{index}"
        namespace[f"h{index}"] = conv.get_structure_hook(field.type)
        namespace[f"t{index}"] = field.type
        full = f"h{index}({var}, t{index})"
        if field.default is attrs.NOTHING:
            fetch.append(f"{var} = o[{key!r}]")
        else:
            fetch.append(f"{var} = o.get({key!r})")
            if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
                namespace[f"f{index}"] = field.default.factory
                full = f"f{index}() if {var} is None else {full}"
            else:
                namespace[f"d{index}"] = field.default
                full = f"d{index} if {var} is None else {full}"
        if not inline:
            lines.append(f"  {var} = {full}")
        elif field.type is str:
            lines += [f"  if type({var}) is not str:", f"    {var} = {full}"]
        elif field.type is int:
            # Up to 18 digits always fit an int64; anything else takes the full hook.
            lines += [
                f"  if type({var}) is str and len({var}) < 19 and {var}.isdigit()"
                f" and {var}.isascii():",
                f"    {var} = int({var})",
                "  else:",
                f"    {var} = {full}",
            ]
        elif field.type in (datetime, datetime | None):
            namespace.update(fromisoformat=datetime.fromisoformat, UTC_SHAPES=_UTC_SHAPES)
            lines += [
                f"  if type({var}) is str and {var}[7:20:3] in UTC_SHAPES"
                f" and {var}[-1] == 'Z' and len({var}) != 21:",
                f"    {var} = fromisoformat({var})",
                "  else:",
                f"    {var} = {full}",
            ]
        elif isinstance(field.type, type) and issubclass(field.type, enum.Enum):
            # Only names as keys: a number or bool never matches one, and takes the
            # full hook.
            names = {k: v for k, v in _enum_lookup(field.type).items() if type(k) is str}
            namespace[f"l{index}"] = names
            lines += [
                f"  r{index} = l{index}.get({var})",
                f"  if r{index} is None:",
                f"    r{index} = {full}",
                f"  {var} = r{index}",
            ]
        else:
            lines.append(f"  {var} = {full}")
        arguments.append(var)
    if inline and len(arguments) > 1:  # (itemgetter of one key gives no tuple)
        # With every field present, one C call fetches them all; the service leaves out
        # zero values, so a shorter record (or one with a field absent and an unknown
        # one present) takes a lookup per field instead.
        namespace["__fetch"] = operator.itemgetter(*(camel(f.name) for f in attrs.fields(cls)))
        one_by_one = "; ".join(fetch)
        head = [
            f"  if len(o) >= {len(arguments)}:",
            "    try:",
            f"      {', '.join(arguments)} = __fetch(o)",
            "    except KeyError:",
            f"      {one_by_one}",
            "  else:",
            f"    {one_by_one}",
        ]
    else:
        head = [f"  {line}" for line in fetch]
    lines = ["def structure(o, _):", *head, *lines]
    setters = _slot_setters(cls) if inline else None
    if setters is None:
        lines.append(f"  return __cl({', '.join(arguments)})")
    else:
        namespace["__new"] = object.__new__
        lines.append("  b = __new(__cl)")
        for index, (setter, var) in enumerate(zip(setters, arguments, strict=True)):
            namespace[f"s{index}"] = setter
            lines.append(f"  s{index}(b, {var})")
        lines.append("  return b")
    filename = f"<wire structure {cls.__module__}.{cls.__qualname__}{'' if inline else ' ref'}>"
    source = "\n".join(lines) + "\n"
    # Registered, so that tracebacks and coverage can show the generated lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102
    hook: Callable[[Any, Any], Any] = namespace["structure"]
    return hook


def check_supported(cls: type[Any]) -> None:
    """`TypeError` naming the first attrs feature the generated hooks cannot honour: they
    pass every field by position, and build defaults without the instance."""
    for field in attrs.fields(cls):
        where = f"{cls.__qualname__}.{field.name}"
        if not field.init:
            raise TypeError(f"wire cannot structure {where}: a field with init=False")
        if field.kw_only:
            raise TypeError(f"wire cannot structure {where}: a kw_only field")
        if field.alias not in (None, field.name):
            raise TypeError(f"wire cannot structure {where}: a field with an alias")
        default = field.default
        if isinstance(default, attrs.Factory) and default.takes_self:  # type: ignore[arg-type]
            raise TypeError(f"wire cannot structure {where}: a Factory(takes_self=True) default")


def _slot_setters(cls: type[Any]) -> tuple[Callable[[Any, Any], None], ...] | None:
    """The slots' own setters of a plain slotted attrs class, to build its instances fast.

    A frozen class's `__init__` stores each field through `object.__setattr__`, a call
    per field: 1.3 us for a `Backup`. Instead, the hook allocates the instance and
    stores each field through its slot's descriptor: an ordinary instance of `cls`
    (type, equality, hash, repr, pickle, copy, evolve and frozenness alike), made by no
    other class. None for any class whose `__init__` does more than store its arguments
    (validators, converters, init hooks, a cached hash, an own `__new__`, slots
    inherited from a base): those keep their constructor.
    """
    fields = attrs.fields(cls)
    slots = vars(cls).get("__slots__", None)
    plain = (
        slots is not None
        and set(slots) - {"__weakref__"} == {f.name for f in fields}
        and cls.__mro__ == (cls, object)
        and "__new__" not in vars(cls)
        and not hasattr(cls, "__attrs_pre_init__")
        and not hasattr(cls, "__attrs_post_init__")
        and all(f.init and f.validator is None and f.converter is None for f in fields)
    )
    if not plain:
        return None
    return tuple(vars(cls)[f.name].__set__ for f in fields)


def page_items(cls: type[Any]) -> tuple[str, type[Any]]:
    """A page class's items: their JSON key (and attribute), and their class."""
    attrs.resolve_types(cls)
    key: str = cls.items_field
    (item_cls, _) = typing.get_args(attrs.fields_dict(cls)[key].type)
    return key, item_cls


def _is_page(cls: object) -> bool:
    return isinstance(cls, type) and issubclass(cls, Page) and attrs.has(cls)


def _is_resource(cls: object) -> bool:
    return isinstance(cls, type) and attrs.has(cls) and not issubclass(cls, Page)


def is_wire_enum(cls: object) -> bool:
    """Whether `cls` is an enum of the service's (one with `UNSPECIFIED` and `UNKNOWN`)."""
    return (
        isinstance(cls, type)
        and issubclass(cls, enum.Enum)
        and {"UNSPECIFIED", "UNKNOWN"} <= cls.__members__.keys()
    )


def _make_converter(*, inline: bool = True) -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=False)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int64)
    conv.register_structure_hook(datetime, _structure_timestamp)
    conv.register_structure_hook_func(_is_optional_timestamp, _structure_optional_timestamp)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook_func(is_labels, _structure_labels)
    for enum_cls in ENUMS:  # each by class: str's own hook would take a StrEnum first
        if is_wire_enum(enum_cls):
            conv.register_structure_hook(enum_cls, _enum_hook(enum_cls))

    def resource_hook(cls: type[Any]) -> Callable[[Any, Any], Any]:
        # No object check needed: `o.get` and `o["id"]` fail on anything else.
        attrs.resolve_types(cls)
        return _resource_hook(cls, conv, inline=inline)

    def page_hook(cls: type[Any]) -> Callable[[Any, Any], Any]:
        items_key, item_cls = page_items(cls)
        overrides: dict[str, Any] = {
            items_key: override(
                struct_hook=_structure_items(item_cls, conv.get_structure_hook(item_cls))
            ),
            "next_page_token": override(rename="nextPageToken", struct_hook=_structure_page_token),
        }
        return _require_object(make_dict_structure_fn(cls, conv, **overrides))

    conv.register_structure_hook_factory(_is_resource, resource_hook)
    conv.register_structure_hook_factory(_is_page, page_hook)
    return conv


_converter = _make_converter()
_reference = _make_converter(inline=False)


def _explain_resource(obj: object, cls: type[Any], path: str) -> ResponseFormatError | None:
    if type(obj) is not dict:
        return ResponseFormatError(
            f"{path or '$'}: expected a JSON object, got {_describe(obj)}", field=path or "$"
        )
    for field in attrs.fields(cls):
        key = camel(field.name)
        where = f"{path}.{key}" if path else key
        if key not in obj:
            if field.default is attrs.NOTHING:
                return ResponseFormatError(f"{where}: required field missing", field=where)
            continue
        try:
            _converter.structure(obj[key], field.type)
        except Exception as exc:  # noqa: BLE001 - turned into the error to raise
            return ResponseFormatError(f"{where}: {exc}", field=where)
    return None


def _explain_page(obj: object, cls: type[Any]) -> ResponseFormatError | None:
    items_key, item_cls = page_items(cls)
    if type(obj) is not dict:
        return ResponseFormatError(f"$: expected a JSON object, got {_describe(obj)}", field="$")
    items = obj.get(items_key)
    if items is not None and type(items) is not list:
        return ResponseFormatError(
            f"{items_key}: expected a list, got {_describe(items)}", field=items_key
        )
    for index, item in enumerate(items or ()):
        error = _explain_resource(item, item_cls, f"{items_key}[{index}]")
        if error is not None:
            return error
    try:
        _structure_page_token(obj.get("nextPageToken"), str)
    except (TypeError, ValueError) as exc:
        return ResponseFormatError(f"nextPageToken: {exc}", field="nextPageToken")
    return None


DOES_NOT_FIT = (TypeError, ValueError, KeyError, AttributeError, OverflowError)
"""What structuring data that does not fit raises; anything else is a bug."""


def _explain(obj: object, cls: type[Any]) -> ResponseFormatError | None:
    """Walk what the converter refused, to name the first bad field by its JSON path;
    None when every field fits."""
    return _explain_page(obj, cls) if _is_page(cls) else _explain_resource(obj, cls, "")


def loads(body: bytes) -> Any:
    """Decode a JSON body, or raise `ResponseFormatError` saying what came instead."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        kind = "an empty body" if not body.strip() else f"{len(body)} bytes that are not JSON"
        raise ResponseFormatError(f"expected a JSON body, got {kind}", field="$") from None


def structure(obj: object, cls: type[_T], *, fast: bool = True) -> _T:
    """Structure decoded JSON into `cls`, or raise `ResponseFormatError` naming the field.

    `fast=False` skips the inlined fast paths: slower, and by design the same result.
    """
    try:
        return (_converter if fast else _reference).structure(obj, cls)
    except DOES_NOT_FIT:
        failure = _explain(obj, cls)
        if failure is None:  # the data fits: the exception is a bug, not the answer's fault
            raise
    raise failure  # outside the except block: nothing in its context


_STATUS_KEYS = frozenset({"code", "message", "details"})


def _refuse_status(obj: object) -> None:
    """A 2xx body that is a `google.rpc.Status` with a non-zero code (an error that
    came with a success status) is no page or resource: `ResponseFormatError`."""
    if type(obj) is not dict or not obj.keys() <= _STATUS_KEYS:
        return
    code = obj.get("code")
    if type(code) is int and code != 0:
        message = obj.get("message")
        text = message if isinstance(message, str) else "no message"
        raise ResponseFormatError(
            f"a success status with an error body: {text}", field="code", code=code
        )


def parse(body: bytes, cls: type[_T]) -> _T:
    """A response body as a resource of class `cls`."""
    obj = loads(body)
    _refuse_status(obj)
    return structure(obj, cls)


def parse_page(body: bytes, cls: type[_T], max_items: int = MAX_PAGE_SIZE) -> _T:
    """A list call's response body as a page of class `cls`, refused before its items
    are structured if it holds more than `max_items`."""
    obj = loads(body)
    _refuse_status(obj)
    items_key = page_items(cls)[0]
    if type(obj) is dict:
        items = obj.get(items_key)
        if type(items) is list and len(items) > max_items:
            raise ResponseFormatError(
                f"{items_key}: {len(items)} items in a page of at most {max_items}",
                field=items_key,
            )
    return structure(obj, cls)


def encode_timestamp(value: datetime) -> str:
    """A datetime as an RFC 3339 UTC timestamp for a request (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_status(body: bytes) -> tuple[int | None, str | None, str | None]:
    """The gRPC code, message and RequestInfo id of a `google.rpc.Status` body.

    Any part that is missing or of the wrong type comes back as None; a body that is
    not JSON at all gives (None, None, None).
    """
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None, None
    if not isinstance(obj, dict):
        return None, None, None
    code = obj.get("code")
    message = obj.get("message")
    request_id = None
    details = obj.get("details")
    if isinstance(details, list):
        for detail in details:
            if isinstance(detail, dict) and isinstance(detail.get("requestId"), str):
                request_id = detail["requestId"]
                break
    return (
        code if type(code) is int else None,
        message if isinstance(message, str) else None,
        request_id,
    )

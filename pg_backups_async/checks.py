"""Argument checks shared by every public entry point.

A value of the wrong type raises `TypeError`; a value of the right type that is out of
range raises `ValueError`. Messages name the argument and never echo a secret.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeVar

_T = TypeVar("_T")


def check_int(value: object, name: str, *, minimum: int | None = None) -> int:
    """An `int` (not a bool) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def check_optional_int(value: object, name: str, *, minimum: int | None = None) -> int | None:
    """None, or an `int` as `check_int` takes it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, not {type(value).__name__}")
    return check_int(value, name, minimum=minimum)


def check_positive(value: object, name: str) -> float:
    """A finite number above zero, as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number above zero, got {value!r}")
    return float(value)


def check_str(value: object, name: str) -> str:
    """A `str`."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def check_iterable(values: Iterable[_T], name: str) -> list[_T]:
    """The items of an iterable that is not itself a `str` (one id is not a list of ids)."""
    if isinstance(values, str | bytes):
        raise TypeError(f"{name} must be an iterable of ids, not one {type(values).__name__}")
    try:
        return list(values)
    except TypeError:
        raise TypeError(
            f"{name} must be an iterable of ids, not {type(values).__name__}"
        ) from None

"""Credentials: what the client asks for an IAM token before each request."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

_REDACTED = "<redacted>"


@runtime_checkable
class Credentials(Protocol):
    """A source of IAM tokens, asked before every request."""

    async def token(self) -> str:
        """A currently valid IAM token."""
        ...

    def invalidate(self, token: str) -> None:
        """The API refused `token` (HTTP 401): forget it if it was cached."""
        ...


def check_token(token: str, *, name: str = "token") -> str:
    """A token that can travel in a header, or `ValueError` that does not echo it."""
    if not isinstance(token, str):
        raise TypeError(f"{name} must be a str, not {type(token).__name__}")
    if not token:
        raise ValueError(f"{name} must not be empty")
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise ValueError(f"{name} contains whitespace, control or non-ASCII characters")
    return token


class IamToken:
    """A ready IAM token, used as is (it lives at most 12 hours)."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = check_token(token, name="IAM token")

    async def token(self) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        """A fixed token cannot be refreshed; the 401 reaches the caller."""

    def __repr__(self) -> str:
        return f"IamToken({_REDACTED})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IamToken) and other._token == self._token

    def __hash__(self) -> int:
        return hash((IamToken, self._token))

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("IamToken holds a secret and cannot be pickled")

"""Making text a server sent safe to show: secrets redacted, control characters escaped.

A server (or a proxy in front of it) may echo the request, token included, into an
error message or a header; and any string it sends may hold terminal escapes, line
breaks or invisible format characters. Errors are built with server text redacted;
whatever writes to a terminal or a log line escapes it with `printable`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

REDACTED = "<redacted>"

SHORT_SECRET = 8
"""A secret shorter than this is redacted only where it stands as a whole word: `any`
inside `c9qmanyclusters` is part of an id, not the token."""

# A PEM private key block, whole or cut off: never shown, whoever sent it.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with each of `secrets`, and anything shaped like a private key, redacted.

    A secret shorter than `SHORT_SECRET` characters is redacted where it stands as a
    whole word (no letter, digit or `_` on either side), so that it does not garble
    the words it happens to be part of; a longer one wherever it appears.
    """
    for secret in secrets:
        if not secret or secret not in text:
            continue
        if len(secret) >= SHORT_SECRET:
            text = text.replace(secret, REDACTED)
        else:
            text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", REDACTED, text)
    if "PRIVATE KEY-----" in text:
        text = _PRIVATE_KEY.sub(REDACTED, text)
    return text


_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
# Controls (C0, DEL, C1), format characters (bidirectional overrides and isolates,
# zero-width spaces and joiners, the byte order mark, tags...), line and paragraph
# separators: each could move the cursor, start an escape sequence, break a line, or
# make the text read other than it is; and lone surrogates, which no terminal encoding
# can write.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _escape(code: int) -> str:
    if code in _NAMED:
        return _NAMED[code]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


class _Escapes(dict[int, str]):
    """`str.translate`'s table: filled as characters are met, with escapes only (a
    few hundred at most), so that it never grows with the text."""

    def __missing__(self, code: int) -> str:
        if unicodedata.category(chr(code)) not in _ESCAPED_CATEGORIES:
            raise LookupError(code)  # translate() keeps the character
        self[code] = escape = _escape(code)
        return escape


_ESCAPES = _Escapes()


def printable(text: str) -> str:
    """`text` with control and format characters written as escapes (`\\x1b`, `\\n`,
    `\\u202e`), for a terminal or a log line: it can neither move the cursor, forge a
    line, nor hide or reorder what it shows."""
    if text.isprintable():  # the usual case, at C speed: none of those characters
        return text
    return text.translate(_ESCAPES)

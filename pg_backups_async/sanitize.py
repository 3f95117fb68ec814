"""Making text a server sent safe to show: secrets redacted, control characters escaped.

A server (or a proxy in front of it) may echo the request, token included, into an
error message or a header; and any string it sends may hold terminal escapes or line
breaks. Errors are built with server text redacted; whatever writes to a terminal or a log line
escapes it with `printable`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "<redacted>"

# A PEM private key block, whole or cut off: never shown, whoever sent it.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with each of `secrets`, and anything shaped like a private key, redacted."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    if "PRIVATE KEY-----" in text:
        text = _PRIVATE_KEY.sub(REDACTED, text)
    return text


# C0 controls, DEL and C1 controls, plus the Unicode line and paragraph separators: each
# could move the cursor, start an escape sequence or break a line.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))} | {
    0x2028: "\\u2028",
    0x2029: "\\u2029",
    0x09: "\\t",
    0x0A: "\\n",
    0x0D: "\\r",
}


def printable(text: str) -> str:
    """`text` with control characters written as escapes (`\\x1b`, `\\n`), for a terminal
    or a log line: it can neither move the cursor nor forge a line."""
    return text.translate(_ESCAPES)

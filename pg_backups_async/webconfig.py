"""The exporter-toolkit web config file: TLS and basic auth for `/metrics`.

The format Prometheus' own exporters read (`--web.config.file`)::

    tls_server_config:
      cert_file: server.crt      # relative to the config file
      key_file: server.key
      min_version: TLS12         # optional: TLS12 (default) or TLS13
    basic_auth_users:
      prometheus: $2y$10$...     # bcrypt hashes, as htpasswd -nBC 10 writes them

Needs PyYAML and bcrypt (the `exporter` extra).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os
import ssl
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from aiohttp import web

_TLS_KEYS = {"cert_file", "key_file", "min_version"}
_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_REMEMBERED = 1024
_REALM = 'Basic realm="pg-backups exporter", charset="UTF-8"'


@attrs.frozen
class WebConfig:
    """What `Exporter.start(web_config=...)` takes: a TLS context (None: plain HTTP) and
    the basic-auth users with their bcrypt hashes (empty: no authentication)."""

    ssl_context: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = attrs.field(factory=dict)


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """Read a web config file; `ValueError` saying what is wrong with it."""
    import yaml

    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read the web config file {path}: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"the web config file {path} is not YAML: {exc}") from None
    if document is None:
        return WebConfig()
    if not isinstance(document, dict):
        raise ValueError(f"the web config file {path} must be a mapping")  # noqa: TRY004
    unknown = set(document) - {"tls_server_config", "basic_auth_users"}
    if unknown:
        raise ValueError(f"the web config file {path} has unsupported keys: {sorted(unknown)}")
    context = _tls(document.get("tls_server_config"), path.parent)
    return WebConfig(context, _users(document.get("basic_auth_users")))


def _tls(section: Any, base: Path) -> ssl.SSLContext | None:
    if section is None:
        return None
    if not isinstance(section, dict) or not {"cert_file", "key_file"} <= set(section):
        raise ValueError("tls_server_config needs cert_file and key_file")
    unknown = set(section) - _TLS_KEYS
    if unknown:
        raise ValueError(f"tls_server_config has unsupported keys: {sorted(unknown)}")
    version = section.get("min_version", "TLS12")
    if version not in _VERSIONS:
        raise ValueError(f"tls_server_config: min_version is TLS12 or TLS13, not {version!r}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = _VERSIONS[version]
    cert, key = (base / str(section[name]) for name in ("cert_file", "key_file"))
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the TLS certificate {cert} and key {key}: {exc}") from None
    return context


def _users(section: Any) -> dict[str, bytes]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ValueError("basic_auth_users maps user names to bcrypt hashes")  # noqa: TRY004
    users = {}
    for user, hashed in section.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ValueError(f"basic_auth_users: the hash of {user!r} is not a bcrypt hash")
        users[str(user)] = hashed.encode()
    return users


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def basic_auth(users: Mapping[str, bytes]) -> Any:
    """An aiohttp middleware: requests without a user's password get 401 and nothing
    else. A verified password is remembered (as a digest) so bcrypt runs once per user
    and password; checks run in a thread, off the event loop."""
    import bcrypt

    verified: set[bytes] = set()
    # Unknown users cost a check too, so timing does not tell which users exist.
    decoy = bcrypt.hashpw(b"decoy", bcrypt.gensalt(rounds=10))

    def check(user: str, password: bytes) -> bool:
        try:
            return bcrypt.checkpw(password, users.get(user, decoy)) and user in users
        except ValueError:  # over bcrypt's 72 bytes, or a hash it cannot read
            return False

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        credentials = _credentials(request.headers.get("Authorization", ""))
        if credentials is not None:
            user, password = credentials
            digest = hashlib.sha256(b"%s\0%s" % (user.encode(), password)).digest()
            if digest in verified:
                return await handler(request)
            if await asyncio.to_thread(check, user, password):
                if len(verified) >= _REMEMBERED:
                    verified.clear()
                verified.add(digest)
                return await handler(request)
        return web.Response(status=401, headers={"WWW-Authenticate": _REALM})

    return middleware


def _credentials(header: str) -> tuple[str, bytes] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode(), password
    except UnicodeDecodeError:
        return None

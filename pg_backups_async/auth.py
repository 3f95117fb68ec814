"""Credentials: what the client asks for an IAM token before each request.

`IamToken` is used as is. `ServiceAccountKey`, `OAuthToken` and `MetadataCredentials`
exchange something for an IAM token, cache it, refresh it well before it expires
(once for all concurrent callers), and drop it when the API answers 401.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import random
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import AuthError
from .protocol import is_loopback, validate_endpoint
from .retry import RetryPolicy, with_retries
from .wire import parse_status, parse_timestamp

log = logging.getLogger("pg_backups_async")

IAM_ENDPOINT = "https://iam.api.cloud.yandex.net"
IAM_TOKENS_PATH = "/iam/v1/tokens"
JWT_AUDIENCE = "https://iam.api.cloud.yandex.net/iam/v1/tokens"
METADATA_ADDRESS = "169.254.169.254"
METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"  # noqa: S105
JWT_LIFETIME = 3600  # seconds: the service accepts at most one hour
_KEY_ID_LINE = "PLEASE DO NOT REMOVE THIS LINE!"
_REDACTED = "<redacted>"
_EXCHANGE_RETRY = RetryPolicy(max_attempts=3, max_time=20.0, base_delay=0.5, max_delay=4.0)
_EXCHANGE_TIMEOUT = aiohttp.ClientTimeout(total=20.0, sock_connect=5.0)


def _now() -> float:
    """Seconds since the epoch; tests replace it to move time."""
    return time.time()


@runtime_checkable
class Credentials(Protocol):
    """A source of IAM tokens, asked before every request."""

    async def token(self) -> str:
        """A currently valid IAM token."""
        ...

    def invalidate(self, token: str) -> bool:
        """The API refused `token` (HTTP 401): forget it; whether a new one may differ."""
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


class _Secret:
    """Holds a secret; never shows it, never pickles it."""

    __slots__ = ()

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError(f"{type(self).__name__} holds a secret and cannot be pickled")


class IamToken(_Secret):
    """A ready IAM token, used as is (it lives at most 12 hours)."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = check_token(token, name="IAM token")

    async def token(self) -> str:
        return self._token

    def invalidate(self, token: str) -> bool:
        """A fixed token cannot be refreshed: the 401 reaches the caller."""
        return False

    def __repr__(self) -> str:
        return f"IamToken({_REDACTED})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IamToken) and other._token == self._token

    def __hash__(self) -> int:
        return hash((IamToken, self._token))


class _ExchangedToken(_Secret):
    """A token got by an exchange, cached and refreshed ahead of its expiry."""

    __slots__ = ("_expires_at", "_lock", "_refresh_at", "_token")

    def __init__(self) -> None:
        self._token: str | None = None
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._lock: asyncio.Lock | None = None

    async def _exchange(self) -> tuple[str, float]:
        """A new token and the time it expires (seconds since the epoch)."""
        raise NotImplementedError

    async def token(self) -> str:
        if self._token is not None and _now() < self._refresh_at:
            return self._token
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one exchange, however many callers wait for it
            now = _now()
            if self._token is not None and now < self._refresh_at:
                return self._token
            try:
                token, expires_at = await self._exchange()
            except AuthError as error:
                if self._token is not None and now < self._expires_at - 60:
                    log.warning("keeping the current IAM token: refreshing it failed: %s", error)
                    self._refresh_at = now + 30
                    return self._token
                raise
            check_token(token, name="exchanged IAM token")
            lifetime = max(0.0, expires_at - now)
            self._token, self._expires_at = token, expires_at
            # Refresh between half and six tenths of the lifetime: well before expiry,
            # and not all processes at once.
            self._refresh_at = now + lifetime * random.uniform(0.5, 0.6)
            log.debug("got an IAM token valid for %.0f s from %s", lifetime, type(self).__name__)
            return token

    def invalidate(self, token: str) -> bool:
        if token == self._token:
            self._token = None
        return True


async def _post_or_get(
    method: str, url: str, *, json_body: Mapping[str, str] | None, headers: Mapping[str, str]
) -> dict[str, Any]:
    """One exchange request, retried on transient failures; its JSON object, or AuthError."""

    async def attempt() -> dict[str, Any]:
        try:
            async with (
                aiohttp.ClientSession(timeout=_EXCHANGE_TIMEOUT) as session,
                session.request(
                    method, url, json=json_body, headers=headers, allow_redirects=False
                ) as response,
            ):
                body = await response.read()
                status = response.status
        except aiohttp.ClientResponseError as exc:
            raise AuthError(f"token exchange failed: {type(exc).__name__}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AuthError(
                f"token exchange at {url} failed: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
        if not 200 <= status < 300:
            _, message, request_id = parse_status(body)
            raise AuthError(
                f"token exchange refused: {message or f'HTTP {status}'}",
                http_status=status,
                request_id=request_id,
            )
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise AuthError(
                f"token exchange answered {len(body)} bytes that are not a JSON object"
            )
        return data

    result: dict[str, Any] = await with_retries(_EXCHANGE_RETRY, attempt)()
    return result


def _iam_token_from(answer: Mapping[str, Any]) -> tuple[str, float]:
    token, expires = answer.get("iamToken"), answer.get("expiresAt")
    if not isinstance(token, str) or not token:
        raise AuthError("the IAM token exchange answered without iamToken")
    try:
        expires_at = parse_timestamp(expires).timestamp()
    except ValueError:
        raise AuthError("the IAM token exchange answered without a valid expiresAt") from None
    return token, expires_at


def _iam_url(iam_endpoint: str) -> str:
    return str(validate_endpoint(iam_endpoint)) + IAM_TOKENS_PATH


class ServiceAccountKey(_ExchangedToken):
    """A service account's authorized key: a PS256-signed JWT exchanged for IAM tokens.

    Build it with `from_file(path)` or `from_dict(d)` (the JSON the console gives:
    `id`, `service_account_id`, `private_key`, ...).
    """

    __slots__ = ("_iam_url", "_private_key", "key_id", "service_account_id")

    def __init__(
        self,
        *,
        key_id: str,
        service_account_id: str,
        private_key: rsa.RSAPrivateKey,
        iam_endpoint: str = IAM_ENDPOINT,
    ) -> None:
        super().__init__()
        self.key_id = key_id
        self.service_account_id = service_account_id
        self._private_key = private_key
        self._iam_url = _iam_url(iam_endpoint)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, iam_endpoint: str = IAM_ENDPOINT
    ) -> ServiceAccountKey:
        """From the key's JSON object; `ValueError` names a missing or bad field."""
        if not isinstance(data, Mapping):
            raise TypeError("a service account key must be a JSON object")
        fields = {}
        for name in ("id", "service_account_id", "private_key"):
            value = data.get(name)
            if not isinstance(value, str) or not value.strip():
                problem = "missing" if value is None else "not a non-empty string"
                raise ValueError(f"service account key: field {name!r} is {problem}")
            fields[name] = value
        return cls(
            key_id=fields["id"],
            service_account_id=fields["service_account_id"],
            private_key=_load_private_key(fields["private_key"]),
            iam_endpoint=iam_endpoint,
        )

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, iam_endpoint: str = IAM_ENDPOINT
    ) -> ServiceAccountKey:
        """From a key file as the console saves it."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ValueError(f"cannot read service account key file {path}: {reason}") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise ValueError(f"service account key file {path} is not JSON") from None
        return cls.from_dict(data, iam_endpoint=iam_endpoint)

    def make_jwt(self, now: float | None = None) -> str:
        """The signed JWT the exchange takes: valid for one hour from `now`."""
        issued = int(_now() if now is None else now)
        return jwt.encode(
            {
                "iss": self.service_account_id,
                "aud": JWT_AUDIENCE,
                "iat": issued,
                "exp": issued + JWT_LIFETIME,
            },
            self._private_key,
            algorithm="PS256",
            headers={"kid": self.key_id},
        )

    async def _exchange(self) -> tuple[str, float]:
        answer = await _post_or_get(
            "POST", self._iam_url, json_body={"jwt": self.make_jwt()}, headers={}
        )
        return _iam_token_from(answer)

    def __repr__(self) -> str:
        return (
            f"ServiceAccountKey(key_id={self.key_id!r}, "
            f"service_account_id={self.service_account_id!r}, private_key={_REDACTED})"
        )

    __str__ = __repr__


def _load_private_key(text: str) -> rsa.RSAPrivateKey:
    lines = text.strip().splitlines()
    if lines and lines[0].startswith(_KEY_ID_LINE):
        lines = lines[1:]
    try:
        key = serialization.load_pem_private_key("\n".join(lines).encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError(
            "service account key: field 'private_key' is not an unencrypted PEM private key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("service account key: field 'private_key' is not an RSA key")  # noqa: TRY004
    return key


class OAuthToken(_ExchangedToken):
    """A Yandex OAuth token exchanged for IAM tokens. Deprecated by the service."""

    __slots__ = ("_iam_url", "_oauth_token")

    def __init__(self, token: str, *, iam_endpoint: str = IAM_ENDPOINT) -> None:
        super().__init__()
        self._oauth_token = check_token(token, name="OAuth token")
        self._iam_url = _iam_url(iam_endpoint)
        warnings.warn(
            "OAuth tokens are being retired by Yandex Cloud; use a service account key "
            "or an IAM token instead",
            DeprecationWarning,
            stacklevel=2,
        )

    async def _exchange(self) -> tuple[str, float]:
        answer = await _post_or_get(
            "POST",
            self._iam_url,
            json_body={"yandexPassportOauthToken": self._oauth_token},
            headers={},
        )
        return _iam_token_from(answer)

    def __repr__(self) -> str:
        return f"OAuthToken({_REDACTED})"

    __str__ = __repr__


class MetadataCredentials(_ExchangedToken):
    """The IAM token of the service account attached to this cloud VM.

    `address` is the metadata service's host or host:port: link-local or loopback only,
    since the token travels over plain HTTP.
    """

    __slots__ = ("_url",)

    def __init__(self, *, address: str = METADATA_ADDRESS) -> None:
        super().__init__()
        self._url = f"http://{_check_metadata_address(address)}{METADATA_TOKEN_PATH}"

    @property
    def address(self) -> str:
        """The metadata service's host[:port]."""
        return self._url.removeprefix("http://").removesuffix(METADATA_TOKEN_PATH)

    async def _exchange(self) -> tuple[str, float]:
        answer = await _post_or_get(
            "GET", self._url, json_body=None, headers={"Metadata-Flavor": "Google"}
        )
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not token:
            raise AuthError("the metadata service answered without access_token")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
            raise AuthError("the metadata service answered without a numeric expires_in")
        return token, _now() + float(expires_in)

    def __repr__(self) -> str:
        return f"MetadataCredentials(address={self.address!r})"

    __str__ = __repr__


def _check_metadata_address(address: str) -> str:
    if not isinstance(address, str):
        raise TypeError(f"metadata address must be a str, not {type(address).__name__}")
    if not address or "/" in address or "@" in address:
        raise ValueError(f"metadata address must be host or host:port, got {address!r}")
    host = address
    if address.startswith("["):
        host = address[1 : address.find("]")]
    elif address.count(":") == 1:
        host, port = address.split(":")
        if not port.isdigit():
            raise ValueError(f"metadata address has a bad port: {address!r}")
    try:
        link_local = ipaddress.ip_address(host).is_link_local
    except ValueError:
        link_local = False
    if not (link_local or is_loopback(host)):
        raise ValueError(
            f"metadata address {address!r} is neither link-local nor loopback: "
            "the token would travel over plain HTTP"
        )
    return address


ENVIRONMENT_VARIABLES = (
    "YC_IAM_TOKEN",
    "YC_SERVICE_ACCOUNT_KEY_FILE",
    "YC_OAUTH_TOKEN",
    "YC_TOKEN",
)


def credentials_from_env(
    environ: Mapping[str, str] | None = None, *, iam_endpoint: str = IAM_ENDPOINT
) -> Credentials:
    """Credentials from the environment variables the service's own tools use.

    In order: `YC_IAM_TOKEN`; `YC_SERVICE_ACCOUNT_KEY_FILE` (a path, or the key's JSON
    itself); `YC_OAUTH_TOKEN`, then `YC_TOKEN`. None of them: `AuthError` listing them.
    """
    env = os.environ if environ is None else environ
    if env.get("YC_IAM_TOKEN"):
        return IamToken(env["YC_IAM_TOKEN"])
    key = env.get("YC_SERVICE_ACCOUNT_KEY_FILE", "").strip()
    if key:
        if key.startswith("{"):
            try:
                data = json.loads(key)
            except ValueError:
                raise ValueError(
                    "YC_SERVICE_ACCOUNT_KEY_FILE holds text that is not JSON"
                ) from None
            return ServiceAccountKey.from_dict(data, iam_endpoint=iam_endpoint)
        return ServiceAccountKey.from_file(key, iam_endpoint=iam_endpoint)
    for name in ("YC_OAUTH_TOKEN", "YC_TOKEN"):
        if env.get(name):
            return OAuthToken(env[name], iam_endpoint=iam_endpoint)
    raise AuthError(
        "no credentials: set one of " + ", ".join(ENVIRONMENT_VARIABLES) + ", or pass credentials="
    )

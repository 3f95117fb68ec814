"""Credentials: what the client asks for an IAM token before each call.

`IamToken` is used as is. `ServiceAccountKey`, `OAuthToken` and `MetadataCredentials`
exchange something for an IAM token, cache it, refresh it well before it expires
(once for all concurrent callers), and drop it when the API answers 401. Inside a
client, the exchange goes through the client's transport and the retry loop of the
call that needs the token.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import ipaddress
import logging
import os
import random
import re
import stat
import time
import warnings
import weakref
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import aiohttp
import attrs
import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

from .checks import check_str
from .errors import ApiError, AuthError
from .limits import MAX_KEY_FILE_BYTES, TOKEN_ANSWER_CAP
from .protocol import validate_endpoint
from .retry import Retrying, RetryPolicy
from .sanitize import REDACTED, printable, redact
from .transport import AiohttpTransport, HttpRequest, HttpResponse, Transport
from .wire import parse_status, parse_timestamp

log = logging.getLogger("pg_backups_async")

IAM_ENDPOINT = "https://iam.api.cloud.yandex.net"
IAM_TOKENS_PATH = "/iam/v1/tokens"
JWT_AUDIENCE = "https://iam.api.cloud.yandex.net/iam/v1/tokens"
METADATA_ADDRESS = "169.254.169.254"
METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"  # noqa: S105
JWT_LIFETIME = 3600  # seconds: the service accepts at most one hour
MIN_RSA_BITS = 2048
_KEY_ID_LINE = "PLEASE DO NOT REMOVE THIS LINE!"
MAX_TOKEN_LIFETIME = 12 * 3600.0  # seconds: no IAM token lives longer
STANDALONE_RETRY = RetryPolicy(max_attempts=3, max_time=20.0, base_delay=0.2, max_delay=2.0)
"""The retries of `token()` called outside a client; a client uses its own policy."""
_EXCHANGE_TIMEOUT = aiohttp.ClientTimeout(total=10.0, sock_connect=5.0)


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
        """The token, as given."""
        return self._token

    def invalidate(self, token: str) -> bool:
        """A fixed token cannot be refreshed: the 401 reaches the caller."""
        return False

    def __repr__(self) -> str:
        return f"IamToken({REDACTED})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IamToken) and other._token == self._token

    def __hash__(self) -> int:
        return hash((IamToken, self._token))


@attrs.frozen
class Exchange:
    """How a token exchange reaches its service: a transport, and the retry loop of the
    call that needs the token (its attempts and its deadline)."""

    transport: Transport
    retrying: Retrying


class ExchangedCredentials(_Secret):
    """A token got by an exchange, cached and refreshed ahead of its expiry.

    One exchange serves every caller waiting for it, and so does its failure: callers
    that waited for an exchange that failed get its error, without one of their own.
    """

    __slots__ = ("_exchanges", "_expires_at", "_failure", "_locks", "_refresh_at", "_token")

    def __init__(self) -> None:
        self._token: str | None = None
        self._expires_at = 0.0
        self._refresh_at = 0.0
        # One lock per event loop: an asyncio.Lock belongs to the loop that first waits
        # on it, and one credentials object may serve successive asyncio.run() jobs.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._exchanges = 0  # exchanges finished, successful or not
        self._failure: AuthError | None = None  # how the last one failed, if it did

    _where = "the token exchange"
    """The service, for messages."""

    def _request(self) -> tuple[HttpRequest, str | None]:
        """The exchange's HTTP request, and the secret it carries (never to be shown)."""
        raise NotImplementedError

    def _read_answer(self, answer: dict[str, Any]) -> tuple[object, float | None]:
        """The token and its lifetime in seconds (None when unknown) from the JSON answer."""
        raise NotImplementedError

    async def token(self) -> str:
        """A currently valid IAM token; an exchange of its own when none is cached.

        Inside a client, the client's session and retry loop are used instead. Raises
        `AuthError` when no token can be had.
        """
        cached = self._cached(_now())
        if cached is not None:
            return cached
        transport = AiohttpTransport(timeout=_EXCHANGE_TIMEOUT, connection_limit=1)
        try:
            return await self.token_via(Exchange(transport, Retrying(STANDALONE_RETRY)))
        finally:
            await transport.aclose()

    async def token_via(self, exchange: Exchange) -> str:
        """A currently valid IAM token, exchanging through `exchange` when needed."""
        cached = self._cached(_now())
        if cached is not None:
            return cached
        seen = self._exchanges
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        try:
            async with asyncio.timeout_at(exchange.retrying.deadline):
                await lock.acquire()
        except TimeoutError:
            failure = AuthError(
                f"no IAM token within the call's max_time: waiting on {self._where}",
                retryable=False,
            )
        else:
            try:
                return await self._refresh(exchange, seen)
            finally:
                lock.release()
        raise failure

    def invalidate(self, token: str) -> bool:
        if token == self._token:
            self._token = None
        return True

    def _cached(self, now: float) -> str | None:
        return self._token if self._token is not None and now < self._refresh_at else None

    async def _refresh(self, exchange: Exchange, seen: int) -> str:
        """The exchange itself, under the lock; `seen` is how many had finished before."""
        now = _now()
        cached = self._cached(now)
        if cached is not None:
            return cached
        if self._exchanges != seen and self._failure is not None:
            raise copy.copy(self._failure)  # the exchange this caller waited for failed
        current = self._token if now < self._expires_at - 60 else None
        try:
            # While the current token is still good, a refresh is one attempt: a failure
            # keeps the token rather than hold the call up.
            token, lifetime = await exchange.retrying.run(
                functools.partial(self._exchange_once, exchange), retry=current is None
            )
        except AuthError as error:
            self._exchanges += 1
            if current is not None:
                log.warning(
                    "keeping the current IAM token: refreshing it failed: %s",
                    printable(str(error)),
                )
                self._failure, self._refresh_at = None, now + 30
                return current
            self._failure = error
            raise
        self._exchanges += 1
        self._failure = None
        self._token, self._expires_at = token, now + lifetime
        # Refresh between half and six tenths of the lifetime: well before expiry,
        # and not all processes at once.
        self._refresh_at = now + lifetime * random.uniform(0.5, 0.6)
        log.debug("got an IAM token valid for %.0f s from %s", lifetime, type(self).__name__)
        return token

    async def _exchange_once(self, exchange: Exchange) -> tuple[str, float]:
        """One exchange request: the token and its lifetime, or `AuthError` (its text
        redacted of the request's secret, which a service or proxy may echo)."""
        request, secret = self._request()
        secrets = (secret,) if secret else ()
        try:
            response = await exchange.transport.send(
                request, max_bytes=TOKEN_ANSWER_CAP, deadline=exchange.retrying.deadline
            )
        except ApiError as error:
            failure = AuthError(
                redact(f"{self._where} failed: {error.message}", secrets),
                http_status=error.http_status,
                request_id=_redacted(error.request_id, secrets),
                retryable=error.retryable,
            )
        else:
            return self._read(response, secrets)
        raise failure

    def _read(self, response: HttpResponse, secrets: tuple[str, ...]) -> tuple[str, float]:
        status, body = response.status, response.body
        if not 200 <= status < 300:
            _, message, request_id = parse_status(body)
            raise AuthError(
                redact(f"{self._where} refused: {message or f'HTTP {status}'}", secrets),
                http_status=status,
                request_id=_redacted(response.headers.get("x-request-id") or request_id, secrets),
            )
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise AuthError(f"{self._where} answered {len(body)} bytes that are not a JSON object")
        token, lifetime = self._read_answer(answer)
        if not isinstance(token, str) or not token:
            raise AuthError(f"{self._where} answered without a token")
        try:
            check_token(token)
        except ValueError:
            raise AuthError(
                f"{self._where} answered a token that cannot travel in a header"
            ) from None
        if lifetime is None:
            lifetime = MAX_TOKEN_LIFETIME  # unknown: at most what the service grants
        if not lifetime > 0:
            raise AuthError(f"{self._where} answered a token that has already expired")
        return token, min(lifetime, MAX_TOKEN_LIFETIME)


def _redacted(text: str | None, secrets: tuple[str, ...]) -> str | None:
    return None if text is None else redact(text, secrets)


def _iam_request(url: URL, body: Mapping[str, str]) -> HttpRequest:
    return HttpRequest(
        "POST",
        url,
        {"Content-Type": "application/json", "Accept": "application/json"},
        orjson.dumps(body),
    )


def _iam_answer(answer: Mapping[str, Any]) -> tuple[object, float | None]:
    expires = answer.get("expiresAt")
    if expires is None:
        return answer.get("iamToken"), None
    try:
        expires_at = parse_timestamp(expires).timestamp()
    except (ValueError, OverflowError):
        raise AuthError("the IAM token exchange answered without a valid expiresAt") from None
    return answer.get("iamToken"), expires_at - _now()


def _iam_url(iam_endpoint: str) -> URL:
    return validate_endpoint(iam_endpoint).with_path(IAM_TOKENS_PATH)


class ServiceAccountKey(ExchangedCredentials):
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
        """From a key file as the console saves it.

        Only a regular file of at most 64 KiB is read; one that other users may read
        loads with a `KeyFilePermissionsWarning`. Raises `ValueError` when the file
        cannot be read or holds no valid key. Errors
        name the path only when it looks like one: a value that may be the key itself
        (several lines, JSON, a PEM block, over 200 characters) is never shown.
        """
        where = _shown_path(path)
        text, reason, mode = _read_key_file(path)
        if reason:
            raise ValueError(f"cannot read the service account key file {where}: {reason}")
        try:
            data = orjson.loads(text)
        except ValueError:
            raise ValueError(f"the service account key file {where} is not JSON") from None
        if not isinstance(data, Mapping):
            raise ValueError(  # noqa: TRY004 - a bad value, not a bad argument type
                f"the service account key file {where} holds JSON that is not an object"
            )
        key = cls.from_dict(data, iam_endpoint=iam_endpoint)
        if os.name == "posix" and mode & 0o077:
            warnings.warn(
                f"the service account key file {where} may be read by other users "
                f"(mode {stat.S_IMODE(mode):o}): chmod 600 it",
                KeyFilePermissionsWarning,
                stacklevel=2,
            )
        return key

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

    _where = "the IAM token exchange"

    def _request(self) -> tuple[HttpRequest, str | None]:
        signed = self.make_jwt()
        return _iam_request(self._iam_url, {"jwt": signed}), signed

    def _read_answer(self, answer: dict[str, Any]) -> tuple[object, float | None]:
        return _iam_answer(answer)

    def __repr__(self) -> str:
        return (
            f"ServiceAccountKey(key_id={self.key_id!r}, "
            f"service_account_id={self.service_account_id!r}, private_key={REDACTED})"
        )

    __str__ = __repr__


class KeyFilePermissionsWarning(UserWarning):
    """A service account key file that users other than its owner may read."""


def _read_key_file(path: str | os.PathLike[str]) -> tuple[str, str, int]:
    """The key file's text, "" and its mode; or "", why it cannot be read, and 0.

    Only a regular file of at most `MAX_KEY_FILE_BYTES` is read: a FIFO is opened
    without waiting for a writer, a device or a larger file is refused unread.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        return "", exc.strerror or type(exc).__name__, 0
    except ValueError:  # a NUL character: no path at all
        return "", "not a path", 0
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_KEY_FILE_BYTES:
        os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            return "", "not a regular file", 0
        return "", f"{info.st_size:,} bytes, over the {MAX_KEY_FILE_BYTES:,} a key file holds", 0
    with os.fdopen(fd, "rb") as file:
        try:
            data = file.read(MAX_KEY_FILE_BYTES + 1)
        except OSError as exc:
            return "", exc.strerror or type(exc).__name__, 0
    if len(data) > MAX_KEY_FILE_BYTES:  # it grew while being read
        return "", f"over the {MAX_KEY_FILE_BYTES:,} bytes a key file holds", 0
    try:
        return data.decode("utf-8-sig"), "", info.st_mode  # a BOM is no part of the JSON
    except UnicodeDecodeError:
        return "", "not UTF-8 text", 0


def _shown_path(path: str | os.PathLike[str]) -> str:
    """The path quoted, if it looks like a path; else only its length."""
    text = os.fspath(path)
    looks_like_key = any(c in text for c in '{}[]"') or "-----" in text or len(text) > 200
    if looks_like_key or not text.isprintable():
        return f"(a value of {len(text)} characters that is not a path)"
    return repr(text)


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
    if key.key_size < MIN_RSA_BITS:
        raise ValueError(
            f"service account key: the RSA key has {key.key_size} bits; "
            f"at least {MIN_RSA_BITS} are required"
        )
    return key


class OAuthToken(ExchangedCredentials):
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

    _where = "the IAM token exchange"

    def _request(self) -> tuple[HttpRequest, str | None]:
        body = {"yandexPassportOauthToken": self._oauth_token}
        return _iam_request(self._iam_url, body), self._oauth_token

    def _read_answer(self, answer: dict[str, Any]) -> tuple[object, float | None]:
        return _iam_answer(answer)

    def __repr__(self) -> str:
        return f"OAuthToken({REDACTED})"

    __str__ = __repr__


class MetadataCredentials(ExchangedCredentials):
    """The IAM token of the service account attached to this cloud VM.

    `address` is the metadata service's host or host:port: link-local or loopback only,
    since the token travels over plain HTTP.
    """

    __slots__ = ("_address", "_url")

    def __init__(self, *, address: str = METADATA_ADDRESS) -> None:
        super().__init__()
        self._address = _check_metadata_address(address)
        self._url = URL(f"http://{self._address}{METADATA_TOKEN_PATH}")

    @property
    def address(self) -> str:
        """The metadata service's host[:port]."""
        return self._address

    _where = "the metadata service"

    def _request(self) -> tuple[HttpRequest, str | None]:
        return HttpRequest("GET", self._url, {"Metadata-Flavor": "Google"}), None

    def _read_answer(self, answer: dict[str, Any]) -> tuple[object, float | None]:
        expires_in = answer.get("expires_in")
        if expires_in is not None and (
            isinstance(expires_in, bool) or not isinstance(expires_in, int | float)
        ):
            raise AuthError("the metadata service answered an expires_in that is not a number")
        # min() before float(): an int of 400 digits compares, but would overflow a float.
        lifetime = None if expires_in is None else float(min(expires_in, MAX_TOKEN_LIFETIME))
        return answer.get("access_token"), lifetime

    def __repr__(self) -> str:
        return f"MetadataCredentials(address={self.address!r})"

    __str__ = __repr__


_METADATA_ADDRESS = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<v4>[0-9.]+))(?::(?P<port>[0-9]{1,5}))?", re.ASCII
)


def _check_metadata_address(address: str) -> str:
    """An IP literal (IPv6 in brackets), link-local or loopback, with an optional port."""
    match = _METADATA_ADDRESS.fullmatch(check_str(address, "metadata address"))
    try:
        if match is None:
            raise ValueError  # noqa: TRY301 - one message for every malformed address
        host = ipaddress.ip_address(match["v6"] or match["v4"])
        if host.version != (6 if match["v6"] else 4):
            raise ValueError  # noqa: TRY301
        if match["port"] is not None and not 0 < int(match["port"]) < 65536:
            raise ValueError  # noqa: TRY301
    except ValueError:
        raise ValueError(
            f"metadata address must be an IP address (IPv6 in brackets) with an optional "
            f"numeric port, such as 169.254.169.254 or [::1]:8080; got {printable(address)!r}"
        ) from None
    if not (host.is_link_local or host.is_loopback):
        raise ValueError(
            f"metadata address {address!r} is neither link-local nor loopback: "
            "the token would travel over plain HTTP"
        )
    return address


def _key_from_variable(value: str, iam_endpoint: str) -> ServiceAccountKey:
    """YC_SERVICE_ACCOUNT_KEY_FILE: a path, or the key's JSON itself; never echoed."""
    name = "YC_SERVICE_ACCOUNT_KEY_FILE"
    if value.startswith("-----"):
        raise ValueError(
            f"{name} holds a PEM block; it takes the key's JSON file as the console saves it "
            "(its path, or its text)"
        )
    if value[0] in '{["':
        try:
            data = orjson.loads(value)
        except ValueError:
            raise ValueError(
                f"{name} is neither a readable file nor a JSON object "
                f"(a value of {len(value)} characters)"
            ) from None
        if not isinstance(data, Mapping):
            raise ValueError(f"{name} holds JSON that is not an object")
        return ServiceAccountKey.from_dict(data, iam_endpoint=iam_endpoint)
    return ServiceAccountKey.from_file(value, iam_endpoint=iam_endpoint)


def resolve_credentials(
    *,
    iam_token: str | None = None,
    service_account_key_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    iam_endpoint: str = IAM_ENDPOINT,
) -> Credentials:
    """Credentials given explicitly (an IAM token first, then a key file), else from the
    environment as `credentials_from_env` finds them."""
    if iam_token:
        return IamToken(iam_token)
    if service_account_key_file:
        return ServiceAccountKey.from_file(service_account_key_file, iam_endpoint=iam_endpoint)
    return credentials_from_env(environ, iam_endpoint=iam_endpoint)


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
    key = env.get("YC_SERVICE_ACCOUNT_KEY_FILE", "").lstrip("\ufeff").strip()
    if key:
        return _key_from_variable(key, iam_endpoint)
    for name in ("YC_OAUTH_TOKEN", "YC_TOKEN"):
        if env.get(name):
            return OAuthToken(env[name], iam_endpoint=iam_endpoint)
    raise AuthError(
        "no credentials: set one of " + ", ".join(ENVIRONMENT_VARIABLES) + ", or pass credentials="
    )

"""The IAM side of the emulator: the token exchange, the VM metadata service, and the
check of each API request's bearer token."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from datetime import datetime

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from ..auth import JWT_AUDIENCE, JWT_LIFETIME
from .encoding import dumps, format_timestamp
from .faults import ApiFailure


class Iam:
    """Issues and checks IAM tokens. `tokens`, when not None, are the only ones
    accepted (tokens it issues itself are added); tokens live `token_lifetime` seconds
    on `clock` (seconds since the epoch)."""

    def __init__(self, tokens: Iterable[str] | None = None) -> None:
        self.tokens: set[str] | None = set(tokens) if tokens is not None else None
        self.token_lifetime = 12 * 3600.0
        self.clock: Callable[[], float] = time.time
        self.oauth_tokens: set[str] = set()
        self.issued_tokens: list[str] = []
        self.exchanges: list[str] = []
        """How each issued token was had: "jwt", "oauth" or "metadata"."""
        self._service_account_keys: dict[str, tuple[str, rsa.RSAPublicKey]] = {}

    def add_service_account_key(
        self, key_id: str, service_account_id: str, public_key: rsa.RSAPublicKey
    ) -> None:
        """Accept JWTs signed by this key's private half, for this service account."""
        self._service_account_keys[key_id] = (service_account_id, public_key)

    def revoke(self, token: str) -> None:
        """Refuse `token` from now on (as if it had expired); others stay accepted."""
        if self.tokens is None:
            self.tokens = set(self.issued_tokens)
        self.tokens.discard(token)

    def authenticate(self, request: web.Request) -> None:
        """Refuse (401) a request without an accepted bearer token."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            raise ApiFailure(401, "The token is missing or is not a Bearer token")
        if self.tokens is not None and token not in self.tokens:
            raise ApiFailure(401, "The token is invalid or has expired")

    async def exchange_token(self, request: web.Request) -> web.Response:
        """`POST /iam/v1/tokens`: a JWT or an OAuth token for an IAM token."""
        try:
            body = await request.json()
        except ValueError:
            raise ApiFailure(400, "the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise ApiFailure(400, "the body must be a JSON object")
        if "jwt" in body:
            self._verify_jwt(body["jwt"])
            kind = "jwt"
        elif "yandexPassportOauthToken" in body:
            if body["yandexPassportOauthToken"] not in self.oauth_tokens:
                raise ApiFailure(401, "The OAuth token is invalid or has expired")
            kind = "oauth"
        else:
            raise ApiFailure(400, "one of jwt or yandexPassportOauthToken is required")
        token, expires = self._issue(kind)
        answer = {"iamToken": token, "expiresAt": format_timestamp(expires)}
        return web.Response(body=dumps(answer), content_type="application/json")

    async def metadata_token(self, request: web.Request) -> web.Response:
        """The VM metadata service's token of the attached service account."""
        if request.headers.get("Metadata-Flavor") != "Google":
            return web.Response(status=403, text="Missing Metadata-Flavor:Google header.")
        token, _ = self._issue("metadata")
        answer = {
            "access_token": token,
            "expires_in": int(self.token_lifetime),
            "token_type": "Bearer",
        }
        return web.Response(body=dumps(answer), content_type="application/json")

    def _issue(self, kind: str) -> tuple[str, datetime]:
        token = f"t1.emulator.{secrets.token_urlsafe(24)}"
        self.issued_tokens.append(token)
        self.exchanges.append(kind)
        if self.tokens is not None:
            self.tokens.add(token)
        expires = datetime.fromtimestamp(self.clock() + self.token_lifetime).astimezone()
        return token, expires

    def _verify_jwt(self, token: object) -> None:
        """Check a JWT as the IAM service does: header, signature, claims, lifetime."""
        if not isinstance(token, str):
            raise ApiFailure(400, "jwt must be a string")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise ApiFailure(401, "The JWT is malformed") from None
        if header.get("alg") != "PS256":
            raise ApiFailure(401, "The JWT must be signed with PS256")
        known = self._service_account_keys.get(str(header.get("kid")))
        if known is None:
            raise ApiFailure(401, "The JWT's key id is unknown")
        service_account_id, public_key = known
        try:
            claims = jwt.decode(
                token,
                public_key,
                algorithms=["PS256"],
                audience=JWT_AUDIENCE,
                issuer=service_account_id,
                options={
                    "require": ["iss", "aud", "iat", "exp"],
                    "verify_exp": False,  # checked below, against self.clock
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise ApiFailure(401, f"The JWT is invalid: {exc}") from None
        now, leeway = self.clock(), 30
        if not isinstance(claims["iat"], int | float) or not isinstance(
            claims["exp"], int | float
        ):
            raise ApiFailure(401, "The JWT's iat and exp must be numbers")
        if claims["iat"] > now + leeway:
            raise ApiFailure(401, "The JWT was issued in the future")
        if claims["exp"] < now - leeway:
            raise ApiFailure(401, "The JWT has expired")
        if claims["exp"] - claims["iat"] > JWT_LIFETIME:
            raise ApiFailure(401, "The JWT may live at most one hour")

"""Credentials end to end against the emulator's IAM exchange and metadata service."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import pg_backups_async as pba
from pg_backups_async import auth
from pg_backups_async.emulator import Emulator, Fault
from tests.conftest import ANCHOR, FAST_RETRY

KEY_ID = "ajekeyid000000000001"
SA_ID = "ajeserviceaccount001"
OAUTH = "y0_AgAAAAsecretOAuthTokenValue"


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def key_data(private_key: rsa.RSAPrivateKey) -> dict[str, str]:
    """A key as the console saves it, with the line it puts before the PEM block."""
    return {
        "id": KEY_ID,
        "service_account_id": SA_ID,
        "created_at": "2026-11-01T10:00:00Z",
        "key_algorithm": "RSA_2048",
        "public_key": "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----\n",
        "private_key": f"PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID <{KEY_ID}>\n"
        + _pem(private_key),
    }


@pytest.fixture
async def iam(private_key: rsa.RSAPrivateKey) -> AsyncIterator[Emulator]:
    """An emulator that accepts only the tokens it issued."""
    async with Emulator(anchor=ANCHOR, tokens=()) as emulator:
        emulator.add_service_account_key(KEY_ID, SA_ID, private_key.public_key())
        emulator.oauth_tokens = {OAUTH}
        yield emulator


class Clock:
    """Time moved by hand, for the client's credentials and the emulator alike."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> None:
        import time

        self.now = time.time()
        monkeypatch.setattr(auth, "_now", lambda: self.now)
        emulator.clock = lambda: self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, iam: Emulator) -> Clock:
    return Clock(monkeypatch, iam)


def _client(credentials: pba.Credentials, emulator: Emulator) -> pba.BackupsClient:
    return pba.BackupsClient(credentials, endpoint=emulator.url, retry=FAST_RETRY)


def _sent(emulator: Emulator) -> list[str]:
    return [
        r.headers.get("Authorization", "")
        for r in emulator.requests
        if r.path.startswith("/managed-postgresql/")
    ]


# Service account keys


async def test_service_account_key_end_to_end(iam: Emulator, key_data: dict[str, str]) -> None:
    credentials = pba.ServiceAccountKey.from_dict(key_data, iam_endpoint=iam.url)
    async with _client(credentials, iam) as client:
        page = await client.get_backups_page(iam.cluster_ids[2])
        await client.get_backups_page(iam.cluster_ids[2])
    assert len(page.backups) == 7
    assert iam.exchanges == ["jwt"]  # cached: one exchange for both requests
    assert _sent(iam) == [f"Bearer {iam.issued_tokens[0]}"] * 2


async def test_key_without_the_first_line_and_from_a_file(
    iam: Emulator, key_data: dict[str, str], tmp_path: Path
) -> None:
    key_data["private_key"] = key_data["private_key"].split("\n", 1)[1]
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key_data))
    path.chmod(0o600)
    credentials = pba.ServiceAccountKey.from_file(path, iam_endpoint=iam.url)
    assert isinstance(await credentials.token(), str)
    assert iam.exchanges == ["jwt"]


def test_the_jwt(key_data: dict[str, str], private_key: rsa.RSAPrivateKey) -> None:
    token = pba.ServiceAccountKey.from_dict(key_data).make_jwt(now=1_800_000_000)
    assert jwt.get_unverified_header(token) == {"alg": "PS256", "kid": KEY_ID, "typ": "JWT"}
    claims = jwt.decode(
        token,
        private_key.public_key(),
        algorithms=["PS256"],
        audience="https://iam.api.cloud.yandex.net/iam/v1/tokens",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {
        "iss": SA_ID,
        "aud": "https://iam.api.cloud.yandex.net/iam/v1/tokens",
        "iat": 1_800_000_000,
        "exp": 1_800_003_600,
    }


async def test_a_jwt_signed_by_another_key_is_refused(
    iam: Emulator, key_data: dict[str, str]
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_data["private_key"] = _pem(other)
    credentials = pba.ServiceAccountKey.from_dict(key_data, iam_endpoint=iam.url)
    with pytest.raises(
        pba.AuthError, match="The JWT is invalid: Signature verification failed"
    ) as caught:
        await credentials.token()
    assert caught.value.http_status == 401
    assert iam.exchanges == []


async def test_an_unknown_key_id_is_refused(iam: Emulator, key_data: dict[str, str]) -> None:
    key_data["id"] = "ajeunknownkey0000000"
    credentials = pba.ServiceAccountKey.from_dict(key_data, iam_endpoint=iam.url)
    with pytest.raises(pba.AuthError, match="key id is unknown"):
        await credentials.token()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": None}, "field 'id' is missing"),
        ({"service_account_id": 5}, "field 'service_account_id' is not a non-empty string"),
        ({"private_key": ""}, "field 'private_key' is not a non-empty string"),
        (
            {"private_key": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----"},
            "field 'private_key' is not an unencrypted PEM private key",
        ),
    ],
)
def test_malformed_keys_name_the_field(
    key_data: dict[str, str], change: dict[str, Any], message: str
) -> None:
    data = {k: v for k, v in {**key_data, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=message) as caught:
        pba.ServiceAccountKey.from_dict(data)
    assert "c2VjcmV0" not in str(caught.value)
    assert "PRIVATE KEY" not in str(caught.value)


def test_a_key_that_is_not_rsa(key_data: dict[str, str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    key_data["private_key"] = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(ValueError, match="not an RSA key"):
        pba.ServiceAccountKey.from_dict(key_data)


def test_key_files_that_cannot_be_used(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"cannot read the service account key file .*No such file"
    ):
        pba.ServiceAccountKey.from_file(tmp_path / "missing.json")
    garbage = tmp_path / "garbage.json"
    garbage.write_text("private_key: hunter2")
    with pytest.raises(ValueError, match="is not JSON") as caught:
        pba.ServiceAccountKey.from_file(garbage)
    assert "hunter2" not in str(caught.value)


def test_the_iam_endpoint_must_be_https_unless_loopback(key_data: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="unencrypted"):
        pba.ServiceAccountKey.from_dict(key_data, iam_endpoint="http://iam.example.com")
    with pytest.raises(ValueError, match="unencrypted"):
        pba.OAuthToken(OAUTH, iam_endpoint="http://iam.example.com")


# Caching, refresh and 401


async def test_a_burst_of_requests_makes_one_exchange(
    iam: Emulator, key_data: dict[str, str]
) -> None:
    credentials = pba.ServiceAccountKey.from_dict(key_data, iam_endpoint=iam.url)
    async with _client(credentials, iam) as client:
        pages = await asyncio.gather(
            *(client.get_backups_page(iam.cluster_ids[2]) for _ in range(100))
        )
    assert len(pages) == 100
    assert iam.exchanges == ["jwt"]
    assert set(_sent(iam)) == {f"Bearer {iam.issued_tokens[0]}"}


async def test_refreshed_well_before_expiry(
    iam: Emulator, key_data: dict[str, str], clock: Clock
) -> None:
    iam.token_lifetime = 1000.0
    credentials = pba.ServiceAccountKey.from_dict(key_data, iam_endpoint=iam.url)
    first = await credentials.token()
    clock.now += 490  # under half the lifetime: the cached token
    assert await credentials.token() == first
    clock.now += 120  # past six tenths: a new one, though the old is still valid
    second = await credentials.token()
    assert second != first
    assert iam.exchanges == ["jwt", "jwt"]


async def test_a_failed_refresh_keeps_a_still_valid_token(
    iam: Emulator, key_data: dict[str, str], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    iam.token_lifetime = 1000.0
    credentials = pba.ServiceAccountKey.from_dict(key_data, iam_endpoint=iam.url)
    first = await credentials.token()
    clock.now += 700
    iam.inject(Fault(status=403))
    assert await credentials.token() == first
    assert "keeping the current IAM token" in caplog.text
    clock.now += 31
    assert await credentials.token() != first  # tried again later


async def test_a_401_refreshes_once_then_succeeds(iam: Emulator, key_data: dict[str, str]) -> None:
    credentials = pba.ServiceAccountKey.from_dict(key_data, iam_endpoint=iam.url)
    async with _client(credentials, iam) as client:
        await client.get_backups_page(iam.cluster_ids[2])
        iam.revoke(iam.issued_tokens[0])
        page = await client.get_backups_page(iam.cluster_ids[2])
    assert len(page.backups) == 7
    assert iam.exchanges == ["jwt", "jwt"]
    first, second = iam.issued_tokens
    assert _sent(iam) == [f"Bearer {first}", f"Bearer {first}", f"Bearer {second}"]


async def test_a_second_401_is_final(iam: Emulator, key_data: dict[str, str]) -> None:
    credentials = pba.ServiceAccountKey.from_dict(key_data, iam_endpoint=iam.url)
    iam.inject(Fault(status=401, cluster_id=iam.cluster_ids[2], times=5))
    async with _client(credentials, iam) as client:
        with pytest.raises(pba.UnauthenticatedError):
            await client.get_backups_page(iam.cluster_ids[2])
    assert iam.exchanges == ["jwt", "jwt"]
    assert len(_sent(iam)) == 2


async def test_exchange_failures_are_retried_then_raised(
    iam: Emulator, key_data: dict[str, str]
) -> None:
    credentials = pba.ServiceAccountKey.from_dict(key_data, iam_endpoint=iam.url)
    iam.inject(Fault(status=503))
    assert await credentials.token() == iam.issued_tokens[0]
    credentials = pba.ServiceAccountKey.from_dict(key_data, iam_endpoint=iam.url)
    iam.inject(Fault(status=500, times=3))
    with pytest.raises(pba.AuthError, match="token exchange refused: Scripted fault: INTERNAL"):
        await credentials.token()
    assert iam.pending_faults == 0


# OAuth and metadata


async def test_oauth_token(iam: Emulator) -> None:
    with pytest.warns(DeprecationWarning, match="retired"):
        credentials = pba.OAuthToken(OAUTH, iam_endpoint=iam.url)
    async with _client(credentials, iam) as client:
        await client.get_backups_page(iam.cluster_ids[2])
    assert iam.exchanges == ["oauth"]
    with pytest.warns(DeprecationWarning, match="retired"):
        wrong = pba.OAuthToken("y0_wrong", iam_endpoint=iam.url)
    with pytest.raises(pba.AuthError, match="The OAuth token is invalid") as caught:
        await wrong.token()
    assert "y0_wrong" not in str(caught.value)


async def test_metadata_credentials(iam: Emulator) -> None:
    address = iam.url.removeprefix("http://")
    credentials = pba.MetadataCredentials(address=address)
    async with _client(credentials, iam) as client:
        await client.get_backups_page(iam.cluster_ids[2])
    assert iam.exchanges == ["metadata"]
    metadata_request = next(r for r in iam.requests if r.path.startswith("/computeMetadata/"))
    assert metadata_request.headers["Metadata-Flavor"] == "Google"
    assert repr(credentials) == f"MetadataCredentials(address={address!r})"


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.5",
        "metadata.example.com",
        "http://169.254.169.254",
        "a/b",
        "",
        "1.2.3.4:80",
        "localhost",  # a name, not a literal: /etc/hosts could send it anywhere
        "[::1]evil.com",
        "[::1]\r\nX: y",
        "[::1]?.evil.com",
        "169.254.169.254:99999",
        "169.254.169.254:8o",
        "[169.254.169.254]",
    ],
)
def test_metadata_address_must_be_link_local_or_loopback(address: str) -> None:
    with pytest.raises(ValueError, match="metadata address"):
        pba.MetadataCredentials(address=address)


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "169.254.169.254:80", "127.0.0.1:8080", "[::1]:80", "[fe80::1]"]
)
def test_metadata_addresses_accepted(address: str) -> None:
    assert pba.MetadataCredentials(address=address).address == address


# The environment


def test_environment_order(key_data: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key_data))
    path.chmod(0o600)
    everything = {
        "YC_IAM_TOKEN": "t1.iam",
        "YC_SERVICE_ACCOUNT_KEY_FILE": str(path),
        "YC_OAUTH_TOKEN": OAUTH,
        "YC_TOKEN": OAUTH,
    }
    assert pba.credentials_from_env(everything) == pba.IamToken("t1.iam")
    del everything["YC_IAM_TOKEN"]
    assert isinstance(pba.credentials_from_env(everything), pba.ServiceAccountKey)
    everything["YC_SERVICE_ACCOUNT_KEY_FILE"] = json.dumps(key_data)  # the JSON itself
    assert pba.credentials_from_env(everything).key_id == KEY_ID  # type: ignore[attr-defined]
    del everything["YC_SERVICE_ACCOUNT_KEY_FILE"]
    with pytest.warns(DeprecationWarning, match="retired"):
        assert isinstance(pba.credentials_from_env(everything), pba.OAuthToken)
    del everything["YC_OAUTH_TOKEN"]
    with pytest.warns(DeprecationWarning, match="retired"):
        assert isinstance(pba.credentials_from_env(everything), pba.OAuthToken)
    with pytest.raises(pba.AuthError) as caught:
        pba.credentials_from_env({"HOME": "/root"})
    assert str(caught.value) == (
        "no credentials: set one of YC_IAM_TOKEN, YC_SERVICE_ACCOUNT_KEY_FILE, "
        "YC_OAUTH_TOKEN, YC_TOKEN, or pass credentials="
    )


async def test_a_client_without_credentials_reads_the_environment(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in auth.ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(pba.AuthError, match="no credentials"):
        pba.BackupsClient(endpoint=emulator.url)
    monkeypatch.setenv("YC_IAM_TOKEN", "t1.from-the-environment")
    async with pba.BackupsClient(endpoint=emulator.url) as client:
        await client.get_backups_page(emulator.cluster_ids[2])
    assert _sent(emulator) == ["Bearer t1.from-the-environment"]


# Secrets


async def test_secrets_never_appear(
    iam: Emulator, key_data: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    credentials = pba.ServiceAccountKey.from_dict(key_data, iam_endpoint=iam.url)
    with pytest.warns(DeprecationWarning, match="retired"):
        oauth = pba.OAuthToken(OAUTH, iam_endpoint=iam.url)
    texts += [repr(credentials), str(credentials), repr(oauth), str(oauth)]
    async with _client(credentials, iam) as client:
        texts.append(repr(client))
        await client.get_backups_page(iam.cluster_ids[2])
        iam.revoke(iam.issued_tokens[0])
        iam.inject(Fault(status=401, cluster_id=iam.cluster_ids[2], times=2))
        with pytest.raises(pba.UnauthenticatedError) as caught:
            await client.get_backups_page(iam.cluster_ids[2])
        texts += [str(caught.value), repr(caught.value)]
    iam.inject(Fault(status=500, times=3))
    with pytest.raises(pba.AuthError) as failed:
        await oauth.token()
    texts += [str(failed.value), repr(failed.value)]
    texts += [r.getMessage() for r in caplog.records]
    secrets = [OAUTH, *iam.issued_tokens, key_data["private_key"].splitlines()[2]]
    assert all(secret not in text for secret in secrets for text in texts)
    with pytest.raises(TypeError, match="secret"):
        import pickle

        pickle.dumps(credentials)


def _signed(private_key: rsa.RSAPrivateKey, *, alg: str = "PS256", **claims: Any) -> str:
    import time

    now = int(time.time())
    body = {"iss": SA_ID, "aud": auth.JWT_AUDIENCE, "iat": now, "exp": now + 3600, **claims}
    return jwt.encode(body, private_key, algorithm=alg, headers={"kid": KEY_ID})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda k: _signed(k, alg="RS256"), "signed with PS256"),
        (lambda k: _signed(k, aud="https://example.com"), "Audience doesn't match"),
        (lambda k: _signed(k, iss="ajesomeoneelse000000"), "Invalid issuer"),
        (lambda k: _signed(k, exp=int(__import__("time").time()) + 7200), "at most one hour"),
        (lambda k: _signed(k, iat=1_000_000_000, exp=1_000_003_600), "has expired"),
        (lambda k: _signed(k, iat=int(__import__("time").time()) + 600), "in the future"),
        (lambda k: "not.a.jwt", "malformed"),
    ],
)
async def test_the_emulator_verifies_jwts_in_full(
    iam: Emulator, private_key: rsa.RSAPrivateKey, make: Any, message: str
) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{iam.url}/iam/v1/tokens", json={"jwt": make(private_key)}) as response,
    ):
        body = await response.json()
    assert response.status == 401
    assert message in body["message"]
    assert iam.issued_tokens == []


async def test_cli_with_a_service_account_key(
    iam: Emulator,
    key_data: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pg_backups_async import cli

    for name in auth.ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key_data))
    path.chmod(0o600)
    args = ["list", iam.cluster_ids[2], "--endpoint", iam.url, "--format", "jsonl"]
    code = await asyncio.to_thread(
        cli.main, [*args, "--service-account-key", str(path), "--iam-endpoint", iam.url]
    )
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert len(out.splitlines()) == 7
    assert iam.exchanges == ["jwt"]
    monkeypatch.setenv("YC_SERVICE_ACCOUNT_KEY_FILE", str(tmp_path / "missing.json"))
    code = await asyncio.to_thread(cli.main, [*args, "--iam-endpoint", iam.url])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("pg-backups: error: cannot read the service account key file")

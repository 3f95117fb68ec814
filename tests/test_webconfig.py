"""The exporter over HTTPS with basic auth, from an exporter-toolkit web config file."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import pg_backups_async as pba
from pg_backups_async.emulator import DEFAULT_FOLDER_ID, Emulator
from pg_backups_async.exporter import Exporter
from pg_backups_async.webconfig import WebConfig, load_web_config

GUARD = 20.0  # seconds: a hung test fails instead of hanging; never a measurement
PASSWORD = "correct horse battery staple"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert, key_file = directory / "server.crt", directory / "server.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key_file


@pytest.fixture
def web_config_file(tmp_path: Path) -> Path:
    _self_signed(tmp_path)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    # htpasswd writes $2y$ hashes: the exporter-toolkit's documentation shows those.
    hashed = hashed.replace("$2b$", "$2y$", 1)
    path = tmp_path / "web.yml"
    path.write_text(
        "tls_server_config:\n"
        "  cert_file: server.crt\n"
        "  key_file: server.key\n"
        "basic_auth_users:\n"
        f"  prometheus: '{hashed}'\n"
    )
    return path


@pytest.fixture
async def secured(
    emulator: Emulator, client: pba.BackupsClient, web_config_file: Path
) -> AsyncIterator[Exporter]:
    collected = asyncio.Event()
    served = Exporter(
        client,
        folder_ids=[DEFAULT_FOLDER_ID],
        interval=3600,
        on_collected=lambda _: collected.set(),
    )
    await served.start("127.0.0.1", 0, web_config=load_web_config(web_config_file))
    await asyncio.wait_for(collected.wait(), GUARD)
    yield served
    await served.stop()


def _trusting(web_config_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=web_config_file.parent / "server.crt")
    context.check_hostname = False  # the certificate names localhost; we dial 127.0.0.1
    return context


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def _get(
    url: str, context: ssl.SSLContext | None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connector = aiohttp.TCPConnector(ssl=context) if context is not None else None
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def test_metrics_over_https_with_the_right_password(
    secured: Exporter, web_config_file: Path
) -> None:
    assert secured.url.startswith("https://127.0.0.1:")
    context = _trusting(web_config_file)
    for _ in range(2):  # the second time from the remembered check
        status, _, body = await _get(
            f"{secured.url}/metrics", context, _basic("prometheus", PASSWORD)
        )
        assert status == 200
        assert b"pg_backups_cluster_up" in body


@pytest.mark.parametrize(
    "headers",
    [
        None,
        _basic("prometheus", "wrong"),
        _basic("nobody", PASSWORD),
        _basic("prometheus", PASSWORD + "x" * 80),  # past bcrypt's 72 bytes
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Bearer " + PASSWORD},
    ],
)
@pytest.mark.parametrize("path", ["/", "/metrics", "/healthz"])
async def test_wrong_credentials_get_401_and_nothing_else(
    secured: Exporter, web_config_file: Path, headers: dict[str, str] | None, path: str
) -> None:
    status, response_headers, body = await _get(
        f"{secured.url}{path}", _trusting(web_config_file), headers
    )
    assert status == 401
    assert body == b""
    assert response_headers["WWW-Authenticate"].startswith("Basic realm=")


async def test_plain_http_is_refused_on_a_tls_port(
    secured: Exporter, web_config_file: Path
) -> None:
    plain = secured.url.replace("https://", "http://")
    with pytest.raises(aiohttp.ClientError):
        await _get(f"{plain}/metrics", None, _basic("prometheus", PASSWORD))


async def test_the_default_is_plain_http_on_loopback(
    emulator: Emulator, client: pba.BackupsClient
) -> None:
    served = Exporter(client, folder_ids=[DEFAULT_FOLDER_ID], interval=3600)
    url = await served.start(port=0)
    try:
        assert url.startswith("http://127.0.0.1:")
        status, _, _ = await _get(f"{url}/", None)
        assert status == 200
    finally:
        await served.stop()


def test_an_empty_file_is_plain_http_without_users(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("")
    assert load_web_config(path) == WebConfig()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("- a list\n", "must be a mapping"),
        ("tls_server_config: {cert_file: server.crt}\n", "needs cert_file and key_file"),
        (
            "tls_server_config: {cert_file: a, key_file: b, client_ca_file: c}\n",
            "unsupported keys",
        ),
        (
            "tls_server_config: {cert_file: server.crt, key_file: server.key, "
            "min_version: TLS10}\n",
            "min_version",
        ),
        ("tls_server_config: {cert_file: missing.crt, key_file: missing.key}\n", "cannot load"),
        ("basic_auth_users: {prometheus: plaintext}\n", "not a bcrypt hash"),
        ("basic_auth_users: [prometheus]\n", "maps user names"),
        ("http_server_config: {http2: true}\n", "unsupported keys"),
        ("a: [\n", "not YAML"),
    ],
)
def test_a_bad_file_says_what_is_wrong(tmp_path: Path, text: str, match: str) -> None:
    _self_signed(tmp_path)
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_web_config(path)


def test_a_missing_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the web config file"):
        load_web_config(tmp_path / "absent.yml")


def test_the_command_serves_over_https_with_json_logs_and_clouds(web_config_file: Path) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    import orjson

    from pg_backups_async.emulator import DEFAULT_CLOUD_ID, emulator_process

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with emulator_process("--clusters", "4") as (url, _):
        env = {k: v for k, v in os.environ.items() if not k.startswith("YC_")}
        env["YC_IAM_TOKEN"] = "t1.token"
        command = [
            sys.executable, "-m", "pg_backups_async.cli", "exporter", "--endpoint", url,
            "--cloud-id", DEFAULT_CLOUD_ID, "--cluster-id", "c9qnosuchcluster0000",
            "--listen", f"127.0.0.1:{port}", "--web-config-file", str(web_config_file),
            "--log-format", "json",
        ]  # fmt: skip
        with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as served:
            assert served.stderr is not None
            try:
                serving = served.stderr.readline()
                assert serving.startswith(f"pg-backups: serving https://127.0.0.1:{port}/")
                warning = orjson.loads(served.stderr.readline())  # the cluster that is not there
                assert (warning["level"], warning["logger"]) == (
                    "warning",
                    "pg_backups_async.exporter",
                )
                assert "c9qnosuchcluster0000 (NotFoundError" in warning["message"]
                request = urllib.request.Request(
                    f"https://127.0.0.1:{port}/metrics",
                    headers=_basic("prometheus", PASSWORD),
                )
                with urllib.request.urlopen(
                    request, context=_trusting(web_config_file), timeout=GUARD
                ) as response:
                    text = response.read().decode()
                # Found through the cloud: its folder's four clusters, with their cloud.
                assert text.count(f'cloud_id="{DEFAULT_CLOUD_ID}"') == 4
                assert 'pg_backups_api_requests_total{call="Folder.list",code="200"}' in text
            finally:
                served.send_signal(signal.SIGTERM)
                code = served.wait(timeout=GUARD)
    assert code == 0


def test_a_bad_web_config_file_is_a_usage_error(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    result = run_cli(
        "exporter", "--folder-id", DEFAULT_FOLDER_ID, "--web-config-file", str(tmp_path / "no")
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("pg-backups: error: ")

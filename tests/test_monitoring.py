"""The shipped monitoring/ files against the real tools: promtool and Prometheus.

Without `promtool` or `prometheus` on PATH these tests skip (apt-get install
prometheus); under CI=true that is a failure. The end-to-end test starts Prometheus on
loopback with temporary storage, scraping the exporter against the emulator, and asks
its HTTP API which alerts fire and what the dashboard's queries return.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

import pg_backups_async as pba
from pg_backups_async.emulator import DEFAULT_FOLDER_ID, Emulator, Fault
from pg_backups_async.exporter import Exporter
from pg_backups_async.exposition import RequestCounter, render_inventory
from tests.conftest import FAST_RETRY, TOKEN

MONITORING = Path(__file__).parent.parent / "monitoring"
GUARD = 20.0  # seconds: a hung test fails instead of hanging; never a measurement
DEADLINE = 40.0  # seconds for Prometheus to show what is awaited
T = TypeVar("T")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not on PATH (Debian: apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must have it: .ci/run installs it")
        pytest.skip(reason)
    return path


@pytest.fixture
def promtool() -> str:
    return _tool("promtool")


@pytest.fixture
def prometheus() -> str:
    return _tool("prometheus")


def _run(*command: str, stdin: bytes = b"", cwd: Path | None = None) -> tuple[int, str]:
    done = subprocess.run(
        command, input=stdin, capture_output=True, timeout=60, check=False, cwd=cwd
    )
    return done.returncode, (done.stdout + done.stderr).decode()


async def test_promtool_accepts_a_scrape(
    promtool: str, emulator: Emulator, client: pba.BackupsClient
) -> None:
    served = Exporter(client, folder_ids=[DEFAULT_FOLDER_ID], interval=3600)
    url = await served.start("127.0.0.1", 0)
    try:
        await served.collect()
        async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as got:
            body = await got.read()
    finally:
        await served.stop()
    assert b"pg_backups_last_done_age_seconds{" in body
    code, output = await asyncio.to_thread(_run, promtool, "check", "metrics", stdin=body)
    assert (code, output) == (0, "")


async def test_render_inventory_has_the_exporters_families_and_promtool_accepts_it(
    promtool: str, emulator: Emulator, client: pba.BackupsClient
) -> None:
    lines = await client.inventory(folder_ids=[DEFAULT_FOLDER_ID])
    now = time.time()
    text = render_inventory(lines, now=now)
    code, output = await asyncio.to_thread(_run, promtool, "check", "metrics", stdin=text)
    assert (code, output) == (0, "")
    served = Exporter(client, folder_ids=[DEFAULT_FOLDER_ID], interval=3600)
    await served.collect()
    exporter_families = {f.name for f in served.collect_metrics()}
    rendered = {
        line.split()[2] for line in text.decode().splitlines() if line.startswith("# TYPE")
    }
    per_cluster = {n for n in exporter_families if not n.startswith(("pg_backups_collect_",))}
    per_cluster -= {"pg_backups_api_requests"}
    assert per_cluster <= {n.removesuffix("_total") for n in rendered}
    assert "pg_backups_collect_timestamp_seconds" in rendered
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }
    assert samples["pg_backups_collect_timestamp_seconds", ()] == pytest.approx(now)
    ages = 0
    for line in lines:
        if line.newest_done_at is not None:
            key = ("pg_backups_last_done_age_seconds", (("cluster_id", line.cluster_id),))
            assert samples[key] == pytest.approx(now - line.newest_done_at.timestamp())
            ages += 1
    assert ages >= 2


def test_promtool_checks_the_rules_and_the_scrape_config(promtool: str) -> None:
    code, output = _run(promtool, "check", "rules", str(MONITORING / "alerts.yaml"))
    assert code == 0, output
    assert "SUCCESS: 7 rules found" in output
    code, output = _run(promtool, "check", "config", str(MONITORING / "prometheus.yml"))
    assert code == 0, output


def test_promtool_rule_tests_pass(promtool: str) -> None:
    code, output = _run(promtool, "test", "rules", "alerts.test.yaml", cwd=MONITORING)
    assert code == 0, output
    assert "SUCCESS" in output


def test_the_rule_tests_catch_a_stale_rule_that_a_gap_restarts(
    promtool: str, tmp_path: Path
) -> None:
    # The rule the guide used to show: one missing scrape restarts its countdown, and the
    # gap case in alerts.test.yaml then fails.
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    for rule in rules["groups"][0]["rules"]:
        if rule["alert"] == "PgBackupsStale":
            rule["expr"] = (
                "pg_backups_last_done_age_seconds and on(instance, job, cluster_id) "
                "(pg_backups_stale == 1)"
            )
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(rules))
    shutil.copy(MONITORING / "alerts.test.yaml", tmp_path)
    code, output = _run(promtool, "test", "rules", "alerts.test.yaml", cwd=tmp_path)
    assert code != 0
    assert "alertname: PgBackupsStale, time: 1h15m" in output
    assert 'cluster_id="c2"' in output


def test_the_dashboard_is_grafana_json_with_queries() -> None:
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    assert dashboard["uid"] == "pg-backups"
    queries = list(_queries(dashboard))
    assert len(queries) >= 15
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"Stale", "Not listed", "Restore window", "Clusters"} <= titles


def _queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            yield panel["title"], target["expr"]


# End to end: the exporter, the emulator and a real Prometheus.


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def _prometheus(binary: str, directory: Path, target: str) -> Iterator[str]:
    """Prometheus on loopback with the shipped scrape config and a copy of the rules
    whose `for:` is 2 s, scraping and evaluating every second; its URL."""
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    for rule in rules["groups"][0]["rules"]:
        rule["for"] = "2s"
    (directory / "alerts.yaml").write_text(yaml.safe_dump(rules))
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    job = config["scrape_configs"][0]
    assert job["job_name"] == "pg-backups"
    job.update(scrape_interval="1s", scrape_timeout="1s")
    job["static_configs"] = [{"targets": [target]}]
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    command = [
        binary,
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    log = (directory / "prometheus.log").open("wb")
    with subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT) as process:
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=GUARD)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


async def _until(
    what: str, check: Callable[[], Awaitable[T | None]], log: Path, deadline: float
) -> T:
    """Poll Prometheus (an outside process) until `check` gives a value, or fail."""
    while True:
        with contextlib.suppress(aiohttp.ClientError):
            value = await check()
            if value is not None:
                return value
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:]  # noqa: ASYNC240 - only on the way to failing
            pytest.fail(f"Prometheus never showed {what}; its log:\n{tail}")
        await asyncio.sleep(0.2)  # polling an outside process, bounded by the deadline


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def test_end_to_end_alerts_and_dashboard_against_prometheus(
    prometheus: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    counter = RequestCounter()
    # Anchored at this hour, 12 clusters: 5 is stale; 3, 7 and 11 have no backup at all;
    # 0 cannot be listed (403). The others are healthy.
    async with (
        Emulator(clusters=12) as emulator,
        pba.BackupsClient(
            pba.IamToken(TOKEN), endpoint=emulator.url, retry=FAST_RETRY, on_attempt=counter
        ) as client,
    ):
        ids = emulator.cluster_ids
        emulator.inject(Fault(status=403, cluster_id=ids[0], times=10**6))
        expected = {
            ("PgBackupsStale", ids[5]),
            ("PgBackupsNoneCompleted", ids[3]),
            ("PgBackupsNoneCompleted", ids[7]),
            ("PgBackupsNoneCompleted", ids[11]),
            ("PgBackupsClusterNotListed", ids[0]),
        }
        served = Exporter(client, folder_ids=[DEFAULT_FOLDER_ID], interval=1.0, requests=counter)
        url = await served.start("127.0.0.1", 0)
        stopped = False
        log = tmp_path / "prometheus.log"
        try:
            with _prometheus(prometheus, tmp_path, url.removeprefix("http://")) as api:
                deadline = time.monotonic() + DEADLINE

                async def get(path: str, **params: str) -> Any:
                    async with http.get(f"{api}{path}", params=params) as response:
                        body = await response.json()
                    assert body["status"] == "success", body
                    return body["data"]

                async def firing() -> list[dict[str, Any]]:
                    alerts = (await get("/api/v1/alerts"))["alerts"]
                    return [a for a in alerts if a["state"] == "firing"]

                async def cluster_alerts() -> set[tuple[str, str]] | None:
                    seen = {
                        (a["labels"]["alertname"], a["labels"]["cluster_id"])
                        for a in await firing()
                        if "cluster_id" in a["labels"]
                    }
                    return seen if expected <= seen else None

                seen = await _until("the expected alerts firing", cluster_alerts, log, deadline)
                assert seen == expected  # and none for a healthy cluster
                assert not [a for a in await firing() if "Exporter" in a["labels"]["alertname"]]

                dashboard = json.loads((MONITORING / "dashboard.json").read_text())
                results: dict[str, list[dict[str, Any]]] = {}
                for title, expr in _queries(dashboard):
                    query = expr.replace("$instance", ".*").replace("$__rate_interval", "1m")

                    async def answer(query: str = query) -> list[dict[str, Any]] | None:
                        result: list[dict[str, Any]] = (await get("/api/v1/query", query=query))[
                            "result"
                        ]
                        return result or None

                    results[expr] = await _until(
                        f"data for {title!r}: {query}", answer, log, deadline
                    )
                stale = next(e for t, e in _queries(dashboard) if t == "Stale")
                assert float(results[stale][0]["value"][1]) == 1
                down = next(e for t, e in _queries(dashboard) if t == "Exporters down")
                assert float(results[down][0]["value"][1]) == 0  # none: 0, not nothing

                await served.stop()
                stopped = True

                async def exporter_down() -> dict[str, Any] | None:
                    names = {a["labels"]["alertname"]: a for a in await firing()}
                    return names.get("PgBackupsExporterDown")

                down_alert = await _until(
                    "PgBackupsExporterDown firing", exporter_down, log, deadline
                )
                assert down_alert["labels"]["job"] == "pg-backups"
                shown = sorted(
                    (
                        a["labels"]["alertname"],
                        f"cluster {ids.index(a['labels']['cluster_id'])}"
                        if "cluster_id" in a["labels"]
                        else a["labels"].get("instance", ""),
                    )
                    for a in await firing()
                )
                took = DEADLINE - (deadline - time.monotonic())
                print(f"\nfiring after {took:.1f} s:", *shown, sep="\n  ")
        finally:
            if not stopped:
                await served.stop()


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on PATH")
    unit = (MONITORING / "pg-backups-exporter.service").read_text()
    assert "ExecStart=/opt/pg-backups/bin/pg-backups exporter " in unit
    # The installed command, where the unit expects it after the install steps.
    command = Path(sys.executable).parent / "pg-backups"
    assert command.is_file()
    copy = tmp_path / "pg-backups-exporter.service"
    copy.write_text(unit.replace("/opt/pg-backups/bin/pg-backups", str(command)))
    code, output = _run(analyze, "verify", str(copy))
    assert (code, output) == (0, "")


async def test_the_inventory_command_writes_the_textfile_format(
    promtool: str, emulator: Emulator
) -> None:
    from tests.conftest import run_cli

    args = ("inventory", "--folder-id", DEFAULT_FOLDER_ID, "--endpoint", emulator.url)
    result = await asyncio.to_thread(run_cli, *args, "--format", "prometheus")
    assert result.returncode == 1  # the exit status keeps its meaning: a stale cluster
    assert "pg_backups_stale{cluster_id=" in result.stdout
    assert result.stdout.count("pg_backups_cluster_info{") == len(emulator.cluster_ids)
    code, output = await asyncio.to_thread(
        _run, promtool, "check", "metrics", stdin=result.stdout.encode()
    )
    assert (code, output) == (0, "")

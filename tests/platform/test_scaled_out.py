"""Scaled out, for real: 2 web, 2 compute, 2 worker processes and one beat behind nginx
(deploy/nginx.conf) on PostgreSQL, with RabbitMQ and then Redis as the broker. The main
journeys go through nginx (REST, a live socket, a proxied stream, a page in the browser);
then one process of each kind is SIGKILLed with runs in flight, and every run that was
accepted still ends, exactly once, while requests keep being answered.

Services stack only (the `services` marker): the embedded stack has one SQLite file and
no network broker to scale out on."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.sync.client import connect

from tests.conftest import wait_for
from tests.factories import PASSWORD, ProjectFactory, member
from tests.http import bearer, obtain_tokens
from tests.scaled import ROOT, beat_process, scaled_out, wait_in_log
from tests.workers import database_url

pytestmark = [
    pytest.mark.services,
    pytest.mark.scaled,
    pytest.mark.slow,
    pytest.mark.worker,
    pytest.mark.e2e,
]

BROKERS = {
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
    "redis": "redis://127.0.0.1:6379/1",
}
FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")
# Runs long enough to be caught running by the kill (a second or more each), short
# enough for the whole test to stay near a minute per broker.
IN_FLIGHT = {"algorithm": "dla", "parameters": {"n_particles": 60_000}}
SMALL = {"algorithm": "dla", "parameters": {"n_particles": 3_000}}
RUN_ID = f"scaled{os.getpid()}"


def _env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # Each process keeps its own metrics, not this test process's directory.
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        {
            # tests.settings: the real settings with this run's own queue, cache prefix
            # and live channels, so nothing else on the shared broker takes its messages.
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "SIMLAB_STACK": "services",
            "SIMLAB_VAR_DIR": str(var_dir),
            # pytest's test database: the rows the test makes are there.
            "DATABASE_URL": database_url(),
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            # A killed worker's run is found by its stale heartbeat within seconds.
            "SIMLAB_PROGRESS_INTERVAL_S": "0.2",
            "SIMLAB_HEARTBEAT_STALE_S": "4",
            "SIMLAB_REAP_INTERVAL_S": "1",
            # A message the killed worker held before it claimed its run (on Redis it stays
            # unacknowledged until the transport's visibility timeout) is the reaper's too:
            # published again once it has waited this long, as in a deployment that wants
            # such runs back in seconds (the default waits 15 minutes).
            "SIMLAB_REPUBLISH_AFTER_S": "20",
            **extra,
        }
    )
    return env


@pytest.fixture
def member_and_projects(transactional_db: None) -> tuple[str, dict[str, int]]:
    """A member (committed: the processes see it) and one project per broker."""
    user = member()
    organization = user.memberships.get().organization
    return user.username, {
        broker: ProjectFactory(organization=organization).pk for broker in BROKERS
    }


def _simulations(client: httpx.Client, project_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/projects/{project_id}/simulations/", params={"limit": 200})
    assert response.status_code == 200, response.text
    body = response.json()
    rows: list[dict[str, Any]] = body["results"] if isinstance(body, dict) else body
    return rows


def _create(client: httpx.Client, project_id: int, spec: dict[str, Any], seed: int) -> int:
    created = client.post(
        f"/api/v1/projects/{project_id}/simulations/", json={**spec, "seed": seed}
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def _proxy_stream(client: httpx.Client) -> None:
    """compute's run stream, through nginx, Django's proxy, nginx again and compute."""
    body = {**SMALL, "seed": 9}
    with client.stream("POST", "/api/v1/compute/stream", json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"] == "application/x-ndjson"
        events = [json.loads(line) for line in response.iter_lines() if line]
    assert events[0]["type"] == "started"
    assert events[-1]["type"] == "result"
    assert events[-1]["metrics"]["n_particles"] == SMALL["parameters"]["n_particles"]


def _live_until_finished(url: str, simulation_id: int, token: str) -> list[dict[str, Any]]:
    """Every message of a run's live socket (through nginx's upgrade) until it closes."""
    ws_url = url.replace("http://", "ws://") + f"/ws/simulations/{simulation_id}?token={token}"
    messages: list[dict[str, Any]] = []
    with connect(ws_url, proxy=None, open_timeout=10) as ws:
        for raw in ws:
            messages.append(json.loads(raw))
    return messages


def _browser_follows_a_run(url: str, username: str, simulation_id: int) -> list[str]:
    """Sign in through the form and watch a run's page follow it live, in Chromium."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import chromium_path

    seen: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{url}/accounts/login/")
            page.get_by_label("Username").fill(username)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(lambda u: "/accounts/login/" not in u)
            page.goto(f"{url}/runs/{simulation_id}/")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                text = page.locator(".status").first.inner_text()
                if not seen or seen[-1] != text:
                    seen.append(text)
                if text == "Succeeded":
                    break
                page.wait_for_timeout(100)
        finally:
            browser.close()
    return seen


@pytest.mark.timeout(600)  # a loaded CI machine: seven processes start on its few cores
@pytest.mark.parametrize("broker", list(BROKERS))
def test_scaled_out_behind_nginx_loses_nothing_when_one_of_each_is_killed(
    broker: str, member_and_projects: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    started = time.monotonic()
    username, projects = member_and_projects
    project_id = projects[broker]
    run_id = f"{RUN_ID}{broker}"
    var_dir = tmp_path / "var"
    # One signing key for every process, given to each as compose gives its secret (left
    # to themselves, processes starting at once on a fresh var directory each make one).
    key = tmp_path / "jwt_private.pem"
    key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    env = _env(
        var_dir,
        CELERY_BROKER_URL=BROKERS[broker],
        SIMLAB_TEST_RUN_ID=run_id,
        SIMLAB_JWT_PRIVATE_KEY=str(key),
    )
    with scaled_out(env, tmp_path) as platform:
        up_s = time.monotonic() - started
        token = obtain_tokens(platform.url, username, PASSWORD)["access"]
        with httpx.Client(base_url=platform.url, headers=bearer(token), timeout=60) as client:
            # Before the kill: the stream through the proxy, then runs in flight on both
            # workers.
            _proxy_stream(client)
            accepted = [_create(client, project_id, IN_FLIGHT, seed) for seed in range(6)]
            try:
                wait_for(
                    lambda: (
                        sum(s["status"] == "RUNNING" for s in _simulations(client, project_id)) >= 2
                    ),
                    timeout=60,
                    interval=0.2,
                )
            except AssertionError:
                raise AssertionError(f"never two runs at once\n{platform.outputs()}") from None

            # One of each kind, SIGKILLed; the one beat is started again (never two).
            for kind in ("web", "compute", "worker", "beat"):
                platform.one(kind).kill()
            killed_at = time.monotonic()
            beat = beat_process(platform.env, tmp_path / "logs", 1).start()
            platform.processes["beat"].append(beat)
            wait_in_log(beat, "beat: Starting")

            # After it: every request still answered, nginx passing over the dead upstreams.
            for _ in range(8):
                assert client.get(f"/api/v1/simulations/{accepted[0]}/").status_code == 200
                assert client.get("/api/v1/compute/me").status_code == 200
            accepted += [_create(client, project_id, SMALL, 100 + seed) for seed in range(2)]
            _proxy_stream(client)
            live = _live_until_finished(platform.url, accepted[-1], token)
            assert live[-1]["status"] == "SUCCEEDED", live
            seen = _browser_follows_a_run(platform.url, username, accepted[-2])
            assert seen[-1] == "Succeeded", seen

            # Every accepted run ends, exactly once; nothing left running.
            def all_finished() -> list[dict[str, Any]] | None:
                rows = _simulations(client, project_id)
                return rows if all(s["status"] in FINISHED for s in rows) else None

            try:
                rows = wait_for(all_finished, timeout=180, interval=0.5)
            except AssertionError:
                states = [(s["id"], s["status"]) for s in _simulations(client, project_id)]
                raise AssertionError(f"{states}\n{platform.outputs()}") from None
            recovered_s = time.monotonic() - killed_at

    assert sorted(s["id"] for s in rows) == sorted(accepted)  # no run lost, none doubled
    for row in rows:
        assert row["status"] == "SUCCEEDED" or row["error_message"], row
    assert all(row["status"] == "SUCCEEDED" for row in rows), [
        (row["id"], row["status"], row["error_message"]) for row in rows
    ]
    # The killed worker's run ran again; each run's files are one attempt's only.
    assert max(row["attempts"] for row in rows) >= 2, rows
    media = var_dir / "test-runs" / run_id / "media" / "simulations" / str(project_id)
    for row in rows:
        results = sorted(p.name for p in (media / str(row["id"])).glob("result-*.npz"))
        assert results == [f"result-{row['attempts']}.npz"], (row["id"], results)
    print(
        f"{broker}: up in {up_s:.1f} s, all {len(rows)} runs done {recovered_s:.1f} s after"
        f" the kill, {time.monotonic() - started:.1f} s in all"
    )

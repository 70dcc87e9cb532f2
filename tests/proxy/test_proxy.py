"""Django's async proxy to compute (`/api/v1/compute/...`) and compute's signature checks.

Real servers on loopback throughout: the platform server (Django + FastAPI behind the
router, the proxy hopping over HTTP to its own address), Django served alone in front of
a stopped or silent upstream, and, for memory, Django in a process of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings as django_settings
from websockets.exceptions import InvalidStatus

from simlab.compute.routes.diagnostics import pattern_chunks
from simlab.core.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, encode_actor, sign
from simlab.simulations.selectors import interactive_runs_live
from tests.conftest import wait_for
from tests.factories import PASSWORD, actor_for, api_key_for, member
from tests.http import assert_envelope, bearer, browser_login, obtain_tokens
from tests.server import ServedApp, serve
from tests.workers import ROOT, worker_env
from tests.ws import open_ws, recv

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def _expected_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in pattern_chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


# --- forwarding -------------------------------------------------------------------------------
def test_forwards_as_the_authenticated_user(asgi_server: ServedApp, user: Any, token: str) -> None:
    response = httpx.get(f"{asgi_server.url}/api/v1/compute/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    me = response.json()
    assert (me["id"], me["username"], me["source"]) == (user.pk, user.username, "api")

    organization = user.memberships.get().organization
    _, raw = api_key_for(user, organization, scopes=["read", "compute"])
    response = httpx.get(f"{asgi_server.url}/api/v1/compute/me", headers={"X-API-Key": raw})
    assert response.status_code == 200, response.text
    assert response.json()["organization"] == organization.pk
    assert response.json()["scopes"] == ["compute", "read"]

    assert_envelope(httpx.get(f"{asgi_server.url}/api/v1/compute/me"), 401, "not_authenticated")
    bad = bearer(token[:-4] + "AAAA")
    assert_envelope(httpx.get(f"{asgi_server.url}/api/v1/compute/me", headers=bad), 401)


def test_a_browser_session_reaches_compute_with_csrf_on_unsafe_methods(
    asgi_server: ServedApp, user: Any
) -> None:
    with httpx.Client(base_url=asgi_server.url, follow_redirects=True) as client:
        assert browser_login(client, user.username, PASSWORD).url.path == "/"
        response = client.get("/api/v1/compute/me")
        assert response.status_code == 200, response.text
        assert response.json()["id"] == user.pk
        # One Date and one Server header: the hop's own are not relayed beside ours.
        assert len(response.headers.get_list("date")) == 1
        assert len(response.headers.get_list("server")) == 1

        body = {"algorithm": "dla", "parameters": {"n_particles": -1}}
        refused = client.post("/api/v1/compute/stream", json=body)
        assert_envelope(refused, 403, "csrf_failed")
        csrf = {"X-CSRFToken": client.cookies["csrftoken"]}
        forwarded = client.post("/api/v1/compute/stream", json=body, headers=csrf)
        # Past the CSRF check and compute's signature check: compute validated the body.
        assert_envelope(forwarded, 400, "validation_error")

    assert_envelope(httpx.get(f"{asgi_server.url}/api/v1/compute/me"), 401, "not_authenticated")


def test_upstream_errors_and_request_ids_pass_through(asgi_server: ServedApp, token: str) -> None:
    headers = {**bearer(token), "X-Request-ID": "proxy-test-42"}
    response = httpx.post(
        f"{asgi_server.url}/api/v1/compute/stream",
        json={"algorithm": "dla", "parameters": {"n_particles": 0}},
        headers=headers,
    )
    body = assert_envelope(response, 400, "validation_error")
    assert list(body["error"]["details"]) == ["parameters.n_particles"]
    assert body["request_id"] == "proxy-test-42"  # compute saw the caller's request id
    missing = httpx.get(f"{asgi_server.url}/api/v1/compute/no-such-route", headers=headers)
    assert_envelope(missing, 404)


@pytest.mark.parametrize(
    "escape",
    [
        "%2e%2e/health",
        "%2e%2e/admin/",
        "%2E%2E/%2e%2e/ready",
        "..%2fhealth",
        "%252e%252e/health",
        "x/..%5c..%5chealth",
        "./../health",
    ],
)
def test_the_proxy_never_leaves_the_compute_prefix(
    asgi_server: ServedApp, token: str, escape: str
) -> None:
    """Paths sent verbatim (http.client normalises nothing): a dot segment, however it is
    spelled, is refused before any upstream request; Django's /health, /ready and the
    admin are out of reach."""
    host, port = asgi_server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(
            "GET", f"/api/v1/compute/{escape}", headers={"Authorization": f"Bearer {token}"}
        )
        answer = connection.getresponse()
        body = json.loads(answer.read())
    finally:
        connection.close()
    assert answer.status == 404, body
    assert body["error"]["code"] == "not_found"
    assert "status" not in body  # not /health's or /ready's answer


def test_streams_a_run_as_it_happens(asgi_server: ServedApp, token: str) -> None:
    body = {"algorithm": "dla", "parameters": {"n_particles": 2000}, "seed": 9}
    url = f"{asgi_server.url}/api/v1/compute/stream"
    with httpx.stream("POST", url, json=body, headers=bearer(token), timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        events = [json.loads(line) for line in response.iter_lines() if line]
    assert events[0]["type"] == "started"
    assert events[-1]["type"] == "result"
    frames = [e for e in events if e["type"] == "frame"]
    assert sum(len(e["particles"]) for e in frames) == events[-1]["metrics"]["n_particles"]


def test_client_disconnect_closes_the_upstream_request(
    asgi_server: ServedApp, token: str, user: Any
) -> None:
    body = {"algorithm": "dla", "parameters": {"n_particles": 150_000}}
    url = f"{asgi_server.url}/api/v1/compute/stream"
    with httpx.stream("POST", url, json=body, headers=bearer(token), timeout=60) as response:
        lines = response.iter_lines()
        assert json.loads(next(lines))["type"] == "started"
        assert json.loads(next(lines))["type"] == "frame"
        assert interactive_runs_live(user.pk) == 1
    # Compute cancels a run when its response is closed: so the proxy closed it.
    wait_for(lambda: interactive_runs_live(user.pk) == 0, timeout=3)


def test_a_stream_the_client_left_before_reading_is_released_by_the_close(
    asgi_server: ServedApp, token: str
) -> None:
    """The client went away between the view's answer and the first chunk: the body was
    never iterated, and Django's close() of the response still gives the upstream back."""
    from asgiref.sync import sync_to_async
    from django.test import AsyncRequestFactory
    from prometheus_client import REGISTRY

    from simlab.proxy.views import compute_proxy

    def in_use() -> float:
        return REGISTRY.get_sample_value("simlab_proxy_upstream_in_use") or 0.0

    async def answered_then_abandoned() -> tuple[float, float, float, int]:
        request = AsyncRequestFactory().get("/api/v1/compute/me", headers=bearer(token))
        before = in_use()
        response = await compute_proxy(request, "me")
        opened = in_use()
        await sync_to_async(response.close)()
        return before, opened, in_use(), response.status_code

    before, opened, after, status = asyncio.run(answered_then_abandoned())
    assert status == 200
    assert opened == before + 1
    assert after == before


def test_byte_stream_arrives_intact(asgi_server: ServedApp, token: str) -> None:
    size = 5_000_003  # not a multiple of any chunk size
    url = f"{asgi_server.url}/api/v1/compute/diagnostics/bytes?size={size}&chunk=4096"
    digest = hashlib.sha256()
    received = 0
    with httpx.stream("GET", url, headers=bearer(token), timeout=60) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            digest.update(chunk)
            received += len(chunk)
    assert received == size
    assert digest.hexdigest() == _expected_sha256(size)


# --- signatures, straight to compute -----------------------------------------------------------
def _signed(user: Any, *, method: str = "GET", path: str = "/compute/me", body: bytes = b"",
            now: float | None = None) -> dict[str, str]:  # fmt: skip
    return sign(
        django_settings.SIMLAB_SERVICE_SIGNING_KEY,
        method=method,
        path=path,
        query="",
        body_sha256=hashlib.sha256(body).hexdigest(),
        actor=actor_for(user),
        request_id="signed-test",
        now=now,
    )


def test_compute_accepts_a_signed_request_once(asgi_server: ServedApp, user: Any) -> None:
    headers = _signed(user)
    first = httpx.get(f"{asgi_server.url}/compute/me", headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["id"] == user.pk
    replay = httpx.get(f"{asgi_server.url}/compute/me", headers=headers)
    assert_envelope(replay, 401, "signature_replayed")


def test_compute_refuses_tampered_stale_and_misdirected_signatures(
    asgi_server: ServedApp, user: Any
) -> None:
    url = f"{asgi_server.url}/compute/me"
    tampered = {**_signed(user), SIGNATURE_HEADER: "0" * 64}
    assert_envelope(httpx.get(url, headers=tampered), 401, "signature_invalid")

    other = member()
    impersonating = {**_signed(user), "X-SimLab-Actor": encode_actor(actor_for(other))}
    assert_envelope(httpx.get(url, headers=impersonating), 401, "signature_invalid")

    stale = _signed(user, now=time.time() - 10 * django_settings.SIMLAB_SERVICE_SIGNATURE_MAX_AGE_S)
    assert_envelope(httpx.get(url, headers=stale), 401, "signature_expired")
    assert int(stale[TIMESTAMP_HEADER]) < time.time() - 60

    for_other_path = _signed(user, path="/compute/projects/1")
    assert_envelope(httpx.get(url, headers=for_other_path), 401, "signature_invalid")

    body = json.dumps({"algorithm": "dla", "parameters": {"n_particles": 10}}).encode()
    signed_for_body = _signed(user, method="POST", path="/compute/stream", body=body)
    altered = body.replace(b"10", b"99")
    response = httpx.post(
        f"{asgi_server.url}/compute/stream",
        content=altered,
        headers={**signed_for_body, "Content-Type": "application/json"},
    )
    assert_envelope(response, 401, "signature_invalid")

    partial = {"X-SimLab-Signature": "abc"}
    body_missing = assert_envelope(httpx.get(url, headers=partial), 401, "signature_missing")
    assert "X-SimLab-Timestamp" in body_missing["error"]["details"]["missing"]
    assert httpx.get(f"{asgi_server.url}/compute/health", headers=tampered).status_code == 200


def test_compute_can_require_signatures(asgi_server: ServedApp, user: Any, token: str,
                                        settings: Any) -> None:  # fmt: skip
    settings.SIMLAB_COMPUTE_REQUIRE_SIGNATURE = True
    url = f"{asgi_server.url}/compute/me"
    assert_envelope(httpx.get(url, headers=bearer(token)), 401, "signature_missing")
    assert httpx.get(url, headers=_signed(user)).status_code == 200
    proxied = httpx.get(f"{asgi_server.url}/api/v1/compute/me", headers=bearer(token))
    assert proxied.status_code == 200, proxied.text
    assert httpx.get(f"{asgi_server.url}/compute/health").status_code == 200


def test_required_signatures_hold_for_websockets(
    asgi_server: ServedApp, user: Any, token: str, settings: Any
) -> None:
    """Unsigned handshakes were let through although compute accepted signed requests
    only; now they are refused before any message, and a signed one acts as its user."""
    settings.SIMLAB_COMPUTE_REQUIRE_SIGNATURE = True
    for path in ("/ws/compute", f"/ws/projects/1?token={token}"):
        with pytest.raises(InvalidStatus) as refused:
            open_ws(asgi_server, path if "token" in path else f"{path}?token={token}")
        assert refused.value.response.status_code == 403
    forged = {**_signed(user, path="/ws/compute"), SIGNATURE_HEADER: "0" * 64}
    with pytest.raises(InvalidStatus):
        open_ws(asgi_server, "/ws/compute", additional_headers=forged)
    with open_ws(
        asgi_server, "/ws/compute", additional_headers=_signed(user, path="/ws/compute")
    ) as ws:
        ready = recv(ws)
    assert (ready["type"], ready["user"]) == ("ready", user.username)


# --- upstream failures -------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_upstream() -> Iterator[str]:
    """A peer that accepts connections and reads requests but never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        server.close()


def test_stopped_upstream_is_a_502(settings: Any, user: Any) -> None:
    settings.SIMLAB_COMPUTE_URL = f"http://127.0.0.1:{_free_port()}"
    from simlab.config.asgi import django_application

    with serve(django_application) as served:
        token = obtain_tokens(served.url, user.username, PASSWORD)["access"]
        response = httpx.get(f"{served.url}/api/v1/compute/me", headers=bearer(token))
    assert_envelope(response, 502, "bad_gateway")


def test_slow_upstream_is_a_504(settings: Any, user: Any, silent_upstream: str) -> None:
    settings.SIMLAB_COMPUTE_URL = silent_upstream
    settings.SIMLAB_PROXY = {**settings.SIMLAB_PROXY, "read_timeout_s": 0.5}
    from simlab.config.asgi import django_application

    with serve(django_application) as served:
        token = obtain_tokens(served.url, user.username, PASSWORD)["access"]
        started = time.monotonic()
        response = httpx.get(f"{served.url}/api/v1/compute/me", headers=bearer(token))
        elapsed = time.monotonic() - started
    assert_envelope(response, 504, "gateway_timeout")
    assert 0.5 <= elapsed < 5


# --- memory: Django in a process of its own ----------------------------------------------------
def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


@pytest.fixture
def django_process(asgi_server: ServedApp, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`uvicorn simlab.config.asgi:django_application` in its own process, proxying to
    the platform server's compute side."""
    port = _free_port()
    log = (tmp_path / "django.log").open("wb")
    env = worker_env(SIMLAB_COMPUTE_URL=asgi_server.url)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "simlab.config.asgi:django_application",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or _answers(url), timeout=60)
        assert process.poll() is None, (tmp_path / "django.log").read_text()
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_proxy_streams_256_mb_in_bounded_memory(django_process: tuple[str, int], user: Any) -> None:
    url, pid = django_process
    token = obtain_tokens(url, user.username, PASSWORD)["access"]
    # Warm up (imports, first connections), then measure the peak from here on.
    warm = httpx.get(f"{url}/api/v1/compute/diagnostics/bytes?size=1000000", headers=bearer(token))
    assert warm.status_code == 200
    assert len(warm.content) == 1_000_000
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
    baseline_kib = _kib(pid, "VmRSS")

    size = 256 << 20
    digest = hashlib.sha256()
    received = 0
    with httpx.stream(
        "GET",
        f"{url}/api/v1/compute/diagnostics/bytes?size={size}",
        headers=bearer(token),
        timeout=120,
    ) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            digest.update(chunk)
            received += len(chunk)
    growth_mib = (_kib(pid, "VmHWM") - baseline_kib) / 1024
    print(f"proxy 256 MiB stream: Django peak RSS growth {growth_mib:.1f} MiB")

    assert received == size
    assert digest.hexdigest() == _expected_sha256(size)
    assert growth_mib < 32, f"Django's peak memory grew by {growth_mib:.1f} MiB"

"""`/ws/compute` over a real server (uvicorn on loopback) with the `websockets` client."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import numpy as np
import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from simlab import engine
from simlab.compute.realtime.runs import Limits, get_pool
from simlab.compute.routes.ws_compute import ComputeSocket
from simlab.simulations.models import InteractiveSlot
from simlab.simulations.selectors import interactive_runs_live
from simlab.simulations.services import interactive_slot_take
from simlab.usage.models import Kind, UsageEvent
from simlab.usage.services import usage_record
from tests.conftest import wait_for
from tests.factories import PASSWORD, MembershipFactory, actor_for, api_key_for, member
from tests.http import obtain_tokens
from tests.server import ServedApp
from tests.ws import open_ws as open_socket
from tests.ws import recv, recv_until_closed, send

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

# A DLA job of seconds even on a fast machine: the interactive maximum of particles, in 3D.
BIG = 200_000
BIG_RUN = {"n_particles": BIG, "dimension": 3}


def open_ws(server: ServedApp, query: str = "", **kwargs: Any) -> ClientConnection:
    return open_socket(server, "/ws/compute" + query, **kwargs)


def until(ws: ClientConnection, *types: str, timeout: float = 90) -> list[dict[str, Any]]:
    """Every message up to and including the first one of `types`."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        message = recv(ws, timeout=max(0.1, deadline - time.monotonic()))
        seen.append(message)
        if message["type"] in types:
            return seen


@pytest.fixture
def authed(asgi_server: ServedApp, token: str) -> Iterator[ClientConnection]:
    with open_ws(asgi_server, f"?token={token}") as ws:
        assert recv(ws)["type"] == "ready"
        yield ws


@pytest.fixture(autouse=True)
def _warm_pool(asgi_server: ServedApp) -> None:
    # Two warm workers, so timings measure runs, not process start-up.
    get_pool().prestart(2)


def run_to_end(ws: ClientConnection, **run: Any) -> list[dict[str, Any]]:
    send(ws, type="run", **run)
    return until(ws, "result", "cancelled", "error")


def test_dla_frames_add_up_to_the_engines_cluster(authed: ClientConnection) -> None:
    messages = run_to_end(authed, algorithm="dla", parameters={"n_particles": 3000}, seed=7)
    started, *frames, result = messages
    assert started["type"] == "started"
    assert started["seed"] == 7
    assert result["type"] == "result", result
    assert {m["type"] for m in frames} == {"frame"}
    assert [m["seq"] for m in frames] == list(range(len(frames)))
    assert {m["run_id"] for m in messages} == {started["run_id"]}
    assert frames[-1]["progress"] == 1.0
    streamed = np.array([p for m in frames for p in m["particles"]])
    expected = engine.run("dla", {"n_particles": 3000}, seed=7).arrays["positions"]
    assert streamed.shape == expected.shape == (3000, 2)
    np.testing.assert_allclose(streamed, expected, rtol=0, atol=0.5e-4 + 1e-9)
    assert result["metrics"]["n_particles"] == 3000


def test_api_key_in_first_message_and_subprotocol(asgi_server: ServedApp, user: Any) -> None:
    organization = user.memberships.first().organization
    _, raw = api_key_for(user, organization)
    with open_ws(asgi_server) as ws:
        send(ws, type="auth", token=raw)
        ready = recv(ws)
        assert ready["type"] == "ready"
        assert ready["user"] == user.username
        assert ready["limits"]["max_particles"] == django_settings.SIMLAB_REALTIME_MAX_PARTICLES
    with open_ws(asgi_server, subprotocols=["simlab.v1", f"bearer.{raw}"]) as ws:
        assert ws.subprotocol == "simlab.v1"
        assert recv(ws)["type"] == "ready"


def _expired_token(user: Any) -> str:
    jwt_settings = django_settings.SIMPLE_JWT
    now = datetime.now(UTC)
    claims = {
        "token_type": "access",
        "user_id": str(user.pk),
        "jti": "x" * 32,
        "iat": now - timedelta(hours=2),
        "exp": now - timedelta(hours=1),
        "iss": jwt_settings["ISSUER"],
        "aud": jwt_settings["AUDIENCE"],
    }
    return jwt.encode(claims, jwt_settings["SIGNING_KEY"], algorithm=jwt_settings["ALGORITHM"])


def _assert_policy_close(ws: ClientConnection, code: str) -> None:
    error = recv(ws)
    assert error["type"] == "error"
    assert error["error"]["code"] == code, error
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


def test_bad_or_expired_token_closes_with_1008(asgi_server: ServedApp, user: Any) -> None:
    with open_ws(asgi_server, "?token=not-a-token") as ws:
        _assert_policy_close(ws, "token_invalid")
    with open_ws(asgi_server, f"?token={_expired_token(user)}") as ws:
        _assert_policy_close(ws, "token_expired")
    with open_ws(asgi_server) as ws:  # first message
        send(ws, type="auth", token="slk_deadbeef_nope")
        _assert_policy_close(ws, "api_key_invalid")
    with open_ws(asgi_server) as ws:  # anything but auth first: nothing is run
        send(ws, type="run", algorithm="dla", parameters={"n_particles": 10})
        _assert_policy_close(ws, "not_authenticated")


def test_invalid_input_is_an_error_frame_and_the_socket_stays_usable(
    asgi_server: ServedApp, token: str, settings: Any
) -> None:
    settings.SIMLAB_REALTIME_MAX_PARTICLES = 50_000  # limits are read when a connection opens
    with open_ws(asgi_server, f"?token={token}") as ws:
        assert recv(ws)["limits"]["max_particles"] == 50_000
        _refusals_leave_the_socket_usable(ws)


def _refusals_leave_the_socket_usable(authed: ClientConnection) -> None:
    send(authed, type="run", algorithm="dla", parameters={"n_particles": -5})
    error = recv(authed)
    assert error["type"] == "error"
    assert set(error) >= {"error", "status_code", "timestamp", "request_id"}
    assert error["error"]["code"] == "validation_error"
    assert list(error["error"]["details"]) == ["parameters.n_particles"]

    send(authed, type="run", algorithm="nope")
    assert "algorithm" in recv(authed)["error"]["details"]
    send(authed, type="run", algorithm="dla", seed=-1)
    assert "seed" in recv(authed)["error"]["details"]
    send(authed, type="run", algorithm="dla", parameters={"n_particles": BIG})
    error = recv(authed)
    assert "parameters.n_particles" in error["error"]["details"], error
    authed.send("{not json")
    assert recv(authed)["error"]["code"] == "parse_error"
    send(authed, type="launch")
    assert recv(authed)["error"]["code"] == "bad_message"

    messages = run_to_end(authed, algorithm="dla", parameters={"n_particles": 200}, seed=1)
    assert messages[-1]["type"] == "result"
    assert sum(len(m["particles"]) for m in messages if m["type"] == "frame") == 200


def test_cancel_stops_the_run_promptly(authed: ClientConnection, user: Any) -> None:
    send(authed, type="run", algorithm="dla", parameters=BIG_RUN, seed=3)
    until(authed, "frame")
    # Wait until particles flow, then cancel.
    while not recv(authed).get("particles"):
        pass
    sent = time.monotonic()
    send(authed, type="cancel")
    messages = until(authed, "cancelled", "result", timeout=10)
    elapsed = time.monotonic() - sent
    assert messages[-1]["type"] == "cancelled", messages[-1]
    assert messages[-1]["reason"] == "cancelled"
    print(f"cancel acknowledged after {elapsed * 1000:.0f} ms")
    assert elapsed < 2.0, elapsed
    wait_for(lambda: get_pool().busy == 0, timeout=5)
    assert interactive_runs_live(user.pk) == 0  # freed before `cancelled` was sent
    send(authed, type="ping")
    assert recv(authed) == {"type": "pong"}
    send(authed, type="cancel")
    assert recv(authed)["error"]["code"] == "no_active_run"


def test_per_user_concurrency_limit(asgi_server: ServedApp, token: str, settings: Any) -> None:
    settings.SIMLAB_REALTIME_MAX_RUNS_PER_USER = 1
    with open_ws(asgi_server, f"?token={token}") as first, open_ws(asgi_server) as second:
        assert recv(first)["type"] == "ready"
        send(second, type="auth", token=token)
        assert recv(second)["type"] == "ready"
        send(first, type="run", algorithm="dla", parameters=BIG_RUN)
        assert recv(first)["type"] == "started"
        send(second, type="run", algorithm="dla", parameters={"n_particles": 100})
        error = recv(second)
        assert error["type"] == "error"
        assert error["error"]["code"] == "too_many_runs", error
        assert error["status_code"] == 429
        send(first, type="cancel")
        until(first, "cancelled")
        messages = run_to_end(second, algorithm="dla", parameters={"n_particles": 100})
        assert messages[-1]["type"] == "result"


def test_the_limit_counts_runs_of_every_process(
    asgi_server: ServedApp, token: str, user: Any, settings: Any
) -> None:
    """Runs live in another replica hold slots in the database: this process refuses a
    third one, and allows it once their process is gone and its leases have ended."""
    settings.SIMLAB_REALTIME_MAX_RUNS_PER_USER = 2
    elsewhere = [interactive_slot_take(actor_for(user), limit=2, lease_s=60) for _ in range(2)]
    with open_ws(asgi_server, f"?token={token}") as ws:
        assert recv(ws)["type"] == "ready"
        send(ws, type="run", algorithm="dla", parameters={"n_particles": 100})
        error = recv(ws)
        assert (error["type"], error["error"]["code"]) == ("error", "too_many_runs"), error
        InteractiveSlot.objects.filter(holder__in=elsewhere).update(
            lease_until=timezone.now() - timedelta(seconds=1)
        )
        messages = run_to_end(ws, algorithm="dla", parameters={"n_particles": 100})
        assert messages[-1]["type"] == "result"


def test_closing_the_socket_cancels_its_run(asgi_server: ServedApp, token: str, user: Any) -> None:
    with open_ws(asgi_server, f"?token={token}") as ws:
        recv(ws)
        send(ws, type="run", algorithm="dla", parameters=BIG_RUN)
        until(ws, "frame")
    wait_for(lambda: get_pool().busy == 0 and interactive_runs_live(user.pk) == 0, timeout=2)


def test_runs_count_against_the_organisations_daily_cpu(
    asgi_server: ServedApp, token: str, user: Any, settings: Any
) -> None:
    """A run's CPU is recorded before its result goes out; a run left by closing the
    socket is recorded once its worker stops; the day's CPU used up refuses the next."""
    organization_id = user.memberships.get().organization_id
    with open_ws(asgi_server, f"?token={token}") as ws:
        recv(ws)
        result = run_to_end(ws, algorithm="dla", parameters={"n_particles": 3000}, seed=5)[-1]
        assert result["type"] == "result", result
        charged = UsageEvent.objects.get(organization_id=organization_id)
        engine_cpu_ms = 1000 * sum(v for k, v in result["timings"].items() if k.endswith("cpu_s"))
        assert charged.kind == Kind.CPU_MS
        assert charged.quantity >= 0.9 * engine_cpu_ms > 0  # the worker's CPU, run included
        assert (charged.subject_type, charged.user_id) == ("interactive_run", user.pk)

        send(ws, type="run", algorithm="dla", parameters=BIG_RUN)
        until(ws, "frame")
    wait_for(lambda: UsageEvent.objects.filter(organization_id=organization_id).count() == 2)

    settings.SIMLAB_MAX_CPU_S_PER_ORG_DAY = 60
    with transaction.atomic():  # the organisation's simulations used the day's CPU
        usage_record(organization_id=organization_id, key="sim", kind=Kind.CPU_MS, quantity=60_000)
    with open_ws(asgi_server, f"?token={token}") as ws:
        recv(ws)
        send(ws, type="run", algorithm="dla", parameters={"n_particles": 100})
        error = recv(ws)
        assert (error["type"], error["status_code"]) == ("error", 429), error
        assert error["error"]["code"] == "cpu_quota_exceeded"
        other = MembershipFactory(user=user)  # another of the user's organisations, asked for
        messages = run_to_end(
            ws,
            algorithm="dla",
            parameters={"n_particles": 100},
            organization_id=other.organization_id,
        )
        assert messages[-1]["type"] == "result", messages[-1]
        assert UsageEvent.objects.filter(organization_id=other.organization_id).count() == 1


def _small_job_seconds(server: ServedApp, token: str) -> float:
    with open_ws(server, f"?token={token}") as ws:
        recv(ws)
        started = time.perf_counter()
        messages = run_to_end(ws, algorithm="dla", parameters={"n_particles": 2000}, seed=11)
        elapsed = time.perf_counter() - started
    assert messages[-1]["type"] == "result"
    return elapsed


@pytest.mark.slow
@pytest.mark.solo  # a time bar: beside the other stack's run, two cores are not two
def test_a_big_run_does_not_slow_another_client(
    asgi_server: ServedApp, token: str, user: Any
) -> None:
    other = member()
    other_token = obtain_tokens(asgi_server.url, other.username, PASSWORD)["access"]
    _small_job_seconds(asgi_server, other_token)  # both workers have run DLA once
    alone = min(_small_job_seconds(asgi_server, other_token) for _ in range(3))

    big_done = threading.Event()
    big_messages: list[dict[str, Any]] = []
    with open_ws(asgi_server, f"?token={token}") as big:
        recv(big)
        send(big, type="run", algorithm="dla", parameters=BIG_RUN, seed=5)

        def drain() -> None:
            while big_messages[-1:] == [] or big_messages[-1]["type"] in ("started", "frame"):
                big_messages.append(recv(big, timeout=100))
            big_done.set()

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        wait_for(lambda: any(m.get("particles") for m in big_messages), timeout=60, interval=0.01)
        beside = _small_job_seconds(asgi_server, other_token)
        assert not big_done.is_set(), "the small job must finish while the big one runs"
        reader.join(timeout=100)
    assert big_messages[-1]["type"] == "result"
    frames = [m for m in big_messages if m["type"] == "frame"]
    assert sum(len(m["particles"]) for m in frames) == BIG
    # Frames come at a steady rate (30/s configured; at least 20/s on a busy machine).
    streaming = [m for m in frames if m["progress"] < 1.0]
    print(f"small job alone {alone:.3f} s, beside a {BIG}-particle run {beside:.3f} s")
    assert beside < max(4 * alone, alone + 1.0), (alone, beside)
    assert len(streaming) > 0


@pytest.mark.slow
@pytest.mark.solo  # a time bar: beside the other stack's run, two cores are not two
def test_frame_rate_is_steady(authed: ClientConnection) -> None:
    send(authed, type="run", algorithm="dla", parameters=BIG_RUN, seed=2)
    until(authed, "started")
    arrivals = []
    while True:
        message = recv(authed)
        if message["type"] != "frame":
            break
        arrivals.append(time.monotonic())
    assert message["type"] == "result"
    duration = arrivals[-1] - arrivals[0]
    rate = (len(arrivals) - 1) / duration
    gaps = np.diff(arrivals)
    print(f"{len(arrivals)} frames in {duration:.2f} s: {rate:.1f}/s, max gap {gaps.max():.3f} s")
    assert duration > 0.5
    # The server's clock ticks 30 times a second (no garbage-collection stalls: particles
    # are written to JSON text without a list per particle).
    assert np.median(gaps) <= 1 / 20, np.median(gaps)
    assert rate >= 20, rate


def test_a_client_that_stops_reading_is_dropped() -> None:
    """Frames go through a bounded queue: when a client's socket stops draining, the
    connection is dropped and its runs cancelled rather than buffered without bound.
    (In-process: on loopback the kernel's socket buffers absorb megabytes first.)"""

    class StuckSocket:
        sent = 0

        async def send_text(self, text: str) -> None:
            self.sent += 1
            await asyncio.Event().wait()  # the client never reads

    class Run:
        cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

    async def scenario() -> tuple[ComputeSocket, Run, StuckSocket]:
        stuck, run = StuckSocket(), Run()
        limits = dataclasses.replace(Limits.current(), send_queue=3)
        connection = ComputeSocket(stuck, limits)  # type: ignore[arg-type]
        idle = asyncio.create_task(asyncio.sleep(0))
        connection.runs["r1"] = (run, idle)  # type: ignore[assignment]
        sender = asyncio.create_task(connection.sender())
        for seq in range(3 + 1):
            connection.send({"type": "frame", "seq": seq})
            await asyncio.sleep(0)
        assert not connection.dropped.is_set()  # one in the socket, three queued
        connection.send({"type": "frame", "seq": 4})
        sender.cancel()
        await asyncio.gather(sender, idle, return_exceptions=True)
        return connection, run, stuck

    connection, run, stuck = asyncio.run(scenario())
    assert stuck.sent == 1
    assert connection.dropped.is_set()
    assert run.cancelled
    assert connection.outbox.qsize() == 3


def test_a_dead_worker_is_an_error_frame_and_the_pool_recovers(
    authed: ClientConnection,
) -> None:
    send(authed, type="run", algorithm="dla", parameters=BIG_RUN)
    until(authed, "frame")
    os.kill(get_pool().pids[0], signal.SIGKILL)  # the busy worker
    error = until(authed, "error", "result", timeout=10)[-1]
    assert error["type"] == "error"
    assert error["status_code"] == 500
    assert error["error"]["code"] == "server_error"
    messages = run_to_end(authed, algorithm="dla", parameters={"n_particles": 100})
    assert messages[-1]["type"] == "result"


def test_idle_and_oversized_connections_are_closed(
    asgi_server: ServedApp, token: str, settings: Any
) -> None:
    settings.SIMLAB_REALTIME_IDLE_TIMEOUT_S = 0.5
    settings.SIMLAB_REALTIME_MAX_MESSAGE_BYTES = 1_024
    with open_ws(asgi_server, f"?token={token}") as ws:
        assert recv(ws)["type"] == "ready"
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001
        assert time.monotonic() - started < 5
    with open_ws(asgi_server, f"?token={token}") as ws:
        assert recv(ws)["type"] == "ready"
        send(ws, type="run", algorithm="dla", parameters={"n_particles": 10}, pad="x" * 2_000)
        assert recv(ws)["error"]["code"] == "message_too_big"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009


def test_an_api_key_without_the_compute_scope_may_not_run(
    asgi_server: ServedApp, user: Any
) -> None:
    _, raw = api_key_for(user, user.memberships.first().organization, scopes=["read"])
    with open_ws(asgi_server, f"?token={raw}") as ws:
        assert recv(ws)["type"] == "ready"
        send(ws, type="run", algorithm="dla", parameters={"n_particles": 10})
        error = recv(ws)
        assert error["error"]["code"] == "missing_scope"
        assert error["status_code"] == 403


def test_a_socket_that_offers_no_credentials_is_told_how_and_closed_soon(
    asgi_server: ServedApp,
) -> None:
    started = time.monotonic()
    with open_socket(asgi_server, "/ws/compute") as ws:
        messages, code = recv_until_closed(ws, timeout=30)
    waited = time.monotonic() - started
    assert code == 1008
    assert "?token=" in messages[-1]["error"]["message"]
    assert waited < 10  # it waited 10 s, and said only "in time"

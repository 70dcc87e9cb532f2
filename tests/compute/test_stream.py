"""`POST /compute/stream`: the same run events as the WebSocket, as NDJSON over HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest

from simlab import engine
from simlab.compute.realtime.runs import get_pool
from simlab.simulations.selectors import interactive_runs_live
from tests.conftest import wait_for
from tests.factories import PASSWORD
from tests.http import assert_envelope, bearer, obtain_tokens
from tests.server import ServedApp

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def headers(asgi_server: ServedApp, user: Any) -> dict[str, str]:
    return bearer(obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"])


def test_streams_frames_and_a_result(asgi_server: ServedApp, headers: dict[str, str]) -> None:
    body = {"algorithm": "dla", "parameters": {"n_particles": 1500}, "seed": 4}
    with httpx.stream(
        "POST", f"{asgi_server.url}/compute/stream", json=body, headers=headers, timeout=60
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        assert response.headers["x-request-id"]
        events = [json.loads(line) for line in response.iter_lines() if line]
    started, *frames, result = events
    assert started["type"] == "started"
    assert started["seed"] == 4
    assert {e["type"] for e in frames} == {"frame"}
    assert [e["seq"] for e in frames] == list(range(len(frames)))
    assert result["type"] == "result"
    assert result["metrics"]["n_particles"] == 1500
    streamed = np.array([p for e in frames for p in e["particles"]])
    expected = engine.run("dla", {"n_particles": 1500}, seed=4).arrays["positions"]
    np.testing.assert_allclose(streamed, expected, rtol=0, atol=0.5e-4 + 1e-9)


def test_refusals_are_envelopes_before_anything_runs(
    asgi_server: ServedApp, headers: dict[str, str], settings: Any
) -> None:
    url = f"{asgi_server.url}/compute/stream"
    body = {"algorithm": "dla", "parameters": {"n_particles": 10}}
    assert_envelope(httpx.post(url, json=body), 401, "not_authenticated")
    bad = {"algorithm": "dla", "parameters": {"n_particles": 0}}
    response = httpx.post(url, json=bad, headers=headers)
    details = assert_envelope(response, 400, "validation_error")["error"]["details"]
    assert list(details) == ["parameters.n_particles"]
    settings.SIMLAB_REALTIME_MAX_PARTICLES = 1_000
    big = {"algorithm": "dla", "parameters": {"n_particles": 5_000}}
    response = httpx.post(url, json=big, headers=headers)
    assert "parameters.n_particles" in assert_envelope(response, 400)["error"]["details"]
    response = httpx.post(url, json={"algorithm": "dla", "seed": "x"}, headers=headers)
    assert "seed" in assert_envelope(response, 422)["error"]["details"]


def test_disconnecting_cancels_the_run(
    asgi_server: ServedApp, headers: dict[str, str], user: Any
) -> None:
    body = {"algorithm": "dla", "parameters": {"n_particles": 100_000}}
    with httpx.stream(
        "POST", f"{asgi_server.url}/compute/stream", json=body, headers=headers, timeout=60
    ) as response:
        lines = response.iter_lines()
        assert json.loads(next(lines))["type"] == "started"
        assert json.loads(next(lines))["type"] == "frame"
        assert interactive_runs_live(user.pk) == 1
    wait_for(lambda: get_pool().busy == 0 and interactive_runs_live(user.pk) == 0, timeout=2)

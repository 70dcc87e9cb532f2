"""The callback extension: a signed POST of a run's status when it ends, received by a
real HTTP server on loopback (standing in for the submitter's service)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simlab.simulations import execution
from simlab.simulations.models import Status
from simlab.wes import callbacks
from tests.factories import ProjectFactory
from tests.http import bearer
from tests.server import ServedApp, serve

pytestmark = pytest.mark.django_db(transaction=True)


class Receiver:
    """An ASGI app that keeps every POST it receives (headers and body)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append((headers, body))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def wait(self, count: int, timeout: float = 15) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} callbacks"
            time.sleep(0.05)
        return self.received


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    app = Receiver()
    with serve(app, lifespan="off") as served:
        yield app, f"{served.url}/hooks/wes"


def test_a_run_that_ends_calls_back_signed(
    asgi_server: ServedApp, token: str, user: Any, receiver: tuple[Receiver, str]
) -> None:
    app, url = receiver
    project = ProjectFactory(organization=user.memberships.get().organization)
    client = httpx.Client(base_url=f"{asgi_server.url}/ga4gh/wes/v1", headers=bearer(token))

    def submit(**engine: str) -> dict[str, Any]:
        response = client.post(
            "/runs",
            files={
                "workflow_type": (None, "SimLab"),
                "workflow_url": (None, "dla"),
                "workflow_params": (None, '{"n_particles": 200}'),
                "tags": (None, json.dumps({"project": str(project.pk)})),
                "workflow_engine_parameters": (None, json.dumps(engine)),
            },
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    # No secret given: one is made and shown once; the run's log does not show it.
    cancelled = submit(callback_url=url)
    secret = cancelled["callback_secret"]
    log = client.get(f"/runs/{cancelled['run_id']}").json()
    assert "callback_secret" not in log["request"]["workflow_engine_parameters"]
    client.post(f"/runs/{cancelled['run_id']}/cancel")
    ((headers, body),) = app.wait(1)
    assert callbacks.verify(secret, headers, body)
    assert not callbacks.verify("another secret", headers, body)
    assert json.loads(body)["run_id"] == cancelled["run_id"]
    assert json.loads(body)["state"] == "CANCELED"

    finished = submit(callback_url=url, callback_secret="shared-secret")
    assert "callback_secret" not in finished
    assert execution.execute(int(finished["run_id"])) == Status.SUCCEEDED
    _, (headers, body) = app.wait(2)
    assert callbacks.verify("shared-secret", headers, body)
    assert json.loads(body) == {
        "run_id": finished["run_id"],
        "state": "COMPLETE",
        "end_time": json.loads(body)["end_time"],
    }
    assert json.loads(body)["end_time"]


def test_a_dead_callback_url_does_not_stop_the_run(
    asgi_server: ServedApp, token: str, user: Any
) -> None:
    project = ProjectFactory(organization=user.memberships.get().organization)
    response = httpx.post(
        f"{asgi_server.url}/ga4gh/wes/v1/runs",
        headers=bearer(token),
        json={
            "workflow_type": "SimLab",
            "workflow_url": "dla",
            "workflow_params": {"n_particles": 200},
            "tags": {"project": str(project.pk)},
            "callback_url": "http://127.0.0.1:9/nobody-listens",
        },
    )
    assert response.status_code == 200, response.text
    assert execution.execute(int(response.json()["run_id"])) == Status.SUCCEEDED

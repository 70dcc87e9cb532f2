"""`Idempotency-Key` on creates and batches, over real HTTP."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from simlab.simulations.models import Simulation
from tests.factories import ProjectFactory
from tests.http import assert_envelope, bearer, obtain_tokens
from tests.server import ServedApp

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

ONE = {"algorithm": "dla", "parameters": {"n_particles": 100}, "seed": 3, "queue": False}


@pytest.fixture
def project(user: Any) -> Any:
    return ProjectFactory(organization=user.memberships.get().organization)


def _post(server: ServedApp, path: str, token: str, body: Any, key: str | None) -> httpx.Response:
    headers = bearer(token) | ({"Idempotency-Key": key} if key is not None else {})
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=60)


def test_the_same_key_and_body_create_once_and_answer_alike(
    asgi_server: ServedApp, token: str, project: Any
) -> None:
    path = f"/api/v1/projects/{project.pk}/simulations/"
    answers = [_post(asgi_server, path, token, ONE, "create-7") for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    assert "idempotent-replayed" not in answers[0].headers
    assert answers[2].headers["idempotent-replayed"] == "true"
    assert Simulation.objects.filter(project=project).count() == 1
    # Without a key, each request creates.
    _post(asgi_server, path, token, ONE, None)
    _post(asgi_server, path, token, ONE, None)
    assert Simulation.objects.filter(project=project).count() == 3


def test_a_key_reused_with_another_body_is_a_422(
    asgi_server: ServedApp, token: str, project: Any
) -> None:
    path = f"/api/v1/projects/{project.pk}/simulations/"
    assert _post(asgi_server, path, token, ONE, "k1").status_code == 201
    other = _post(asgi_server, path, token, {**ONE, "seed": 4}, "k1")
    body = assert_envelope(other, 422, "idempotency_key_reused")
    assert "Idempotency-Key" in body["error"]["details"]
    assert Simulation.objects.filter(project=project).count() == 1


def test_a_batch_with_a_key_is_created_once(
    asgi_server: ServedApp, token: str, project: Any
) -> None:
    path = f"/api/v1/projects/{project.pk}/simulations/batch/"
    item = {k: v for k, v in ONE.items() if k != "queue"}
    batch = {"simulations": [item, {**item, "seed": 9}], "queue": False}
    first = _post(asgi_server, path, token, batch, "batch-1")
    again = _post(asgi_server, path, token, batch, "batch-1")
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json()
    assert Simulation.objects.filter(project=project).count() == 2


def test_concurrent_requests_with_one_key_create_once(
    asgi_server: ServedApp, token: str, project: Any
) -> None:
    path = f"/api/v1/projects/{project.pk}/simulations/"
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(6)

    def post() -> None:
        barrier.wait()
        answers.append(_post(asgi_server, path, token, ONE, "race"))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert Simulation.objects.filter(project=project).count() == 1


def test_keys_are_per_user_and_must_be_printable(
    asgi_server: ServedApp, token: str, project: Any, password: str
) -> None:
    from tests.factories import member

    other = member(organization=project.organization)
    other_token = obtain_tokens(asgi_server.url, other.username, password)["access"]
    path = f"/api/v1/projects/{project.pk}/simulations/"
    mine = _post(asgi_server, path, token, ONE, "shared-key").json()
    theirs = _post(asgi_server, path, other_token, ONE, "shared-key").json()
    assert mine["id"] != theirs["id"]
    for bad in ("x" * 256, "tab\there"):
        body = assert_envelope(_post(asgi_server, path, token, ONE, bad), 400)
        assert "Idempotency-Key" in body["error"]["details"]

"""Batch predictions on the compute side, followed over /ws/predictions/{batch_id}:
progress then the predictions; another organisation's batch is a 404 on both doors."""

from __future__ import annotations

import httpx
import pytest

from simlab.accounts.models import Role
from simlab.analytics import services
from simlab.audit.models import AuditLog
from tests.analytics.factories import measured_sweep
from tests.factories import PASSWORD, ProjectFactory, actor_for, member
from tests.http import assert_envelope, bearer, obtain_tokens
from tests.server import ServedApp
from tests.ws import open_ws, recv_until_closed

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_batch_streams_progress_then_its_predictions(asgi_server: ServedApp) -> None:
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    version = services.surrogate_train(
        actor_for(user),
        project_id=project.pk,
        name="rg",
        target="radius_of_gyration",
        inputs=["sticking_probability", "n_particles"],
        sweep_ids=[measured_sweep(project).pk],
    )
    assert services.version_train_run(version.pk) == "READY"
    points = [
        {"sticking_probability": 0.1 + 0.9 * i / 4999, "n_particles": 100 + i % 2900}
        for i in range(5000)
    ]
    access = obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]
    with httpx.Client(base_url=asgi_server.url, headers=bearer(access), timeout=60) as client:
        started = client.post(
            "/compute/predictions/batches", json={"model_id": version.model_id, "points": points}
        )
        assert started.status_code == 202, started.text
        batch_id = started.json()["batch_id"]
        assert started.json()["total"] == 5000
        with open_ws(asgi_server, f"/ws/predictions/{batch_id}?token={access}") as ws:
            messages, code = recv_until_closed(ws)
        assert code == 1000
        assert messages[-1]["type"] == "result"
        predictions = messages[-1]["predictions"]
        assert len(predictions) == 5000
        assert all(p["low"] <= p["mean"] <= p["high"] for p in predictions)
        done = [m["done"] for m in messages if m["type"] == "progress"]
        assert done == sorted(done)
        assert done[-1] == 5000
        # The same answer by polling; single predictions agree with the batch's.
        polled = client.get(f"/compute/predictions/batches/{batch_id}").json()
        assert polled["predictions"] == predictions
        single = services.surrogate_predict(
            actor_for(user), model_id=version.model_id, points=points[:3]
        )
        for one, many in zip(single["predictions"], predictions[:3], strict=True):
            assert one == pytest.approx(many, rel=1e-9)

        bad = client.post(
            "/compute/predictions/batches",
            json={"model_id": version.model_id, "points": [{"n_particles": 3}]},
        )
        envelope = assert_envelope(bad, 400, "validation_error")
        assert "points.0.sticking_probability" in envelope["error"]["details"]

    stranger = member(Role.OWNER)
    foreign = obtain_tokens(asgi_server.url, stranger.username, PASSWORD)["access"]
    with httpx.Client(base_url=asgi_server.url, headers=bearer(foreign), timeout=60) as client:
        assert_envelope(client.get(f"/compute/predictions/batches/{batch_id}"), 404, "not_found")
        refused = client.post(
            "/compute/predictions/batches", json={"model_id": version.model_id, "points": points}
        )
        assert_envelope(refused, 404, "not_found")
    with open_ws(asgi_server, f"/ws/predictions/{batch_id}?token={foreign}") as ws:
        messages, code = recv_until_closed(ws)
    assert code == 4404
    assert messages[-1]["error"]["code"] == "not_found"
    assert AuditLog.objects.filter(action="surrogate.predict", details__batch_id=batch_id).exists()

"""Simulations over REST, run by a real Celery worker process, results downloaded."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from PIL import Image

from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from simlab.simulations.models import Simulation
from tests.conftest import wait_for
from tests.factories import PASSWORD, ProjectFactory, member
from tests.http import assert_envelope, bearer, obtain_tokens
from tests.server import ServedApp
from tests.workers import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)


def _finished(client: httpx.Client, simulation_id: int) -> dict[str, object] | None:
    body = client.get(f"/api/v1/simulations/{simulation_id}/").json()
    return body if body["status"] in ("SUCCEEDED", "FAILED", "CANCELLED") else None


def test_simulation_created_over_rest_runs_and_its_results_download(
    asgi_server: ServedApp, celery_worker: WorkerProcess
) -> None:
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    access = obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]
    with httpx.Client(base_url=asgi_server.url, headers=bearer(access), timeout=30) as client:
        created = client.post(
            f"/api/v1/projects/{project.pk}/simulations/",
            json={"algorithm": "dla", "parameters": {"n_particles": 3000}, "seed": 11},
        )
        assert created.status_code == 201, created.text
        simulation = created.json()
        assert simulation["status"] == "QUEUED"
        assert simulation["parameters"]["n_particles"] == 3000
        assert simulation["parameters"]["dimension"] == 2  # defaults filled in and stored

        done = wait_for(lambda: _finished(client, simulation["id"]), timeout=90)
        assert done["status"] == "SUCCEEDED", (done, celery_worker.output())
        assert done["progress"] == 1.0
        assert done["attempts"] == 1
        assert 1.5 < done["metrics"]["fractal_dimension"] < 1.95

        npz = client.get(done["links"]["npz"])
        assert npz.status_code == 200
        arrays = np.load(io.BytesIO(npz.content))
        assert arrays["positions"].shape == (3000, 2)

        png = client.get(done["links"]["png"])
        assert png.headers["content-type"] == "image/png"
        picture = Image.open(io.BytesIO(png.content))
        assert picture.width >= 256
        assert np.asarray(picture.convert("L")).std() > 5  # not a blank image

        metrics = client.get(done["links"]["metrics"]).json()
        assert metrics["seed"] == 11
        assert metrics["metrics"]["n_particles"] == 3000

    entry = AuditLog.objects.get(action="simulation.create")
    assert entry.source == "api"
    assert entry.object_id == str(simulation["id"])


def test_results_of_an_unfinished_simulation_are_404_envelopes(asgi_server: ServedApp) -> None:
    user = member(Role.MEMBER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    access = obtain_tokens(asgi_server.url, user.username, PASSWORD)["access"]
    with httpx.Client(base_url=asgi_server.url, headers=bearer(access)) as client:
        created = client.post(
            f"/api/v1/projects/{project.pk}/simulations/",
            json={"algorithm": "eden", "queue": False},
        ).json()
        assert created["status"] == "CREATED"
        for suffix in ("result.npz", "picture.png", "metrics.json"):
            response = client.get(f"/api/v1/simulations/{created['id']}/{suffix}")
            assert_envelope(response, 404, "result_not_ready")
    assert Simulation.objects.get(pk=created["id"]).status == "CREATED"

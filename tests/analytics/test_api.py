"""Surrogate models over REST: trained by a real worker, predictions single and batch,
keyset listings, tenancy (another organisation's model is a 404) and bad input (400
naming the field)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from simlab.accounts.models import Role
from simlab.analytics import services
from simlab.analytics.models import TRAINING_STATUSES, VersionStatus
from simlab.audit.models import AuditLog
from tests.analytics.factories import measured_sweep
from tests.conftest import wait_for
from tests.factories import PASSWORD, ProjectFactory, actor_for, member
from tests.http import assert_envelope, bearer, obtain_tokens
from tests.server import ServedApp
from tests.workers import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)

INPUTS = ["sticking_probability", "n_particles"]
POINT = {"sticking_probability": 0.5, "n_particles": 500}
AXES = {"sticking_probability": [0.2, 0.6], "n_particles": [150, 2500]}
TRAIN = {"name": "m", "target": "t", "inputs": INPUTS, "algorithm": "dla"}


def _client(server: ServedApp, role: Role = Role.MEMBER) -> tuple[httpx.Client, Any, Any]:
    user = member(role)
    project = ProjectFactory(organization=user.memberships.get().organization)
    access = obtain_tokens(server.url, user.username, PASSWORD)["access"]
    return httpx.Client(base_url=server.url, headers=bearer(access), timeout=60), project, user


def _trained(user: Any, project: Any) -> Any:
    """A READY version, trained by the service the worker runs: here, or by the module's
    worker when one is up and took the published task first (then it is awaited)."""
    version = services.surrogate_train(
        actor_for(user),
        project_id=project.pk,
        name="rg",
        target="radius_of_gyration",
        inputs=INPUTS,
        sweep_ids=[measured_sweep(project).pk],
    )
    services.version_train_run(version.pk)

    def finished() -> bool:
        version.refresh_from_db()
        return version.status not in TRAINING_STATUSES

    wait_for(finished, timeout=120, interval=0.2)
    assert version.status == VersionStatus.READY, version.error_message
    return version


def test_trained_by_the_worker_then_predicted_single_and_batch(
    asgi_server: ServedApp, celery_worker: WorkerProcess
) -> None:
    client, project, _ = _client(asgi_server)
    sweep = measured_sweep(project)
    with client:
        body = {"name": "rg", "target": "radius_of_gyration", "inputs": INPUTS}
        queued = client.post(
            f"/api/v1/projects/{project.pk}/surrogates/", json={**body, "sweep_ids": [sweep.pk]}
        )
        assert queued.status_code == 202, queued.text
        assert queued.json()["status"] == "QUEUED"
        version_id = queued.json()["id"]
        # The answer is a version; it points at its model's endpoints (by the model's id).
        model_id = queued.json()["model"]
        assert queued.json()["links"] == {
            "self": f"/api/v1/surrogate-versions/{version_id}/",
            "model": f"/api/v1/surrogates/{model_id}/",
            "predict": f"/api/v1/surrogates/{model_id}/predict/",
            "suggest": f"/api/v1/surrogates/{model_id}/suggest/",
        }

        def ready() -> dict[str, Any] | None:
            row = client.get(f"/api/v1/surrogate-versions/{version_id}/").json()
            return row if row["status"] not in ("QUEUED", "TRAINING") else None

        version = wait_for(ready, timeout=120, interval=0.3)
        assert version["status"] == "READY", version["error_message"]
        assert version["aliases"] == ["current"]
        assert version["metrics"]["cv_r2"] > 0.9
        model_id = version["model"]

        single = client.post(f"/api/v1/surrogates/{model_id}/predict/", json={"points": [POINT]})
        assert single.status_code == 200, single.text
        (p,) = single.json()["predictions"]
        assert p["low"] < p["mean"] < p["high"]
        batch = [{"sticking_probability": s / 10, "n_particles": 1000} for s in range(1, 11)]
        many = client.post(
            f"/api/v1/surrogates/{model_id}/predict/",
            json={"points": batch, "version": version_id},
        )
        assert many.status_code == 200, many.text
        assert len(many.json()["predictions"]) == 10

        suggested = client.post(
            f"/api/v1/surrogates/{model_id}/suggest/",
            json={"k": 3, "axes": {"sticking_probability": [0.2, 0.4], "n_particles": [150, 2000]}},
        )
        assert suggested.status_code == 200, suggested.text
        assert len(suggested.json()["suggestions"]) == 3

        # A second version, then the keyset listings (project-wide and per model).
        again = client.post(
            f"/api/v1/projects/{project.pk}/surrogates/", json={**body, "sweep_ids": [sweep.pk]}
        )
        wait_for(lambda: ready() and client.get(
            f"/api/v1/surrogate-versions/{again.json()['id']}/"
        ).json()["status"] == "READY", timeout=120, interval=0.3)  # fmt: skip
        page = client.get(f"/api/v1/projects/{project.pk}/surrogate-versions/?page_size=1")
        assert [v["number"] for v in page.json()["results"]] == [2]
        following = client.get(page.json()["next"])
        assert [v["number"] for v in following.json()["results"]] == [1]
        listed = client.get(f"/api/v1/surrogates/{model_id}/versions/").json()["results"]
        assert [(v["number"], v["aliases"]) for v in listed] == [(2, ["current"]), (1, [])]
        moved = client.post(
            f"/api/v1/surrogate-versions/{version_id}/alias/", json={"alias": "current"}
        )
        assert moved.json() == {"alias": "current", "version": version_id}
        models = client.get(f"/api/v1/projects/{project.pk}/surrogates/").json()["results"]
        assert models[0]["aliases"] == {"current": version_id}
    sources = set(
        AuditLog.objects.filter(action="surrogate.trained").values_list("source", flat=True)
    )
    assert sources == {"system"}
    assert AuditLog.objects.filter(action="surrogate.predict", source="api").count() == 2


def test_another_organisations_model_is_a_404_everywhere(asgi_server: ServedApp) -> None:
    _, project, user = _client(asgi_server)
    version = _trained(user, project)
    stranger, _, _ = _client(asgi_server, Role.OWNER)
    m, v = version.model_id, version.pk
    with stranger:
        for method, path, body in [
            ("GET", f"/api/v1/projects/{project.pk}/surrogates/", None),
            ("POST", f"/api/v1/projects/{project.pk}/surrogates/", TRAIN),
            ("GET", f"/api/v1/projects/{project.pk}/surrogate-versions/", None),
            ("GET", f"/api/v1/surrogates/{m}/", None),
            ("GET", f"/api/v1/surrogates/{m}/versions/", None),
            ("POST", f"/api/v1/surrogates/{m}/predict/", {"points": [POINT]}),
            ("POST", f"/api/v1/surrogates/{m}/suggest/", {"k": 1, "candidates": [POINT]}),
            ("GET", f"/api/v1/surrogate-versions/{v}/", None),
            ("POST", f"/api/v1/surrogate-versions/{v}/alias/", {"alias": "mine"}),
        ]:  # fmt: skip
            assert_envelope(stranger.request(method, path, json=body), 404, "not_found")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("train", {**TRAIN, "name": ""}, "name"),
        ("train", {**TRAIN, "inputs": "p"}, "inputs"),
        ("train", {**TRAIN, "algorithm": ""}, "algorithm"),
        ("train", {**TRAIN, "level": 2}, "level"),
        ("train", {**TRAIN, "sweep_ids": ["x"]}, "sweep_ids.0"),
        ("predict", {"points": [{**POINT, "n_particles": "high"}]}, "points.0.n_particles"),
        ("predict", {"points": [POINT, {"n_particles": 5}]}, "points.1.sticking_probability"),
        ("predict", {"points": []}, "points"),
        ("predict", {}, "points"),
        ("suggest", {"k": 0, "candidates": [POINT]}, "k"),
        ("suggest", {"k": 2, "axes": {"n_particles": [1]}}, "axes.sticking_probability"),
        # A misspelt input, a value the parameter cannot take, a field the body has not.
        ("predict", {"points": [{**POINT, "sticking_probabilty": 0.5}]},
         "points.0.sticking_probabilty"),
        ("predict", {"points": [POINT, {**POINT, "n_particles": -3000}]}, "points.1.n_particles"),
        ("predict", {"points": [{**POINT, "sticking_probability": 0}]},
         "points.0.sticking_probability"),
        ("predict", {"points": [POINT], "point": POINT}, "point"),
        ("suggest", {"k": 1, "axes": {**AXES, "sticking_probability": ["a"]}},
         "axes.sticking_probability.0"),
        ("suggest", {"k": 1, "axes": {**AXES, "dimension": [2]}}, "axes.dimension"),
        ("suggest", {"k": 1, "axes": {**AXES, "n_particles": list(range(1, 200_001))}}, "axes"),
        ("suggest", {"k": 1, "axes": AXES, "candidates": [POINT]}, "axes"),
        ("suggest", {"k": 1, "candidates": [{**POINT, "n_particles": 0}]},
         "candidates.0.n_particles"),
    ],
)  # fmt: skip
def test_bad_input_is_400_naming_the_field(
    asgi_server: ServedApp, path: str, body: dict[str, Any], field: str
) -> None:
    client, project, user = _client(asgi_server)
    model_id = _trained(user, project).model_id if path != "train" else None
    url = (
        f"/api/v1/projects/{project.pk}/surrogates/"
        if path == "train"
        else f"/api/v1/surrogates/{model_id}/{path}/"
    )
    with client:
        envelope = assert_envelope(client.post(url, json=body), 400, "validation_error")
    assert field in envelope["error"]["details"], envelope


def test_a_viewer_predicts_but_does_not_train(asgi_server: ServedApp) -> None:
    _, project, user = _client(asgi_server)
    version = _trained(user, project)
    viewer = member(Role.VIEWER, organization=project.organization)
    access = obtain_tokens(asgi_server.url, viewer.username, PASSWORD)["access"]
    with httpx.Client(base_url=asgi_server.url, headers=bearer(access), timeout=60) as client:
        body = {"name": "rg", "target": "radius_of_gyration", "inputs": INPUTS, "algorithm": "dla"}
        refused = client.post(f"/api/v1/projects/{project.pk}/surrogates/", json=body)
        assert_envelope(refused, 403, "permission_denied")
        predicted = client.post(
            f"/api/v1/surrogates/{version.model_id}/predict/", json={"points": [POINT]}
        )
        assert predicted.status_code == 200, predicted.text
